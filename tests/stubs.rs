//! Autoload stubs (`dynld::stub`, `dynld::stubs!`) over a C module found
//! by name in a directory: the first call through a `stub` loads the
//! module and patches the entry, later calls go straight to the function;
//! RETFUNC on a failed load or a signature mismatch; `ustub` holding the
//! module for each call only; `wstub` never loading; re-stubbing at
//! unload; eight integer, eight floating-point and three stack arguments
//! through every kind; two threads making the first call at once; a stub
//! reached from its own module's constructor. Built for x86-64 and run
//! under qemu-user for AArch64 and RV64 (the C module compiled by the
//! matching gcc).
#![cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]

use dynld::stub::{self, Entry};
use dynld::{signof, Dynsym, Error, ExportTable, Growable, Registry, SearchPath, MMAP};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

static NOTES: Mutex<Vec<i32>> = Mutex::new(Vec::new());

extern "C" fn note(v: i32) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push(v);
}

fn notes() -> Vec<i32> {
    std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Called by the module's constructor: goes through a `stub` of the
/// module being loaded, which must not wait for that load.
extern "C" fn host_reenter(x: i32) -> i32 {
    // Both go to RETFUNC (1000 + a + b): 1007 * 10000 + 1008.
    (cm_add.call())(x, 2) * 10000 + (by_call::cm_add.call())(x, 3)
}

/// Called by the module during a call through a `ustub`: the module is
/// held, so unloading it is refused (1), or it is not (0).
extern "C" fn host_unload_attempt() -> i32 {
    match registry().unload("cmath") {
        Err(Error::InUse { .. }) => 1,
        _ => 0,
    }
}

static HOST_SYMS: [Dynsym<'static>; 3] = [
    Dynsym::new(
        "host_reenter",
        signof!("fn(int) int"),
        host_reenter as *const (),
    ),
    Dynsym::new(
        "host_unload_attempt",
        signof!("fn(void) int"),
        host_unload_attempt as *const (),
    ),
    Dynsym::new("note", signof!("fn(int) void"), note as *const ()),
];

const CMATH_C: &str = r#"
#include "dynld.h"
extern void note(int);
extern int host_reenter(int);
extern int host_unload_attempt(void);
DYNLD_MODULE(cmath, "1.2.0", "math");
DYNLD_IMPORT(note, "fn(int) void");
DYNLD_IMPORT(host_reenter, "fn(int) int");
DYNLD_IMPORT(host_unload_attempt, "fn(void) int");
DYNLD_EXPORT(cm_add, "fn(int, int) int");
DYNLD_EXPORT(cm_probe, "fn(int) int");
DYNLD_EXPORT(cm_many, "fn(vlong, vlong, vlong, vlong, vlong, vlong, vlong, vlong, double, double, double, double, double, double, double, double, vlong, vlong, double) double");
int cm_add(int a, int b) { return a + b; }
int cm_probe(int x) { return 100 * host_unload_attempt() + x; }
double cm_many(long a0, long a1, long a2, long a3, long a4, long a5, long a6, long a7,
	double d0, double d1, double d2, double d3, double d4, double d5, double d6, double d7,
	long s0, long s1, double s2)
{
	return a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7
		+ 9 * d0 + 10 * d1 + 11 * d2 + 12 * d3 + 13 * d4 + 14 * d5 + 15 * d6 + 16 * d7
		+ 17 * s0 + 18 * s1 + 19 * s2;
}
static volatile int spin;
__attribute__((constructor)) static void hi(void)
{
	note(1);
	/* Long enough for a second thread's first call to arrive meanwhile. */
	for (int i = 0; i < 20000000; i++)
		spin++;
	note(host_reenter(5));
}
__attribute__((destructor)) static void bye(void) { note(10); }
"#;

type Many = extern "C" fn(
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    i64,
    i64,
    f64,
) -> f64;

extern "C" fn add_failed(a: i32, b: i32) -> i32 {
    1000 + a + b
}
extern "C" fn probe_failed(x: i32) -> i32 {
    -x
}
#[allow(clippy::too_many_arguments)]
extern "C" fn many_failed(
    a0: i64,
    _: i64,
    _: i64,
    _: i64,
    _: i64,
    _: i64,
    _: i64,
    _: i64,
    _: f64,
    _: f64,
    _: f64,
    _: f64,
    _: f64,
    _: f64,
    _: f64,
    _: f64,
    _: i64,
    _: i64,
    s2: f64,
) -> f64 {
    -(a0 as f64) - s2
}
extern "C" fn uadd_failed(a: u32, b: u32) -> u32 {
    a.wrapping_sub(b)
}

// cmath through `stub` entries: what `aout stubs tests/stubs/cmath.stubs`
// writes (checked by `the_table_is_what_aout_stubs_writes`).
include!("stubs/cmath_stubs.rs");

/// The same module through `ustub` and `wstub` entries (each kind in a
/// Rust module of its own, the entries being named after the functions).
mod by_call {
    use super::*;
    dynld::stubs! {
        pub module CMU = "cmath";
        ustub cm_probe: extern "C" fn(i32) -> i32 = "fn(int) int", or probe_failed, words 0;
        ustub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed, words 0;
        ustub cm_many: Many = "fn(vlong, vlong, vlong, vlong, vlong, vlong, vlong, vlong, double, double, double, double, double, double, double, double, vlong, vlong, double) double", or many_failed, words 5;
    }
}
mod weak {
    use super::*;
    dynld::stubs! {
        pub module CMW = "cmath";
        wstub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
        wstub cm_many: Many = "fn(vlong, vlong, vlong, vlong, vlong, vlong, vlong, vlong, double, double, double, double, double, double, double, double, vlong, vlong, double) double", or many_failed, words 5;
    }
}
mod missing {
    use super::*;
    dynld::stubs! {
        pub module NOMOD = "nomod";
        stub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
    }
}
mod wrong_version {
    use super::*;
    dynld::stubs! {
        pub module CMV = "cmath", version "2.0";
        stub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
    }
}
mod wrong_class {
    use super::*;
    dynld::stubs! {
        pub module CMC = "cmath", class "driver";
        stub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
    }
}
mod mistyped {
    use super::*;
    dynld::stubs! {
        pub module CMX = "cmath";
        stub cm_add: extern "C" fn(u32, u32) -> u32 = "fn(uint, uint) uint", or uadd_failed;
    }
}

static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOKED: AtomicU32 = AtomicU32::new(0);

fn hook(e: &Entry, err: &Error) {
    HOOKED.fetch_add(1, Ordering::Relaxed);
    FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("{}.{}: {err}", e.module().name(), e.name()));
}

