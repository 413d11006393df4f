//! Java packages inside jar, war and ear archives, including archives nested in them (Spring
//! Boot's `BOOT-INF/lib/`, a war's `WEB-INF/lib/`).
//!
//! What an archive says about itself, strongest evidence first (scanning notes §1.3):
//!
//! 1. every `META-INF/maven/<groupId>/<artifactId>/pom.properties` is one package; a shaded
//!    ("uber") jar carries one per library folded into it;
//! 2. without any, the main section of `META-INF/MANIFEST.MF` (JAR File Specification,
//!    "Manifest Specification"): `Implementation-Title` and `Implementation-Version`, with
//!    `Implementation-Vendor-Id` as the group, or else the OSGi `Bundle-SymbolicName` and
//!    `Bundle-Version`;
//! 3. without either, the file name, `<artifactId>-<version>.jar`.
//!
//! Nested archives are read into memory and walked the same way, down to
//! [`JavaLimits::max_depth`]. Archives are attacker-controlled, so every cost is bounded
//! before it is paid: the central directory is walked one record at a time (the `zip` crate's
//! iterable reader, which keeps no per-entry index) after its declared entry count is checked
//! against [`JavaLimits::max_entries`]; an entry is only decompressed if its declared size fits
//! [`JavaLimits::max_entry_bytes`] and the remaining [`JavaLimits::max_total_bytes`] and its
//! declared compression ratio is plausible; and decompression stops at the declared size, so a
//! header that understates it is caught rather than believed. Peak memory is the input plus at
//! most `max_depth` nested archives of `max_entry_bytes` each. Exceeding any limit is an error,
//! never a partial answer presented as complete.

use std::io::{Cursor, Read};

use thiserror::Error;
use zip::ZipReadOptions;
use zip::read::Config;
use zip::unstable::read::ZipIterable;

/// One Java package found in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaPackage {
    /// The Maven groupId, when the evidence names one.
    pub group_id: Option<String>,
    pub artifact_id: String,
    pub version: String,
    /// The archive the evidence came from: the caller's path, followed by `!/<entry name>` for
    /// each level of nesting, e.g. `app.jar!/BOOT-INF/lib/x.jar`.
    pub path: String,
    pub evidence: JavaEvidence,
}

/// Where a [`JavaPackage`]'s coordinates were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JavaEvidence {
    /// `META-INF/maven/<g>/<a>/pom.properties`, written by Maven: exact coordinates.
    PomProperties,
    /// `META-INF/MANIFEST.MF` attributes: names may not be Maven artifact ids.
    Manifest,
    /// The archive's file name: a guess.
    FileName,
}

/// Bounds on the work one [`read_java_archive`] call may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaLimits {
    /// How many levels of archives inside archives are opened; the caller's archive is level
    /// 0, so the default 3 opens `a.jar!/b.jar!/c.jar!/d.jar` and refuses one level more.
    pub max_depth: u32,
    /// Central-directory records examined in total, across the archive and all nested ones.
    pub max_entries: usize,
    /// The largest decompressed size of a single entry that is read (metadata files and
    /// nested archives).
    pub max_entry_bytes: u64,
    /// Decompressed bytes read in total, across all levels.
    pub max_total_bytes: u64,
}

impl Default for JavaLimits {
    fn default() -> Self {
        Self {
            max_depth: 3,
            max_entries: 500_000,
            max_entry_bytes: 64 * 1024 * 1024,
            max_total_bytes: 512 * 1024 * 1024,
        }
    }
}

/// An entry whose declared size exceeds this many times its compressed size is treated as a
/// compression bomb. Jars hold already-compressed data (a deflated jar inside a jar shrinks
/// little), and Deflate cannot exceed about 1032:1, so 100:1 separates the two.
pub const MAX_COMPRESSION_RATIO: u64 = 100;
/// Entries up to this size are not ratio-checked: reading them is cheap whatever their ratio.
const RATIO_CHECK_FLOOR: u64 = 1024 * 1024;

