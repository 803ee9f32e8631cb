//! Reading a module in memory without loading it: for tools and tests.

use crate::check::{self, bad, Layout};
use crate::error::Error;
use crate::format::{Arch, Dynhdr, Exec, ExpEntry, ImpEntry, Reloc};
use crate::load::Limits;

/// A module file checked as the loader checks it (headers, names, order,
/// export addresses, every relocation), but not loaded: nothing is bound,
/// relocated or executed.
#[derive(Clone, Debug)]
pub struct ModuleView<'a> {
    bytes: &'a [u8],
    arch: Arch,
    exec: Exec,
    hdr: Dynhdr,
    lay: Layout,
}

/// An export as the file records it: the value is an image offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSym<'a> {
    /// The name.
    pub name: &'a str,
    /// The signature (0 = unchecked).
    pub sig: u32,
    /// Image offset (0 for imports).
    pub value: u32,
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
        let mut hdrlen = Exec::SIZE as u64;
        if arch.fat_header() {
            let fat = part(bytes, hdrlen, 8, "header")?;
            check::fat_entry(&exec, fat.try_into().map_err(|_| bad("header"))?)?;
            hdrlen += 8;
        }
        let hdr =
            Dynhdr::parse(part(bytes, hdrlen, Dynhdr::SIZE, "header")?).ok_or(bad("header"))?;
        let lay = check::layout(&exec, &hdr, hdrlen, limits)?;
        let v = ModuleView {
            bytes,
            arch,
            exec,
            hdr,
            lay,
        };
        v.text_bytes()?;
        v.data_bytes()?;
        let strs = v.strs()?;
        let exps = part(bytes, lay.expoff, lay.exp_bytes(), "export table")?;
        let imps = part(bytes, lay.impoff, lay.imp_bytes(), "import table")?;
        v.import_hash_bytes()?;
        for e in check::exports(strs, exps, &lay, limits) {
            e?;
        }
        for e in check::imports(strs, imps, limits) {
            e?;
        }
        for r in v.reloc_stream()? {
            r?;
        }
        check::index(v.index_bytes()?, lay.nexport)?;
        Ok(v)
    }

    fn import_hash_bytes(&self) -> Result<&'a [u8], Error> {
        let (off, len) = self.lay.import_hashes_at();
        part(self.bytes, off, len, "import hashes")
    }

    /// The file offset of the imports' name hashes, if the module has them.
    pub fn import_hashes_offset(&self) -> Option<u64> {
        self.lay
            .import_hashes
            .then(|| self.lay.import_hashes_at().0)
    }

    /// The imports' name hashes as the file stores them, in import table
    /// order, if it has them (`format::FLAG_IMPORT_HASHES`). They are not
    /// checked: a loader does not trust them either.
    pub fn import_hashes(&self) -> Option<impl Iterator<Item = u64> + 'a> {
        let b = self.import_hash_bytes().ok()?;
        self.lay.import_hashes.then(|| {
            b.chunks_exact(8)
                .map(|w| w.iter().fold(0u64, |h, &x| h << 8 | u64::from(x)))
        })
    }

    fn index_bytes(&self) -> Result<&'a [u8], Error> {
        part(self.bytes, self.lay.idxoff, self.lay.idxsize, "hash index")
    }

    /// Slots in the module's hash index over its exports (0 = no index).
    pub fn index_slots(&self) -> usize {
        self.lay.idxsize / 8
    }

    fn text_bytes(&self) -> Result<&'a [u8], Error> {
        part(self.bytes, self.lay.textoff, self.lay.text, "text")
    }

    fn data_bytes(&self) -> Result<&'a [u8], Error> {
        part(
            self.bytes,
            self.lay.textoff + self.lay.text as u64,
            self.lay.data,
            "data",
        )
    }

    fn strs(&self) -> Result<&'a [u8], Error> {
        part(
            self.bytes,
            self.lay.stroff,
            self.lay.strsize,
            "string table",
        )
    }

    fn reloc_stream(&self) -> Result<Relocs<'a>, Error> {
        let rel = usize::try_from(self.lay.relsize).map_err(|_| bad("relocations"))?;
        Ok(Relocs {
            bytes: part(self.bytes, self.lay.reloff, rel, "relocations")?,
            arch: self.arch,
            lay: self.lay,
            index: 0,
            prev: (0, 0),
            done: false,
        })
    }

    /// The module's architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The Plan 9 header.
    pub fn exec(&self) -> &Exec {
        &self.exec
    }

    /// The extension header.
    pub fn header(&self) -> &Dynhdr {
        &self.hdr
    }

    /// The text bytes.
    pub fn text(&self) -> &'a [u8] {
        self.text_bytes().unwrap_or(&[])
    }

    /// The file offset of the text (after the headers and any padding
    /// that puts it on a page boundary).
    pub fn text_offset(&self) -> u64 {
        self.lay.textoff
    }

    /// The initialised data bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data_bytes().unwrap_or(&[])
    }

    /// Image size: data offset + data + bss.
    pub fn image_size(&self) -> usize {
        self.lay.image
    }

    /// Bytes of memory a loader asks its provider for (image and tables).
    pub fn memory_size(&self) -> usize {
        self.lay.total
    }

    /// Image offset of the init function.
    pub fn entry(&self) -> Option<u32> {
        self.lay.entry
    }

    /// The exports, in name order.
    pub fn exports(&self) -> impl Iterator<Item = FileSym<'a>> + 'a {
        let raw = part(self.bytes, self.lay.expoff, self.lay.exp_bytes(), "exports");
        self.syms(raw, ExpEntry::SIZE, ExpEntry::parse)
    }

    /// The imports, in name order (their index is the one relocations use).
    pub fn imports(&self) -> impl Iterator<Item = FileSym<'a>> + 'a {
        let raw = part(self.bytes, self.lay.impoff, self.lay.imp_bytes(), "imports");
        self.syms(raw, ImpEntry::SIZE, |b| {
            ImpEntry::parse(b).map(|e| ExpEntry {
                name: e.name,
                namelen: e.namelen,
                sig: e.sig,
                value: 0,
            })
        })
    }

    /// Entries of `size` bytes decoded by `entry` (an import's value is 0),
    /// with their names looked up.
    fn syms(
        &self,
        raw: Result<&'a [u8], Error>,
        size: usize,
        entry: fn(&[u8]) -> Option<ExpEntry>,
    ) -> impl Iterator<Item = FileSym<'a>> + 'a {
        let strs = self.strs().unwrap_or(&[]);
        raw.unwrap_or(&[]).chunks_exact(size).filter_map(move |b| {
            let e = entry(b)?;
            let name = strs.get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
            Some(FileSym {
                name: core::str::from_utf8(name).ok()?,
                sig: e.sig,
                value: e.value,
            })
        })
    }

    /// The relocations, in offset order.
    pub fn relocs(&self) -> impl Iterator<Item = Reloc> + 'a {
        self.reloc_stream()
            .into_iter()
            .flatten()
            .map_while(Result::ok)
    }
}

/// Decodes and checks a relocation stream held in memory.
struct Relocs<'a> {
    bytes: &'a [u8],
    arch: Arch,
    lay: Layout,
    index: u32,
    prev: (u32, u64),
    done: bool,
}

impl Iterator for Relocs<'_> {
    type Item = Result<Reloc, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index as usize == self.lay.nreloc {
            self.done = true;
            return (!self.bytes.is_empty()).then(|| Err(check::trailing(self.lay.nreloc)));
        }
        let r = (|| {
            let (r, used) = check::decode_reloc(self.bytes, self.prev.0, self.index)?;
            let mode = check::reloc(self.arch, &self.lay, &r, self.index, self.prev.1)?;
            self.bytes = &self.bytes[used..];
            self.prev = (r.offset, u64::from(r.offset) + mode.width as u64);
            self.index += 1;
            Ok(r)
        })();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}
