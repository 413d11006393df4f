//! The `Key: value` stanza format shared by dpkg's `status`, Python's core metadata and (with
//! one-letter keys and no continuation lines) apk's `installed`. Hand-written because the
//! formats are a few lines each and every crate for them either buffers differently or accepts
//! less: continuation lines start with a space or tab (Debian Policy 5.1), stanzas are
//! separated by blank lines.

/// One stanza: fields in order of appearance, continuation lines joined with `\n`.
pub(crate) struct Stanza<'a> {
    fields: Vec<(&'a str, String)>,
}

impl<'a> Stanza<'a> {
    /// The first field with this name, compared case-insensitively (dpkg field names are
    /// case-insensitive, Debian Policy 5.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.fields
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `text` into stanzas. Lines without a colon that are not continuations are ignored
/// (they carry nothing we could use); `stop_at_first_blank` reads only the header block, as
/// Python metadata puts the free-form description after it.
pub(crate) fn stanzas(text: &str, stop_at_first_blank: bool) -> Vec<Stanza<'_>> {
    let mut out = Vec::new();
    let mut current: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(Stanza {
                    fields: std::mem::take(&mut current),
                });
                if stop_at_first_blank {
                    return out;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        out.push(Stanza { fields: current });
    }
    out
}
