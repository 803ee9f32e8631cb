//! Arbitrary bytes as a module: the loader must refuse or load them without
//! writing outside its memory, leaking, or losing the source position.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dynld_suite::fuzzing::load(data);
});