fn failures() -> Vec<String> {
    std::mem::take(&mut *FAILURES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The registry every stub binds through, set up once: the host's table
/// and a search path over the directory the module was built into.
fn registry() -> &'static Registry<'static, Growable<'static>> {
    static R: OnceLock<&'static Registry<'static, Growable<'static>>> = OnceLock::new();
    R.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dynld-stubs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = dynld_suite::cc::module("stubs-cmath", &[CMATH_C], false);
        std::fs::write(dir.join("cmath.dl"), bytes).unwrap();
        let path: &'static SearchPath =
            Box::leak(Box::new(SearchPath::new().dir(&dir).pattern("%s.dl")));
        let reg: &'static Registry<'static, Growable<'static>> = Box::leak(Box::new(
            Registry::growable(ExportTable::new_const(&HOST_SYMS), &MMAP).with_finder(path),
        ));
        stub::set_autoload(reg);
        stub::set_failure_hook(hook);
        reg
    })
}

/// The tests share the registry and the entries: one at a time, each
/// starting with cmath unloaded and every entry a stub.
static SERIAL: Mutex<()> = Mutex::new(());

fn start() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reg = registry();
    // SAFETY: no call through an entry is running (the tests are serial
    // and every call has returned).
    unsafe {
        for m in [&CMATH, &mistyped::CMX] {
            if m.entries().iter().any(|e| e.is_patched()) {
                m.unload().unwrap();
            }
        }
    }
    let _ = reg.unload("cmath");
    assert!(reg.hold("cmath").is_err(), "cmath still loaded");
    notes();
    failures();
    g
}

