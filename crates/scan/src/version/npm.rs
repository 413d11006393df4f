//! npm version ranges (`package.json` dependency specs, npm advisories).
//!
//! Authority: node-semver 7 (`classes/range.js`, `classes/comparator.js`,
//! `internal/re.js`, `range.bnf`), non-loose mode. A range is a `||`-separated list of
//! comparator sets; a version satisfies the range when it satisfies every comparator of
//! some set. Sugar desugars into plain comparators the way `Range.parseRange` rewrites it:
//!
//! - hyphen ranges `1.2 - 2.3.4` → `>=1.2.0 <=2.3.4` (a partial upper end becomes an
//!   exclusive bound: `1.2.3 - 2.3` → `>=1.2.3 <2.4.0-0`);
//! - X-ranges `1.x`, `1.2.*`, `1` → `>=1.0.0 <2.0.0-0`; `*` and `x` match anything; with an
//!   operator the missing parts are zero and the bound moves (`>1.2` → `>=1.3.0`,
//!   `<=1.2` → `<1.3.0-0`);
//! - tilde `~1.2.3` → `>=1.2.3 <1.3.0-0` ("patch-level changes if a minor is given");
//! - caret `^1.2.3` → `>=1.2.3 <2.0.0-0`, but "does not modify the left-most non-zero
//!   element": `^0.2.3` → `>=0.2.3 <0.3.0-0`, `^0.0.3` → `>=0.0.3 <0.0.4-0`.
//!
//! Pre-releases: "If a version has a prerelease tag, it will only be allowed to satisfy
//! comparator sets if at least one comparator with the same [major, minor, patch] tuple also
//! has a prerelease tag" (`testSet`), unless `includePrerelease` is set, which also moves
//! desugared lower bounds to `-0`. node-semver parses a range differently with and without
//! that option (`1.2.3 - =2.0.0` is even valid only with it), so both readings are kept.
//!
//! The rewriting is reproduced on strings, step for step (build stripping, hyphen ranges,
//! operator whitespace trimming, caret, tilde, X-range, star and `>=0.0.0` replacement,
//! then `Comparator` parsing), because node-semver's quirks live in those steps: `~> 1` is
//! `~1`, `>=*1.2.3` is `1.2.3`, `* || >=1.0.0-beta` no longer admits `1.0.0-beta`.
//! Versions and numbers follow the strict grammar: no leading zeros, numbers up to
//! `Number.MAX_SAFE_INTEGER`, versions up to 256 bytes.
//!
//! Why hand-written: the Rust ports (`node-semver`, `nodejs-semver`, `js-semver`) document
//! no `includePrerelease` reading, and how closely they follow node-semver 7.8's rewriting
//! is not pinned anywhere; this module is, by a differential test against node-semver
//! 7.8.6 itself (`tests/versions.rs`).

use std::cmp::Ordering;

use super::VersionError;
use super::semver::{Identifier, compare_prerelease};

/// The longest range accepted, in bytes.
pub const MAX_RANGE_LEN: usize = 4096;
/// node-semver's `MAX_LENGTH` for a version string.
const MAX_VERSION_LENGTH: usize = 256;
/// JavaScript's `Number.MAX_SAFE_INTEGER`, node-semver's bound for version numbers.
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// A parsed npm range.
#[derive(Debug, Clone)]
pub struct NpmRange {
    /// The comparator sets as node-semver reads the range without `includePrerelease`.
    default: Result<Vec<Vec<Comparator>>, VersionError>,
    /// The comparator sets as node-semver reads the range with `includePrerelease`.
    with_prerelease: Result<Vec<Vec<Comparator>>, VersionError>,
}

