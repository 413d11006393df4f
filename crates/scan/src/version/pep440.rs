//! Python package versions (PyPI).
//!
//! Authority: PEP 440 / the PyPA "Version specifiers" specification, as `packaging`
//! implements it (`packaging.version.Version`, its `VERSION_PATTERN` and `_cmpkey`). The
//! form is `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, matched case-insensitively and
//! normalized as the specification's "Normalization" section says:
//!
//! - a leading `v` is ignored; `alpha`, `beta`, `c`, `pre`, `preview` mean `a`, `b`, `rc`,
//!   `rc`, `rc`; `rev` and `r` mean `post`; a pre-release, post-release or dev number
//!   may be missing (`1.0a` = `1.0a0`) and separated by `-`, `_` or `.` (`1.0-a.1` = `1.0a1`);
//!   `1.0-1` is the implicit post-release `1.0.post1`;
//! - local segments split on `-`, `_` and `.`, compare numerically when all digits, and a
//!   numeric segment sorts after an alphanumeric one.
//!
//! Order (`_cmpkey`): epoch, then the release with trailing zeros dropped (`1.0 = 1`), then
//! pre-release (a version with only a `.devN` sorts before every pre-release of its release,
//! a version with no pre-release after them), then post-release (none first), then dev
//! release (none last), then local (none first).
//!
//! Strings that are not PEP 440 are not rejected by [`Pep440Version::parse`]: they take the
//! `LegacyVersion` order that `packaging` used before 22.0 (and pip until 24.1), which sorts
//! every such string before every PEP 440 version. Old PyPI releases and advisories still
//! carry such versions (`0.1-bulbasaur`). [`Pep440Version::parse_strict`] refuses them, as
//! current `packaging` does. Only ASCII digits and letters take part in either grammar.

use std::cmp::Ordering;

use super::{Numeral, Scheme, VersionError, digit_run};

/// A parsed PEP 440 version, or a legacy (non-PEP 440) version string.
#[derive(Debug, Clone)]
pub struct Pep440Version(Form);

#[derive(Debug, Clone)]
enum Form {
    /// `packaging` < 22's `_legacy_cmpkey` parts, under epoch -1.
    Legacy(Vec<Box<str>>),
    Standard(Standard),
}

#[derive(Debug, Clone)]
struct Standard {
    epoch: Numeral,
    /// Trailing zeros removed: they do not take part in comparisons.
    release: Vec<Numeral>,
    pre: Option<(PreKind, Numeral)>,
    post: Option<Numeral>,
    dev: Option<Numeral>,
    local: Option<Vec<LocalPart>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    Rc,
}

/// Variant order matters: alphanumeric local segments sort before numeric ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Alphanumeric(Box<str>),
    Numeric(Numeral),
}

impl Pep440Version {
    /// Parses a PEP 440 version, falling back to the legacy order for anything else.
    pub fn parse(input: &str) -> Result<Pep440Version, VersionError> {
        Ok(match parse_standard(input) {
            Some(standard) => Pep440Version(Form::Standard(standard)),
            None => Pep440Version(Form::Legacy(legacy_key(input))),
        })
    }

    /// Parses a PEP 440 version and refuses anything else, like `packaging` >= 22.
    pub fn parse_strict(input: &str) -> Result<Pep440Version, VersionError> {
        parse_standard(input)
            .map(|standard| Pep440Version(Form::Standard(standard)))
            .ok_or_else(|| VersionError::invalid(Scheme::Pep440, input, 0, "not a PEP 440 version"))
    }

    /// Whether this is a legacy (non-PEP 440) version.
    pub fn is_legacy(&self) -> bool {
        matches!(self.0, Form::Legacy(_))
    }
}

