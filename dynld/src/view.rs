//! Reading a module in memory without loading it: for tools and tests.

use crate::arch::Mode;
use crate::check::{self, bad, Header, Part, Records, Stream, Walker};
use crate::error::Error;
use crate::format::{
    kind, Arch, Dynhdr, Exec, ExpEntry, ImpEntry, Reloc, SymEntry, TableEntry, SYM_EXPORTED,
};
use crate::limits::Limits;
use crate::module::SymbolInfo;

/// A module file checked as the loader checks it (headers, the table
/// directory, names, order, export addresses, constructors, every
/// relocation), but not loaded: nothing is bound, relocated or executed.
#[derive(Clone, Debug)]
pub struct ModuleView<'a> {
    bytes: &'a [u8],
    exec: Exec,
    hdr: Dynhdr,
    h: Header,
    directory: &'a [u8],
}

/// A symbol as the file records it: the value is an image offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSym<'a> {
    /// The name.
    pub name: &'a str,
    /// The signature (0 = unchecked).
    pub sig: u32,
    /// Image offset (0 for imports).
    pub value: u32,
    /// The type description the module carries for it, if any.
    pub desc: Option<&'a str>,
}

/// `len` bytes at `off`. An empty part is fine wherever it points: the
/// streaming loader reads nothing for it either.
fn part<'a>(bytes: &'a [u8], off: u64, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    usize::try_from(off)
        .ok()
        .and_then(|o| bytes.get(o..o.checked_add(len)?))
        .ok_or(Error::Truncated { what })
}

impl<'a> ModuleView<'a> {
    /// Checks the module in `bytes` against `limits`.
    pub fn parse(bytes: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        let exec = Exec::parse(part(bytes, 0, Exec::SIZE, "header")?).ok_or(bad("header"))?;
        let arch = check::arch_of(&exec)?;
        let mut at = Exec::SIZE as u64;
        if arch.fat_header() {
            let fat = part(bytes, at, 8, "header")?;
            check::fat_entry(fat.try_into().map_err(|_| bad("header"))?)?;
            at += 8;
        }
        let hdr = Dynhdr::parse(part(bytes, at, Dynhdr::SIZE, "header")?).ok_or(bad("header"))?;
        let dlen = check::directory_size(&hdr, limits)?;
        let directory = part(bytes, at + Dynhdr::SIZE as u64, dlen, "header")?;
        let h = check::header(arch, &exec, &hdr, directory, limits)?;
        if let Some(what) = check::first_short(&h, bytes.len() as u64) {
            return Err(Error::Truncated { what });
        }
        let v = ModuleView {
            bytes,
            exec,
            hdr,
            h,
            directory,
        };
        // The loader's order: the base relocations as the file has them,
        // then the tables, then the imports and their relocations.
        for r in v.records(Stream::Base) {
            r?;
        }
        let strs = v.table(h.strings());
        check::exports(strs, v.table(h.exports()), &h, limits)?;
        if cfg!(feature = "descs") {
            check::types(v.table(h.types()), strs)?;
        }
        check::funcs(kind::INIT, v.table(h.init()), h.text)?;
        check::funcs(kind::FINI, v.table(h.fini()), h.text)?;
        if cfg!(feature = "symbols") {
            check::symbols(v.table(h.symbols()), strs, &h, limits)?;
        }
        check::index(v.table(h.index()), h.exports().count)?;
        // As the loader, which reads it only with the `gdb` feature.
        if cfg!(all(feature = "gdb", unix)) {
            check::unwind(v.table(h.unwind()), &h)?;
            check::debuglink(v.table(h.debuglink()))?;
        }
        crate::meta::check(v.table(h.metadata()), strs, h.exports().count)?;
        for e in check::imports(strs, v.table(h.imports()), limits) {
            e?;
        }
        for r in v.records(Stream::Import) {
            r?;
        }
        Ok(v)
    }

