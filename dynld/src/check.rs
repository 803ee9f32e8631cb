//! The checks every reader of a module makes: headers, the table
//! directory, names, tables and relocations.
//!
//! The streaming loader and the in-memory [`ModuleView`](crate::ModuleView)
//! both go through these functions, so a module that one accepts the other
//! accepts too. Nothing here reads a source or touches memory: each
//! function takes bytes already read and says what is wrong with them.

use crate::arch::{self, Mode};
use crate::error::{Error, NameProblem, SymName, Table};
use crate::format::{
    align_up, kind, Arch, Dynhdr, Exec, ExpEntry, ImpEntry, MetaEntry, Reloc, RelocDecodeError,
    SymEntry, TableEntry, TypeEntry, DYN_MAGIC, FLAGS_KNOWN, FLAG_LOW2G, FUNC_ENTRY_SIZE,
    MAX_ALIGN, MAX_TABLES, NO_ENTRY, RELOC_MAX_BYTES, SYM_FLAGS_KNOWN, TABLE_REQUIRED, VERSION,
};
use crate::index;
use crate::limits::Limits;
use core::cmp::Ordering;

/// A failed check, its error kept in a [`Slot`]. The loader's phases, and
/// the checks they inline, pass this up rather than the [`Error`] itself:
/// an error is large (it may carry a name), and passing one up through
/// every `?` of an inlined phase costs a copy of it at each; this costs a
/// branch.
pub(crate) struct Failed;

/// Where a failing check keeps its error.
pub(crate) struct Slot(Option<Error>);

impl Slot {
    /// An empty slot.
    #[inline(always)]
    pub const fn new() -> Slot {
        Slot(None)
    }

    /// `r`'s value, or its error kept.
    #[inline(always)]
    pub fn keep<T>(&mut self, r: Result<T, Error>) -> Result<T, Failed> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Keeps `e`; built once, here, for every failure.
    #[cold]
    #[inline(never)]
    pub fn fail(&mut self, e: Error) -> Failed {
        self.0 = Some(e);
        Failed
    }

    /// The error kept, for a `Failed` (which always leaves one).
    #[inline(always)]
    pub fn take(self) -> Error {
        self.0.unwrap_or(Error::Read)
    }

    /// `f`'s result with its error taken out of the slot: for callers
    /// that return an [`Error`].
    #[inline]
    pub fn run<T>(f: impl FnOnce(&mut Slot) -> Result<T, Failed>) -> Result<T, Error> {
        let mut sl = Slot::new();
        f(&mut sl).map_err(|Failed| sl.take())
    }
}

pub(crate) fn bad(what: &'static str) -> Error {
    Error::BadHeader { what }
}

fn limit(what: &'static str, count: u32, max: u32) -> Result<usize, Error> {
    let e = Error::Limit {
        what,
        count: count.into(),
        max: max.into(),
    };
    if count > max {
        return Err(e);
    }
    usize::try_from(count).map_err(|_| e)
}

/// `v` as a size this machine can hold in one slice (at most `isize::MAX`).
fn size(v: u64) -> Result<usize, Error> {
    usize::try_from(v)
        .ok()
        .filter(|&s| s <= isize::MAX as usize)
        .ok_or(Error::TooBig {
            size: v,
            max: isize::MAX as u64,
        })
}

/// The architecture named by an Exec header's magic.
pub(crate) fn arch_of(exec: &Exec) -> Result<Arch, Error> {
    if exec.magic & DYN_MAGIC == 0 {
        return Err(Error::BadMagic { magic: exec.magic });
    }
    Arch::from_magic(exec.magic).ok_or(Error::BadMagic { magic: exec.magic })
}

/// Checks the fat header's 64-bit entry: all ones, as the 32-bit one.
pub(crate) fn fat_entry(fat: [u8; 8]) -> Result<(), Error> {
    if u64::from_be_bytes(fat) != u64::MAX {
        return Err(bad("entry must be all ones (constructors are a table)"));
    }
    Ok(())
}

/// One table as the directory places it in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Part {
    /// File offset (from the module's first byte).
    pub off: u64,
    /// Bytes.
    pub size: usize,
    /// Records (0 for the string table).
    pub count: usize,
}

/// What the headers and the directory say, checked: where each part of
/// the module lies in the file. Memory offsets are [`Placement`]'s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub arch: Arch,
    pub text: usize,
    pub dataoff: usize,
    pub data: usize,
    pub bss: usize,
    /// Text, padding, data and bss.
    pub image: usize,
    /// Alignment the image base needs.
    pub align: usize,
    /// The image must lie below 2 GiB.
    pub low: bool,
    /// File offset of the text.
    pub textoff: u64,
    /// The tables this version defines, by kind; empty where the module
    /// has none.
    parts: [Part; KINDS],
    /// The kinds of the known tables the module has, in file order (the
    /// directory's, which is checked to be the file's), `ntable` of them.
    order: [u8; KINDS],
    ntable: u8,
    /// Where the last table of the directory ends (known kind or not), at
    /// least at the end of the data.
    pub end: u64,
}

