//! Malformed modules: each is refused with its specific error, the source is
//! put back where it was, and no memory is left allocated.

use dynld::arch::x86_64::{BASE64, IMPORT64};
use dynld::format::{Dynhdr, Exec, FLAG_IMPORT_HASHES};
use dynld::{
    signof, Arch, Dynsym, Error, ExportTable, Limits, Loader, ModuleBuilder, SliceSource, Source,
    Table,
};
use dynld_suite::guard::GuardedMemory;
use dynld_suite::{calc, one_reloc};

extern "C" fn host_double(x: i32) -> i32 {
    2 * x
}

fn host() -> [Dynsym<'static>; 1] {
    [Dynsym::new(
        "host_double",
        signof!("fn(int) int"),
        host_double as *const (),
    )]
}

const PREFIX: usize = 7;

/// Loads `bytes` (placed after a prefix, the source positioned at it) into
/// guarded memory with `exports` and `limits` for amd64; checks that no byte
/// outside the module's region was written, that nothing stays allocated,
/// and that a failure leaves the source where it was.
fn load_with(bytes: &[u8], exports: &[Dynsym<'_>], limits: Limits) -> Result<(), Error> {
    let mut file = vec![0xAA; PREFIX];
    file.extend_from_slice(bytes);
    let mut src = SliceSource::new(&file);
    src.seek(PREFIX as u64).unwrap();
    let guarded = GuardedMemory::new();
    let r = Loader::new(ExportTable::new(exports)?, &guarded)
        .limits(limits)
        .arch(Arch::Amd64)
        .load(&mut src)
        .map(drop);
    assert_eq!(guarded.violations(), Vec::<String>::new(), "{r:?}");
    assert_eq!(guarded.live(), 0, "nothing left allocated ({r:?})");
    if let Err(e) = &r {
        assert_eq!(
            src.position().unwrap(),
            PREFIX as u64,
            "offset restored ({e})"
        );
    }
    // The in-memory reader makes the same checks, short of binding.
    let view = dynld::ModuleView::parse(bytes, &limits).map(drop);
    match &r {
        Ok(_) | Err(Error::WrongArch { .. }) => assert_eq!(view, Ok(())),
        Err(
            Error::Undefined { .. }
            | Error::SigMismatch { .. }
            | Error::RelocOverflow { .. }
            | Error::Memory { .. }
            | Error::Unsorted {
                table: Table::Host, ..
            },
        ) => {}
        Err(e) => assert_eq!(view.as_ref(), Err(e), "view and loader disagree"),
    }
    r
}

fn load(bytes: &[u8]) -> Result<(), Error> {
    load_with(bytes, &host(), Limits::DEFAULT)
}

fn calc_bytes() -> Vec<u8> {
    dynld_suite::calc().build().unwrap()
}

/// Offset of Dynhdr field `i` in an amd64 module.
fn hdr_field(i: usize) -> usize {
    Exec::SIZE + 8 + 4 * i
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

// Dynhdr field indices.
const VERSION: usize = 0;
const FLAGS: usize = 2;
const ALIGN: usize = 3;
const DATAOFF: usize = 4;
const NEXPORT: usize = 5;
const NIMPORT: usize = 6;
const NRELOC: usize = 7;
const STROFF: usize = 8;
const EXPOFF: usize = 10;
const IMPOFF: usize = 11;
const RELOFF: usize = 12;
const RELSIZE: usize = 13;
const IDXOFF: usize = 14;

#[test]
fn the_sample_loads() {
    load(&calc_bytes()).unwrap();
}

#[test]
fn bad_magic() {
    let mut b = calc_bytes();
    set_u32(&mut b, 0, 0x1234_5678);
    let e = load(&b).unwrap_err();
    assert_eq!(e, Error::BadMagic { magic: 0x1234_5678 });
    assert_eq!(
        e.to_string(),
        "not dynamic object file or wrong platform (magic 0x12345678)"
    );
    // A Plan 9 executable (no DYN_MAGIC) is not a module either.
    set_u32(&mut b, 0, Arch::Amd64.magic());
    assert!(matches!(load(&b), Err(Error::BadMagic { .. })));
    // DYN_MAGIC with an unknown architecture.
    set_u32(&mut b, 0, 0x8000_0000 | 0x7777);
    assert!(matches!(load(&b), Err(Error::BadMagic { .. })));
}

#[test]
fn wrong_architecture() {
    let mut b = ModuleBuilder::new(Arch::Arm64);
    b.text(&[0xc0, 0x03, 0x5f, 0xd6]).export("f", 0, 0);
    let e = load(&b.build().unwrap()).unwrap_err();
    assert_eq!(
        e,
        Error::WrongArch {
            found: Arch::Arm64,
            want: Arch::Amd64
        }
    );
    assert!(e
        .to_string()
        .starts_with("not dynamic object file or wrong platform"));
}

#[test]
fn truncated_at_every_byte() {
    let b = calc_bytes();
    let textoff = Arch::Amd64.text_offset() as usize;
    let named = [
        (0, "header"),
        (20, "header"),
        (Exec::SIZE + 4, "header"),
        (textoff - 1, "header"),
        (textoff + 5, "text"),
        (textoff + calc::TEXT_LEN + 3, "data"),
        (get_u32(&b, hdr_field(STROFF)) as usize + 2, "string table"),
        (get_u32(&b, hdr_field(EXPOFF)) as usize + 1, "export table"),
        (get_u32(&b, hdr_field(IMPOFF)) as usize + 1, "import table"),
        (get_u32(&b, hdr_field(RELOFF)) as usize + 1, "relocations"),
        (b.len() - 1, "relocations"),
    ];
    for (cut, what) in named {
        assert_eq!(
            load(&b[..cut]),
            Err(Error::Truncated { what }),
            "cut at {cut}"
        );
    }
    for cut in 0..b.len() {
        assert!(
            matches!(load(&b[..cut]), Err(Error::Truncated { .. })),
            "cut at {cut}"
        );
    }
    assert_eq!(
        Error::Truncated { what: "text" }.to_string(),
        "premature end of module reading text"
    );
}

#[test]
fn maxsize_exceeded() {
    let b = calc_bytes();
    let size = u64::from(calc::SCRATCH) + 16;
    let lim = |max_size| Limits {
        max_size,
        ..Limits::DEFAULT
    };
    let e = load_with(&b, &host(), lim(size - 1)).unwrap_err();
    assert_eq!(
        e,
        Error::TooBig {
            size,
            max: size - 1
        }
    );
    assert_eq!(e.to_string(), format!("{size}: object too big"));
    load_with(&b, &host(), lim(size)).unwrap();
}

#[test]
fn unsorted_and_duplicate_exports() {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 4])
        .export("b", 0, 0)
        .export("a", 0, 1)
        .keep_order();
    let e = load(&b.build().unwrap()).unwrap_err();
    assert!(matches!(&e, Error::Unsorted { table: Table::Export, name } if *name == "a"));
    assert_eq!(e.to_string(), "export table not sorted at: a");

    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 4])
        .export("a", 0, 0)
        .export("a", 0, 1)
        .keep_order();
    let e = load(&b.build().unwrap()).unwrap_err();
    assert!(matches!(&e, Error::Duplicate { table: Table::Export, name } if *name == "a"));
    assert_eq!(e.to_string(), "duplicate symbol in export table: a");
    // The writer refuses duplicates when it sorts.
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3]).export("a", 0, 0).export("a", 0, 0);
    assert!(matches!(b.build(), Err(Error::Duplicate { .. })));
}

