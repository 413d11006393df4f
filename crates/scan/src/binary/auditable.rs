//! The dependency list that `cargo auditable` embeds in Rust executables.
//!
//! `cargo auditable build` links a `.dep-v0` section (ELF and PE; `__DATA,.dep-v0` in Mach-O)
//! holding zlib-compressed JSON of the form
//! `{"packages":[{"name","version","source","kind","dependencies":[index…],"root"}],
//! "format":1}` (rust-secure-code/cargo-auditable, `PARSING.md` and the `auditable-serde`
//! schema). Locating the section and decompressing it is left to the format authors' own
//! `auditable-info` crate (used without its `serde` and `wasm` features), whose decompression
//! stops at the caller's size limit, so a compression bomb costs at most that much memory.
//! The JSON is then read into the small [`CrateDep`] record with `serde_json`; the dependency
//! graph itself is not needed for matching and is not kept.

use serde::Deserialize;

use super::{BinaryError, executable_format};

/// One crate compiled into the binary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CrateDep {
    pub name: String,
    /// The version as recorded (semver, e.g. `0.1.44`).
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry`, or another string a future cargo-auditable
    /// may write.
    #[serde(default)]
    pub source: Option<String>,
    /// `build` for build-time-only dependencies; `None` when the field is absent, which the
    /// format defines as `runtime`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Whether this is the crate the binary was built from.
    #[serde(default)]
    pub root: bool,
}

/// The JSON document's top level; unknown fields such as `format` are ignored.
#[derive(Deserialize)]
struct AuditData {
    packages: Vec<CrateDep>,
}

/// Reads the crates recorded by `cargo auditable` in an ELF, PE or Mach-O executable.
///
/// Returns `Ok(None)` when `bytes` is not such an executable or has no `.dep-v0` section.
/// `max_json_bytes` caps the decompressed JSON; larger data gives
/// [`BinaryError::AuditDataTooLarge`] without decompressing more than the cap.
pub fn read_auditable(
    bytes: &[u8],
    max_json_bytes: usize,
) -> Result<Option<Vec<CrateDep>>, BinaryError> {
    if executable_format(bytes).is_none() {
        return Ok(None);
    }
    let json = match auditable_info::json_from_slice(bytes, max_json_bytes) {
        Ok(json) => json,
        Err(auditable_info::Error::NoAuditData) => return Ok(None),
        Err(auditable_info::Error::OutputLimitExceeded) => {
            return Err(BinaryError::AuditDataTooLarge {
                limit: max_json_bytes,
            });
        }
        Err(other) => return Err(BinaryError::AuditData(other)),
    };
    let data: AuditData = serde_json::from_str(&json).map_err(BinaryError::AuditJson)?;
    Ok(Some(data.packages))
}
