//! Malformed modules: each is refused with its specific error, the source is
//! put back where it was, no memory is left allocated, no byte outside the
//! module's region is written, and the in-memory reader agrees.

use dynld::arch::x86_64::{BASE64, IMPORT64};
use dynld::format::{kind, Exec, TableEntry, MAX_TABLES, TABLE_REQUIRED};
use dynld::{
    signof, Arch, Dynsym, Error, ExportTable, Limits, Loader, ModuleBuilder, ModuleView,
    NameProblem, SliceSource, Source, Table,
};
use dynld_suite::guard::GuardedMemory;
use dynld_suite::patch::{
    entry, entry_at, entry_of, field, get_u32, hdr, hdr_field, ntable, set_u16, set_u32, table,
    table_range, DIRECTORY,
};
use dynld_suite::{add_table, calc, one_reloc};

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
/// that a failure leaves the source where it was, and that the in-memory
/// reader says what the loader says.
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
    let view = ModuleView::parse(bytes, &limits).map(drop);
    match &r {
        Ok(_) | Err(Error::WrongArch { .. }) => assert_eq!(view, Ok(())),
        // The loader allocates before it reads the tables: the reader may
        // find something wrong after that.
        Err(Error::Memory { .. }) => {}
        Err(
            Error::Undefined { .. }
            | Error::SigMismatch { .. }
            | Error::RelocOverflow { .. }
            | Error::ImportOutOfReach { .. }
            | Error::Unsorted {
                table: Table::Host, ..
            },
        ) => assert_eq!(view, Ok(()), "{r:?}"),
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

/// The calc sample with every table version 2 defines, and room in its
/// header for two more directory entries.
fn every_table() -> Vec<u8> {
    let mut b = dynld_suite::calc();
    b.index(true)
        .import_hashes(true)
        .init(calc::ADD)
        .init(calc::BUMP)
        .fini(calc::CALL_OP1)
        .describe_export("add", "fn(int, int) int")
        .describe_import("host_double", "fn(int) int")
        .symbol("add", calc::ADD, 0x10, true)
        .symbol("helper", calc::COUNTER_PTR, 0x10, false)
        .symbol("counter", calc::COUNTER, 4, true)
        .text_file_align(256);
    b.build().unwrap()
}

fn bad_table(kind: u16, what: &'static str) -> Error {
    Error::BadTable { kind, what }
}

fn bad_header(what: &'static str) -> Error {
    Error::BadHeader { what }
}

/// The parts of the module `b` in file order, each with where it ends and
/// what a truncation error names when the file ends inside it: the
/// headers with the directory, the text (padding before it included), the
/// data, each table.
fn parts(b: &[u8]) -> Vec<(usize, &'static str)> {
    let v = ModuleView::parse(b, &Limits::DEFAULT).unwrap();
    let text_end = v.text_offset() as usize + v.text_size();
    let mut parts = vec![(entry_at(ntable(b)), "header"), (text_end, "text")];
    parts.push((text_end + v.data().len(), "data"));
    for t in v.tables() {
        parts.push(((t.offset + t.size) as usize, reading(t.kind)));
    }
    parts
}

/// What a truncation error names when a module of `parts` is cut at `cut`
/// bytes: the first part that does not end by then.
fn cut_part(parts: &[(usize, &'static str)], cut: usize) -> &'static str {
    parts
        .iter()
        .find(|&&(end, _)| end > cut)
        .map(|p| p.1)
        .unwrap_or_else(|| panic!("cut at {cut} is no cut"))
}

/// What the loader says it was reading in the table of `kind`.
fn reading(k: u16) -> &'static str {
    match k {
        kind::STRINGS => "string table",
        kind::EXPORTS => "export table",
        kind::IMPORTS => "import table",
        kind::IMPORT_HASHES => "import hashes",
        kind::RELOCS => "relocations",
        kind::IMPORT_RELOCS => "import relocations",
        kind::INDEX => "hash index",
        kind::INIT => "constructors",
        kind::FINI => "destructors",
        kind::TYPES => "type descriptions",
        kind::SYMBOLS => "symbols",
        _ => "table",
    }
}

/// Cut points to try in a module of `len` bytes: all of them, or (under
/// Miri, which is slow) every seventh and the last few.
fn cuts(len: usize) -> Vec<usize> {
    if cfg!(miri) {
        (0..len).filter(|c| c % 7 == 0 || *c + 3 >= len).collect()
    } else {
        (0..len).collect()
    }
}

#[test]
fn the_samples_load() {
    load(&calc_bytes()).unwrap();
    load(&every_table()).unwrap();
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
    let plain = Arch::Amd64.magic();
    set_u32(&mut b, 0, plain);
    assert_eq!(load(&b), Err(Error::BadMagic { magic: plain }));
    // DYN_MAGIC with an unknown architecture.
    set_u32(&mut b, 0, 0x8000_7777);
    assert_eq!(load(&b), Err(Error::BadMagic { magic: 0x8000_7777 }));
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

/// Every cut of a module is refused as truncated, naming the part the cut
/// falls in (the header with the directory, text, data, each table).
#[test]
fn truncated_at_every_byte() {
    for b in [calc_bytes(), every_table()] {
        let parts = parts(&b);
        // Every part is named somewhere.
        let named: std::collections::BTreeSet<_> =
            (0..b.len()).map(|cut| cut_part(&parts, cut)).collect();
        assert_eq!(named.len(), parts.len(), "{named:?}");
        for cut in cuts(b.len()) {
            assert_eq!(
                load(&b[..cut]),
                Err(Error::Truncated {
                    what: cut_part(&parts, cut)
                }),
                "cut at {cut} of {}",
                b.len()
            );
        }
    }
    // Named points: inside the Exec header, the fat entry, Dynhdr and
    // the directory; the padding before the text is the text's.
    let b = every_table();
    for (cut, what) in [
        (0, "header"),
        (20, "header"),
        (Exec::SIZE + 4, "header"),
        (DIRECTORY - 1, "header"),
        (entry_at(ntable(&b)) - 1, "header"),
        (entry_at(ntable(&b)), "text"),
        (255, "text"),
        (256 + calc::TEXT_LEN + 3, "data"),
        (table_range(&b, kind::TYPES).start, "type descriptions"),
        (table_range(&b, kind::INIT).end - 1, "constructors"),
        (b.len() - 1, "relocations"),
    ] {
        assert_eq!(load(&b[..cut]), Err(Error::Truncated { what }), "{cut}");
    }
    assert_eq!(
        Error::Truncated { what: "text" }.to_string(),
        "premature end of module reading text"
    );
}

/// A module cut inside an unknown optional table it lists last is as
/// truncated as one cut inside a known table: the directory says the file
/// is longer.
#[test]
fn truncated_inside_an_unknown_table() {
    let b = add_table(&every_table(), 0x7777, 0, &[0x5a; 40]);
    load(&b).unwrap();
    for cut in b.len() - 40..b.len() {
        assert_eq!(
            load(&b[..cut]),
            Err(Error::Truncated { what: "table" }),
            "cut at {cut} of {}",
            b.len()
        );
    }
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
fn header_words() {
    let good = calc_bytes();
    let patched = |at: usize, v: u32| {
        let mut b = good.clone();
        set_u32(&mut b, at, v);
        load(&b)
    };
    let h = hdr_field;
    assert_eq!(
        patched(h(hdr::VERSION), 1),
        Err(Error::BadVersion { version: 1 })
    );
    assert_eq!(
        patched(h(hdr::VERSION), 3),
        Err(Error::BadVersion { version: 3 })
    );
    assert_eq!(patched(h(hdr::FLAGS), 2), Err(bad_header("unknown flags")));
    assert_eq!(patched(h(hdr::ALIGN), 3), Err(bad_header("alignment")));
    assert_eq!(patched(h(hdr::ALIGN), 0), Err(bad_header("alignment")));
    assert_eq!(
        patched(h(hdr::ALIGN), 1 << 17),
        Err(bad_header("alignment"))
    );
    patched(h(hdr::ALIGN), 1 << 16).unwrap();
    assert_eq!(
        patched(h(hdr::DATAOFF), calc::TEXT_LEN as u32 - 1),
        Err(bad_header("data overlaps text"))
    );
    // Entry: all ones, in both words.
    let entry = "entry must be all ones (constructors are a table)";
    for v in [0, 1, 0x5f, u32::MAX - 1] {
        assert_eq!(patched(20, v), Err(bad_header(entry)), "{v:#x}");
    }
    for at in [Exec::SIZE, Exec::SIZE + 4, Exec::SIZE + 7] {
        let mut b = good.clone();
        b[at] = 0xfe;
        assert_eq!(load(&b), Err(bad_header(entry)), "fat byte {at}");
    }
    for at in [16, 24, 28] {
        assert_eq!(
            patched(at, 1),
            Err(bad_header("syms, spsz and pcsz must be 0"))
        );
    }
}

/// `ntable` and `hdrsize` against the directory and the limits.
#[test]
fn directory_size() {
    let good = calc_bytes();
    let n = ntable(&good) as u32;
    assert_eq!(n, 5);
    let with = |word: usize, v: u32| {
        let mut b = good.clone();
        set_u32(&mut b, hdr_field(word), v);
        b
    };
    for v in [MAX_TABLES + 1, 1000, u32::MAX] {
        assert_eq!(
            load(&with(hdr::NTABLE, v)),
            Err(Error::Limit {
                what: "table count",
                count: v.into(),
                max: MAX_TABLES.into()
            })
        );
    }
    // One entry more than the header holds; none at all (the directory is
    // then padding, and the module has no symbols and no relocations).
    assert_eq!(
        load(&with(hdr::NTABLE, n + 1)),
        Err(bad_header("extension header size"))
    );
    load(&with(hdr::NTABLE, 0)).unwrap();
    let none = with(hdr::NTABLE, 0);
    let v = ModuleView::parse(&none, &Limits::DEFAULT).unwrap();
    assert_eq!((v.exports().count(), v.relocs().count()), (0, 0));
    // Fewer entries than listed: the last ones are padding.
    let short = with(hdr::NTABLE, 2);
    load(&short).unwrap();
    let v = ModuleView::parse(&short, &Limits::DEFAULT).unwrap();
    assert_eq!(v.exports().count(), 8);
    assert_eq!(v.imports().count(), 0);
    // hdrsize: too small for the directory, one more (the text then
    // starts a byte later, so the data ends where the strings start).
    let hdrsize = get_u32(&good, hdr_field(hdr::HDRSIZE));
    assert_eq!(hdrsize, 24 + 16 * n);
    assert_eq!(
        load(&with(hdr::HDRSIZE, hdrsize - 1)),
        Err(bad_header("extension header size"))
    );
    assert_eq!(
        load(&with(hdr::HDRSIZE, hdrsize + 1)),
        Err(bad_table(
            kind::STRINGS,
            "out of order, or overlapping the part before it"
        ))
    );
    // Over the limit, the default one and a smaller one.
    let lim = |max_header| Limits {
        max_header,
        ..Limits::DEFAULT
    };
    assert_eq!(
        load_with(&good, &host(), lim(hdrsize - 1)),
        Err(bad_header("extension header size"))
    );
    load_with(&good, &host(), lim(hdrsize)).unwrap();
    let big = Limits::DEFAULT.max_header + 1;
    assert_eq!(
        load(&with(hdr::HDRSIZE, big)),
        Err(bad_header("extension header size"))
    );
    // The largest header the default admits: a 64 KiB page of padding.
    let mut b = dynld_suite::calc();
    b.text_file_align(1 << 16);
    load(&b.build().unwrap()).unwrap();
}

/// Every field of every directory entry of the calc sample, each made
/// wrong in the ways the format forbids.
#[test]
fn directory_entries() {
    let good = calc_bytes();
    let n = ntable(&good);
    let kinds: Vec<u16> = (0..n).map(|i| entry(&good, i).kind).collect();
    assert_eq!(
        kinds,
        [
            kind::STRINGS,
            kind::EXPORTS,
            kind::IMPORTS,
            kind::IMPORT_RELOCS,
            kind::RELOCS
        ]
    );
    let data_end = (DIRECTORY + 16 * n + calc::TEXT_LEN + 0x28) as u32;
    let order = "out of order, or overlapping the part before it";
    for (i, &k) in kinds.iter().enumerate() {
        let e = entry(&good, i);
        let at = entry_at(i);
        let with = |f: usize, v: u32| {
            let mut b = good.clone();
            if f < field::COUNT {
                set_u16(&mut b, at + f, v as u16);
            } else {
                set_u32(&mut b, at + f, v);
            }
            load(&b)
        };
        // Flags: the required flag is fixed by the kind; no other bit.
        assert_eq!(
            with(field::FLAGS, 0),
            Err(bad_table(k, "required flag disagrees with the kind"))
        );
        for f in [2, 3, 0x8000, 0xffff] {
            assert_eq!(
                with(field::FLAGS, f),
                Err(bad_table(k, "unknown table flags"))
            );
        }
        // Size: never 0; a count that disagrees with it.
        assert_eq!(
            with(field::SIZE, 0),
            Err(bad_table(k, "empty table in the directory"))
        );
        let wrong_count = match k {
            kind::STRINGS => {
                assert_eq!(
                    with(field::COUNT, 1),
                    Err(bad_table(k, "size disagrees with the count"))
                );
                None
            }
            // Relocation records take 2 to 9 bytes each.
            kind::RELOCS | kind::IMPORT_RELOCS => {
                assert_eq!(e.size, if k == kind::RELOCS { 7 } else { 4 });
                assert_eq!(
                    with(field::COUNT, e.size / 2 + 1),
                    Err(bad_table(k, "size disagrees with the count"))
                );
                Some(0)
            }
            _ => Some(e.count + 1),
        };
        if let Some(c) = wrong_count {
            assert_eq!(
                with(field::COUNT, c),
                Err(bad_table(k, "size disagrees with the count"))
            );
        }
        // Offset: before the data's end or the previous table's end.
        let prev_end = if i == 0 {
            data_end
        } else {
            let p = entry(&good, i - 1);
            p.offset + p.size
        };
        assert_eq!(e.offset, prev_end, "tables packed");
        assert_eq!(with(field::OFFSET, prev_end - 1), Err(bad_table(k, order)));
        assert_eq!(with(field::OFFSET, 0), Err(bad_table(k, order)));
        // Past the end of the file: the next table is then out of order;
        // the last is truncated.
        let past = with(field::OFFSET, good.len() as u32);
        let far = with(field::OFFSET, u32::MAX);
        if i + 1 < n {
            let next = Err(bad_table(kinds[i + 1], order));
            assert_eq!((&past, &far), (&next, &next));
        } else {
            let t = Err(Error::Truncated {
                what: "relocations",
            });
            assert_eq!((&past, &far), (&t, &t));
        }
        // A size that overlaps the next table, or runs past the file.
        if i + 1 < n && k != kind::STRINGS {
            let mut b = good.clone();
            set_u32(&mut b, at + field::SIZE, e.size + 1);
            let e2 = load(&b).unwrap_err();
            assert!(
                e2 == bad_table(k, "size disagrees with the count")
                    || e2 == bad_table(kinds[i + 1], order),
                "{k}: {e2}"
            );
        }
        // Kind: listed twice (the kind of the entry before, with its flag).
        if i > 0 {
            assert_eq!(
                with(field::KIND, u32::from(kinds[i - 1])),
                Err(bad_table(kinds[i - 1], "listed twice in the directory"))
            );
        }
        // An unknown kind with the required flag, kind 0 included.
        for u in [0, 15, 0x7777, 0xffff] {
            assert_eq!(
                with(field::KIND, u),
                Err(Error::UnknownTable { kind: u as u16 })
            );
        }
        // An optional known kind where a required one was: the flag is wrong.
        assert_eq!(
            with(field::KIND, u32::from(kind::INDEX)),
            Err(bad_table(
                kind::INDEX,
                "required flag disagrees with the kind"
            ))
        );
    }
    // Two entries swapped: the second is then out of order.
    let mut b = good.clone();
    let (x, y) = (entry_at(1), entry_at(2));
    let ex = b[x..x + 16].to_vec();
    b.copy_within(y..y + 16, x);
    b[y..y + 16].copy_from_slice(&ex);
    assert_eq!(load(&b), Err(bad_table(kind::EXPORTS, order)));
    // A gap between two tables is fine.
    let mut b = calc_bytes();
    let r = table_range(&b, kind::RELOCS);
    b.splice(r.start..r.start, [0xee; 5]);
    let at = entry_of(&b, kind::RELOCS);
    set_u32(&mut b, at + field::OFFSET, r.start as u32 + 5);
    load(&b).unwrap();
}

/// Tables of kinds this loader does not know: skipped if optional (the
/// module loads, the table shows in the directory), refused if required.
#[test]
fn unknown_tables() {
    let mut b = dynld_suite::calc();
    b.index(true).text_file_align(256);
    let roomy = b.build().unwrap();
    for k in [0, 15, 0x7777, 0xffff] {
        let with = add_table(&roomy, k, 0, b"not for this loader");
        load(&with).unwrap();
        let v = ModuleView::parse(&with, &Limits::DEFAULT).unwrap();
        let t = v.table_entry(k).unwrap();
        assert_eq!((t.flags, t.size), (0, 19));
        assert_eq!(v.exports().count(), 8);
        let required = add_table(&roomy, k, TABLE_REQUIRED, b"needed");
        assert_eq!(load(&required), Err(Error::UnknownTable { kind: k }));
        assert_eq!(
            Error::UnknownTable { kind: k }.to_string(),
            format!("module needs a table this loader does not know (kind {k})")
        );
    }
    // A known optional table, renamed to an unknown kind, is skipped: the
    // index is gone, the exports are found without it.
    let mut b = roomy.clone();
    set_u16(&mut b, entry_of(&roomy, kind::INDEX), 0x7777);
    load(&b).unwrap();
    let v = ModuleView::parse(&b, &Limits::DEFAULT).unwrap();
    assert_eq!(v.index_slots(), 0);
    // ... but not with the required flag.
    set_u16(&mut b, entry_of(&roomy, kind::INDEX) + 2, TABLE_REQUIRED);
    assert_eq!(load(&b), Err(Error::UnknownTable { kind: 0x7777 }));
    // A required table renamed to an unknown optional kind: the module
    // lacks it. Without strings, symbols cannot be named.
    let mut b = roomy.clone();
    let at = entry_of(&roomy, kind::STRINGS);
    set_u16(&mut b, at, 0x7777);
    set_u16(&mut b, at + 2, 0);
    assert_eq!(
        load(&b),
        Err(bad_table(kind::STRINGS, "symbols without a string table"))
    );
    // Without the import relocations, the import is bound and unused.
    let mut b = roomy.clone();
    let at = entry_of(&roomy, kind::IMPORT_RELOCS);
    set_u16(&mut b, at, 0x7777);
    set_u16(&mut b, at + 2, 0);
    load(&b).unwrap();
}

/// Tables that must agree with each other, and the limits on each table.
#[test]
fn table_counts_and_limits() {
    // Import hashes and type descriptions: one per import, one per symbol.
    let mut b = dynld_suite::calc();
    b.import("host_zzz", 0);
    b.import_hashes(true)
        .describe_export("add", "fn(int, int) int");
    let two = b.build().unwrap();
    for (k, rec, what) in [
        (kind::IMPORT_HASHES, 8, "not one hash per import"),
        (kind::TYPES, 8, "not one entry per symbol"),
    ] {
        let at = entry_of(&two, k);
        let mut b = two.clone();
        let count = get_u32(&b, at + field::COUNT);
        set_u32(&mut b, at + field::COUNT, count - 1);
        set_u32(&mut b, at + field::SIZE, rec * (count - 1));
        assert_eq!(load(&b), Err(bad_table(k, what)));
    }
    let good = every_table();
    let lim = |l: Limits| load_with(&good, &host(), l);
    let d = Limits::DEFAULT;
    let limit = |what, count: u64, max: u64| Err(Error::Limit { what, count, max });
    assert_eq!(
        lim(Limits {
            max_exports: 7,
            ..d
        }),
        limit("export count", 8, 7)
    );
    assert_eq!(
        lim(Limits {
            max_imports: 0,
            ..d
        }),
        limit("import count", 1, 0)
    );
    // Constructors come before the relocations in the directory.
    assert_eq!(
        lim(Limits { max_relocs: 1, ..d }),
        limit("constructor or destructor count", 2, 1)
    );
    let strsize = table(&good, kind::STRINGS).size;
    assert_eq!(
        lim(Limits {
            max_strings: strsize - 1,
            ..d
        }),
        limit("string table size", strsize.into(), u64::from(strsize) - 1)
    );
    lim(Limits {
        max_exports: 8,
        max_imports: 1,
        max_relocs: 3,
        max_strings: strsize,
        ..d
    })
    .unwrap();
    let calc = calc_bytes();
    assert_eq!(
        load_with(
            &calc,
            &host(),
            Limits {
                max_relocs: 2,
                ..Limits::DEFAULT
            }
        ),
        limit("relocation count", 3, 2)
    );
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
        let name = dynld::SymName::new(names[1]);
        let table = Table::Import;
        if names[0] == names[1] {
            assert_eq!(e, Error::Duplicate { table, name });
        } else {
            assert_eq!(e, Error::Unsorted { table, name });
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
    assert_eq!(
        e,
        Error::Unsorted {
            table: Table::Host,
            name: dynld::SymName::new("a")
        }
    );
}

#[test]
fn undefined_import() {
    let other = [Dynsym::new("host_triple", 0, core::ptr::null())];
    let e = load_with(&calc_bytes(), &other, Limits::DEFAULT).unwrap_err();
    assert!(matches!(&e, Error::Undefined { name } if *name == "host_double"));
    assert_eq!(e.to_string(), "undefined symbol: host_double");
    let e = load_with(&calc_bytes(), &[], Limits::DEFAULT).unwrap_err();
    assert!(matches!(&e, Error::Undefined { name } if *name == "host_double"));
}

#[test]
fn signature_mismatch() {
    let want = signof!("fn(int) int");
    let have = signof!("fn(uint) int");
    let host = [Dynsym::new("host_double", have, host_double as *const ())];
    let e = load_with(&calc_bytes(), &host, Limits::DEFAULT).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "signature mismatch: host_double: module wants {want:#010x}, host has {have:#010x}"
        )
    );
    assert!(matches!(e, Error::SigMismatch { want: w, have: h, .. } if w == want && h == have));
    // A zero signature on either side is not checked.
    let host0 = [Dynsym::new("host_double", 0, host_double as *const ())];
    load_with(&calc_bytes(), &host0, Limits::DEFAULT).unwrap();
    // With the module's description of the import, the message shows it.
    let mut b = dynld_suite::calc();
    b.describe_import("host_double", "fn(int) int");
    let e = load_with(&b.build().unwrap(), &host, Limits::DEFAULT).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "signature mismatch: host_double: module wants fn(int) int ({want:#010x}), host has {have:#010x}"
        )
    );
}

#[test]
fn relocations_outside_the_image() {
    // In both tables: the last whole word of data and of text are fine;
    // one byte further is not.
    for import in [None, Some(0)] {
        let mode = if import.is_some() { IMPORT64 } else { BASE64 };
        load(&one_reloc(0x1008, mode, import)).unwrap();
        load(&one_reloc(0x8, mode, import)).unwrap();
        for off in [0x1009, 0x9, 0x1010, 0x1018, 0x10, 0x800, 0xffff_fff0] {
            assert_eq!(
                load(&one_reloc(off, mode, import)),
                Err(Error::RelocOutOfImage {
                    index: 0,
                    offset: off
                }),
                "{off:#x} {import:?}"
            );
        }
    }
    assert_eq!(
        Error::RelocOutOfImage {
            index: 0,
            offset: 0x1009
        }
        .to_string(),
        "bad relocation 0: offset 0x1009 outside text and data"
    );
}

#[test]
fn relocation_modes_in_the_wrong_table() {
    let bad = |what| Err(Error::BadReloc { index: 0, what });
    // An import mode in the base table (no index), a base mode in the
    // import table (with one).
    assert_eq!(
        load(&one_reloc(0x1000, IMPORT64, None)),
        bad("mode that adds an import in the base relocations")
    );
    assert_eq!(
        load(&one_reloc(0x1000, BASE64, Some(0))),
        bad("mode that adds the base in the import relocations")
    );
    // Modes the architecture does not define, in either table.
    for import in [None, Some(0)] {
        for mode in [9, 15] {
            assert_eq!(
                load(&one_reloc(0x1000, mode, import)),
                Err(Error::BadRelocMode {
                    index: 0,
                    mode,
                    arch: Arch::Amd64
                })
            );
        }
    }
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
}

#[test]
fn relocation_records() {
    // Overlapping, in either table.
    for import in [None, Some(0)] {
        let mode = if import.is_some() { IMPORT64 } else { BASE64 };
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3]).data(&[0; 16]).keep_order();
        b.import("host_double", 0);
        let d = b.data_start();
        b.reloc(d, mode, import).reloc(d + 4, mode, import);
        assert_eq!(
            load(&b.build().unwrap()),
            Err(Error::BadReloc {
                index: 1,
                what: "out of order or overlapping the previous one"
            })
        );
    }
    let good = calc_bytes();
    for k in [kind::RELOCS, kind::IMPORT_RELOCS] {
        let at = entry_of(&good, k);
        let t = table(&good, k);
        // A reserved width code in the first record.
        let mut b = good.clone();
        b[t.offset as usize] |= 0xc0;
        assert_eq!(
            load(&b),
            Err(Error::BadReloc {
                index: 0,
                what: "reserved offset width"
            })
        );
        // A count one short (bytes left over) and one long (a record
        // running past the stream).
        let mut b = good.clone();
        set_u32(&mut b, at + field::COUNT, t.count - 1);
        if t.count > 1 {
            assert_eq!(
                load(&b),
                Err(Error::BadReloc {
                    index: t.count - 1,
                    what: "bytes left over after the last record"
                })
            );
        }
        set_u32(&mut b, at + field::COUNT, t.count + 1);
        let want = if 2 * (t.count + 1) <= t.size {
            Error::BadReloc {
                index: t.count,
                what: "record runs past the end of the stream",
            }
        } else {
            bad_table(k, "size disagrees with the count")
        };
        assert_eq!(load(&b), Err(want), "{k}");
    }
}

