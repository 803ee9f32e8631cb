//! The malformed-input matrix: every header field pushed to edge values,
//! relocations at the edges of text and data, imports at invalid indices.
//! Each case asserts the specific error, that no byte outside the module's
//! memory changed (guard zones), that nothing stays allocated, and that the
//! source offset was restored.

use dynld::arch::x86_64::{BASE32, BASE64, IMPORT64};
use dynld::format::{Dynhdr, Exec};
use dynld::{signof, Arch, Dynsym, Error, ExportTable, Loader, ModuleBuilder, SliceSource, Source};
use dynld_suite::guard::GuardedMemory;
use dynld_suite::one_reloc;

extern "C" fn host_double(x: i32) -> i32 {
    2 * x
}

const PREFIX: usize = 5;

/// Loads `bytes` after a prefix into guarded memory; returns the error's
/// message, or "ok".
fn outcome(bytes: &[u8]) -> String {
    let host = [Dynsym::new(
        "host_double",
        signof!("fn(int) int"),
        host_double as *const (),
    )];
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
    match r {
        Ok(()) => "ok".into(),
        Err(e) => {
            assert_eq!(src.position().unwrap(), PREFIX as u64, "{e}");
            e.to_string()
        }
    }
}

const EXEC_FIELDS: [&str; 8] = [
    "magic", "text", "data", "bss", "syms", "entry", "spsz", "pcsz",
];
const DYN_FIELDS: [&str; 16] = [
    "version", "hdrsize", "flags", "align", "dataoff", "nexport", "nimport", "nreloc", "stroff",
    "strsize", "expoff", "impoff", "reloff", "relsize", "idxoff", "idxsize",
];
const VALUES: [u32; 5] = [0, 1, 0x8000_0000, u32::MAX - 7, u32::MAX];

/// The byte offset of a named header word in an amd64 module.
fn field_at(name: &str) -> usize {
    if let Some(i) = EXEC_FIELDS.iter().position(|f| *f == name) {
        return 4 * i;
    }
    let i = DYN_FIELDS.iter().position(|f| *f == name).unwrap();
    Exec::SIZE + 8 + 4 * i
}