impl Header {
    /// A header of nothing, for [`header_into`] to fill.
    pub const EMPTY: Header = Header {
        arch: Arch::I386,
        text: 0,
        dataoff: 0,
        data: 0,
        bss: 0,
        image: 0,
        align: 1,
        low: false,
        textoff: 0,
        parts: [Part {
            off: 0,
            size: 0,
            count: 0,
        }; KINDS],
        order: [0; KINDS],
        ntable: 0,
        end: 0,
    };
}

/// One more than the largest kind this version defines.
const KINDS: usize = kind::DEBUGLINK as usize + 1;

/// Which limit bounds a table's count (for the string table, its size).
#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Free,
    Strings,
    Exports,
    Imports,
    Relocs,
    Funcs,
    #[cfg(feature = "symbols")]
    Symbols,
}

/// What bounds the symbols table: without the `symbols` feature it is
/// skipped unread, and its count is not worth the code.
#[cfg(feature = "symbols")]
const SYMBOLS_BOUND: Bound = Bound::Symbols;
#[cfg(not(feature = "symbols"))]
const SYMBOLS_BOUND: Bound = Bound::Free;

/// What a table of each kind holds, by kind: bytes per record (0 for the
/// string table; for the relocation tables, whose records vary, 2, the
/// smallest), and the limit that bounds it. Kind 0 is never valid.
const RULES: [(u8, Bound); KINDS] = [
    (0, Bound::Free),
    (0, Bound::Strings),
    (ExpEntry::SIZE as u8, Bound::Exports),
    (ImpEntry::SIZE as u8, Bound::Imports),
    (8, Bound::Free),
    (2, Bound::Relocs),
    (2, Bound::Relocs),
    (8, Bound::Free),
    (FUNC_ENTRY_SIZE as u8, Bound::Funcs),
    (FUNC_ENTRY_SIZE as u8, Bound::Funcs),
    (TypeEntry::SIZE as u8, Bound::Free),
    (SymEntry::SIZE as u8, SYMBOLS_BOUND),
    (MetaEntry::SIZE as u8, Bound::Free),
    (0, Bound::Free),
    (0, Bound::Free),
];

macro_rules! parts {
    ($($name:ident = $kind:ident),*) => {
        impl Header {
            $(
                /// The table of this kind (empty if the module has none).
                pub fn $name(&self) -> Part {
                    self.parts[kind::$kind as usize]
                }
            )*
        }
    };
}

parts!(
    strings = STRINGS,
    exports = EXPORTS,
    imports = IMPORTS,
    hashes = IMPORT_HASHES,
    relocs = RELOCS,
    import_relocs = IMPORT_RELOCS,
    index = INDEX,
    init = INIT,
    fini = FINI,
    types = TYPES,
    symbols = SYMBOLS,
    metadata = METADATA,
    unwind = UNWIND,
    debuglink = DEBUGLINK
);

impl Header {
    /// The known tables the module has, in file order.
    pub fn tables(&self) -> impl Iterator<Item = (u16, Part)> + '_ {
        let order = self.order.get(..usize::from(self.ntable)).unwrap_or(&[]);
        order
            .iter()
            .map(|&k| (u16::from(k), self.parts[usize::from(k) % KINDS]))
    }
}

/// What a truncation error says it was reading, for table `kind`.
pub(crate) const fn reading(kind: u16) -> &'static str {
    match kind {
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
        kind::METADATA => "metadata",
        kind::UNWIND => "unwind information",
        kind::DEBUGLINK => "debug link",
        _ => "table",
    }
}

/// The first part of the module, in file order, that does not end within
/// `avail` bytes of its start: what a loader reading a source of that
/// length would find truncated.
pub(crate) fn first_short(h: &Header, avail: u64) -> Option<&'static str> {
    let text_end = h.textoff + h.text as u64;
    if h.text != 0 && text_end > avail {
        return Some("text");
    }
    if h.data != 0 && text_end + h.data as u64 > avail {
        return Some("data");
    }
    let known = h
        .tables()
        .find(|(_, p)| p.off + p.size as u64 > avail)
        .map(|(k, _)| reading(k));
    // Tables of unknown kinds are not read, but a module shorter than its
    // directory says is refused where the length is known. (A loader
    // reading a source of unknown length skips them unseen.)
    known.or((h.end > avail).then_some("table"))
}

/// Bytes of the directory `h` announces, checked against the limits
/// before the loader reads it.
pub(crate) fn directory_size(h: &Dynhdr, lim: &Limits) -> Result<usize, Error> {
    if h.version != VERSION {
        return Err(Error::BadVersion { version: h.version });
    }
    if h.ntable > MAX_TABLES {
        return Err(Error::Limit {
            what: "table count",
            count: h.ntable.into(),
            max: MAX_TABLES.into(),
        });
    }
    let need = Dynhdr::SIZE + h.ntable as usize * TableEntry::SIZE;
    if (h.hdrsize as usize) < need || h.hdrsize > lim.max_header {
        return Err(bad("extension header size"));
    }
    Ok(h.ntable as usize * TableEntry::SIZE)
}

/// The table of `kind`, for error messages.
fn table_error(kind: u16, what: &'static str) -> Error {
    Error::BadTable { kind, what }
}

