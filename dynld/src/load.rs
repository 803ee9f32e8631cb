//! The loader: read, check, bind, relocate, seal.

use crate::arch;
use crate::check::{self, bad, Layout};
use crate::error::{Error, SymName};
use crate::format::{Arch, Dynhdr, Exec, ExpEntry, ImpEntry, RELOC_MAX_BYTES};
use crate::memory::{Memory, Region, Seal};
use crate::source::Source;
use crate::table::{lower_bound, Dynsym, ExportTable, Key};

/// Explicit limits on what a module may ask for. All but `max_name` are
/// checked before anything is allocated; names are checked as the tables
/// are read.
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
    /// Largest extension header in bytes (the loader seeks over what it
    /// does not know, so a large one costs nothing).
    pub max_header: u32,
}

impl Limits {
    /// The defaults: no size limit, 1 Mi exports, 64 Ki imports, 4 KiB names,
    /// 16 Mi relocations, 64 MiB of strings, 64 KiB header (room to put
    /// the text on a 64 KiB page boundary in the file).
    pub const DEFAULT: Limits = Limits {
        max_size: 0,
        max_exports: 1 << 20,
        max_imports: 1 << 16,
        max_name: 4096,
        max_relocs: 1 << 24,
        max_strings: 64 << 20,
        max_header: 1 << 16,
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
    at: Option<u64>,
}

/// Gives a region back unless it was handed on.
struct Guard<'p> {
    memory: &'p dyn Memory,
    region: Option<Region>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.region.take() {
            // SAFETY: the region was allocated by `memory` for a load that
            // failed; nothing refers to it any more.
            unsafe { self.memory.release(r) };
        }
    }
}

/// Binding probes the host table's index, rather than merging, when the
/// table has at least this many exports per import.
const INDEX_RATIO: usize = 4;

/// Largest bss prefaulted with the rest of a module.
const PREFAULT_BSS: usize = 64 << 10;

/// Imports looked up together through an index.
const BATCH: usize = 16;