impl NpmRange {
    /// Parses a range. Fails when node-semver rejects the range both with and without
    /// `includePrerelease`; a range valid under only one reading parses, and
    /// [`NpmRange::satisfies`] fails for the other.
    pub fn parse(input: &str) -> Result<NpmRange, VersionError> {
        if input.len() > MAX_RANGE_LEN {
            return Err(VersionError::RangeTooLong {
                len: input.len(),
                max: MAX_RANGE_LEN,
            });
        }
        let default = parse_range(input, false);
        let with_prerelease = parse_range(input, true);
        if let (Err(error), Err(_)) = (&default, &with_prerelease) {
            return Err(error.clone());
        }
        Ok(NpmRange {
            default,
            with_prerelease,
        })
    }

    /// Whether `version` (strict SemVer, an optional leading `v`) satisfies the range, as
    /// node-semver's `satisfies(version, range, { includePrerelease })` decides.
    pub fn satisfies(&self, version: &str, include_prerelease: bool) -> Result<bool, VersionError> {
        let sets = if include_prerelease {
            &self.with_prerelease
        } else {
            &self.default
        };
        let sets = sets.as_ref().map_err(Clone::clone)?;
        let version = parse_version(version)?;
        Ok(sets
            .iter()
            .any(|set| test_set(set, &version, include_prerelease)))
    }
}

/// A version in node-semver's strict form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NpmVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Identifier>,
    /// `major.minor.patch[-pre]`, node-semver's `version` property.
    text: String,
}

impl Ord for NpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_prerelease(&self.pre, &other.pre))
    }
}

impl PartialOrd for NpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Comparator {
    Any,
    Bound {
        operator: Operator,
        version: NpmVersion,
    },
}

impl Comparator {
    /// node-semver's `Comparator.value`, used to spot duplicates and the null set.
    fn value(&self) -> String {
        match self {
            Comparator::Any => String::new(),
            Comparator::Bound { operator, version } => {
                format!("{}{}", operator.as_str(), version.text)
            }
        }
    }

    fn is_null_set(&self) -> bool {
        self.value() == "<0.0.0-0"
    }

    fn test(&self, v: &NpmVersion) -> bool {
        match self {
            Comparator::Any => true,
            Comparator::Bound { operator, version } => {
                let order = v.cmp(version);
                match operator {
                    Operator::Eq => order == Ordering::Equal,
                    Operator::Lt => order == Ordering::Less,
                    Operator::Le => order != Ordering::Greater,
                    Operator::Gt => order == Ordering::Greater,
                    Operator::Ge => order != Ordering::Less,
                }
            }
        }
    }
}

fn range_error(input: &str, reason: &'static str, detail: &str) -> VersionError {
    VersionError::InvalidRange {
        input: input.to_owned(),
        reason,
        detail: detail.to_owned(),
    }
}

/// ECMAScript white space and line terminators (`\s`).
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

