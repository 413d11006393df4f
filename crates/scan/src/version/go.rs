//! Go module and toolchain versions.
//!
//! Authority: `golang.org/x/mod/semver` (`semver.go`) and `golang.org/x/mod/module`
//! (`pseudo.go`). A version is `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`: the shorthands
//! `v1` and `v1.2` mean `v1.0.0` and `v1.2.0` and take no pre-release or build; numbers and
//! numeric pre-release identifiers have no leading zeros; identifiers are non-empty
//! `[0-9A-Za-z-]`. Precedence is SemVer's (`semver.rs`), so build metadata such as
//! `+incompatible` does not take part, and a pseudo-version
//! `vX.Y.Z-0.yyyymmddhhmmss-abcdefabcdef` (or `vX.Y.(Z+1)-0.…`) sorts as the pre-release it
//! is: after `vX.Y.Z` and before `vX.Y.(Z+1)`.
//!
//! Two other spellings are accepted because the data uses them: OSV's Go records drop the
//! `v` (`introduced: "1.19.0-0"`), and the Go toolchain names itself `go1.21.0`,
//! `go1.21rc2`, `go1.9beta1` (see [`go_toolchain_to_semver`]). x/mod orders invalid strings
//! below valid ones; here they are an error, so callers see bad data instead of a silent
//! "oldest version".

use super::semver::{Identifier, SemverVersion, is_identifier_list};
use super::{Numeral, Scheme, VersionError, digit_run};

/// A parsed Go module or toolchain version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion(SemverVersion);

impl GoVersion {
    pub fn parse(input: &str) -> Result<GoVersion, VersionError> {
        let canonical;
        // `shift`: where `text` starts in `input`, for error offsets.
        let (text, shift) = if input.starts_with("go") {
            canonical = go_toolchain_to_semver(input).ok_or_else(|| {
                VersionError::invalid(Scheme::Go, input, 0, "not a Go toolchain version")
            })?;
            (canonical.strip_prefix('v').unwrap_or(&canonical), 0)
        } else if let Some(rest) = input.strip_prefix('v') {
            (rest, 1)
        } else {
            (input, 0)
        };
        let invalid = |offset: usize, reason| {
            VersionError::invalid(Scheme::Go, input, offset + shift, reason)
        };
        let (text, build) = match text.split_once('+') {
            Some((text, build)) => (text, Some(build)),
            None => (text, None),
        };
        let (core_text, pre_text) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let numbers: Vec<&str> = core_text.split('.').collect();
        if numbers.len() > 3 {
            return Err(invalid(0, "more than three version numbers"));
        }
        if numbers.len() < 3 && (pre_text.is_some() || build.is_some()) {
            return Err(invalid(
                core_text.len(),
                "vMAJOR and vMAJOR.MINOR take no suffix",
            ));
        }
        let mut core = Vec::with_capacity(3);
        for number in &numbers {
            if !is_canonical_number(number) {
                return Err(invalid(
                    0,
                    "version numbers are digits without leading zeros",
                ));
            }
            core.push(Numeral::from_digits(number));
        }
        core.resize(3, Numeral::default());
        let pre = match pre_text {
            Some(pre) if !is_identifier_list(pre) => {
                return Err(invalid(
                    core_text.len() + 1,
                    "invalid pre-release identifier",
                ));
            }
            Some(pre) if pre.split('.').any(is_bad_numeric_identifier) => {
                return Err(invalid(
                    core_text.len() + 1,
                    "numeric pre-release identifier with a leading zero",
                ));
            }
            Some(pre) => pre.split('.').map(Identifier::new).collect(),
            None => Vec::new(),
        };
        if build.is_some_and(|build| !is_identifier_list(build)) {
            return Err(invalid(text.len() + 1, "invalid build metadata"));
        }
        Ok(GoVersion(SemverVersion::from_parts(core, pre)))
    }
}

fn is_canonical_number(text: &str) -> bool {
    !text.is_empty()
        && digit_run(text.as_bytes()) == text.len()
        && (text == "0" || !text.starts_with('0'))
}

fn is_bad_numeric_identifier(id: &str) -> bool {
    id.len() > 1 && id.starts_with('0') && digit_run(id.as_bytes()) == id.len()
}

/// Converts a Go toolchain name to a semantic version the way the Go vulnerability database
/// does: `go1` → `v1.0.0`, `go1.20` → `v1.20.0`, `go1.21.0` → `v1.21.0`, `go1.21rc2` →
/// `v1.21.0-rc.2`, `go1.9beta1` → `v1.9.0-beta.1`, `go1.9.2rc2` → `v1.9.2-rc.2`. A build's
/// experiment note (`go1.22.1 X:loopvar`) is dropped. `None` for anything else, including
/// vendor suffixes such as `go1.21.0-bigcorp`.
pub fn go_toolchain_to_semver(name: &str) -> Option<String> {
    let name = name.split_once(' ').map_or(name, |(name, _)| name);
    let rest = name.strip_prefix("go")?;
    let (numbers, pre) = match rest.find(|c: char| c.is_ascii_lowercase()) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let numbers: Vec<&str> = numbers.split('.').collect();
    if numbers.len() > 3 || !numbers.iter().all(|n| is_canonical_number(n)) {
        return None;
    }
    let number = |i: usize| numbers.get(i).copied().unwrap_or("0");
    let mut semver = format!("v{}.{}.{}", number(0), number(1), number(2));
    if !pre.is_empty() {
        let (kind, n) = match pre.strip_prefix("beta") {
            Some(n) => ("beta", n),
            None => ("rc", pre.strip_prefix("rc")?),
        };
        if !is_canonical_number(n) {
            return None;
        }
        semver.push_str(&format!("-{kind}.{n}"));
    }
    Some(semver)
}
