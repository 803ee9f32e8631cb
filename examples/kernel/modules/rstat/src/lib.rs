//! A module written in Rust: it imports the C module's `c_fib` and the
//! kernel's output and tick counter, and formats its report with
//! `core::fmt` into a stack buffer.
#![no_std]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

unsafe extern "C" {
    fn c_fib(n: u32) -> u32;
    fn kticks() -> u32;
    fn kwrite(buf: *const u8, len: usize);
}

dynld::import_sig!(fn c_fib: unsafe extern "C" fn(u32) -> u32);
dynld::import_sig!(fn kticks: unsafe extern "C" fn() -> u32);
dynld::import_sig!(fn kwrite: unsafe extern "C" fn(*const u8, usize));
dynld::export_sig!(fn r_fib_sum: extern "C" fn(u32) -> u32);
dynld::export_sig!(fn r_report: extern "C" fn(u32) -> u32);

/// How many reports this module has written (bss, zero after each load).
static REPORTS: AtomicU32 = AtomicU32::new(0);

/// The sum of `c_fib(i)` for `i` in `0..n`, computed by calls into the
/// other module.
#[unsafe(no_mangle)]
pub extern "C" fn r_fib_sum(n: u32) -> u32 {
    // SAFETY: c_fib is the C module's function of this type (the loader
    // checked the signature when it bound the import).
    (0..n)
        .map(|i| unsafe { c_fib(i) })
        .fold(0, u32::wrapping_add)
}

/// A line of text in a stack buffer.
struct Line {
    buf: [u8; 96],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes a report on `n` through the kernel; returns the number of
/// reports written since the module was loaded.
#[unsafe(no_mangle)]
pub extern "C" fn r_report(n: u32) -> u32 {
    let kind = match n % 4 {
        0 => "even, even",
        1 => "odd",
        2 => "even",
        _ => "odd, odd",
    };
    let mut line = Line {
        buf: [0; 96],
        len: 0,
    };
    let reports = REPORTS.fetch_add(1, Ordering::Relaxed) + 1;
    // SAFETY: kticks and kwrite are the kernel's functions of these types.
    unsafe {
        let _ = writeln!(
            line,
            "rust: fib sum below {n} is {} ({kind}), report {reports} at tick {}",
            r_fib_sum(n),
            kticks()
        );
        kwrite(line.buf.as_ptr(), line.len);
    }
    reports
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    const MSG: &[u8] = b"rust module: panic\n";
    // SAFETY: kwrite is the kernel's output function.
    unsafe { kwrite(MSG.as_ptr(), MSG.len()) };
    loop {}
}
