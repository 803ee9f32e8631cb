//! The malformed-input matrix: every header word and every field of every
//! directory entry pushed to edge values, relocations at the edges of text
//! and data in both relocation tables, imports at invalid indices, names
//! at their limits, the hash index. Each case asserts the specific error
//! message, that no byte outside the module's memory changed (guard
//! zones), that nothing stays allocated, that the source offset was
//! restored, and that the in-memory reader agrees with the loader.

use dynld::arch::x86_64::{BASE32, BASE64, IMPORT64};
use dynld::format::{kind, Exec};
use dynld::{
    signof, Arch, Dynsym, Error, ExportTable, Limits, Loader, ModuleBuilder, ModuleView,
    SliceSource, Source,
};
use dynld_suite::guard::GuardedMemory;
use dynld_suite::one_reloc;
use dynld_suite::patch::{entry_at, entry_of, field, hdr_field, ntable, set_u16, set_u32, table};

extern "C" fn host_double(x: i32) -> i32 {
    2 * x
}

const PREFIX: usize = 5;

/// Loads `bytes` after a prefix into guarded memory; returns the error's
/// message, or "ok". Checks the guards, that nothing stays allocated, that
/// the source is restored on error, and that the in-memory reader refuses
/// with the same error (short of binding) or accepts what loads.
fn outcome(bytes: &[u8]) -> String {
    let host = [
        Dynsym::new(
            "host_double",
            signof!("fn(int) int"),
            host_double as *const (),
        ),
        Dynsym::new("host_e", 0, core::ptr::null()),
        Dynsym::new("host_f", 0, core::ptr::null()),
    ];
    let mut file = vec![0x5a; PREFIX];
    file.extend_from_slice(bytes);
    let mut src = SliceSource::new(&file);
    src.seek(PREFIX as u64).unwrap();
    let mut mem = GuardedMemory::new();
    mem.cap = 64 << 20;
    let r = Loader::new(ExportTable::new(&host).unwrap(), &mem)
        .arch(Arch::Amd64)
        .load(&mut src)
        .map(drop);
    assert_eq!(mem.violations(), Vec::<String>::new());
    assert_eq!(mem.live(), 0);
    let view = ModuleView::parse(bytes, &Limits::DEFAULT).map(drop);
    match r {
        Ok(()) => {
            assert_eq!(view, Ok(()), "loaded, but the view refuses");
            "ok".into()
        }
        Err(e) => {
            assert_eq!(src.position().unwrap(), PREFIX as u64, "{e}");
            match &e {
                // The loader allocates before it reads the tables: the
                // reader may find something wrong after that.
                Error::Memory { .. } => {}
                Error::Undefined { .. } | Error::RelocOverflow { .. } => {
                    assert_eq!(view, Ok(()), "{e}")
                }
                _ => assert_eq!(view.as_ref(), Err(&e), "view and loader disagree"),
            }
            e.to_string()
        }
    }
}

const EXEC_FIELDS: [&str; 8] = [
    "magic", "text", "data", "bss", "syms", "entry", "spsz", "pcsz",
];
const DYN_FIELDS: [&str; 6] = ["version", "hdrsize", "flags", "align", "dataoff", "ntable"];
const VALUES: [u32; 5] = [0, 1, 0x8000_0000, u32::MAX - 7, u32::MAX];

/// The byte offset of a named header word in an amd64 module.
fn field_at(name: &str) -> usize {
    if let Some(i) = EXEC_FIELDS.iter().position(|f| *f == name) {
        return 4 * i;
    }
    hdr_field(DYN_FIELDS.iter().position(|f| *f == name).unwrap())
}

fn patched(name: &str, v: u32) -> Vec<u8> {
    let mut b = dynld_suite::calc().build().unwrap();
    set_u32(&mut b, field_at(name), v);
    b
}

