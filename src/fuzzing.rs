//! The properties the fuzz targets check, kept here so the fuzz targets,
//! the corpus tests and anyone reproducing a crash run the same code.

use crate::guard::GuardedMemory;
use dynld::arch::x86_64::{BASE32, BASE32S, BASE64, IMPORT64, IMPORT_PC32};
use dynld::format::{Dynhdr, Exec};
use dynld::{
    Arch, Dynsym, Error, ExportTable, Limits, Loader, ModuleBuilder, ModuleView, SliceSource,
    Source, Table,
};

extern "C" fn never_called() {}

/// Host exports the fuzzed modules may bind to (never called): four the
/// samples import, then enough others that a module importing up to 16 of
/// them binds through the host's hash index when it has one.
fn host() -> Vec<Dynsym<'static>> {
    static MORE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let more = MORE.get_or_init(|| (0..60).map(|i| format!("zz_host_{i:02}")).collect());
    let f = never_called as *const ();
    let mut v = vec![
        Dynsym::new("far", 0, std::ptr::without_provenance(usize::MAX / 2)),
        Dynsym::new("host_double", 0xbb29_c315, f),
        Dynsym::new("malloc", 0, f),
        Dynsym::new("printf", 0x1234_5678, f),
    ];
    v.extend(more.iter().map(|n| Dynsym::new(n, 0, f)));
    v
}

/// Limits small enough that a fuzzed module cannot ask for gigabytes.
pub const LIMITS: Limits = Limits {
    max_size: 1 << 20,
    max_exports: 1 << 12,
    max_imports: 1 << 12,
    max_name: 512,
    max_relocs: 1 << 16,
    max_strings: 1 << 20,
    max_header: 4096,
};

/// Errors only the loader can find (they need the host table or memory).
fn binding_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Undefined { .. }
            | Error::SigMismatch { .. }
            | Error::RelocOverflow { .. }
            | Error::Memory { .. }
            | Error::Unsorted {
                table: Table::Host,
                ..
            }
    )
}

fn relocation_stream_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Truncated {
            what: "relocations"
        } | Error::BadReloc { .. }
            | Error::BadRelocMode { .. }
            | Error::RelocOutOfImage { .. }
            | Error::BadImportIndex { .. }
    )
}

fn relocation_stream_error_of(r: &Result<(), Error>) -> bool {
    r.as_ref().err().is_some_and(relocation_stream_error)
}

/// Loads `data` as an amd64 module into guarded memory and checks that
/// nothing outside the module's region was written, nothing stays
/// allocated, the source is restored on error, the in-memory reader
/// agrees with the loader, and binding through the host table's hash
/// index (and the module's stored import hashes, if any) binds or refuses
/// as the merge does. Panics if any of that fails.
pub fn load(data: &[u8]) -> Result<(), Error> {
    let host = host();
    let table = ExportTable::new(&host).expect("host table is sorted");
    let slots = dynld::index::build_vec(host.len(), |i| host[i].name.as_bytes()).expect("index");
    let indexed = table.with_index(&slots).expect("index fits the table");
    let merged = load_with(data, table);
    let through_index = load_with(data, indexed);
    assert_eq!(
        merged.as_ref().map_err(Error::to_string),
        through_index.as_ref().map_err(Error::to_string),
        "binding through the index disagrees with the merge"
    );
    merged.map(drop)
}

