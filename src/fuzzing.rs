//! The properties the fuzz targets check, kept here so the fuzz targets,
//! the corpus tests and anyone reproducing a crash run the same code.

use crate::counting::CountingMemory;
use crate::guard::GuardedMemory;
use dynld::arch::x86_64::{BASE32, BASE32S, BASE64, IMPORT64, IMPORT_PC32};
use dynld::format::{kind, Dynhdr, TableEntry};
use dynld::{
    Arch, Dynsym, Error, ExportTable, Limits, Loader, Module, ModuleBuilder, ModuleView,
    SliceSource, Source, Table,
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
            | Error::ImportOutOfReach { .. }
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
    let mut r = Loader::new(table, &mem)
        .limits(LIMITS)
        .arch(Arch::Amd64)
        .load(&mut src);
    let view = ModuleView::parse(data, &LIMITS);
    if let (Ok(m), Ok(v)) = (&mut r, &view) {
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
        check_lookups(m, data, v);
        // Forgetting the imports changes no lookup.
        m.free_imports();
        assert_eq!((m.nimport(), m.imports().count()), (0, 0));
        check_lookups(m, data, v);
    }
    let r = r.map(|m| m.imports().map(|i| i.addr as usize).collect::<Vec<_>>());
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    assert_eq!(mem.live(), 0, "region leaked");
    if r.is_err() {
        assert_eq!(src.position().ok(), Some(3), "source not restored");
    }
    let view = view.map(drop);
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

/// Where a lookup of `name` must end among the exports of the module
/// `v` (whose file is `bytes`): its position, or `None`. Without an index, the export so called.
/// With one, where the index leads, followed as `dynld-module(5)` says
/// (home slot, then the next ones up to [`dynld::index::MAX_PROBE`],
/// stopping at an empty slot, taking a slot whose tag matches and whose
/// symbol has the name): a loaded index is checked only for its size and
/// for slots naming no symbol, so one that lies makes names missing, by
/// design, and never finds another symbol.
pub fn expected_position(bytes: &[u8], v: &ModuleView<'_>, name: &str) -> Option<usize> {
    let names: Vec<&str> = v.exports().map(|s| s.name).collect();
    let own = || names.iter().position(|n| *n == name);
    let Some(t) = v.table_entry(kind::INDEX) else {
        return own();
    };
    let raw = bytes.get(t.offset as usize..(t.offset as usize).checked_add(t.size as usize)?)?;
    let slots: Vec<u64> = raw
        .chunks_exact(8)
        .map(|w| u64::from_be_bytes(w.try_into().expect("slot")))
        .collect();
    if slots.is_empty() {
        return own();
    }
    let h = dynld::index::hash(name.as_bytes());
    let mask = slots.len() - 1;
    let tag = h >> 32;
    for k in 0..dynld::index::MAX_PROBE.min(slots.len()) {
        let w = slots[(h as usize).wrapping_add(k) & mask];
        if w == 0 {
            return None;
        }
        let i = ((w & 0xffff_ffff) as usize).wrapping_sub(1);
        if w >> 32 == tag && names.get(i) == Some(&name) {
            return Some(i);
        }
    }
    None
}

/// Lookups are exact: `m.find` of every export of `m` (loaded from
/// `bytes`, read as `v`) gives that export if the module's index leads to
/// it (always, without an index or with an honest one), and nothing else; `m.find` of a name the module does not export
/// (its imports', a prefix or an extension of an export's, the empty
/// name) gives nothing.
pub fn check_lookups(m: &Module<'_>, bytes: &[u8], v: &ModuleView<'_>) {
    let exports: Vec<_> = m.exports().collect();
    assert_eq!(exports.len(), m.nexport());
    assert_eq!(exports.len(), v.exports().count());
    for (i, s) in exports.iter().enumerate() {
        let want = expected_position(bytes, v, s.name).map(|j| exports[j]);
        if want.is_some() {
            assert_eq!(want, Some(*s), "the index led to another export");
        }
        assert_eq!(m.find(s.name), want, "find({:?}), export {i}", s.name);
    }
    let mut absent: Vec<String> = v.imports().map(|s| s.name.to_owned()).collect();
    absent.push(String::new());
    for s in &exports {
        absent.push(format!("{}x", s.name));
        absent.push(format!("\0{}", s.name));
        let mut p = s.name.to_owned();
        p.pop();
        absent.push(p);
    }
    for name in absent {
        if exports.iter().all(|s| s.name != name) {
            assert_eq!(m.find(&name), None, "find({name:?}) of a name not exported");
        }
    }
}

/// A source that counts the bytes it gave, and may hide its length (as
/// Plan 9 callbacks do).
struct Counted<'a> {
    inner: SliceSource<'a>,
    read: usize,
    known_length: bool,
}

