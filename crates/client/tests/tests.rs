//! The client crate's integration tests, linked into one binary: the parsers, then the
//! registry API against a scripted server, then against the CNCF distribution registry
//! (Debian package `docker-registry`, which must be installed).

mod auth;
mod distribution;
mod pull;
mod push;
mod reference;
mod referrers;
mod server;
mod verify;