/// Why an archive could not be read.
#[derive(Debug, Error)]
pub enum JavaError {
    /// The bytes are not a zip archive the `zip` crate can read.
    #[error("{path}: unreadable zip archive: {source}")]
    Zip {
        path: String,
        #[source]
        source: zip::result::ZipError,
    },
    /// Decompressing an entry failed (corrupt data, CRC mismatch, more data than declared).
    #[error("{path}: reading the entry failed: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The archives hold more central-directory records than [`JavaLimits::max_entries`].
    #[error("{path}: {declared} more entries would exceed the limit of {limit} in total")]
    TooManyEntries {
        path: String,
        declared: usize,
        limit: usize,
    },
    /// An entry declares more than [`JavaLimits::max_entry_bytes`].
    #[error("{path}: declared size {declared} exceeds the {limit}-byte entry limit")]
    EntryTooLarge {
        path: String,
        declared: u64,
        limit: u64,
    },
    /// Reading an entry would exceed [`JavaLimits::max_total_bytes`].
    #[error("{path}: reading {declared} more bytes would exceed the {limit}-byte total limit")]
    TotalBytesExceeded {
        path: String,
        declared: u64,
        limit: u64,
    },
    /// An entry's declared size is implausibly large for its compressed size.
    #[error("{path}: {uncompressed} bytes from {compressed} compressed exceeds ratio {limit}:1")]
    CompressionRatio {
        path: String,
        uncompressed: u64,
        compressed: u64,
        limit: u64,
    },
    /// An entry decompressed to fewer bytes than its header declared.
    #[error("{path}: declared {declared} bytes but holds {actual}")]
    SizeMismatch {
        path: String,
        declared: u64,
        actual: u64,
    },
    /// A nested archive sits deeper than [`JavaLimits::max_depth`].
    #[error("{path}: nested archive deeper than the limit of {max_depth} levels")]
    TooDeep { path: String, max_depth: u32 },
}

/// Finds the packages in a jar, war or ear archive held in `bytes`, and in the archives
/// nested in it. `path` names the archive in the results and errors.
///
/// Packages of an archive come before those of the archives nested in it, each in archive
/// order.
pub fn read_java_archive(
    bytes: &[u8],
    path: &str,
    limits: &JavaLimits,
) -> Result<Vec<JavaPackage>, JavaError> {
    Walk {
        limits,
        entries_seen: 0,
        bytes_read: 0,
    }
    .archive(bytes, path, 0)
}

/// The budget shared by all levels of one call.
struct Walk<'l> {
    limits: &'l JavaLimits,
    entries_seen: usize,
    bytes_read: u64,
}

/// What an entry is to this reader, by name.
enum EntryRole {
    PomProperties {
        group_id: String,
        artifact_id: String,
    },
    Manifest,
    NestedArchive,
}

/// The extensions of nested archives that are opened (`.par` is the old EJB archive).
const ARCHIVE_EXTENSIONS: [&str; 4] = [".jar", ".war", ".ear", ".par"];

