//! The loader: read, check, bind, relocate, seal.

use crate::arch;
use crate::error::{Error, NameProblem, SymName, Table};
use crate::format::{
    align_up, Arch, Dynhdr, Exec, ExpEntry, ImpEntry, Reloc, RelocDecodeError, DYN_MAGIC,
    MAX_ALIGN, NO_ENTRY, RELOC_MAX_BYTES, VERSION,
};
use crate::memory::{Memory, Region, Seal};
use crate::source::Source;
use crate::table::{Dynsym, ExportTable};
use core::cmp::Ordering;

/// Explicit limits on what a module may ask for. Every one is checked before
/// anything is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest image (text, padding, data and bss) in bytes; 0 = no limit
    /// beyond the format's. Plan 9's `maxsize`.
    pub max_size: u64,
    /// Most exports.
    pub max_exports: u32,
    /// Most imports.
    pub max_imports: u32,
    /// Longest symbol name in bytes.
    pub max_name: u32,
    /// Most relocation records.
    pub max_relocs: u32,
    /// Largest string table in bytes.
    pub max_strings: u32,
    /// Largest extension header in bytes.
    pub max_header: u32,
}

impl Limits {
    /// The defaults: no size limit, 1 Mi exports, 64 Ki imports, 4 KiB names,
    /// 16 Mi relocations, 64 MiB of strings, 4 KiB header.
    pub const DEFAULT: Limits = Limits {
        max_size: 0,
        max_exports: 1 << 20,
        max_imports: 1 << 16,
        max_name: 4096,
        max_relocs: 1 << 24,
        max_strings: 64 << 20,
        max_header: 4096,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Loads modules against one export table, into one memory provider.
#[derive(Clone, Copy)]
pub struct Loader<'e, 'p> {
    exports: ExportTable<'e>,
    memory: &'p dyn Memory,
    limits: Limits,
    arch: Option<Arch>,
}

/// Where a loaded module's parts are, in its region.
#[derive(Clone, Copy, Debug)]
struct Layout {
    text: usize,
    dataoff: usize,
    data: usize,
    bss: usize,
    image: usize,
    strs: usize,
    strsize: usize,
    exps: usize,
    nexport: usize,
    imps: usize,
    nimport: usize,
    binds: usize,
    total: usize,
}

/// Gives a region back unless it was handed on.
struct Guard<'p> {
    memory: &'p dyn Memory,
    region: Option<Region>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.region.take() {
            self.memory.release(r);
        }
    }
}

fn limit(what: &'static str, count: u32, max: u32) -> Result<usize, Error> {
    if count > max {
        return Err(Error::Limit {
            what,
            count: count.into(),
            max: max.into(),
        });
    }
    usize::try_from(count).map_err(|_| Error::Limit {
        what,
        count: count.into(),
        max: max.into(),
    })
}

fn bad(what: &'static str) -> Error {
    Error::BadHeader { what }
}

fn size(v: u64) -> Result<usize, Error> {
    usize::try_from(v).map_err(|_| Error::TooBig {
        size: v,
        max: usize::MAX as u64,
    })
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
    let b = (off as usize)
        .checked_add(len as usize)
        .and_then(|end| strs.get(off as usize..end))
        .ok_or(fail(NameProblem::OutOfBounds))?;
    if b.contains(&0) {
        return Err(fail(NameProblem::Nul));
    }
    core::str::from_utf8(b).map_err(|_| fail(NameProblem::NotUtf8))
}

