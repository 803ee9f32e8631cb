//! The Rust half of the sample module.
#![no_std]

dynld::export_sig!(fn mean: extern "C" fn(*const i64, i64) -> i64);

/// The mean of `n` values at `v`.
#[unsafe(no_mangle)]
pub extern "C" fn mean(v: *const i64, n: i64) -> i64 {
    if v.is_null() || n <= 0 {
        return 0;
    }
    // SAFETY: the caller passes `n` readable values.
    let s = unsafe { core::slice::from_raw_parts(v, n as usize) };
    s.iter().sum::<i64>() / n
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
