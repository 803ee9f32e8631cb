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
use dynld::sig::{of_fn, Desc, Signof};
#[cfg(feature = "registry")]
use dynld::{trap, Abi, Finder, Fixed, LoadOptions, Registry, Source, SymName};
use dynld::{Arena, Dynsym, Error, ExportTable, FnSource, Loader, Module, SEEK_CUR, SEEK_SET};

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

/// The same types as descriptions, for messages about a module that
/// expects another (computed from the Rust types at compile time).
static DESCS: [Desc; 3] = [
    <KMemcpy as Signof>::DESC.pointee(),
    <KTicks as Signof>::DESC.pointee(),
    <KWrite as Signof>::DESC.pointee(),
];
static DESC_STRS: [&str; 3] = [DESCS[0].as_str(), DESCS[1].as_str(), DESCS[2].as_str()];
static EXPORTS: ExportTable = ExportTable::new_const(&KERNEL).with_descs_const(&DESC_STRS);

// The module images, linked by aout at build time, kept in flash.
static CMATH: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cmath.dl"));
static RSTAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rstat.dl"));
static BAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bad.dl"));
static LIFE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/life.dl"));
#[cfg(feature = "registry")]
static ABI2: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/abi2.dl"));
#[cfg(feature = "registry")]
static LATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/late.dl"));
/// The module behind the kernel's ustub and wstub entries (only in flash).
#[cfg(feature = "registry")]
static MANY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/many.dl"));

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

/// The callbacks over `image`.
type ImageSource<'i> =
    FnSource<'i, Image, fn(&mut Image, &mut [u8]) -> isize, fn(&mut Image, i64, i32) -> i64>;

fn source(image: &mut Image) -> ImageSource<'_> {
    FnSource {
        file: image,
        read: image_read,
        seek: image_seek,
    }
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

/// Loads the module image `bytes` called `name`, and runs its constructors.
fn load<'p>(loader: Loader<'_, 'p>, name: &str, bytes: &'static [u8]) -> Result<Module<'p>, Error> {
    let mut image = Image { bytes, pos: 0 };
    let mut m = loader.name(name).load(&mut source(&mut image))?;
    m.init();
    Ok(m)
}

/// The module arena: a static buffer, no allocator, shared through a
/// static. Thumb-2 code that builds addresses with `movw`/`movt` needs its
/// module at a 64 KiB boundary (the module's header says so), hence the
/// alignment.
#[repr(C, align(65536))]
struct ArenaBuf([u8; ARENA_SIZE]);
const ARENA_SIZE: usize = 128 << 10;
#[cfg(not(all(feature = "gdb", target_arch = "arm")))]
static mut ARENA_BUF: ArenaBuf = ArenaBuf([0; ARENA_SIZE]);
// SAFETY: the buffer is used by nothing but this arena.
#[cfg(not(all(feature = "gdb", target_arch = "arm")))]
static ARENA: Arena<'static, 4> =
    unsafe { Arena::from_raw_parts(core::ptr::addr_of_mut!(ARENA_BUF).cast(), ARENA_SIZE) }
        .with_icache_flush_const(board::flush_icache);

// For a debugger (the `gdb` feature on Cortex-M3), the arena is RAM past
// the bss that no section of the kernel's ELF covers (`_arena` in
// arm.ld): gdb ignores a module's sections where they overlap one of the
// kernel's (the arena's static in .bss), so it could not name module
// code there.
#[cfg(all(feature = "gdb", target_arch = "arm"))]
extern "C" {
    /// The arena's start, on a 64 KiB boundary past the bss (arm.ld).
    static mut _arena: ArenaBuf;
}
// SAFETY: the RAM at `_arena` is used by nothing but this arena.
#[cfg(all(feature = "gdb", target_arch = "arm"))]
static ARENA: Arena<'static, 4> =
    unsafe { Arena::from_raw_parts(core::ptr::addr_of_mut!(_arena).cast(), ARENA_SIZE) }
        .with_icache_flush_const(board::flush_icache);