/// Every header word at each edge value, and what the loader says.
/// "@oom" marks an image too big for the 64 MiB provider.
#[rustfmt::skip]
const MATRIX: &[(&str, u32, &str)] = &[
    ("magic", 0x0, "not dynamic object file or wrong platform (magic 0x00000000)"),
    ("magic", 0x1, "not dynamic object file or wrong platform (magic 0x00000001)"),
    ("magic", 0x80000000, "not dynamic object file or wrong platform (magic 0x80000000)"),
    ("magic", 0xfffffff8, "not dynamic object file or wrong platform (magic 0xfffffff8)"),
    ("magic", 0xffffffff, "not dynamic object file or wrong platform (magic 0xffffffff)"),
    ("text", 0x0, "export outside module: add (0x0)"),
    ("text", 0x1, "export outside module: bump (0x40)"),
    ("text", 0x80000000, "bad module header: data overlaps text"),
    ("text", 0xfffffff8, "bad module header: data overlaps text"),
    ("text", 0xffffffff, "bad module header: data overlaps text"),
    ("data", 0x0, "bad relocation 0: offset 0x1010 outside text and data"),
    ("data", 0x1, "bad relocation 0: offset 0x1010 outside text and data"),
    ("data", 0x80000000, "bad strings table: out of order, or overlapping the part before it"),
    ("data", 0xfffffff8, "bad strings table: out of order, or overlapping the part before it"),
    ("data", 0xffffffff, "bad strings table: out of order, or overlapping the part before it"),
    ("bss", 0x0, "export outside module: scratch (0x1028)"),
    ("bss", 0x1, "ok"),
    ("bss", 0x80000000, "@oom"),
    ("bss", 0xfffffff8, "@oom"),
    ("bss", 0xffffffff, "@oom"),
    ("syms", 0x0, "ok"),
    ("syms", 0x1, "bad module header: syms, spsz and pcsz must be 0"),
    ("syms", 0x80000000, "bad module header: syms, spsz and pcsz must be 0"),
    ("syms", 0xfffffff8, "bad module header: syms, spsz and pcsz must be 0"),
    ("syms", 0xffffffff, "bad module header: syms, spsz and pcsz must be 0"),
    ("entry", 0x0, "bad module header: entry must be all ones (constructors are a table)"),
    ("entry", 0x1, "bad module header: entry must be all ones (constructors are a table)"),
    ("entry", 0x80000000, "bad module header: entry must be all ones (constructors are a table)"),
    ("entry", 0xfffffff8, "bad module header: entry must be all ones (constructors are a table)"),
    ("entry", 0xffffffff, "ok"),
    ("spsz", 0x0, "ok"),
    ("spsz", 0x1, "bad module header: syms, spsz and pcsz must be 0"),
    ("spsz", 0x80000000, "bad module header: syms, spsz and pcsz must be 0"),
    ("spsz", 0xfffffff8, "bad module header: syms, spsz and pcsz must be 0"),
    ("spsz", 0xffffffff, "bad module header: syms, spsz and pcsz must be 0"),
    ("pcsz", 0x0, "ok"),
    ("pcsz", 0x1, "bad module header: syms, spsz and pcsz must be 0"),
    ("pcsz", 0x80000000, "bad module header: syms, spsz and pcsz must be 0"),
    ("pcsz", 0xfffffff8, "bad module header: syms, spsz and pcsz must be 0"),
    ("pcsz", 0xffffffff, "bad module header: syms, spsz and pcsz must be 0"),
    ("version", 0x0, "unsupported module format version 0"),
    ("version", 0x1, "unsupported module format version 1"),
    ("version", 0x80000000, "unsupported module format version 2147483648"),
    ("version", 0xfffffff8, "unsupported module format version 4294967288"),
    ("version", 0xffffffff, "unsupported module format version 4294967295"),
    ("hdrsize", 0x0, "bad module header: extension header size"),
    ("hdrsize", 0x1, "bad module header: extension header size"),
    ("hdrsize", 0x80000000, "bad module header: extension header size"),
    ("hdrsize", 0xfffffff8, "bad module header: extension header size"),
    ("hdrsize", 0xffffffff, "bad module header: extension header size"),
    ("flags", 0x0, "ok"),
    ("flags", 0x1, "module needs memory below 2 GiB: 4384 bytes"),
    ("flags", 0x80000000, "bad module header: unknown flags"),
    ("flags", 0xfffffff8, "bad module header: unknown flags"),
    ("flags", 0xffffffff, "bad module header: unknown flags"),
    ("align", 0x0, "bad module header: alignment"),
    ("align", 0x1, "ok"),
    ("align", 0x80000000, "bad module header: alignment"),
    ("align", 0xfffffff8, "bad module header: alignment"),
    ("align", 0xffffffff, "bad module header: alignment"),
    ("dataoff", 0x0, "bad module header: data overlaps text"),
    ("dataoff", 0x1, "bad module header: data overlaps text"),
    ("dataoff", 0x80000000, "@oom"),
    ("dataoff", 0xfffffff8, "@oom"),
    ("dataoff", 0xffffffff, "@oom"),
    ("ntable", 0x0, "ok"),
    ("ntable", 0x1, "ok"),
    ("ntable", 0x80000000, "implausible table count: 2147483648 (limit 32)"),
    ("ntable", 0xfffffff8, "implausible table count: 4294967288 (limit 32)"),
    ("ntable", 0xffffffff, "implausible table count: 4294967295 (limit 32)"),
];

