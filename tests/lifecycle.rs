//! A module's lifecycle through the core: constructors run by `init`, in
//! order; destructors and the exit handlers its code registered run at
//! unload, last first, before its memory goes; typed handles; bindings
//! that record their provider; messages that name both types.
//!
//! The module is x86-64 machine code assembled by hand (each
//! instruction's bytes beside its assembly), put together with
//! `ModuleBuilder`, so these tests do not depend on the linker.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::arch::x86_64::{IMPORT64, IMPORT_PC32};
use dynld::{
    signof, Chain, Dynsym, Error, ExportTable, Loader, ModuleBuilder, Provider, Resolver,
    SliceSource, HEAP, MMAP,
};
use std::cell::RefCell;

thread_local! {
    /// What the module's code passed to `note`, in order.
    static NOTES: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
}

extern "C" fn note(v: i32) {
    NOTES.with(|n| n.borrow_mut().push(v));
}

fn notes() -> Vec<i32> {
    NOTES.with(|n| std::mem::take(&mut *n.borrow_mut()))
}

/// The host's own `__cxa_atexit`: a module must never be bound to it.
extern "C" fn host_cxa_atexit(_: usize, _: usize, _: usize) -> i32 {
    panic!("a module was bound to the host's __cxa_atexit");
}

const DATA: u32 = 0x1000;
/// GOT slot for `note`, then for `__cxa_atexit`; then `__dso_handle`.
const GOT_NOTE: u32 = DATA;
const GOT_ATEXIT: u32 = DATA + 8;
const DSO: u32 = DATA + 0x10;

/// `mov edi, v; jmp [rip + GOT_NOTE]` at `at`: calls `note(v)`.
fn tail_note(at: u32, v: u8) -> Vec<u8> {
    let d = GOT_NOTE - (at + 11);
    let mut c = vec![0xbf, v, 0, 0, 0, 0xff, 0x25];
    c.extend_from_slice(&d.to_le_bytes());
    c
}

/// The module: two constructors noting 1 and 2, two destructors noting 3
/// and 4, and `reg`, which registers `note(9)` as an exit handler with
/// `__cxa_atexit(note, 9, &__dso_handle)` and returns its result.
fn module() -> ModuleBuilder {
    let mut text = vec![0xcc; 0x60];
    for (i, v) in [(0u32, 1u8), (0x10, 2), (0x20, 3), (0x30, 4)] {
        let c = tail_note(i, v);
        text[i as usize..i as usize + c.len()].copy_from_slice(&c);
    }
    let mut reg = vec![0x48, 0x8b, 0x3d]; // 0x40 mov rdi, [rip + GOT_NOTE]
    reg.extend_from_slice(&(GOT_NOTE - 0x47).to_le_bytes());
    reg.extend_from_slice(&[0xbe, 9, 0, 0, 0]); // 0x47 mov esi, 9
    reg.extend_from_slice(&[0x48, 0x8d, 0x15]); // 0x4c lea rdx, [rip + DSO]
    reg.extend_from_slice(&(DSO - 0x53).to_le_bytes());
    reg.extend_from_slice(&[0xff, 0x25]); // 0x53 jmp [rip + GOT_ATEXIT]
    reg.extend_from_slice(&(GOT_ATEXIT - 0x59).to_le_bytes());
    text[0x40..0x40 + reg.len()].copy_from_slice(&reg);
    let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&text).data(&[0; 0x18]).data_offset(DATA);
    let n = b.import("note", signof!("fn(int) void"));
    let a = b.import("__cxa_atexit", 0);
    b.reloc(GOT_NOTE, IMPORT64, Some(n))
        .reloc(GOT_ATEXIT, IMPORT64, Some(a))
        .export("reg", signof!("fn(void) int"), 0x40)
        .export("dso", signof!("*void"), DSO)
        .init(0x00)
        .init(0x10)
        .fini(0x20)
        .fini(0x30)
        .describe_import("note", "fn(int) void")
        .describe_export("reg", "fn(void) int");
    b
}

fn host() -> Vec<Dynsym<'static>> {
    vec![
        Dynsym::new("__cxa_atexit", 0, host_cxa_atexit as *const ()),
        Dynsym::new("note", signof!("fn(int) void"), note as *const ()),
    ]
}