impl Walk<'_> {
    fn archive(
        &mut self,
        bytes: &[u8],
        path: &str,
        depth: u32,
    ) -> Result<Vec<JavaPackage>, JavaError> {
        let zip_error = |source| JavaError::Zip {
            path: path.to_owned(),
            source,
        };
        let mut archive =
            ZipIterable::try_new(Cursor::new(bytes), Config::default()).map_err(zip_error)?;
        self.count_entries(archive.len(), path)?;
        let mut body = Cursor::new(bytes);
        let mut from_poms = Vec::new();
        let mut manifest = None;
        let mut nested = Vec::new();
        for entry in archive.files().map_err(zip_error)? {
            let entry = entry.map_err(zip_error)?;
            let Some(role) = entry_role(entry.name_raw()) else {
                continue;
            };
            let entry_path = format!("{path}!/{}", String::from_utf8_lossy(entry.name_raw()));
            if matches!(role, EntryRole::NestedArchive) && depth >= self.limits.max_depth {
                return Err(JavaError::TooDeep {
                    path: entry_path,
                    max_depth: self.limits.max_depth,
                });
            }
            let data = self.read_entry(entry, &mut body, &entry_path)?;
            match role {
                EntryRole::PomProperties {
                    group_id,
                    artifact_id,
                } => from_poms.extend(pom_package(&data, group_id, artifact_id, path)),
                EntryRole::Manifest => {
                    manifest.get_or_insert_with(|| manifest_main_section(&data));
                }
                EntryRole::NestedArchive => {
                    nested.extend(self.archive(&data, &entry_path, depth + 1)?);
                }
            }
        }
        let mut packages = if from_poms.is_empty() {
            manifest
                .and_then(|attributes| manifest_package(&attributes, path))
                .or_else(|| file_name_package(path))
                .into_iter()
                .collect()
        } else {
            from_poms
        };
        packages.extend(nested);
        Ok(packages)
    }

    fn count_entries(&mut self, declared: usize, path: &str) -> Result<(), JavaError> {
        let limit = self.limits.max_entries;
        match self.entries_seen.checked_add(declared) {
            Some(total) if total <= limit => {
                self.entries_seen = total;
                Ok(())
            }
            _ => Err(JavaError::TooManyEntries {
                path: path.to_owned(),
                declared,
                limit,
            }),
        }
    }

    /// Decompresses one entry after checking its declared sizes against the limits.
    fn read_entry(
        &mut self,
        entry: zip::read::ZipFileEntry<'_>,
        body: &mut Cursor<&[u8]>,
        entry_path: &str,
    ) -> Result<Vec<u8>, JavaError> {
        let declared = entry.size();
        let compressed = entry.compressed_size();
        self.check_declared_size(declared, compressed, entry_path)?;
        let mut file = entry
            .with_reader(body, ZipReadOptions::new())
            .map_err(|source| JavaError::Zip {
                path: entry_path.to_owned(),
                source,
            })?;
        let mut data = Vec::new();
        (&mut file)
            .take(declared.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|source| JavaError::Read {
                path: entry_path.to_owned(),
                source,
            })?;
        let actual = data.len() as u64;
        if actual != declared {
            return Err(JavaError::SizeMismatch {
                path: entry_path.to_owned(),
                declared,
                actual,
            });
        }
        self.bytes_read += actual;
        Ok(data)
    }

    fn check_declared_size(
        &self,
        declared: u64,
        compressed: u64,
        entry_path: &str,
    ) -> Result<(), JavaError> {
        let limits = self.limits;
        if declared > limits.max_entry_bytes {
            return Err(JavaError::EntryTooLarge {
                path: entry_path.to_owned(),
                declared,
                limit: limits.max_entry_bytes,
            });
        }
        if declared > limits.max_total_bytes.saturating_sub(self.bytes_read) {
            return Err(JavaError::TotalBytesExceeded {
                path: entry_path.to_owned(),
                declared,
                limit: limits.max_total_bytes,
            });
        }
        if declared > RATIO_CHECK_FLOOR && declared / compressed.max(1) > MAX_COMPRESSION_RATIO {
            return Err(JavaError::CompressionRatio {
                path: entry_path.to_owned(),
                uncompressed: declared,
                compressed,
                limit: MAX_COMPRESSION_RATIO,
            });
        }
        Ok(())
    }
}

/// Classifies an entry by its name. `META-INF` is matched case-insensitively, as the JDK's
/// `JarFile` does.
fn entry_role(name: &[u8]) -> Option<EntryRole> {
    if name.ends_with(b"/") {
        return None;
    }
    if name.eq_ignore_ascii_case(b"META-INF/MANIFEST.MF") {
        return Some(EntryRole::Manifest);
    }
    let parts: Vec<&[u8]> = name.splitn(6, |byte| *byte == b'/').collect();
    if let [meta_inf, b"maven", group_id, artifact_id, b"pom.properties"] = parts[..]
        && meta_inf.eq_ignore_ascii_case(b"META-INF")
        && !group_id.is_empty()
        && !artifact_id.is_empty()
    {
        return Some(EntryRole::PomProperties {
            group_id: String::from_utf8_lossy(group_id).into_owned(),
            artifact_id: String::from_utf8_lossy(artifact_id).into_owned(),
        });
    }
    archive_extension(name)
        .filter(|extension| name.len() > extension.len())
        .map(|_| EntryRole::NestedArchive)
}

/// The archive extension `name` ends with, compared ASCII-case-insensitively.
fn archive_extension(name: &[u8]) -> Option<&'static str> {
    ARCHIVE_EXTENSIONS.into_iter().find(|extension| {
        name.len() >= extension.len()
            && name[name.len() - extension.len()..].eq_ignore_ascii_case(extension.as_bytes())
    })
}

