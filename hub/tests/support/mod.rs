// Each test file uses its own part of the support.
#[allow(dead_code)]
pub mod hub;
pub mod postgres;
