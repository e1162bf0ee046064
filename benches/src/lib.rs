//! Benchmark support shared with the end-to-end tests: the target farm.

pub mod farm;