#[test]
fn import_out_of_reach() {
    // The import lies half the address space away from anything the
    // module can be loaded at.
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
        Error::ImportOutOfReach {
            name: dynld::SymName::new("far"),
            mode: "import-pc32",
            offset: 1
        }
    );
}

#[test]
fn exports_outside_the_module() {
    for value in [0x10, 0x800, 0xfff, 0x1020, 0xffff_ffff] {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3; 16])
            .data(&[0; 16])
            .bss(16)
            .data_offset(0x1000)
            .export("x", 0, value);
        assert_eq!(
            load(&b.build().unwrap()),
            Err(Error::BadExport {
                name: dynld::SymName::new("x"),
                value
            }),
            "{value:#x}"
        );
    }
    // The last byte of text, the first of data, the last of bss.
    for value in [0xf, 0x1000, 0x101f] {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3; 16])
            .data(&[0; 16])
            .bss(16)
            .data_offset(0x1000)
            .export("x", 0, value);
        load(&b.build().unwrap()).unwrap();
    }
}

/// Names in both symbol tables: empty, out of the string table, too long,
/// with a NUL, not UTF-8, a duplicate, out of order; and the last name
/// ending at the string table's last byte.
#[test]
fn bad_names() {
    let good = calc_bytes();
    let strs = table_range(&good, kind::STRINGS);
    let strsize = strs.len() as u32;
    for (k, t, i, rec) in [
        (kind::EXPORTS, Table::Export, 1usize, 16usize),
        (kind::IMPORTS, Table::Import, 0, 12),
    ] {
        let at = table(&good, k).offset as usize + i * rec;
        let name_off = get_u32(&good, at);
        let name_len = get_u32(&good, at + 4);
        let named = |off: u32, len: u32| {
            let mut b = good.clone();
            set_u32(&mut b, at, off);
            set_u32(&mut b, at + 4, len);
            load(&b)
        };
        let problem = |problem| {
            Err(Error::BadName {
                table: t,
                index: i as u32,
                problem,
            })
        };
        assert_eq!(named(name_off, 0), problem(NameProblem::Empty));
        assert_eq!(
            named(name_off, dynld::MAX_NAME + 1),
            problem(NameProblem::TooLong)
        );
        assert_eq!(named(name_off, u32::MAX), problem(NameProblem::TooLong));
        assert_eq!(named(strsize, 1), problem(NameProblem::OutOfBounds));
        assert_eq!(
            named(strsize - name_len + 1, name_len),
            problem(NameProblem::OutOfBounds)
        );
        assert_eq!(named(u32::MAX, 4), problem(NameProblem::OutOfBounds));
        for (byte, p) in [(0, NameProblem::Nul), (0xff, NameProblem::NotUtf8)] {
            let mut b = good.clone();
            b[strs.start + name_off as usize + 1] = byte;
            assert_eq!(load(&b), problem(p), "{byte:#x}");
        }
    }
    // Exports: a duplicate and one out of order (export 1 named as 0, 0
    // as 1).
    let exps = table(&good, kind::EXPORTS).offset as usize;
    let mut b = good.clone();
    b.copy_within(exps..exps + 8, exps + 16);
    assert_eq!(
        load(&b),
        Err(Error::Duplicate {
            table: Table::Export,
            name: dynld::SymName::new("add")
        })
    );
    let mut b = good.clone();
    b.copy_within(exps..exps + 8, exps + 16);
    b[exps..exps + 8].copy_from_slice(&good[exps + 16..exps + 24]);
    assert_eq!(
        load(&b),
        Err(Error::Unsorted {
            table: Table::Export,
            name: dynld::SymName::new("add")
        })
    );
    // The import's name is the string table's last: a name ending one
    // byte earlier is another name (undefined), not out of bounds.
    let imps = table(&good, kind::IMPORTS).offset as usize;
    let (off, len) = (get_u32(&good, imps), get_u32(&good, imps + 4));
    assert_eq!(off + len, strsize);
    let mut b = good.clone();
    set_u32(&mut b, imps, off + 1);
    set_u32(&mut b, imps + 4, len - 1);
    assert_eq!(
        load(&b),
        Err(Error::Undefined {
            name: dynld::SymName::new("ost_double")
        })
    );
}

