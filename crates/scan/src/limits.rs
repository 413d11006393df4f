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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layer_bytes: 16 << 30,
            max_entries: 2_000_000,
            max_file_bytes: 64 << 20,
            max_jar_depth: 3,
            max_path_bytes: 4096,
        }
    }
}
