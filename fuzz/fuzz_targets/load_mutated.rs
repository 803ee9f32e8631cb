//! Structured mutations of valid modules, so the fuzzer reaches binding and
//! relocation with plausible headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let m = dynld_suite::fuzzing::mutate(data);
    let _ = dynld_suite::fuzzing::load(&m);
    dynld_suite::fuzzing::roundtrip(&m);
});