/// [`load`] against one host table: the imports' addresses, or the error.
fn load_with(data: &[u8], table: ExportTable<'_>) -> Result<Vec<usize>, Error> {
    let mem = GuardedMemory::new();
    let mut file = Vec::with_capacity(data.len() + 3);
    file.extend_from_slice(b"pad");
    file.extend_from_slice(data);
    let mut src = SliceSource::new(&file);
    src.seek(3).expect("seek");
    let r = Loader::new(table, &mem)
        .limits(LIMITS)
        .arch(Arch::Amd64)
        .load(&mut src);
    if let Ok(m) = &r {
        // Everything a loaded module reports lies inside it.
        let base = m.base() as usize;
        for s in m.exports() {
            let a = s.addr as usize;
            assert!(
                a >= base && a < base + m.image_size(),
                "export {} outside",
                s.name
            );
        }
        assert_eq!(m.imports().count(), m.nimport());
        for i in m.imports() {
            assert!(
                table
                    .as_slice()
                    .iter()
                    .any(|h| h.name == i.name && h.addr == i.addr),
                "import {} bound to the wrong address",
                i.name
            );
        }
        // Lookups (through the index, if the module has one) find the
        // export asked for or nothing, never another one.
        for s in m.exports() {
            if let Some(f) = m.find(s.name) {
                assert_eq!(f, s, "find returned another export");
            }
        }
    }
    let r = r.map(|m| m.imports().map(|i| i.addr as usize).collect::<Vec<_>>());
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    assert_eq!(mem.live(), 0, "region leaked");
    if r.is_err() {
        assert_eq!(src.position().ok(), Some(3), "source not restored");
    }
    let view = ModuleView::parse(data, &LIMITS).map(drop);
    match r.as_ref().map(drop) {
        Ok(()) => assert!(view.is_ok(), "loader accepted, view refused: {view:?}"),
        Err(Error::WrongArch { .. }) => {}
        Err(e) if binding_error(e) => {}
        // The loader reads the relocation stream as it applies it, so in a
        // truncated stream it may meet a bad record before the missing
        // bytes that the in-memory reader sees first: both refuse.
        Err(e) if relocation_stream_error(e) || relocation_stream_error_of(&view) => {
            assert!(view.is_err(), "loader refused ({e}), view accepted")
        }
        Err(e) => assert_eq!(view.as_ref(), Err(e), "view and loader disagree"),
    }
    r
}

/// The builder that writes `v` again, canonically.
pub fn rebuild(v: &ModuleView<'_>) -> ModuleBuilder {
    let mut b = ModuleBuilder::new(v.arch());
    b.text(v.text())
        .data(v.data())
        .bss(v.exec().bss)
        .data_offset(v.header().dataoff)
        .align(v.header().align)
        .flags(v.header().flags);
    for off in v.init_offsets() {
        b.init(off);
    }
    for off in v.fini_offsets() {
        b.fini(off);
    }
    for s in v.exports() {
        b.export(s.name, s.sig, s.value);
    }
    for s in v.imports() {
        b.import(s.name, s.sig);
    }
    for s in v.exports().chain(v.imports()) {
        if let Some(d) = s.desc {
            b.describe(s.name, d);
        }
    }
    for r in v.relocs().chain(v.import_relocs()) {
        b.reloc(r.offset, r.mode, r.import);
    }
    b.index(v.index_slots() != 0)
        .import_hashes(v.import_hashes().is_some());
    b
}

/// Everything a view reports, for comparing two views.
fn summary(v: &ModuleView<'_>) -> impl PartialEq + std::fmt::Debug {
    (
        v.arch(),
        (v.exec().text, v.exec().data, v.exec().bss),
        (
            v.init_offsets().collect::<Vec<_>>(),
            v.fini_offsets().collect::<Vec<_>>(),
        ),
        (v.header().dataoff, v.header().align, v.header().flags),
        (v.text().to_vec(), v.data().to_vec()),
        v.exports()
            .map(|s| (s.name.to_owned(), s.sig, s.value, s.desc.map(str::to_owned)))
            .collect::<Vec<_>>(),
        v.imports()
            .map(|s| (s.name.to_owned(), s.sig, s.desc.map(str::to_owned)))
            .collect::<Vec<_>>(),
        v.relocs().collect::<Vec<_>>(),
        v.import_relocs().collect::<Vec<_>>(),
        v.index_slots() != 0,
        v.import_hashes().is_some(),
    )
}

/// The reader/writer round trip: a module the reader accepts, written again
/// by the writer, reads back the same, and writing that is a fixed point.
pub fn roundtrip(data: &[u8]) {
    let Ok(v) = ModuleView::parse(data, &LIMITS) else {
        return;
    };
    let bytes = rebuild(&v)
        .build()
        .expect("the writer takes what the reader gave");
    let w = ModuleView::parse(&bytes, &LIMITS).expect("the reader takes what the writer wrote");
    assert_eq!(summary(&v), summary(&w));
    assert_eq!(
        rebuild(&w).build().expect("rebuild"),
        bytes,
        "not a fixed point"
    );
}

