//! `events`: Bonded's background workers. Handlers and services record what happened (a
//! pushed manifest queues its scan in the same transaction); workers here act on it.
//!
//! Architecture invariant: workers never decide policy, and they reach registry content only
//! through the registry's service (so validation and caches stay in one place) and the
//! store traits.

pub mod evidence;
pub mod outbox;
pub mod promotion;
pub mod scan_worker;
pub mod signer;
