//! Autoload stubs (`dynld::stub`), against what a program does without
//! them.
//!
//! * `stubs/first_call/stub`: the first call through a `stub` entry, from
//!   nothing loaded: the registry finds the module in a directory, loads
//!   it, the entry is patched and the call made; then
//!   `StubModule::unload` puts the entry back and unloads it;
//! * `stubs/first_call/dlopen`: the same C source as a shared object:
//!   `dlopen(RTLD_NOW | RTLD_LOCAL)` + `dlsym` + call + `dlclose`;
//! * `stubs/call/fn_pointer`: a call through a function pointer to the
//!   loaded function kept in a `static` (as a C program's `int (*f)(int,
//!   int)`), loaded for each call: the baseline for the next three;
//! * `stubs/call/patched`: the same call through a patched `stub` entry
//!   (`Typed::call`, an atomic load of the pointer, then the call);
//! * `stubs/call/ustub`: through a `ustub` entry: trampoline, a hold taken
//!   and given back around the call;
//! * `stubs/call/wstub`: the same through a `wstub` entry.
//!
//! `cargo bench --bench stubs`; see `benches/README.md`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dynld::{signof, Growable, Registry, SearchPath, MMAP};
use std::process::Command;

mod common;
use common::{c_path, run, tmp_dir};

const SRC: &str = "int cm_add(int a, int b) { return a + b; }\n";

type Add = extern "C" fn(i32, i32) -> i32;

extern "C" fn add_failed(_: i32, _: i32) -> i32 {
    -1
}

dynld::stubs! {
    module BENCH_CMATH = "cmath";
    stub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
}
mod by_call {
    use super::add_failed;
    dynld::stubs! {
        pub module BENCH_CMATH_U = "cmath";
        ustub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed, words 0;
    }
}
mod weak {
    use super::add_failed;
    dynld::stubs! {
        pub module BENCH_CMATH_W = "cmath";
        wstub cm_add: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
    }
}

fn stubs(c: &mut Criterion) {
    let dir = tmp_dir("stubs-bench");
    let (src, o, so) = (
        dir.join("cmath.c"),
        dir.join("cmath.o"),
        dir.join("libcmath.so"),
    );
    std::fs::write(&src, SRC).unwrap();
    run(Command::new("gcc")
        .args(["-O2", "-fPIC", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&o));
    run(Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-nostdlib"])
        .arg(&src)
        .arg("-o")
        .arg(&so));
    let module = aout_tools::link::link(&aout_tools::link::Options {
        inputs: vec![o],
        ..Default::default()
    })
    .unwrap()
    .bytes;
    std::fs::write(dir.join("cmath.dl"), module).unwrap();
    let path: &'static SearchPath =
        Box::leak(Box::new(SearchPath::new().dir(&dir).pattern("%s.dl")));
    let reg: &'static Registry<'static, Growable<'static>> = Box::leak(Box::new(
        Registry::growable(dynld::ExportTable::EMPTY, &MMAP).with_finder(path),
    ));
    dynld::stub::set_autoload(reg);
    let so_c = c_path(&so);

    let mut g = c.benchmark_group("stubs");
    g.bench_function("first_call/stub", |b| {
        b.iter(|| {
            let r = (cm_add.call())(black_box(2), 3);
            // SAFETY: the call has returned; nothing else calls cm_add.
            unsafe { BENCH_CMATH.unload() }.unwrap();
            r
        })
    });
    g.bench_function("first_call/dlopen", |b| {
        b.iter(|| {
            // SAFETY: the shared object exports `int cm_add(int, int)` and
            // has no constructors; closed after the one call.
            unsafe {
                let h = libc::dlopen(so_c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                assert!(!h.is_null());
                let p = libc::dlsym(h, c"cm_add".as_ptr());
                let f = std::mem::transmute::<*mut libc::c_void, Add>(p);
                let r = f(black_box(2), 3);
                libc::dlclose(h);
                r
            }
        })
    });

    // The per-call cases, with cmath loaded.
    assert_eq!((cm_add.call())(2, 3), 5);
    assert!(cm_add.is_patched());
    let held = reg.hold("cmath").unwrap();
    let addr = held.addr("cm_add", signof!("fn(int, int) int")).unwrap();
    static DIRECT: std::sync::atomic::AtomicPtr<()> =
        std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
    DIRECT.store(addr.cast_mut(), std::sync::atomic::Ordering::Release);
    let direct = || {
        let p = DIRECT.load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: `p` is cm_add, `int cm_add(int, int)`, loaded while
        // `held` lives (to the end of this function).
        unsafe { std::mem::transmute::<*mut (), Add>(p) }
    };
    g.bench_function("call/fn_pointer", |b| {
        b.iter(|| direct()(black_box(2), black_box(3)))
    });
    g.bench_function("call/patched", |b| {
        b.iter(|| (cm_add.call())(black_box(2), black_box(3)))
    });
    g.bench_function("call/ustub", |b| {
        b.iter(|| (by_call::cm_add.call())(black_box(2), black_box(3)))
    });
    g.bench_function("call/wstub", |b| {
        b.iter(|| (weak::cm_add.call())(black_box(2), black_box(3)))
    });
    g.finish();
    drop(held);
}

criterion_group!(benches, stubs);
criterion_main!(benches);
