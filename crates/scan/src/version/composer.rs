//! Packagist (Composer) versions.
//!
//! Authority: PHP's `version_compare()` (php-src `ext/standard/versioning.c`), which
//! Composer's `Comparator` and `Constraint` call on version strings. Composer strips a
//! leading `v` (`v1.2.3` is `1.2.3`), and so does this module, when a digit follows it.
//!
//! `php_canonicalize_version` rewrites the string: `-`, `_` and `+` become `.`; a `.` is
//! inserted wherever a digit meets a non-digit; other characters that are not letters or
//! digits become `.`; a run of dots collapses. (A string starting with `#` is left as it
//! is.) The result splits on `.` into parts, compared left to right:
//!
//! - two numbers compare by value;
//! - two words compare by their "special form", the first listed prefix they start with:
//!   `dev` < `alpha` = `a` < `beta` = `b` < `RC` = `rc` < `#` < `pl` = `p`, and any
//!   other word below `dev` (so `1.0-foo = 1.0-xyz`, and `1.0-bar = 1.0-beta`); the
//!   stability suffixes thus order `dev < alpha < beta < RC < (release) < patch`;
//! - a number against a word counts as `#`, so `1.0 > 1.0rc1` and `1.0 < 1.0pl1`;
//! - when one side runs out, its missing parts count as `#` too, so a number left on the
//!   longer side wins (`1.0.0 > 1.0`) and a pre-release word loses (`1.0rc1 < 1.0`).
//!
//! Three deliberate differences from PHP, all on strings no release uses, keep the order
//! total where PHP's is not: numbers compare exactly at any length (PHP's `strtol`
//! saturates at `i64::MAX`); empty parts (from a leading or trailing separator) rank as
//! unknown words in every position (PHP says both `1.a < 1.` and `1. < 1.a`); and a literal
//! `#` part ranks just below every number instead of equal to each (PHP has `# = 1` and
//! `# = 2`).

use std::cmp::Ordering;

use super::{Numeral, VersionError, digit_run};

/// A parsed Composer version: its canonical parts.
#[derive(Debug, Clone)]
pub struct ComposerVersion {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Form(i8);

/// `#`: what a number counts as against a word, and what a missing part counts as.
const NUMBER_FORM: Form = Form(4);

#[derive(Debug, Clone)]
enum Part {
    Number(Numeral),
    Word(Form),
}

impl ComposerVersion {
    /// Never fails beyond the generic checks of `Version::parse`: PHP orders any string.
    pub fn parse(input: &str) -> Result<ComposerVersion, VersionError> {
        let text = match input.strip_prefix(['v', 'V']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => input,
        };
        let canonical = if text.starts_with('#') {
            text.as_bytes().to_vec()
        } else {
            canonicalize(text.as_bytes())
        };
        let parts = canonical.split(|&b| b == b'.').map(Part::new).collect();
        Ok(ComposerVersion { parts })
    }
}

impl Part {
    fn new(segment: &[u8]) -> Part {
        if segment.first().is_some_and(u8::is_ascii_digit) {
            let digits = segment.get(..digit_run(segment)).unwrap_or_default();
            Part::Number(Numeral::from_bytes(digits))
        } else {
            Part::Word(special_form(segment))
        }
    }

    /// Parts in one total order: the words up to `#`, then the numbers, then `pl`/`p`.
    fn cmp(&self, other: &Part) -> Ordering {
        match (self, other) {
            (Part::Number(x), Part::Number(y)) => x.cmp(y),
            (Part::Word(x), Part::Word(y)) => x.cmp(y),
            (Part::Number(_), Part::Word(form)) => {
                if *form <= NUMBER_FORM {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Part::Word(_), Part::Number(_)) => other.cmp(self).reverse(),
        }
    }
}

/// `compare_special_version_forms`: the first entry the word starts with, in table order.
fn special_form(word: &[u8]) -> Form {
    const FORMS: [(&[u8], i8); 10] = [
        (b"dev", 0),
        (b"alpha", 1),
        (b"a", 1),
        (b"beta", 2),
        (b"b", 2),
        (b"RC", 3),
        (b"rc", 3),
        (b"#", 4),
        (b"pl", 5),
        (b"p", 5),
    ];
    FORMS
        .iter()
        .find(|(prefix, _)| word.starts_with(prefix))
        .map_or(Form(-1), |&(_, order)| Form(order))
}

/// `php_canonicalize_version`, byte for byte (the C locale's `isdigit` and `isalnum`).
fn canonicalize(version: &[u8]) -> Vec<u8> {
    let Some((&first, rest)) = version.split_first() else {
        return Vec::new();
    };
    let is_digit = |b: u8| b.is_ascii_digit();
    let is_non_digit = |b: u8| !b.is_ascii_digit() && b != b'.';
    let mut out = Vec::with_capacity(version.len() * 2);
    out.push(first);
    let mut previous = first;
    for &b in rest {
        let last_is_dot = out.last() == Some(&b'.');
        if matches!(b, b'-' | b'_' | b'+') {
            if !last_is_dot {
                out.push(b'.');
            }
        } else if (is_non_digit(previous) && is_digit(b)) || (is_digit(previous) && is_non_digit(b))
        {
            if !last_is_dot {
                out.push(b'.');
            }
            out.push(b);
        } else if !b.is_ascii_alphanumeric() {
            if !last_is_dot {
                out.push(b'.');
            }
        } else {
            out.push(b);
        }
        previous = b;
    }
    out
}

impl Ord for ComposerVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // The shorter side continues with missing parts, which count as `#`.
        let missing = Part::Word(NUMBER_FORM);
        let len = self.parts.len().max(other.parts.len());
        (0..len)
            .map(|i| {
                let a = self.parts.get(i).unwrap_or(&missing);
                let b = other.parts.get(i).unwrap_or(&missing);
                a.cmp(b)
            })
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for ComposerVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ComposerVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ComposerVersion {}
