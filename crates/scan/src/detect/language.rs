//! Installed language-package metadata, the files package managers leave behind (never lock
//! files: in an image, what is installed is what runs). Python core metadata
//! (packaging.python.org "Core metadata specifications"), npm `package.json` at a package
//! root, RubyGems `specifications/*.gemspec`, and Composer's `vendor/composer/installed.json`.

use crate::model::{Package, PackageKind};

use super::rfc822::stanzas;

/// What kind of language metadata a path is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LanguageFile {
    PythonMetadata,
    NpmPackageJson,
    Gemspec,
    ComposerInstalled,
}

pub(crate) fn classify(path: &str) -> Option<LanguageFile> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let parent = parent(path);
    let parent_name = parent.rsplit('/').next().unwrap_or(parent);
    if (file == "METADATA" && parent_name.ends_with(".dist-info"))
        || (file == "PKG-INFO" && (parent_name.ends_with(".egg-info") || parent_name == "EGG-INFO"))
        || (file.ends_with(".egg-info") && !path.ends_with('/'))
    {
        return Some(LanguageFile::PythonMetadata);
    }
    if file == "package.json" && is_npm_package_root(parent) {
        return Some(LanguageFile::NpmPackageJson);
    }
    if file.ends_with(".gemspec") && parent_name == "specifications" {
        return Some(LanguageFile::Gemspec);
    }
    if file == "installed.json" && parent.ends_with("vendor/composer") {
        return Some(LanguageFile::ComposerInstalled);
    }
    None
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// `…/node_modules/<name>` or `…/node_modules/@scope/<name>`: nested `package.json` files
/// inside a package (`node_modules/rxjs/ajax/package.json`) describe no package.
fn is_npm_package_root(dir: &str) -> bool {
    let mut parts = dir.rsplit('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some("node_modules"), _) => true,
        (Some(_), Some(scope), Some("node_modules")) => scope.starts_with('@'),
        _ => false,
    }
}

pub(crate) fn parse(kind: LanguageFile, path: &str, text: &str) -> Vec<Package> {
    match kind {
        LanguageFile::PythonMetadata => python(path, text).into_iter().collect(),
        LanguageFile::NpmPackageJson => npm(path, text).into_iter().collect(),
        LanguageFile::Gemspec => gem(path, text).into_iter().collect(),
        LanguageFile::ComposerInstalled => composer(path, text),
    }
}

fn python(path: &str, text: &str) -> Option<Package> {
    let header = stanzas(text, true).into_iter().next()?;
    let name = header.get("Name")?.trim();
    let version = header.get("Version")?.trim();
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let mut p = Package::new(PackageKind::Python, name, version, path);
    // Metadata 2.4 `License-Expression` is SPDX; older `License` is free text, often a whole
    // licence file, so only a short one is kept. Trove classifiers name licences too.
    if let Some(expr) = header.get("License-Expression") {
        p.licenses.push(expr.to_owned());
    } else if let Some(license) = header
        .get("License")
        .filter(|l| !l.contains('\n') && l.len() <= 64 && *l != "UNKNOWN")
    {
        p.licenses.push(license.to_owned());
    } else {
        p.licenses.extend(
            header
                .get_all("Classifier")
                .filter_map(|c| c.strip_prefix("License :: "))
                .map(|c| c.rsplit(" :: ").next().unwrap_or(c).to_owned()),
        );
    }
    Some(p)
}

fn npm(path: &str, text: &str) -> Option<Package> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let full_name = json.get("name")?.as_str()?;
    let version = json.get("version")?.as_str()?;
    if full_name.is_empty() || version.is_empty() {
        return None;
    }
    let (namespace, name) = match full_name.split_once('/') {
        Some((scope, name)) if scope.starts_with('@') => (Some(scope.to_owned()), name),
        _ => (None, full_name),
    };
    let mut p = Package::new(PackageKind::Npm, name, version, path);
    p.namespace = namespace;
    match json.get("license") {
        Some(serde_json::Value::String(l)) => p.licenses.push(l.clone()),
        Some(serde_json::Value::Object(o)) => {
            p.licenses
                .extend(o.get("type").and_then(|t| t.as_str()).map(str::to_owned));
        }
        _ => {}
    }
    if let Some(list) = json.get("licenses").and_then(|l| l.as_array()) {
        p.licenses.extend(
            list.iter()
                .filter_map(|l| l.get("type").and_then(|t| t.as_str()).map(str::to_owned)),
        );
    }
    Some(p)
}