/// Checks directory entry `e` of a known kind against its kind's rule and
/// the limits.
fn entry(e: &TableEntry, lim: &Limits) -> Result<(), Error> {
    let (rec, bound) = RULES[e.kind as usize];
    let (count, size) = (u64::from(e.count), u64::from(e.size));
    let (what, max, n) = match bound {
        Bound::Free => ("", u32::MAX, 0),
        Bound::Strings => ("string table size", lim.max_strings, e.size),
        Bound::Exports => ("export count", lim.max_exports, e.count),
        Bound::Imports => ("import count", lim.max_imports, e.count),
        Bound::Relocs => ("relocation count", lim.max_relocs, e.count),
        Bound::Funcs => ("constructor or destructor count", lim.max_relocs, e.count),
        #[cfg(feature = "symbols")]
        Bound::Symbols => ("symbol count", lim.max_relocs, e.count),
    };
    limit(what, n, max)?;
    let fits = match (bound, rec) {
        // The unwind and debug link tables: bytes, no records.
        (Bound::Strings, _) | (Bound::Free, 0) => count == 0,
        (Bound::Relocs, 2) => size >= 2 * count && size <= RELOC_MAX_BYTES as u64 * count,
        _ => count * u64::from(rec) == size,
    };
    if !fits {
        return Err(table_error(e.kind, "size disagrees with the count"));
    }
    Ok(())
}

/// Checks the headers and the directory (`dir`, the raw entries) of a
/// module for `arch`, its magic and [`directory_size`] having been checked.
pub(crate) fn header(
    arch: Arch,
    exec: &Exec,
    h: &Dynhdr,
    dir: &[u8],
    lim: &Limits,
) -> Result<Header, Error> {
    let mut hd = Header::EMPTY;
    Slot::run(|sl| header_into(&mut hd, arch, exec, h, dir, lim, sl))?;
    Ok(hd)
}

/// [`header`] into `hd`, in place: the loader's header is large, and this
/// way it is not copied through a `Result`. On error `hd` holds part of
/// what was read.
pub(crate) fn header_into(
    hd: &mut Header,
    arch: Arch,
    exec: &Exec,
    h: &Dynhdr,
    dir: &[u8],
    lim: &Limits,
    sl: &mut Slot,
) -> Result<(), Failed> {
    if h.flags & !FLAGS_KNOWN != 0 {
        return sl.keep(Err(bad("unknown flags")));
    }
    if exec.syms != 0 || exec.spsz != 0 || exec.pcsz != 0 {
        return sl.keep(Err(bad("syms, spsz and pcsz must be 0")));
    }
    if exec.entry != NO_ENTRY {
        return sl.keep(Err(bad(
            "entry must be all ones (constructors are a table)",
        )));
    }
    if !h.align.is_power_of_two() || h.align > MAX_ALIGN {
        return sl.keep(Err(bad("alignment")));
    }
    if h.dataoff < exec.text {
        return sl.keep(Err(bad("data overlaps text")));
    }
    let image = u64::from(h.dataoff) + u64::from(exec.data) + u64::from(exec.bss);
    if lim.max_size != 0 && image > lim.max_size {
        return sl.keep(Err(Error::TooBig {
            size: image,
            max: lim.max_size,
        }));
    }
    let textoff = arch.exec_size() as u64 + u64::from(h.hdrsize);
    let mut end = textoff + u64::from(exec.text) + u64::from(exec.data);
    *hd = Header::EMPTY;
    let (parts, order) = (&mut hd.parts, &mut hd.order);
    let mut ntable = 0u8;
    for raw in dir.chunks_exact(TableEntry::SIZE) {
        let e = sl.keep(TableEntry::parse(raw).ok_or(bad("table directory")))?;
        let required = e.flags & TABLE_REQUIRED != 0;
        let known = kind::known(e.kind);
        let wrong = if e.flags & !TABLE_REQUIRED != 0 {
            Some("unknown table flags")
        } else if !known && required {
            return sl.keep(Err(Error::UnknownTable { kind: e.kind }));
        } else if known && required != kind::required(e.kind) {
            Some("required flag disagrees with the kind")
        } else if known && parts[e.kind as usize].size != 0 {
            Some("listed twice in the directory")
        } else if e.size == 0 {
            Some("empty table in the directory")
        } else if u64::from(e.offset) < end {
            Some("out of order, or overlapping the part before it")
        } else {
            None
        };
        if let Some(what) = wrong {
            return sl.keep(Err(table_error(e.kind, what)));
        }
        end = u64::from(e.offset) + u64::from(e.size);
        if known {
            sl.keep(entry(&e, lim))?;
            parts[e.kind as usize] = Part {
                off: e.offset.into(),
                size: e.size as usize,
                count: e.count as usize,
            };
            // A known kind is listed once (checked above), so there is room.
            order[usize::from(ntable) % KINDS] = e.kind as u8;
            ntable += 1;
        }
    }
    hd.ntable = ntable;
    hd.arch = arch;
    hd.text = exec.text as usize;
    hd.dataoff = h.dataoff as usize;
    hd.data = exec.data as usize;
    hd.bss = exec.bss as usize;
    hd.image = sl.keep(size(image))?;
    hd.align = h.align as usize;
    hd.low = h.flags & FLAG_LOW2G != 0;
    hd.textoff = textoff;
    hd.end = end;
    let (nexport, nimport) = (hd.exports().count, hd.imports().count);
    let wrong = if hd.hashes().size != 0 && hd.hashes().count != nimport {
        Some((kind::IMPORT_HASHES, "not one hash per import"))
    } else if hd.types().size != 0 && hd.types().count != nexport + nimport {
        Some((kind::TYPES, "not one entry per symbol"))
    } else if (nexport != 0
        || nimport != 0
        || hd.types().size != 0
        || hd.metadata().size != 0
        || cfg!(feature = "symbols") && hd.symbols().size != 0)
        && hd.strings().size == 0
    {
        Some((kind::STRINGS, "symbols without a string table"))
    } else {
        None
    };
    if let Some((k, what)) = wrong {
        return sl.keep(Err(table_error(k, what)));
    }
    // The index: a power of two of 8-byte slots, more than there are
    // exports and at most twice what the writer makes.
    let slots = hd.index().count;
    if hd.index().size != 0
        && (!slots.is_power_of_two()
            || slots <= nexport
            || slots > index::slots_for(nexport).saturating_mul(2))
    {
        return sl.keep(Err(Error::BadIndex {
            table: Table::Export,
            what: "slot count not a power of two, or too small or too large",
        }));
    }
    Ok(())
}

