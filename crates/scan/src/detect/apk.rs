//! apk's database, `lib/apk/db/installed` (apk-tools `doc/apk-v2.5.scd` and
//! `src/database.c`): one `X:value` line per field, a blank line between packages. `P` name,
//! `V` version, `A` arch, `o` origin (the source package secdb is keyed by), `L` licence,
//! `F` a directory and `R` a file in the last `F` (the files the package owns).

use crate::model::{Package, PackageKind};

/// Packages and, for each, the files it owns.
pub(crate) fn parse_installed(text: &str, evidence: &str) -> (Vec<Package>, Vec<(String, String)>) {
    let mut packages = Vec::new();
    let mut owned = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut arch = None;
        let mut origin = None;
        let mut license = None;
        let mut files = Vec::new();
        let mut dir = String::new();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => name = Some(value.to_owned()),
                "V" => version = Some(value.to_owned()),
                "A" => arch = Some(value.to_owned()),
                "o" => origin = Some(value.to_owned()),
                "L" => license = Some(value.to_owned()),
                "F" => dir = value.trim_matches('/').to_owned(),
                "R" if dir.is_empty() => files.push(value.to_owned()),
                "R" => files.push(format!("{dir}/{value}")),
                _ => {}
            }
        }
        let (Some(name), Some(version)) = (name, version) else {
            continue;
        };
        owned.extend(files.into_iter().map(|f| (f, name.clone())));
        packages.push(Package {
            kind: PackageKind::Apk,
            source_name: Some(origin.unwrap_or_else(|| name.clone())),
            source_version: Some(version.clone()),
            name,
            version,
            namespace: None,
            arch,
            licenses: license.into_iter().collect(),
            evidence: evidence.to_owned(),
            owner: None,
            layer: None,
        });
    }
    (packages, owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_files() {
        let text = "P:libcrypto3\nV:3.1.4-r1\nA:x86_64\no:openssl\nL:Apache-2.0\nF:usr/lib\nR:libcrypto.so.3\n\nP:musl\nV:1.2.4-r2\n";
        let (p, owned) = parse_installed(text, "lib/apk/db/installed");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source_name.as_deref(), Some("openssl"));
        assert_eq!(p[1].source_name.as_deref(), Some("musl"));
        assert_eq!(
            owned,
            vec![("usr/lib/libcrypto.so.3".to_owned(), "libcrypto3".to_owned())]
        );
    }
}