fn js_trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// `new Range(input, { includePrerelease })`.
fn parse_range(
    input: &str,
    include_prerelease: bool,
) -> Result<Vec<Vec<Comparator>>, VersionError> {
    let raw = js_trim(input)
        .split(is_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut sets = Vec::new();
    for part in raw.split("||") {
        let set = parse_set(input, js_trim(part), include_prerelease)?;
        if !set.is_empty() {
            sets.push(set);
        }
    }
    let Some(first) = sets.first().cloned() else {
        return Err(range_error(input, "no comparator set", ""));
    };
    if sets.len() > 1 {
        // "if we have any that are not the null set, throw out null sets"
        sets.retain(|set| !set.first().is_some_and(Comparator::is_null_set));
        if sets.is_empty() {
            sets = vec![first];
        } else if let Some(any) = sets.iter().find(|set| set.as_slice() == [Comparator::Any]) {
            // "if we have any that are *, then the range is just *"
            sets = vec![any.clone()];
        }
    }
    Ok(sets)
}

/// `Range.parseRange` for one `||` alternative.
fn parse_set(
    input: &str,
    part: &str,
    include_prerelease: bool,
) -> Result<Vec<Comparator>, VersionError> {
    let part = strip_build(part);
    let part = hyphen_replace(&part, include_prerelease).unwrap_or(part);
    let part = trim_comparator_whitespace(&part);
    let part = trim_after(&part, '~', true);
    let part = trim_after(&part, '^', false);

    // Every comparator is parsed (and may fail) before the set is simplified.
    let mut parsed = Vec::new();
    for token in part.split(' ') {
        let desugared = desugar(token, include_prerelease);
        for piece in desugared.split(is_space).filter(|p| !p.is_empty()) {
            parsed.push(parse_comparator(
                input,
                &replace_gte0(piece, include_prerelease),
            )?);
        }
    }
    if let Some(null_set) = parsed.iter().find(|c| c.is_null_set()) {
        return Ok(vec![null_set.clone()]);
    }
    // Duplicates add nothing, nor does `*` next to other comparators.
    let mut comparators: Vec<Comparator> = Vec::new();
    for comparator in parsed {
        if comparator != Comparator::Any && !comparators.contains(&comparator) {
            comparators.push(comparator);
        }
    }
    if comparators.is_empty() {
        comparators.push(Comparator::Any);
    }
    Ok(comparators)
}

/// Removes build metadata (`+build.1`) wherever it appears, like `BUILDSTRIPRE`.
fn strip_build(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('+') {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let build_len = identifier_list_len(tail.get(1..).unwrap_or_default(), |_| true);
        if build_len == 0 {
            out.push('+');
            rest = tail.get(1..).unwrap_or_default();
        } else {
            rest = tail.get(1 + build_len..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    out
}

/// The length of the longest prefix of `s` that is a `.`-separated list of non-empty
/// `[0-9A-Za-z-]` identifiers each accepted by `valid`, stopping before a `.` that does not
/// start another such identifier.
fn identifier_list_len(s: &str, valid: impl Fn(&str) -> bool) -> usize {
    let mut end = 0;
    loop {
        let rest = s.get(end..).unwrap_or_default();
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        if len == 0 || !valid(rest.get(..len).unwrap_or_default()) {
            return end.saturating_sub(1);
        }
        end += len;
        if !s.get(end..).unwrap_or_default().starts_with('.') {
            return end;
        }
        end += 1;
    }
}

/// A strict pre-release identifier: a number without leading zeros, or anything with a
/// letter or `-` in it.
fn is_prerelease_identifier(id: &str) -> bool {
    let numeric = id.bytes().all(|b| b.is_ascii_digit());
    !id.is_empty()
        && id.chars().all(is_ident_char)
        && (!numeric || id == "0" || !id.starts_with('0'))
}

/// `XRANGEPLAIN`: `[v=\s]*` then up to three `x`/`X`/`*`/number parts, the third
/// optionally followed by a pre-release and build metadata.
#[derive(Debug)]
struct XRange<'a> {
    major: &'a str,
    minor: Option<&'a str>,
    patch: Option<&'a str>,
    pre: Option<&'a str>,
}

fn is_x(part: Option<&str>) -> bool {
    match part {
        None => true,
        Some(p) => p.eq_ignore_ascii_case("x") || p == "*",
    }
}

/// One `XRANGEIDENTIFIER`: `x`, `X`, `*` or a number without leading zeros.
fn split_x_part(s: &str) -> Option<(&str, &str)> {
    let len = match s.chars().next()? {
        'x' | 'X' | '*' | '0' => 1,
        '1'..='9' => s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()),
        _ => return None,
    };
    Some(s.split_at(len))
}

fn match_xrange(s: &str) -> Option<XRange<'_>> {
    let body = s.trim_start_matches(|c: char| c == 'v' || c == '=' || is_space(c));
    let (major, mut rest) = split_x_part(body)?;
    let mut range = XRange {
        major,
        minor: None,
        patch: None,
        pre: None,
    };
    if let Some(after) = rest.strip_prefix('.') {
        let (minor, after) = split_x_part(after)?;
        range.minor = Some(minor);
        rest = after;
        if let Some(after) = rest.strip_prefix('.') {
            let (patch, after) = split_x_part(after)?;
            range.patch = Some(patch);
            rest = after;
            if let Some(after) = rest.strip_prefix('-') {
                let len = identifier_list_len(after, is_prerelease_identifier);
                if len == 0 {
                    return None;
                }
                let (pre, after) = after.split_at(len);
                range.pre = Some(pre);
                rest = after;
            }
            if let Some(after) = rest.strip_prefix('+') {
                let len = identifier_list_len(after, |_| true);
                if len == 0 {
                    return None;
                }
                rest = after.get(len..).unwrap_or_default();
            }
        }
    }
    rest.is_empty().then_some(range)
}

/// `Number(text) + 1` as JavaScript would print it, or a string that can never parse as a
/// version number when the result leaves the safe range.
fn plus_one(text: &str) -> String {
    match text.parse::<u64>() {
        Ok(n) if n < MAX_SAFE_INTEGER => (n + 1).to_string(),
        _ => "overflow".to_owned(),
    }
}

/// `hyphenReplace`, when the whole set is `A - B`.
fn hyphen_replace(part: &str, include_prerelease: bool) -> Option<String> {
    // node-semver matches `^\s*(XRANGEPLAIN)\s+-\s+(XRANGEPLAIN)\s*$` with each `\s*` and
    // `\s+` capped at one character ("safe" regular expressions). The first side cannot hold
    // " - " nor end in white space, so the first " - " is the only candidate; the second side
    // may start with more white space, which its `[v=\s]*` prefix takes.
    let (from_text, to_text) = part.split_once(" - ")?;
    let to_text = to_text.strip_suffix(is_space).unwrap_or(to_text);
    let from = match_xrange(from_text)?;
    let to = match_xrange(to_text)?;
    let z = if include_prerelease { "-0" } else { "" };
    let from = if is_x(Some(from.major)) {
        String::new()
    } else if is_x(from.minor) {
        format!(">={}.0.0{z}", from.major)
    } else if is_x(from.patch) {
        format!(">={}.{}.0{z}", from.major, from.minor.unwrap_or_default())
    } else if from.pre.is_some() {
        format!(">={from_text}")
    } else {
        format!(">={from_text}{z}")
    };
    let to = if is_x(Some(to.major)) {
        String::new()
    } else if is_x(to.minor) {
        format!("<{}.0.0-0", plus_one(to.major))
    } else if is_x(to.patch) {
        format!(
            "<{}.{}.0-0",
            to.major,
            plus_one(to.minor.unwrap_or_default())
        )
    } else if let Some(pre) = to.pre {
        format!(
            "<={}.{}.{}-{pre}",
            to.major,
            to.minor.unwrap_or_default(),
            to.patch.unwrap_or_default()
        )
    } else if include_prerelease {
        format!(
            "<{}.{}.{}-0",
            to.major,
            to.minor.unwrap_or_default(),
            plus_one(to.patch.unwrap_or_default())
        )
    } else {
        format!("<={to_text}")
    };
    Some(format!("{from} {to}").trim_matches(is_space).to_owned())
}

/// Removes the white space between an operator and its version (`> 1.2.3` → `>1.2.3`),
/// scanning as node-semver's `trimComparatorWhitespace` does: it skips over whole versions
/// so that a `v` inside one is never read as the prefix of another.
fn trim_comparator_whitespace(range: &str) -> String {
    let chars: Vec<char> = range.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let is_prefix = |c: Option<char>| c.is_some_and(|c| c == 'v' || c == '=' || is_space(c));
    let is_start =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || matches!(c, 'x' | 'X' | '*'));
    let mut out = String::with_capacity(range.len());
    let mut copied = 0;
    let mut cursor = 0;
    while cursor < chars.len() {
        let start = cursor;
        if matches!(at(cursor), Some('<' | '>')) {
            cursor += 1;
        } else if !is_prefix(at(cursor)) && !is_start(at(cursor)) {
            cursor += 1;
            continue;
        }
        while cursor < chars.len() && is_prefix(at(cursor)) {
            cursor += 1;
        }
        if !is_start(at(cursor)) {
            continue;
        }
        let mut space = start;
        if at(space).is_some_and(is_space) {
            space += 1;
        }
        if matches!(at(space), Some('<' | '>')) {
            space += 1;
        }
        if at(space) == Some('=') {
            space += 1;
        }
        if at(space).is_some_and(is_space) {
            out.extend(chars.get(copied..space).unwrap_or_default());
            copied = space + 1;
        }
        cursor = version_end(&chars, cursor);
    }
    out.extend(chars.get(copied..).unwrap_or_default());
    out
}