fn patched(name: &str, v: u32) -> Vec<u8> {
    let mut b = dynld_suite::calc().build().unwrap();
    let at = field_at(name);
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    if name == "entry" {
        // Keep the 64-bit copy in step, so the 32-bit value is what is tested.
        let fat = if v == u32::MAX {
            u64::MAX
        } else {
            u64::from(v)
        };
        b[Exec::SIZE..Exec::SIZE + 8].copy_from_slice(&fat.to_be_bytes());
    }
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
    ("data", 0x0, "export outside module: ops (0x1018)"),
    ("data", 0x1, "export outside module: ops (0x1018)"),
    ("data", 0x80000000, "bad module header: tables out of order or overlapping"),
    ("data", 0xfffffff8, "bad module header: tables out of order or overlapping"),
    ("data", 0xffffffff, "bad module header: tables out of order or overlapping"),
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
    ("entry", 0x0, "ok"),
    ("entry", 0x1, "ok"),
    ("entry", 0x80000000, "bad module header: entry outside text"),
    ("entry", 0xfffffff8, "bad module header: entry outside text"),
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
    ("version", 0x1, "ok"),
    ("version", 0x80000000, "unsupported module format version 2147483648"),
    ("version", 0xfffffff8, "unsupported module format version 4294967288"),
    ("version", 0xffffffff, "unsupported module format version 4294967295"),
    ("hdrsize", 0x0, "bad module header: extension header size"),
    ("hdrsize", 0x1, "bad module header: extension header size"),
    ("hdrsize", 0x80000000, "bad module header: extension header size"),
    ("hdrsize", 0xfffffff8, "bad module header: extension header size"),
    ("hdrsize", 0xffffffff, "bad module header: extension header size"),
    ("flags", 0x0, "ok"),
    ("flags", 0x1, "module needs memory below 2 GiB: 4368 bytes"),
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
    ("nexport", 0x0, "ok"),
    ("nexport", 0x1, "ok"),
    ("nexport", 0x80000000, "implausible export count: 2147483648 (limit 1048576)"),
    ("nexport", 0xfffffff8, "implausible export count: 4294967288 (limit 1048576)"),
    ("nexport", 0xffffffff, "implausible export count: 4294967295 (limit 1048576)"),
    ("nimport", 0x0, "bad relocation 0: import 0 out of range (0 imports)"),
    ("nimport", 0x1, "ok"),
    ("nimport", 0x80000000, "implausible import count: 2147483648 (limit 65536)"),
    ("nimport", 0xfffffff8, "implausible import count: 4294967288 (limit 65536)"),
    ("nimport", 0xffffffff, "implausible import count: 4294967295 (limit 65536)"),
    ("nreloc", 0x0, "bad module header: relocation stream size disagrees with count"),
    ("nreloc", 0x1, "bad module header: relocation stream size disagrees with count"),
    ("nreloc", 0x80000000, "implausible relocation count: 2147483648 (limit 16777216)"),
    ("nreloc", 0xfffffff8, "implausible relocation count: 4294967288 (limit 16777216)"),
    ("nreloc", 0xffffffff, "implausible relocation count: 4294967295 (limit 16777216)"),
    ("stroff", 0x0, "bad module header: tables out of order or overlapping"),
    ("stroff", 0x1, "bad module header: tables out of order or overlapping"),
    ("stroff", 0x80000000, "bad module header: tables out of order or overlapping"),
    ("stroff", 0xfffffff8, "bad module header: tables out of order or overlapping"),
    ("stroff", 0xffffffff, "bad module header: tables out of order or overlapping"),
    ("strsize", 0x0, "bad export table entry 0: name outside string table"),
    ("strsize", 0x1, "bad export table entry 0: name outside string table"),
    ("strsize", 0x80000000, "implausible string table size: 2147483648 (limit 67108864)"),
    ("strsize", 0xfffffff8, "implausible string table size: 4294967288 (limit 67108864)"),
    ("strsize", 0xffffffff, "implausible string table size: 4294967295 (limit 67108864)"),
    ("expoff", 0x0, "bad module header: tables out of order or overlapping"),
    ("expoff", 0x1, "bad module header: tables out of order or overlapping"),
    ("expoff", 0x80000000, "bad module header: tables out of order or overlapping"),
    ("expoff", 0xfffffff8, "bad module header: tables out of order or overlapping"),
    ("expoff", 0xffffffff, "bad module header: tables out of order or overlapping"),
    ("impoff", 0x0, "bad module header: tables out of order or overlapping"),
    ("impoff", 0x1, "bad module header: tables out of order or overlapping"),
    ("impoff", 0x80000000, "bad module header: tables out of order or overlapping"),
    ("impoff", 0xfffffff8, "bad module header: tables out of order or overlapping"),
    ("impoff", 0xffffffff, "bad module header: tables out of order or overlapping"),
    ("reloff", 0x0, "bad module header: tables out of order or overlapping"),
    ("reloff", 0x1, "bad module header: tables out of order or overlapping"),
    ("reloff", 0x80000000, "premature end of module reading relocations"),
    ("reloff", 0xfffffff8, "premature end of module reading relocations"),
    ("reloff", 0xffffffff, "premature end of module reading relocations"),
    ("relsize", 0x0, "bad module header: relocation stream size disagrees with count"),
    ("relsize", 0x1, "bad module header: relocation stream size disagrees with count"),
    ("relsize", 0x80000000, "bad module header: relocation stream size disagrees with count"),
    ("relsize", 0xfffffff8, "bad module header: relocation stream size disagrees with count"),
    ("relsize", 0xffffffff, "bad module header: relocation stream size disagrees with count"),
    ("idxoff", 0x0, "ok"),
    ("idxoff", 0x1, "bad module header: index offset without an index"),
    ("idxoff", 0x80000000, "bad module header: index offset without an index"),
    ("idxoff", 0xfffffff8, "bad module header: index offset without an index"),
    ("idxoff", 0xffffffff, "bad module header: index offset without an index"),
    ("idxsize", 0x0, "ok"),
    ("idxsize", 0x1, "bad export hash index: slot count not a power of two, or too small or too large"),
    ("idxsize", 0x80000000, "bad export hash index: slot count not a power of two, or too small or too large"),
    ("idxsize", 0xfffffff8, "bad export hash index: slot count not a power of two, or too small or too large"),
    ("idxsize", 0xffffffff, "bad export hash index: slot count not a power of two, or too small or too large"),
];