/// Where a loaded module's parts lie in its memory region:
///
/// ```text
/// image | strings | exports | index | types | init | fini | symbols | metadata || imports | import relocs | bindings
/// ```
///
/// Everything before `imps` stays for the module's life; from `imps` on is
/// what [`Module::free_imports`](crate::Module::free_imports) gives back.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Placement {
    pub text: usize,
    pub dataoff: usize,
    pub data: usize,
    pub bss: usize,
    pub image: usize,
    pub strs: usize,
    pub strsize: usize,
    pub exps: usize,
    pub nexport: usize,
    pub idx: usize,
    pub slots: usize,
    pub types: usize,
    /// Type descriptions are present.
    pub has_types: bool,
    pub init: usize,
    pub ninit: usize,
    pub fini: usize,
    pub nfini: usize,
    /// The symbols table (feature `symbols`; `nsym` 0 without one).
    pub syms: usize,
    pub nsym: usize,
    /// The metadata table (`metasize` 0 without one).
    pub meta: usize,
    pub metasize: usize,
    /// The unwind table (feature `gdb`; `unwindsize` 0 without one).
    pub unwind: usize,
    pub unwindsize: usize,
    /// The debug link (feature `gdb`; `linksize` 0 without one).
    pub link: usize,
    pub linksize: usize,
    pub imps: usize,
    pub nimport: usize,
    pub irel: usize,
    pub irelsize: usize,
    pub nirel: usize,
    pub binds: usize,
    pub total: usize,
    /// The image must lie below 2 GiB.
    pub low: bool,
    /// Alignment the region needs.
    pub align: usize,
}

/// Bytes of one import's binding: its address and its provider.
pub(crate) const BINDING_SIZE: usize = 16;

impl Placement {
    /// The memory layout of a module with header `h`.
    pub fn of(h: &Header) -> Result<Placement, Error> {
        let mut p = Placement::default();
        p.lay_out(h)?;
        Ok(p)
    }

    /// Makes this the memory layout of a module with header `h`. In place
    /// (the loader's placement is large, and this way it is not copied
    /// through a `Result`).
    pub fn lay_out(&mut self, h: &Header) -> Result<(), Error> {
        // Sums of 32-bit sizes, so far from overflowing a u64; each offset
        // is checked, in rising order, to fit a slice.
        let align8 = |v: u64| align_up(v, 8).unwrap_or(u64::MAX);
        let len = |p: Part| p.size as u64;
        let strs = align8(h.image as u64);
        let exps = strs + len(h.strings());
        let idx = align8(exps + len(h.exports()));
        let types = idx + len(h.index());
        // Without the `descs` feature the descriptions are skipped unread.
        let init = types
            + if cfg!(feature = "descs") {
                len(h.types())
            } else {
                0
            };
        let fini = init + len(h.init());
        let syms = fini + len(h.fini());
        // Without the `symbols` feature the symbols table is skipped unread.
        let meta = syms
            + if cfg!(feature = "symbols") {
                len(h.symbols())
            } else {
                0
            };
        let unwind = meta + len(h.metadata());
        // Kept only for the debugger's file.
        let gdb = cfg!(all(feature = "gdb", unix));
        let link = unwind + if gdb { len(h.unwind()) } else { 0 };
        let imps = link + if gdb { len(h.debuglink()) } else { 0 };
        let irel = imps + len(h.imports());
        let binds = align8(irel + len(h.import_relocs()));
        let total = binds + BINDING_SIZE as u64 * h.imports().count as u64;
        let offsets = [
            strs, exps, idx, types, init, fini, syms, meta, imps, irel, binds, total,
        ];
        for v in offsets {
            size(v)?;
        }
        // All fit (checked above), so the casts are exact; as do the
        // unwind table's and the debug link's, at most `imps`.
        let [strs, exps, idx, types, init, fini, syms, meta, imps, irel, binds, total] =
            offsets.map(|v| v as usize);
        let (unwind, link) = (unwind as usize, link as usize);
        self.strs = strs;
        self.exps = exps;
        self.idx = idx;
        self.types = types;
        self.init = init;
        self.fini = fini;
        self.syms = syms;
        self.meta = meta;
        self.metasize = h.metadata().size;
        self.unwind = unwind;
        self.unwindsize = if gdb { h.unwind().size } else { 0 };
        self.link = link;
        self.linksize = if gdb { h.debuglink().size } else { 0 };
        self.imps = imps;
        self.irel = irel;
        self.binds = binds;
        self.total = total;
        self.text = h.text;
        self.dataoff = h.dataoff;
        self.data = h.data;
        self.bss = h.bss;
        self.image = h.image;
        self.strsize = h.strings().size;
        self.nexport = h.exports().count;
        self.slots = h.index().count;
        self.has_types = cfg!(feature = "descs") && h.types().size != 0;
        self.ninit = h.init().count;
        self.nfini = h.fini().count;
        self.nsym = match cfg!(feature = "symbols") {
            true => h.symbols().count,
            false => 0,
        };
        self.nimport = h.imports().count;
        self.irelsize = h.import_relocs().size;
        self.nirel = h.import_relocs().count;
        self.low = h.low;
        self.align = h.align.max(8);
        Ok(())
    }

