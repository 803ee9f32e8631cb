//! The checks every reader of a module makes: headers, tables, relocations.
//!
//! The streaming loader and the in-memory [`ModuleView`](crate::ModuleView)
//! both go through these functions, so a module that one accepts the other
//! accepts too.

use crate::arch::{self, Mode};
use crate::error::{Error, NameProblem, SymName, Table};
use crate::format::{
    align_up, Arch, Dynhdr, Exec, ExpEntry, ImpEntry, Reloc, RelocDecodeError, DYN_MAGIC,
    FLAGS_KNOWN, FLAG_IMPORT_HASHES, MAX_ALIGN, NO_ENTRY, RELOC_MAX_BYTES, VERSION,
};
use crate::index;
use crate::load::Limits;
use core::cmp::Ordering;

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

/// Checks the fat header's 64-bit entry against the 32-bit one.
pub(crate) fn fat_entry(exec: &Exec, fat: [u8; 8]) -> Result<(), Error> {
    let want = if exec.entry == NO_ENTRY {
        u64::MAX
    } else {
        exec.entry.into()
    };
    if u64::from_be_bytes(fat) != want {
        return Err(bad("64-bit entry disagrees with entry"));
    }
    Ok(())
}

/// Where a module's parts are: in the file, and in its memory block
/// (image, then strings, exports, imports, bindings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub text: usize,
    pub dataoff: usize,
    pub data: usize,
    pub bss: usize,
    pub image: usize,
    pub strs: usize,
    pub strsize: usize,
    pub exps: usize,
    pub nexport: usize,
    pub imps: usize,
    pub nimport: usize,
    /// The import table is followed by the imports' name hashes
    /// (`FLAG_IMPORT_HASHES`), `8 * nimport` bytes.
    pub import_hashes: bool,
    pub binds: usize,
    pub total: usize,
    pub nreloc: usize,
    /// Bytes from the module's start to the text.
    pub textoff: u64,
    pub stroff: u64,
    pub expoff: u64,
    pub impoff: u64,
    pub reloff: u64,
    pub relsize: u64,
    /// The hash index: file offset, bytes (0 = none), and place in memory
    /// (after the bindings).
    pub idxoff: u64,
    pub idxsize: usize,
    pub idx: usize,
    pub entry: Option<u32>,
    /// The image must lie below 2 GiB.
    pub low: bool,
}

impl Layout {
    pub fn exp_bytes(&self) -> usize {
        self.nexport * ExpEntry::SIZE
    }
    pub fn imp_bytes(&self) -> usize {
        self.nimport * ImpEntry::SIZE
    }
    /// Where the import hashes start in the file (right after the import
    /// table), and their bytes (0 when the module has none).
    pub fn import_hashes_at(&self) -> (u64, usize) {
        let len = if self.import_hashes {
            8 * self.nimport
        } else {
            0
        };
        (self.impoff + self.imp_bytes() as u64, len)
    }
}

