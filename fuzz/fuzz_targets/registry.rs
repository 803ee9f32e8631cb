//! Arbitrary bytes as a module loaded into a registry beside a provider:
//! refused loads leave the books and memory as they were; loaded ones
//! report counts, symbols and addresses that agree with the module; every
//! region goes back at the end.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dynld_suite::fuzzing::registry(data);
});
