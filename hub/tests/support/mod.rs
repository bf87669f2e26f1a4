// Each test file uses its own part of the support.
#[allow(dead_code)]
pub mod hub;
#[allow(dead_code)]
pub mod laptops;
#[allow(dead_code)]
pub mod postgres;