#[test]
fn every_header_word_at_every_edge() {
    for &(name, v, want) in MATRIX {
        let got = outcome(&patched(name, v));
        if want == "@oom" {
            assert!(got.starts_with("out of memory: "), "{name}={v:#x}: {got}");
        } else {
            assert_eq!(got, want, "{name}={v:#x}");
        }
    }
    // Every word of both headers is covered.
    for f in EXEC_FIELDS.iter().chain(DYN_FIELDS.iter()) {
        assert_eq!(
            MATRIX.iter().filter(|r| r.0 == *f).count(),
            VALUES.len(),
            "{f}"
        );
    }
}

/// Directory entry fields, by name.
const ENTRY_FIELDS: [(&str, usize); 5] = [
    ("kind", field::KIND),
    ("flags", field::FLAGS),
    ("count", field::COUNT),
    ("offset", field::OFFSET),
    ("size", field::SIZE),
];

/// The calc sample with directory entry `i`'s field `f` set to `v` (the
/// low 16 bits for kind and flags).
fn entry_patched(i: usize, f: &str, v: u32) -> Vec<u8> {
    let mut b = dynld_suite::calc().build().unwrap();
    let at = entry_at(i) + ENTRY_FIELDS.iter().find(|x| x.0 == f).unwrap().1;
    if f == "kind" || f == "flags" {
        set_u16(&mut b, at, v as u16);
    } else {
        set_u32(&mut b, at, v);
    }
    b
}

/// Values for kind and flags: the edges of a u16 (the kinds next to
/// those defined are in `tests/malformed.rs`).
const HALF_VALUES: [u32; 5] = [0, 1, 0x8000, 0xfff8, 0xffff];