    /// Where table `kind` goes in memory, if the loader keeps it.
    pub fn place(&self, kind: u16) -> Option<usize> {
        Some(match kind {
            kind::STRINGS => self.strs,
            kind::EXPORTS => self.exps,
            // Without the `index` feature the index is skipped unread.
            kind::INDEX if cfg!(feature = "index") => self.idx,
            kind::TYPES if cfg!(feature = "descs") => self.types,
            kind::INIT => self.init,
            kind::FINI => self.fini,
            kind::SYMBOLS if cfg!(feature = "symbols") => self.syms,
            kind::METADATA => self.meta,
            kind::UNWIND if cfg!(all(feature = "gdb", unix)) => self.unwind,
            kind::DEBUGLINK if cfg!(all(feature = "gdb", unix)) => self.link,
            kind::IMPORTS => self.imps,
            kind::IMPORT_RELOCS => self.irel,
            // Import hashes wait in the bindings' place until binding
            // reads them; the bindings are written over them.
            kind::IMPORT_HASHES => self.binds + BINDING_SIZE / 2 * self.nimport,
            _ => return None,
        })
    }
}

/// The bytes of the name at `off`/`len` in `strs`: checked present,
/// non-empty and within the length limit, not yet for content.
#[inline]
fn name_bytes(
    strs: &[u8],
    off: u32,
    len: u32,
    max: u32,
    table: Table,
    index: usize,
) -> Result<&[u8], Error> {
    let fail = |problem| Error::BadName {
        table,
        index: index as u32,
        problem,
    };
    if len == 0 {
        return Err(fail(NameProblem::Empty));
    }
    if len > max {
        return Err(fail(NameProblem::TooLong));
    }
    (off as usize)
        .checked_add(len as usize)
        .and_then(|end| strs.get(off as usize..end))
        .ok_or(fail(NameProblem::OutOfBounds))
}

/// Import `i`'s entry and name bytes, with the checks that cost nothing
/// per byte. Binding needs no more: a name equal to a host export's is
/// UTF-8 without NUL, and imports bound to strictly rising positions of
/// the sorted host table are sorted and unique. When binding fails,
/// [`import_error`] makes the full checks to say why.
#[inline]
pub(crate) fn import_bytes<'a>(
    strs: &'a [u8],
    raw: &[u8],
    i: usize,
    lim: &Limits,
) -> Result<(&'a [u8], ImpEntry), Error> {
    let at = i.saturating_mul(ImpEntry::SIZE);
    let e = raw
        .get(at..at.saturating_add(ImpEntry::SIZE))
        .and_then(ImpEntry::parse)
        .ok_or(bad("table entry"))?;
    let b = name_bytes(strs, e.name, e.namelen, lim.max_name, Table::Import, i)?;
    Ok((b, e))
}

/// [`import_bytes`] for the hot path of binding: the name's bytes and the
/// signature, or `None` where [`import_bytes`] has an error (which
/// [`import_error`] then reports).
#[inline(always)]
pub(crate) fn import_fast<'a>(
    strs: &'a [u8],
    raw: &[u8],
    i: usize,
    max_name: u32,
) -> Option<(&'a [u8], u32)> {
    let at = i.checked_mul(ImpEntry::SIZE)?;
    let e = raw.get(at..at.checked_add(ImpEntry::SIZE)?)?;
    let word = |k: usize| u32::from_be_bytes([e[k], e[k + 1], e[k + 2], e[k + 3]]);
    let (off, len) = (word(0) as usize, word(4));
    if len == 0 || len > max_name {
        return None;
    }
    Some((strs.get(off..off.checked_add(len as usize)?)?, word(8)))
}

/// Import `i`'s name, fully checked.
pub(crate) fn import_name<'a>(
    strs: &'a [u8],
    raw: &[u8],
    i: usize,
    lim: &Limits,
) -> Result<&'a str, Error> {
    let (_, e) = import_bytes(strs, raw, i, lim)?;
    name_at(strs, e.name, e.namelen, lim.max_name, Table::Import, i)
}

