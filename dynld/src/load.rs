//! The loader: parse and check, place, read, bind, relocate, seal.
//!
//! Each phase is a function of its own over the types the one before it
//! made: [`check::header`] turns the headers into a [`Header`] (where the
//! parts are in the file), [`Placement`] says where they go in memory,
//! `read` brings them in (applying the base relocations as they stream
//! past), [`bind`] binds the imports, [`reloc::apply_imports`] patches
//! the references to them, and the provider seals the text. The module's
//! constructors are not run here: see [`Module::init`].

use crate::bind::{self, Binder, Imports, Resolver};
use crate::check::{self, bad, Failed, Header, Placement, Slot, Stream, Walker};
use crate::error::Error;
use crate::format::{kind, Arch, Dynhdr, Exec, TableEntry, MAX_TABLES};
use crate::limits::Limits;
use crate::memory::{Memory, Region, Seal};
use crate::module::Module;
use crate::reloc;
use crate::source::Source;
use crate::table::ExportTable;

/// Loads modules against one export table (or resolver), into one memory
/// provider.
#[derive(Clone, Copy)]
pub struct Loader<'e, 'p> {
    binder: Binder<'e>,
    memory: &'p dyn Memory,
    limits: Limits,
    arch: Option<Arch>,
    at: Option<u64>,
    name: Option<&'e str>,
}

/// Gives a region back unless it was handed on ([`Guard::hand_on`]).
struct Guard<'p> {
    memory: &'p dyn Memory,
    region: Region,
    armed: bool,
}

impl Guard<'_> {
    /// The region, no longer given back on drop.
    fn hand_on(&mut self) -> Region {
        self.armed = false;
        self.region.take()
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: the region was allocated by `memory` for a load that
            // failed; nothing refers to it any more.
            unsafe { self.memory.release(self.region.take()) };
        }
    }
}

/// Largest bss brought in with the rest of a module.
const PREFAULT_BSS: usize = 64 << 10;

/// Bytes read (and brought in) at a time from a source that does not know
/// its length: memory is brought in at most this far ahead of what the
/// source has supplied. From one that does (and was checked to hold the
/// whole module), each part is brought in at once, in huge pages where
/// the provider can.
const CHUNK: usize = 64 << 10;

fn seek_to<S: Source + ?Sized>(
    src: &mut S,
    start: u64,
    off: u64,
    sl: &mut Slot,
) -> Result<(), Failed> {
    let to = sl.keep(start.checked_add(off).ok_or(Error::Seek))?;
    sl.keep(src.seek(to))
}

/// Reads `buf` (at offset `at` of the region) in chunks of `size` bytes,
/// asking the provider to bring each in just before it is written.
fn read_into<S: Source + ?Sized>(
    src: &mut S,
    (memory, region, size): (&dyn Memory, &Region, usize),
    buf: &mut [u8],
    at: usize,
    what: &'static str,
    sl: &mut Slot,
) -> Result<(), Failed> {
    for (i, chunk) in buf.chunks_mut(size).enumerate() {
        let from = at + i * size;
        memory.prefault(region, from..from + chunk.len());
        sl.keep(src.read_exact_or(chunk, what))?;
    }
    Ok(())
}

/// Phase 1: the headers and the directory, read and checked into `hd`
/// (in place, as [`check::header_into`] explains).
fn read_header<S: Source + ?Sized>(
    src: &mut S,
    want: Option<Arch>,
    lim: &Limits,
    hd: &mut Header,
    sl: &mut Slot,
) -> Result<(), Failed> {
    let mut hb = [0u8; Exec::SIZE];
    sl.keep(src.read_exact_or(&mut hb, "header"))?;
    let exec = sl.keep(Exec::parse(&hb).ok_or(bad("header")))?;
    let found = sl.keep(check::arch_of(&exec))?;
    let arch = sl.keep(want.ok_or(Error::BadMagic { magic: exec.magic }))?;
    if found != arch {
        return sl.keep(Err(Error::WrongArch { found, want: arch }));
    }
    if !crate::arch::supported(arch) {
        return sl.keep(Err(match Arch::HOST {
            Some(want) => Error::WrongArch { found, want },
            None => Error::BadMagic { magic: exec.magic },
        }));
    }
    if arch.fat_header() {
        let mut fat = [0u8; 8];
        sl.keep(src.read_exact_or(&mut fat, "header"))?;
        sl.keep(check::fat_entry(fat))?;
    }
    let mut db = [0u8; Dynhdr::SIZE];
    sl.keep(src.read_exact_or(&mut db, "header"))?;
    let h = sl.keep(Dynhdr::parse(&db).ok_or(bad("header")))?;
    let dlen = sl.keep(check::directory_size(&h, lim))?;
    let mut dir = [0u8; MAX_TABLES as usize * TableEntry::SIZE];
    let dir = sl.keep(dir.get_mut(..dlen).ok_or(bad("table directory")))?;
    sl.keep(src.read_exact_or(dir, "header"))?;
    check::header_into(hd, arch, &exec, &h, dir, lim, sl)
}

