//! Debian package versions (Debian and Ubuntu).
//!
//! Authority: Debian Policy 5.6.12 and `deb-version(7)`, as `dpkg --compare-versions`
//! implements them (dpkg `lib/dpkg/version.c` and `parseversion`). The format is
//! `[epoch:]upstream_version[-debian_revision]`.
//!
//! - The epoch is a decimal number before the first `:`; missing means 0.
//! - The revision is what follows the **last** `-`; missing means the empty string, which
//!   compares equal to `0`.
//! - Upstream and revision compare with the same algorithm. Policy 5.6.12: "The strings are
//!   compared from left to right. First the initial part of each string consisting entirely
//!   of non-digit characters is determined. These two parts (one of which may be empty) are
//!   compared lexically. [...] The lexical comparison is a comparison of ASCII values modified
//!   so that all the letters sort earlier than all the non-letters and so that a tilde sorts
//!   before anything, even the end of a part. [...] Then the initial part of the remainder of
//!   each string which consists entirely of digit characters is determined. The numerical
//!   values of these two parts are compared [...]".
//!
//! Like `dpkg --compare-versions`, parsing refuses what dpkg treats as an error (empty parts,
//! a bad epoch, embedded blanks) and accepts what dpkg only warns about (a first character that
//! is not a digit, characters outside the allowed set): those still compare. Bytes above 0x7f
//! rank as dpkg ranks them on x86-64, where `char` is signed: between letters and ASCII
//! punctuation (dpkg built with an unsigned `char`, as on arm64, ranks them after ASCII
//! punctuation instead).

use std::cmp::Ordering;

use super::{Numeral, Scheme, VersionError, digit_run};

/// A parsed dpkg version.
#[derive(Debug, Clone)]
pub struct DpkgVersion {
    epoch: u32,
    upstream: DpkgString,
    revision: DpkgString,
}

impl DpkgVersion {
    pub fn parse(input: &str) -> Result<DpkgVersion, VersionError> {
        let invalid = |offset, reason| VersionError::invalid(Scheme::Dpkg, input, offset, reason);
        // dpkg trims blanks (space and tab) and refuses blanks inside.
        let lead = input.len() - input.trim_start_matches([' ', '\t']).len();
        let text = input.trim_matches([' ', '\t']);
        if text.is_empty() {
            return Err(VersionError::Empty {
                scheme: Scheme::Dpkg.name(),
            });
        }
        if let Some(at) = text.find([' ', '\t']) {
            return Err(invalid(lead + at, "version string has embedded spaces"));
        }
        let (epoch, rest, rest_at) = match text.split_once(':') {
            Some((epoch, rest)) => {
                let epoch = parse_epoch(epoch).map_err(|reason| invalid(lead, reason))?;
                if rest.is_empty() {
                    return Err(invalid(
                        lead + text.len(),
                        "nothing after colon in version number",
                    ));
                }
                (epoch, rest, lead + text.len() - rest.len())
            }
            None => (0, text, lead),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(invalid(rest_at + rest.len(), "revision number is empty")),
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(invalid(rest_at, "upstream version is empty"));
        }
        Ok(DpkgVersion {
            epoch,
            upstream: DpkgString::parse(upstream),
            revision: DpkgString::parse(revision),
        })
    }
}

/// dpkg reads the epoch with `strtol` and refuses an empty, non-numeric, negative or
/// larger-than-`INT_MAX` epoch.
fn parse_epoch(text: &str) -> Result<u32, &'static str> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() {
        return Err("epoch in version is empty");
    }
    if digit_run(digits.as_bytes()) != digits.len() {
        return Err("epoch in version is not number");
    }
    let value = Numeral::from_digits(digits);
    if negative && !value.is_zero() {
        return Err("epoch in version is negative");
    }
    match value.to_u64() {
        Some(v) if v <= i32::MAX as u64 => Ok(v as u32),
        _ => Err("epoch in version is too big"),
    }
}

/// An upstream version or revision, cut into alternating runs: each chunk is a run of
/// non-digits (kept as their sort weights) followed by a run of digits (kept as a number).
#[derive(Debug, Clone)]
struct DpkgString(Vec<Chunk>);

#[derive(Debug, Clone)]
struct Chunk {
    text: Vec<i16>,
    number: Numeral,
}

impl DpkgString {
    fn parse(s: &str) -> DpkgString {
        let mut chunks = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let (text, tail) = rest.split_at(
                rest.find(|c: char| c.is_ascii_digit())
                    .unwrap_or(rest.len()),
            );
            let (digits, tail) = tail.split_at(digit_run(tail.as_bytes()));
            chunks.push(Chunk {
                text: text.bytes().map(weight).collect(),
                number: Numeral::from_digits(digits),
            });
            rest = tail;
        }
        DpkgString(chunks)
    }
}

/// dpkg's `order()`: `~` before everything (even the end of the string, which weighs 0),
/// then letters by ASCII value, then every other byte at its value plus 256. dpkg passes a
/// signed `char`, so bytes above 0x7f come out as their unsigned value (128..=255).
fn weight(b: u8) -> i16 {
    match b {
        b'~' => -1,
        b if b.is_ascii_alphabetic() => i16::from(b),
        b if b >= 0x80 => i16::from(b),
        b => i16::from(b) + 256,
    }
}

impl Ord for DpkgString {
    fn cmp(&self, other: &Self) -> Ordering {
        let empty = Chunk {
            text: Vec::new(),
            number: Numeral::default(),
        };
        let len = self.0.len().max(other.0.len());
        for i in 0..len {
            let a = self.0.get(i).unwrap_or(&empty);
            let b = other.0.get(i).unwrap_or(&empty);
            // The shorter non-digit run continues with weight 0: the end of the run.
            let text_len = a.text.len().max(b.text.len());
            for j in 0..text_len {
                let wa = a.text.get(j).copied().unwrap_or(0);
                let wb = b.text.get(j).copied().unwrap_or(0);
                if wa != wb {
                    return wa.cmp(&wb);
                }
            }
            match a.number.cmp(&b.number) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for DpkgString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgString {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgString {}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.upstream.cmp(&other.upstream))
            .then_with(|| self.revision.cmp(&other.revision))
    }
}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}