/// One round: load both modules, call them, unload them. Returns where
/// the modules were placed.
fn round(arena: &'static Arena<'static, 4>) -> Result<(usize, usize), Error> {
    let cmath = load(Loader::new(EXPORTS, arena), "cmath.dl", CMATH)?;
    kprintln!(
        "  cmath.dl loaded: {} exports, {} imports",
        cmath.nexport(),
        cmath.nimport()
    );
    tick();
    // Each function's type is checked against its export's signature,
    // and the handle cannot outlive the module.
    let greet = cmath.get::<extern "C" fn(*const u8, usize) -> usize>("c_greet")?;
    let n = greet.call(b"kernel".as_ptr(), 6);
    kprintln!("  c_greet wrote {n} bytes");
    let fib = cmath.get::<extern "C" fn(u32) -> u32>("c_fib")?;
    kprintln!("  c_fib(20) = {}", fib.call(20));
    let crc = cmath.get::<extern "C" fn(*const u8, usize) -> u32>("c_crc32")?;
    kprintln!(
        "  c_crc32(\"123456789\") = {:#010x}",
        crc.call(b"123456789".as_ptr(), 9)
    );
    let calls = cmath.get::<*const u32>("c_calls")?;
    // SAFETY: c_calls is the module's `unsigned`, live while it is loaded.
    let count = || unsafe { calls.as_ptr().read_volatile() };
    kprintln!("  c_calls = {}", count());

    // rstat imports from the kernel and from cmath: one table of both.
    let mut storage = [Dynsym::new("", 0, core::ptr::null()); 8];
    let both = ExportTable::gather(&mut storage, KERNEL.iter().copied().chain(cmath.exports()))?;
    let rstat = load(Loader::new(both, arena), "rstat.dl", RSTAT)?;
    kprintln!(
        "  rstat.dl loaded: {} exports, {} imports",
        rstat.nexport(),
        rstat.nimport()
    );
    let sum = rstat.get::<extern "C" fn(u32) -> u32>("r_fib_sum")?;
    kprintln!("  r_fib_sum(10) = {}", sum.call(10));
    let report = rstat.get::<extern "C" fn(u32) -> u32>("r_report")?;
    tick();
    report.call(12);
    tick();
    let reports = report.call(13);
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
    let arena = &ARENA;
    kprintln!("round 1");
    let first = round(arena)?;
    kprintln!("round 2");
    let second = round(arena)?;
    kprintln!("  same addresses as round 1: {}", first == second);

    life(arena)?;
    #[cfg(feature = "registry")]
    registry()?;
    match load(Loader::new(EXPORTS, arena), "bad.dl", BAD) {
        Ok(_) => kprintln!("bad.dl loaded, but its kticks has the wrong type"),
        Err(e) => kprintln!("refused: {e}"),
    }
    kprintln!("arena: {} bytes in use", arena.in_use());
    Ok(())
}

/// A module's constructors run when it is loaded here, its destructor and
/// exit handler when it is unloaded (with dynld's exit handlers: the
/// kernel's `lifecycle` feature).
#[cfg(feature = "lifecycle")]
fn life(arena: &'static Arena<'static, 4>) -> Result<(), Error> {
    let life = load(Loader::new(EXPORTS, arena), "life.dl", LIFE)?;
    let number = life.get::<extern "C" fn() -> u32>("l_number")?;
    kprintln!("life.dl loaded: constructors made {}", number.call());
    let register = life.get::<extern "C" fn() -> i32>("l_register")?;
    kprintln!("  atexit returned {}", register.call());
    drop(life);
    kprintln!("  unloaded");
    Ok(())
}

/// Without dynld's exit handlers (its `atexit` feature) the module that
/// registers one is refused: the kernel does not export `__cxa_atexit`.
#[cfg(not(feature = "lifecycle"))]
fn life(arena: &'static Arena<'static, 4>) -> Result<(), Error> {
    match load(Loader::new(EXPORTS, arena), "life.dl", LIFE).map(drop) {
        Ok(()) => kprintln!("life.dl loaded without exit handlers"),
        Err(e) => kprintln!("life.dl refused: {e}"),
    }
    Ok(())
}

