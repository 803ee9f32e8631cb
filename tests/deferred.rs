//! Deferred binding over modules compiled from C by gcc and linked by
//! `aout link`: imports left pending and bound when their provider loads,
//! in every load order; the trap a pending import's call reaches;
//! `resolve` naming what is left; signatures checked at late binding; and
//! a cycle that loads, works, and unloads as a whole.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::{trap, Error, Growable, LoadOptions, Provider, Registry, SliceSource, State, MMAP};
use std::sync::Mutex;

use dynld_suite::notes::{host, notes, HEADER};

/// Three modules in a ring: `a` calls `b_f`, `b` calls `c_f`, `c` calls
/// `a_f`, each adding its own part; each notes its id at unload.
const A: &str = r#"
DYNLD_EXPORT(a_f, "fn(int) int");
DYNLD_EXPORT(a_run, "fn(int) int");
DYNLD_IMPORT(b_f, "fn(int) int");
extern int b_f(int);
int a_f(int x) { return x + 1; }
int a_run(int x) { return b_f(x * 10); }
__attribute__((destructor)) static void a_bye(void) { note(1); }
"#;
const B: &str = r#"
DYNLD_EXPORT(b_f, "fn(int) int");
DYNLD_IMPORT(c_f, "fn(int) int");
extern int c_f(int);
int b_f(int x) { return c_f(x + 2); }
__attribute__((destructor)) static void b_bye(void) { note(2); }
"#;
const C: &str = r#"
DYNLD_EXPORT(c_f, "fn(int) int");
DYNLD_IMPORT(a_f, "fn(int) int");
extern int a_f(int);
int c_f(int x) { return a_f(x) * 3; }
__attribute__((destructor)) static void c_bye(void) { note(3); }
"#;
/// Exports `b_f` with another type than `a` imports it.
const WRONG_B: &str = r#"
DYNLD_EXPORT(b_f, "fn(long) long");
long b_f(long x) { return x; }
"#;

fn c_module(name: &str, src: &str) -> Vec<u8> {
    dynld_suite::cc::module(
        &format!("defer-{name}"),
        &[&format!("{HEADER}{src}")],
        false,
    )
}

struct Modules {
    a: Vec<u8>,
    b: Vec<u8>,
    c: Vec<u8>,
    wrong_b: Vec<u8>,
}

fn modules() -> &'static Modules {
    static M: std::sync::OnceLock<Modules> = std::sync::OnceLock::new();
    M.get_or_init(|| Modules {
        a: c_module("a", A),
        b: c_module("b", B),
        c: c_module("c", C),
        wrong_b: c_module("wrong-b", WRONG_B),
    })
}

type RunFn = extern "C" fn(i32) -> i32;

/// The tests share NOTES and the trap handler: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The calls that reached a trap: module, import.
static TRAPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record(u: &trap::Unbound<'_>) -> usize {
    TRAPPED
        .lock()
        .unwrap()
        .push((u.module.to_owned(), u.import.to_owned()));
    7
}

fn pending<'a>(reg: &Registry<'a, Growable<'a>>) -> Vec<String> {
    let mut v = Vec::new();
    reg.unresolved(|m, i| v.push(format!("{m}.{i}")));
    v.sort();
    v
}

const DEFER: LoadOptions<'static> = LoadOptions::new().defer(true);

