//! Structured mutations of valid modules (header words, directory entries,
//! the directory's shape, table words, bytes), so the fuzzer reaches
//! binding and relocation with plausible headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dynld_suite::fuzzing::load_mutated(data);
});
