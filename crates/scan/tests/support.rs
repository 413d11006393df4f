//! Test helpers live in `scan::testkit`, shared with the binary's tests.

pub use scan::testkit::*;
