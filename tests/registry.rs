//! The registry over modules compiled from C by gcc and linked by `aout
//! link`: binding across modules, dependents and holds refusing unload,
//! the sweep, destructors at unload, fresh data on reload, the symbol
//! table by name and by address, and threads that leave nothing behind.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::{Error, Fixed, Memory, Provider, Region, Registry, Seal, SliceSource, State, MMAP};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dynld_suite::notes::{host, notes, HEADER};

/// A provider: exports functions and a counter in its data; notes 100
/// when its destructor runs.
const LIB: &str = r#"
DYNLD_EXPORT(lib_add, "fn(int, int) int");
DYNLD_EXPORT(lib_bump, "fn(void) int");
DYNLD_EXPORT(lib_inner, "fn(void) *void");
static int counter;
int lib_add(int a, int b) { return a + b; }
int lib_bump(void) { return ++counter; }
__attribute__((noinline)) static int lib_helper(int x) { note(x); return x * 3; }
void *lib_inner(void) { return (void *)lib_helper; }
int lib_use(int x) { return lib_helper(x); }
__attribute__((destructor)) static void lib_bye(void) { note(100); }
"#;

/// A dependent of `lib`; notes 200 when its destructor runs.
const APP: &str = r#"
DYNLD_IMPORT(lib_add, "fn(int, int) int");
DYNLD_IMPORT(lib_bump, "fn(void) int");
DYNLD_EXPORT(app_run, "fn(int) int");
extern int lib_add(int, int);
extern int lib_bump(void);
int app_run(int x) { return lib_add(x, 1000) + lib_bump(); }
__attribute__((constructor)) static void app_hello(void) { note(1); }
__attribute__((destructor)) static void app_bye(void) { note(200); }
"#;

/// Exports a name `lib` exports too.
const DUP: &str = r#"
DYNLD_EXPORT(lib_add, "fn(int, int) int");
int lib_add(int a, int b) { return a - b; }
"#;

/// Imports names nobody provides.
const MISS: &str = r#"
extern int nowhere_one(void);
extern int nowhere_two(void);
int miss_run(void) { return nowhere_one() + nowhere_two(); }
"#;

/// Imports `lib_add` with another type than `lib` exports.
const WRONG: &str = r#"
DYNLD_IMPORT(lib_add, "fn(long) long");
extern long lib_add(long);
long wrong_run(long x) { return lib_add(x); }
"#;

/// Compiles `src` (after the common header) with gcc and links it.
fn c_module(name: &str, src: &str) -> Vec<u8> {
    dynld_suite::cc::module(&format!("reg-{name}"), &[&format!("{HEADER}{src}")], false)
}

struct Modules {
    lib: Vec<u8>,
    app: Vec<u8>,
}

fn modules() -> &'static Modules {
    static M: std::sync::OnceLock<Modules> = std::sync::OnceLock::new();
    M.get_or_init(|| Modules {
        lib: c_module("lib", LIB),
        app: c_module("app", APP),
    })
}

type AddFn = extern "C" fn(i32, i32) -> i32;
type RunFn = extern "C" fn(i32) -> i32;
type BumpFn = extern "C" fn() -> i32;