/// Where the version starting at `start` ends: a loose full version if there is one,
/// otherwise a partial or wildcard version (`findVersionEndIndex`).
fn version_end(chars: &[char], start: usize) -> usize {
    let full = loose_full_version_end(chars, start);
    if full != start {
        full
    } else {
        partial_version_end(chars, start)
    }
}

fn digits_end(chars: &[char], start: usize, limit: usize) -> usize {
    let run = chars
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    start + run.min(limit)
}

fn number_end(chars: &[char], start: usize, loose: bool) -> usize {
    if !loose && chars.get(start) == Some(&'0') {
        return start + 1;
    }
    digits_end(
        chars,
        start,
        if loose {
            MAX_VERSION_LENGTH
        } else {
            MAX_VERSION_LENGTH + 1
        },
    )
}

fn prerelease_identifier_end(chars: &[char], start: usize, loose: bool) -> usize {
    let digits = digits_end(chars, start, MAX_VERSION_LENGTH);
    if chars
        .get(digits)
        .is_some_and(|&c| c.is_ascii_alphabetic() || c == '-')
    {
        let mut end = digits + 1;
        let limit = end + MAX_VERSION_LENGTH - 6;
        while end < limit && chars.get(end).is_some_and(|&c| is_ident_char(c)) {
            end += 1;
        }
        return end;
    }
    number_end(chars, start, loose)
}