/// The checks of the tables read, in the order the in-memory reader makes
/// them (`ModuleView::parse`).
fn check_tables(
    h: &Header,
    p: &Placement,
    tabs: &[u8],
    lim: &Limits,
    sl: &mut Slot,
) -> Result<(), Failed> {
    let part = |at: usize, len: usize| tabs.get(at - p.strs..at - p.strs + len).unwrap_or(&[]);
    let strs = part(p.strs, p.strsize);
    sl.keep(check::exports(strs, part(p.exps, h.exports().size), h, lim))?;
    if cfg!(feature = "descs") {
        sl.keep(check::types(part(p.types, h.types().size), strs))?;
    }
    sl.keep(check::funcs(
        kind::INIT,
        part(p.init, h.init().size),
        h.text,
    ))?;
    sl.keep(check::funcs(
        kind::FINI,
        part(p.fini, h.fini().size),
        h.text,
    ))?;
    if cfg!(feature = "symbols") {
        sl.keep(check::symbols(part(p.syms, h.symbols().size), strs, h, lim))?;
    }
    if cfg!(all(feature = "gdb", unix)) {
        sl.keep(check::unwind(part(p.unwind, p.unwindsize), h))?;
        sl.keep(check::debuglink(part(p.link, p.linksize)))?;
    }
    sl.keep(crate::meta::check(
        part(p.meta, p.metasize),
        strs,
        h.exports().count,
    ))?;
    if !cfg!(feature = "index") {
        return Ok(());
    }
    sl.keep(check::index(part(p.idx, h.index().size), h.exports().count))
}

impl<'e, 'p> Loader<'e, 'p> {
    /// A loader binding imports against `exports` and placing modules in
    /// `memory`, with [`Limits::DEFAULT`], for the host architecture.
    pub fn new(exports: ExportTable<'e>, memory: &'p dyn Memory) -> Self {
        Loader {
            binder: Binder::Table(exports),
            memory,
            limits: Limits::DEFAULT,
            arch: Arch::HOST,
            at: None,
            name: None,
        }
    }

    /// A loader binding imports through `resolver` (the host's table and
    /// loaded modules' exports, say), recording each binding's provider.
    pub fn with_resolver(resolver: &'e dyn Resolver, memory: &'p dyn Memory) -> Self {
        Loader {
            binder: Binder::Dyn(resolver, bind::bind_dyn),
            ..Loader::new(ExportTable::EMPTY, memory)
        }
    }

    /// Uses `limits`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Names the module being loaded in messages about its imports'
    /// signatures (a file name, a registry name).
    pub fn name(mut self, name: &'e str) -> Self {
        self.name = Some(name);
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
    /// its export addresses ([`Module::find`], [`Module::get`]) are still
    /// those of the local copy.
    pub fn relocate_at(mut self, base: u64) -> Self {
        self.at = Some(base);
        self
    }

    /// Loads the module at the source's current position. Its
    /// constructors have not run: see [`Module::init`].
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
        let mut sl = Slot::new();
        match self.load_in(src, start, &mut sl) {
            Ok(m) => Ok(m),
            Err(Failed) => Err(sl.take()),
        }
    }

