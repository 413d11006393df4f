//! Maven artifact versions.
//!
//! Authority: `org.apache.maven.artifact.versioning.ComparableVersion` as shipped in
//! maven-artifact 3.8 (the release the osv-scalibr vectors were generated with), which the
//! POM reference's "Version Order Specification" describes:
//!
//! - the lower-cased version splits into items on `.`, on `-` and on every change between
//!   digits and letters; an empty item is `0`;
//! - a `-`, and a change between digits and letters, opens a sub-list: `1-1.foo` is
//!   `[1, [1, foo]]`, and "a hyphen usually precedes a qualifier, and is always less
//!   important than something preceded with a dot";
//! - qualifiers order `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final =
//!   release < sp`, then every other word in lexical order; `a`, `b` and `m` directly
//!   followed by a digit mean alpha, beta and milestone;
//! - null items (`0`, `""`, an empty sub-list) at the end of each list are trimmed, so
//!   `1 = 1.0 = 1-0 = 1.ga`;
//! - comparing, a missing item acts as null: `1.1 > 1` but `1-rc < 1` and `1-sp > 1`;
//!   a number beats a sub-list, which beats a qualifier.
//!
//! Numbers compare exactly at any length (Java's `BigIntegerItem`). Only ASCII digits count
//! as digits (Java's `Character.isDigit` also takes other Unicode digits), and unknown
//! qualifiers compare by UTF-16 code units as Java strings do.
//!
//! `ComparableVersion` is not a total order, and neither is this faithful copy: a qualifier
//! always sorts below a sub-list, a sub-list below a number, yet against a missing item each
//! compares by its own rule. So `4milestone45 < 4 < 4.RELEASE.28` but
//! `4milestone45 > 4.RELEASE.28`, and `5-RELEASE-SNAPSHOT < 5Final < 5.0a-3` but
//! `5-RELEASE-SNAPSHOT > 5.0a-3`. Versions made of numbers and at most one qualifier with
//! its number (the shape releases use) order consistently; the tests check that property.

use std::cmp::Ordering;

use super::{Numeral, VersionError};

/// A parsed Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
enum Item {
    Number(Numeral),
    Qualifier(Qualifier),
    List(Vec<Item>),
}

/// A word item; `Known` holds the index in the qualifier order, in which 5 is the release
/// (`""`). Every known qualifier sorts before every unknown one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Qualifier {
    Known(u8),
    Unknown(Box<str>),
}

const RELEASE: u8 = 5;

impl Qualifier {
    fn new(word: &str, followed_by_digit: bool) -> Qualifier {
        let word = match word {
            "a" if followed_by_digit => "alpha",
            "b" if followed_by_digit => "beta",
            "m" if followed_by_digit => "milestone",
            w => w,
        };
        match word {
            "alpha" => Qualifier::Known(0),
            "beta" => Qualifier::Known(1),
            "milestone" => Qualifier::Known(2),
            "rc" | "cr" => Qualifier::Known(3),
            "snapshot" => Qualifier::Known(4),
            "" | "ga" | "final" | "release" => Qualifier::Known(RELEASE),
            "sp" => Qualifier::Known(6),
            w => Qualifier::Unknown(w.into()),
        }
    }
}

impl Ord for Qualifier {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Qualifier::Known(a), Qualifier::Known(b)) => a.cmp(b),
            (Qualifier::Known(_), Qualifier::Unknown(_)) => Ordering::Less,
            (Qualifier::Unknown(_), Qualifier::Known(_)) => Ordering::Greater,
            (Qualifier::Unknown(a), Qualifier::Unknown(b)) => {
                a.encode_utf16().cmp(b.encode_utf16())
            }
        }
    }
}