/// Every field of every directory entry of the calc sample (strings,
/// exports, imports, import relocations, relocations) at each edge value.
#[rustfmt::skip]
const DIRECTORY: &[(usize, &str, u32, &str)] = &[
    (0, "kind", 0x0, "module needs a table this loader does not know (kind 0)"),
    (0, "kind", 0x1, "ok"),
    (0, "kind", 0x8000, "module needs a table this loader does not know (kind 32768)"),
    (0, "kind", 0xfff8, "module needs a table this loader does not know (kind 65528)"),
    (0, "kind", 0xffff, "module needs a table this loader does not know (kind 65535)"),
    (0, "flags", 0x0, "bad strings table: required flag disagrees with the kind"),
    (0, "flags", 0x1, "ok"),
    (0, "flags", 0x8000, "bad strings table: unknown table flags"),
    (0, "flags", 0xfff8, "bad strings table: unknown table flags"),
    (0, "flags", 0xffff, "bad strings table: unknown table flags"),
    (0, "count", 0x0, "ok"),
    (0, "count", 0x1, "bad strings table: size disagrees with the count"),
    (0, "count", 0x80000000, "bad strings table: size disagrees with the count"),
    (0, "count", 0xfffffff8, "bad strings table: size disagrees with the count"),
    (0, "count", 0xffffffff, "bad strings table: size disagrees with the count"),
    (0, "offset", 0x0, "bad strings table: out of order, or overlapping the part before it"),
    (0, "offset", 0x1, "bad strings table: out of order, or overlapping the part before it"),
    (0, "offset", 0x80000000, "bad exports table: out of order, or overlapping the part before it"),
    (0, "offset", 0xfffffff8, "bad exports table: out of order, or overlapping the part before it"),
    (0, "offset", 0xffffffff, "bad exports table: out of order, or overlapping the part before it"),
    (0, "size", 0x0, "bad strings table: empty table in the directory"),
    (0, "size", 0x1, "bad export table entry 0: name outside string table"),
    (0, "size", 0x80000000, "implausible string table size: 2147483648 (limit 67108864)"),
    (0, "size", 0xfffffff8, "implausible string table size: 4294967288 (limit 67108864)"),
    (0, "size", 0xffffffff, "implausible string table size: 4294967295 (limit 67108864)"),
    (1, "kind", 0x0, "module needs a table this loader does not know (kind 0)"),
    (1, "kind", 0x1, "bad strings table: listed twice in the directory"),
    (1, "kind", 0x8000, "module needs a table this loader does not know (kind 32768)"),
    (1, "kind", 0xfff8, "module needs a table this loader does not know (kind 65528)"),
    (1, "kind", 0xffff, "module needs a table this loader does not know (kind 65535)"),
    (1, "flags", 0x0, "bad exports table: required flag disagrees with the kind"),
    (1, "flags", 0x1, "ok"),
    (1, "flags", 0x8000, "bad exports table: unknown table flags"),
    (1, "flags", 0xfff8, "bad exports table: unknown table flags"),
    (1, "flags", 0xffff, "bad exports table: unknown table flags"),
    (1, "count", 0x0, "bad exports table: size disagrees with the count"),
    (1, "count", 0x1, "bad exports table: size disagrees with the count"),
    (1, "count", 0x80000000, "implausible export count: 2147483648 (limit 1048576)"),
    (1, "count", 0xfffffff8, "implausible export count: 4294967288 (limit 1048576)"),
    (1, "count", 0xffffffff, "implausible export count: 4294967295 (limit 1048576)"),
    (1, "offset", 0x0, "bad exports table: out of order, or overlapping the part before it"),
    (1, "offset", 0x1, "bad exports table: out of order, or overlapping the part before it"),
    (1, "offset", 0x80000000, "bad imports table: out of order, or overlapping the part before it"),
    (1, "offset", 0xfffffff8, "bad imports table: out of order, or overlapping the part before it"),
    (1, "offset", 0xffffffff, "bad imports table: out of order, or overlapping the part before it"),
    (1, "size", 0x0, "bad exports table: empty table in the directory"),
    (1, "size", 0x1, "bad exports table: size disagrees with the count"),
    (1, "size", 0x80000000, "bad exports table: size disagrees with the count"),
    (1, "size", 0xfffffff8, "bad exports table: size disagrees with the count"),
    (1, "size", 0xffffffff, "bad exports table: size disagrees with the count"),
    (2, "kind", 0x0, "module needs a table this loader does not know (kind 0)"),
    (2, "kind", 0x1, "bad strings table: listed twice in the directory"),
    (2, "kind", 0x8000, "module needs a table this loader does not know (kind 32768)"),
    (2, "kind", 0xfff8, "module needs a table this loader does not know (kind 65528)"),
    (2, "kind", 0xffff, "module needs a table this loader does not know (kind 65535)"),
    (2, "flags", 0x0, "bad imports table: required flag disagrees with the kind"),
    (2, "flags", 0x1, "ok"),
    (2, "flags", 0x8000, "bad imports table: unknown table flags"),
    (2, "flags", 0xfff8, "bad imports table: unknown table flags"),
    (2, "flags", 0xffff, "bad imports table: unknown table flags"),
    (2, "count", 0x0, "bad imports table: size disagrees with the count"),
    (2, "count", 0x1, "ok"),
    (2, "count", 0x80000000, "implausible import count: 2147483648 (limit 65536)"),
    (2, "count", 0xfffffff8, "implausible import count: 4294967288 (limit 65536)"),
    (2, "count", 0xffffffff, "implausible import count: 4294967295 (limit 65536)"),
    (2, "offset", 0x0, "bad imports table: out of order, or overlapping the part before it"),
    (2, "offset", 0x1, "bad imports table: out of order, or overlapping the part before it"),
    (2, "offset", 0x80000000, "bad import relocations table: out of order, or overlapping the part before it"),
    (2, "offset", 0xfffffff8, "bad import relocations table: out of order, or overlapping the part before it"),
    (2, "offset", 0xffffffff, "bad import relocations table: out of order, or overlapping the part before it"),
    (2, "size", 0x0, "bad imports table: empty table in the directory"),
    (2, "size", 0x1, "bad imports table: size disagrees with the count"),
    (2, "size", 0x80000000, "bad imports table: size disagrees with the count"),
    (2, "size", 0xfffffff8, "bad imports table: size disagrees with the count"),
    (2, "size", 0xffffffff, "bad imports table: size disagrees with the count"),
    (3, "kind", 0x0, "module needs a table this loader does not know (kind 0)"),
    (3, "kind", 0x1, "bad strings table: listed twice in the directory"),
    (3, "kind", 0x8000, "module needs a table this loader does not know (kind 32768)"),
    (3, "kind", 0xfff8, "module needs a table this loader does not know (kind 65528)"),
    (3, "kind", 0xffff, "module needs a table this loader does not know (kind 65535)"),
    (3, "flags", 0x0, "bad import relocations table: required flag disagrees with the kind"),
    (3, "flags", 0x1, "ok"),
    (3, "flags", 0x8000, "bad import relocations table: unknown table flags"),
    (3, "flags", 0xfff8, "bad import relocations table: unknown table flags"),
    (3, "flags", 0xffff, "bad import relocations table: unknown table flags"),
    (3, "count", 0x0, "bad import relocations table: size disagrees with the count"),
    (3, "count", 0x1, "ok"),
    (3, "count", 0x80000000, "implausible relocation count: 2147483648 (limit 16777216)"),
    (3, "count", 0xfffffff8, "implausible relocation count: 4294967288 (limit 16777216)"),
    (3, "count", 0xffffffff, "implausible relocation count: 4294967295 (limit 16777216)"),
    (3, "offset", 0x0, "bad import relocations table: out of order, or overlapping the part before it"),
    (3, "offset", 0x1, "bad import relocations table: out of order, or overlapping the part before it"),
    (3, "offset", 0x80000000, "bad relocations table: out of order, or overlapping the part before it"),
    (3, "offset", 0xfffffff8, "bad relocations table: out of order, or overlapping the part before it"),
    (3, "offset", 0xffffffff, "bad relocations table: out of order, or overlapping the part before it"),
    (3, "size", 0x0, "bad import relocations table: empty table in the directory"),
    (3, "size", 0x1, "bad import relocations table: size disagrees with the count"),
    (3, "size", 0x80000000, "bad import relocations table: size disagrees with the count"),
    (3, "size", 0xfffffff8, "bad import relocations table: size disagrees with the count"),
    (3, "size", 0xffffffff, "bad import relocations table: size disagrees with the count"),
    (4, "kind", 0x0, "module needs a table this loader does not know (kind 0)"),
    (4, "kind", 0x1, "bad strings table: listed twice in the directory"),
    (4, "kind", 0x8000, "module needs a table this loader does not know (kind 32768)"),
    (4, "kind", 0xfff8, "module needs a table this loader does not know (kind 65528)"),
    (4, "kind", 0xffff, "module needs a table this loader does not know (kind 65535)"),
    (4, "flags", 0x0, "bad relocations table: required flag disagrees with the kind"),
    (4, "flags", 0x1, "ok"),
    (4, "flags", 0x8000, "bad relocations table: unknown table flags"),
    (4, "flags", 0xfff8, "bad relocations table: unknown table flags"),
    (4, "flags", 0xffff, "bad relocations table: unknown table flags"),
    (4, "count", 0x0, "bad relocations table: size disagrees with the count"),
    (4, "count", 0x1, "bad relocation 1: bytes left over after the last record"),
    (4, "count", 0x80000000, "implausible relocation count: 2147483648 (limit 16777216)"),
    (4, "count", 0xfffffff8, "implausible relocation count: 4294967288 (limit 16777216)"),
    (4, "count", 0xffffffff, "implausible relocation count: 4294967295 (limit 16777216)"),
    (4, "offset", 0x0, "bad relocations table: out of order, or overlapping the part before it"),
    (4, "offset", 0x1, "bad relocations table: out of order, or overlapping the part before it"),
    (4, "offset", 0x80000000, "premature end of module reading relocations"),
    (4, "offset", 0xfffffff8, "premature end of module reading relocations"),
    (4, "offset", 0xffffffff, "premature end of module reading relocations"),
    (4, "size", 0x0, "bad relocations table: empty table in the directory"),
    (4, "size", 0x1, "bad relocations table: size disagrees with the count"),
    (4, "size", 0x80000000, "bad relocations table: size disagrees with the count"),
    (4, "size", 0xfffffff8, "bad relocations table: size disagrees with the count"),
    (4, "size", 0xffffffff, "bad relocations table: size disagrees with the count"),
];

