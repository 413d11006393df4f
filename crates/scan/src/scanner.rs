//! The pipeline for one image: read every layer (in parallel, up to the number of threads
//! asked for), then stack the fragments into the inventory. Layers are independent until the
//! merge, so a cached fragment (the registry keeps them by diff_id) can stand in for a read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::image::{BlobSource, ImageError, ResolvedImage};
use crate::inventory;
use crate::layer::{self, LayerError, LayerFragment, WalkOptions};
use crate::limits::Limits;
use crate::model::{Inventory, LayerInfo};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("layer {index} ({digest}): {source}")]
    Layer {
        index: usize,
        digest: String,
        source: LayerError,
    },
}

/// Progress callbacks: bytes of compressed layer read so far.
pub trait Progress: Sync {
    fn layer_started(&self, _index: usize, _size: Option<u64>) {}
    fn bytes_read(&self, _n: u64) {}
    fn layer_finished(&self, _index: usize) {}
}

/// No progress reporting.
pub struct Quiet;

impl Progress for Quiet {}

pub struct ScanOptions {
    pub limits: Limits,
    pub walk: WalkOptions,
    /// Layers read at the same time.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            limits: Limits::default(),
            walk: WalkOptions::default(),
            threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4),
        }
    }
}

/// Reads every layer of `image` that `cached` does not supply. `cached(index)` returns a
/// fragment already known for that layer.
pub fn read_layers(
    source: &dyn BlobSource,
    image: &ResolvedImage,
    options: &ScanOptions,
    progress: &dyn Progress,
    cached: &(dyn Fn(usize) -> Option<LayerFragment> + Sync),
) -> Result<Vec<LayerFragment>, ScanError> {
    let count = image.layers.len();
    let budget = crate::limits::MemoryBudget::new(options.limits.memory_budget_bytes);
    let slots: Vec<Mutex<Option<Result<LayerFragment, ScanError>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = || {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count || failed.load(Ordering::Relaxed) {
                return;
            }
            let result = match cached(index) {
                Some(fragment) => Ok(fragment),
                None => read_one(source, image, index, options, progress, &budget),
            };
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            if let Ok(mut slot) = slots[index].lock() {
                *slot = Some(result);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..options.threads.max(1).min(count.max(1)) {
            scope.spawn(work);
        }
        work();
    });
    let mut fragments = Vec::with_capacity(count);
    let mut first_error = None;
    for (index, slot) in slots.into_iter().enumerate() {
        match slot.into_inner().ok().flatten() {
            Some(Ok(f)) => fragments.push(f),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {
                first_error.get_or_insert(ScanError::Layer {
                    index,
                    digest: image.layers[index].digest.clone(),
                    source: LayerError::Corrupt {
                        compression: layer::Compression::None,
                        offset: 0,
                        source: std::io::Error::other("not read: an earlier layer failed"),
                    },
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(fragments),
    }
}

struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes_read(n as u64);
        Ok(n)
    }
}

fn read_one(
    source: &dyn BlobSource,
    image: &ResolvedImage,
    index: usize,
    options: &ScanOptions,
    progress: &dyn Progress,
    budget: &crate::limits::MemoryBudget,
) -> Result<LayerFragment, ScanError> {
    let layer = &image.layers[index];
    progress.layer_started(index, layer.size);
    let reader = source.open_layer(layer)?;
    let counting = Counting {
        inner: reader,
        progress,
    };
    let fragment = layer::walk_layer_within(counting, &options.limits, options.walk, budget)
        .map_err(|source| ScanError::Layer {
            index,
            digest: layer.digest.clone(),
            source,
        })?;
    progress.layer_finished(index);
    Ok(fragment)
}

/// Reads and merges: the inventory of one image.
pub fn inventory_image(
    source: &dyn BlobSource,
    image: &ResolvedImage,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Inventory, ScanError> {
    let fragments = read_layers(source, image, options, progress, &|_| None)?;
    Ok(assemble(image, &fragments))
}

/// The inventory from fragments already read (or cached).
pub fn assemble(image: &ResolvedImage, fragments: &[LayerFragment]) -> Inventory {
    let created_by = image.created_by();
    let layers = image
        .layers
        .iter()
        .zip(fragments)
        .zip(created_by)
        .map(|((layer, fragment), created_by)| LayerInfo {
            digest: layer.digest.clone(),
            diff_id: fragment.diff_id.clone(),
            created_by,
        })
        .collect();
    inventory::merge(fragments, layers)
}
