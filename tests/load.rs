//! End to end on x86-64: build modules with the writer from machine code,
//! load them through every entry point, bind them to host functions, call them.
#![cfg(all(target_arch = "x86_64", unix))]

use dynld::{
    dynfindsym, dynfreeimport, dynimport, dynloadable, dynloadfd, dynloadgen, dynobjfree,
    dyntabsize, signof, Arena, Dynsym, Error, ExportTable, Loader, Module, SliceSource, HEAP, MMAP,
};
use dynld_suite::calc;

extern "C" fn host_double(x: i32) -> i32 {
    2 * x
}

static HOST: [Dynsym; 2] = [
    Dynsym::new(
        "host_double",
        signof!("fn(int) int"),
        host_double as *const (),
    ),
    Dynsym::new("host_zzz", 0, core::ptr::null()),
];

type FnII = extern "C" fn(i32) -> i32;
type FnIII = extern "C" fn(i32, i32) -> i32;

/// A file in memory with Plan 9-style read and seek callbacks.
struct Buf {
    bytes: Vec<u8>,
    pos: i64,
}

fn buf_read(f: &mut Buf, out: &mut [u8]) -> isize {
    let start = f.pos as usize;
    let rest = f.bytes.get(start..).unwrap_or(&[]);
    let n = rest.len().min(out.len());
    out[..n].copy_from_slice(&rest[..n]);
    f.pos += n as i64;
    n as isize
}

fn buf_seek(f: &mut Buf, off: i64, whence: i32) -> i64 {
    let to = match whence {
        0 => off,
        1 => f.pos + off,
        2 => f.bytes.len() as i64 + off,
        _ => return -1,
    };
    if to < 0 {
        return -1;
    }
    f.pos = to;
    to
}

fn check_calc(m: &Module<'_>) {
    // SAFETY: the calc sample's exports have these types.
    unsafe {
        let add: FnIII = m
            .get_unchecked("add", signof!("fn(int, int) int"))
            .map(|s| s.into_raw())
            .unwrap();
        assert_eq!(add(3, 4), 7);
        let tpo: FnII = m
            .get_unchecked("twice_plus_one", signof!("fn(int) int"))
            .map(|s| s.into_raw())
            .unwrap();
        assert_eq!(tpo(20), 41, "module -> host -> module");
        let cp: extern "C" fn() -> *mut i32 = m
            .get_unchecked("counter_ptr", 0)
            .map(|s| s.into_raw())
            .unwrap();
        let counter = m.addr("counter", signof!("int")).unwrap() as *mut i32;
        assert_eq!(cp(), counter, "data word relocated by the base");
        assert_eq!(*counter, 5);
        let bump: FnII = m.get_unchecked("bump", 0).map(|s| s.into_raw()).unwrap();
        assert_eq!(bump(3), 8);
        let op1: FnII = m
            .get_unchecked("call_op1", 0)
            .map(|s| s.into_raw())
            .unwrap();
        assert_eq!(op1(2), 10, "call through a relocated function table");
        assert_eq!(*counter, 10);
        let ops = m.addr("ops", 0).unwrap() as *const *const ();
        assert_eq!(*ops, add as *const ());
        assert_eq!(*ops.add(1), bump as *const ());
        let scratch = m.addr("scratch", 0).unwrap() as *const [u8; 16];
        assert_eq!(*scratch, [0; 16], "bss is zeroed");
    }
    // Indices past the table give nothing (not the import table's bytes).
    assert!(m.export(m.nexport()).is_none());
    assert!(m.export(usize::MAX).is_none());
    assert!(m.import(m.nimport()).is_none());
    let imports: Vec<_> = m.imports().collect();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].name, "host_double");
    assert_eq!(imports[0].addr, host_double as *const ());
    assert_eq!(m.nexport(), 8);
    let names: Vec<_> = m.exports().map(|s| s.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(m.image_size(), calc::SCRATCH as usize + 16);
}

#[test]
fn dynloadgen_over_callbacks() {
    let mut file = Buf {
        bytes: dynld_suite::calc().build().unwrap(),
        pos: 0,
    };
    let mut errors = Vec::new();
    let m = dynloadgen(
        &mut file,
        buf_read,
        buf_seek,
        &mut |e: &Error| errors.push(e.to_string()),
        &HOST,
        0,
    )
    .unwrap();
    assert!(errors.is_empty());
    check_calc(&m);
    dynobjfree(m);
}