#[test]
fn every_directory_field_at_every_edge() {
    let b = dynld_suite::calc().build().unwrap();
    assert_eq!(ntable(&b), 5);
    for &(i, f, v, want) in DIRECTORY {
        assert_eq!(
            outcome(&entry_patched(i, f, v)),
            want,
            "entry {i} {f}={v:#x}"
        );
    }
    for i in 0..5 {
        for (f, _) in ENTRY_FIELDS {
            let values = if f == "kind" || f == "flags" {
                HALF_VALUES
            } else {
                VALUES
            };
            for v in values {
                assert!(
                    DIRECTORY.iter().any(|r| (r.0, r.1, r.2) == (i, f, v)),
                    "entry {i} {f}={v:#x} not covered"
                );
            }
        }
    }
}

/// The calc sample with a hash index over its exports.
fn indexed() -> Vec<u8> {
    dynld_suite::calc().index(true).build().unwrap()
}

#[test]
fn hash_index_checked() {
    let good = indexed();
    let t = table(&good, kind::INDEX);
    let (off, size) = (t.offset as usize, t.size as usize);
    assert_eq!((t.count, size), (16, 16 * 8), "8 exports, 16 slots");
    assert_eq!(outcome(&good), "ok");
    // Every truncation inside the index (the tables after it are cut off
    // too, but the index comes first).
    let step = if cfg!(miri) { 13 } else { 1 };
    for cut in (off..off + size).step_by(step) {
        assert_eq!(
            outcome(&good[..cut]),
            "premature end of module reading hash index"
        );
    }
    // A slot naming a symbol past the table, in every slot.
    let slots: Vec<usize> = if cfg!(miri) {
        vec![0, 7, 15]
    } else {
        (0..size / 8).collect()
    };
    for slot in slots {
        for v in [9u64, 0xffff_ffff, u64::MAX] {
            let mut b = good.clone();
            b[off + 8 * slot..off + 8 * slot + 8].copy_from_slice(&v.to_be_bytes());
            assert_eq!(
                outcome(&b),
                "bad export hash index: a slot names no symbol",
                "slot {slot} = {v:#x}"
            );
        }
    }
    // Slot counts: not a power of two, no more than the exports, more
    // than twice what the writer makes (each with a size to match), in a
    // module whose index is its last table; at twice, it loads.
    let mut lone = ModuleBuilder::new(Arch::Amd64);
    lone.text(&[0xc3; 8]).index(true);
    for i in 0..8 {
        lone.export(&format!("f{i}"), 0, i);
    }
    let lone = lone.build().unwrap();
    let last = entry_at(ntable(&lone) - 1);
    assert_eq!(table(&lone, kind::INDEX).count, 16);
    assert_eq!(entry_of(&lone, kind::INDEX), last);
    for slots in [0u32, 7, 8, 12, 33, 64, 1 << 20] {
        let mut b = lone.clone();
        set_u32(&mut b, last + field::COUNT, slots);
        set_u32(&mut b, last + field::SIZE, 8 * slots);
        let want = if slots == 0 {
            "bad hash index table: empty table in the directory"
        } else {
            "bad export hash index: slot count not a power of two, or too small or too large"
        };
        assert_eq!(outcome(&b), want, "{slots} slots");
    }
    let mut b = lone.clone();
    set_u32(&mut b, last + field::COUNT, 32);
    set_u32(&mut b, last + field::SIZE, 8 * 32);
    b.resize(b.len() + 16 * 8, 0);
    assert_eq!(outcome(&b), "ok", "32 slots");
    // A size that is not a multiple of a slot.
    let at = entry_of(&good, kind::INDEX);
    let mut b = good.clone();
    set_u32(&mut b, at + field::SIZE, size as u32 - 4);
    assert_eq!(
        outcome(&b),
        "bad hash index table: size disagrees with the count"
    );
    // The index may not overlap the table before it.
    let mut b = good.clone();
    set_u32(&mut b, at + field::OFFSET, off as u32 - 1);
    assert_eq!(
        outcome(&b),
        "bad hash index table: out of order, or overlapping the part before it"
    );
    // Optional: renamed to an unknown kind, it is skipped.
    let mut b = good.clone();
    set_u16(&mut b, at, 0x7777);
    assert_eq!(outcome(&b), "ok");
}