fn seek_to<S: Source + ?Sized>(src: &mut S, start: u64, off: u64) -> Result<(), Error> {
    src.seek(start.checked_add(off).ok_or(Error::Seek)?)
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
            at: None,
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

    /// Relocates as if the image lay at address `base` rather than where
    /// the memory provider put it: to prepare an image for another machine,
    /// or to compare it with another linker's output. The bytes are
    /// relocated for `base`; the module's code must not be called here, and
    /// its export addresses ([`Module::find`], [`Module::import`]) are still
    /// those of the local copy.
    pub fn relocate_at(mut self, base: u64) -> Self {
        self.at = Some(base);
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

    // Never inlined: it is large, inlining saves nothing against a load's
    // work, and a kernel calling it from several places keeps one copy.
    #[inline(never)]
    fn load_at<S: Source + ?Sized>(&self, src: &mut S, start: u64) -> Result<Module<'p>, Error> {
        let lim = &self.limits;
        let mut hb = [0u8; Exec::SIZE];
        src.read_exact_or(&mut hb, "header")?;
        let exec = Exec::parse(&hb).ok_or(bad("header"))?;
        let found = check::arch_of(&exec)?;
        let arch = self.arch.ok_or(Error::BadMagic { magic: exec.magic })?;
        if found != arch {
            return Err(Error::WrongArch { found, want: arch });
        }
        if !arch::supported(arch) {
            return Err(match Arch::HOST {
                Some(want) => Error::WrongArch { found, want },
                None => Error::BadMagic { magic: exec.magic },
            });
        }
        let mut hdrlen = Exec::SIZE as u64;
        if arch.fat_header() {
            let mut fat = [0u8; 8];
            src.read_exact_or(&mut fat, "header")?;
            check::fat_entry(&exec, fat)?;
            hdrlen += 8;
        }
        let mut db = [0u8; Dynhdr::SIZE];
        src.read_exact_or(&mut db, "header")?;
        let h = Dynhdr::parse(&db).ok_or(bad("header"))?;
        let lay = check::layout(&exec, &h, hdrlen, lim)?;

        let align = (h.align as usize).max(8);
        let region = if lay.low {
            self.memory.allocate_low(lay.total, align)?
        } else {
            self.memory.allocate(lay.total, align)?
        };
        let mut guard = Guard {
            memory: self.memory,
            region: Some(region),
        };
        let region = guard.region.as_ref().ok_or(bad("region"))?;
        if region.len() < lay.total {
            return Err(Error::Memory {
                what: "provider returned a short region",
                size: lay.total,
            });
        }
        if region.as_ptr() as usize % align != 0 {
            return Err(Error::Memory {
                what: "provider returned a misaligned region",
                size: lay.total,
            });
        }
        // A large text in a file may be mapped rather than read; the
        // provider says how much of it it placed. Not when the relocations
        // are so many that they would patch (and so copy, one page fault
        // at a time) most of its pages: reading it is cheaper then.
        #[cfg(all(feature = "std", unix))]
        let mapped = match (src.file(), guard.region.as_mut()) {
            (Some(file), Some(region))
                if (lay.nreloc as u64).saturating_mul(8) < lay.text as u64 / 4 =>
            {
                let offset = start.checked_add(lay.textoff).ok_or(bad("size"))?;
                // SAFETY: the region was just allocated by this provider,
                // is not sealed, and nothing refers to its bytes yet.
                let n = unsafe { self.memory.map_file(region, 0, file, offset, lay.text)? };
                if n > lay.text {
                    return Err(Error::Memory {
                        what: "provider mapped more than asked",
                        size: n,
                    });
                }
                n
            }
            _ => 0,
        };
        #[cfg(not(all(feature = "std", unix)))]
        let mapped = 0;
        let region = guard.region.as_ref().ok_or(bad("region"))?;
        // What the loader writes: a small bss goes along with its
        // neighbours, a large one is left to fault in when used.
        if lay.bss <= PREFAULT_BSS {
            self.memory.prefault(region, mapped..lay.total);
        } else {
            self.memory.prefault(region, mapped..lay.dataoff + lay.data);
            self.memory.prefault(region, lay.strs..lay.total);
        }
        let base = self.at.unwrap_or(region.as_ptr() as u64);
        // SAFETY: the region was just allocated for this module: valid for
        // reads and writes of its length, initialised, and referenced by
        // nothing else until the module is built from it below. No module
        // code has run, and the text is not yet executable.
        let mem: &mut [u8] = unsafe { core::slice::from_raw_parts_mut(region.as_ptr(), lay.total) };
        let (img, tabs) = mem.split_at_mut(lay.strs);

        // The region arrives zeroed (the provider's contract), so the gap
        // after the text and the bss need no writes: a large bss costs no
        // memory until the module touches it.
        seek_to(src, start, lay.textoff + mapped as u64)?;
        src.read_exact_or(&mut img[mapped..lay.text], "text")?;
        src.read_exact_or(&mut img[lay.dataoff..lay.dataoff + lay.data], "data")?;

        let (strtab, rest) = tabs.split_at_mut(lay.strsize);
        let (exptab, rest) = rest.split_at_mut(lay.exp_bytes());
        let (imptab, rest) = rest.split_at_mut(lay.imp_bytes());
        let (bindtab, idxtab) =
            rest[lay.binds - (lay.imps + lay.imp_bytes())..].split_at_mut(8 * lay.nimport);
        seek_to(src, start, lay.stroff)?;
        src.read_exact_or(strtab, "string table")?;
        seek_to(src, start, lay.expoff)?;
        src.read_exact_or(exptab, "export table")?;
        seek_to(src, start, lay.impoff)?;
        src.read_exact_or(imptab, "import table")?;

        // Imports are sorted, so binding is a merge against the host table,
        // galloping over the exports between one import and the next. When
        // the imports are few against a table with a hash index, one probe
        // each is cheaper than the gallops.
        let by_index = !self.exports.index().is_empty()
            && lay.nimport.saturating_mul(INDEX_RATIO) <= self.exports.len();
        // Name hashes stored by the linker (they follow the import table)
        // save hashing the names for the index. They wait in the bindings'
        // place: each batch reads its hashes before it binds over them.
        // The merge does not use them, but reads their last byte, so that
        // a module is refused or accepted alike whatever the host table.
        let stored = by_index && lay.import_hashes;
        let (hashes_at, hash_bytes) = lay.import_hashes_at();
        if stored {
            src.read_exact_or(bindtab, "import hashes")?;
        } else if let Some(last) = hash_bytes.checked_sub(1) {
            seek_to(src, start, hashes_at + last as u64)?;
            src.read_exact_or(&mut bindtab[last..], "import hashes")?;
        }
        for e in check::exports(strtab, exptab, &lay, lim) {
            e?;
        }
        let host = self.exports.as_slice();
        let mut next = 0;
        let mut ahead = [None; BATCH];
        let mut sigs = [0u32; BATCH];
        let mut names: [&[u8]; BATCH] = [&[]; BATCH];
        for i in 0..lay.nimport {
            if by_index && i % BATCH == 0 {
                // Look the next imports up together (see `positions`);
                // one whose entry is malformed gets no name here and its
                // error in turn below.
                names = [&[]; BATCH];
                let mut hashes = [0u64; BATCH];
                let stored_hash = |k: usize| {
                    let w = bindtab.get(8 * k..8 * k + 8)?;
                    stored.then(|| u64::from_be_bytes(w.try_into().unwrap_or_default()))
                };
                for (j, n) in names.iter_mut().enumerate().take(lay.nimport - i) {
                    if let Some((b, s)) = check::import_fast(strtab, imptab, i + j, lim.max_name) {
                        (*n, sigs[j]) = (b, s);
                        hashes[j] = stored_hash(i + j).unwrap_or_else(|| crate::index::hash(b));
                    }
                }
                ahead = self.exports.positions(&names, &hashes, stored);
            }
            // The batch read the entry already; an empty name there is a
            // malformed entry (a valid name is never empty).
            let entry = if by_index {
                Some((names[i % BATCH], sigs[i % BATCH])).filter(|(n, _)| !n.is_empty())
            } else {
                check::import_fast(strtab, imptab, i, lim.max_name)
            };
            let Some((name, sig)) = entry else {
                return Err(check::import_error(strtab, imptab, i, lim));
            };
            let at = if by_index {
                ahead[i % BATCH].filter(|&at| at >= next)
            } else {
                self.exports.find_from_bytes(name, next).ok()
            };
            let sym = match at.and_then(|at| Some((at, host.get(at)?))) {
                Some((at, sym)) => {
                    next = at + 1;
                    sym
                }
                None => return Err(check::import_error(strtab, imptab, i, lim)),
            };
            if sig != 0 && sym.sig != 0 && sig != sym.sig {
                return Err(Error::SigMismatch {
                    name: SymName::new(sym.name),
                    want: sig,
                    have: sym.sig,
                });
            }
            let slot = bindtab
                .get_mut(8 * i..8 * i + 8)
                .ok_or_else(|| bad("bindings"))?;
            slot.copy_from_slice(&(sym.addr as usize as u64).to_ne_bytes());
        }

        seek_to(src, start, lay.reloff)?;
        relocate(src, arch, &lay, img, bindtab, base)?;
        if lay.idxsize != 0 {
            seek_to(src, start, lay.idxoff)?;
            src.read_exact_or(idxtab, "hash index")?;
            check::index(idxtab, lay.nexport)?;
        }

        let region = guard.region.take().ok_or(bad("region"))?;
        let seal = Seal {
            text: lay.text,
            data: lay.dataoff,
            data_end: lay.image,
        };
        // SAFETY: the region came from this provider and is live.
        if let Err(e) = unsafe { self.memory.seal(&region, seal) } {
            // SAFETY: as above; the failed module is dropped with it.
            unsafe { self.memory.release(region) };
            return Err(e);
        }
        Ok(Module {
            memory: self.memory,
            region,
            arch,
            lay,
        })
    }
}