impl Source for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        self.inner.seek(pos)
    }
    fn position(&mut self) -> Result<u64, Error> {
        self.inner.position()
    }
    fn length(&mut self) -> Option<u64> {
        if self.known_length {
            self.inner.length()
        } else {
            None
        }
    }
}

/// Bss the loader may bring in without reading anything for it.
pub const PREFAULT_BSS: usize = 64 << 10;

/// Loads `data` with [`Limits::DEFAULT`] (no size limit) into the mmap
/// provider, from a source that knows its length and from one that does
/// not: the memory the loader asks to bring in stays within the bytes it
/// read plus [`PREFAULT_BSS`] (so a header claiming gigabytes costs
/// address space only), and every region is given back. Panics if not.
pub fn load_defaults(data: &[u8]) {
    let host = host();
    let table = ExportTable::new(&host).expect("host table is sorted");
    for known_length in [true, false] {
        let mem = CountingMemory::new(&dynld::MMAP);
        let mut src = Counted {
            inner: SliceSource::new(data),
            read: 0,
            known_length,
        };
        let r = Loader::new(table, &mem).arch(Arch::Amd64).load(&mut src);
        let read = src.read;
        let ranges = mem.prefaulted();
        let page = 4096;
        let pages = mem.prefaulted_pages(page);
        assert!(
            mem.prefaulted_bytes() <= read + PREFAULT_BSS,
            "length known: {known_length}; read {read} bytes, asked to bring in {} ({ranges:x?}; {r:?})",
            mem.prefaulted_bytes()
        );
        assert!(
            pages <= data.len() + PREFAULT_BSS + 2 * page * ranges.len(),
            "length known: {known_length}; {} bytes of input, {pages} bytes of pages brought in",
            data.len()
        );
        if r.is_ok() {
            // From a source of unknown length a loader skips a table of a
            // kind it does not know unseen, so a file cut inside one loads
            // (dynld-module(5)); anything else the view refuses, the loader
            // must refuse too.
            let view = ModuleView::parse(data, &Limits::DEFAULT).map(drop);
            assert!(
                view.is_ok() || !known_length && view == Err(Error::Truncated { what: "table" }),
                "loader accepted, view refused: {view:?}"
            );
        }
        drop(r);
        assert_eq!(mem.live(), 0, "region leaked");
    }
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
    for s in v.exports() {
        if let Some(d) = s.desc {
            b.describe_export(s.name, d);
        }
    }
    for s in v.imports() {
        if let Some(d) = s.desc {
            b.describe_import(s.name, d);
        }
    }
    for r in v.relocs().chain(v.import_relocs()) {
        b.reloc(r.offset, r.mode, r.import);
    }
    for s in v.symbols() {
        b.symbol(s.name, s.value, s.size, s.exported);
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
        // In any order among those of one value (the writer puts an
        // exported one last).
        {
            let mut s: Vec<_> = v
                .symbols()
                .map(|s| (s.value, s.size, s.name.to_owned(), s.exported))
                .collect();
            s.sort();
            s
        },
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
    // Every amd64 mode, several imports, constructors and destructors.
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
    // Every table version 2 defines, type descriptions included, with room
    // in the header for more directory entries; and the same with an
    // unknown optional table after the others.
    let mut t = crate::calc();
    t.index(true)
        .import_hashes(true)
        .init(crate::calc::ADD)
        .init(crate::calc::BUMP)
        .fini(crate::calc::CALL_OP1)
        .describe_export("add", "fn(int, int) int")
        .describe_export("counter", "int")
        .describe_import("host_double", "fn(int) int")
        .symbol("add", crate::calc::ADD, 4, true)
        .symbol("helper", crate::calc::BUMP, 4, false)
        .symbol("helper", crate::calc::CALL_OP1, 4, false)
        .text_file_align(256);
    let every = t.build().expect("every table");
    all.push(crate::add_table(&every, 0x7777, 0, b"optional"));
    all.push(every);
    all
}

/// Edge values for a header or directory word.
fn edge(m: &[u8], pick: u32, other: u32) -> u32 {
    let len = m.len() as u32;
    let e = [
        0,
        1,
        0x8000_0000,
        u32::MAX - 7,
        u32::MAX,
        len,
        len.wrapping_sub(1),
        4096,
        1 << 30,
        other,
        other.wrapping_add(1),
        other.wrapping_sub(1),
    ];
    e[pick as usize % e.len()]
}

fn word(m: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(m.get(at..at + 4)?.try_into().ok()?))
}