/// Constructors and destructors: image offsets in the text; the last text
/// byte is fine, one past is not, in any entry.
#[test]
fn constructors_in_the_text() {
    let text = calc::TEXT_LEN as u32;
    for k in [kind::INIT, kind::FINI] {
        for (offs, bad) in [
            (vec![text - 1], None),
            (vec![0, text - 1], None),
            (vec![text], Some((0, text))),
            (vec![0, text], Some((1, text))),
            (vec![calc::DATA], Some((0, calc::DATA))),
            (vec![0, 1, u32::MAX], Some((2, u32::MAX))),
        ] {
            let mut b = dynld_suite::calc();
            for &o in &offs {
                if k == kind::INIT {
                    b.init(o);
                } else {
                    b.fini(o);
                }
            }
            let r = load(&b.build().unwrap());
            match bad {
                None => r.unwrap(),
                Some((index, value)) => {
                    assert_eq!(
                        r,
                        Err(Error::BadFunction {
                            kind: k,
                            index,
                            value
                        })
                    )
                }
            }
        }
    }
    assert_eq!(
        Error::BadFunction {
            kind: kind::INIT,
            index: 1,
            value: 0x60
        }
        .to_string(),
        "constructor entry 1 outside the text (0x60)"
    );
    assert_eq!(
        Error::BadFunction {
            kind: kind::FINI,
            index: 0,
            value: 0x60
        }
        .to_string(),
        "destructor entry 0 outside the text (0x60)"
    );
}