/// Tests that read NOTES run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn provider_dependents_holds_and_sweep() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    let reg = Registry::growable(host(), &MMAP);
    notes();
    let lib = reg.load("lib", &mut SliceSource::new(&m.lib)).unwrap();
    let lib_id = lib.id();
    drop(lib);
    let app = reg.load("app", &mut SliceSource::new(&m.app)).unwrap();
    assert_eq!(notes(), [1], "app's constructor ran at load");
    let app_id = app.id();
    assert!(app.imports().any(|i| i.provider == Provider(lib_id)));
    let run = app.get::<RunFn>("app_run").unwrap();
    assert_eq!(run.call(5), 1006);
    drop(app);

    let info = reg.info("lib").unwrap();
    assert_eq!((info.holds, info.dependents, info.candidate), (0, 1, false));
    // The provider cannot go while app is bound to it.
    let e = reg.unload("lib").unwrap_err();
    assert!(
        matches!(&e, Error::InUse { holds: 0, dependents: 1, by, .. } if by.as_str() == "app"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "module lib in use: 0 holds, 1 dependent (app)"
    );
    assert!(reg.info(lib_id).unwrap().candidate, "refused: a candidate");
    assert_eq!(reg.sweep(), 0, "its dependent is still there");

    // A held module cannot go either.
    let held = reg.hold("app").unwrap();
    let again = held.clone();
    assert_eq!(reg.info(app_id).unwrap().holds, 2);
    let e = reg.unload(app_id).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InUse {
                holds: 2,
                dependents: 0,
                ..
            }
        ),
        "{e}"
    );
    drop((held, again));
    assert_eq!(reg.info("app").unwrap().holds, 0);
    assert!(notes().is_empty(), "nothing unloaded yet");

    // A function through the table holds its module.
    let f = reg.func::<RunFn>("app_run").unwrap();
    assert_eq!(f.provider(), Provider(app_id));
    assert_eq!(f.symbol().call(1), 1003);
    assert!(matches!(
        reg.unload("app"),
        Err(Error::InUse { holds: 1, .. })
    ));
    drop(f);

    // The sweep: app (a candidate now, released) goes, then lib, which
    // that freed; destructors run, dependent first.
    assert_eq!(reg.sweep(), 2);
    assert_eq!(notes(), [200, 100]);
    assert!(reg.list().is_empty());
    assert!(reg.lookup("lib_add").is_none(), "symbols left the table");
}

#[test]
fn unload_runs_destructors_and_reload_starts_fresh() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    let reg = Registry::growable(host(), &MMAP);
    notes();
    let lib = reg.load("lib", &mut SliceSource::new(&m.lib)).unwrap();
    let bump = lib.get::<BumpFn>("lib_bump").unwrap();
    assert_eq!((bump.call(), bump.call(), bump.call()), (1, 2, 3));
    // Loading a loaded name reads nothing and gives another hold.
    let twice = reg.load("lib", &mut SliceSource::new(&[])).unwrap();
    assert_eq!(twice.id(), lib.id());
    assert_eq!(reg.info("lib").unwrap().holds, 2);
    let first = lib.id();
    drop((lib, twice));
    reg.unload("lib").unwrap();
    assert_eq!(notes(), [100], "the destructor ran at unload");
    assert!(matches!(reg.unload("lib"), Err(Error::NoModule { .. })));

    let lib = reg.load("lib", &mut SliceSource::new(&m.lib)).unwrap();
    assert_ne!(lib.id(), first, "ids are not reused");
    let bump = lib.get::<BumpFn>("lib_bump").unwrap();
    assert_eq!(bump.call(), 1, "the reloaded module's data is fresh");
}

#[test]
fn refusals_change_nothing() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    let reg = Registry::growable(host(), &MMAP);
    // No provider yet: app is refused, naming what it lacks.
    let e = reg.load("app", &mut SliceSource::new(&m.app)).unwrap_err();
    assert!(
        matches!(&e, Error::Unresolved { count: 2, names } if names.as_str() == "lib_add, lib_bump"),
        "{e}"
    );
    assert_eq!(e.to_string(), "undefined symbols: lib_add, lib_bump");
    let miss = c_module("miss", MISS);
    let e = reg.load("miss", &mut SliceSource::new(&miss)).unwrap_err();
    assert_eq!(e.to_string(), "undefined symbols: nowhere_one, nowhere_two");
    assert!(reg.list().is_empty());

    let _lib = reg.load("lib", &mut SliceSource::new(&m.lib)).unwrap();
    // Two modules exporting one name: the second is refused, naming both.
    let dup = c_module("dup", DUP);
    let e = reg.load("dup", &mut SliceSource::new(&dup)).unwrap_err();
    assert!(matches!(e, Error::Clash { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "module dup exports lib_add, which lib already exports"
    );
    // A module exporting a host name is refused too.
    let shadow = c_module("shadow", "void note(int v) { (void)v; }\n");
    let e = reg
        .load("shadow", &mut SliceSource::new(&shadow))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "module shadow exports note, which host already exports"
    );
    // An import of another type than the provider's export.
    let wrong = c_module("wrong", WRONG);
    let e = reg
        .load("wrong", &mut SliceSource::new(&wrong))
        .unwrap_err();
    assert!(matches!(e, Error::SigMismatch { .. }), "{e}");
    // None of those left a trace.
    let list = reg.list();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), list[0].dependents), ("lib", 0));
    assert!(matches!(
        reg.load("", &mut SliceSource::new(&m.lib)),
        Err(Error::Limit { .. })
    ));
    assert!(matches!(
        reg.load(&"x".repeat(57), &mut SliceSource::new(&m.lib)),
        Err(Error::Limit { .. })
    ));
}

