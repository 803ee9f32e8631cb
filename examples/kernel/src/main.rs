//! A tiny bare-metal kernel that loads dynld modules: no operating system,
//! no `std`, no allocator.
//!
//! It exports three services (output, a tick counter, memory copy) with
//! signatures computed from their Rust types, reads module images from
//! flash through Plan 9-style read/seek callbacks, loads them into a static
//! arena, calls them, unloads them, loads them again into the same arena,
//! and shows the error for a module whose import has the wrong type. The
//! same code runs on two boards; `arm.rs` and `riscv.rs` hold what
//! differs (start-up, UART, exit, instruction-cache flush).
#![no_std]
#![no_main]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};
use dynld::sig::{of_fn, Signof};
use dynld::{
    signof, Arena, Dynsym, Error, ExportTable, FnSource, Loader, Module, SEEK_CUR, SEEK_SET,
};

#[cfg_attr(target_arch = "arm", path = "arm.rs")]
#[cfg_attr(target_arch = "riscv32", path = "riscv.rs")]
mod board;

/// The console: the board's UART.
struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        board::write(s.as_bytes());
        Ok(())
    }
}

macro_rules! kprintln {
    ($($arg:tt)*) => {{
        let _ = writeln!(Console, $($arg)*);
    }};
}

// The kernel's services.

/// The tick counter. The kernel advances it once per step of its main
/// loop, so the run (and the test that checks it) is deterministic.
static TICKS: AtomicU32 = AtomicU32::new(0);

fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn kticks() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

extern "C" fn kwrite(buf: *const u8, len: usize) {
    // SAFETY: modules call this with a buffer of `len` readable bytes, as
    // its signature states (checked when they are bound to it).
    board::write(unsafe { core::slice::from_raw_parts(buf, len) });
}

extern "C" fn kmemcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: as for memcpy: the caller passes `n` writable bytes at `dst`
    // and `n` readable bytes at `src`, not overlapping.
    unsafe { core::ptr::copy_nonoverlapping(src, dst, n) };
    dst
}

type KMemcpy = extern "C" fn(*mut u8, *const u8, usize) -> *mut u8;
type KTicks = extern "C" fn() -> u32;
type KWrite = extern "C" fn(*const u8, usize);

/// The kernel's export table, sorted by name (checked at compile time),
/// each signature computed from the function's Rust type.
static KERNEL: [Dynsym; 3] = [
    Dynsym::new("kmemcpy", of_fn::<KMemcpy>(), kmemcpy as *const ()),
    Dynsym::new("kticks", of_fn::<KTicks>(), kticks as *const ()),
    Dynsym::new("kwrite", of_fn::<KWrite>(), kwrite as *const ()),
];
static EXPORTS: ExportTable = ExportTable::new_const(&KERNEL);

// The module images, linked by aout at build time, kept in flash.
static CMATH: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cmath.dl"));
static RSTAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rstat.dl"));
static BAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bad.dl"));

/// A module image read as a kernel reads a file: through callbacks.
struct Image {
    bytes: &'static [u8],
    pos: usize,
}

fn image_read(f: &mut Image, buf: &mut [u8]) -> isize {
    let rest = f.bytes.get(f.pos..).unwrap_or(&[]);
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    f.pos += n;
    n as isize
}

fn image_seek(f: &mut Image, off: i64, whence: i32) -> i64 {
    let from = match whence {
        SEEK_SET => 0,
        SEEK_CUR => f.pos as i64,
        _ => return -1,
    };
    match from.checked_add(off) {
        Some(p) if p >= 0 && p as usize <= f.bytes.len() => {
            f.pos = p as usize;
            p
        }
        _ => -1,
    }
}

fn load<'p>(loader: &Loader<'_, 'p>, bytes: &'static [u8]) -> Result<Module<'p>, Error> {
    let mut image = Image { bytes, pos: 0 };
    let mut src = FnSource {
        file: &mut image,
        read: image_read,
        seek: image_seek,
    };
    loader.load(&mut src)
}

/// The module's function `name`, of type `F`: the export's signature must
/// be `F`'s (computed at compile time).
fn func<F: Signof + Copy>(m: &Module<'_>, name: &str) -> Result<F, Error> {
    // SAFETY: F is a function-pointer type, and every export of these
    // modules carries a signature, which `import` checks against F's.
    unsafe { m.import(name, const { of_fn::<F>() }) }
}