/// The kernel's interface as an ABI: version 1.2. A module whose metadata
/// requires another major (or a later minor) is refused before any of its
/// code runs.
#[cfg(feature = "registry")]
static ABIS: [Abi<'static>; 1] = [Abi::new("kernel", 1, 2)];

/// The modules in flash by name, for the registry's finder.
#[cfg(feature = "registry")]
static FLASH: [(&str, &[u8]); 6] = [
    ("abi2", ABI2),
    ("cmath", CMATH),
    ("late", LATE),
    ("life", LIFE),
    ("many", MANY),
    ("rstat", RSTAT),
];

/// Finds a module in [`FLASH`] and hands the loader its read/seek
/// callbacks.
#[cfg(feature = "registry")]
struct FlashFinder;

#[cfg(feature = "registry")]
impl Finder for FlashFinder {
    fn find(
        &self,
        name: &str,
        load: &mut dyn FnMut(&mut dyn Source) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Some(&(_, bytes)) = FLASH.iter().find(|(n, _)| *n == name) else {
            return Err(Error::NotFound {
                name: SymName::new(name),
            });
        };
        load(&mut source(&mut Image { bytes, pos: 0 }))
    }
}

/// The registry: a fixed capacity of four modules in a static, over the
/// kernel's exports and the arena, offering the kernel's ABI and finding
/// modules by name in flash.
#[cfg(all(feature = "registry", not(feature = "gdb")))]
static REGISTRY: Registry<'static, Fixed<'static, 4>> = Registry::fixed(EXPORTS, &ARENA)
    .with_abis(&ABIS)
    .with_finder(&FlashFinder);

/// The registry's messages (with the `gdb` feature): what it loaded,
/// unloaded and refused, in a ring the kernel dumps at the end.
#[cfg(feature = "gdb")]
static PUTBUF: dynld::Putbuf<1024> = dynld::Putbuf::new();

/// The registry, its messages going to [`PUTBUF`].
#[cfg(feature = "gdb")]
static REGISTRY: Registry<'static, Fixed<'static, 4>> = Registry::fixed(EXPORTS, &ARENA)
    .with_abis(&ABIS)
    .with_finder(&FlashFinder)
    .with_log(&PUTBUF);

/// cmath and rstat through the registry: rstat binds to cmath's exports,
/// so cmath cannot be unloaded before it; a hold keeps rstat; the sweep
/// unloads cmath once rstat is gone. Then the ABI check and deferred
/// binding.
#[cfg(feature = "registry")]
fn registry() -> Result<(), Error> {
    kprintln!("registry");
    let reg = &REGISTRY;
    let cmath = reg.load(
        "cmath",
        &mut source(&mut Image {
            bytes: CMATH,
            pos: 0,
        }),
    )?;
    let rstat = reg.load(
        "rstat",
        &mut source(&mut Image {
            bytes: RSTAT,
            pos: 0,
        }),
    )?;
    let sum = rstat.get::<extern "C" fn(u32) -> u32>("r_fib_sum")?;
    kprintln!("  r_fib_sum(10) = {}", sum.call(10));
    let fib = cmath.find("c_fib").map_or(0, |s| s.addr as usize);
    drop(rstat);
    drop(cmath);
    reg.modules(|m| {
        kprintln!(
            "  id {} {}: holds {}, dependents {}",
            m.id,
            m.name,
            m.holds,
            m.dependents
        )
    });
    if let Err(e) = reg.unload("cmath") {
        kprintln!("  unload cmath: {e}");
    }
    let held = reg.hold("rstat")?;
    if let Err(e) = reg.unload("rstat") {
        kprintln!("  unload rstat: {e}");
    }
    drop(held);
    // An address inside a module function, as a fault handler sees one
    // (which must not wait for the lock: try_locate gives up if it is
    // held).
    reg.try_locate((fib + 6) as *const (), |l| match l.symbol {
        Some(s) => kprintln!("  c_fib+6 is {}: {}+{:#x}", l.module, s.name, s.offset),
        None => kprintln!("  c_fib+6 is {}+{:#x}", l.module, l.module_offset),
    });
    reg.unload("rstat")?;
    kprintln!("  rstat unloaded");
    kprintln!("  sweep unloaded {}", reg.sweep());
    kprintln!("  arena: {} bytes in use", ARENA.in_use());
    abi(reg);
    deferred(reg)
}

/// A module that requires the kernel's ABI at another major is refused
/// before its constructor runs (which would print a line).
#[cfg(feature = "registry")]
fn abi(reg: &Registry<'static, Fixed<'static, 4>>) {
    for a in reg.abis() {
        kprintln!("  offers ABI {} {}.{}", a.class, a.major, a.minor);
    }
    match reg.load_named("abi2", &LoadOptions::new()).map(drop) {
        Ok(()) => {
            kprintln!("  abi2 loaded, though it requires ABI kernel 2.0");
            let _ = reg.unload("abi2");
        }
        Err(e) => kprintln!("  refused: {e}"),
    }
}

/// What a call to a deferred import that is not bound yet returns: the
/// trap reports it here instead of jumping nowhere.
#[cfg(feature = "registry")]
fn unbound(u: &trap::Unbound<'_>) -> usize {
    kprintln!("  trap: {u}");
    0
}

/// Deferred binding: late.dl is loaded before cmath, whose c_fib it
/// calls; its import waits on a trap until cmath loads (found by name in
/// flash), then is bound to it.
#[cfg(feature = "registry")]
fn deferred(reg: &'static Registry<'static, Fixed<'static, 4>>) -> Result<(), Error> {
    trap::set_handler(unbound);
    let late = reg.load_with(
        "late",
        &mut source(&mut Image {
            bytes: LATE,
            pos: 0,
        }),
        &LoadOptions::new().defer(true),
    )?;
    reg.unresolved(|m, i| kprintln!("  {m} waits for {i}"));
    let fib = late.get::<extern "C" fn(u32) -> u32>("late_fib")?;
    kprintln!("  late_fib(20) = {}", fib.call(20));
    let cmath = reg.load_named("cmath", &LoadOptions::new())?;
    let mut pending = 0;
    reg.unresolved(|_, _| pending += 1);
    kprintln!("  cmath loaded: {pending} imports pending");
    kprintln!("  late_fib(20) = {}", fib.call(20));
    reg.resolve()?;
    drop(cmath);
    drop(late);
    if let Err(e) = reg.unload("cmath") {
        kprintln!("  unload cmath: {e}");
    }
    reg.unload("late")?;
    kprintln!("  sweep unloaded {}", reg.sweep());
    kprintln!("  arena: {} bytes in use", ARENA.in_use());
    autoload(reg)
}

/// What a call through the c_fib stub returns when cmath cannot be loaded.
#[cfg(feature = "registry")]
extern "C" fn fib_failed(_: u32) -> u32 {
    u32::MAX
}

#[cfg(feature = "registry")]
dynld::stubs! {
    /// cmath's c_fib, for a kernel that has not loaded cmath.
    module KSTUBS = "cmath";
    stub c_fib: extern "C" fn(u32) -> u32 = "fn(uint) uint", or fib_failed;
}

/// An autoload stub: the first call through c_fib loads cmath from flash
/// and patches the pointer; the second goes straight to the function.
#[cfg(feature = "registry")]
fn autoload(reg: &'static Registry<'static, Fixed<'static, 4>>) -> Result<(), Error> {
    dynld::stub::set_autoload(reg);
    kprintln!("  c_fib stub patched: {}", c_fib.is_patched());
    kprintln!("  c_fib(20) = {}", (c_fib.call())(20));
    let direct = reg
        .hold("cmath")?
        .addr("c_fib", dynld::signof!("fn(uint) uint"))?;
    kprintln!(
        "  c_fib stub patched: {}, to c_fib: {}",
        c_fib.is_patched(),
        c_fib.get() == direct
    );
    kprintln!("  c_fib(10) = {}", (c_fib.call())(10));
    if let Err(e) = reg.unload("cmath") {
        kprintln!("  unload cmath: {e}");
    }
    // SAFETY: no call through c_fib is running (one core, none in flight).
    unsafe { KSTUBS.unload() }?;
    kprintln!(
        "  cmath unloaded, c_fib stub patched: {}",
        c_fib.is_patched()
    );
    by_call(reg)?;
    kprintln!("  arena: {} bytes in use", ARENA.in_use());
    #[cfg(feature = "gdb")]
    {
        kprintln!("putbuf ({} bytes written)", PUTBUF.total());
        let _ = PUTBUF.dump(&mut Console);
    }
    Ok(())
}

#[cfg(feature = "registry")]
type Sum = extern "C" fn(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32;

#[cfg(feature = "registry")]
#[allow(clippy::too_many_arguments)]
extern "C" fn sum_failed(
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
) -> i32 {
    -1
}

#[cfg(feature = "registry")]
extern "C" fn wide_failed(_: i64, _: i64) -> i64 {
    -1
}

#[cfg(feature = "registry")]
dynld::stubs! {
    /// many's functions, each call holding the module.
    module KMANY = "many";
    ustub m_sum: Sum = "fn(int, int, int, int, int, int, int, int, int, int) int", or sum_failed, words 6;
    ustub m_wide: extern "C" fn(i64, i64) -> i64 = "fn(vlong, vlong) vlong", or wide_failed, words 4;
}

/// many's m_sum through a weak entry, which never loads it.
#[cfg(feature = "registry")]
mod weak {
    use super::{sum_failed, Sum};
    dynld::stubs! {
        pub module KMANY_WEAK = "many";
        wstub m_sum: Sum = "fn(int, int, int, int, int, int, int, int, int, int) int", or sum_failed, words 6;
    }
}

/// ustub and wstub entries: each ustub call holds many for the call only
/// (loading it if it is not loaded), with stack arguments and a 64-bit
/// result through the trampoline; the wstub goes through only while
/// something else keeps many loaded.
#[cfg(feature = "registry")]
fn by_call(reg: &'static Registry<'static, Fixed<'static, 4>>) -> Result<(), Error> {
    let sum = |f: Sum| f(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    kprintln!(
        "  wstub m_sum before many loads: {}",
        sum(weak::m_sum.call())
    );
    kprintln!("  ustub m_sum = {}", sum(m_sum.call()));
    reg.unload("many")?;
    kprintln!("  many unloaded while idle");
    let w = (m_wide.call())(0x1_0000_0001, 3);
    kprintln!("  ustub m_wide = {w:#x}");
    kprintln!("  wstub m_sum while loaded: {}", sum(weak::m_sum.call()));
    reg.unload("many")?;
    kprintln!("  wstub m_sum after unload: {}", sum(weak::m_sum.call()));
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
