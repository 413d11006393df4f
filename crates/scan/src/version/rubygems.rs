//! RubyGems versions.
//!
//! Authority: RubyGems `Gem::Version` (`lib/rubygems/version.rb`). A version must match
//! `[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?` after surrounding ASCII
//! whitespace is stripped; each `-` then means `.pre.`. The segments are the runs of digits
//! (numbers) and of letters (strings) in it, whatever separates them, so `1.0.a2 = 1.0.a.2`.
//!
//! Comparison uses the canonical segments: trailing zeros are dropped from the numeric
//! segments before the first string segment and from the segments after it, separately
//! (`1.0.a.0 = 1.a`). Segments then compare pairwise, a missing one acting as `0`: numbers
//! by value, strings bytewise, and "a string segment is always less than a numeric one",
//! which is why any version with letters is a pre-release (`1.0.b1 < 1.0`). An empty or
//! blank version is `0` in RubyGems; `Version::parse` refuses it like every empty version.

use std::cmp::Ordering;

use super::{Numeral, Scheme, VersionError, digit_run};

/// A parsed gem version: its canonical segments.
#[derive(Debug, Clone)]
pub struct GemVersion {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Number(Numeral),
    Word(Box<str>),
}

impl GemVersion {
    pub fn parse(input: &str) -> Result<GemVersion, VersionError> {
        let text = input.trim_matches([' ', '\t', '\n', '\r', '\x0c', '\x0b']);
        if let Some(offset) = first_error(text) {
            let lead = input.len()
                - input
                    .trim_start_matches([' ', '\t', '\n', '\r', '\x0c', '\x0b'])
                    .len();
            return Err(VersionError::invalid(
                Scheme::RubyGems,
                input,
                lead + offset,
                "not a RubyGems version",
            ));
        }
        // "each `-` then means `.pre.`"
        let text = text.replace('-', ".pre.");
        let mut segments = Vec::new();
        let mut rest = text.as_str();
        while let Some(first) = rest.chars().next() {
            let len = if first.is_ascii_digit() {
                digit_run(rest.as_bytes())
            } else if first.is_ascii_alphabetic() {
                rest.bytes().take_while(u8::is_ascii_alphabetic).count()
            } else {
                first.len_utf8()
            };
            let (segment, tail) = rest.split_at(len);
            rest = tail;
            if first.is_ascii_digit() {
                segments.push(Segment::Number(Numeral::from_digits(segment)));
            } else if first.is_ascii_alphabetic() {
                segments.push(Segment::Word(segment.into()));
            }
        }
        Ok(GemVersion {
            segments: canonical(segments),
        })
    }
}

/// Checks `ANCHORED_VERSION_PATTERN` (without the optional-everything case, since empty
/// input is refused earlier); returns the offset of the first byte that breaks it.
fn first_error(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut pos = digit_run(bytes);
    if pos == 0 {
        return Some(0);
    }
    // `(\.[0-9a-zA-Z]+)*`
    while bytes.get(pos) == Some(&b'.') {
        let len = run(bytes, pos + 1, u8::is_ascii_alphanumeric);
        if len == 0 {
            return Some(pos + 1);
        }
        pos += 1 + len;
    }
    // `(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`
    if bytes.get(pos) == Some(&b'-') {
        let mut separator = pos;
        loop {
            let len = run(bytes, separator + 1, |b| {
                b.is_ascii_alphanumeric() || *b == b'-'
            });
            if len == 0 {
                return Some(separator + 1);
            }
            pos = separator + 1 + len;
            if bytes.get(pos) != Some(&b'.') {
                break;
            }
            separator = pos;
        }
    }
    (pos < bytes.len()).then_some(pos)
}

fn run(bytes: &[u8], from: usize, accept: impl Fn(&u8) -> bool) -> usize {
    bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| accept(b)).count())
}

/// `canonical_segments`: trailing zeros dropped from the release part (before the first
/// string segment) and from the pre-release part, each on its own.
fn canonical(segments: Vec<Segment>) -> Vec<Segment> {
    let split = segments
        .iter()
        .position(|s| matches!(s, Segment::Word(_)))
        .unwrap_or(segments.len());
    let mut release = segments;
    let mut pre = release.split_off(split);
    for part in [&mut release, &mut pre] {
        while matches!(part.last(), Some(Segment::Number(n)) if n.is_zero()) {
            part.pop();
        }
    }
    release.append(&mut pre);
    release
}

impl Ord for GemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = Segment::Number(Numeral::default());
        let len = self.segments.len().max(other.segments.len());
        for i in 0..len {
            let a = self.segments.get(i).unwrap_or(&zero);
            let b = other.segments.get(i).unwrap_or(&zero);
            let order = match (a, b) {
                (Segment::Number(x), Segment::Number(y)) => x.cmp(y),
                (Segment::Word(_), Segment::Number(_)) => Ordering::Less,
                (Segment::Number(_), Segment::Word(_)) => Ordering::Greater,
                (Segment::Word(x), Segment::Word(y)) => x.as_bytes().cmp(y.as_bytes()),
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for GemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for GemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GemVersion {}