#[test]
fn unsorted_and_duplicate_imports() {
    let host = [
        Dynsym::new("a", 0, core::ptr::null()),
        Dynsym::new("b", 0, core::ptr::null()),
    ];
    for names in [["b", "a"], ["a", "a"]] {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3]).keep_order();
        b.import(names[0], 0);
        b.import(names[1], 0);
        let e = load_with(&b.build().unwrap(), &host, Limits::DEFAULT).unwrap_err();
        if names[0] == names[1] {
            assert!(
                matches!(
                    e,
                    Error::Duplicate {
                        table: Table::Import,
                        ..
                    }
                ),
                "{e}"
            );
        } else {
            assert!(
                matches!(
                    e,
                    Error::Unsorted {
                        table: Table::Import,
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
}

#[test]
fn unsorted_host_table() {
    let host = [
        Dynsym::new("b", 0, core::ptr::null()),
        Dynsym::new("a", 0, core::ptr::null()),
    ];
    let e = load_with(&calc_bytes(), &host, Limits::DEFAULT).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsorted {
                table: Table::Host,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn undefined_import() {
    let other = [Dynsym::new("host_triple", 0, core::ptr::null())];
    let e = load_with(&calc_bytes(), &other, Limits::DEFAULT).unwrap_err();
    assert!(matches!(&e, Error::Undefined { name } if *name == "host_double"));
    assert_eq!(e.to_string(), "undefined symbol: host_double");
    let e = load_with(&calc_bytes(), &[], Limits::DEFAULT).unwrap_err();
    assert!(matches!(e, Error::Undefined { .. }));
}

#[test]
fn signature_mismatch() {
    let want = signof!("fn(int) int");
    let have = signof!("fn(uint) int");
    let host = [Dynsym::new("host_double", have, host_double as *const ())];
    let e = load_with(&calc_bytes(), &host, Limits::DEFAULT).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("signature mismatch: host_double ({want:#x} != {have:#x})")
    );
    assert!(matches!(e, Error::SigMismatch { want: w, have: h, .. } if w == want && h == have));
    // A zero signature on either side is not checked.
    let host = [Dynsym::new("host_double", 0, host_double as *const ())];
    load_with(&calc_bytes(), &host, Limits::DEFAULT).unwrap();
}

#[test]
fn relocation_outside_the_image() {
    // The last whole word of data is fine; one byte further is not.
    load(&one_reloc(0x1008, BASE64, None)).unwrap();
    let e = load(&one_reloc(0x1009, BASE64, None)).unwrap_err();
    assert_eq!(
        e,
        Error::RelocOutOfImage {
            index: 0,
            offset: 0x1009
        }
    );
    assert_eq!(
        e.to_string(),
        "bad relocation 0: offset 0x1009 outside text and data"
    );
    // Into bss, into the gap between text and data, far away, last text word.
    for off in [0x1010, 0x1018, 0x10, 0x800, 0xffff_fff0] {
        assert!(
            matches!(
                load(&one_reloc(off, BASE64, None)),
                Err(Error::RelocOutOfImage { .. })
            ),
            "{off:#x}"
        );
    }
    load(&one_reloc(0x8, BASE64, None)).unwrap();
    assert!(matches!(
        load(&one_reloc(0x9, BASE64, None)),
        Err(Error::RelocOutOfImage { .. })
    ));
}

#[test]
fn import_index_out_of_range() {
    load(&one_reloc(0x1000, IMPORT64, Some(0))).unwrap();
    for bad in [1, 2, 255, 0xffff, u32::MAX] {
        let e = load(&one_reloc(0x1000, IMPORT64, Some(bad))).unwrap_err();
        assert_eq!(
            e,
            Error::BadImportIndex {
                index: 0,
                import: bad,
                nimport: 1
            }
        );
    }
    // An import mode without an index, and a base mode with one.
    assert!(matches!(
        load(&one_reloc(0x1000, IMPORT64, None)),
        Err(Error::BadReloc { .. })
    ));
    assert!(matches!(
        load(&one_reloc(0x1000, BASE64, Some(0))),
        Err(Error::BadReloc { .. })
    ));
}

#[test]
fn undefined_relocation_mode() {
    let e = load(&one_reloc(0x1000, 9, None)).unwrap_err();
    assert_eq!(
        e,
        Error::BadRelocMode {
            index: 0,
            mode: 9,
            arch: Arch::Amd64
        }
    );
}

#[test]
fn overlapping_relocations() {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3]).data(&[0; 16]).keep_order();
    let d = b.data_start();
    b.reloc(d, BASE64, None).reloc(d + 4, BASE64, None);
    let e = load(&b.build().unwrap()).unwrap_err();
    assert!(matches!(e, Error::BadReloc { index: 1, .. }), "{e}");
}

#[test]
fn pc32_out_of_range() {
    // The import lies far from any place the module can load.
    // Half the address space away from anything the module can be loaded at.
    let far = [Dynsym::new(
        "far",
        0,
        std::ptr::without_provenance(usize::MAX / 2),
    )];
    let e = load_with(
        &dynld_suite::far_call().build().unwrap(),
        &far,
        Limits::DEFAULT,
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::RelocOverflow {
            index: 0,
            offset: 1
        }
    );
}

#[test]
fn exports_outside_the_module() {
    for value in [0x20, 0x800, 0x1030, 0xffff_ffff] {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3; 16])
            .data(&[0; 16])
            .bss(16)
            .data_offset(0x1000)
            .export("x", 0, value);
        let e = load(&b.build().unwrap()).unwrap_err();
        assert!(
            matches!(e, Error::BadExport { value: v, .. } if v == value),
            "{e}"
        );
    }
}