#[test]
fn symbol_table_by_name_and_address() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    let reg = Registry::growable(host(), &MMAP);
    let lib = reg.load("lib", &mut SliceSource::new(&m.lib)).unwrap();
    let app = reg.load("app", &mut SliceSource::new(&m.app)).unwrap();

    let add = reg.lookup("lib_add").unwrap();
    assert_eq!(add.provider, Provider(lib.id()));
    assert_eq!(add.addr, lib.find("lib_add").unwrap().addr);
    assert_eq!(reg.lookup("note").unwrap().provider, Provider::HOST);
    assert!(
        reg.lookup("lib_helper").is_none(),
        "locals are not in the table"
    );

    // An address inside an export.
    let at = (add.addr as usize + 2) as *const ();
    let (module, name, off) = reg
        .locate(at, |l| {
            let s = l.symbol.unwrap();
            (l.module.to_owned(), s.name.to_owned(), s.offset)
        })
        .unwrap();
    assert_eq!((module.as_str(), name.as_str(), off), ("lib", "lib_add", 2));
    // An address inside a `static` function (the module's symbols table
    // names its local functions too).
    let inner = lib
        .get::<extern "C" fn() -> *const ()>("lib_inner")
        .unwrap();
    let helper = inner.call();
    let at = (helper as usize + 3) as *const ();
    let got = reg
        .locate(at, |l| {
            let s = l.symbol.unwrap();
            (s.name.to_owned(), s.offset, s.exported, s.size.is_some())
        })
        .unwrap();
    assert_eq!(got, ("lib_helper".to_owned(), 3, false, true));
    // The host's export, at its address.
    let h = reg
        .locate(host().find("note").unwrap().addr, |l| {
            (l.provider, l.symbol.unwrap().name.to_owned())
        })
        .unwrap();
    assert_eq!(h, (Provider::HOST, "note".to_owned()));
    // An address in no module.
    assert!(reg.locate(std::ptr::dangling(), |_| ()).is_none());

    // Iteration: the host's, then each module's.
    let mut all = Vec::new();
    reg.symbols(|s| all.push((s.module.to_owned(), s.sym.name.to_owned())));
    assert_eq!(all[0], (String::new(), "note".to_owned()));
    assert!(all.contains(&("app".to_owned(), "app_run".to_owned())));
    assert!(all.contains(&("lib".to_owned(), "lib_bump".to_owned())));
    let id = app.id();
    drop(app);
    reg.unload(id).unwrap();
    assert!(reg.lookup("app_run").is_none());
    let run = reg.info("lib").unwrap();
    assert_eq!((run.state, run.dependents), (State::Live, 0));
}

/// A fixed-capacity registry, as a kernel without an allocator has one.
#[test]
fn fixed_capacity() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    static REG: std::sync::OnceLock<Registry<'static, Fixed<'static, 2>>> =
        std::sync::OnceLock::new();
    let reg = REG.get_or_init(|| Registry::<Fixed<2>>::fixed(host(), &MMAP));
    let lib = reg.load("lib", &mut SliceSource::new(&m.lib)).unwrap();
    let app = reg.load("app", &mut SliceSource::new(&m.app)).unwrap();
    let dup = c_module("third", "int third(void) { return 3; }\n");
    let e = reg.load("third", &mut SliceSource::new(&dup)).unwrap_err();
    assert!(matches!(e, Error::Limit { max: 2, .. }), "{e}");
    let f = reg.func::<AddFn>("lib_add").unwrap();
    assert_eq!(f.symbol().call(2, 3), 5);
    drop((lib, app, f));
    assert!(reg.unload("lib").is_err());
    reg.unload("app").unwrap();
    assert_eq!(reg.sweep(), 1);
    notes();
}

