//! Arbitrary bytes as a module, loaded with the default limits (no size
//! limit) into the mmap provider, from a source that knows its length and
//! from one that does not: the memory the loader asks to bring in stays
//! within what it read plus 64 KiB. Run under `-rss_limit_mb`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dynld_suite::fuzzing::load_defaults(data);
});
