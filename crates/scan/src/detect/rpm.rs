//! rpm's package database in any of its three formats (Berkeley DB `Packages`, NDB
//! `Packages.db`, SQLite `rpmdb.sqlite`), read by [`crate::rpmdb`].

use crate::model::{Package, PackageKind};
use crate::rpmdb::{self, RpmDbLimits};

use super::Evidence;

/// The database locations rpm has used: `/var/lib/rpm` (RHEL ≤ 8, SUSE), `/usr/lib/sysimage/rpm`
/// (Fedora 36+, RHEL 9 via a link, openSUSE), `/usr/share/rpm` (older SUSE, CBL-Mariner).
pub(crate) fn is_database(path: &str) -> bool {
    let Some((dir, file)) = path.rsplit_once('/') else {
        return false;
    };
    matches!(
        dir,
        "var/lib/rpm" | "usr/lib/sysimage/rpm" | "usr/share/rpm"
    ) && matches!(file, "Packages" | "Packages.db" | "rpmdb.sqlite")
}

pub(crate) fn analyze(path: &str, bytes: &[u8], evidence: &mut Evidence) {
    let packages = match rpmdb::read(bytes, &RpmDbLimits::default()) {
        Ok(p) => p,
        Err(e) => {
            evidence
                .notes
                .push(format!("{path}: rpm database unreadable: {e}"));
            return;
        }
    };
    // `gpg-pubkey` entries are imported signing keys, not software.
    for rpm in packages.into_iter().filter(|p| p.name != "gpg-pubkey") {
        let source_name = rpm.source_name();
        evidence.owned_files.extend(
            rpm.files
                .iter()
                .map(|f| (f.trim_start_matches('/').to_owned(), rpm.name.clone())),
        );
        evidence.packages.push(Package {
            kind: PackageKind::Rpm,
            version: rpm.evr(),
            source_version: source_name.as_ref().map(|_| rpm.evr()),
            source_name,
            arch: (!rpm.arch.is_empty()).then(|| rpm.arch.clone()),
            licenses: rpm.license.iter().cloned().collect(),
            name: rpm.name,
            namespace: None,
            evidence: path.to_owned(),
            owner: None,
            layer: None,
        });
    }
}