fn seek_to<S: Source + ?Sized>(src: &mut S, start: u64, off: u64) -> Result<(), Error> {
    src.seek(start.checked_add(off).ok_or(Error::Seek)?)
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

impl<'e, 'p> Loader<'e, 'p> {
    /// A loader binding imports against `exports` and placing modules in
    /// `memory`, with [`Limits::DEFAULT`], for the host architecture.
    pub fn new(exports: ExportTable<'e>, memory: &'p dyn Memory) -> Self {
        Loader {
            exports,
            memory,
            limits: Limits::DEFAULT,
            arch: Arch::HOST,
        }
    }

    /// Uses `limits`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Relocates for `arch` instead of the host (to prepare images for
    /// another machine, or to compare with another linker's output).
    pub fn arch(mut self, arch: Arch) -> Self {
        self.arch = Some(arch);
        self
    }

    /// Loads the module at the source's current position.
    ///
    /// On error the source is put back where it was, nothing is left
    /// allocated, and the error says what was wrong.
    pub fn load<S: Source + ?Sized>(&self, src: &mut S) -> Result<Module<'p>, Error> {
        let start = src.position()?;
        let r = self.load_at(src, start);
        if r.is_err() {
            // The load's error is the one worth reporting; a failed restore
            // cannot be reported any better.
            let _ = src.seek(start);
        }
        r
    }

    fn load_at<S: Source + ?Sized>(&self, src: &mut S, start: u64) -> Result<Module<'p>, Error> {
        let lim = &self.limits;
        let mut hb = [0u8; Exec::SIZE];
        src.read_exact_or(&mut hb, "header")?;
        let exec = Exec::parse(&hb).ok_or(bad("header"))?;
        if exec.magic & DYN_MAGIC == 0 {
            return Err(Error::BadMagic { magic: exec.magic });
        }
        let found = Arch::from_magic(exec.magic).ok_or(Error::BadMagic { magic: exec.magic })?;
        let arch = self.arch.ok_or(Error::BadMagic { magic: exec.magic })?;
        if found != arch {
            return Err(Error::WrongArch { found, want: arch });
        }
        let mut hdrlen = Exec::SIZE as u64;
        if arch.fat_header() {
            let mut fat = [0u8; 8];
            src.read_exact_or(&mut fat, "header")?;
            let want = if exec.entry == NO_ENTRY {
                u64::MAX
            } else {
                exec.entry.into()
            };
            if u64::from_be_bytes(fat) != want {
                return Err(bad("64-bit entry disagrees with entry"));
            }
            hdrlen += 8;
        }
        let mut db = [0u8; Dynhdr::SIZE];
        src.read_exact_or(&mut db, "header")?;
        let h = Dynhdr::parse(&db).ok_or(bad("header"))?;
        if h.version != VERSION {
            return Err(Error::BadVersion { version: h.version });
        }
        if (h.hdrsize as usize) < Dynhdr::SIZE || h.hdrsize > lim.max_header {
            return Err(bad("extension header size"));
        }
        hdrlen += u64::from(h.hdrsize);
        if h.flags != 0 {
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
        if h.idxoff != 0 || h.idxsize != 0 {
            return Err(bad("hash index not defined in version 1"));
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

        // The file's parts must come in order, each after the last.
        let data_end = hdrlen + u64::from(exec.text) + u64::from(exec.data);
        let exp_bytes = nexport as u64 * ExpEntry::SIZE as u64;
        let imp_bytes = nimport as u64 * ImpEntry::SIZE as u64;
        let (stroff, expoff, impoff, reloff) = (
            u64::from(h.stroff),
            u64::from(h.expoff),
            u64::from(h.impoff),
            u64::from(h.reloff),
        );
        if stroff < data_end
            || expoff < stroff + strsize as u64
            || impoff < expoff + exp_bytes
            || reloff < impoff + imp_bytes
        {
            return Err(bad("tables out of order or overlapping"));
        }
        let relsize = u64::from(h.relsize);
        if relsize < 2 * nreloc as u64 || relsize > (RELOC_MAX_BYTES * nreloc) as u64 {
            return Err(bad("relocation stream size disagrees with count"));
        }

        // The region: image, then the tables.
        let strs = align_up(image, 8).ok_or(bad("size"))?;
        let exps = strs + strsize as u64;
        let imps = exps + exp_bytes;
        let binds = align_up(imps + imp_bytes, 8).ok_or(bad("size"))?;
        let total = binds + 8 * nimport as u64;
        let lay = Layout {
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
            binds: size(binds)?,
            total: size(total)?,
        };

        let mut guard = Guard {
            memory: self.memory,
            region: Some(self.memory.allocate(lay.total, (h.align as usize).max(8))?),
        };
        let region = guard.region.as_ref().ok_or(bad("region"))?;
        if region.len() < lay.total {
            return Err(Error::Memory {
                what: "provider returned a short region",
                size: lay.total,
            });
        }
        let base = region.as_ptr() as u64;
        // SAFETY: the region was just allocated for this module: valid for
        // reads and writes of its length, initialised, and referenced by
        // nothing else until the module is built from it below. No module
        // code has run, and the text is not yet executable.
        let mem: &mut [u8] = unsafe { core::slice::from_raw_parts_mut(region.as_ptr(), lay.total) };
        let (img, tabs) = mem.split_at_mut(lay.strs);

        src.read_exact_or(&mut img[..lay.text], "text")?;
        img[lay.text..lay.dataoff].fill(0);
        src.read_exact_or(&mut img[lay.dataoff..lay.dataoff + lay.data], "data")?;
        img[lay.dataoff + lay.data..].fill(0);

        let (strtab, rest) = tabs.split_at_mut(lay.strsize);
        let (exptab, rest) = rest.split_at_mut(exp_bytes as usize);
        let (imptab, rest) = rest.split_at_mut(imp_bytes as usize);
        let bindtab = &mut rest[lay.binds - (lay.imps + imp_bytes as usize)..];
        seek_to(src, start, stroff)?;
        src.read_exact_or(strtab, "string table")?;
        seek_to(src, start, expoff)?;
        src.read_exact_or(exptab, "export table")?;
        seek_to(src, start, impoff)?;
        src.read_exact_or(imptab, "import table")?;

        // Exports: names sound and sorted, addresses inside the image.
        let mut prev = None;
        for (i, e) in exptab.chunks_exact(ExpEntry::SIZE).enumerate() {
            let e = ExpEntry::parse(e).ok_or(bad("export"))?;
            let name = name_at(strtab, e.name, e.namelen, lim.max_name, Table::Export, i)?;
            check_order(Table::Export, prev, name)?;
            let v = e.value as usize;
            if v >= lay.image || (v >= lay.text && v < lay.dataoff) {
                return Err(Error::BadExport {
                    name: SymName::new(name),
                    value: e.value,
                });
            }
            prev = Some(name);
        }

        // Imports: sorted and unique, then bound by a merge against the
        // (sorted) host table.
        let mut prev = None;
        let mut cursor = 0;
        for (i, (e, slot)) in imptab
            .chunks_exact(ImpEntry::SIZE)
            .zip(bindtab.chunks_exact_mut(8))
            .enumerate()
        {
            let e = ImpEntry::parse(e).ok_or(bad("import"))?;
            let name = name_at(strtab, e.name, e.namelen, lim.max_name, Table::Import, i)?;
            check_order(Table::Import, prev, name)?;
            prev = Some(name);
            let at = self
                .exports
                .find_from(name, cursor)
                .map_err(|_| Error::Undefined {
                    name: SymName::new(name),
                })?;
            cursor = at + 1;
            let sym = &self.exports.as_slice()[at];
            if e.sig != 0 && sym.sig != 0 && e.sig != sym.sig {
                return Err(Error::SigMismatch {
                    name: SymName::new(name),
                    want: e.sig,
                    have: sym.sig,
                });
            }
            slot.copy_from_slice(&(sym.addr as usize as u64).to_ne_bytes());
        }

        // Relocations, streamed through a small buffer.
        seek_to(src, start, reloff)?;
        relocate(src, arch, &lay, img, bindtab, base, nreloc, relsize)?;

        let region = guard.region.take().ok_or(bad("region"))?;
        let seal = Seal {
            text: lay.text,
            data: lay.dataoff,
            data_end: lay.image,
        };
        if let Err(e) = self.memory.seal(&region, seal) {
            self.memory.release(region);
            return Err(e);
        }
        Ok(Module {
            memory: self.memory,
            region,
            arch,
            lay,
            entry: (exec.entry != NO_ENTRY).then_some(exec.entry),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn relocate<S: Source + ?Sized>(
    src: &mut S,
    arch: Arch,
    lay: &Layout,
    img: &mut [u8],
    binds: &[u8],
    base: u64,
    nreloc: usize,
    relsize: u64,
) -> Result<(), Error> {
    let mut buf = [0u8; 256];
    let (mut have, mut pos) = (0usize, 0usize);
    let mut remaining = relsize;
    let mut prev_off = 0u32;
    let mut prev_end = 0u64;
    let nimport = binds.len() / 8;
    for index in 0..nreloc {
        let idx = index as u32;
        if have - pos < RELOC_MAX_BYTES && remaining > 0 {
            buf.copy_within(pos..have, 0);
            have -= pos;
            pos = 0;
            let n = ((buf.len() - have) as u64).min(remaining) as usize;
            src.read_exact_or(&mut buf[have..have + n], "relocations")?;
            have += n;
            remaining -= n as u64;
        }
        let (r, used) = Reloc::decode(&buf[pos..have], prev_off).map_err(|e| match e {
            RelocDecodeError::Short => Error::BadReloc {
                index: idx,
                what: "record runs past the end of the stream",
            },
            RelocDecodeError::BadWidth => Error::BadReloc {
                index: idx,
                what: "reserved offset width",
            },
            RelocDecodeError::Overflow => Error::RelocOutOfImage {
                index: idx,
                offset: u32::MAX,
            },
        })?;
        pos += used;
        let mode = arch::mode(arch, r.mode).ok_or(Error::BadRelocMode {
            index: idx,
            mode: r.mode,
            arch,
        })?;
        let off = u64::from(r.offset);
        if index > 0 && off < prev_end {
            return Err(Error::BadReloc {
                index: idx,
                what: "out of order or overlapping the previous one",
            });
        }
        let end = off + mode.width as u64;
        let in_text = end <= lay.text as u64;
        let in_data = off >= lay.dataoff as u64 && end <= (lay.dataoff + lay.data) as u64;
        if !in_text && !in_data {
            return Err(Error::RelocOutOfImage {
                index: idx,
                offset: r.offset,
            });
        }
        let target = match (mode.import, r.import) {
            (false, None) => base,
            (true, Some(i)) => {
                let slot = (i as usize)
                    .checked_mul(8)
                    .and_then(|s| binds.get(s..s + 8))
                    .ok_or(Error::BadImportIndex {
                        index: idx,
                        import: i,
                        nimport: nimport as u32,
                    })?;
                u64::from_ne_bytes(slot.try_into().map_err(|_| bad("binding"))?)
            }
            (true, None) => {
                return Err(Error::BadReloc {
                    index: idx,
                    what: "mode needs an import index",
                })
            }
            (false, Some(_)) => {
                return Err(Error::BadReloc {
                    index: idx,
                    what: "import index on a mode that takes none",
                })
            }
        };
        let field = &mut img[off as usize..end as usize];
        arch::apply(arch, mode, field, base + off, target).map_err(|_| Error::RelocOverflow {
            index: idx,
            offset: r.offset,
        })?;
        prev_off = r.offset;
        prev_end = end;
    }
    if remaining != 0 || pos != have {
        return Err(Error::BadReloc {
            index: nreloc as u32,
            what: "bytes left over after the last record",
        });
    }
    Ok(())
}

/// A loaded module. It owns its memory and gives it back when dropped.
pub struct Module<'p> {
    memory: &'p dyn Memory,
    region: Region,
    arch: Arch,
    lay: Layout,
    entry: Option<u32>,
}

/// A loaded module's import and the address it was bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Import<'a> {
    /// The name.
    pub name: &'a str,
    /// The signature the module expects (0 = unchecked).
    pub sig: u32,
    /// The address bound.
    pub addr: *const (),
}

impl<'p> Module<'p> {
    /// The module's tables (strings, exports, imports, bindings).
    fn tables(&self) -> &[u8] {
        let len = self.lay.total.min(self.region.len()) - self.lay.strs;
        // SAFETY: the region is owned by this module for its whole life and
        // `[strs, strs + len)` lies inside it. The loader wrote the tables
        // before the module was built, and nothing writes them afterwards:
        // they are past the image, so no relocation or exported address
        // reaches them.
        unsafe { core::slice::from_raw_parts(self.region.as_ptr().add(self.lay.strs), len) }
    }

    fn strs(&self) -> &[u8] {
        &self.tables()[..self.lay.strsize]
    }

    /// Address of the first byte of text (Plan 9's `base`).
    pub fn base(&self) -> *const u8 {
        self.region.as_ptr()
    }

    /// The architecture the module was relocated for.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Bytes of image: text, padding, data and bss (Plan 9's `size`).
    pub fn size(&self) -> usize {
        self.lay.image
    }

    /// Bytes of text.
    pub fn text(&self) -> usize {
        self.lay.text
    }

    /// Bytes of data.
    pub fn data(&self) -> usize {
        self.lay.data
    }

    /// Bytes of bss.
    pub fn bss(&self) -> usize {
        self.lay.bss
    }

    /// Offset of the data from `base`.
    pub fn data_offset(&self) -> usize {
        self.lay.dataoff
    }

    /// Address of the module's init function, if it has one.
    pub fn entry(&self) -> Option<*const ()> {
        self.entry
            .map(|e| self.base().wrapping_add(e as usize) as *const ())
    }

    /// Number of exports.
    pub fn nexport(&self) -> usize {
        self.lay.nexport
    }

    /// Number of imports still recorded (0 after [`Self::free_imports`]).
    pub fn nimport(&self) -> usize {
        self.lay.nimport
    }

    /// Export `i`, in name order, with its address in this process.
    pub fn export(&self, i: usize) -> Option<Dynsym<'_>> {
        let t = self.tables();
        let at = self.lay.exps - self.lay.strs + i.checked_mul(ExpEntry::SIZE)?;
        let e = ExpEntry::parse(t.get(at..at + ExpEntry::SIZE)?)?;
        let name = self
            .strs()
            .get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
        Some(Dynsym {
            sig: e.sig,
            addr: self.base().wrapping_add(e.value as usize) as *const (),
            name: core::str::from_utf8(name).ok()?,
        })
    }

    /// The exports in name order.
    pub fn exports(&self) -> impl Iterator<Item = Dynsym<'_>> + '_ {
        (0..self.lay.nexport).filter_map(move |i| self.export(i))
    }

    /// Import `i`, in name order, with the address it was bound to.
    pub fn import_at(&self, i: usize) -> Option<Import<'_>> {
        if i >= self.lay.nimport {
            return None;
        }
        let t = self.tables();
        let at = self.lay.imps - self.lay.strs + i * ImpEntry::SIZE;
        let e = ImpEntry::parse(t.get(at..at + ImpEntry::SIZE)?)?;
        let name = self
            .strs()
            .get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
        let b = self.lay.binds - self.lay.strs + i * 8;
        let addr = u64::from_ne_bytes(t.get(b..b + 8)?.try_into().ok()?);
        Some(Import {
            name: core::str::from_utf8(name).ok()?,
            sig: e.sig,
            addr: addr as usize as *const (),
        })
    }

    /// The imports in name order, with their bindings.
    pub fn imports(&self) -> impl Iterator<Item = Import<'_>> + '_ {
        (0..self.lay.nimport).filter_map(move |i| self.import_at(i))
    }

    /// The export called `name` (binary search of the sorted table).
    pub fn find(&self, name: &str) -> Option<Dynsym<'_>> {
        let (mut lo, mut hi) = (0, self.lay.nexport);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let s = self.export(mid)?;
            match s.name.cmp(name) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(s),
            }
        }
        None
    }

    /// The address of export `name`, checking `sig` against the export's
    /// signature when both are non-zero (Plan 9's `dynimport`).
    pub fn lookup(&self, name: &str, sig: u32) -> Result<*const (), Error> {
        let s = self.find(name).ok_or_else(|| Error::Undefined {
            name: SymName::new(name),
        })?;
        if sig != 0 && s.sig != 0 && sig != s.sig {
            return Err(Error::SigMismatch {
                name: SymName::new(name),
                want: sig,
                have: s.sig,
            });
        }
        Ok(s.addr)
    }

    /// Export `name` as a value of type `T`: a function pointer for a
    /// function, a reference or raw pointer for data.
    ///
    /// # Safety
    ///
    /// `T` must be pointer-sized and describe the export truthfully.
    /// Matching signatures make a mismatch unlikely, not impossible.
    pub unsafe fn import<T: Copy>(&self, name: &str, sig: u32) -> Result<T, Error> {
        const {
            assert!(core::mem::size_of::<T>() == core::mem::size_of::<*const ()>());
        }
        let p = self.lookup(name, sig)?;
        // SAFETY: `T` is pointer-sized (checked above) and the caller vouches
        // that the export has type `T`.
        Ok(unsafe { core::mem::transmute_copy::<*const (), T>(&p) })
    }

    /// Forgets the import bindings (Plan 9's `dynfreeimport`) and gives their
    /// memory back if the provider can shrink the region.
    pub fn free_imports(&mut self) {
        let keep = self.lay.imps;
        self.lay.nimport = 0;
        if self.memory.shrink(&mut self.region, keep) {
            self.lay.total = keep;
            self.lay.binds = keep;
        }
    }
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        self.memory.release(self.region.take());
    }
}

impl core::fmt::Debug for Module<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Module")
            .field("arch", &self.arch)
            .field("base", &self.base())
            .field("text", &self.lay.text)
            .field("data", &self.lay.data)
            .field("bss", &self.lay.bss)
            .field("nexport", &self.lay.nexport)
            .field("nimport", &self.lay.nimport)
            .finish()
    }
}
