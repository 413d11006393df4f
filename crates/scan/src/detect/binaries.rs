//! Packages recorded inside files: Go module build info and cargo-auditable dependency lists
//! in executables, Maven coordinates inside Java archives. The parsing is in
//! [`crate::binary`] and [`crate::java`]; this module turns what they read into packages.

use crate::binary::{self, go::GoModule};
use crate::java::{self, JavaLimits};
use crate::limits::Limits;
use crate::model::{Package, PackageKind};

use super::Evidence;

/// A module as it was built: the replacement when there is one (`=>` in `go version -m`).
fn effective(module: &GoModule) -> &GoModule {
    module.replace.as_deref().unwrap_or(module)
}

/// Go binaries and cargo-auditable Rust binaries. Files without the executable magic bytes
/// (scripts) are skipped silently.
pub(crate) fn executable(path: &str, bytes: &[u8], evidence: &mut Evidence) {
    if binary::executable_format(bytes).is_none() {
        return;
    }
    match binary::go::read_go_buildinfo(bytes) {
        Ok(Some(info)) => {
            // The toolchain's standard library is a module with advisories of its own
            // (govulndb's `stdlib`).
            if let Some(v) = crate::version::go_toolchain_to_semver(&info.go_version) {
                evidence
                    .packages
                    .push(Package::new(PackageKind::Go, "stdlib", &v, path));
            }
            let main = effective(&info.main);
            // `(devel)` is what `go build` records for the module being built; it has no
            // version to match, so only its dependencies are listed.
            if !main.path.is_empty() && !main.version.is_empty() && main.version != "(devel)" {
                evidence.packages.push(Package::new(
                    PackageKind::Go,
                    &main.path,
                    &main.version,
                    path,
                ));
            }
            for dep in &info.deps {
                let m = effective(dep);
                // A replacement by a local directory (`=> ./shout`) is code from the build
                // tree, not a published module version.
                let local = m.path.starts_with("./")
                    || m.path.starts_with("../")
                    || m.path.starts_with('/');
                if !m.version.is_empty() && m.version != "(devel)" && !local {
                    evidence.packages.push(Package::new(
                        PackageKind::Go,
                        &m.path,
                        &m.version,
                        path,
                    ));
                }
            }
            return;
        }
        Ok(None) => {}
        Err(e) => evidence
            .notes
            .push(format!("{path}: Go build info unreadable: {e}")),
    }
    match binary::auditable::read_auditable(bytes, 8 << 20) {
        Ok(Some(deps)) => {
            // Build-time dependencies (`kind: build`) are not in the binary.
            for dep in deps
                .iter()
                .filter(|d| d.kind.as_deref().is_none_or(|k| k == "runtime"))
            {
                // Only crates from crates.io have crates.io advisories.
                let from_registry = dep
                    .source
                    .as_deref()
                    .is_none_or(|s| s == "crates.io" || s.starts_with("registry+"));
                if from_registry {
                    evidence.packages.push(Package::new(
                        PackageKind::Cargo,
                        &dep.name,
                        &dep.version,
                        path,
                    ));
                }
            }
        }
        Ok(None) => {}
        Err(e) => evidence
            .notes
            .push(format!("{path}: cargo-auditable data unreadable: {e}")),
    }
}

pub(crate) fn java_archive(
    path: &str,
    bytes: &[u8],
    scan_limits: &Limits,
    evidence: &mut Evidence,
) {
    // Nested archives are read into memory: bound them so that a layer's peak stays within
    // what `Limits` promises (depth × nested size on top of the file itself).
    let limits = JavaLimits {
        max_depth: scan_limits.max_jar_depth,
        max_entry_bytes: scan_limits.max_nested_jar_bytes,
        max_total_bytes: scan_limits
            .max_nested_jar_bytes
            .saturating_mul(u64::from(scan_limits.max_jar_depth).max(1))
            .saturating_mul(4),
        ..JavaLimits::default()
    };
    match java::read_java_archive(bytes, path, &limits) {
        Ok(found) => {
            for jp in found {
                let mut p =
                    Package::new(PackageKind::Maven, &jp.artifact_id, &jp.version, &jp.path);
                p.namespace = jp.group_id;
                evidence.packages.push(p);
            }
        }
        Err(e) => evidence
            .notes
            .push(format!("{path}: Java archive unreadable: {e}")),
    }
}
