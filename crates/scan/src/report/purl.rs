//! Package URLs (package-url/purl-spec, `PURL-SPECIFICATION.rst` and `PURL-TYPES.rst`) for
//! the packages the scanner finds. Written here rather than taken from a crate because only
//! building canonical strings is needed, and the rules are a few lines: components are
//! percent-encoded except for `A-Za-z0-9.-_~` and `:`; qualifier keys are lower case and
//! sorted, and empty values are dropped; the `pypi` name is lower case with `_` as `-`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Distro, Package, PackageKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageUrl {
    pub ty: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: BTreeMap<String, String>,
    pub subpath: Option<String>,
}

fn encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

impl std::fmt::Display for PackageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::from("pkg:");
        out.push_str(&self.ty.to_ascii_lowercase());
        out.push('/');
        if let Some(ns) = self.namespace.as_deref().filter(|n| !n.is_empty()) {
            for segment in ns.split('/').filter(|s| !s.is_empty()) {
                encode(&mut out, segment);
                out.push('/');
            }
        }
        let name = if self.ty == "pypi" {
            self.name.to_ascii_lowercase().replace('_', "-")
        } else {
            self.name.clone()
        };
        encode(&mut out, &name);
        if let Some(v) = &self.version {
            out.push('@');
            encode(&mut out, v);
        }
        let qualifiers: BTreeMap<String, &String> = self
            .qualifiers
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        for (i, (k, v)) in qualifiers.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            encode(&mut out, v);
        }
        if let Some(sub) = self.subpath.as_deref().filter(|s| !s.is_empty()) {
            out.push('#');
            let segments: Vec<&str> = sub
                .split('/')
                .filter(|s| !s.is_empty() && *s != "." && *s != "..")
                .collect();
            for (i, segment) in segments.iter().enumerate() {
                if i > 0 {
                    out.push('/');
                }
                encode(&mut out, segment);
            }
        }
        f.write_str(&out)
    }
}

/// The purl of a detected package. OS packages carry the distribution as namespace and
/// `distro` qualifier, as the purl types for deb, apk and rpm describe.
pub fn package_purl(package: &Package, distro: Option<&Distro>) -> PackageUrl {
    let mut purl = PackageUrl {
        name: package.name.clone(),
        version: Some(package.version.clone()),
        ..PackageUrl::default()
    };
    let os_namespace = || distro.map(|d| d.id.clone());
    match package.kind {
        PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm => {
            purl.ty = package.kind.as_str().to_owned();
            purl.namespace = os_namespace();
            if let Some(arch) = &package.arch {
                purl.qualifiers.insert("arch".into(), arch.clone());
            }
            if let Some(d) = distro {
                purl.qualifiers.insert("distro".into(), d.purl_qualifier());
            }
            if package
                .source_name
                .as_deref()
                .is_some_and(|s| s != package.name)
            {
                let source = match (&package.source_name, &package.source_version) {
                    (Some(n), Some(v)) if v != &package.version => format!("{n}@{v}"),
                    (Some(n), _) => n.clone(),
                    _ => String::new(),
                };
                purl.qualifiers.insert("upstream".into(), source);
            }
        }
        PackageKind::Python => purl.ty = "pypi".into(),
        PackageKind::Npm => {
            purl.ty = "npm".into();
            purl.namespace = package.namespace.clone();
        }
        PackageKind::Go => {
            purl.ty = "golang".into();
            if let Some((ns, name)) = package.name.rsplit_once('/') {
                purl.namespace = Some(ns.to_owned());
                purl.name = name.to_owned();
            }
        }
        PackageKind::Cargo => purl.ty = "cargo".into(),
        PackageKind::Maven => {
            purl.ty = "maven".into();
            purl.namespace = package.namespace.clone();
        }
        PackageKind::Gem => purl.ty = "gem".into(),
        PackageKind::Composer => {
            purl.ty = "composer".into();
            if let Some((ns, name)) = package.name.split_once('/') {
                purl.namespace = Some(ns.to_owned());
                purl.name = name.to_owned();
            }
        }
    }
    purl
}