impl PartialOrd for Qualifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number(n) => n.is_zero(),
            Item::Qualifier(q) => *q == Qualifier::Known(RELEASE),
            Item::List(items) => items.is_empty(),
        }
    }

    /// Compares with a missing item (Java's `compareTo(null)`).
    fn cmp_missing(&self) -> Ordering {
        match self {
            Item::Number(n) => {
                if n.is_zero() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            Item::Qualifier(q) => q.cmp(&Qualifier::Known(RELEASE)),
            Item::List(items) => items.first().map_or(Ordering::Equal, Item::cmp_missing),
        }
    }

    fn cmp(&self, other: &Item) -> Ordering {
        match (self, other) {
            (Item::Number(a), Item::Number(b)) => a.cmp(b),
            (Item::Number(_), _) => Ordering::Greater,
            (Item::Qualifier(a), Item::Qualifier(b)) => a.cmp(b),
            (Item::Qualifier(_), _) => Ordering::Less,
            (Item::List(_), Item::Number(_)) => Ordering::Less,
            (Item::List(_), Item::Qualifier(_)) => Ordering::Greater,
            (Item::List(a), Item::List(b)) => compare_lists(a, b),
        }
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    let len = a.len().max(b.len());
    for i in 0..len {
        let order = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(x), None) => x.cmp_missing(),
            (None, Some(y)) => y.cmp_missing().reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// `ListItem.normalize`: drop null items from the end, stepping over (not stopping at)
/// non-null sub-lists.
fn normalize(items: &mut Vec<Item>) {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        match items.get(i) {
            Some(item) if item.is_null() => {
                items.remove(i);
            }
            Some(Item::List(_)) => {}
            _ => break,
        }
    }
}

/// The parser's open lists: the root first, the innermost last. Closing folds the innermost
/// into its parent, so each list is normalized before its parent sees it, as in Java.
struct Lists(Vec<Vec<Item>>);

impl Lists {
    fn push_item(&mut self, item: Item) {
        if let Some(current) = self.0.last_mut() {
            current.push(item);
        }
    }

    fn open(&mut self) {
        self.0.push(Vec::new());
    }

    fn close_all(mut self) -> Vec<Item> {
        while self.0.len() > 1 {
            if let Some(mut inner) = self.0.pop() {
                normalize(&mut inner);
                self.push_item(Item::List(inner));
            }
        }
        let mut root = self.0.pop().unwrap_or_default();
        normalize(&mut root);
        root
    }
}

fn parse_item(is_digit: bool, text: &str) -> Item {
    if is_digit {
        Item::Number(Numeral::from_digits(text))
    } else {
        Item::Qualifier(Qualifier::new(text, false))
    }
}

impl MavenVersion {
    /// Never fails beyond the generic checks of `Version::parse`: Maven orders any string.
    pub fn parse(input: &str) -> Result<MavenVersion, VersionError> {
        let version = input.to_lowercase();
        let mut lists = Lists(vec![Vec::new()]);
        let mut is_digit = false;
        let mut start = 0;
        for (i, c) in version.char_indices() {
            let item_text = version.get(start..i).unwrap_or_default();
            match c {
                '.' | '-' => {
                    lists.push_item(if i == start {
                        Item::Number(Numeral::default())
                    } else {
                        parse_item(is_digit, item_text)
                    });
                    start = i + 1;
                    if c == '-' {
                        lists.open();
                    }
                }
                '0'..='9' => {
                    if !is_digit && i > start {
                        lists.push_item(Item::Qualifier(Qualifier::new(item_text, true)));
                        start = i;
                        lists.open();
                    }
                    is_digit = true;
                }
                _ => {
                    if is_digit && i > start {
                        lists.push_item(parse_item(true, item_text));
                        start = i;
                        lists.open();
                    }
                    is_digit = false;
                }
            }
        }
        if let Some(tail) = version.get(start..).filter(|t| !t.is_empty()) {
            lists.push_item(parse_item(is_digit, tail));
        }
        Ok(MavenVersion {
            items: lists.close_all(),
        })
    }
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_lists(&self.items, &other.items)
    }
}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MavenVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MavenVersion {}
