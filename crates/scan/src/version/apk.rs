//! Alpine package versions (Alpine, Wolfi, Chainguard).
//!
//! Authority: apk-tools 2 `src/version.c` (apk-tools 2.14, the comparator every Alpine
//! release up to 3.22 ships, and the one Trivy's and Grype's apk comparators port), with
//! the grammar of `doc/apk-package.5.scd`: `number{.number}...{letter}{_suffix{number}}...{-r#}`.
//!
//! apk reads both strings token by token, each token's kind fixed by the separator before
//! it, and compares the values of tokens of the same kind:
//!
//! - numbers compare numerically, except that after a `.` a run of leading zeros is its
//!   own token worth minus its length (the Gentoo leading-zero rule: `1.05 < 1.1`,
//!   `1.0 > 1.00`), followed by the remaining digits;
//! - a lower-case letter may follow a number (and digits may follow the letter);
//! - suffixes order `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`,
//!   matched as prefixes of the suffix text; an unknown suffix ranks with `_rc` and ends
//!   the version as invalid;
//! - `-rN` is the package revision (`-r` alone is `-r0`).
//!
//! "leading version components and their values are equal, now the non-terminating version
//! is greater unless it's a suffix indicating pre-release" (version.c): `1.2 < 1.2.1`,
//! `1.2 > 1.2_rc1`, `1.2 < 1.2_p1`; otherwise the version whose next token is later in the
//! grammar is older (`1.2a < 1.2.1`), and one that turns invalid is older than one that
//! ends (`1-ruff < 1`). That is apk's fallback for malformed versions: they compare up to
//! the first token the grammar rejects, and two versions that turn invalid at the same
//! token with equal values so far are equal.
//!
//! apk-tools 3 (Alpine 3.23 on) rewrote the tokenizer: it rejects digits after the letter
//! (`6.6.2p1`, which Alpine published until abuild refused it), compares leading-zero
//! numbers as strings and adds `~hash` tokens. On valid versions without leading zeros the
//! two agree. apk-tools 2 is kept because advisory data for older releases carries
//! `6.6.2p1-r1`-style versions, which apk-tools 3 cannot order. apk stores numbers in an
//! `int`; here they compare exactly at any length.

use std::cmp::{Ordering, Reverse};

use super::{Numeral, VersionError, digit_run};

/// A parsed apk version: its tokens, then the kind that ended it (end or invalid).
#[derive(Debug, Clone)]
pub struct ApkVersion {
    tokens: Vec<(Kind, Value)>,
    terminal: Kind,
}

/// Token kinds in apk-tools' enum order, which decides comparisons between kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    Revision,
    End,
}

/// A token's value, ordered like apk-tools' `int`: a run of `n` leading zeros is `-n`,
/// pre-release suffixes are `-4..=-1` (an unknown suffix is `-1`), post-release suffixes
/// `0..=4`, letters their byte value, numbers themselves at any size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Negative(Reverse<u64>),
    Number(Numeral),
}

impl Value {
    fn small(v: i64) -> Value {
        if v < 0 {
            Value::Negative(Reverse(v.unsigned_abs()))
        } else {
            Value::Number(Numeral::from_digits(&v.to_string()))
        }
    }
}

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

impl ApkVersion {
    /// Never fails beyond the generic checks of `Version::parse`: malformed versions
    /// tokenize up to their first invalid token and compare as apk compares them.
    pub fn parse(input: &str) -> Result<ApkVersion, VersionError> {
        let (tokens, terminal) = tokenize(input.as_bytes());
        Ok(ApkVersion { tokens, terminal })
    }

    /// Whether apk-tools accepts the version (`apk_version_validate`).
    pub fn is_valid(&self) -> bool {
        self.terminal == Kind::End
    }

    /// The kind of token `i`, or the terminal kind past the last token.
    fn kind(&self, i: usize) -> Kind {
        self.tokens.get(i).map_or(self.terminal, |(kind, _)| *kind)
    }
}