#[test]
fn constructors_run_once_in_order_and_destructors_last_first_at_unload() {
    let bytes = module().build().unwrap();
    let host = host();
    let table = ExportTable::new(&host).unwrap();
    let mut m = Loader::new(table, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(notes(), [] as [i32; 0], "the loader runs nothing");
    assert_eq!(m.functions(), (2, 2));
    m.init();
    m.init();
    assert!(m.is_initialized());
    assert_eq!(notes(), [1, 2]);
    drop(m);
    assert_eq!(notes(), [4, 3]);
    // Without init, no destructors either.
    let m = Loader::new(table, &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    drop(m);
    assert_eq!(notes(), [] as [i32; 0]);
}

#[test]
fn exit_handlers_are_the_modules_own_and_run_after_its_destructors() {
    let bytes = module().build().unwrap();
    let host = host();
    let table = ExportTable::new(&host).unwrap();
    let mut m = Loader::new(table, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let bound = m.imports().find(|i| i.name == "__cxa_atexit").unwrap();
    assert_eq!(bound.addr, dynld::runtime::cxa_atexit as *const ());
    m.init();
    let reg = m.get::<extern "C" fn() -> i32>("reg").unwrap();
    assert_eq!(reg.call(), 0);
    assert_eq!(reg.call(), 0);
    assert_eq!(m.exit_handlers(), 2);
    assert_eq!(notes(), [1, 2]);
    drop(m);
    assert_eq!(notes(), [4, 3, 9, 9]);
    // The handlers are gone with the module.
    let m = Loader::new(table, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(m.exit_handlers(), 0);
}

#[test]
fn typed_handles_check_the_rust_type() {
    let bytes = module().build().unwrap();
    let host = host();
    let m = Loader::new(ExportTable::new(&host).unwrap(), &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert!(m.get::<extern "C" fn() -> i32>("reg").is_ok());
    let e = m.get::<extern "C" fn() -> u32>("reg").unwrap_err();
    assert!(matches!(e, Error::SigMismatch { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "signature mismatch: reg: caller wants {:#010x}, module has fn(void) int ({:#010x})",
            signof!("fn(void) uint"),
            signof!("fn(void) int")
        )
    );
    // Data: the handle's type points to the object's (here a `void *`).
    let dso = m.get::<*const *const ()>("dso").unwrap();
    assert_eq!(dso.as_ptr() as usize, m.base() as usize + DSO as usize);
    assert!(matches!(
        m.get::<extern "C" fn()>("nope"),
        Err(Error::Undefined { .. })
    ));
    // An export without a signature cannot be checked.
    let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0xc3]).export("f", 0, 0);
    let bytes = b.build().unwrap();
    let m = Loader::new(ExportTable::EMPTY, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(
        m.get::<extern "C" fn()>("f").unwrap_err().to_string(),
        "export has no signature, its type cannot be checked: f"
    );
    // SAFETY: `f` is `ret`, a function taking nothing.
    let f = unsafe { m.get_unchecked::<extern "C" fn()>("f", 0) }.unwrap();
    f.call();
}

#[test]
fn bindings_record_their_provider() {
    let bytes = module().build().unwrap();
    let host = host();
    // The host has `__cxa_atexit` only; `note` comes from a provider module.
    let provider_bytes = {
        let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
        b.text(&[0xc3]).export("note", signof!("fn(int) void"), 0);
        b.build().unwrap()
    };
    let p = Loader::new(ExportTable::EMPTY, &HEAP)
        .load(&mut SliceSource::new(&provider_bytes))
        .unwrap();
    let host_only = ExportTable::new(&host[..1]).unwrap();
    // SAFETY: every module bound through it is dropped before `p`.
    let from_p = unsafe { p.resolver(Provider(7)) };
    let chain: [&dyn Resolver; 2] = [&host_only, &from_p];
    let chain = Chain(&chain);
    let m = Loader::with_resolver(&chain, &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let by_name = |n: &str| m.imports().find(|i| i.name == n).unwrap();
    assert_eq!(by_name("note").provider, Provider(7));
    assert_eq!(by_name("note").addr, p.base() as *const ());
    assert_eq!(by_name("__cxa_atexit").provider, Provider::HOST);
    assert_eq!(by_name("note").desc, Some("fn(int) void"));
    // A provider whose export has another type: both types and the
    // provider in the message.
    let wrong_bytes = {
        let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
        b.text(&[0xc3])
            .export("note", signof!("fn(vlong) void"), 0)
            .describe_export("note", "fn(vlong) void");
        b.build().unwrap()
    };
    let w = Loader::new(ExportTable::EMPTY, &HEAP)
        .load(&mut SliceSource::new(&wrong_bytes))
        .unwrap();
    // SAFETY: the load fails; nothing stays bound to `w`.
    let from_w = unsafe { w.resolver(Provider(3)) };
    let chain: [&dyn Resolver; 2] = [&host_only, &from_w];
    let chain = Chain(&chain);
    let e = Loader::with_resolver(&chain, &HEAP)
        .name("m.dl")
        .load(&mut SliceSource::new(&bytes))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "m.dl: signature mismatch: note: module wants fn(int) void ({:#010x}), \
             provider 3 has fn(vlong) void ({:#010x})",
            signof!("fn(int) void"),
            signof!("fn(vlong) void")
        )
    );
    let missing = Chain(&[&host_only]);
    let e = Loader::with_resolver(&missing, &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap_err();
    assert_eq!(e.to_string(), "undefined symbol: note");
}

#[test]
fn host_descriptions_appear_in_messages() {
    let bytes = module().build().unwrap();
    let syms = [
        Dynsym::new("__cxa_atexit", 0, host_cxa_atexit as *const ()),
        Dynsym::new("note", signof!("fn(uint) void"), note as *const ()),
    ];
    let descs = ["", "fn(uint) void"];
    let table = ExportTable::new(&syms).unwrap().with_descs(&descs).unwrap();
    let e = Loader::new(table, &HEAP)
        .name("calc.dl")
        .load(&mut SliceSource::new(&bytes))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "calc.dl: signature mismatch: note: module wants fn(int) void ({:#010x}), \
             host has fn(uint) void ({:#010x})",
            signof!("fn(int) void"),
            signof!("fn(uint) void")
        )
    );
    assert!(ExportTable::new(&syms)
        .unwrap()
        .with_descs(&descs[..1])
        .is_err());
}

#[test]
fn imports_patched_in_the_text_cannot_be_bound_late() {
    // `call note` through a PC-relative field in the text (code built
    // without -fPIC), and `__cxa_atexit` through a GOT slot in the data.
    let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0xe8, 0, 0, 0, 0, 0xc3])
        .data(&[0; 8])
        .data_offset(DATA);
    let n = b.import("note", 0);
    let a = b.import("__cxa_atexit", 0);
    b.reloc(1, IMPORT_PC32, Some(n))
        .reloc(DATA, IMPORT64, Some(a));
    let bytes = b.build().unwrap();
    let host = host();
    // Relocated as if it lay next to `note` (it is never called), so the
    // PC-relative reference reaches.
    let m = Loader::new(ExportTable::new(&host).unwrap(), &HEAP)
        .relocate_at(note as *const () as u64 & !0xfff)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(m.import(0).unwrap().name, "__cxa_atexit");
    assert_eq!(m.check_late_binding(0), Ok(()));
    assert_eq!(
        m.check_late_binding(1).unwrap_err().to_string(),
        "import patched in the text cannot be bound after loading: note"
    );
    let mut m = m;
    // SAFETY: refused before anything is written.
    let e = unsafe { m.rebind(1, note_tenfold as *const (), Provider::HOST) }.unwrap_err();
    assert!(matches!(e, Error::LateBind { .. }), "{e}");
    assert_eq!(m.import(1).unwrap().addr, note as *const ());
}

extern "C" fn note_tenfold(v: i32) {
    note(10 * v);
}

#[test]
fn an_import_in_the_data_is_bound_again() {
    let bytes = module().build().unwrap();
    let host = host();
    let mut m = Loader::new(ExportTable::new(&host).unwrap(), &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    m.init();
    assert_eq!(notes(), [1, 2]);
    let i = m.imports().position(|i| i.name == "note").unwrap();
    // SAFETY: note_tenfold has note's type and lives for the program.
    unsafe { m.rebind(i, note_tenfold as *const (), Provider(5)) }.unwrap();
    assert_eq!(m.import(i).unwrap().addr, note_tenfold as *const ());
    assert_eq!(m.import(i).unwrap().provider, Provider(5));
    drop(m);
    assert_eq!(
        notes(),
        [40, 30],
        "destructors call through the new binding"
    );
}

#[test]
fn modules_and_arenas_are_shared_between_threads() {
    static mut BUF: [u8; 1 << 16] = [0; 1 << 16];
    // SAFETY: BUF is used by nothing but this arena.
    static ARENA: dynld::Arena<'static, 4> =
        unsafe { dynld::Arena::from_raw_parts(core::ptr::addr_of_mut!(BUF).cast(), 1 << 16) };
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0x8d, 0x04, 0x37, 0xc3]) // lea eax, [rdi+rsi]; ret
        .export("add", signof!("fn(int, int) int"), 0);
    let bytes = b.build().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let m = Loader::new(ExportTable::EMPTY, &ARENA)
                        .load(&mut SliceSource::new(&bytes))
                        .unwrap();
                    assert_send_sync(&m);
                    // The arena's static buffer is not executable here:
                    // look the function up, do not call it.
                    let add = m.get::<extern "C" fn(i32, i32) -> i32>("add").unwrap();
                    assert_eq!(add.addr(), m.base() as *const ());
                    // The module moves to another thread and is dropped there.
                    std::thread::scope(|s| {
                        s.spawn(move || drop(m));
                    });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ARENA.regions(), 0);
}

#[test]
fn an_import_out_of_reach_is_named() {
    // `call far` through a 32-bit PC-relative field, `far` 2^62 away.
    let mut b = ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0xe8, 0, 0, 0, 0, 0xc3]);
    let f = b.import("far", 0);
    b.reloc(1, IMPORT_PC32, Some(f));
    let bytes = b.build().unwrap();
    let host = [Dynsym::new(
        "far",
        0,
        std::ptr::without_provenance(1usize << 62),
    )];
    let e = Loader::new(ExportTable::new(&host).unwrap(), &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "import far out of reach of its import-pc32 reference at 0x1"
    );
}