fn prerelease_end(chars: &[char], start: usize, loose: bool) -> usize {
    let hyphen = chars.get(start) == Some(&'-');
    if !loose && !hyphen {
        return start;
    }
    let id_start = start + usize::from(hyphen);
    let mut end = prerelease_identifier_end(chars, id_start, loose);
    if end == id_start {
        if !loose || !hyphen {
            return start;
        }
        end = prerelease_identifier_end(chars, start, loose);
    }
    while chars.get(end) == Some(&'.') {
        let next = prerelease_identifier_end(chars, end + 1, loose);
        if next == end + 1 {
            break;
        }
        end = next;
    }
    end
}

fn build_identifier_end(chars: &[char], start: usize) -> usize {
    let mut end = start;
    while end - start < MAX_VERSION_LENGTH - 6 && chars.get(end).is_some_and(|&c| is_ident_char(c))
    {
        end += 1;
    }
    end
}

fn build_end(chars: &[char], start: usize) -> usize {
    if chars.get(start) != Some(&'+') {
        return start;
    }
    let mut end = build_identifier_end(chars, start + 1);
    if end == start + 1 {
        return start;
    }
    while chars.get(end) == Some(&'.') {
        let next = build_identifier_end(chars, end + 1);
        if next == end + 1 {
            break;
        }
        end = next;
    }
    end
}

fn loose_full_version_end(chars: &[char], start: usize) -> usize {
    let mut end = start;
    for component in 0..3 {
        let next = number_end(chars, end, true);
        if next == end {
            return start;
        }
        end = next;
        if component < 2 {
            if chars.get(end) != Some(&'.') {
                return start;
            }
            end += 1;
        }
    }
    build_end(chars, prerelease_end(chars, end, true))
}

fn partial_component_end(chars: &[char], start: usize) -> usize {
    match chars.get(start) {
        Some(c) if c.is_ascii_digit() => number_end(chars, start, false),
        Some('x' | 'X' | '*') => start + 1,
        _ => start,
    }
}