/// What cm_many gives for the arguments of [`call_many`].
fn many_want() -> f64 {
    let a: [i64; 8] = [1, -2, 3, -4, 5, -6, 7, -8];
    let d: [f64; 8] = [0.5, 1.5, 2.5, 3.5, -4.5, 5.5, 6.5, 7.25];
    let (s0, s1, s2) = (1000i64, -2000i64, 0.125f64);
    let mut want = 0.0;
    for (i, v) in a.iter().enumerate() {
        want += (i as f64 + 1.0) * *v as f64;
    }
    for (i, v) in d.iter().enumerate() {
        want += (i as f64 + 9.0) * v;
    }
    want += 17.0 * s0 as f64 + 18.0 * s1 as f64 + 19.0 * s2;
    want
}

fn call_many(f: Many) -> f64 {
    f(
        1, -2, 3, -4, 5, -6, 7, -8, 0.5, 1.5, 2.5, 3.5, -4.5, 5.5, 6.5, 7.25, 1000, -2000, 0.125,
    )
}

#[test]
fn stub_loads_on_first_call_patches_and_restubs_at_unload() {
    let _g = start();
    let reg = registry();
    assert!(!cm_add.is_patched());
    assert_eq!((cm_add.call())(2, 3), 5);
    // The constructor ran once, and its calls through cm_add's stub and
    // ustub entries, made while cmath was loading, went to RETFUNC.
    assert_eq!(notes(), [1, 10071008]);
    assert_eq!(
        failures(),
        [
            "cmath.cm_add: autoload stub reached while its own module loads",
            // The ustub belongs to another stub module: the registry says
            // cmath is loading (Busy) rather than wait.
            "cmath.cm_add: module cmath is loading"
        ]
    );
    assert!(cm_add.is_patched());
    // Later calls go straight to the function: the entry holds its address.
    let held = reg.hold("cmath").unwrap();
    let addr = held.addr("cm_add", signof!("fn(int, int) int")).unwrap();
    drop(held);
    assert_eq!(cm_add.get(), addr);
    assert_eq!((cm_add.call())(40, 2), 42);
    // A patched entry holds its module: the registry will not unload it.
    assert!(matches!(
        reg.unload("cmath"),
        Err(Error::InUse { holds: 1, .. })
    ));
    // The stub module's unload puts the entries back and unloads it.
    // SAFETY: no call through cm_add is running.
    unsafe { CMATH.unload() }.unwrap();
    assert_eq!(notes(), [10]);
    assert!(!cm_add.is_patched());
    assert!(reg.hold("cmath").is_err());
    // The next call loads it again.
    assert_eq!((cm_add.call())(1, 1), 2);
    assert_eq!(notes(), [1, 10071008]);
}

#[test]
fn eight_integer_eight_float_and_stack_arguments_through_every_kind() {
    let _g = start();
    let want = many_want();
    // wstub before anything loads cmath: RETFUNC, with every argument.
    assert_eq!(call_many(weak::cm_many.call()), -1.0 - 0.125);
    assert!(registry().hold("cmath").is_err(), "a wstub loaded cmath");
    // ustub: loads, and holds only for the call.
    assert_eq!(call_many(by_call::cm_many.call()), want);
    assert_eq!(notes(), [1, 10071008]);
    assert!(!by_call::cm_many.is_patched());
    // stub: patched.
    assert_eq!(call_many(cm_many.call()), want);
    assert!(cm_many.is_patched());
    assert_eq!(call_many(cm_many.call()), want);
    // wstub now that cmath is loaded: goes through.
    assert_eq!(call_many(weak::cm_many.call()), want);
}

