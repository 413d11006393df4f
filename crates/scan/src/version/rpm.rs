//! RPM package versions (RHEL, Fedora, CentOS, Rocky, Alma, Amazon Linux, SUSE, Mariner).
//!
//! Authority: rpm `rpmio/rpmvercmp.cc` (segment comparison) and `lib/rpmver.cc`
//! (`rpmverParse`, `rpmverCmp`: how an `[epoch:]version[-release]` string splits and which
//! part decides), the pair behind `rpm --eval '%{lua: print(rpm.vercmp(a, b))}'`.
//!
//! Splitting (`parseEVR`): the epoch is the run of digits at the start when a `:` follows it
//! (an empty run means 0); a missing epoch compares as 0. The release is what follows the
//! **last** `-`; a version without a release sorts before the same version with any release
//! (`1 < 1-0`, `1 < 1-`).
//!
//! `rpmvercmp` walks both strings segment by segment: separators (anything not an ASCII
//! letter or digit, other than `~` and `^`) are skipped; `~` sorts before everything, even
//! the end of the string (`1.0~rc1 < 1.0`); `^` sorts after the end of the string but before
//! any other segment (`1.0 < 1.0^git1 < 1.0.1`); a numeric segment beats an alphabetic one;
//! numbers compare by value (leading zeros stripped, so any length works); letters compare
//! bytewise. When one string runs out, the one with segments left is newer.

use std::cmp::Ordering;

use super::{Numeral, VersionError, compare_digits, digit_run};

/// A parsed RPM EVR.
#[derive(Debug, Clone)]
pub struct RpmVersion {
    epoch: Numeral,
    version: Box<str>,
    release: Option<Box<str>>,
}

impl RpmVersion {
    /// Splits `[epoch:]version[-release]`. Never fails beyond the generic checks of
    /// `Version::parse`: rpm compares any non-empty string.
    pub fn parse(input: &str) -> Result<RpmVersion, VersionError> {
        let digits = digit_run(input.as_bytes());
        let (epoch_text, after) = input.split_at(digits);
        let (epoch, rest) = match after.strip_prefix(':') {
            Some(rest) => (Numeral::from_digits(epoch_text), rest),
            None => (Numeral::default(), input),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((version, release)) => (version, Some(release.into())),
            None => (rest, None),
        };
        Ok(RpmVersion {
            epoch,
            version: version.into(),
            release,
        })
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(self.version.as_bytes(), other.version.as_bytes()))
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a.as_bytes(), b.as_bytes()),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

fn is_separator(b: u8) -> bool {
    !b.is_ascii_alphanumeric() && b != b'~' && b != b'^'
}

/// rpm's segment comparison of two version (or release) strings.
fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a, b);
    loop {
        a = skip_separators(a);
        b = skip_separators(b);
        match (a.first(), b.first()) {
            // "handle the tilde separator, it sorts before everything else"
            (Some(b'~'), Some(b'~')) => {
                a = a.get(1..).unwrap_or_default();
                b = b.get(1..).unwrap_or_default();
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            // "if one of the strings ends (base version), the other is considered as higher
            // version"; otherwise the caret sorts before any other segment.
            (Some(b'^'), Some(b'^')) => {
                a = a.get(1..).unwrap_or_default();
                b = b.get(1..).unwrap_or_default();
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), Some(_)) => return Ordering::Less,
            (Some(_), Some(b'^')) => return Ordering::Greater,
            (None, _) | (_, None) => break,
            (Some(first), Some(_)) => {
                let numeric = first.is_ascii_digit();
                let (seg_a, rest_a) = split_segment(a, numeric);
                let (seg_b, rest_b) = split_segment(b, numeric);
                if seg_b.is_empty() {
                    // "numeric segments are always newer than alpha segments"
                    return if numeric {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    };
                }
                let order = if numeric {
                    compare_digits(seg_a, seg_b)
                } else {
                    seg_a.cmp(seg_b)
                };
                if order != Ordering::Equal {
                    return order;
                }
                a = rest_a;
                b = rest_b;
            }
        }
    }
    // "whichever version still has characters left over wins"
    a.is_empty().cmp(&b.is_empty()).reverse()
}

fn skip_separators(s: &[u8]) -> &[u8] {
    let skip = s.iter().take_while(|&&c| is_separator(c)).count();
    s.get(skip..).unwrap_or_default()
}

/// Splits off the leading run of digits (`numeric`) or ASCII letters.
fn split_segment(s: &[u8], numeric: bool) -> (&[u8], &[u8]) {
    let len = if numeric {
        digit_run(s)
    } else {
        s.iter().take_while(|c| c.is_ascii_alphabetic()).count()
    };
    s.split_at(len)
}