/// Type descriptions: each in the string table and UTF-8, or refused; one
/// that does not hash to its symbol's signature loads, and is not shown.
#[test]
fn type_descriptions() {
    let mut b = dynld_suite::calc();
    b.describe_export("add", "fn(int, int) int")
        .describe_import("host_double", "fn(int) int");
    let good = b.build().unwrap();
    load(&good).unwrap();
    let types = table(&good, kind::TYPES);
    assert_eq!(types.count, 9, "8 exports and an import");
    let strsize = table(&good, kind::STRINGS).size;
    let strs = table_range(&good, kind::STRINGS).start;
    let bad = Err(bad_table(
        kind::TYPES,
        "description outside the string table, or not UTF-8",
    ));
    // The import's (the last) entry; its description ends the strings.
    let at = types.offset as usize + 8 * 8;
    let (off, len) = (get_u32(&good, at), get_u32(&good, at + 4));
    assert_eq!(off + len, strsize);
    let described = |o: u32, l: u32| {
        let mut b = good.clone();
        set_u32(&mut b, at, o);
        set_u32(&mut b, at + 4, l);
        load(&b)
    };
    assert_eq!(described(off, len + 1), bad);
    assert_eq!(described(off + 1, len), bad);
    assert_eq!(described(strsize, 1), bad);
    assert_eq!(described(u32::MAX, 2), bad);
    assert_eq!(described(0, u32::MAX), bad);
    // No description: whatever the offset.
    described(u32::MAX, 0).unwrap();
    // Shorter: another string, still UTF-8.
    described(off + 1, len - 1).unwrap();
    let mut b = good.clone();
    b[strs + off as usize + 2] = 0xff;
    assert_eq!(load(&b), bad);
    // An export's entry (add, the first).
    let at0 = types.offset as usize;
    let mut b = good.clone();
    set_u32(&mut b, at0 + 4, strsize + 1);
    assert_eq!(load(&b), bad);

    // A description that is not the signature's loads; a mismatch then
    // shows none.
    let want = signof!("fn(int) int");
    let have = signof!("fn(uint) int");
    let mut b = dynld_suite::calc();
    b.describe_import("host_double", "fn(uint) int")
        .describe_export("add", "fn(int) int");
    let lying = b.build().unwrap();
    load(&lying).unwrap();
    let v = ModuleView::parse(&lying, &Limits::DEFAULT).unwrap();
    assert_eq!(
        v.imports().next().unwrap().desc,
        Some("fn(uint) int"),
        "the file's description, as it is"
    );
    let host = [Dynsym::new("host_double", have, host_double as *const ())];
    let e = load_with(&lying, &host, Limits::DEFAULT).unwrap_err();
    assert!(
        matches!(&e, Error::SigMismatch { detail: None, want: w, .. } if *w == want),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "signature mismatch: host_double: module wants {want:#010x}, host has {have:#010x}"
        )
    );
    // An export's lying description is not shown by a lookup either.
    let m = Loader::new(ExportTable::new(&self::host()).unwrap(), &dynld::HEAP)
        .arch(Arch::Amd64)
        .load(&mut SliceSource::new(&lying))
        .unwrap();
    let e = m.addr("add", have).unwrap_err();
    assert!(
        matches!(e, Error::SigMismatch { detail: None, .. }),
        "{e:?}"
    );
    let m = Loader::new(ExportTable::new(&self::host()).unwrap(), &dynld::HEAP)
        .arch(Arch::Amd64)
        .load(&mut SliceSource::new(&good))
        .unwrap();
    let e = m.addr("add", have).unwrap_err();
    assert!(
        matches!(&e, Error::SigMismatch { detail: Some(d), .. }
            if d.have_desc.as_deref() == Some("fn(int, int) int")),
        "{e:?}"
    );
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
    assert_eq!(
        entry(&whole, ntable(&whole) - 1).kind,
        kind::IMPORT_HASHES,
        "the hashes end the file"
    );
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
    let _ = TableEntry::SIZE;
}

