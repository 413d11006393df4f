//! `WWW-Authenticate` challenges (RFC 9110 section 11.6.1), which tell a client how a registry
//! wants to be authenticated: `Bearer realm=…,service=…,scope=…` for the Docker token flow,
//! `Basic realm=…` for credentials sent directly.
//!
//! Hand-written because the grammar is small and the crates that parse it bring an HTTP
//! framework along; the parser is total: any input gives a (possibly empty) list, never a
//! panic, and never more challenges than input bytes.

/// One challenge of a `WWW-Authenticate` header (RFC 9110 section 11.6.1):
/// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, `auth-param = token BWS "=" BWS
/// ( token / quoted-string )`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower case (auth schemes are case-insensitive).
    pub scheme: String,
    /// Parameter names in lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the challenges of a `WWW-Authenticate` value. Anything that does not fit the
/// grammar is skipped; the result is never larger than the input.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        bytes: header.as_bytes(),
        at: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        cursor.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if cursor.done() {
            return challenges;
        }
        let scheme = cursor.token();
        if scheme.is_empty() {
            // Not a token character: skip it and look for the next challenge.
            cursor.at += 1;
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        cursor.skip(|b| b == b' ' || b == b'\t');
        while let Some(param) = cursor.auth_param() {
            challenge.params.push(param);
            cursor.skip(|b| b == b' ' || b == b'\t');
            if cursor.peek() == Some(b',') {
                cursor.at += 1;
                cursor.skip(|b| b == b' ' || b == b'\t');
            }
        }
        if challenge.params.is_empty() {
            // A token68 (`Negotiate abc==`) is not used by registries; skip it.
            cursor.skip(|b| is_token_byte(b) || b == b'=' || b == b'/');
        }
        challenges.push(challenge);
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.at;
        self.skip(is_token_byte);
        String::from_utf8_lossy(self.bytes.get(start..self.at).unwrap_or_default()).into_owned()
    }

    /// `name = value`, or `None` (and the cursor unmoved) when the input is not one.
    fn auth_param(&mut self) -> Option<(String, String)> {
        let start = self.at;
        let name = self.token();
        self.skip(|b| b == b' ' || b == b'\t');
        if name.is_empty() || self.peek() != Some(b'=') {
            self.at = start;
            return None;
        }
        self.at += 1;
        self.skip(|b| b == b' ' || b == b'\t');
        let value = if self.peek() == Some(b'"') {
            self.at += 1;
            self.quoted_rest()
        } else {
            let value = self.token();
            if value.is_empty() {
                // `name=` followed by nothing usable: a token68 such as `abc==`.
                self.at = start;
                return None;
            }
            value
        };
        Some((name.to_ascii_lowercase(), value))
    }

    /// The rest of a quoted-string after its opening quote, unescaped.
    fn quoted_rest(&mut self) -> String {
        let mut value = Vec::new();
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.at += 1;
                    }
                }
                other => value.push(other),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