fn set_word(m: &mut [u8], at: usize, v: u32) {
    if let Some(w) = m.get_mut(at..at + 4) {
        w.copy_from_slice(&v.to_be_bytes());
    }
}

fn half(m: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(m.get(at..at + 2)?.try_into().ok()?))
}

fn set_half(m: &mut [u8], at: usize, v: u16) {
    if let Some(w) = m.get_mut(at..at + 2) {
        w.copy_from_slice(&v.to_be_bytes());
    }
}

/// A structured mutation of a sample module: `data[0]` picks the sample;
/// then each 5-byte step `[sel, a, b, c, d]` makes one edit, chosen by
/// `sel`, kept plausible (a small delta, an edge value, another field's
/// value) more often than not:
///
/// * a header word (Exec, fat entry, `Dynhdr`): a delta, a new value, an
///   edge value;
/// * a field of a directory entry (kind, flags, count, offset, size): a
///   delta, a new value, an edge value (another entry's offset or end, the
///   file's end, a known or unknown kind, flags);
/// * the directory's shape: two entries swapped, one copied over another
///   (a duplicate kind), `ntable` changed, an extra table (of any kind and
///   flags) appended to the file and listed after the others;
/// * the file cut short or extended;
/// * a word inside a table (an edge value relative to the text and image,
///   or a delta): names' offsets and lengths, export values, constructor
///   offsets, slots;
/// * a byte anywhere after the fixed headers (directory, text, data,
///   tables, relocations).
pub fn mutate(data: &[u8]) -> Vec<u8> {
    let samples = samples();
    let Some((&pick, steps)) = data.split_first() else {
        return samples[0].clone();
    };
    let mut m = samples[pick as usize % samples.len()].clone();
    let exec = word(&m, 0)
        .and_then(Arch::from_magic)
        .map_or(40, Arch::exec_size);
    let dir = exec + Dynhdr::SIZE;
    let words = dir / 4;
    let hdrsize = word(&m, exec + 4).unwrap_or(0) as usize;
    // Directory entries that fit before the text, listed or not.
    let room = (hdrsize.saturating_sub(Dynhdr::SIZE) / TableEntry::SIZE).max(1);
    let entry_at = |e: usize| dir + (e % room) * TableEntry::SIZE;
    let ntable_at = exec + 20;
    for step in steps.chunks_exact(5) {
        let (sel, a, b, d) = (step[0], step[1], step[2], step[4]);
        let val = u32::from_be_bytes([step[1], step[2], step[3], step[4]]);
        let delta = d as i8 as u32;
        match sel {
            // A header word.
            0..=47 => {
                let at = (sel as usize % words) * 4;
                let old = word(&m, at).unwrap_or(0);
                let other = word(&m, (a as usize % words) * 4).unwrap_or(0);
                let new = match sel as usize / words {
                    0 => old.wrapping_add(delta),
                    1 => val,
                    _ => edge(&m, val, other),
                };
                set_word(&mut m, at, new);
            }
            // A field of a directory entry.
            48..=167 => {
                let k = (sel - 48) as usize;
                let (field, op) = (k % 5, k / 5 % 3);
                let at = entry_at(a as usize);
                let other = entry_at(b as usize);
                match field {
                    0 | 1 => {
                        let at = at + 2 * field;
                        let old = half(&m, at).unwrap_or(0);
                        let edges: &[u16] = if field == 0 {
                            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x7fff, 0xffff]
                        } else {
                            &[0, 1, 2, 3, 0x8000, 0xffff]
                        };
                        let new = match op {
                            0 => old.wrapping_add(delta as u16),
                            1 => val as u16,
                            _ => edges[d as usize % edges.len()],
                        };
                        set_half(&mut m, at, new);
                    }
                    _ => {
                        let at = at + 4 * (field - 1);
                        let old = word(&m, at).unwrap_or(0);
                        let off = word(&m, other + 8).unwrap_or(0);
                        let end = off.wrapping_add(word(&m, other + 12).unwrap_or(0));
                        let new = match op {
                            0 => old.wrapping_add(delta),
                            1 => val,
                            _ => edge(&m, val, if d & 1 == 0 { off } else { end }),
                        };
                        set_word(&mut m, at, new);
                    }
                }
            }
            // The directory's shape.
            168..=183 => match sel % 4 {
                0 => {
                    let (x, y) = (entry_at(a as usize), entry_at(b as usize));
                    if x != y && y.max(x) + TableEntry::SIZE <= m.len() {
                        for i in 0..TableEntry::SIZE {
                            m.swap(x + i, y + i);
                        }
                    }
                }
                1 => {
                    let (x, y) = (entry_at(a as usize), entry_at(b as usize));
                    if y.max(x) + TableEntry::SIZE <= m.len() {
                        m.copy_within(x..x + TableEntry::SIZE, y);
                    }
                }
                2 => set_word(&mut m, ntable_at, u32::from(d) % (room as u32 + 2)),
                _ => {
                    let n = word(&m, ntable_at).unwrap_or(0) as usize;
                    if n < room {
                        let size = 1 + u32::from(d) % 64;
                        let e = TableEntry {
                            kind: u16::from_be_bytes([a, b]),
                            flags: u16::from(step[3] & 3),
                            count: u32::from(d >> 6),
                            offset: m.len() as u32,
                            size,
                        };
                        let at = dir + n * TableEntry::SIZE;
                        if let Some(slot) = m.get_mut(at..at + TableEntry::SIZE) {
                            e.write(slot).expect("entry");
                            m.resize(m.len() + size as usize, step[3]);
                            set_word(&mut m, ntable_at, n as u32 + 1);
                        }
                    }
                }
            },
            // The file's end.
            184..=191 => {
                if sel & 1 == 0 {
                    let cut = val as usize % (m.len() + 1);
                    m.truncate(cut.max(dir));
                } else {
                    m.resize(m.len() + 1 + d as usize, b);
                }
            }
            // A word inside a table.
            192..=215 => {
                let at = entry_at(a as usize);
                let (off, size) = (word(&m, at + 8), word(&m, at + 12));
                if let (Some(off), Some(size)) = (off, size) {
                    let n = size as usize / 4;
                    if n > 0 {
                        let at = off as usize + 4 * (u16::from_be_bytes([b, step[3]]) as usize % n);
                        let text = word(&m, 4).unwrap_or(0);
                        let image = word(&m, exec + 16)
                            .unwrap_or(0)
                            .wrapping_add(word(&m, 8).unwrap_or(0))
                            .wrapping_add(word(&m, 12).unwrap_or(0));
                        let old = word(&m, at).unwrap_or(0);
                        let edges = [
                            0,
                            1,
                            text.wrapping_sub(1),
                            text,
                            image.wrapping_sub(1),
                            image,
                            u32::MAX,
                        ];
                        let new = if sel & 1 == 0 {
                            old.wrapping_add(delta)
                        } else {
                            edges[d as usize % edges.len()]
                        };
                        set_word(&mut m, at, new);
                    }
                }
            }
            // A byte anywhere after the fixed headers.
            _ => {
                if m.len() > dir {
                    let at = dir + (val as usize >> 8) % (m.len() - dir);
                    m[at] = d;
                }
            }
        }
    }
    m
}

