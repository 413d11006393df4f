//! `scan`: everything needed to say what is in an image and what is wrong with it, with no
//! server: layer walking, package detection, version comparison, the vulnerability DB
//! (build and read), matching, and the SBOM and VEX formats. The CLI runs it on an OCI layout
//! or a remote image; the registry runs it in a background worker.

pub mod advisory;
pub mod binary;
pub mod db;
pub mod detect;
pub mod image;
pub mod import;
pub mod inventory;
pub mod java;
pub mod layer;
pub mod limits;
pub mod matcher;
pub mod model;
pub mod remote;
pub mod report;
pub mod rpmdb;
pub mod scanner;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod update;
pub mod version;
pub mod vex;