#[test]
fn fat_entry_must_be_all_ones() {
    for (v, ok) in [
        (u64::MAX, true),
        (0, false),
        (1, false),
        (u64::from(u32::MAX), false),
        (u64::MAX - 1, false),
        (u64::MAX >> 1, false),
    ] {
        let mut b = dynld_suite::calc().build().unwrap();
        b[Exec::SIZE..Exec::SIZE + 8].copy_from_slice(&v.to_be_bytes());
        let want = if ok {
            "ok"
        } else {
            "bad module header: entry must be all ones (constructors are a table)"
        };
        assert_eq!(outcome(&b), want, "{v:#x}");
    }
}

#[test]
fn relocations_at_the_last_byte_and_one_past() {
    let out = |off: u32| format!("bad relocation 0: offset {off:#x} outside text and data");
    // Both tables: base modes of both widths, and the import mode.
    for (width, mode, import) in [
        (8u32, BASE64, None),
        (4, BASE32, None),
        (8, IMPORT64, Some(0)),
    ] {
        for end in [16u32, 0x1010] {
            // Ends exactly at the last byte: inside. (A 32-bit base field
            // holds the base only if the region happens to lie below 4 GiB,
            // so either outcome is right for BASE32, but nothing else is.)
            let r = outcome(&one_reloc(end - width, mode, import));
            let overflow = format!(
                "bad relocation 0: value out of range for field at {:#x}",
                end - width
            );
            assert!(
                r == "ok" || (mode == BASE32 && r == overflow),
                "{end:#x}: {r}"
            );
            // One byte further: outside.
            assert_eq!(
                outcome(&one_reloc(end - width + 1, mode, import)),
                out(end - width + 1)
            );
            // Starting at the last byte.
            assert_eq!(outcome(&one_reloc(end - 1, mode, import)), out(end - 1));
        }
        // In the gap between text and data, in bss, at the end of the
        // address space.
        for off in [0x20, 0xff8, 0x1010, 0x1018, u32::MAX - 8] {
            assert_eq!(outcome(&one_reloc(off, mode, import)), out(off), "{off:#x}");
        }
    }
}

