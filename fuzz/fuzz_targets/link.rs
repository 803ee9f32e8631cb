//! Arbitrary and mutated ELF objects through `aout link`: an error or a
//! module the reader accepts, never a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dynld_suite::fuzzing::link(data);
});
