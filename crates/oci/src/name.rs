//! Repository names, tags and references.
//!
//! Distribution Spec v1.1, "Pulling manifests": `<name>` MUST match
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` and a tag MUST
//! match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. Both grammars are small enough that a hand-written
//! scanner is clearer (and cheaper) than pulling in a regex engine; the property tests below
//! compare it against a straightforward restatement of the expression.
//!
//! Names are additionally limited to 255 bytes: the spec notes that "many clients impose a
//! limit of 255 characters on the length of the concatenation of the registry hostname…,
//! `/`, and `<name>`", and distribution has always refused 256 or more.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The longest repository name we accept, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name, tag or reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid repository name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid tag {tag:?}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    InvalidTag { tag: String },
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
}

/// A validated repository name such as `library/ubuntu`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| NameError::InvalidName {
            name: s.chars().take(300).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("name is empty"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(invalid("name is longer than 255 characters"));
        }
        for component in s.split('/') {
            if !is_path_component(component) {
                return Err(invalid(
                    "each /-separated component must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*",
                ));
            }
        }
        Ok(RepositoryName(s.to_owned()))
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        // A run of [a-z0-9]+.
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // A separator: ".", "_", "__" or "-+".
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// A validated tag such as `v1.2.3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let valid = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if valid {
            Ok(Tag(s.to_owned()))
        } else {
            Err(NameError::InvalidTag {
                tag: s.chars().take(200).collect(),
            })
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `<reference>` of a manifest URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    /// A reference containing `:` can only be a digest (a tag cannot contain `:`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl Reference {
    /// The tag, when the reference is one.
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_spec_names() {
        for ok in [
            "a",
            "library/ubuntu",
            "a/b/c/d/e/f/g/h/i/j",
            "my-org/my__repo",
            "a.b_c__d---e/f0",
            "0",
        ] {
            assert!(ok.parse::<RepositoryName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_hostile_names() {
        let deep = vec!["a"; 300].join("/");
        let long = "a".repeat(256);
        for bad in [
            "",
            "..",
            "a/../b",
            "a/./b",
            "%2e%2e",
            "Upper",
            "a//b",
            "/a",
            "a/",
            "a___b",
            "a_-b",
            "-a",
            "a.",
            "a b",
            "a\0b",
            "ü",
            deep.as_str(),
            long.as_str(),
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad:?}");
        }
        assert!("a".repeat(255).parse::<RepositoryName>().is_ok());
    }

    #[test]
    fn tags() {
        assert!("latest".parse::<Tag>().is_ok());
        assert!("_x.Y-1".parse::<Tag>().is_ok());
        assert!("a".repeat(128).parse::<Tag>().is_ok());
        for bad in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse::<Reference>(),
            Ok(Reference::Digest(_))
        ));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }

    /// A direct restatement of the spec's regular expression, used as an oracle.
    fn oracle_component(s: &str) -> bool {
        let mut rest = s;
        let take_alnum = |r: &str| {
            r.bytes()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                .count()
        };
        let n = take_alnum(rest);
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        while !rest.is_empty() {
            let sep = if rest.starts_with("__") {
                2
            } else if rest.starts_with('_') || rest.starts_with('.') {
                1
            } else if rest.starts_with('-') {
                rest.bytes().take_while(|&c| c == b'-').count()
            } else {
                return false;
            };
            rest = &rest[sep..];
            let n = take_alnum(rest);
            if n == 0 {
                return false;
            }
            rest = &rest[n..];
        }
        true
    }

    proptest! {
        #[test]
        fn component_matches_oracle(s in "[a-z0-9._/-]{0,40}") {
            let ours = s.parse::<RepositoryName>().is_ok();
            let oracle = !s.is_empty() && s.split('/').all(oracle_component);
            prop_assert_eq!(ours, oracle);
        }

        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = s.parse::<RepositoryName>();
            let _ = s.parse::<Reference>();
        }
    }
}
