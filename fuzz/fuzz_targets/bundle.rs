//! Any bytes given to the bundle decoder give a bundle or a clean error, never a
//! panic. The key is fixed, so the fuzzer also explores headers that pass the
//! organisation check and bodies that fail authentication.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amparo::sync::bundle::read_signed(data);
    let _ = amparo::sync::bundle::open(data, "org", &[7u8; 32]);
});