/// A byte cursor with the few moves `VERSION_PATTERN` needs.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.rest().as_bytes().first() == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    /// An optional `-`, `_` or `.`.
    fn eat_separator(&mut self) {
        if matches!(self.rest().as_bytes().first(), Some(b'-' | b'_' | b'.')) {
            self.pos += 1;
        }
    }

    /// An ASCII word, case-insensitively.
    fn eat_word(&mut self, word: &str) -> bool {
        let found = self
            .rest()
            .as_bytes()
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word.as_bytes()));
        if found {
            self.pos += word.len();
        }
        found
    }

    /// A non-empty run of ASCII digits.
    fn digits(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let len = digit_run(rest.as_bytes());
        self.pos += len;
        rest.get(..len).filter(|d| !d.is_empty())
    }

    /// A non-empty run of ASCII letters and digits.
    fn alphanumerics(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        self.pos += len;
        rest.get(..len).filter(|d| !d.is_empty())
    }
}

/// Matches `^\s*VERSION_PATTERN\s*$`. Each optional part is tried at its place and undone
/// when it does not match, which is how the regular expression backtracks here: a part that
/// matches never keeps a later part from matching.
fn parse_standard(input: &str) -> Option<Standard> {
    let mut c = Cursor {
        text: input.trim(),
        pos: 0,
    };
    if !c.eat(b'v') {
        c.eat(b'V');
    }

    let start = c.pos;
    let epoch = match c.digits() {
        Some(digits) if c.eat(b'!') => Numeral::from_digits(digits),
        _ => {
            c.pos = start;
            Numeral::default()
        }
    };

    let mut release = vec![Numeral::from_digits(c.digits()?)];
    loop {
        let start = c.pos;
        match c.eat(b'.').then(|| c.digits()).flatten() {
            Some(digits) => release.push(Numeral::from_digits(digits)),
            None => {
                c.pos = start;
                break;
            }
        }
    }
    while release.last().is_some_and(Numeral::is_zero) {
        release.pop();
    }

    let pre = parse_pre(&mut c);
    let post = parse_post(&mut c);
    let dev = parse_dev(&mut c);
    let local = if c.eat(b'+') {
        Some(parse_local(&mut c)?)
    } else {
        None
    };
    if !c.rest().is_empty() {
        return None;
    }
    Some(Standard {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

fn parse_pre(c: &mut Cursor<'_>) -> Option<(PreKind, Numeral)> {
    let start = c.pos;
    c.eat_separator();
    // The pattern's alternation order: `alpha|a|beta|b|preview|pre|c|rc`.
    let kind = [
        ("alpha", PreKind::Alpha),
        ("a", PreKind::Alpha),
        ("beta", PreKind::Beta),
        ("b", PreKind::Beta),
        ("preview", PreKind::Rc),
        ("pre", PreKind::Rc),
        ("c", PreKind::Rc),
        ("rc", PreKind::Rc),
    ]
    .into_iter()
    .find_map(|(word, kind)| c.eat_word(word).then_some(kind));
    let Some(kind) = kind else {
        c.pos = start;
        return None;
    };
    c.eat_separator();
    Some((kind, number_or_zero(c)))
}

fn parse_post(c: &mut Cursor<'_>) -> Option<Numeral> {
    let start = c.pos;
    // Implicit post-release: `-N`.
    if c.eat(b'-') {
        if let Some(digits) = c.digits() {
            return Some(Numeral::from_digits(digits));
        }
        c.pos = start;
    }
    c.eat_separator();
    if ["post", "rev", "r"]
        .into_iter()
        .any(|word| c.eat_word(word))
    {
        c.eat_separator();
        Some(number_or_zero(c))
    } else {
        c.pos = start;
        None
    }
}

fn parse_dev(c: &mut Cursor<'_>) -> Option<Numeral> {
    let start = c.pos;
    c.eat_separator();
    if c.eat_word("dev") {
        c.eat_separator();
        Some(number_or_zero(c))
    } else {
        c.pos = start;
        None
    }
}

fn number_or_zero(c: &mut Cursor<'_>) -> Numeral {
    c.digits().map(Numeral::from_digits).unwrap_or_default()
}

/// `[a-z0-9]+([-_.][a-z0-9]+)*`, lower-cased; all-digit segments are numbers.
fn parse_local(c: &mut Cursor<'_>) -> Option<Vec<LocalPart>> {
    let mut parts = Vec::new();
    loop {
        let segment = c.alphanumerics()?;
        parts.push(if digit_run(segment.as_bytes()) == segment.len() {
            LocalPart::Numeric(Numeral::from_digits(segment))
        } else {
            LocalPart::Alphanumeric(segment.to_ascii_lowercase().into())
        });
        if !matches!(c.rest().as_bytes().first(), Some(b'-' | b'_' | b'.')) {
            return Some(parts);
        }
        c.pos += 1;
    }
}

/// `packaging` 21's `_legacy_cmpkey`: the lower-cased string splits into digit runs
/// (zero-padded to 8 places so they sort as numbers up to that width), ASCII letter runs
/// (`pre`, `preview`, `rc` become `c` and `dev` becomes `@`, so they sort as pre-releases)
/// and runs of other characters; `.` separates, `-` becomes `final-`. Runs of zeros at the
/// end of each numeric series and a `final-` before a pre-release tag are dropped, and a
/// `final` marker closes the key.
fn legacy_key(input: &str) -> Vec<Box<str>> {
    let lower = input.to_lowercase();
    let mut pieces: Vec<String> = Vec::new();
    let mut rest = lower.as_str();
    while let Some(first) = rest.chars().next() {
        let len = match first {
            '0'..='9' => digit_run(rest.as_bytes()),
            'a'..='z' => rest.bytes().take_while(u8::is_ascii_lowercase).count(),
            '.' | '-' => 1,
            _ => rest
                .find(|c: char| {
                    c.is_ascii_digit() || c.is_ascii_lowercase() || c == '.' || c == '-'
                })
                .unwrap_or(rest.len()),
        };
        let (piece, tail) = rest.split_at(len);
        rest = tail;
        match piece {
            "." => {}
            "-" => pieces.push("*final-".to_owned()),
            "pre" | "preview" | "rc" => pieces.push("*c".to_owned()),
            "dev" => pieces.push("*@".to_owned()),
            p if p.starts_with(|c: char| c.is_ascii_digit()) => pieces.push(format!("{p:0>8}")),
            p => pieces.push(format!("*{p}")),
        }
    }
    pieces.push("*final".to_owned());

    let mut parts: Vec<Box<str>> = Vec::new();
    for piece in pieces {
        if piece.starts_with('*') {
            if piece.as_str() < "*final" {
                while parts.last().is_some_and(|p| &**p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| &**p == "00000000") {
                parts.pop();
            }
        }
        parts.push(piece.into());
    }
    parts
}

/// `_cmpkey`'s pre-release slot.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreKey<'a> {
    /// A dev release with no pre- or post-release sorts before every pre-release.
    DevOnly,
    Pre(&'a (PreKind, Numeral)),
    /// No pre-release: after every pre-release.
    Final,
}

impl Standard {
    fn pre_key(&self) -> PreKey<'_> {
        match (&self.pre, &self.post, &self.dev) {
            (None, None, Some(_)) => PreKey::DevOnly,
            (Some(pre), _, _) => PreKey::Pre(pre),
            (None, _, _) => PreKey::Final,
        }
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release.cmp(&other.release))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| self.post.cmp(&other.post))
            // No dev part sorts after every dev part.
            .then_with(|| match (&self.dev, &other.dev) {
                (Some(a), Some(b)) => a.cmp(b),
                (a, b) => a.is_none().cmp(&b.is_none()),
            })
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (Form::Standard(a), Form::Standard(b)) => a.cmp(b),
            (Form::Legacy(a), Form::Legacy(b)) => a.cmp(b),
            (Form::Legacy(_), Form::Standard(_)) => Ordering::Less,
            (Form::Standard(_), Form::Legacy(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}