/// Counts what a memory provider has given out and not had back.
struct Counting {
    bytes: AtomicUsize,
    regions: AtomicUsize,
}

// SAFETY: forwards every call to MMAP, counting.
unsafe impl Memory for Counting {
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error> {
        let r = MMAP.allocate(size, align)?;
        self.bytes.fetch_add(r.len(), Ordering::SeqCst);
        self.regions.fetch_add(1, Ordering::SeqCst);
        Ok(r)
    }
    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error> {
        // SAFETY: as the caller vouches.
        unsafe { MMAP.seal(region, seal) }
    }
    unsafe fn release(&self, region: Region) {
        self.bytes.fetch_sub(region.len(), Ordering::SeqCst);
        self.regions.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: as the caller vouches.
        unsafe { MMAP.release(region) }
    }
}

/// Threads load, hold, call, release and unload for a bounded time; the
/// counts stay consistent throughout, and every byte goes back.
#[test]
fn threads_leave_nothing_behind() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    let mem = Counting {
        bytes: AtomicUsize::new(0),
        regions: AtomicUsize::new(0),
    };
    let reg = Registry::growable(host(), &mem);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    let ops = AtomicUsize::new(0);
    let unloads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (reg, ops, unloads) = (&reg, &ops, &unloads);
            s.spawn(move || {
                let mut x = 0x9e37_79b9u32.wrapping_mul(t + 1);
                while std::time::Instant::now() < deadline {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    match x % 8 {
                        0 => {
                            if let Ok(h) = reg.load("lib", &mut SliceSource::new(&m.lib)) {
                                let add = h.get::<AddFn>("lib_add").unwrap();
                                assert_eq!(add.call(2, 3), 5);
                            }
                        }
                        1 => match reg.load("app", &mut SliceSource::new(&m.app)) {
                            Ok(h) => {
                                let run = h.get::<RunFn>("app_run").unwrap();
                                assert!(run.call(0) > 1000);
                            }
                            Err(Error::Unresolved { .. } | Error::Busy { .. }) => {}
                            Err(e) => panic!("{e}"),
                        },
                        2 => {
                            if let Ok(h) = reg.hold("lib") {
                                // Held: it cannot go.
                                assert!(reg.unload("lib").is_err());
                                assert!(h.get::<AddFn>("lib_add").unwrap().call(1, 1) == 2);
                            }
                        }
                        3 | 4 => {
                            let name = if x % 16 < 8 { "lib" } else { "app" };
                            match reg.unload(name) {
                                Ok(()) => {
                                    unloads.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(Error::NoModule { .. }) => {}
                                Err(Error::InUse { .. } | Error::Busy { .. }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        5 => {
                            unloads.fetch_add(reg.sweep(), Ordering::Relaxed);
                        }
                        6 => {
                            if let Ok(f) = reg.func::<AddFn>("lib_add") {
                                assert_eq!(f.symbol().call(4, 5), 9);
                            }
                        }
                        _ => {
                            // One consistent picture under the lock.
                            let (mut lib, mut app) = (None, None);
                            reg.modules(|i| match i.name.as_str() {
                                "lib" => lib = Some(i.clone()),
                                "app" => app = Some(i.clone()),
                                other => panic!("unexpected module {other}"),
                            });
                            match (&lib, &app) {
                                (Some(l), Some(_)) => assert_eq!(l.dependents, 1),
                                (Some(l), None) => assert_eq!(l.dependents, 0),
                                (None, Some(_)) => panic!("app without its provider"),
                                (None, None) => {}
                            }
                            if let Some(a) = &app {
                                assert_eq!(a.dependents, 0);
                            }
                        }
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(ops.load(Ordering::Relaxed) > 100, "the threads did work");
    assert!(
        unloads.load(Ordering::Relaxed) > 10,
        "modules came and went"
    );
    for i in reg.list() {
        assert_eq!(i.holds, 0, "{} still held", i.name);
    }
    drop(reg);
    assert_eq!(mem.bytes.load(Ordering::SeqCst), 0, "every byte given back");
    assert_eq!(mem.regions.load(Ordering::SeqCst), 0);
    notes();
}