/// The symbols table: entries sorted by value, each inside the text or
/// inside data and bss, with a name in the string table, no unknown flag
/// and a size; anything else is refused with the table's error, by the
/// loader and the in-memory reader alike.
#[test]
fn symbols_table() {
    use dynld::format::SymEntry;
    let mut b = dynld_suite::calc();
    b.symbol("add", calc::ADD, 0x10, true)
        .symbol("twice_plus_one", calc::TWICE_PLUS_ONE, 0x20, true)
        .symbol("helper", calc::BUMP, 0x10, false)
        .symbol("counter", calc::COUNTER, 4, true)
        .symbol("scratch", calc::SCRATCH, 16, true);
    let good = b.build().unwrap();
    load(&good).unwrap();
    let v = ModuleView::parse(&good, &Limits::DEFAULT).unwrap();
    let syms: Vec<_> = v.symbols().map(|s| (s.name, s.value, s.exported)).collect();
    assert_eq!(
        syms,
        [
            ("add", calc::ADD, true),
            ("twice_plus_one", calc::TWICE_PLUS_ONE, true),
            ("helper", calc::BUMP, false),
            ("counter", calc::COUNTER, true),
            ("scratch", calc::SCRATCH, true),
        ]
    );
    let t = table(&good, kind::SYMBOLS);
    assert_eq!((t.count, t.size, t.flags), (5, 5 * 20, 0));
    // Entry `i`'s word `w` (value, size, name, namelen, flags) set to `x`.
    let at = |i: usize, w: usize| t.offset as usize + i * SymEntry::SIZE + 4 * w;
    let with = |edits: &[(usize, usize, u32)]| {
        let mut b = good.clone();
        for &(i, w, x) in edits {
            set_u32(&mut b, at(i, w), x);
        }
        load(&b)
    };
    let bad = |what| Err(bad_table(kind::SYMBOLS, what));
    // Order: values may repeat, never fall.
    assert_eq!(
        with(&[(1, 0, calc::ADD), (1, 1, 4)]),
        Ok(()),
        "two symbols at one value"
    );
    assert_eq!(
        with(&[(0, 0, calc::TWICE_PLUS_ONE), (1, 0, calc::ADD)]),
        bad("not sorted by value")
    );
    assert_eq!(with(&[(3, 0, calc::ADD)]), bad("not sorted by value"));
    // Bounds: inside the text, or inside data and bss; never the gap
    // between them, never past the image, even when the sum overflows.
    let text = calc::TEXT_LEN as u32;
    let image = calc::SCRATCH + 16;
    let outside = bad("symbol outside the text, data and bss");
    assert_eq!(with(&[(2, 1, text - calc::BUMP)]), Ok(()));
    assert_eq!(with(&[(2, 1, text - calc::BUMP + 1)]), outside);
    assert_eq!(with(&[(2, 0, text), (2, 1, 1)]), outside);
    assert_eq!(with(&[(4, 1, 17)]), outside);
    assert_eq!(with(&[(4, 0, image), (4, 1, 1)]), outside);
    assert_eq!(with(&[(4, 0, u32::MAX), (4, 1, u32::MAX)]), outside);
    assert_eq!(with(&[(4, 1, u32::MAX)]), outside);
    assert_eq!(with(&[(3, 1, 0)]), bad("symbol of size 0"));
    // Flags: bit 0 only.
    assert_eq!(with(&[(2, 4, 1)]), Ok(()));
    assert_eq!(with(&[(2, 4, 2)]), bad("unknown symbol flags"));
    assert_eq!(with(&[(2, 4, 0x8000_0000)]), bad("unknown symbol flags"));
    // Names: in the string table, not empty, UTF-8 without NUL.
    let strs = table(&good, kind::STRINGS);
    let name = get_u32(&good, at(2, 2));
    assert_eq!(get_u32(&good, at(2, 3)), 6);
    assert_eq!(
        &good[(strs.offset + name) as usize..][..6],
        b"helper",
        "a local name is stored after the exports' and imports'"
    );
    assert_eq!(
        get_u32(&good, at(0, 2)),
        0,
        "an exported symbol's name is its export's"
    );
    let out_of_strings = bad("name outside the string table");
    assert_eq!(with(&[(2, 2, strs.size - 5)]), out_of_strings);
    assert_eq!(with(&[(2, 2, u32::MAX)]), out_of_strings);
    assert_eq!(with(&[(2, 3, u32::MAX)]), bad("name too long"));
    assert_eq!(with(&[(2, 3, 0)]), bad("empty name"));
    let mut b = good.clone();
    b[(strs.offset + name) as usize + 1] = 0xff;
    assert_eq!(load(&b), bad("name is not UTF-8"));
    b[(strs.offset + name) as usize + 1] = 0;
    assert_eq!(load(&b), bad("NUL byte in a name"));
    // The directory: size and count agree; the table is optional; it
    // needs a string table; its count is bounded.
    let e = entry_of(&good, kind::SYMBOLS);
    let mut b = good.clone();
    set_u32(&mut b, e + field::COUNT, 4);
    assert_eq!(load(&b), bad("size disagrees with the count"));
    let mut b = good.clone();
    set_u16(&mut b, e + field::FLAGS, TABLE_REQUIRED);
    assert_eq!(load(&b), bad("required flag disagrees with the kind"));
    assert_eq!(
        load_with(
            &good,
            &host(),
            Limits {
                max_relocs: 4,
                ..Limits::DEFAULT
            }
        ),
        Err(Error::Limit {
            what: "symbol count",
            count: 5,
            max: 4
        })
    );
    // A symbols table and nothing else to name: it still needs strings.
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 4]).symbol("f", 0, 4, false);
    let only = b.build().unwrap();
    load(&only).unwrap();
    let mut b = only.clone();
    let at = entry_of(&only, kind::STRINGS);
    set_u16(&mut b, at, 0x7777);
    set_u16(&mut b, at + 2, 0);
    assert_eq!(
        load(&b),
        Err(bad_table(kind::STRINGS, "symbols without a string table"))
    );
    assert_eq!(
        bad_table(kind::SYMBOLS, "not sorted by value").to_string(),
        "bad symbols table: not sorted by value"
    );
}

