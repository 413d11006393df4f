//! The distribution and release, from `etc/os-release` (os-release(5)) and, where an image
//! lacks it, the older files distributions still ship: `etc/alpine-release`,
//! `etc/debian_version`, `etc/lsb-release`, `etc/redhat-release`.

use crate::model::Distro;

/// How much a file is trusted when several are present: os-release wins over its relatives.
pub(crate) fn priority(path: &str) -> Option<u8> {
    match path {
        "etc/os-release" => Some(4),
        "usr/lib/os-release" => Some(3),
        "etc/lsb-release" => Some(2),
        "etc/alpine-release" | "etc/debian_version" | "etc/redhat-release" => Some(1),
        _ => None,
    }
}

pub(crate) fn parse(path: &str, text: &str) -> Option<Distro> {
    match path {
        "etc/os-release" | "usr/lib/os-release" => parse_os_release(text),
        "etc/lsb-release" => {
            let fields = key_values(text);
            let id = fields
                .iter()
                .find(|(k, _)| k == "DISTRIB_ID")?
                .1
                .to_ascii_lowercase();
            let version = fields
                .iter()
                .find(|(k, _)| k == "DISTRIB_RELEASE")?
                .1
                .clone();
            Some(distro(id, version))
        }
        "etc/alpine-release" => {
            let version = text.lines().next()?.trim();
            Some(distro("alpine".into(), version.to_owned()))
        }
        "etc/debian_version" => {
            // `12.4`, or `bookworm/sid` on testing, which has no number.
            let line = text.lines().next()?.trim();
            let version = if line.starts_with(|c: char| c.is_ascii_digit()) {
                line.split('.').next().unwrap_or(line).to_owned()
            } else {
                String::new()
            };
            Some(distro("debian".into(), version))
        }
        "etc/redhat-release" => {
            // `Red Hat Enterprise Linux release 8.9 (Ootpa)`, `CentOS Linux release 7.9.2009`.
            let line = text.lines().next()?;
            let id = if line.starts_with("CentOS") {
                "centos"
            } else if line.starts_with("Rocky") {
                "rocky"
            } else if line.starts_with("AlmaLinux") {
                "almalinux"
            } else if line.starts_with("Fedora") {
                "fedora"
            } else {
                "rhel"
            };
            let version = line
                .split_whitespace()
                .skip_while(|w| *w != "release")
                .nth(1)?
                .to_owned();
            Some(distro(id.into(), version))
        }
        _ => None,
    }
}

fn distro(id: String, version_id: String) -> Distro {
    Distro {
        id,
        version_id,
        codename: None,
        pretty_name: None,
    }
}

fn parse_os_release(text: &str) -> Option<Distro> {
    let fields = key_values(text);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let id = get("ID")?.to_ascii_lowercase();
    Some(Distro {
        id,
        version_id: get("VERSION_ID").unwrap_or_default(),
        codename: get("VERSION_CODENAME"),
        pretty_name: get("PRETTY_NAME"),
    })
}

/// `KEY=value` lines with optional single or double quotes (os-release(5): "Variable
/// assignment values must be enclosed in double or single quotes if they include spaces").
fn key_values(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.replace("\\\"", "\"")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relatives() {
        let d = parse(
            "etc/redhat-release",
            "CentOS Linux release 7.9.2009 (Core)\n",
        )
        .unwrap();
        assert_eq!(
            (d.id.as_str(), d.version_id.as_str()),
            ("centos", "7.9.2009")
        );
        let d = parse("etc/debian_version", "bookworm/sid\n").unwrap();
        assert_eq!(d.version_id, "");
        let d = parse(
            "etc/lsb-release",
            "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n",
        )
        .unwrap();
        assert_eq!(d.ecosystem_key().as_deref(), Some("ubuntu:22.04"));
    }
}