#[test]
fn three_modules_bind_in_every_order_and_the_cycle_unloads_whole() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    let all = [("a", &m.a), ("b", &m.b), ("c", &m.c)];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let reg = Registry::growable(host(), &MMAP);
        notes();
        for (k, &i) in order.iter().enumerate() {
            let (name, bytes) = all[i];
            let h = reg
                .load_with(name, &mut SliceSource::new(bytes), &DEFER)
                .unwrap_or_else(|e| panic!("{order:?}: {name}: {e}"));
            drop(h);
            // Each load binds what it provides: pending are the imports
            // of the loaded modules whose providers (the next in the
            // ring) are not in yet.
            let loaded = &order[..=k];
            let want: Vec<String> = loaded
                .iter()
                .filter(|&&x| !loaded.contains(&((x + 1) % 3)))
                .map(|&x| format!("{}.{}_f", all[x].0, all[(x + 1) % 3].0))
                .collect();
            let mut want = want;
            want.sort();
            assert_eq!(pending(&reg), want, "{order:?} after {k}");
        }
        assert!(pending(&reg).is_empty(), "{order:?}: {:?}", pending(&reg));
        reg.resolve().unwrap();
        for (name, _) in all {
            let info = reg.info(name).unwrap();
            assert_eq!((info.dependents, info.pending), (1, 0), "{order:?} {name}");
        }
        // a_run(4) = c_f(40 + 2) = a_f(42) * 3 = 129, through all three.
        let run = reg.func::<RunFn>("a_run").unwrap();
        assert_eq!(run.symbol().call(4), 129, "{order:?}");
        // Held: the cycle cannot go.
        let e = reg.unload("b").unwrap_err();
        assert!(matches!(e, Error::InUse { .. }), "{e}");
        drop(run);
        // Released: unloading one member unloads the cycle, newest first.
        reg.unload("b").unwrap();
        assert!(reg.list().is_empty(), "{order:?}");
        let want: Vec<i32> = order.iter().rev().map(|&i| i as i32 + 1).collect();
        assert_eq!(notes(), want, "{order:?}: destructors newest first");
    }
}

#[test]
fn pending_imports_reach_the_trap_and_bind_when_the_provider_loads() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = modules();
    trap::set_handler(record);
    TRAPPED.lock().unwrap().clear();
    let reg = Registry::growable(host(), &MMAP);
    // Without deferral a missing import refuses the load.
    let e = reg.load("a", &mut SliceSource::new(&m.a)).unwrap_err();
    assert_eq!(e.to_string(), "undefined symbol: b_f");
    assert!(reg.list().is_empty());

    let a = reg
        .load_with("a", &mut SliceSource::new(&m.a), &DEFER)
        .unwrap();
    assert_eq!(pending(&reg), ["a.b_f"]);
    let imp = a.imports().find(|i| i.name == "b_f").unwrap();
    assert_eq!(imp.provider, Provider::PENDING);
    assert!(!imp.addr.is_null(), "a trap, never address 0");
    // The call reaches the trap, which names the import and its module;
    // the handler's result is the call's.
    let run = a.get::<RunFn>("a_run").unwrap();
    assert_eq!(run.call(1), 7);
    assert_eq!(
        *TRAPPED.lock().unwrap(),
        [("a".to_owned(), "b_f".to_owned())]
    );
    let e = reg.resolve().unwrap_err();
    assert_eq!(e.to_string(), "undefined symbol: b_f (a)");

    // A provider of another type leaves it pending.
    let wrong = reg
        .load("wrong_b", &mut SliceSource::new(&m.wrong_b))
        .unwrap();
    assert_eq!(
        pending(&reg),
        ["a.b_f"],
        "a signature mismatch binds nothing"
    );
    assert_eq!(reg.info("wrong_b").unwrap().dependents, 0);
    drop(wrong);
    reg.unload("wrong_b").unwrap();

    // The provider (itself deferring c_f) binds a's import; a's call
    // then reaches b, whose own pending import traps in turn.
    let b = reg
        .load_with("b", &mut SliceSource::new(&m.b), &DEFER)
        .unwrap();
    assert_eq!(pending(&reg), ["b.c_f"]);
    let imp = a.imports().find(|i| i.name == "b_f").unwrap();
    assert_eq!(imp.provider, Provider(b.id()));
    assert_eq!(reg.info("b").unwrap().dependents, 1);
    assert_eq!(run.call(1), 7);
    assert_eq!(
        TRAPPED.lock().unwrap().last().unwrap(),
        &("b".to_owned(), "c_f".to_owned())
    );
    // b cannot go while a is bound to it.
    drop(b);
    assert!(matches!(
        reg.unload("b"),
        Err(Error::InUse { dependents: 1, .. })
    ));
    let c = reg.load("c", &mut SliceSource::new(&m.c)).unwrap();
    assert!(pending(&reg).is_empty());
    assert_eq!(run.call(4), 129);
    assert_eq!(reg.info("a").unwrap().state, State::Live);
    drop((a, c));
    TRAPPED.lock().unwrap().clear();
}