/// Applies the relocation stream, read through a small buffer.
fn relocate<S: Source + ?Sized>(
    src: &mut S,
    arch: Arch,
    lay: &Layout,
    img: &mut [u8],
    binds: &[u8],
    base: u64,
) -> Result<(), Error> {
    // One loop per architecture, each with its patch function inlined.
    // Only the architectures this build supports (checked before the
    // load began) reach here, so the others' code is not linked in.
    match arch {
        _ if !arch::supported(arch) => Err(bad("architecture")),
        Arch::Amd64 => relocate_with(src, arch, lay, img, binds, base, arch::x86_64::apply),
        Arch::Arm64 => relocate_with(src, arch, lay, img, binds, base, arch::aarch64::apply),
        _ => relocate_with(src, arch, lay, img, binds, base, |m, f, p, t| {
            arch::apply(arch, m, f, p, t)
        }),
    }
}

fn relocate_with<S: Source + ?Sized>(
    src: &mut S,
    arch: Arch,
    lay: &Layout,
    img: &mut [u8],
    binds: &[u8],
    base: u64,
    apply: impl Fn(u8, &mut [u8], u64, u64) -> Result<(), arch::Overflow>,
) -> Result<(), Error> {
    let mut buf = [0u8; 512];
    let (mut have, mut pos) = (0usize, 0usize);
    let mut remaining = lay.relsize;
    let (mut prev_off, mut prev_end) = (0u32, 0u64);
    // The fast path's facts: the width of each mode that adds the base
    // (0 for the rest), and the two places a field may lie.
    let mut base_width = [0u8; 16];
    for m in arch::modes(arch).iter().filter(|m| !m.import) {
        base_width[usize::from(m.number & 15)] = m.width as u8;
    }
    let text = lay.text as u64;
    let (data, data_end) = (lay.dataoff as u64, (lay.dataoff + lay.data) as u64);
    let nreloc = lay.nreloc as u32;
    let mut index = 0;
    while index < nreloc {
        if have - pos < RELOC_MAX_BYTES && remaining > 0 {
            buf.copy_within(pos..have, 0);
            have -= pos;
            pos = 0;
            let n = ((buf.len() - have) as u64).min(remaining) as usize;
            src.read_exact_or(&mut buf[have..have + n], "relocations")?;
            have += n;
            remaining -= n as u64;
        }
        // The fast path: runs of the common record, a mode that adds the
        // base with a 1- or 2-byte offset delta, in order and inside the
        // text or the data. Anything else, valid or not, goes to the
        // general path below, which reports errors.
        let avail = &buf[..have];
        while index < nreloc {
            let Some(&[m, b1, b2]) = avail.get(pos..pos + 3) else {
                break;
            };
            let width = u64::from(base_width[usize::from(m & 15)]);
            if m & 0xb0 != 0 || width == 0 {
                break;
            }
            // The two record lengths take separate copies of the step, so
            // the next record's position is predicted rather than waited
            // for: runs of one length then cost no load latency each.
            macro_rules! step {
                ($delta:expr, $need:expr) => {{
                    let Some(offset) = prev_off.checked_add($delta) else {
                        break;
                    };
                    let off = u64::from(offset);
                    let end = off + width;
                    if off < prev_end || !(end <= text || (off >= data && end <= data_end)) {
                        break;
                    }
                    let field = &mut img[off as usize..end as usize];
                    apply(m & 15, field, base.wrapping_add(off), base)
                        .map_err(|_| Error::RelocOverflow { index, offset })?;
                    pos += $need;
                    prev_off = offset;
                    prev_end = end;
                }};
            }
            if m & 0x40 == 0 {
                step!(u32::from(b1), 2);
            } else {
                step!(u32::from(u16::from_be_bytes([b1, b2])), 3);
            }
            index += 1;
        }
        if index == nreloc {
            break;
        }
        if have - pos < RELOC_MAX_BYTES && remaining > 0 {
            continue; // a whole record buffered first
        }
        let (r, used) = check::decode_reloc(&buf[pos..have], prev_off, index)?;
        pos += used;
        let mode = check::reloc(arch, lay, &r, index, prev_end)?;
        let target = match r.import {
            None => base,
            Some(i) => {
                let slot = (i as usize)
                    .checked_mul(8)
                    .and_then(|at| binds.get(at..at + 8))
                    .ok_or_else(|| bad("binding"))?;
                u64::from_ne_bytes(slot.try_into().map_err(|_| bad("binding"))?)
            }
        };
        let off = r.offset as usize;
        let field = &mut img[off..off + mode.width];
        apply(mode.number, field, base.wrapping_add(off as u64), target).map_err(|_| {
            Error::RelocOverflow {
                index,
                offset: r.offset,
            }
        })?;
        prev_off = r.offset;
        prev_end = (off + mode.width) as u64;
        index += 1;
    }
    if remaining != 0 || pos != have {
        return Err(check::trailing(lay.nreloc));
    }
    Ok(())
}

