//! Merging layers into the image's inventory, as the container runtime would stack them:
//! each layer's whiteouts and opaque directories hide what lower layers put there, then its
//! own files replace files at the same paths (OCI image-spec `layer.md`, "Applying
//! Changesets").
//!
//! Attribution: a package is credited to the layer where its current version appeared. When
//! a layer rewrites a package database, packages whose name and version were already in the
//! visible copy keep their earlier layer; new ones (installed, upgraded, or reinstalled after
//! a removal) get this layer. Rewriting the whole database file, as dpkg, apk and rpm do, is
//! therefore not mistaken for reinstalling everything (Syft's "last layer" behaviour).

use std::collections::{BTreeMap, HashMap};

use crate::detect::Evidence;
use crate::layer::LayerFragment;
use crate::model::{Inventory, LayerInfo, Package};

/// The visible copy of one evidence file and, per package, the layer that introduced it.
struct Visible {
    evidence: Evidence,
    introduced: Vec<usize>,
}

/// Stacks `fragments` (in manifest order, bottom first) into an inventory.
pub fn merge(fragments: &[LayerFragment], layers: Vec<LayerInfo>) -> Inventory {
    let mut visible: BTreeMap<String, Visible> = BTreeMap::new();
    let mut notes = Vec::new();
    for (index, fragment) in fragments.iter().enumerate() {
        for dir in &fragment.opaque_dirs {
            remove_under(&mut visible, dir, false);
        }
        for path in &fragment.whiteouts {
            remove_under(&mut visible, path, true);
        }
        for (path, evidence) in &fragment.files {
            let previous = visible.remove(path);
            let introduced = evidence
                .packages
                .iter()
                .map(|p| {
                    previous
                        .as_ref()
                        .and_then(|prev| earlier_layer(prev, p))
                        .unwrap_or(index)
                })
                .collect();
            visible.insert(
                path.clone(),
                Visible {
                    evidence: evidence.clone(),
                    introduced,
                },
            );
        }
        notes.extend(fragment.notes.iter().map(|n| format!("layer {index}: {n}")));
    }

    let distro = visible
        .values()
        .filter_map(|v| v.evidence.distro.as_ref())
        .max_by_key(|(priority, _)| *priority)
        .map(|(_, d)| d.clone());
    let owners: HashMap<&str, &str> = visible
        .values()
        .flat_map(|v| v.evidence.owned_files.iter())
        .map(|(path, owner)| (path.as_str(), owner.as_str()))
        .collect();

    let mut packages = Vec::new();
    for v in visible.values() {
        for (package, layer) in v.evidence.packages.iter().zip(&v.introduced) {
            let mut package = package.clone();
            package.layer = Some(*layer);
            if !package.kind.is_os() {
                package.owner = owner_of(&owners, &package.evidence).map(str::to_owned);
            }
            packages.push(package);
        }
    }
    packages.sort_by(|a, b| {
        (a.kind, &a.name, &a.version, &a.evidence).cmp(&(b.kind, &b.name, &b.version, &b.evidence))
    });
    Inventory {
        distro,
        layers,
        packages,
        notes,
    }
}

fn earlier_layer(previous: &Visible, package: &Package) -> Option<usize> {
    previous
        .evidence
        .packages
        .iter()
        .zip(&previous.introduced)
        .find(|(p, _)| {
            p.name == package.name && p.version == package.version && p.arch == package.arch
        })
        .map(|(_, layer)| *layer)
}

/// Removes `path` itself (when `including_self`) and everything beneath it.
fn remove_under(visible: &mut BTreeMap<String, Visible>, path: &str, including_self: bool) {
    if path.is_empty() {
        // An opaque root hides every lower file.
        visible.clear();
        return;
    }
    if including_self {
        visible.remove(path);
    }
    let prefix = format!("{path}/");
    let doomed: Vec<String> = visible
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for key in doomed {
        visible.remove(&key);
    }
}

/// The OS package that owns a language package's metadata: the file itself, or the
/// `.dist-info`/`.egg-info` directory it sits in. Other ancestors are not checked, since
/// directories such as `dist-packages` belong to a distribution package while holding files
/// pip installed.
fn owner_of<'a>(owners: &HashMap<&str, &'a str>, evidence: &str) -> Option<&'a str> {
    if let Some(owner) = owners.get(evidence) {
        return Some(owner);
    }
    let (dir, _) = evidence.rsplit_once('/')?;
    if dir.ends_with(".dist-info") || dir.ends_with(".egg-info") {
        return owners.get(dir).copied();
    }
    None
}