/// The `load_mutated` target: [`mutate`], then [`load`] and [`roundtrip`].
pub fn load_mutated(data: &[u8]) {
    let m = mutate(data);
    let _ = load(&m);
    roundtrip(&m);
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
        strip_symbols: data.first().is_some_and(|b| b & 16 != 0),
        unwind: data.first().is_some_and(|b| b & 32 != 0),
        debug: data
            .first()
            .is_some_and(|b| b & 64 != 0)
            .then(|| "/fuzz.debug".into()),
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

/// A provider for the `registry` target: a data word exported as
/// `prov_val` (with an x86-64 base relocation, so it is loaded like any
/// module).
fn registry_provider() -> Vec<u8> {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 8])
        .data(&8u64.to_le_bytes())
        .data_offset(8)
        .export("prov_val", 0, 8)
        .reloc(8, BASE64, None);
    b.build().expect("provider builds")
}

/// Loads `data` (an x86-64 module: a registry loads for the machine it
/// runs on, so this checks only on x86-64) into a registry holding one
/// provider, under a name, and
/// again under the same name and under another; unloads in turn. Checks
/// that a refused load leaves the books and the memory as they were, that
/// a loaded module's counts, symbols and addresses agree with what it
/// imports and exports, and that nothing stays allocated at the end.
pub fn registry(data: &[u8]) {
    use dynld::{Provider, Registry};
    // A registry runs a module's constructors: garbage with any is not
    // loaded (and one the reader refuses, the loader refuses too: the
    // `load` target checks that they agree).
    if let Ok(v) = ModuleView::parse(data, &LIMITS) {
        let setup = v
            .metadata()
            .is_some_and(|m| m.setup().is_some() || m.teardown().is_some());
        if v.init_offsets().next().is_some() || v.fini_offsets().next().is_some() || setup {
            return;
        }
    }
    let host = host();
    let table = ExportTable::new(&host).expect("host table is sorted");
    let mem = GuardedMemory::new();
    {
        let reg = Registry::growable(table, &mem).with_limits(LIMITS);
        let prov = registry_provider();
        let pid = reg
            .load("prov", &mut SliceSource::new(&prov))
            .expect("provider loads")
            .id();
        let before = mem.live();
        let got = reg.load("x", &mut SliceSource::new(data));
        let x = match got {
            Err(_) => {
                assert_eq!(mem.live(), before, "a refused load keeps nothing");
                let list = reg.list();
                assert_eq!(list.len(), 1, "a refused load leaves no module");
                assert_eq!(list[0].dependents, 0);
                return;
            }
            Ok(x) => x,
        };
        let xid = x.id();
        let bound = x.imports().any(|i| i.provider == Provider(pid));
        assert_eq!(reg.info(pid).unwrap().dependents, u32::from(bound));
        for s in x.exports() {
            let f = reg.lookup(s.name).expect("an export is in the table");
            if host.iter().all(|h| h.name != s.name) {
                assert_eq!(f.provider, Provider(xid), "{}", s.name);
                assert_eq!(f.addr, s.addr);
            }
            if x.contains(s.addr) {
                let at = reg.locate(s.addr, |l| l.provider).expect("located");
                assert_eq!(at, Provider(xid));
            }
        }
        // Loaded again under its name: the same module, held twice.
        let again = reg.load("x", &mut SliceSource::new(&[])).expect("reopen");
        assert_eq!(again.id(), xid);
        assert_eq!(reg.info("x").unwrap().holds, 2);
        assert!(reg.unload("x").is_err(), "held");
        // Under another name: refused if it exports anything (a clash).
        let live = mem.live();
        match reg.load("y", &mut SliceSource::new(data)) {
            Ok(y) => {
                assert_eq!(y.nexport(), 0, "a second copy exporting names loaded");
                drop(y);
                reg.unload("y").expect("unload y");
            }
            Err(e) => {
                assert!(matches!(e, Error::Clash { .. }), "{e}");
                assert_eq!(mem.live(), live);
            }
        }
        drop((x, again));
        if bound {
            assert!(reg.unload("prov").is_err(), "depended on");
        }
        reg.unload("x").expect("unload x");
        assert_eq!(reg.info(pid).unwrap().dependents, 0);
        assert_eq!(reg.sweep(), usize::from(bound), "the refused provider goes");
        // Deferred: whatever nothing provides is pending, on traps, and
        // goes with the module.
        let defer = dynld::LoadOptions::new().defer(true);
        if let Ok(z) = reg.load_with("z", &mut SliceSource::new(data), &defer) {
            let pending = z
                .imports()
                .filter(|i| i.provider == Provider::PENDING)
                .inspect(|i| assert!(!i.addr.is_null(), "{} bound to 0", i.name))
                .count();
            let mut listed = 0;
            reg.unresolved(|m, _| {
                assert_eq!(m, "z");
                listed += 1;
            });
            assert_eq!(listed, pending);
            assert_eq!(reg.info("z").unwrap().pending as usize, pending);
            drop(z);
            reg.unload("z").expect("unload z");
            let mut left = 0;
            reg.unresolved(|_, _| left += 1);
            assert_eq!(left, 0, "its traps went with it");
        };
    }
    assert_eq!(mem.live(), 0, "every region given back");
    let v = mem.violations();
    assert!(v.is_empty(), "{v:?}");
}