#[test]
fn imports_at_every_kind_of_invalid_index() {
    assert_eq!(outcome(&one_reloc(0x1000, IMPORT64, Some(0))), "ok");
    // Indices of every encoded width (1, 2 and 4 bytes) and their edges.
    for i in [
        1,
        2,
        0xff,
        0x100,
        0xffff,
        0x1_0000,
        0xff_ffff,
        0x100_0000,
        u32::MAX,
    ] {
        assert_eq!(
            outcome(&one_reloc(0x1000, IMPORT64, Some(i))),
            format!("bad relocation 0: import {i} out of range (1 imports)")
        );
    }
    // Relative to a table of three imports: the last is fine, one past not.
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 16])
        .data(&[0; 16])
        .data_offset(0x1000)
        .keep_order();
    for n in ["host_double", "host_e", "host_f"] {
        b.import(n, 0);
    }
    b.reloc(0x1000, IMPORT64, Some(3));
    assert_eq!(
        outcome(&b.build().unwrap()),
        "bad relocation 0: import 3 out of range (3 imports)"
    );
    // An import mode without an index (in the base table), a base mode
    // with one (in the import table).
    assert_eq!(
        outcome(&one_reloc(0x1000, IMPORT64, None)),
        "bad relocation 0: mode that adds an import in the base relocations"
    );
    assert_eq!(
        outcome(&one_reloc(0x1000, BASE64, Some(0))),
        "bad relocation 0: mode that adds the base in the import relocations"
    );
}