/// Runs apk-tools' `get_token` over the whole string.
fn tokenize(s: &[u8]) -> (Vec<(Kind, Value)>, Kind) {
    let mut tokens = Vec::new();
    // "digit" without the leading-zero rule: the first number is always numeric.
    let mut kind = Kind::Digit;
    let mut pos = 0;
    loop {
        let rest = s.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            // A kind announced by its separator (`1-r`) with nothing after it reads as 0.
            tokens.push((kind, Value::small(0)));
            return (tokens, Kind::End);
        }
        let mut forced_next = None;
        let (value, len) = match kind {
            Kind::DigitOrZero if rest.first() == Some(&b'0') => {
                // "Leading zero digits get a special treatment": the zeros count
                // negatively and the digits after them form the next token.
                let zeros = rest.iter().take_while(|&&b| b == b'0').count();
                forced_next = Some(Kind::Digit);
                (Value::Negative(Reverse(zeros as u64)), zeros)
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNumber | Kind::Revision => {
                let len = digit_run(rest);
                (
                    Value::Number(Numeral::from_bytes(rest.get(..len).unwrap_or_default())),
                    len,
                )
            }
            Kind::Letter => (
                Value::small(i64::from(rest.first().copied().unwrap_or(0))),
                1,
            ),
            Kind::Suffix => match suffix(rest) {
                Some((value, len)) => (Value::small(value), len),
                None => {
                    tokens.push((kind, Value::small(-1)));
                    return (tokens, Kind::Invalid);
                }
            },
            Kind::Invalid | Kind::End => return (tokens, kind),
        };
        tokens.push((kind, value));
        pos += len;
        if pos >= s.len() {
            return (tokens, Kind::End);
        }
        kind = match forced_next {
            Some(next) => next,
            None => next_kind(kind, s, &mut pos),
        };
    }
}

/// A suffix name at the start of `rest` (prefix match, as apk-tools does): its value and
/// length.
fn suffix(rest: &[u8]) -> Option<(i64, usize)> {
    let pre = PRE_SUFFIXES.iter().zip(-4..);
    let post = POST_SUFFIXES.iter().zip(0..);
    pre.chain(post)
        .find(|(name, _)| rest.starts_with(name.as_bytes()))
        .map(|(name, value)| (value, name.len()))
}

/// apk-tools' `next_token`: reads the separator at `pos` and returns the kind of the next
/// token, or `Invalid` when the grammar does not allow it after `current`.
fn next_kind(current: Kind, s: &[u8], pos: &mut usize) -> Kind {
    let Some(&c) = s.get(*pos) else {
        return Kind::End;
    };
    let next = if matches!(current, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() {
        Kind::Letter
    } else if current == Kind::Letter && c.is_ascii_digit() {
        Kind::Digit
    } else if current == Kind::Suffix && c.is_ascii_digit() {
        Kind::SuffixNumber
    } else {
        let next = match c {
            b'.' => Kind::DigitOrZero,
            b'_' => Kind::Suffix,
            b'-' if s.get(*pos + 1) == Some(&b'r') => {
                *pos += 1;
                Kind::Revision
            }
            _ => Kind::Invalid,
        };
        *pos += 1;
        next
    };
    let allowed_backwards = matches!(
        (next, current),
        (Kind::DigitOrZero, Kind::Digit)
            | (Kind::Suffix, Kind::SuffixNumber)
            | (Kind::Digit, Kind::Letter)
    );
    if next < current && !allowed_backwards {
        Kind::Invalid
    } else {
        next
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut i = 0;
        loop {
            let (ka, kb) = (self.kind(i), other.kind(i));
            if ka != kb || ka == Kind::End || ka == Kind::Invalid {
                return resolve_kinds(self.tokens.get(i), other.tokens.get(i), ka, kb);
            }
            let va = self.tokens.get(i).map(|(_, v)| v);
            let vb = other.tokens.get(i).map(|(_, v)| v);
            match va.cmp(&vb) {
                Ordering::Equal => i += 1,
                unequal => return unequal,
            }
        }
    }
}

/// The end of apk-tools' comparison, once the token kinds part ways: "the non-terminating
/// version is greater unless it's a suffix indicating pre-release".
fn resolve_kinds(
    a: Option<&(Kind, Value)>,
    b: Option<&(Kind, Value)>,
    ka: Kind,
    kb: Kind,
) -> Ordering {
    let is_pre = |t: Option<&(Kind, Value)>| matches!(t, Some((Kind::Suffix, Value::Negative(_))));
    if ka == kb {
        Ordering::Equal
    } else if is_pre(a) {
        Ordering::Less
    } else if is_pre(b) {
        Ordering::Greater
    } else {
        kb.cmp(&ka)
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}