/// A package from a pom.properties file. The file's own `groupId`/`artifactId` win over the
/// folder names; a file without a `version` describes no package.
fn pom_package(
    data: &[u8],
    folder_group_id: String,
    folder_artifact_id: String,
    path: &str,
) -> Option<JavaPackage> {
    let properties = parse_properties(data);
    let get = |key: &str| {
        properties
            .iter()
            .rev()
            .find(|(name, value)| name == key && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    Some(JavaPackage {
        version: get("version")?,
        group_id: Some(get("groupId").unwrap_or(folder_group_id)),
        artifact_id: get("artifactId").unwrap_or(folder_artifact_id),
        path: path.to_owned(),
        evidence: JavaEvidence::PomProperties,
    })
}

/// Parses a `java.util.Properties` file (ISO-8859-1, as `Properties.load(InputStream)` reads
/// it): `#`/`!` comments, `key=value`, `key: value` or `key value`, backslash line
/// continuations and escapes including `\uXXXX`. Later duplicates come later in the list.
fn parse_properties(data: &[u8]) -> Vec<(String, String)> {
    logical_lines(data)
        .iter()
        .map(|line| split_property(line))
        .collect()
}

/// Joins natural lines into logical lines in one pass, dropping comments, blank lines and
/// leading whitespace. A line continues onto the next when it ends in an odd number of
/// backslashes; the continuation's leading whitespace is dropped and it is never a comment.
fn logical_lines(data: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut skipping_blanks = true;
    let mut at_line_start = true;
    let mut in_comment = false;
    let mut escaped = false;
    let mut previous_was_cr = false;
    for c in data.iter().map(|byte| char::from(*byte)) {
        let after_cr = std::mem::replace(&mut previous_was_cr, c == '\r');
        if c == '\n' || c == '\r' {
            if c == '\n' && after_cr {
                continue;
            }
            if escaped && !in_comment {
                current.pop();
                escaped = false;
            } else {
                if !in_comment && !current.is_empty() {
                    lines.push(std::mem::take(&mut current));
                }
                at_line_start = true;
                in_comment = false;
            }
            skipping_blanks = true;
            continue;
        }
        if in_comment || (skipping_blanks && is_properties_blank(c)) {
            continue;
        }
        if at_line_start && (c == '#' || c == '!') {
            in_comment = true;
            continue;
        }
        skipping_blanks = false;
        at_line_start = false;
        escaped = c == '\\' && !escaped;
        current.push(c);
    }
    if escaped {
        current.pop();
    }
    if !in_comment && !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn is_properties_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Splits a logical line into its unescaped key and value.
fn split_property(line: &str) -> (String, String) {
    let mut key_end = line.len();
    let mut escaped = false;
    for (index, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_properties_blank(c) {
            key_end = index;
            break;
        }
    }
    let (key, rest) = line.split_at(key_end);
    let rest = rest.trim_start_matches(is_properties_blank);
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
    let value = rest.trim_start_matches(is_properties_blank);
    (unescape_property(key), unescape_property(value))
}

fn unescape_property(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The attributes of a manifest's main section, the headers before the first blank line
/// (JAR File Specification: `name: value`, lines continued by a leading single space).
fn manifest_main_section(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    let mut attributes: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").flat_map(|line| line.split(['\n', '\r'])) {
        if line.is_empty() {
            break;
        }
        if let Some(continuation) = line.strip_prefix(' ') {
            if let Some((_, value)) = attributes.last_mut() {
                value.push_str(continuation);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            attributes.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    for (_, value) in &mut attributes {
        *value = value.trim().to_owned();
    }
    attributes
}

/// A package from manifest attributes. An `Implementation-Title` containing whitespace is a
/// display name ("Apache Log4j API"), not an artifact id, so the bundle name is preferred
/// then. The group is only taken from `Implementation-Vendor-Id` alongside the title; a
/// bundle symbolic name is already a fully qualified id.
fn manifest_package(attributes: &[(String, String)], path: &str) -> Option<JavaPackage> {
    let get = |key: &str| {
        attributes
            .iter()
            .find(|(name, value)| name.eq_ignore_ascii_case(key) && !value.is_empty())
            .map(|(_, value)| value.as_str())
    };
    let package = |group_id: Option<&str>, artifact_id: &str, version: &str| JavaPackage {
        group_id: group_id.map(str::to_owned),
        artifact_id: artifact_id.to_owned(),
        version: version.to_owned(),
        path: path.to_owned(),
        evidence: JavaEvidence::Manifest,
    };
    if let (Some(title), Some(version)) =
        (get("Implementation-Title"), get("Implementation-Version"))
        && !title.contains(char::is_whitespace)
    {
        return Some(package(get("Implementation-Vendor-Id"), title, version));
    }
    let (Some(symbolic_name), Some(version)) = (get("Bundle-SymbolicName"), get("Bundle-Version"))
    else {
        return None;
    };
    // "Bundle-SymbolicName: org.example.bundle;singleton:=true": directives follow a ';'.
    let name = symbolic_name.split(';').next().unwrap_or_default().trim();
    (!name.is_empty()).then(|| package(None, name, version))
}

/// A package from a file name `<artifactId>-<version>.<ext>`. The version starts at the last
/// `-`-separated part that begins with a digit and contains a dot (`log4j-1.2-api-2.19.0`,
/// `guava-31.1-jre`), or else at the last part that begins with a digit (`asm-9`).
fn file_name_package(path: &str) -> Option<JavaPackage> {
    let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let extension = archive_extension(file_name.as_bytes())?;
    let stem = file_name.get(..file_name.len() - extension.len())?;
    let parts: Vec<&str> = stem.split('-').collect();
    let starts_with_digit = |part: &&str| part.starts_with(|c: char| c.is_ascii_digit());
    let version_starts = |dotted: bool| {
        (1..parts.len()).rev().find(|index| {
            starts_with_digit(&parts[*index]) && (!dotted || parts[*index].contains('.'))
        })
    };
    let split = version_starts(true).or_else(|| version_starts(false))?;
    Some(JavaPackage {
        group_id: None,
        artifact_id: parts[..split].join("-"),
        version: parts[split..].join("-"),
        path: path.to_owned(),
        evidence: JavaEvidence::FileName,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_split_at_the_version() {
        let cases = [
            ("guava-31.1-jre.jar", Some(("guava", "31.1-jre"))),
            (
                "log4j-1.2-api-2.19.0.jar",
                Some(("log4j-1.2-api", "2.19.0")),
            ),
            ("foo-2.0-SNAPSHOT.jar", Some(("foo", "2.0-SNAPSHOT"))),
            ("foo-1.0-rc-1.jar", Some(("foo", "1.0-rc-1"))),
            ("bcprov-jdk15on-1.70.jar", Some(("bcprov-jdk15on", "1.70"))),
            ("asm-9.jar", Some(("asm", "9"))),
            ("lib/App-1.2.3.WAR", Some(("App", "1.2.3"))),
            ("commons-text.jar", None),
            ("1.2.3.jar", None),
            ("notes-1.0.txt", None),
        ];
        for (name, expected) in cases {
            let found = file_name_package(name);
            let found = found
                .as_ref()
                .map(|package| (package.artifact_id.as_str(), package.version.as_str()));
            assert_eq!(found, expected, "{name}");
        }
    }

    #[test]
    fn properties_follow_java_rules() {
        let text = b"# comment\n! also comment\n  key1 = value one\nkey2:v2\nkey3 v3\n\
                      multi = a\\\n    b\\\\\nkey\\=with\\ escapes=\\u00e9\\t\nempty\n";
        let parsed = parse_properties(text);
        let expected = [
            ("key1", "value one"),
            ("key2", "v2"),
            ("key3", "v3"),
            ("multi", "ab\\"),
            ("key=with escapes", "é\t"),
            ("empty", ""),
        ];
        let parsed: Vec<(&str, &str)> = parsed
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn properties_continuations_comments_and_line_ends() {
        let parsed =
            parse_properties(b"# comment \\\r\nnot=continued\r\na=1\\\r\n  # not a comment\rb=2\\");
        let expected = vec![
            ("not".to_owned(), "continued".to_owned()),
            ("a".to_owned(), "1# not a comment".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        assert_eq!(parsed, expected);
        // Long runs of continued backslashes are joined in linear time.
        let joined = parse_properties(&b"k=\\\\\\\n".repeat(200_000));
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].1, format!("\\{}", "k=\\".repeat(199_999)));
    }

    #[test]
    fn manifest_main_section_joins_continuations_and_stops_at_blank_line() {
        let text = b"Manifest-Version: 1.0\r\nBundle-SymbolicName: org.example.very.lo\r\n ng.name;singleton:=true\r\nBundle-Version: 1.2.3 \r\n\r\nName: x\r\nBundle-Version: 9\r\n";
        let attributes = manifest_main_section(text);
        assert_eq!(attributes.len(), 3);
        let package = manifest_package(&attributes, "x.jar").unwrap();
        assert_eq!(package.artifact_id, "org.example.very.long.name");
        assert_eq!(package.version, "1.2.3");
        assert_eq!(package.group_id, None);
    }
}