/// A loaded module. It owns its memory and gives it back when dropped.
pub struct Module<'p> {
    memory: &'p dyn Memory,
    region: Region,
    arch: Arch,
    lay: Layout,
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
        let len = self
            .lay
            .total
            .min(self.region.len())
            .saturating_sub(self.lay.strs);
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
        self.lay
            .entry
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
        if i >= self.lay.nexport {
            return None;
        }
        let t = self.tables();
        let at = self.lay.exps - self.lay.strs + i * ExpEntry::SIZE;
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

    /// The export called `name`: through the module's hash index if it
    /// has one, else by a search of the sorted table.
    pub fn find(&self, name: &str) -> Option<Dynsym<'_>> {
        // Compare raw name bytes (validated once, at load) and build the
        // symbol only for the hit.
        let t = self.tables();
        let strs = self.strs();
        let key = |i: usize| -> &[u8] {
            let at = (self.lay.exps - self.lay.strs).saturating_add(i * ExpEntry::SIZE);
            t.get(at..at + ExpEntry::SIZE)
                .and_then(ExpEntry::parse)
                .and_then(|e| strs.get(e.name as usize..e.name.checked_add(e.namelen)? as usize))
                .unwrap_or(&[])
        };
        let n = self.lay.nexport;
        let i = if self.lay.idxsize != 0 {
            let raw = t.get(self.lay.idx - self.lay.strs..)?;
            crate::index::probe_by(
                self.lay.idxsize / 8,
                |s| check::slot(raw, s),
                name.as_bytes(),
                |i, k| i < n && key(i) == k,
            )?
        } else {
            lower_bound(n, key, &Key::new(name.as_bytes()))
        };
        self.export(i).filter(|s| s.name == name)
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
        // SAFETY: the region is this module's, from this provider, and
        // nothing reads past `imps` once the imports are forgotten.
        if unsafe { self.memory.shrink(&mut self.region, keep) } {
            self.lay.total = keep;
            self.lay.binds = keep;
        }
    }
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        // SAFETY: the region is this module's, from this provider; the
        // module is going away, and the caller (per `Module`'s contract)
        // no longer runs its code.
        unsafe { self.memory.release(self.region.take()) };
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
