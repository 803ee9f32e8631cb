//! The format's reader and writer: what one accepts the other writes back
//! identically.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dynld_suite::fuzzing::roundtrip(data);
});