/// Sample modules the structured mutator starts from (built once).
pub fn samples() -> &'static [Vec<u8>] {
    static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(build_samples)
}

fn build_samples() -> Vec<Vec<u8>> {
    let mut all = vec![
        crate::calc().build().expect("calc"),
        crate::far_call().build().expect("far_call"),
    ];
    // Every amd64 mode, several imports, entry and flags.
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0x90; 64])
        .data(&[0; 64])
        .bss(32)
        .data_offset(0x1000)
        .init(4)
        .init(8)
        .fini(12);
    let i0 = b.import("host_double", 0xbb29_c315);
    let i1 = b.import("malloc", 0);
    let i2 = b.import("far", 0);
    b.export("a", 1, 0)
        .export("b", 0, 0x1000)
        .export("c", 0, 0x1040)
        .reloc(8, BASE64, None)
        .reloc(16, BASE32, None)
        .reloc(20, BASE32S, None)
        .reloc(24, IMPORT_PC32, Some(i2))
        .reloc(0x1000, IMPORT64, Some(i0))
        .reloc(0x1008, IMPORT64, Some(i1))
        .reloc(0x1010, BASE64, None);
    all.push(b.build().expect("modes"));
    all.push(b.index(true).build().expect("modes with an index"));
    all.push(
        b.import_hashes(true)
            .build()
            .expect("modes with an index and import hashes"),
    );
    all.push(
        crate::calc()
            .index(true)
            .build()
            .expect("calc with an index"),
    );
    all
}

/// A structured mutation of a sample module: `data[0]` picks the sample;
/// then each 5-byte step (selector, value) rewrites a header word (kept
/// plausible by often adding a small delta instead of replacing it) or a
/// byte anywhere after the headers (text, data, tables, relocations).
pub fn mutate(data: &[u8]) -> Vec<u8> {
    let samples = samples();
    let Some((&pick, steps)) = data.split_first() else {
        return samples[0].clone();
    };
    let mut m = samples[pick as usize % samples.len()].clone();
    let words = (Exec::SIZE + 8 + Dynhdr::SIZE) / 4;
    for step in steps.chunks_exact(5) {
        let sel = step[0] as usize;
        let val = u32::from_be_bytes([step[1], step[2], step[3], step[4]]);
        if sel < 2 * words {
            let at = (sel % words) * 4;
            let old = u32::from_be_bytes(m[at..at + 4].try_into().expect("word"));
            let new = if sel < words {
                old.wrapping_add(val as i8 as u32)
            } else {
                val
            };
            m[at..at + 4].copy_from_slice(&new.to_be_bytes());
        } else if m.len() > 4 * words {
            let span = m.len() - 4 * words;
            let at = 4 * words + (val as usize >> 8) % span;
            m[at] = val as u8;
        }
    }
    m
}

/// Links `data` as one ELF object with the aout linker; whatever the linker
/// writes must be a module the reader accepts.
pub fn link(data: &[u8]) {
    use aout_tools::link::{link_inputs, Input, Options};
    let opts = Options {
        inputs: Vec::new(),
        exports: None,
        gc: data.first().is_some_and(|b| b & 1 == 0),
        index: if data.first().is_some_and(|b| b & 2 == 0) {
            aout_tools::link::IndexMode::Always
        } else {
            aout_tools::link::IndexMode::Auto
        },
        import_hashes: if data.first().is_some_and(|b| b & 8 == 0) {
            aout_tools::link::IndexMode::Always
        } else {
            aout_tools::link::IndexMode::Auto
        },
        text_align: if data.first().is_some_and(|b| b & 4 == 0) {
            aout_tools::link::TextAlign::Auto
        } else {
            aout_tools::link::TextAlign::Bytes(4096)
        },
    };
    let input = Input {
        name: "fuzz.o".into(),
        bytes: data.to_vec(),
    };
    if let Ok(linked) = link_inputs(vec![input], &opts) {
        if let Err(e) = ModuleView::parse(&linked.bytes, &Limits::DEFAULT) {
            panic!("the linker wrote a module the reader refuses: {e}");
        }
    }
}