#[test]
fn header_fields() {
    let good = calc_bytes();
    let patched = |field: usize, v: u32| {
        let mut b = good.clone();
        set_u32(&mut b, hdr_field(field), v);
        load(&b).unwrap_err()
    };
    assert_eq!(patched(VERSION, 2), Error::BadVersion { version: 2 });
    assert_eq!(
        patched(FLAGS, 4),
        Error::BadHeader {
            what: "unknown flags"
        }
    );
    // Import hashes claimed with no room for them before the relocations.
    assert_eq!(
        patched(FLAGS, FLAG_IMPORT_HASHES),
        Error::BadHeader {
            what: "tables out of order or overlapping"
        }
    );
    assert!(matches!(patched(ALIGN, 3), Error::BadHeader { .. }));
    assert!(matches!(patched(ALIGN, 1 << 20), Error::BadHeader { .. }));
    assert!(matches!(patched(DATAOFF, 0x10), Error::BadHeader { .. }));
    assert!(matches!(patched(IDXOFF, 4), Error::BadHeader { .. }));
    for (field, what) in [
        (NEXPORT, "export count"),
        (NIMPORT, "import count"),
        (NRELOC, "relocation count"),
    ] {
        let e = patched(field, u32::MAX);
        assert!(
            matches!(e, Error::Limit { what: w, .. } if w == what),
            "{e}"
        );
    }
    // Tables out of order.
    let e = patched(EXPOFF, 0);
    assert_eq!(
        e,
        Error::BadHeader {
            what: "tables out of order or overlapping"
        }
    );
    // A relocation stream size that cannot hold the count.
    assert!(matches!(patched(RELSIZE, 1), Error::BadHeader { .. }));
    // Fewer records than bytes: bytes left over.
    let n = get_u32(&good, hdr_field(NRELOC));
    assert!(matches!(
        patched(NRELOC, n - 1),
        Error::BadReloc {
            what: "bytes left over after the last record",
            ..
        }
    ));
    // Entry outside text; syms not zero.
    let mut b = good.clone();
    set_u32(&mut b, 20, 0x5000);
    b[Exec::SIZE..Exec::SIZE + 8].copy_from_slice(&0x5000u64.to_be_bytes());
    assert_eq!(
        load(&b).unwrap_err(),
        Error::BadHeader {
            what: "entry outside text"
        }
    );
    let mut b = good.clone();
    set_u32(&mut b, 16, 1);
    assert!(matches!(load(&b).unwrap_err(), Error::BadHeader { .. }));
    // The extension header size must be at least its version-1 size.
    let mut b = good.clone();
    set_u32(&mut b, hdr_field(1), Dynhdr::SIZE as u32 - 4);
    assert!(matches!(load(&b).unwrap_err(), Error::BadHeader { .. }));
}

