//! Bonded's policies: which repositories a rule guards ([`glob`]) and what it decides. Today
//! that is the pull policy ([`pull`]): images in guarded repositories are served only when
//! the required trust authorities have signed them.
//!
//! Architecture invariants:
//! - A policy decides; it never acts. The registry refuses the pull, the promotion worker
//!   copies the image.
//! - Policies reason over verified facts only. A signature counts once the trust service
//!   has verified it against an authority's key; an unverified signature is no evidence.
//! - Every decision says which rule decided it and which facts it used.

pub mod cel;
pub mod glob;
pub mod promotion;
pub mod pull;

pub use glob::{GlobError, RepositoryGlob};
pub use pull::{
    Action, PullEnforcer, PullPolicy, PullPolicyError, SignatureMode, SignatureRequirement,
    SignerLookup,
};