#[test]
fn every_header_field_at_every_edge() {
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

/// The calc sample with a hash index over its exports.
fn indexed() -> Vec<u8> {
    dynld_suite::calc().index(true).build().unwrap()
}

/// The index's file offset and size in `b`.
fn index_at(b: &[u8]) -> (usize, usize) {
    let word = |name| {
        let at = field_at(name);
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
    };
    (word("idxoff"), word("idxsize"))
}

#[test]
fn hash_index_checked() {
    let good = indexed();
    let (off, size) = index_at(&good);
    assert_eq!(
        (off + size, size),
        (good.len(), 16 * 8),
        "8 exports, 16 slots"
    );
    assert_eq!(outcome(&good), "ok");
    // Every truncation inside the index.
    for cut in off..good.len() {
        assert_eq!(
            outcome(&good[..cut]),
            "premature end of module reading hash index"
        );
    }
    // A slot naming a symbol past the table, in every slot.
    for slot in 0..size / 8 {
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
    // Sizes: not a multiple of a slot, not a power of two, no more slots
    // than exports, more than twice what the writer makes.
    for slots_bytes in [4u32, 7 * 8, 8 * 8, 64 * 8] {
        let mut b = good.clone();
        let at = field_at("idxsize");
        b[at..at + 4].copy_from_slice(&slots_bytes.to_be_bytes());
        assert_eq!(
            outcome(&b),
            "bad export hash index: slot count not a power of two, or too small or too large",
            "{slots_bytes}"
        );
    }
    // The index may not overlap the relocations.
    let mut b = good.clone();
    let at = field_at("idxoff");
    b[at..at + 4].copy_from_slice(&(off as u32 - 1).to_be_bytes());
    assert_eq!(
        outcome(&b),
        "bad module header: tables out of order or overlapping"
    );
}

#[test]
fn fat_entry_must_agree() {
    for (v, ok) in [
        (u64::MAX, true),
        (0, false),
        (1, false),
        (u64::from(u32::MAX), false),
    ] {
        let mut b = dynld_suite::calc().build().unwrap();
        b[Exec::SIZE..Exec::SIZE + 8].copy_from_slice(&v.to_be_bytes());
        let want = if ok {
            "ok"
        } else {
            "bad module header: 64-bit entry disagrees with entry"
        };
        assert_eq!(outcome(&b), want, "{v:#x}");
    }
}

#[test]
fn relocations_at_the_last_byte_and_one_past() {
    let out = |off: u32| format!("bad relocation 0: offset {off:#x} outside text and data");
    for (width, mode) in [(8u32, BASE64), (4, BASE32)] {
        for end in [16u32, 0x1010] {
            // Ends exactly at the last byte: inside. (A 32-bit base field
            // holds the base only if the region happens to lie below 4 GiB,
            // so either outcome is right for BASE32, but nothing else is.)
            let r = outcome(&one_reloc(end - width, mode, None));
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
                outcome(&one_reloc(end - width + 1, mode, None)),
                out(end - width + 1)
            );
            // Starting at the last byte.
            assert_eq!(outcome(&one_reloc(end - 1, mode, None)), out(end - 1));
        }
    }
    // In the gap between text and data, in bss, at the end of the address space.
    for off in [0x20, 0xff8, 0x1010, 0x1018, u32::MAX - 8] {
        assert_eq!(outcome(&one_reloc(off, BASE64, None)), out(off), "{off:#x}");
    }
}

#[test]
fn imports_at_every_kind_of_invalid_index() {
    assert_eq!(outcome(&one_reloc(0x1000, IMPORT64, Some(0))), "ok");
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
    assert_eq!(
        outcome(&build(&["", "b"], &[])),
        "bad export table entry 0: empty name"
    );
    assert_eq!(
        outcome(&build(&["a", "a"], &[])),
        "duplicate symbol in export table: a"
    );
    assert_eq!(
        outcome(&build(&["b", "a"], &[])),
        "export table not sorted at: a"
    );
    assert_eq!(
        outcome(&build(&[], &[""])),
        "bad import table entry 0: empty name"
    );
    assert_eq!(
        outcome(&build(&[], &[host, host])),
        "duplicate symbol in import table: host_double"
    );
    assert_eq!(
        outcome(&build(&[], &[host, "a"])),
        "import table not sorted at: a"
    );
    // The last name runs one byte past the end of the string table.
    let mut b = build(&["a", "bc"], &[]);
    let at = Exec::SIZE + 8 + 4 * 10; // expoff
    let expoff = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let len_at = expoff + 16 + 4; // second entry's namelen
    b[len_at..len_at + 4].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        outcome(&b),
        "bad export table entry 1: name outside string table"
    );
    let _ = (Dynhdr::SIZE, Error::Read);
}