/// The unwind table: kept as it is and handed back with where it was
/// linked to lie; refused if that is inside the image or its head is cut
/// short; the debug link likewise (with the `gdb` feature, which alone
/// reads them).
#[cfg(all(unix, target_arch = "x86_64"))]
#[test]
fn unwind_table() {
    let cfi = [0x14u8, 0, 0, 0, 0, 0, 0, 0, 1, b'z', b'R', 0];
    let mut b = calc();
    let image = 0x1000 + 0x28 + 16;
    b.unwind(image, &cfi);
    let good = b.build().unwrap();
    load(&good).unwrap();
    let mem = GuardedMemory::new();
    let host = host();
    let m = Loader::new(ExportTable::new(&host).unwrap(), &mem)
        .load(&mut SliceSource::new(&good))
        .unwrap();
    assert_eq!(m.image_size(), image as usize);
    assert_eq!(m.unwind(), Some((image as usize, &cfi[..])));
    drop(m);
    // Inside the image.
    let mut b = calc();
    b.unwind(image - 1, &cfi);
    assert_eq!(
        load(&b.build().unwrap()),
        Err(bad_table(kind::UNWIND, "placed inside the image"))
    );
    // A head of 4 bytes.
    let mut b = calc();
    b.text_file_align(256);
    let short = add_table(&b.build().unwrap(), kind::UNWIND, 0, &[0, 0, 0x10, 0x38]);
    assert_eq!(
        load(&short),
        Err(bad_table(kind::UNWIND, "shorter than its head"))
    );
    // The debug link: a CRC and a path, UTF-8 without NUL.
    let mut b = calc();
    b.debuglink("/lib/modules/m.debug", 0x1234_5678);
    let m = Loader::new(ExportTable::new(&host).unwrap(), &mem)
        .load(&mut SliceSource::new(&b.build().unwrap()))
        .unwrap();
    assert_eq!(m.debuglink(), Some((0x1234_5678, "/lib/modules/m.debug")));
    drop(m);
    for (payload, what) in [
        (&b"\0\0\0\x01"[..], "no path"),
        (&b"\0\0\0\x01a\0b"[..], "path not UTF-8, or with a NUL"),
        (&b"\0\0\0\x01\xff"[..], "path not UTF-8, or with a NUL"),
    ] {
        let mut b = calc();
        b.text_file_align(256);
        let bad = add_table(&b.build().unwrap(), kind::DEBUGLINK, 0, payload);
        assert_eq!(load(&bad), Err(bad_table(kind::DEBUGLINK, what)));
    }
    // A count is wrong for it.
    let mut v = good.clone();
    set_u32(&mut v, entry_of(&good, kind::UNWIND) + field::COUNT, 1);
    assert_eq!(
        load(&v),
        Err(bad_table(kind::UNWIND, "size disagrees with the count"))
    );
}