#[test]
fn retfunc_when_the_load_or_the_signature_fails() {
    let _g = start();
    let before = missing::NOMOD.failures();
    assert_eq!((missing::cm_add.call())(1, 2), 1003);
    assert_eq!(missing::NOMOD.failures(), before + 1);
    assert!(!missing::cm_add.is_patched());
    let f = failures();
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("nomod.cm_add: module nomod not found"),
        "{f:?}"
    );
    // cmath loads, but its cm_add is not fn(uint, uint) uint.
    assert_eq!((mistyped::cm_add.call())(7, 3), 4);
    assert!(!mistyped::cm_add.is_patched());
    let f = failures();
    assert!(
        f.iter()
            .any(|l| l.starts_with("cmath.cm_add: signature mismatch: cm_add")),
        "{f:?}"
    );
    // cmath is 1.2.0, of class math: not 2.x, nor a driver.
    assert_eq!((wrong_version::cm_add.call())(1, 1), 1002);
    assert_eq!((wrong_class::cm_add.call())(1, 1), 1002);
    let f = failures();
    assert!(f[0].contains("stubs need cmath"), "{f:?}");
    assert!(f[1].contains("stubs need cmath of class driver"), "{f:?}");
}

#[test]
fn ustub_holds_for_the_call_only_and_wstub_never_loads() {
    let _g = start();
    let reg = registry();
    // wstub: nothing loaded, RETFUNC; still nothing loaded.
    assert_eq!((weak::cm_add.call())(1, 2), 1003);
    assert!(reg.hold("cmath").is_err());
    // ustub: the call loads cmath; during it, the module is held (the
    // registry refuses to unload it: 100 + 7), after it, not.
    assert_eq!((by_call::cm_probe.call())(7), 107);
    assert_eq!(notes(), [1, 10071008]);
    reg.unload("cmath").unwrap();
    assert_eq!(notes(), [10]);
    // Unloaded while idle: the next call loads it again.
    assert_eq!((by_call::cm_probe.call())(8), 108);
    assert_eq!(notes(), [1, 10071008]);
    // wstub goes through while something else keeps it loaded...
    assert_eq!((weak::cm_add.call())(1, 2), 3);
    reg.unload("cmath").unwrap();
    // ...and back to RETFUNC once it is gone.
    assert_eq!((weak::cm_add.call())(1, 2), 1003);
}

#[test]
fn two_threads_making_the_first_call_load_once() {
    let _g = start();
    let go = std::sync::Barrier::new(2);
    let (a, b) = std::thread::scope(|s| {
        let t1 = s.spawn(|| {
            go.wait();
            (cm_add.call())(20, 1)
        });
        let t2 = s.spawn(|| {
            go.wait();
            (cm_add.call())(30, 2)
        });
        (t1.join().unwrap(), t2.join().unwrap())
    });
    assert_eq!((a, b), (21, 32));
    // One load: one constructor (its own re-entrant call went to RETFUNC).
    assert_eq!(notes(), [1, 10071008]);
    assert!(cm_add.is_patched());
}

/// The `stub` table above is `aout stubs`'s output for the description
/// file, unchanged.
#[test]
fn the_table_is_what_aout_stubs_writes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stubs");
    let text = std::fs::read_to_string(dir.join("cmath.stubs")).unwrap();
    let f = aout_tools::stubs::parse(&text).unwrap();
    let want = aout_tools::stubs::rust(&f, "cmath.stubs").unwrap();
    let have = std::fs::read_to_string(dir.join("cmath_stubs.rs")).unwrap();
    assert_eq!(
        have, want,
        "regenerate with: aout stubs tests/stubs/cmath.stubs -o tests/stubs/cmath_stubs.rs"
    );
}