    /// [`Self::load_at`]'s phases, each keeping its error in `sl`.
    fn load_in<S: Source + ?Sized>(
        &self,
        src: &mut S,
        start: u64,
        sl: &mut Slot,
    ) -> Result<Module<'p>, Failed> {
        let lim = &self.limits;
        let mut h = Header::EMPTY;
        read_header(src, self.arch, lim, &mut h, sl)?;
        // A source that knows its length refuses a module longer than it
        // before anything is allocated.
        let known = src.length();
        if let Some(len) = known {
            if let Some(what) = check::first_short(&h, len.saturating_sub(start)) {
                return sl.keep(Err(Error::Truncated { what }));
            }
        }
        let mut p = Placement::default();
        sl.keep(p.lay_out(&h))?;
        let region = self.allocate(&p, sl)?;
        let mut guard = Guard {
            memory: self.memory,
            region,
            armed: true,
        };
        let region = &mut guard.region;
        let mapped = sl.keep(self.map_text(src, start, &h, region))?;
        let base = self.at.unwrap_or(region.as_ptr() as u64);
        // SAFETY: the region was just allocated for this module: valid for
        // reads and writes of its length, initialised, and referenced by
        // nothing else until the module is built from it below. No module
        // code has run, and the text is not yet executable.
        let mem: &mut [u8] = unsafe { core::slice::from_raw_parts_mut(region.as_ptr(), p.total) };
        let region = &*region;
        let chunks = (
            self.memory,
            region,
            if known.is_some() { usize::MAX } else { CHUNK },
        );
        let (img, tabs) = mem.split_at_mut(p.strs);

        // The region arrives zeroed (the provider's contract), so the gap
        // after the text and the bss need no writes: a large bss costs no
        // memory until the module touches it.
        seek_to(src, start, h.textoff + mapped as u64, sl)?;
        read_into(src, chunks, &mut img[mapped..h.text], mapped, "text", sl)?;
        let data = h.dataoff..h.dataoff + h.data;
        read_into(src, chunks, &mut img[data.clone()], h.dataoff, "data", sl)?;
        // The tables in file order, each into its place; the base
        // relocations are applied as they stream past.
        for (k, part) in h.tables() {
            seek_to(src, start, part.off, sl)?;
            if k == kind::RELOCS {
                let w = Walker::new(&h, Stream::Base);
                reloc::apply_base(src, w, part.size, img, base, sl)?;
                continue;
            }
            let Some(at) = p.place(k) else { continue };
            let dst = tabs.get_mut(at - p.strs..at - p.strs + part.size);
            let dst = sl.keep(dst.ok_or(bad("table place")))?;
            read_into(src, chunks, dst, at, check::reading(k), sl)?;
        }
        check_tables(&h, &p, tabs, lim, sl)?;
        // Everything read: a small bss comes in with the rest, a large one
        // is left to fault in when used.
        if h.bss <= PREFAULT_BSS {
            self.memory.prefault(region, data.end..p.image);
        }

        // Phase 2: bind. Phase 3: patch the references to the imports.
        let (before, binds) = tabs.split_at_mut(p.binds - p.strs);
        let table = |at: usize, len: usize| before.get(at - p.strs..at - p.strs + len);
        let imports = Imports {
            strs: table(p.strs, p.strsize).unwrap_or(&[]),
            raw: table(p.imps, h.imports().size).unwrap_or(&[]),
            count: p.nimport,
            lim,
            #[cfg(feature = "alloc")]
            types: match p.has_types {
                true => table(p.types, h.types().size).unwrap_or(&[]),
                false => &[],
            },
            #[cfg(feature = "alloc")]
            nexport: p.nexport,
            #[cfg(feature = "alloc")]
            module: self.name,
        };
        let stored = h.hashes().size != 0;
        sl.keep(bind::bind(self.binder, &imports, binds, stored))?;
        let stream = table(p.irel, p.irelsize).unwrap_or(&[]);
        let w = Walker::new(&h, Stream::Import);
        reloc::apply_imports(w, stream, img, binds, base, &imports, sl)?;

