//! Bounds on the work one layer can cause. Layers are untrusted input: a tar bomb, a
//! billion tiny entries or one absurd file must end that scan with a clear reason and never
//! exhaust the memory or the time of the process that runs it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Decompressed bytes per layer.
    pub max_layer_bytes: u64,
    /// Tar entries per layer.
    pub max_entries: u64,
    /// Bytes read from any one file the detectors ask for (package databases, metadata,
    /// binaries, archives). Larger files are skipped with a note, not read.
    pub max_file_bytes: u64,
    /// Nesting depth of Java archives inside Java archives.
    pub max_jar_depth: u32,
    /// Length of an entry's path, in bytes.
    pub max_path_bytes: usize,
    /// Bytes of file contents held in memory at once by all the layers of one scan read in
    /// parallel; a thread waits for room before reading a file. With the Java limits below
    /// it bounds peak memory: budget + threads × depth × nested entry size.
    pub memory_budget_bytes: u64,
    /// A nested Java archive read into memory may be at most this large.
    pub max_nested_jar_bytes: u64,
    /// What the detectors keep from one layer (package fields, owned-file paths, notes), in
    /// bytes: a layer that names millions of packages or files ends its scan instead.
    pub max_evidence_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layer_bytes: 16 << 30,
            max_entries: 2_000_000,
            max_file_bytes: 64 << 20,
            max_jar_depth: 3,
            max_path_bytes: 4096,
            memory_budget_bytes: 64 << 20,
            max_nested_jar_bytes: 16 << 20,
            max_evidence_bytes: 64 << 20,
        }
    }
}

/// Bytes of file contents the threads of one scan may hold together. `acquire` waits until
/// the bytes are free; asking for more than the whole budget is refused by the caller first.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

/// Bytes held from a [`MemoryBudget`]; returned when dropped.
pub struct BudgetPermit<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    pub fn new(total: u64) -> MemoryBudget {
        MemoryBudget {
            total,
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Waits for `bytes` (at most the whole budget) to be free and holds them.
    pub fn acquire(&self, bytes: u64) -> BudgetPermit<'_> {
        let bytes = bytes.min(self.total);
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *used + bytes > self.total {
            used = self
                .freed
                .wait(used)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *used += bytes;
        BudgetPermit {
            budget: self,
            bytes,
        }
    }
}

impl Drop for BudgetPermit<'_> {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *used = used.saturating_sub(self.bytes);
        self.budget.freed.notify_all();
    }
}