#[test]
fn bad_names() {
    let good = calc_bytes();
    let expoff = get_u32(&good, hdr_field(EXPOFF)) as usize;
    let stroff = get_u32(&good, hdr_field(STROFF)) as usize;
    // First export's name length: 0, huge, past the string table.
    for (len, problem) in [
        (0, dynld::NameProblem::Empty),
        (5000, dynld::NameProblem::TooLong),
        (4000, dynld::NameProblem::OutOfBounds),
    ] {
        let mut b = good.clone();
        set_u32(&mut b, expoff + 4, len);
        assert_eq!(
            load(&b).unwrap_err(),
            Error::BadName {
                table: Table::Export,
                index: 0,
                problem
            }
        );
    }
    // A NUL and a non-UTF-8 byte inside the first name.
    let mut b = good.clone();
    b[stroff + 1] = 0;
    assert!(matches!(
        load(&b).unwrap_err(),
        Error::BadName {
            problem: dynld::NameProblem::Nul,
            ..
        }
    ));
    let mut b = good.clone();
    b[stroff + 1] = 0xff;
    assert!(matches!(
        load(&b).unwrap_err(),
        Error::BadName {
            problem: dynld::NameProblem::NotUtf8,
            ..
        }
    ));
}

/// A module whose file ends inside its import hashes is refused alike
/// whether the loader uses the hashes (host table with an index and many
/// exports per import) or not, even with nothing after them to read.
#[test]
fn truncated_import_hashes() {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3]).import_hashes(true);
    b.import("host_double", signof!("fn(int) int"));
    let whole = b.build().unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("zz_{i}")).collect();
    let mut exports = host().to_vec();
    exports.extend(names.iter().map(|n| Dynsym::new(n, 0, core::ptr::null())));
    let slots = dynld::index::build_vec(exports.len(), |i| exports[i].name.as_bytes()).unwrap();
    let bind = |bytes: &[u8], index: bool| {
        let t = ExportTable::new(&exports).unwrap();
        let t = if index {
            t.with_index(&slots).unwrap()
        } else {
            t
        };
        Loader::new(t, &dynld::HEAP)
            .arch(Arch::Amd64)
            .load(&mut SliceSource::new(bytes))
            .map(drop)
    };
    assert_eq!(bind(&whole, false), Ok(()));
    assert_eq!(bind(&whole, true), Ok(()));
    for cut in 1..=8 {
        let bytes = &whole[..whole.len() - cut];
        let e = Error::Truncated {
            what: "import hashes",
        };
        assert_eq!(load_with(bytes, &exports, Limits::DEFAULT), Err(e.clone()));
        assert_eq!(bind(bytes, true), Err(e), "cut {cut}");
    }
}
