//! Repository globs: `prod/**`, `team-*/app`, `dev/*/service`.
//!
//! Repository names are `/`-separated paths (OCI Distribution Spec, "Pulling manifests":
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`). A glob is
//! matched segment by segment: `**` is any number of whole segments (zero included, so
//! `prod/**` also guards `prod` itself: a policy errs on the side of guarding), and inside a
//! segment `*` is any run of characters other than `/`. Nothing else is special. Written
//! here because the generic glob crates treat `*` and `**` differently from this rule, which
//! is the one DTR and the issue describe.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// The most `**` segments a glob may have.
const MAX_DOUBLE_STARS: usize = 4;

/// Why a glob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("repository glob {glob:?}: {reason}")]
    Invalid { glob: String, reason: &'static str },
}

/// A parsed repository glob.
#[derive(Clone, PartialEq, Eq)]
pub struct RepositoryGlob {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of segments.
    Any,
    /// A segment pattern: literal pieces separated by `*`.
    Pattern(Vec<String>),
}

impl RepositoryGlob {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What `repository` has beyond the glob's leading literal segments (for `dev/**` and
    /// `dev/team/app`, `team/app`): the `{name}` of a promotion's target template.
    pub fn remainder<'r>(&self, repository: &'r str) -> &'r str {
        let literal = self
            .segments
            .iter()
            .take_while(|s| matches!(s, Segment::Pattern(pieces) if pieces.len() == 1))
            .count();
        let mut rest = repository;
        for _ in 0..literal {
            rest = rest.split_once('/').map_or("", |(_, after)| after);
        }
        rest
    }

    /// Whether `repository` matches.
    pub fn matches(&self, repository: &str) -> bool {
        let names: Vec<&str> = repository.split('/').collect();
        match_segments(&self.segments, &names)
    }
}

fn match_segments(globs: &[Segment], names: &[&str]) -> bool {
    match globs.split_first() {
        None => names.is_empty(),
        Some((Segment::Any, rest)) => {
            (0..=names.len()).any(|skip| names.get(skip..).is_some_and(|n| match_segments(rest, n)))
        }
        Some((Segment::Pattern(pieces), rest)) => match names.split_first() {
            Some((name, more)) => match_segment(pieces, name) && match_segments(rest, more),
            None => false,
        },
    }
}

/// `pieces` are the literal parts between `*`s: the first must start the name, the last end
/// it, the others appear in order between them.
fn match_segment(pieces: &[String], name: &str) -> bool {
    let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
        return false;
    };
    if pieces.len() == 1 {
        return name == first;
    }
    let Some(mut rest) = name.strip_prefix(first.as_str()) else {
        return false;
    };
    for middle in pieces.iter().skip(1).take(pieces.len().saturating_sub(2)) {
        match rest.find(middle.as_str()) {
            Some(at) => rest = rest.get(at + middle.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last.as_str())
}

impl FromStr for RepositoryGlob {
    type Err = GlobError;

    fn from_str(text: &str) -> Result<RepositoryGlob, GlobError> {
        let fail = |reason| GlobError::Invalid {
            glob: text.chars().take(300).collect(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.len() > 255 {
            return Err(fail("longer than 255 characters"));
        }
        let mut segments = Vec::new();
        for part in text.split('/') {
            if part.is_empty() {
                return Err(fail("empty path segment"));
            }
            if part == "**" {
                if segments.last() != Some(&Segment::Any) {
                    segments.push(Segment::Any);
                }
                continue;
            }
            if part.contains("**") {
                return Err(fail("** must be a whole path segment"));
            }
            let valid = part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-*".contains(c));
            if !valid {
                return Err(fail(
                    "only lower-case letters, digits, '.', '_', '-', '*' and '/' may appear",
                ));
            }
            segments.push(Segment::Pattern(
                part.split('*').map(str::to_owned).collect(),
            ));
        }
        // Each `**` multiplies the ways a name can be split; four keep matching linear in
        // practice (names are attacker-chosen, globs are not, but a typo should not hurt).
        if segments.iter().filter(|s| **s == Segment::Any).count() > MAX_DOUBLE_STARS {
            return Err(fail("more than 4 `**` segments"));
        }
        Ok(RepositoryGlob {
            text: text.to_owned(),
            segments,
        })
    }
}

impl fmt::Display for RepositoryGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for RepositoryGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryGlob({:?})", self.text)
    }
}

impl<'de> Deserialize<'de> for RepositoryGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(s: &str) -> RepositoryGlob {
        s.parse().expect("glob")
    }

    #[test]
    fn double_star_spans_segments() {
        let g = glob("prod/**");
        for yes in ["prod", "prod/app", "prod/team/app"] {
            assert!(g.matches(yes), "{yes}");
        }
        for no in ["production/app", "dev/prod/app", "pro"] {
            assert!(!g.matches(no), "{no}");
        }
        assert!(glob("**/app").matches("a/b/app"));
        assert!(glob("**/app").matches("app"));
        assert!(!glob("**/app").matches("a/app2"));
        assert!(glob("a/**/z").matches("a/z"));
        assert!(glob("a/**/z").matches("a/b/c/z"));
        assert!(glob("**").matches("anything/at/all"));
    }

    #[test]
    fn single_star_is_one_segment() {
        let g = glob("dev/*");
        assert!(g.matches("dev/app"));
        assert!(!g.matches("dev/team/app"));
        assert!(!g.matches("dev"));
        let g = glob("team-*/app-*-svc");
        assert!(g.matches("team-a/app-x-svc"));
        assert!(g.matches("team-/app--svc"));
        assert!(!g.matches("team-a/app-x-svc2"));
        assert!(!g.matches("team/app-x-svc"));
        assert!(glob("*a*a*").matches("aa"));
        assert!(!glob("*a*a*").matches("a"));
        assert!(!glob("ab*ba").matches("aba"));
    }

    #[test]
    fn bad_globs_are_refused() {
        for bad in ["", "a//b", "/a", "a/", "a**", "A/b", "a b", "a/?"] {
            assert!(bad.parse::<RepositoryGlob>().is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn matching_never_panics(g in "[a-z*/]{0,20}", name in "[a-z/]{0,30}") {
            if let Ok(glob) = g.parse::<RepositoryGlob>() {
                let _ = glob.matches(&name);
            }
        }

        #[test]
        fn literal_globs_match_exactly(name in "[a-z]{1,5}(/[a-z]{1,5}){0,3}", other in "[a-z]{1,5}(/[a-z]{1,5}){0,3}") {
            let glob: RepositoryGlob = name.parse().expect("literal");
            proptest::prop_assert!(glob.matches(&name));
            proptest::prop_assert_eq!(glob.matches(&other), other == name);
        }
    }
}