#[test]
fn dynloadfd_from_a_file_at_an_offset() {
    let dir = std::env::temp_dir().join(format!("dynld-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calc.dl");
    let mut bytes = b"leading bytes".to_vec();
    bytes.extend(dynld_suite::calc().build().unwrap());
    std::fs::write(&path, &bytes).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(13)).unwrap();
    assert!(dynloadable(&mut dynld::IoSource(&mut f)));
    assert_eq!(f.stream_position().unwrap(), 13);
    let m = dynloadfd(&mut f, &HOST, 0).unwrap();
    check_calc(&m);
    drop(m);
    // The same through `FileSource`, which reads from the file's offset
    // too (a small text is never mapped).
    f.seek(SeekFrom::Start(13)).unwrap();
    let mut src = dynld::FileSource::new(f).unwrap();
    assert!(dynloadable(&mut src));
    let m = Loader::new(ExportTable::new(&HOST).unwrap(), &MMAP)
        .load(&mut src)
        .unwrap();
    check_calc(&m);
    drop(m);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn text_aligned_in_the_file() {
    let table = ExportTable::new(&HOST).unwrap();
    for align in [1, 8, 4096, 65536] {
        let bytes = dynld_suite::calc().text_file_align(align).build().unwrap();
        let v = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
        assert_eq!(v.text_offset() % u64::from(align), 0);
        // Exec header, fat entry, extension header and directory.
        let plain = 32 + 8 + 24 + 16 * u64::from(v.header().ntable);
        assert!(v.text_offset() >= plain && v.text_offset() < plain + u64::from(align));
        let m = Loader::new(table, &MMAP)
            .load(&mut SliceSource::new(&bytes))
            .unwrap();
        check_calc(&m);
    }
    // The padding counts against `max_header`.
    let bytes = dynld_suite::calc().text_file_align(65536).build().unwrap();
    let small = dynld::Limits {
        max_header: 4096,
        ..dynld::Limits::DEFAULT
    };
    let e = Loader::new(table, &MMAP)
        .limits(small)
        .load(&mut SliceSource::new(&bytes))
        .unwrap_err();
    assert_eq!(e.to_string(), "bad module header: extension header size");
    for align in [0, 3, 1 << 17] {
        let e = dynld_suite::calc()
            .text_file_align(align)
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad module header: text alignment not a power of two up to 64 KiB"
        );
    }
}

