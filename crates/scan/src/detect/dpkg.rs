//! dpkg's database: `var/lib/dpkg/status` (all packages in one file), distroless images'
//! `var/lib/dpkg/status.d/<package>` (one stanza per file), and `var/lib/dpkg/info/*.list`
//! (the files each package owns, used to recognise language metadata the distribution
//! installed).

use crate::detect::rfc822::stanzas;
use crate::model::{Package, PackageKind};

/// dpkg's package states in which the package's files are on disk (dpkg(1), "Package
/// states"). `not-installed` and `config-files` (removed, configuration kept) are not.
const PRESENT_STATES: [&str; 6] = [
    "installed",
    "unpacked",
    "half-installed",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
];

/// Parses a `status` file or one `status.d` entry. Stanzas without a `Package` or `Version`
/// are skipped.
pub(crate) fn parse_status(text: &str, evidence: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    for stanza in stanzas(text, false) {
        let (Some(name), Some(version)) = (stanza.get("Package"), stanza.get("Version")) else {
            continue;
        };
        // `Status: want flag status`; distroless status.d entries have no Status field.
        if let Some(status) = stanza.get("Status") {
            let state = status.split_whitespace().nth(2).unwrap_or_default();
            if !PRESENT_STATES.contains(&state) {
                continue;
            }
        }
        let (source_name, source_version) = match stanza.get("Source") {
            // `Source: name (version)` when the source version differs from the binary's.
            Some(source) => match source.split_once('(') {
                Some((n, v)) => (
                    n.trim().to_owned(),
                    v.trim_end_matches(')').trim().to_owned(),
                ),
                None => (source.trim().to_owned(), version.to_owned()),
            },
            None => (name.to_owned(), version.to_owned()),
        };
        packages.push(Package {
            kind: PackageKind::Deb,
            name: name.to_owned(),
            version: version.to_owned(),
            namespace: None,
            source_name: Some(source_name),
            source_version: Some(source_version),
            arch: stanza.get("Architecture").map(str::to_owned),
            licenses: Vec::new(),
            evidence: evidence.to_owned(),
            owner: None,
            layer: None,
        });
    }
    packages
}

/// The package a `var/lib/dpkg/info/<package>[:<arch>].list` file belongs to.
pub(crate) fn list_owner(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?.strip_suffix(".list")?;
    let name = file.split(':').next().unwrap_or(file);
    (!name.is_empty()).then_some(name)
}

/// The paths a `.list` file names, relative to the image root.
pub(crate) fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| !l.is_empty() && *l != ".")
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_with_version_and_removed_packages() {
        let text = "Package: libc6\nStatus: install ok installed\nSource: glibc (2.36-9+deb12u4)\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nDescription: x\n multi\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\n";
        let p = parse_status(text, "var/lib/dpkg/status");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source_name.as_deref(), Some("glibc"));
        assert_eq!(p[0].source_version.as_deref(), Some("2.36-9+deb12u4"));
        assert_eq!(p[1].source_name.as_deref(), Some("tzdata"));
    }

    #[test]
    fn list_files() {
        assert_eq!(
            list_owner("var/lib/dpkg/info/libssl3:amd64.list"),
            Some("libssl3")
        );
        assert_eq!(
            list_owner("var/lib/dpkg/info/python3-requests.list"),
            Some("python3-requests")
        );
        assert_eq!(list_owner("var/lib/dpkg/info/x.md5sums"), None);
        assert_eq!(
            parse_list("/.\n/usr\n/usr/bin/x\n"),
            vec!["usr", "usr/bin/x"]
        );
    }
}