/// Why import `i` did not bind, the earlier ones having bound in order:
/// its name is malformed, out of order, or not exported.
pub(crate) fn import_error(strs: &[u8], raw: &[u8], i: usize, lim: &Limits) -> Error {
    let name = match import_name(strs, raw, i, lim) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let prev = i
        .checked_sub(1)
        .and_then(|p| import_name(strs, raw, p, lim).ok());
    if let Err(e) = check_order(Table::Import, prev, name) {
        return e;
    }
    Error::Undefined {
        name: SymName::new(name),
    }
}

/// The name at `off`/`len` in `strs`, checked.
fn name_at(
    strs: &[u8],
    off: u32,
    len: u32,
    max: u32,
    table: Table,
    index: usize,
) -> Result<&str, Error> {
    let b = name_bytes(strs, off, len, max, table, index)?;
    let fail = |problem| Error::BadName {
        table,
        index: index as u32,
        problem,
    };
    if b.contains(&0) {
        return Err(fail(NameProblem::Nul));
    }
    core::str::from_utf8(b).map_err(|_| fail(NameProblem::NotUtf8))
}

fn check_order(table: Table, prev: Option<&str>, name: &str) -> Result<(), Error> {
    match prev.map(|p| p.cmp(name)) {
        None | Some(Ordering::Less) => Ok(()),
        Some(Ordering::Equal) => Err(Error::Duplicate {
            table,
            name: SymName::new(name),
        }),
        Some(Ordering::Greater) => Err(Error::Unsorted {
            table,
            name: SymName::new(name),
        }),
    }
}

/// Walks a symbol table's raw entries, checking names and order.
struct Entries<'a, T> {
    strs: &'a [u8],
    raw: core::slice::ChunksExact<'a, u8>,
    index: usize,
    prev: Option<&'a str>,
    max_name: u32,
    table: Table,
    parse: fn(&[u8]) -> Option<T>,
    name: fn(&T) -> (u32, u32),
}

impl<'a, T> Iterator for Entries<'a, T> {
    type Item = Result<(&'a str, T), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.raw.next()?;
        let i = self.index;
        self.index += 1;
        Some((|| {
            let e = (self.parse)(raw).ok_or(bad("table entry"))?;
            let (off, len) = (self.name)(&e);
            let name = name_at(self.strs, off, len, self.max_name, self.table, i)?;
            check_order(self.table, self.prev, name)?;
            self.prev = Some(name);
            Ok((name, e))
        })())
    }
}

/// Checks the export entries: names, order, and each address in the text
/// or in data and bss.
pub(crate) fn exports(strs: &[u8], raw: &[u8], h: &Header, lim: &Limits) -> Result<(), Error> {
    let mut prev = None;
    for (i, rec) in raw.chunks_exact(ExpEntry::SIZE).enumerate() {
        let e = ExpEntry::parse(rec).ok_or(bad("table entry"))?;
        let name = name_at(strs, e.name, e.namelen, lim.max_name, Table::Export, i)?;
        check_order(Table::Export, prev, name)?;
        prev = Some(name);
        let v = e.value as usize;
        if v >= h.image || (v >= h.text && v < h.dataoff) {
            return Err(Error::BadExport {
                name: SymName::new(name),
                value: e.value,
            });
        }
    }
    Ok(())
}