/// Checks the headers; `hdrlen` is the bytes before the extension header.
pub(crate) fn layout(exec: &Exec, h: &Dynhdr, hdrlen: u64, lim: &Limits) -> Result<Layout, Error> {
    if h.version != VERSION {
        return Err(Error::BadVersion { version: h.version });
    }
    if (h.hdrsize as usize) < Dynhdr::SIZE || h.hdrsize > lim.max_header {
        return Err(bad("extension header size"));
    }
    if h.flags & !FLAGS_KNOWN != 0 {
        return Err(bad("unknown flags"));
    }
    if exec.syms != 0 || exec.spsz != 0 || exec.pcsz != 0 {
        return Err(bad("syms, spsz and pcsz must be 0"));
    }
    if !h.align.is_power_of_two() || h.align > MAX_ALIGN {
        return Err(bad("alignment"));
    }
    if h.dataoff < exec.text {
        return Err(bad("data overlaps text"));
    }
    if exec.entry != NO_ENTRY && exec.entry >= exec.text {
        return Err(bad("entry outside text"));
    }
    let image = u64::from(h.dataoff) + u64::from(exec.data) + u64::from(exec.bss);
    if lim.max_size != 0 && image > lim.max_size {
        return Err(Error::TooBig {
            size: image,
            max: lim.max_size,
        });
    }
    let nexport = limit("export count", h.nexport, lim.max_exports)?;
    let nimport = limit("import count", h.nimport, lim.max_imports)?;
    let nreloc = limit("relocation count", h.nreloc, lim.max_relocs)?;
    let strsize = limit("string table size", h.strsize, lim.max_strings)?;

    // The file's parts come in order, each after the last.
    let textoff = hdrlen + u64::from(h.hdrsize);
    let data_end = textoff + u64::from(exec.text) + u64::from(exec.data);
    let exp_bytes = nexport as u64 * ExpEntry::SIZE as u64;
    let imp_bytes = nimport as u64 * ImpEntry::SIZE as u64;
    let import_hashes = h.flags & FLAG_IMPORT_HASHES != 0;
    let hash_bytes = if import_hashes { 8 * nimport as u64 } else { 0 };
    let (stroff, expoff, impoff, reloff) = (
        u64::from(h.stroff),
        u64::from(h.expoff),
        u64::from(h.impoff),
        u64::from(h.reloff),
    );
    if stroff < data_end
        || expoff < stroff + strsize as u64
        || impoff < expoff + exp_bytes
        || reloff < impoff + imp_bytes + hash_bytes
    {
        return Err(bad("tables out of order or overlapping"));
    }
    let relsize = u64::from(h.relsize);
    if relsize < 2 * nreloc as u64 || relsize > RELOC_MAX_BYTES as u64 * nreloc as u64 {
        return Err(bad("relocation stream size disagrees with count"));
    }
    // The index, if any, comes last: a power of two of 8-byte slots, more
    // than there are exports and at most twice what the writer makes.
    let (idxoff, idxsize) = (u64::from(h.idxoff), h.idxsize as usize);
    if idxsize == 0 {
        if idxoff != 0 {
            return Err(bad("index offset without an index"));
        }
    } else {
        let slots = idxsize / 8;
        if idxsize % 8 != 0
            || !slots.is_power_of_two()
            || slots <= nexport
            || slots > index::slots_for(nexport).saturating_mul(2)
        {
            return Err(Error::BadIndex {
                table: Table::Export,
                what: "slot count not a power of two, or too small or too large",
            });
        }
        if idxoff < reloff + relsize {
            return Err(bad("tables out of order or overlapping"));
        }
    }

    let strs = align_up(image, 8).ok_or(bad("size"))?;
    let exps = strs + strsize as u64;
    let imps = exps + exp_bytes;
    let binds = align_up(imps + imp_bytes, 8).ok_or(bad("size"))?;
    let idx = binds + 8 * nimport as u64;
    let total = idx + idxsize as u64;
    Ok(Layout {
        text: exec.text as usize,
        dataoff: h.dataoff as usize,
        data: exec.data as usize,
        bss: exec.bss as usize,
        image: size(image)?,
        strs: size(strs)?,
        strsize,
        exps: size(exps)?,
        nexport,
        imps: size(imps)?,
        nimport,
        import_hashes,
        binds: size(binds)?,
        total: size(total)?,
        nreloc,
        textoff,
        stroff,
        expoff,
        impoff,
        reloff,
        relsize,
        idxoff,
        idxsize,
        idx: size(idx)?,
        entry: (exec.entry != NO_ENTRY).then_some(exec.entry),
        low: h.flags & crate::format::FLAG_LOW2G != 0,
    })
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
    // Read the three words in place (the hot path of binding).
    let at = i.saturating_mul(ImpEntry::SIZE);
    let e = raw
        .get(at..at.saturating_add(ImpEntry::SIZE))
        .ok_or(bad("table entry"))?;
    let word = |k: usize| u32::from_be_bytes([e[k], e[k + 1], e[k + 2], e[k + 3]]);
    let e = ImpEntry {
        name: word(0),
        namelen: word(4),
        sig: word(8),
    };
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

/// Why import `i` did not bind, the earlier ones having bound in order:
/// its name is malformed, out of order, or not exported.
pub(crate) fn import_error(strs: &[u8], raw: &[u8], i: usize, lim: &Limits) -> Error {
    let entry = |i: usize| -> Result<&str, Error> {
        let (_, e) = import_bytes(strs, raw, i, lim)?;
        name_at(strs, e.name, e.namelen, lim.max_name, Table::Import, i)
    };
    let name = match entry(i) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let prev = i.checked_sub(1).and_then(|p| entry(p).ok());
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

/// The export entries with checked names, in checked order, each address
/// checked to lie in the text or in data and bss.
pub(crate) fn exports<'a>(
    strs: &'a [u8],
    raw: &'a [u8],
    lay: &Layout,
    lim: &Limits,
) -> impl Iterator<Item = Result<(&'a str, ExpEntry), Error>> + 'a {
    let lay = *lay;
    Entries {
        strs,
        raw: raw.chunks_exact(ExpEntry::SIZE),
        index: 0,
        prev: None,
        max_name: lim.max_name,
        table: Table::Export,
        parse: ExpEntry::parse,
        name: |e| (e.name, e.namelen),
    }
    .map(move |r| {
        let (name, e) = r?;
        let v = e.value as usize;
        if v >= lay.image || (v >= lay.text && v < lay.dataoff) {
            return Err(Error::BadExport {
                name: SymName::new(name),
                value: e.value,
            });
        }
        Ok((name, e))
    })
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

/// Decodes relocation `index` from the front of `b`; returns the record and
/// the bytes it took.
#[inline]
pub(crate) fn decode_reloc(b: &[u8], prev: u32, index: u32) -> Result<(Reloc, usize), Error> {
    Reloc::decode(b, prev).map_err(|e| match e {
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
    })
}

/// Checks relocation `index` against the architecture, the layout and the
/// end of the previous field; returns its mode.
#[inline]
pub(crate) fn reloc(
    arch: Arch,
    lay: &Layout,
    r: &Reloc,
    index: u32,
    prev_end: u64,
) -> Result<&'static Mode, Error> {
    let mode = arch::mode(arch, r.mode).ok_or(Error::BadRelocMode {
        index,
        mode: r.mode,
        arch,
    })?;
    let off = u64::from(r.offset);
    if index > 0 && off < prev_end {
        return Err(Error::BadReloc {
            index,
            what: "out of order or overlapping the previous one",
        });
    }
    let end = off + mode.width as u64;
    let in_text = end <= lay.text as u64;
    let in_data = off >= lay.dataoff as u64 && end <= (lay.dataoff + lay.data) as u64;
    if !in_text && !in_data {
        return Err(Error::RelocOutOfImage {
            index,
            offset: r.offset,
        });
    }
    match (mode.import, r.import) {
        (false, None) => Ok(mode),
        (true, Some(i)) if (i as usize) < lay.nimport => Ok(mode),
        (true, Some(i)) => Err(Error::BadImportIndex {
            index,
            import: i,
            nimport: lay.nimport as u32,
        }),
        (true, None) => Err(Error::BadReloc {
            index,
            what: "mode needs an import index",
        }),
        (false, Some(_)) => Err(Error::BadReloc {
            index,
            what: "import index on a mode that takes none",
        }),
    }
}

/// The error for bytes left after the last relocation record.
pub(crate) fn trailing(nreloc: usize) -> Error {
    Error::BadReloc {
        index: nreloc as u32,
        what: "bytes left over after the last record",
    }
}