#[test]
fn loader_with_verified_table() {
    static TABLE: ExportTable = ExportTable::new_const(&HOST);
    let bytes = dynld_suite::calc().build().unwrap();
    let m = Loader::new(TABLE, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    check_calc(&m);
}

#[test]
fn dynimport_checks_signatures() {
    let bytes = dynld_suite::calc().build().unwrap();
    let mut m = Loader::new(ExportTable::new(&HOST).unwrap(), &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let add = dynimport(&m, "add", signof!("fn(int, int) int")).unwrap();
    assert_eq!(dynimport(&m, "add", 0), Some(add), "0 = unchecked");
    assert_eq!(dynimport(&m, "add", signof!("fn(int, int) long")), None);
    assert_eq!(dynimport(&m, "nope", 0), None);
    let e = m.addr("add", signof!("fn(uint, uint) uint")).unwrap_err();
    assert!(
        matches!(&e, Error::SigMismatch { name, .. } if *name == "add"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("signature mismatch: add: caller wants 0x"),
        "{e}"
    );
    assert_eq!(
        m.addr("nope", 0).unwrap_err().to_string(),
        "undefined symbol: nope"
    );
    dynfreeimport(&mut m);
    assert_eq!(m.nimport(), 0);
    assert_eq!(m.imports().count(), 0);
    // Exports still work after the import table is gone.
    // SAFETY: `add` has this type.
    let add: FnIII = unsafe { m.get_unchecked("add", 0).map(|s| s.into_raw()) }.unwrap();
    assert_eq!(add(40, 2), 42);
}

#[test]
fn symbol_tables() {
    assert_eq!(dyntabsize(&HOST), 2);
    let with_end = [HOST[0], Dynsym::new("", 0, core::ptr::null()), HOST[1]];
    assert_eq!(dyntabsize(&with_end), 1);
    assert_eq!(
        dynfindsym("host_double", &HOST).map(|s| s.addr),
        Some(host_double as *const ())
    );
    assert!(dynfindsym("host_d", &HOST).is_none());
    assert!(dynfindsym("zzzz", &HOST).is_none());
}

#[test]
fn text_sharing_a_page_with_data_is_refused_by_mmap() {
    let mut b = dynld::ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0xc3]).data(&[1, 2, 3, 4]).data_offset(8);
    let bytes = b.build().unwrap();
    let e = Loader::new(ExportTable::EMPTY, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap_err();
    assert!(e.to_string().contains("text and data share a page"), "{e}");
    // The heap provider (no W^X) accepts the same module.
    Loader::new(ExportTable::EMPTY, &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
}

/// Relocated words read back from memory that is not executable.
fn check_relocated(m: &Module<'_>) {
    let base = m.base() as u64;
    let word = |off: u32| {
        let p = m.base().wrapping_add(off as usize) as *const u64;
        // SAFETY: the offsets are inside the module's data.
        unsafe { p.read_unaligned() }
    };
    assert_eq!(word(calc::COUNTER_REF), base + u64::from(calc::COUNTER));
    assert_eq!(word(calc::OPS), base + u64::from(calc::ADD));
    assert_eq!(word(calc::OPS + 8), base + u64::from(calc::BUMP));
    assert_eq!(word(calc::GOT), host_double as *const () as usize as u64);
}

#[test]
fn heap_provider() {
    let bytes = dynld_suite::calc().build().unwrap();
    let m = Loader::new(ExportTable::new(&HOST).unwrap(), &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    check_relocated(&m);
}

#[test]
fn arena_without_allocator() {
    let bytes = dynld_suite::calc().build().unwrap();
    let mut buf = vec![0u8; 3 * 8192];
    let arena: Arena<'_, 2> = Arena::new(&mut buf);
    let loader = Loader::new(ExportTable::new(&HOST).unwrap(), &arena);
    let a = loader.load(&mut SliceSource::new(&bytes)).unwrap();
    let b = loader.load(&mut SliceSource::new(&bytes)).unwrap();
    check_relocated(&a);
    check_relocated(&b);
    assert_eq!(arena.regions(), 2);
    // A third does not fit: the arena holds two.
    let e = loader.load(&mut SliceSource::new(&bytes)).unwrap_err();
    assert!(matches!(e, Error::Memory { .. }), "{e}");
    let first = a.base();
    drop(a);
    assert_eq!(arena.regions(), 1);
    // Unload and load again into the same space.
    let c = loader.load(&mut SliceSource::new(&bytes)).unwrap();
    assert_eq!(c.base(), first);
    check_relocated(&c);
    drop((b, c));
    assert_eq!(arena.in_use(), 0);
}

#[test]
fn module_with_a_hash_index() {
    let bytes = dynld_suite::calc().index(true).build().unwrap();
    let m = Loader::new(ExportTable::new(&HOST).unwrap(), &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    check_calc(&m);
    for s in m.exports() {
        assert_eq!(m.find(s.name), Some(s));
        assert!(m.find(&format!("{}x", s.name)).is_none());
    }
    assert!(m.find("").is_none());

    // An index whose tags lie loads (its slots name real exports) but can
    // only make names missing, never find the wrong one.
    let view = dynld::ModuleView::parse(&bytes, &Default::default()).unwrap();
    let t = view.table_entry(dynld::format::kind::INDEX).unwrap();
    let (off, len) = (t.offset as usize, t.size as usize);
    let mut lying = bytes.clone();
    for slot in lying[off..off + len].chunks_exact_mut(8) {
        if slot != [0; 8] {
            slot[0] ^= 0x55;
        }
    }
    let m = Loader::new(ExportTable::new(&HOST).unwrap(), &HEAP)
        .load(&mut SliceSource::new(&lying))
        .unwrap();
    assert_eq!(m.exports().count(), 8);
    for s in m.exports() {
        assert!(m.find(s.name).is_none(), "{}", s.name);
    }
}

/// A relocation stream many times the loader's read buffer, mixing the
/// records its fast path takes (base-relative with 1- and 2-byte offset
/// deltas) with those it leaves to the general path (4-byte deltas, imports
/// with 1- and 2-byte indices), so records of every size straddle buffer
/// refills: every field must end up with its expected value.
#[test]
fn long_relocation_streams_mix_record_sizes() {
    // 300 host symbols, so import indices take one byte or two.
    let names: Vec<String> = (0..300).map(|i| format!("h{i:03}")).collect();
    let host: Vec<Dynsym> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Dynsym::new(n, 0, (0x1000_0000 + 16 * i) as *const ()))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (b, fields) = dynld_suite::long_stream(&refs, 1 << 20);
    let bytes = b.build().unwrap();
    let view = dynld::ModuleView::parse(&bytes, &Default::default()).unwrap();
    let stream = view.table_entry(dynld::format::kind::RELOCS).unwrap().size
        + view
            .table_entry(dynld::format::kind::IMPORT_RELOCS)
            .unwrap()
            .size;
    assert!(stream > 16 << 10, "stream of {stream} bytes");

    let m = Loader::new(ExportTable::new(&host).unwrap(), &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let base = m.base() as u64;
    for (off, import, addend) in fields {
        // SAFETY: the field lies inside the loaded module's data.
        let got = unsafe { m.base().add(off).cast::<u64>().read_unaligned() };
        let target = import.map_or(base, |i| host[i as usize].addr as u64);
        assert_eq!(got, target.wrapping_add(addend), "field at {off:#x}");
    }
}

/// Binding through the host table's hash index (few imports against a large
/// indexed table, looked up sixteen at a time) binds what the merge over
/// the plain table binds, and refuses what it refuses with the same error,
/// wherever in a batch the bad import falls.
#[test]
fn binding_through_the_host_index() {
    use dynld::{Arch, ModuleBuilder};
    let names: Vec<String> = (0..300).map(|i| format!("host_fn_{i:04}")).collect();
    let syms: Vec<Dynsym> = names
        .iter()
        .enumerate()
        .map(|(i, s)| Dynsym::new(s, 0x1000 + i as u32, (0x10_0000 + 16 * i) as *const ()))
        .collect();
    let plain = ExportTable::new(&syms).unwrap();
    let slots = dynld::index::build_vec(names.len(), |i| names[i].as_bytes()).unwrap();
    let indexed = plain.with_index(&slots).unwrap();
    let build = |imports: &[(String, u32)], keep_order: bool, hashes: bool| {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3]).import_hashes(hashes);
        if keep_order {
            b.keep_order();
        }
        for (n, s) in imports {
            b.import(n, *s);
        }
        b.build().unwrap()
    };
    let module = |imports: &[(String, u32)], keep_order: bool| build(imports, keep_order, false);
    let bind = |t: ExportTable<'_>, bytes: &[u8]| -> Result<Vec<(String, usize)>, String> {
        match Loader::new(t, &HEAP).load(&mut SliceSource::new(bytes)) {
            Ok(m) => Ok(m
                .imports()
                .map(|i| (i.name.to_string(), i.addr as usize))
                .collect()),
            Err(e) => Err(e.to_string()),
        }
    };
    // 37 imports, every eighth export: two full batches and part of a third.
    let good: Vec<(String, u32)> = (0..37)
        .map(|k| (names[8 * k + 3].clone(), 0x1000 + (8 * k + 3) as u32))
        .collect();
    let bound = bind(indexed, &module(&good, false)).unwrap();
    assert_eq!(bound.len(), 37);
    for (k, (name, addr)) in bound.iter().enumerate() {
        assert_eq!(name, &names[8 * k + 3]);
        assert_eq!(*addr, 0x10_0000 + 16 * (8 * k + 3));
    }
    assert_eq!(bind(plain, &module(&good, false)), Ok(bound.clone()));

    // One bad import at the start, middle and end of a batch, and in the
    // last, partial one: missing, mistyped, out of order, repeated.
    for at in [0, 7, 15, 16, 31, 36] {
        let mut missing = good.clone();
        missing[at].0.push_str("_gone");
        let mut mistyped = good.clone();
        mistyped[at].1 ^= 0x8000_0000;
        let mut swapped = good.clone();
        let other = if at == 0 { 1 } else { at - 1 };
        swapped.swap(at, other);
        let mut repeated = good.clone();
        repeated[at] = repeated[other].clone();
        for (case, imports, keep) in [
            ("missing", &missing, false),
            ("mistyped", &mistyped, false),
            ("swapped", &swapped, true),
            ("repeated", &repeated, true),
        ] {
            let bytes = module(imports, keep);
            let want = bind(plain, &bytes);
            assert!(want.is_err(), "{case} at {at} bound");
            assert_eq!(bind(indexed, &bytes), want, "{case} at {at}");
            let hashed = build(imports, keep, true);
            assert_eq!(
                bind(indexed, &hashed),
                want,
                "{case} at {at}, hashes stored"
            );
            assert_eq!(bind(plain, &hashed), want, "{case} at {at}, hashes stored");
        }
    }

    // The same imports with their name hashes stored: the index path
    // takes them instead of hashing, the merge skips them.
    let hashed = build(&good, false, true);
    // The hashes and their directory entry.
    assert!(hashed.len() == module(&good, false).len() + 8 * good.len() + 16);
    assert_eq!(bind(indexed, &hashed), Ok(bound.clone()));
    assert_eq!(bind(plain, &hashed), Ok(bound.clone()));
    // Stored hashes are not trusted: wrong ones (zero, another name's,
    // all ones) anywhere in a batch still bind every import.
    let view = dynld::ModuleView::parse(&hashed, &dynld::Limits::DEFAULT).unwrap();
    let at = view
        .table_entry(dynld::format::kind::IMPORT_HASHES)
        .unwrap()
        .offset as usize;
    let other = dynld::index::hash(names[200].as_bytes());
    for k in [0, 7, 15, 16, 31, 36] {
        for wrong in [0, other, u64::MAX] {
            let mut b = hashed.clone();
            b[at + 8 * k..at + 8 * k + 8].copy_from_slice(&wrong.to_be_bytes());
            assert_eq!(
                bind(indexed, &b),
                Ok(bound.clone()),
                "hash {k} = {wrong:#x}"
            );
        }
    }
    let mut b = hashed.clone();
    b[at..at + 8 * good.len()].fill(0xa5);
    assert_eq!(bind(indexed, &b), Ok(bound));
}

/// A C module compiled by gcc and linked by `aout link` that reads 40 host
/// variables, out of a host table of 400 with a hash index: with its
/// imports' name hashes (stored by default from 32 imports) and without,
/// every import binds to its own variable, which the call's result shows.
#[test]
fn c_module_binds_through_the_index_with_stored_hashes() {
    use aout_tools::link::{link, IndexMode, Options};
    static VALUES: std::sync::OnceLock<Vec<i64>> = std::sync::OnceLock::new();
    let values = VALUES.get_or_init(|| (0..400).map(|i| i * i + 7).collect());
    let names: Vec<String> = (0..400).map(|i| format!("host_value_{i:03}")).collect();
    let syms: Vec<Dynsym> = names
        .iter()
        .zip(values)
        .map(|(n, v)| Dynsym::new(n, 0, v as *const i64 as *const ()))
        .collect();
    let slots = dynld::index::build_vec(names.len(), |i| names[i].as_bytes()).unwrap();
    let table = ExportTable::new(&syms).unwrap().with_index(&slots).unwrap();

    // sum() = the sum over k of (k + 1) * host_value_{9k + 5}.
    let used: Vec<usize> = (0..40).map(|k| 9 * k + 5).collect();
    let mut src = String::new();
    for i in &used {
        src += &format!("extern long host_value_{i:03};\n");
    }
    src += "long sum(void) {\n    return 0";
    for (k, i) in used.iter().enumerate() {
        src += &format!(" + {}L * host_value_{i:03}", k + 1);
    }
    src += ";\n}\n";
    let want: i64 = used
        .iter()
        .enumerate()
        .map(|(k, &i)| (k as i64 + 1) * values[i])
        .sum();

    let dir = std::env::temp_dir().join(format!("dynld-hashes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, o) = (dir.join("imports.c"), dir.join("imports.o"));
    std::fs::write(&c, src).unwrap();
    let st = std::process::Command::new("gcc")
        .args(["-O2", "-fPIC", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed");
    let mut sizes = Vec::new();
    for hashes in [IndexMode::Auto, IndexMode::Never] {
        let bytes = link(&Options {
            inputs: vec![o.clone()],
            import_hashes: hashes,
            ..Default::default()
        })
        .unwrap()
        .bytes;
        let view = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
        assert_eq!(view.imports().count(), 40);
        assert_eq!(view.import_hashes().is_some(), hashes == IndexMode::Auto);
        if let Some(h) = view.import_hashes() {
            let computed: Vec<u64> = view
                .imports()
                .map(|i| dynld::index::hash(i.name.as_bytes()))
                .collect();
            assert_eq!(h.collect::<Vec<_>>(), computed);
        }
        sizes.push(bytes.len());
        let m = Loader::new(table, &MMAP)
            .load(&mut SliceSource::new(&bytes))
            .unwrap();
        for imp in m.imports() {
            let i: usize = imp.name["host_value_".len()..].parse().unwrap();
            assert_eq!(imp.addr, &values[i] as *const i64 as *const ());
        }
        // SAFETY: the module's C source defines `long sum(void)`.
        let sum: extern "C" fn() -> i64 =
            unsafe { m.get_unchecked("sum", 0).map(|s| s.into_raw()) }.unwrap();
        assert_eq!(sum(), want, "import hashes {hashes:?}");
    }
    // The hashes and their directory entry.
    assert_eq!(sizes[0], sizes[1] + 8 * 40 + 16);
    std::fs::remove_dir_all(&dir).ok();
}

/// The C source `src` compiled by gcc and linked by `aout link`.
fn c_module(name: &str, src: &str) -> Vec<u8> {
    dynld_suite::cc::module(name, &[src], false)
}

extern "C" fn host_base() -> i32 {
    1000
}

/// Regression: `dynfreeimport` gave the imports' memory back and, with
/// it, the module's hash index (placed after the bindings), so that every
/// lookup in a module with an index failed afterwards on a provider that
/// shrinks regions. A C module with 40 exported functions (so that `aout
/// link` stores an index) and one import: `f7` (and every other export)
/// is found before and after `dynfreeimport`, at the same address, on the
/// mmap provider, on an arena (which really shrinks) and on the heap.
#[test]
fn free_imports_keeps_lookups_through_the_index() {
    let mut src = String::from("extern int host_base(void);\n");
    for i in 0..40 {
        src += &format!("int f{i}(void) {{ return host_base() + {i}; }}\n");
    }
    let bytes = c_module("forty", &src);
    let view = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
    assert!(view.index_slots() > 40, "aout link stores an index");
    assert_eq!(view.imports().count(), 1);
    let host = [Dynsym::new("host_base", 0, host_base as *const ())];
    let table = ExportTable::new(&host).unwrap();
    // Code runs only from the mmap provider's sealed (executable) text.
    let check = |memory: &dyn dynld::Memory, what: &str| {
        let runs = what == "mmap";
        let mut m = Loader::new(table, memory)
            .load(&mut SliceSource::new(&bytes))
            .unwrap();
        let before: Vec<_> = (0..40)
            .map(|i| dynimport(&m, &format!("f{i}"), 0).unwrap_or_else(|| panic!("{what}: f{i}")))
            .collect();
        let f7 = dynimport(&m, "f7", 0).expect("f7 before dynfreeimport");
        // SAFETY: the module's C source defines `int f7(void)`.
        let call: extern "C" fn() -> i32 = unsafe { std::mem::transmute(f7) };
        if runs {
            assert_eq!(call(), 1007);
        }
        let size = m.memory_size();
        dynfreeimport(&mut m);
        assert_eq!(m.nimport(), 0);
        assert_eq!(
            dynimport(&m, "f7", 0),
            Some(f7),
            "{what}: f7 after dynfreeimport"
        );
        for (i, a) in before.iter().enumerate() {
            assert_eq!(dynimport(&m, &format!("f{i}"), 0), Some(*a), "{what}: f{i}");
        }
        assert_eq!(dynimport(&m, "f40", 0), None);
        if runs {
            assert_eq!(call(), 1007, "the code still runs");
        }
        (size, m.memory_size())
    };
    check(&MMAP, "mmap");
    check(&HEAP, "heap");
    let mut buf = vec![0u8; 64 << 10];
    let arena: Arena<'_, 2> = Arena::new(&mut buf);
    let (before, after) = check(&arena, "arena");
    assert!(
        after < before,
        "the arena shrank the region ({before} -> {after})"
    );
    assert_eq!(arena.in_use(), 0);
}

/// A Plan 9 file in memory that counts the bytes read from it; it never
/// tells the loader its length.
struct Counted {
    buf: Buf,
    read: usize,
}

fn counted_read(f: &mut Counted, out: &mut [u8]) -> isize {
    let n = buf_read(&mut f.buf, out);
    f.read += n as usize;
    n
}

fn counted_seek(f: &mut Counted, off: i64, whence: i32) -> i64 {
    buf_seek(&mut f.buf, off, whence)
}

/// Bss the loader may bring in without reading it.
const PREFAULT_BSS: usize = 64 << 10;

/// Regression: a 105-byte module (in format version 1) whose header claims
/// 1 byte of text, data at 4 KiB and 1 GiB of it made the loader commit
/// 1 GiB before it found the file short. From a source that knows its
/// length (a slice, a file) it is refused as truncated before anything is
/// allocated; from one that does not (Plan 9 callbacks), the loader asks
/// the provider to bring in no more than what it read plus 64 KiB.
#[test]
fn huge_data_claim_commits_nothing_it_did_not_read() {
    use dynld::{FileSource, FnSource, IoSource};
    use dynld_suite::counting::CountingMemory;
    let bytes = dynld_suite::claims_data(1 << 30);
    let truncated = Err(Error::Truncated { what: "data" });
    let load = |src: &mut dyn dynld::Source, mem: &CountingMemory<'_>| {
        Loader::new(ExportTable::EMPTY, mem).load(src).map(drop)
    };
    let path = std::env::temp_dir().join(format!("dynld-claims-{}.dl", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let sources: [(&str, Box<dyn dynld::Source>); 3] = [
        ("slice", Box::new(SliceSource::new(&bytes))),
        (
            "io",
            Box::new(IoSource(std::fs::File::open(&path).unwrap())),
        ),
        ("file", Box::new(FileSource::open(&path).unwrap())),
    ];
    for (what, mut src) in sources {
        let mem = CountingMemory::new(&MMAP);
        assert_eq!(load(&mut *src, &mem), truncated, "{what}");
        assert_eq!(mem.allocations(), 0, "{what}: refused before allocating");
    }
    std::fs::remove_file(&path).ok();

    let mem = CountingMemory::new(&MMAP);
    let mut file = Counted {
        buf: Buf {
            bytes: bytes.clone(),
            pos: 0,
        },
        read: 0,
    };
    let mut src = FnSource {
        file: &mut file,
        read: counted_read,
        seek: counted_seek,
    };
    assert_eq!(load(&mut src, &mem), truncated);
    assert_eq!(mem.live(), 0);
    assert!(mem.largest() > 1 << 30, "the claim costs address space");
    let read = file.read;
    assert!(read <= bytes.len());
    assert!(
        mem.prefaulted_bytes() <= read + PREFAULT_BSS,
        "read {read} bytes, asked to bring in {} ({:x?})",
        mem.prefaulted_bytes(),
        mem.prefaulted()
    );
}

/// Regression: a module whose data lies 1 GiB into its image, with no data
/// at all, loads; the padding before the data is address space, not
/// memory: the loader asks to bring in none of it.
#[test]
fn huge_data_offset_commits_no_padding() {
    use dynld_suite::counting::CountingMemory;
    let bytes = dynld_suite::claims_dataoff(1 << 30);
    let mem = CountingMemory::new(&MMAP);
    let m = Loader::new(ExportTable::EMPTY, &mem)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(m.image_size(), 1 << 30);
    assert!(m.find("f").is_some());
    for r in mem.prefaulted() {
        assert!(
            r.end <= 4096 || r.start >= 1 << 30,
            "{r:x?} brings in padding"
        );
    }
    assert!(mem.prefaulted_pages(4096) <= 4 * 4096);
}

/// Peak resident memory of this process, in bytes, since the last reset.
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmHWM");
    kib << 10
}

/// Resets the peak to the current resident memory (Linux 4.0 and later).
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
}

/// The child half of the resident memory tests: with `DYNLD_RSS_CHILD`
/// set, loads the two claims into the mmap provider and prints how far
/// each raised the peak resident memory. With `DYNLD_RSS_CHILD=nothp`,
/// transparent huge pages are off for the process first, so that what is
/// measured is what the loader writes and asks to bring in.
#[test]
#[ignore = "the child half of the resident memory tests, run by claims_in_a_child"]
fn rss_child() {
    let Some(mode) = std::env::var_os("DYNLD_RSS_CHILD") else {
        return;
    };
    if mode == "nothp" {
        // SAFETY: a process-wide setting, no memory involved.
        let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_THP_DISABLE");
    }
    let loader = Loader::new(ExportTable::EMPTY, &MMAP);
    // Both paths once with smaller claims first (large enough to take the
    // provider's paths for large regions), so that what the first use of
    // the code and the stack brings in (the test binary's own pages, a
    // debug build's large stack frames) is not counted against the claims
    // below.
    for warm in [
        dynld_suite::claims_data(64 << 20),
        dynld_suite::claims_dataoff(64 << 20),
    ] {
        let mut file = Counted {
            buf: Buf {
                bytes: warm.clone(),
                pos: 0,
            },
            read: 0,
        };
        let mut src = dynld::FnSource {
            file: &mut file,
            read: counted_read,
            seek: counted_seek,
        };
        let _ = loader.load(&mut src).map(drop);
        let _ = loader.load(&mut SliceSource::new(&warm)).map(drop);
    }
    let data = dynld_suite::claims_data(1 << 30);
    let mut file = Counted {
        buf: Buf {
            bytes: data,
            pos: 0,
        },
        read: 0,
    };
    let mut src = dynld::FnSource {
        file: &mut file,
        read: counted_read,
        seek: counted_seek,
    };
    reset_peak_rss();
    let base = peak_rss();
    let r = loader.load(&mut src).map(drop);
    let grew = peak_rss().saturating_sub(base);
    assert_eq!(r, Err(Error::Truncated { what: "data" }));
    println!("rss data {grew} read {}", file.read);

    let dataoff = dynld_suite::claims_dataoff(1 << 30);
    reset_peak_rss();
    let base = peak_rss();
    let m = loader.load(&mut SliceSource::new(&dataoff)).unwrap();
    let grew = peak_rss().saturating_sub(base);
    drop(m);
    println!("rss dataoff {grew} read {}", dataoff.len());
}

/// Runs [`rss_child`] in a child process (this test binary) in `mode` and
/// checks that each claim raised its peak resident memory by no more than
/// what was read plus 64 KiB, and a few pages of the loader's own.
fn claims_in_a_child(mode: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "rss_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DYNLD_RSS_CHILD", mode)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = Vec::new();
    // The harness may print its "test rss_child ..." before a line.
    for l in stdout
        .lines()
        .filter_map(|l| l.find("rss ").map(|i| &l[i..]))
    {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (grew, read): (usize, usize) = (w[2].parse().unwrap(), w[4].parse().unwrap());
        seen.push((w[1].to_owned(), grew, read));
    }
    assert_eq!(seen.len(), 2, "{stdout}");
    // The peak counts every page of the process, the test binary's own
    // code faulting in among them (a few hundred KiB of a debug build):
    // the slack allows for that, and is still less than the 1 MiB chunk
    // or the 2 MiB huge page that either regression brought in.
    let slack = 512 << 10;
    let over: Vec<_> = seen
        .iter()
        .filter(|(_, grew, read)| *grew > read + PREFAULT_BSS + slack)
        .collect();
    assert!(
        over.is_empty(),
        "{mode}: resident memory grew by more than read + 64 KiB + {slack}: {over:?} (claim, bytes grown, bytes read)"
    );
}

/// The two claims above, measured by the kernel, with transparent huge
/// pages off: what the loader commits.
#[test]
fn huge_claims_stay_out_of_resident_memory() {
    claims_in_a_child("nothp");
}

/// The same with transparent huge pages as the system has them: the mmap
/// provider's regions of 2 MiB and more, which it asks the kernel to back
/// with huge pages, must not commit a huge page for a byte of text.
#[test]
fn huge_claims_stay_out_of_resident_memory_with_huge_pages() {
    claims_in_a_child("thp");
}

/// The C sources `srcs` compiled by gcc, one object each, and linked by
/// `aout link`, with the symbols table or without it.
fn c_objects_module(name: &str, srcs: &[&str], strip_symbols: bool) -> Vec<u8> {
    dynld_suite::cc::module(name, srcs, strip_symbols)
}

/// Two objects, each with a `static` function `helper` (one name, two
/// functions) and a `static` counter, and exported functions that call
/// them and hand out their addresses.
const SYMS_A: &str = "
int first(int x) { return x + 5; }
static int counter;
static int __attribute__((noinline)) helper(int x) { counter += x; return x * 3 + counter; }
int api(int x) { return helper(x) + 1; }
void *helper_a(void) { return (void *)helper; }
void *counter_a(void) { return &counter; }
";
const SYMS_B: &str = "
static int __attribute__((noinline)) helper(int x) { return x - 7; }
int other(int x) { return helper(x) * 2; }
void *helper_b(void) { return (void *)helper; }
";

/// An address inside a `static` function resolves, through the symbols
/// table `aout link` writes, to that function's name and the offset into
/// it, though nothing exports it; so does one inside the other object's
/// `static` function of the same name, and one inside a `static` object.
/// Linked with `--strip-symbols`, the same address resolves to the
/// nearest export below it, as the module knows nothing else.
#[test]
fn symbol_at_names_static_functions() {
    type Addr = extern "C" fn() -> *const ();
    let get = |m: &Module<'_>, name: &str| -> *const () {
        // SAFETY: the module's C source defines `void *NAME(void)`.
        let f: Addr = unsafe { m.get_unchecked(name, 0).map(|s| s.into_raw()) }.unwrap();
        f()
    };
    let bytes = c_objects_module("syms", &[SYMS_A, SYMS_B], false);
    let view = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
    let helpers = view.symbols().filter(|s| s.name == "helper").count();
    assert_eq!(helpers, 2, "both objects' static helpers are listed");
    let m = Loader::new(ExportTable::EMPTY, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert!(m.has_symbols());
    let names: Vec<_> = m.symbols().map(|s| (s.name, s.exported)).collect();
    for want in [
        ("helper", false),
        ("counter", false),
        ("api", true),
        ("first", true),
        ("helper_a", true),
        ("other", true),
    ] {
        assert!(names.contains(&want), "{want:?} in {names:?}");
    }
    let values: Vec<_> = m.symbols().map(|s| s.value).collect();
    assert!(values.is_sorted());
    // SAFETY: the module's C source defines `int api(int)`.
    let api: FnII = unsafe { m.get_unchecked("api", 0).map(|s| s.into_raw()) }.unwrap();
    assert_eq!(api(2), 2 * 3 + 2 + 1, "helper runs");
    for getter in ["helper_a", "helper_b"] {
        let helper = get(&m, getter);
        let inside = helper.cast::<u8>().wrapping_add(3).cast::<()>();
        let s = m.symbol_at(inside).unwrap();
        assert_eq!(
            (s.name, s.offset, s.exported),
            ("helper", 3, false),
            "{getter}"
        );
        assert_eq!(s.addr, helper);
        let size = s.size.unwrap();
        assert!(size > 3);
        // The first byte is offset 0; the last is in it too.
        assert_eq!(m.symbol_at(helper).unwrap().offset, 0);
        let last = helper.cast::<u8>().wrapping_add(size - 1).cast::<()>();
        assert_eq!(m.symbol_at(last).unwrap().offset, size - 1);
        // Past its end: another symbol starting there, or nothing.
        let past = helper.cast::<u8>().wrapping_add(size).cast::<()>();
        if let Some(s) = m.symbol_at(past) {
            assert_eq!((s.offset, s.addr), (0, past));
        }
    }
    assert_ne!(get(&m, "helper_a"), get(&m, "helper_b"));
    let counter = get(&m, "counter_a");
    let s = m.symbol_at(counter).unwrap();
    assert_eq!((s.name, s.offset, s.size), ("counter", 0, Some(4)));
    let s = m.symbol_at(api as *const ()).unwrap();
    assert_eq!((s.name, s.offset, s.exported), ("api", 0, true));
    // Outside the image: nothing.
    assert_eq!(m.symbol_at(host_double as *const ()), None);

    // Without the table: the nearest export below, size unknown.
    let stripped = c_objects_module("syms-stripped", &[SYMS_A, SYMS_B], true);
    let view = dynld::ModuleView::parse(&stripped, &dynld::Limits::DEFAULT).unwrap();
    assert_eq!(view.symbols().count(), 0);
    assert!(view.table_entry(dynld::format::kind::SYMBOLS).is_none());
    assert!(stripped.len() < bytes.len());
    let m = Loader::new(ExportTable::EMPTY, &MMAP)
        .load(&mut SliceSource::new(&stripped))
        .unwrap();
    assert!(!m.has_symbols());
    assert_eq!(m.symbols().count(), 0);
    for getter in ["helper_a", "helper_b"] {
        let helper = get(&m, getter);
        let inside = helper.cast::<u8>().wrapping_add(3).cast::<()>();
        let nearest = m
            .exports()
            .filter(|e| e.addr as usize <= inside as usize)
            .max_by_key(|e| e.addr as usize);
        match (m.symbol_at(inside), nearest) {
            (Some(s), Some(e)) => {
                assert_eq!(
                    (s.name, s.addr, s.size, s.exported),
                    (e.name, e.addr, None, true)
                );
                assert_eq!(s.offset, inside as usize - e.addr as usize);
                assert_ne!(s.name, "helper");
            }
            (None, None) => {}
            (s, e) => panic!("symbol_at gave {s:?}, the nearest export is {e:?}"),
        }
        // The second object goes after the first, whose exports are
        // below its helper.
        assert!(getter == "helper_a" || nearest.is_some());
    }
}

/// The search through the symbols table, on a module laid out by hand:
/// the last symbol at or below the address; among symbols at one address,
/// the exported one; past a symbol's end, in padding, nothing (not the
/// symbol before it, nor an export); before the first symbol, nothing.
#[test]
fn symbol_at_searches_the_table() {
    let mut b = dynld::ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0xc3; 0x100])
        .data(&[0; 0x20])
        .data_offset(0x1000)
        .bss(0x10)
        .export("f", 0, 0x10)
        .export("g_alias", 0, 0x40)
        .symbol("f", 0x10, 0x20, true)
        .symbol("g_alias", 0x40, 0x10, true)
        .symbol("g", 0x40, 0x10, false)
        .symbol("s", 0x80, 0x8, false)
        .symbol("d", 0x1000, 0x20, false)
        .symbol("z", 0x1020, 0x10, false);
    let bytes = b.build().unwrap();
    let m = Loader::new(ExportTable::EMPTY, &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let at = |off: usize| {
        m.symbol_at(m.base().wrapping_add(off).cast())
            .map(|s| (s.name, s.offset, s.size, s.exported))
    };
    assert_eq!(at(0), None, "before the first symbol");
    assert_eq!(at(0x10), Some(("f", 0, Some(0x20), true)));
    assert_eq!(at(0x2f), Some(("f", 0x1f, Some(0x20), true)));
    assert_eq!(at(0x30), None, "past f's end");
    assert_eq!(at(0x44), Some(("g_alias", 4, Some(0x10), true)));
    assert_eq!(at(0x60), None);
    assert_eq!(at(0x87), Some(("s", 7, Some(8), false)));
    assert_eq!(at(0x88), None);
    assert_eq!(at(0x800), None, "between text and data");
    assert_eq!(at(0x1001), Some(("d", 1, Some(0x20), false)));
    assert_eq!(
        at(0x102f),
        Some(("z", 0xf, Some(0x10), false)),
        "in the bss"
    );
    assert_eq!(at(0x1030), None, "past the image");
    let s = m.symbol_at(m.base().wrapping_add(0x12).cast()).unwrap();
    assert_eq!(s.addr, m.base().wrapping_add(0x10).cast());
    let names: Vec<_> = m.symbols().map(|s| s.name).collect();
    assert_eq!(names, ["f", "g", "g_alias", "s", "d", "z"]);
    assert_eq!(m.symbol(5).map(|s| (s.value, s.size)), Some((0x1020, 0x10)));
    assert_eq!(m.symbol(6), None);
    // The table stays after the imports are freed.
    let mut m = m;
    dynld::Module::free_imports(&mut m);
    assert_eq!(m.symbols().count(), 6);
    // Without a table: the scan of the exports, past ends and all.
    let mut b = dynld::ModuleBuilder::new(dynld::Arch::Amd64);
    b.text(&[0xc3; 0x100])
        .export("f", 0, 0x10)
        .export("g_alias", 0, 0x40);
    let bytes = b.build().unwrap();
    let m = Loader::new(ExportTable::EMPTY, &HEAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let at = |off: usize| {
        m.symbol_at(m.base().wrapping_add(off).cast())
            .map(|s| (s.name, s.offset, s.size, s.exported))
    };
    assert_eq!(at(0), None);
    assert_eq!(at(0x30), Some(("f", 0x20, None, true)));
    assert_eq!(at(0xff), Some(("g_alias", 0xbf, None, true)));
}