/// The module arena: a static buffer, no allocator. Thumb-2 code that
/// builds addresses with `movw`/`movt` needs its module at a 64 KiB
/// boundary (the module's header says so), hence the alignment.
#[repr(C, align(65536))]
struct ArenaBuf([u8; 128 << 10]);
static mut ARENA: ArenaBuf = ArenaBuf([0; 128 << 10]);

/// One round: load both modules, call them, unload them. Returns where
/// the modules were placed.
fn round(arena: &Arena<'_, 4>) -> Result<(usize, usize), Error> {
    let cmath = load(&Loader::new(EXPORTS, arena), CMATH)?;
    kprintln!(
        "  cmath.dl loaded: {} exports, {} imports",
        cmath.nexport(),
        cmath.nimport()
    );
    tick();
    let greet = func::<extern "C" fn(*const u8, usize) -> usize>(&cmath, "c_greet")?;
    let n = greet(b"kernel".as_ptr(), 6);
    kprintln!("  c_greet wrote {n} bytes");
    let fib = func::<extern "C" fn(u32) -> u32>(&cmath, "c_fib")?;
    kprintln!("  c_fib(20) = {}", fib(20));
    let crc = func::<extern "C" fn(*const u8, usize) -> u32>(&cmath, "c_crc32")?;
    kprintln!(
        "  c_crc32(\"123456789\") = {:#010x}",
        crc(b"123456789".as_ptr(), 9)
    );
    let calls = cmath.lookup("c_calls", signof!(u32))?.cast::<u32>();
    // SAFETY: c_calls is the module's `unsigned`, live while it is loaded.
    let count = || unsafe { calls.read_volatile() };
    kprintln!("  c_calls = {}", count());

    // rstat imports from the kernel and from cmath: one table of both.
    let mut storage = [Dynsym::new("", 0, core::ptr::null()); 8];
    let both = ExportTable::gather(&mut storage, KERNEL.iter().copied().chain(cmath.exports()))?;
    let rstat = load(&Loader::new(both, arena), RSTAT)?;
    kprintln!(
        "  rstat.dl loaded: {} exports, {} imports",
        rstat.nexport(),
        rstat.nimport()
    );
    let sum = func::<extern "C" fn(u32) -> u32>(&rstat, "r_fib_sum")?;
    kprintln!("  r_fib_sum(10) = {}", sum(10));
    let report = func::<extern "C" fn(u32) -> u32>(&rstat, "r_report")?;
    tick();
    report(12);
    tick();
    let reports = report(13);
    kprintln!("  r_report returned {reports}; c_calls = {}", count());

    let bases = (cmath.base() as usize, rstat.base() as usize);
    drop(rstat);
    drop(cmath);
    kprintln!(
        "  unloaded: {} bytes in {} regions in use",
        arena.in_use(),
        arena.regions()
    );
    Ok(bases)
}

fn run() -> Result<(), Error> {
    // SAFETY: kernel_main runs once; this is the only reference to ARENA.
    let buf = unsafe { &mut (*core::ptr::addr_of_mut!(ARENA)).0 };
    let arena: Arena<'_, 4> = Arena::new(buf).with_icache_flush(board::flush_icache);
    kprintln!("round 1");
    let first = round(&arena)?;
    kprintln!("round 2");
    let second = round(&arena)?;
    kprintln!("  same addresses as round 1: {}", first == second);

    match load(&Loader::new(EXPORTS, &arena), BAD) {
        Ok(_) => kprintln!("bad.dl loaded, but its kticks has the wrong type"),
        Err(e) => kprintln!("bad.dl refused: {e}"),
    }
    kprintln!("arena: {} bytes in use", arena.in_use());
    Ok(())
}

/// Zeroes the words in `[p, end)`: the bss, before anything uses it.
///
/// # Safety
///
/// `[p, end)` must be writable, word-aligned, and in use by nothing yet.
unsafe fn zero_words(mut p: *mut u32, end: *mut u32) {
    while p < end {
        // SAFETY: inside the range the caller vouches for.
        unsafe { p.write_volatile(0) };
        // SAFETY: at most one past the range's end.
        p = unsafe { p.add(1) };
    }
}

/// Called by the board's start-up code with memory initialised.
fn kernel_main() -> ! {
    board::init();
    kprintln!("dynld kernel on {}", board::NAME);
    match run() {
        Ok(()) => {
            kprintln!("done");
            board::exit(true)
        }
        Err(e) => {
            kprintln!("error: {e}");
            board::exit(false)
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kprintln!("kernel panic: {info}");
    board::exit(false)
}
