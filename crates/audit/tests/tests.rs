//! The audit crate's integration tests, one binary: the Merkle tree (published vectors,
//! exhaustive small trees, property tests), signed checkpoints, the tamper-detecting
//! verifier, audit entries, the audit log over a real SQLite store, its HTTP API, and
//! `bonded audit verify` offline and over loopback HTTP against a tampered database.

mod checkpoint;
mod data_dir;
mod entry;
mod http;
mod log;
mod merkle_exhaustive;
mod merkle_properties;
mod merkle_vectors;
mod support;
mod tamper;
mod verify;