        // Phase 4: seal.
        let region = guard.hand_on();
        let seal = Seal {
            text: h.text,
            data: h.dataoff,
            data_end: h.image,
        };
        // SAFETY: the region came from this provider and is live.
        if let Err(e) = unsafe { self.memory.seal(&region, seal) } {
            // SAFETY: as above; the failed module is dropped with it.
            unsafe { self.memory.release(region) };
            return sl.keep(Err(e));
        }
        Ok(Module::new(self.memory, region, h.arch, p))
    }

    /// Calls `f` with each module the module in `src` depends on (its
    /// metadata's dependencies, in order), read without loading it: the
    /// headers, the metadata records and the names only. `src` is put
    /// back where it was, whatever happens; an error of `f` stops the
    /// walk and is returned.
    pub fn dependencies<S: Source + ?Sized>(
        &self,
        src: &mut S,
        mut f: impl FnMut(&str, crate::meta::VersionRange) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let start = src.position()?;
        let r = self.walk_dependencies(src, start, &mut f);
        let back = src.seek(start);
        r.and(back)
    }

    fn walk_dependencies<S: Source + ?Sized>(
        &self,
        src: &mut S,
        start: u64,
        f: &mut dyn FnMut(&str, crate::meta::VersionRange) -> Result<(), Error>,
    ) -> Result<(), Error> {
        use crate::format::{MetaEntry, META_DEPENDS};
        use crate::meta::{good_name, Version, VersionRange};
        let mut sl = Slot::new();
        let mut h = Header::EMPTY;
        if read_header(src, self.arch, &self.limits, &mut h, &mut sl).is_err() {
            return Err(sl.take());
        }
        let (meta, strs) = (h.metadata(), h.strings());
        let fail = |what| Error::BadTable {
            kind: kind::METADATA,
            what,
        };
        for k in 0..meta.count as u64 {
            let at = meta.off + k * MetaEntry::SIZE as u64;
            src.seek(start.checked_add(at).ok_or(Error::Seek)?)?;
            let mut raw = [0u8; MetaEntry::SIZE];
            src.read_exact_or(&mut raw, "metadata")?;
            let e = MetaEntry::parse(&raw).ok_or(fail("truncated record"))?;
            if e.tag != META_DEPENDS {
                continue;
            }
            let mut name = [0u8; 56];
            let len = e.len as usize;
            let name = name.get_mut(..len).ok_or(fail("malformed record"))?;
            if u64::from(e.str) + len as u64 > strs.size as u64 {
                return Err(fail("string outside the string table"));
            }
            src.seek(start + strs.off + u64::from(e.str))?;
            src.read_exact_or(name, "string table")?;
            let name = core::str::from_utf8(name).map_err(|_| fail("malformed record"))?;
            let range = VersionRange {
                min: Version::new(e.a, e.b, e.c),
                max: Version::new(e.d, e.e, e.f),
            };
            if !good_name(name) || range.min >= range.max {
                return Err(fail("malformed record"));
            }
            f(name, range)?;
        }
        Ok(())
    }

    /// A region for placement `p`, checked.
    fn allocate(&self, p: &Placement, sl: &mut Slot) -> Result<Region, Failed> {
        let region = sl.keep(if p.low {
            self.memory.allocate_low(p.total, p.align)
        } else {
            self.memory.allocate(p.total, p.align)
        })?;
        let fail = |what| Error::Memory {
            what,
            size: p.total,
        };
        let e = if region.len() < p.total {
            Some(fail("provider returned a short region"))
        } else if region.as_ptr() as usize % p.align != 0 {
            Some(fail("provider returned a misaligned region"))
        } else {
            None
        };
        if let Some(e) = e {
            // SAFETY: just allocated by this provider, unused.
            unsafe { self.memory.release(region) };
            return sl.keep(Err(e));
        }
        Ok(region)
    }

    /// A large text in a file may be mapped rather than read; the
    /// provider says how much of it it placed. Not when the relocations
    /// are so many that they would patch (and so copy, one page fault at
    /// a time) most of its pages: reading it is cheaper then.
    #[cfg(all(feature = "std", unix))]
    fn map_text<S: Source + ?Sized>(
        &self,
        src: &mut S,
        start: u64,
        h: &Header,
        region: &mut Region,
    ) -> Result<usize, Error> {
        let Some(file) = src.file() else {
            return Ok(0);
        };
        if (h.relocs().count as u64).saturating_mul(8) >= h.text as u64 / 4 {
            return Ok(0);
        }
        let offset = start.checked_add(h.textoff).ok_or(bad("size"))?;
        // SAFETY: the region was just allocated by this provider, is not
        // sealed, and nothing refers to its bytes yet.
        let n = unsafe { self.memory.map_file(region, 0, file, offset, h.text)? };
        if n > h.text {
            return Err(Error::Memory {
                what: "provider mapped more than asked",
                size: n,
            });
        }
        Ok(n)
    }

    #[cfg(not(all(feature = "std", unix)))]
    fn map_text<S: Source + ?Sized>(
        &self,
        _src: &mut S,
        _start: u64,
        _h: &Header,
        _region: &mut Region,
    ) -> Result<usize, Error> {
        Ok(0)
    }
}