/// A gemspec is Ruby code; RubyGems writes the installed ones in a fixed shape
/// (`s.name = "rake".freeze`), so a line match is enough, and no Ruby is run. The file name
/// `<name>-<version>.gemspec` is the fallback.
fn gem(path: &str, text: &str) -> Option<Package> {
    let assigned = |attr: &str| {
        text.lines().find_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("s.")
                .or_else(|| line.strip_prefix("spec."))?;
            let rest = rest.strip_prefix(attr)?.trim_start();
            let rest = rest.strip_prefix('=')?.trim();
            quoted(rest).map(str::to_owned)
        })
    };
    let mut name = assigned("name");
    let mut version = assigned("version");
    if name.is_none() || version.is_none() {
        let file = path.rsplit('/').next()?.strip_suffix(".gemspec")?;
        let (n, v) = file.rsplit_once('-')?;
        name.get_or_insert_with(|| n.to_owned());
        version.get_or_insert_with(|| v.to_owned());
    }
    let mut p = Package::new(PackageKind::Gem, &name?, &version?, path);
    if let Some(line) = text
        .lines()
        .find(|l| l.trim_start().starts_with("s.licenses"))
    {
        p.licenses
            .extend(line.split('"').skip(1).step_by(2).map(str::to_owned));
    }
    Some(p)
}

/// The first `"…"` or `'…'` string in `s`, or a `Gem::Version.new("…")` argument.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find(['"', '\''])?;
    let quote = s[start..].chars().next()?;
    let rest = &s[start + 1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

fn composer(path: &str, text: &str) -> Vec<Package> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    // Composer 1 writes an array; Composer 2 `{"packages": [...]}`.
    let list = match &json {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("packages").and_then(|p| p.as_array()) {
            Some(a) => a,
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    list.iter()
        .filter_map(|entry| {
            let name = entry.get("name")?.as_str()?;
            let version = entry.get("version")?.as_str()?;
            let mut p = Package::new(PackageKind::Composer, name, version, path);
            if let Some(licenses) = entry.get("license").and_then(|l| l.as_array()) {
                p.licenses.extend(
                    licenses
                        .iter()
                        .filter_map(|l| l.as_str().map(str::to_owned)),
                );
            }
            Some(p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use LanguageFile::*;
        let cases = [
            (
                "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO",
                Some(PythonMetadata),
            ),
            (
                "usr/local/lib/python3.11/site-packages/requests-2.19.1.dist-info/METADATA",
                Some(PythonMetadata),
            ),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
                Some(PythonMetadata),
            ),
            ("app/node_modules/lodash/package.json", Some(NpmPackageJson)),
            (
                "app/node_modules/@babel/core/package.json",
                Some(NpmPackageJson),
            ),
            ("app/node_modules/rxjs/ajax/package.json", None),
            ("app/package.json", None),
            (
                "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
                Some(Gemspec),
            ),
            (
                "app/vendor/composer/installed.json",
                Some(ComposerInstalled),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(classify(path), want, "{path}");
        }
    }

    #[test]
    fn gemspec_lines() {
        let text = "# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\n  s.licenses = [\"MIT\".freeze]\nend\n";
        let p = gem("specifications/rake-13.0.6.gemspec", text).unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("rake", "13.0.6"));
        assert_eq!(p.licenses, vec!["MIT"]);
    }

    #[test]
    fn composer_both_shapes() {
        let v2 = r#"{"packages":[{"name":"symfony/http-kernel","version":"v5.4.20","license":["MIT"]}]}"#;
        let v1 = r#"[{"name":"monolog/monolog","version":"1.0.0"}]"#;
        assert_eq!(composer("x", v2)[0].name, "symfony/http-kernel");
        assert_eq!(composer("x", v1)[0].version, "1.0.0");
    }
}