/// The import entries with checked names, in checked order.
pub(crate) fn imports<'a>(
    strs: &'a [u8],
    raw: &'a [u8],
    lim: &Limits,
) -> impl Iterator<Item = Result<(&'a str, ImpEntry), Error>> + 'a {
    Entries {
        strs,
        raw: raw.chunks_exact(ImpEntry::SIZE),
        index: 0,
        prev: None,
        max_name: lim.max_name,
        table: Table::Import,
        parse: ImpEntry::parse,
        name: |e| (e.name, e.namelen),
    }
}

/// Slot `i` of a module's index, as stored (big-endian).
pub(crate) fn slot(raw: &[u8], i: usize) -> Option<u64> {
    let b = raw.get(i.checked_mul(8)?..)?.get(..8)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    Some(u64::from_be_bytes(w))
}

/// Checks a module's index (its raw bytes) against its export count.
pub(crate) fn index(raw: &[u8], nexport: usize) -> Result<(), Error> {
    if raw.is_empty() {
        return Ok(());
    }
    index::check_by(raw.len() / 8, |i| slot(raw, i).unwrap_or(u64::MAX), nexport)
        .map_err(|e| e.at(Table::Export))
}

/// Entry `i` of a constructor or destructor table: an image offset.
pub(crate) fn func(raw: &[u8], i: usize) -> Option<u32> {
    let at = i.checked_mul(FUNC_ENTRY_SIZE)?;
    let b = raw.get(at..at.checked_add(FUNC_ENTRY_SIZE)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks a constructor or destructor table: every entry in the text.
pub(crate) fn funcs(kind: u16, raw: &[u8], text: usize) -> Result<(), Error> {
    for i in 0..raw.len() / FUNC_ENTRY_SIZE {
        let off = func(raw, i).ok_or(table_error(kind, "entry"))?;
        if off as usize >= text {
            return Err(Error::BadFunction {
                kind,
                index: i as u32,
                value: off,
            });
        }
    }
    Ok(())
}

/// Type description `i` (exports first, then imports): a string of the
/// string table, or `None` (no description, or a malformed one).
pub(crate) fn type_desc<'a>(raw: &[u8], strs: &'a [u8], i: usize) -> Option<&'a str> {
    let at = i.checked_mul(TypeEntry::SIZE)?;
    let e = TypeEntry::parse(raw.get(at..at.checked_add(TypeEntry::SIZE)?)?)?;
    if e.len == 0 {
        return None;
    }
    let b = strs.get(e.name as usize..(e.name as usize).checked_add(e.len as usize)?)?;
    core::str::from_utf8(b).ok()
}

/// Checks the type descriptions: each lies in the string table and is
/// UTF-8. Whether it hashes to its symbol's signature is checked where it
/// is shown (in error messages, with the `alloc` feature): one that does
/// not is not shown.
pub(crate) fn types(raw: &[u8], strs: &[u8]) -> Result<(), Error> {
    for (i, rec) in raw.chunks_exact(TypeEntry::SIZE).enumerate() {
        let e = TypeEntry::parse(rec).ok_or(table_error(kind::TYPES, "entry"))?;
        if e.len != 0 && type_desc(raw, strs, i).is_none() {
            return Err(table_error(
                kind::TYPES,
                "description outside the string table, or not UTF-8",
            ));
        }
    }
    Ok(())
}

/// Symbols table entry `i`.
pub(crate) fn sym_entry(raw: &[u8], i: usize) -> Option<SymEntry> {
    let at = i.checked_mul(SymEntry::SIZE)?;
    SymEntry::parse(raw.get(at..at.checked_add(SymEntry::SIZE)?)?)
}

/// Checks the symbols table: each entry's flags, its name (in the string
/// table, UTF-8, no NUL, within the name limit), its bytes (inside the
/// text, or inside data and bss, with checked arithmetic), and the order
/// (non-decreasing values).
/// Checks the unwind table's head (see [`kind::UNWIND`]): 8 bytes, the
/// place at or past the image's end, the second word 0. The rest is
/// handed to a debugger, never interpreted.
pub(crate) fn unwind(raw: &[u8], h: &Header) -> Result<(), Error> {
    if raw.is_empty() {
        return Ok(());
    }
    let fail = |what| table_error(kind::UNWIND, what);
    let word = |i: usize| {
        raw.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(at), Some(zero)) = (word(0), word(4)) else {
        return Err(fail("shorter than its head"));
    };
    if (at as usize) < h.image || zero != 0 {
        return Err(fail("placed inside the image"));
    }
    if u64::from(at) + raw.len() as u64 - 8 > u64::from(u32::MAX) {
        return Err(fail("placed past 4 GiB"));
    }
    Ok(())
}

/// Checks the debug link table (see [`kind::DEBUGLINK`]): a CRC and a
/// path of at least one byte, UTF-8 without NUL.
pub(crate) fn debuglink(raw: &[u8]) -> Result<(), Error> {
    if raw.is_empty() {
        return Ok(());
    }
    let fail = |what| table_error(kind::DEBUGLINK, what);
    let path = raw
        .get(4..)
        .filter(|p| !p.is_empty())
        .ok_or(fail("no path"))?;
    match core::str::from_utf8(path) {
        Ok(p) if !p.contains('\0') => Ok(()),
        _ => Err(fail("path not UTF-8, or with a NUL")),
    }
}

pub(crate) fn symbols(raw: &[u8], strs: &[u8], h: &Header, lim: &Limits) -> Result<(), Error> {
    let fail = |what| table_error(kind::SYMBOLS, what);
    let mut prev = 0u32;
    for rec in raw.chunks_exact(SymEntry::SIZE) {
        let e = SymEntry::parse(rec).ok_or(fail("entry"))?;
        if e.flags & !SYM_FLAGS_KNOWN != 0 {
            return Err(fail("unknown symbol flags"));
        }
        if e.value < prev {
            return Err(fail("not sorted by value"));
        }
        prev = e.value;
        if e.size == 0 {
            return Err(fail("symbol of size 0"));
        }
        let (start, end) = (u64::from(e.value), u64::from(e.value) + u64::from(e.size));
        let in_text = end <= h.text as u64;
        let in_data = start >= h.dataoff as u64 && end <= h.image as u64;
        if !in_text && !in_data {
            return Err(fail("symbol outside the text, data and bss"));
        }
        // The name, checked as the exports' are (their index and table
        // are the export table's in the error; here the table's kind says
        // which table).
        match name_at(strs, e.name, e.namelen, lim.max_name, Table::Export, 0) {
            Ok(_) => {}
            Err(Error::BadName { problem, .. }) => {
                return Err(fail(match problem {
                    NameProblem::Empty => "empty name",
                    NameProblem::OutOfBounds => "name outside the string table",
                    NameProblem::TooLong => "name too long",
                    NameProblem::Nul => "NUL byte in a name",
                    NameProblem::NotUtf8 => "name is not UTF-8",
                }))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Which relocation table a record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Modes that add the load base.
    Base,
    /// Modes that add an import's address.
    Import,
}

/// Decodes and checks one relocation stream, record by record: the one
/// walker the loader, [`ModuleView`](crate::ModuleView) and the tool
/// share.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walker {
    pub arch: Arch,
    pub stream: Stream,
    pub text: usize,
    pub dataoff: usize,
    pub data_end: usize,
    pub nimport: usize,
    pub count: usize,
    /// Records decoded so far.
    pub index: u32,
    /// Offset of the last record's field, and where it ends.
    pub prev_off: u32,
    pub prev_end: u64,
}

impl Walker {
    pub fn new(h: &Header, stream: Stream) -> Walker {
        Walker {
            arch: h.arch,
            stream,
            text: h.text,
            dataoff: h.dataoff,
            data_end: h.dataoff + h.data,
            nimport: h.imports().count,
            count: match stream {
                Stream::Base => h.relocs().count,
                Stream::Import => h.import_relocs().count,
            },
            index: 0,
            prev_off: 0,
            prev_end: 0,
        }
    }

    /// A walker over the import relocations a module kept in memory.
    pub fn kept(p: &Placement, arch: Arch) -> Walker {
        Walker {
            arch,
            stream: Stream::Import,
            text: p.text,
            dataoff: p.dataoff,
            data_end: p.dataoff + p.data,
            nimport: p.nimport,
            count: p.nirel,
            index: 0,
            prev_off: 0,
            prev_end: 0,
        }
    }

    /// Whether every record has been decoded.
    pub fn done(&self) -> bool {
        self.index as usize >= self.count
    }

    /// Decodes the next record from the front of `b` and checks it;
    /// returns it, its mode and the bytes it took. Not inlined: the
    /// loader's two relocation loops and the in-memory reader share it.
    #[inline(never)]
    pub fn next(&mut self, b: &[u8]) -> Result<(Reloc, &'static Mode, usize), Error> {
        let index = self.index;
        let (r, used) = Reloc::decode(b, self.prev_off).map_err(|e| match e {
            RelocDecodeError::Short => Error::BadReloc {
                index,
                what: "record runs past the end of the stream",
            },
            RelocDecodeError::BadWidth => Error::BadReloc {
                index,
                what: "reserved offset width",
            },
            RelocDecodeError::Overflow => Error::RelocOutOfImage {
                index,
                offset: u32::MAX,
            },
        })?;
        let mode = self.check(&r)?;
        self.prev_off = r.offset;
        self.prev_end = u64::from(r.offset) + mode.width as u64;
        self.index += 1;
        Ok((r, mode, used))
    }

    /// Checks record `self.index` against the architecture, the image, the
    /// stream and the end of the previous field; returns its mode.
    #[inline]
    fn check(&self, r: &Reloc) -> Result<&'static Mode, Error> {
        let index = self.index;
        let mode = arch::mode(self.arch, r.mode).ok_or(Error::BadRelocMode {
            index,
            mode: r.mode,
            arch: self.arch,
        })?;
        let off = u64::from(r.offset);
        if index > 0 && off < self.prev_end {
            return Err(Error::BadReloc {
                index,
                what: "out of order or overlapping the previous one",
            });
        }
        let end = off + mode.width as u64;
        let in_text = end <= self.text as u64;
        let in_data = off >= self.dataoff as u64 && end <= self.data_end as u64;
        if !in_text && !in_data {
            return Err(Error::RelocOutOfImage {
                index,
                offset: r.offset,
            });
        }
        match (self.stream, mode.import, r.import) {
            (Stream::Base, false, None) => Ok(mode),
            (Stream::Import, true, Some(i)) if (i as usize) < self.nimport => Ok(mode),
            (Stream::Import, true, Some(i)) => Err(Error::BadImportIndex {
                index,
                import: i,
                nimport: self.nimport as u32,
            }),
            (Stream::Import, false, _) => Err(Error::BadReloc {
                index,
                what: "mode that adds the base in the import relocations",
            }),
            (Stream::Base, true, _) => Err(Error::BadReloc {
                index,
                what: "mode that adds an import in the base relocations",
            }),
            (_, true, None) => Err(Error::BadReloc {
                index,
                what: "mode needs an import index",
            }),
            (_, false, Some(_)) => Err(Error::BadReloc {
                index,
                what: "import index on a mode that takes none",
            }),
        }
    }

    /// The error for bytes left after the last record.
    pub fn trailing(&self) -> Error {
        Error::BadReloc {
            index: self.count as u32,
            what: "bytes left over after the last record",
        }
    }
}

/// The records of a relocation stream held in memory, decoded and checked.
pub(crate) struct Records<'a> {
    pub bytes: &'a [u8],
    pub walker: Walker,
    pub failed: bool,
}

impl Iterator for Records<'_> {
    type Item = Result<(Reloc, &'static Mode), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.walker.done() {
            self.failed = true;
            return (!self.bytes.is_empty()).then(|| Err(self.walker.trailing()));
        }
        Some(match self.walker.next(self.bytes) {
            Ok((r, mode, used)) => {
                self.bytes = self.bytes.get(used..).unwrap_or(&[]);
                Ok((r, mode))
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        })
    }
}