#[test]
fn names_empty_unterminated_duplicate_and_out_of_order() {
    let build = |exports: &[&str], imports: &[&str]| {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3; 16]).keep_order();
        for e in exports {
            b.export(e, 0, 0);
        }
        for i in imports {
            b.import(i, 0);
        }
        b.build().unwrap()
    };
    let host = "host_double";
    assert_eq!(outcome(&build(&["a", "b"], &[host])), "ok");
    for (exports, imports, want) in [
        (
            &["", "b"][..],
            &[][..],
            "bad export table entry 0: empty name",
        ),
        (&["a", ""], &[], "bad export table entry 1: empty name"),
        (&["a", "a"], &[], "duplicate symbol in export table: a"),
        (&["b", "a"], &[], "export table not sorted at: a"),
        (&["a\0"], &[], "bad export table entry 0: NUL byte in name"),
        (&[], &["", host], "bad import table entry 0: empty name"),
        (
            &[],
            &[""],
            "bad strings table: symbols without a string table",
        ),
        (
            &[],
            &[host, host],
            "duplicate symbol in import table: host_double",
        ),
        (&[], &[host, "a"], "import table not sorted at: a"),
        (&[], &["h\0"], "bad import table entry 0: NUL byte in name"),
    ] {
        assert_eq!(
            outcome(&build(exports, imports)),
            want,
            "{exports:?} {imports:?}"
        );
    }
    // Names at the length limit and one past it.
    let long = "x".repeat(dynld::MAX_NAME as usize);
    assert_eq!(outcome(&build(&[&long], &[])), "ok");
    let longer = "x".repeat(dynld::MAX_NAME as usize + 1);
    assert_eq!(
        outcome(&build(&[&longer], &[])),
        "bad export table entry 0: name too long"
    );
    assert_eq!(
        outcome(&build(&[], &[&longer])),
        "bad import table entry 0: name too long"
    );
    // The last name runs one byte past the end of the string table.
    let mut b = build(&["a", "bc"], &[]);
    let exps = table(&b, kind::EXPORTS).offset as usize;
    set_u32(&mut b, exps + 16 + 4, 3);
    assert_eq!(
        outcome(&b),
        "bad export table entry 1: name outside string table"
    );
    // Not UTF-8, in either table.
    let mut b = build(&["a\u{e9}"], &["b\u{e9}"]);
    let strs = table(&b, kind::STRINGS).offset as usize;
    b[strs + 2] = 0xff;
    assert_eq!(outcome(&b), "bad export table entry 0: name is not UTF-8");
    let mut b = build(&["a"], &["b\u{e9}"]);
    let strs = table(&b, kind::STRINGS).offset as usize;
    b[strs + 3] = 0xc3;
    assert_eq!(outcome(&b), "bad import table entry 0: name is not UTF-8");
}