fn partial_version_end(chars: &[char], start: usize) -> usize {
    let mut end = partial_component_end(chars, start);
    for _ in 0..2 {
        if chars.get(end) != Some(&'.') {
            return end;
        }
        let next = partial_component_end(chars, end + 1);
        if next == end + 1 {
            return end;
        }
        end = next;
    }
    build_end(chars, prerelease_end(chars, end, false))
}

/// `TILDETRIM` (`~ 1` → `~1`, `~> 1` → `~1`) or `CARETTRIM` (`^ 1` → `^1`), removing one
/// white-space character.
fn trim_after(s: &str, operator: char, allow_gt: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(operator) {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        out.push(operator);
        let after = tail.get(operator.len_utf8()..).unwrap_or_default();
        let after_gt = if allow_gt {
            after.strip_prefix('>').unwrap_or(after)
        } else {
            after
        };
        // `~>?\s+`, with `\s+` capped at one character as in node-semver's safe regexes.
        rest = match after_gt.strip_prefix(is_space) {
            Some(tail) => tail,
            None => after,
        };
    }
    out.push_str(rest);
    out
}

/// `parseComparator`: caret, tilde, X-range and star replacement on one token.
fn desugar(token: &str, include_prerelease: bool) -> String {
    let caret = replace_caret(js_trim(token), include_prerelease);
    let tilde = map_words(&caret, |c| replace_tilde(c, include_prerelease));
    let xrange = map_words(&tilde, |c| replace_xrange(c, include_prerelease));
    replace_star(js_trim(&xrange))
}