    /// A table's bytes (checked present by `parse`).
    fn table(&self, p: Part) -> &'a [u8] {
        part(self.bytes, p.off, p.size, "table").unwrap_or(&[])
    }

    fn records(&self, stream: Stream) -> Records<'a> {
        let p = match stream {
            Stream::Base => self.h.relocs(),
            Stream::Import => self.h.import_relocs(),
        };
        Records {
            bytes: self.table(p),
            walker: Walker::new(&self.h, stream),
            failed: false,
        }
    }

    /// The module's metadata (see [`crate::meta`]), if it has any.
    pub fn metadata(&self) -> Option<crate::meta::Metadata<'a>> {
        crate::meta::Metadata::new(self.table(self.h.metadata()), self.table(self.h.strings()))
    }

    /// The module's architecture.
    pub fn arch(&self) -> Arch {
        self.h.arch
    }

    /// The Plan 9 header.
    pub fn exec(&self) -> &Exec {
        &self.exec
    }

    /// The extension header.
    pub fn header(&self) -> &Dynhdr {
        &self.hdr
    }

    /// The table directory, in file order, unknown optional tables included.
    pub fn tables(&self) -> impl Iterator<Item = TableEntry> + 'a {
        self.directory
            .chunks_exact(TableEntry::SIZE)
            .filter_map(TableEntry::parse)
    }

    /// The directory entry of the table of `kind`, if the module has one.
    pub fn table_entry(&self, kind: u16) -> Option<TableEntry> {
        self.tables().find(|t| t.kind == kind)
    }

    /// The unwind table (see
    /// [`kind::UNWIND`](crate::format::kind::UNWIND)): the image offset
    /// its `.eh_frame` was linked to lie at, and its bytes; `None` without
    /// one, or with a head too short.
    pub fn unwind(&self) -> Option<(usize, &'a [u8])> {
        let raw = self.table(self.h.unwind());
        let at = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?);
        Some((at as usize, raw.get(8..)?))
    }

    /// The debug link (see
    /// [`kind::DEBUGLINK`](crate::format::kind::DEBUGLINK)): the debug
    /// file's CRC-32 and path; `None` without one, or if it is malformed.
    pub fn debuglink(&self) -> Option<(u32, &'a str)> {
        let raw = self.table(self.h.debuglink());
        let crc = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?);
        let path = core::str::from_utf8(raw.get(4..)?).ok()?;
        (!path.is_empty() && !path.contains('\0')).then_some((crc, path))
    }

    /// The text bytes.
    pub fn text(&self) -> &'a [u8] {
        part(self.bytes, self.h.textoff, self.h.text, "text").unwrap_or(&[])
    }

    /// Bytes of text.
    pub fn text_size(&self) -> usize {
        self.h.text
    }

    /// The file offset of the text (after the headers and any padding
    /// that puts it on a page boundary).
    pub fn text_offset(&self) -> u64 {
        self.h.textoff
    }

    /// The initialised data bytes.
    pub fn data(&self) -> &'a [u8] {
        part(
            self.bytes,
            self.h.textoff + self.h.text as u64,
            self.h.data,
            "data",
        )
        .unwrap_or(&[])
    }

    /// Image offset of the data.
    pub fn data_offset(&self) -> usize {
        self.h.dataoff
    }

    /// Bytes of bss.
    pub fn bss_size(&self) -> usize {
        self.h.bss
    }

    /// Image size: data offset + data + bss.
    pub fn image_size(&self) -> usize {
        self.h.image
    }

    /// Bytes of memory a loader asks its provider for (image and tables).
    pub fn memory_size(&self) -> usize {
        check::Placement::of(&self.h).map_or(0, |p| p.total)
    }

    /// Image offsets of the constructors, in the order they run.
    pub fn init_offsets(&self) -> impl Iterator<Item = u32> + 'a {
        let raw = self.table(self.h.init());
        (0..self.h.init().count).filter_map(move |i| check::func(raw, i))
    }

    /// Image offsets of the destructors, in table order (they run last to
    /// first).
    pub fn fini_offsets(&self) -> impl Iterator<Item = u32> + 'a {
        let raw = self.table(self.h.fini());
        (0..self.h.fini().count).filter_map(move |i| check::func(raw, i))
    }

    /// The exports, in name order.
    pub fn exports(&self) -> impl Iterator<Item = FileSym<'a>> + 'a {
        self.syms(self.h.exports(), ExpEntry::SIZE, 0, ExpEntry::parse)
    }

    /// The imports, in name order (their index is the one relocations use).
    pub fn imports(&self) -> impl Iterator<Item = FileSym<'a>> + 'a {
        self.syms(
            self.h.imports(),
            ImpEntry::SIZE,
            self.h.exports().count,
            |b| {
                ImpEntry::parse(b).map(|e| ExpEntry {
                    name: e.name,
                    namelen: e.namelen,
                    sig: e.sig,
                    value: 0,
                })
            },
        )
    }

    /// Entries of `size` bytes decoded by `entry` (an import's value is 0),
    /// with their names and descriptions (from type entry `first` on).
    fn syms(
        &self,
        p: Part,
        size: usize,
        first: usize,
        entry: fn(&[u8]) -> Option<ExpEntry>,
    ) -> impl Iterator<Item = FileSym<'a>> + 'a {
        let strs = self.table(self.h.strings());
        // Without the `descs` feature the descriptions are skipped, as the
        // loader skips them.
        let types = match cfg!(feature = "descs") {
            true => self.table(self.h.types()),
            false => &[],
        };
        self.table(p)
            .chunks_exact(size)
            .enumerate()
            .filter_map(move |(i, b)| {
                let e = entry(b)?;
                let name = strs.get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
                Some(FileSym {
                    name: core::str::from_utf8(name).ok()?,
                    sig: e.sig,
                    value: e.value,
                    desc: check::type_desc(types, strs, first + i),
                })
            })
    }

    /// The imports' name hashes as the file stores them, in import table
    /// order, if it has them. They are not checked: a loader does not
    /// trust them either.
    pub fn import_hashes(&self) -> Option<impl Iterator<Item = u64> + 'a> {
        (self.h.hashes().size != 0).then(|| {
            self.table(self.h.hashes())
                .chunks_exact(8)
                .map(|w| w.iter().fold(0u64, |h, &x| h << 8 | u64::from(x)))
        })
    }

    /// The symbols table, in value order: every function and data object
    /// the module keeps that has a name and a size, exported or local.
    /// Empty when the module has none, or without the `symbols` feature
    /// (which skips the table, as the loader does).
    pub fn symbols(&self) -> impl Iterator<Item = SymbolInfo<'a>> + 'a {
        let strs = self.table(self.h.strings());
        let raw = match cfg!(feature = "symbols") {
            true => self.table(self.h.symbols()),
            false => &[],
        };
        raw.chunks_exact(SymEntry::SIZE).filter_map(move |b| {
            let e = SymEntry::parse(b)?;
            let name = strs.get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
            Some(SymbolInfo {
                name: core::str::from_utf8(name).ok()?,
                value: e.value,
                size: e.size,
                exported: e.flags & SYM_EXPORTED != 0,
            })
        })
    }

    /// Slots in the module's hash index over its exports (0 = no index).
    pub fn index_slots(&self) -> usize {
        self.h.index().count
    }

    /// The relocations that add the load base, in offset order.
    pub fn relocs(&self) -> impl Iterator<Item = Reloc> + 'a {
        self.records(Stream::Base)
            .map_while(Result::ok)
            .map(|r| r.0)
    }

    /// The relocations that add an import's address, in offset order.
    pub fn import_relocs(&self) -> impl Iterator<Item = Reloc> + 'a {
        self.records(Stream::Import)
            .map_while(Result::ok)
            .map(|r| r.0)
    }

    /// Every relocation with its mode, in offset order (the two tables
    /// merged).
    pub fn all_relocs(&self) -> impl Iterator<Item = (Reloc, &'static Mode)> + 'a {
        let mut a = self.records(Stream::Base).map_while(Result::ok).peekable();
        let mut b = self
            .records(Stream::Import)
            .map_while(Result::ok)
            .peekable();
        core::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0.offset <= y.0.offset => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        })
    }
}