fn map_words(s: &str, f: impl Fn(&str) -> String) -> String {
    js_trim(s)
        .split(is_space)
        .filter(|w| !w.is_empty())
        .map(f)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `replaceCaret`.
fn replace_caret(comp: &str, include_prerelease: bool) -> String {
    let Some(x) = comp.strip_prefix('^').and_then(match_xrange) else {
        return comp.to_owned();
    };
    let z = if include_prerelease { "-0" } else { "" };
    let (major, minor, patch) = (
        x.major,
        x.minor.unwrap_or_default(),
        x.patch.unwrap_or_default(),
    );
    if is_x(Some(major)) {
        String::new()
    } else if is_x(x.minor) {
        format!(">={major}.0.0{z} <{}.0.0-0", plus_one(major))
    } else if is_x(x.patch) {
        if major == "0" {
            format!(">={major}.{minor}.0{z} <{major}.{}.0-0", plus_one(minor))
        } else {
            format!(">={major}.{minor}.0{z} <{}.0.0-0", plus_one(major))
        }
    } else {
        let lower = match x.pre {
            Some(pre) => format!(">={major}.{minor}.{patch}-{pre}"),
            None => format!(">={major}.{minor}.{patch}"),
        };
        let upper = if major != "0" {
            format!("<{}.0.0-0", plus_one(major))
        } else if minor != "0" {
            format!("<{major}.{}.0-0", plus_one(minor))
        } else {
            format!("<{major}.{minor}.{}-0", plus_one(patch))
        };
        format!("{lower} {upper}")
    }
}

/// `replaceTilde`.
fn replace_tilde(comp: &str, include_prerelease: bool) -> String {
    let Some(rest) = comp.strip_prefix('~') else {
        return comp.to_owned();
    };
    let Some(x) = match_xrange(rest.strip_prefix('>').unwrap_or(rest)) else {
        return comp.to_owned();
    };
    let z = if include_prerelease { "-0" } else { "" };
    let (major, minor, patch) = (
        x.major,
        x.minor.unwrap_or_default(),
        x.patch.unwrap_or_default(),
    );
    if is_x(Some(major)) {
        String::new()
    } else if is_x(x.minor) {
        format!(">={major}.0.0{z} <{}.0.0-0", plus_one(major))
    } else if is_x(x.patch) {
        format!(">={major}.{minor}.0{z} <{major}.{}.0-0", plus_one(minor))
    } else {
        let lower = match x.pre {
            Some(pre) => format!(">={major}.{minor}.{patch}-{pre}"),
            None => format!(">={major}.{minor}.{patch}"),
        };
        format!("{lower} <{major}.{}.0-0", plus_one(minor))
    }
}

/// `replaceXRange`: `GTLT\s*XRANGEPLAIN`.
fn replace_xrange(comp: &str, include_prerelease: bool) -> String {
    let comp = js_trim(comp);
    let operator_len = match comp.as_bytes() {
        [b'<' | b'>', b'=', ..] => 2,
        [b'<' | b'>' | b'=', ..] => 1,
        _ => 0,
    };
    let (mut operator, rest) = comp.split_at(operator_len);
    let Some(x) = match_xrange(rest) else {
        return comp.to_owned();
    };
    // `invalidXRangeOrder`: `x.1`, `1.x.1` stay as written (and fail to parse later).
    if (is_x(Some(x.major)) && !is_x(x.minor))
        || (is_x(x.minor) && x.patch.is_some() && !is_x(x.patch))
    {
        return comp.to_owned();
    }
    let x_major = is_x(Some(x.major));
    let x_minor = x_major || is_x(x.minor);
    let any_x = x_minor || is_x(x.patch);
    if operator == "=" && any_x {
        operator = "";
    }
    let pr = if include_prerelease { "-0" } else { "" };
    let major = x.major;
    let minor = x.minor.unwrap_or_default();
    if x_major {
        if operator == ">" || operator == "<" {
            // "nothing is allowed"
            "<0.0.0-0".to_owned()
        } else {
            // "nothing is forbidden"
            "*".to_owned()
        }
    } else if !operator.is_empty() && any_x {
        let minor = if x_minor { "0" } else { minor };
        let (operator, major, minor, pr) = match operator {
            // `>1` is `>=2.0.0`, `>1.2` is `>=1.3.0`
            ">" if x_minor => (">=", plus_one(major), "0".to_owned(), pr),
            ">" => (">=", major.to_owned(), plus_one(minor), pr),
            // `<=0.7.x` is `<0.8.0-0`, `<=7.x` is `<8.0.0-0`
            "<=" if x_minor => ("<", plus_one(major), minor.to_owned(), "-0"),
            "<=" => ("<", major.to_owned(), plus_one(minor), "-0"),
            "<" => ("<", major.to_owned(), minor.to_owned(), "-0"),
            other => (other, major.to_owned(), minor.to_owned(), pr),
        };
        format!("{operator}{major}.{minor}.0{pr}")
    } else if x_minor {
        format!(">={major}.0.0{pr} <{}.0.0-0", plus_one(major))
    } else if any_x {
        format!(">={major}.{minor}.0{pr} <{major}.{}.0-0", plus_one(minor))
    } else {
        comp.to_owned()
    }
}

/// `replaceStars`: drops the first `(<|>)?=?\s?\*`.
fn replace_star(comp: &str) -> String {
    for (start, _) in comp.char_indices() {
        let rest = comp.get(start..).unwrap_or_default();
        let after_op = rest.strip_prefix(['<', '>']).unwrap_or(rest);
        let after_eq = after_op.strip_prefix('=').unwrap_or(after_op);
        let after_space = after_eq.strip_prefix(is_space).unwrap_or(after_eq);
        if let Some(tail) = after_space.strip_prefix('*') {
            let head = comp.get(..start).unwrap_or_default();
            return js_trim(&format!("{head}{tail}")).to_owned();
        }
    }
    comp.to_owned()
}

/// `replaceGTE0`: `>=0.0.0` (or `>=0.0.0-0` with `includePrerelease`) means anything.
fn replace_gte0(comp: &str, include_prerelease: bool) -> String {
    let target = if include_prerelease {
        "0.0.0-0"
    } else {
        "0.0.0"
    };
    let matches = js_trim(comp)
        .strip_prefix(">=")
        .is_some_and(|rest| js_trim(rest) == target);
    if matches {
        String::new()
    } else {
        comp.to_owned()
    }
}

/// `new Comparator(comp)`: `GTLT\s*FULLPLAIN`, or the empty string for "any".
fn parse_comparator(input: &str, comp: &str) -> Result<Comparator, VersionError> {
    let comp = js_trim(comp);
    if comp.is_empty() {
        return Ok(Comparator::Any);
    }
    let (operator, rest) = match comp.as_bytes() {
        [b'<', b'=', ..] => (Operator::Le, comp.get(2..)),
        [b'>', b'=', ..] => (Operator::Ge, comp.get(2..)),
        [b'<', ..] => (Operator::Lt, comp.get(1..)),
        [b'>', ..] => (Operator::Gt, comp.get(1..)),
        [b'=', ..] => (Operator::Eq, comp.get(1..)),
        _ => (Operator::Eq, Some(comp)),
    };
    let version = rest
        .map(|r| r.strip_prefix(is_space).unwrap_or(r))
        .and_then(parse_full)
        .ok_or_else(|| range_error(input, "invalid comparator", comp))?
        .map_err(|reason| range_error(input, reason, comp))?;
    Ok(Comparator::Bound { operator, version })
}

/// `FULLPLAIN` (`v?MAJOR.MINOR.PATCH(-PRE)?(+BUILD)?`, the whole string): `None` when the
/// grammar does not match, `Err` when a number is past `MAX_SAFE_INTEGER`.
fn parse_full(text: &str) -> Option<Result<NpmVersion, &'static str>> {
    let body = text.strip_prefix('v').unwrap_or(text);
    let mut numbers = [0u64; 3];
    let mut rest = body;
    for (i, slot) in numbers.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix('.')?;
        }
        let (digits, after) = split_x_part(rest)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = match digits.parse::<u64>() {
            Ok(n) if n <= MAX_SAFE_INTEGER => n,
            _ => return Some(Err("version number larger than Number.MAX_SAFE_INTEGER")),
        };
        rest = after;
    }
    let mut pre = Vec::new();
    let mut pre_text = "";
    if let Some(after) = rest.strip_prefix('-') {
        let len = identifier_list_len(after, is_prerelease_identifier);
        if len == 0 {
            return None;
        }
        let (text, after) = after.split_at(len);
        pre = text.split('.').map(Identifier::new).collect();
        pre_text = text;
        rest = after;
    }
    if let Some(after) = rest.strip_prefix('+') {
        let len = identifier_list_len(after, |_| true);
        if len == 0 {
            return None;
        }
        rest = after.get(len..).unwrap_or_default();
    }
    if !rest.is_empty() {
        return None;
    }
    let [major, minor, patch] = numbers;
    let mut text = format!("{major}.{minor}.{patch}");
    if !pre_text.is_empty() {
        text.push('-');
        text.push_str(pre_text);
    }
    Some(Ok(NpmVersion {
        major,
        minor,
        patch,
        pre,
        text,
    }))
}

/// `new SemVer(version)` in strict mode.
fn parse_version(input: &str) -> Result<NpmVersion, VersionError> {
    let invalid = |reason| VersionError::Invalid {
        scheme: "npm",
        input: input.to_owned(),
        offset: 0,
        reason,
    };
    if input.len() > MAX_VERSION_LENGTH {
        return Err(invalid("version is longer than 256 characters"));
    }
    parse_full(js_trim(input))
        .ok_or_else(|| invalid("not a strict semantic version"))?
        .map_err(invalid)
}

/// `testSet`: every comparator passes, and a pre-release version also needs a comparator
/// with a pre-release on the same `[major, minor, patch]`.
fn test_set(set: &[Comparator], version: &NpmVersion, include_prerelease: bool) -> bool {
    if !set.iter().all(|c| c.test(version)) {
        return false;
    }
    if version.pre.is_empty() || include_prerelease {
        return true;
    }
    set.iter().any(|c| match c {
        Comparator::Any => false,
        Comparator::Bound {
            version: allowed, ..
        } => {
            !allowed.pre.is_empty()
                && (allowed.major, allowed.minor, allowed.patch)
                    == (version.major, version.minor, version.patch)
        }
    })
}
