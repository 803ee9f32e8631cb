//! A loaded module: its memory, its tables, its constructors and
//! destructors, and typed access to its exports.

use crate::bind::{Provider, Resolution, Resolver};
use crate::check::{self, Placement, Walker};
use crate::error::{Error, SymName};
use crate::format::{Arch, ExpEntry, ImpEntry, SymEntry, SYM_EXPORTED};
use crate::memory::{Memory, Region};
#[cfg(feature = "atexit")]
use crate::runtime;
use crate::sig::Signof;
use crate::symbol::Symbol;
use crate::table::{lower_bound, Dynsym, Key};
use core::sync::atomic::{AtomicBool, Ordering};

/// A loaded module. It owns its memory and gives it back when dropped.
///
/// The loader leaves a module's constructors to whoever owns its
/// lifecycle: [`Module::init`] runs them, once. Dropping the module
/// (unloading it) runs, in order, its destructors (if `init` ran) from
/// last to first, then the exit handlers its code registered (see
/// [`crate::runtime`]), and only then gives its memory back.
///
/// Calling a module's code — through `init`, through a [`Symbol`] — trusts
/// that code as any code linked into the program is trusted. What the
/// loader guarantees is that nothing in the module *file* can make it
/// misbehave, and that a call has the type the module declares.
pub struct Module<'p> {
    memory: &'p dyn Memory,
    region: Region,
    arch: Arch,
    place: Placement,
    /// Whether the constructors ran (and so the destructors are due);
    /// atomic so that a registry can run them through a shared reference.
    initialized: AtomicBool,
}

// SAFETY: the module's memory is reached only through `&self` reads of
// tables nothing writes after load, and `&mut self` for the few changes;
// its provider is `Sync` (a supertrait of `Memory`).
unsafe impl Send for Module<'_> {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for Module<'_> {}

/// A loaded module's import and the address it was bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Import<'a> {
    /// The name.
    pub name: &'a str,
    /// The signature the module expects (0 = unchecked).
    pub sig: u32,
    /// The address bound.
    pub addr: *const (),
    /// Who provides it.
    pub provider: Provider,
    /// The type description the module carries for it, if any.
    pub desc: Option<&'a str>,
}

impl<'p> Module<'p> {
    /// A module in `region`, loaded and sealed.
    pub(crate) fn new(
        memory: &'p dyn Memory,
        region: Region,
        arch: Arch,
        place: Placement,
    ) -> Module<'p> {
        Module {
            memory,
            region,
            arch,
            place,
            initialized: AtomicBool::new(false),
        }
    }

    /// Bytes `[at, at + len)` of the region: tables the loader wrote before
    /// the module was built and nothing writes afterwards.
    fn bytes(&self, at: usize, len: usize) -> &[u8] {
        let end = at.saturating_add(len).min(self.region.len());
        let at = at.min(end);
        // SAFETY: the region is owned by this module for its whole life
        // and `[at, end)` lies inside it. Past the image, no relocation or
        // exported address reaches these bytes, so nothing writes them
        // while the module lives.
        unsafe { core::slice::from_raw_parts(self.region.as_ptr().add(at), end - at) }
    }

    fn strs(&self) -> &[u8] {
        self.bytes(self.place.strs, self.place.strsize)
    }

    fn types(&self) -> &[u8] {
        let n = (self.place.nexport + self.place.nimport) * crate::format::TypeEntry::SIZE;
        if !self.place.has_types {
            return &[];
        }
        self.bytes(self.place.types, n)
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
    pub fn image_size(&self) -> usize {
        self.place.image
    }

    /// Bytes of text.
    pub fn text_size(&self) -> usize {
        self.place.text
    }

    /// Bytes of data.
    pub fn data_size(&self) -> usize {
        self.place.data
    }

    /// Bytes of bss.
    pub fn bss_size(&self) -> usize {
        self.place.bss
    }

    /// Offset of the data from [`Self::base`].
    pub fn data_offset(&self) -> usize {
        self.place.dataoff
    }

    /// Bytes of memory the module holds: its image and its tables.
    pub fn memory_size(&self) -> usize {
        self.region.len()
    }

    /// Number of exports.
    pub fn nexport(&self) -> usize {
        self.place.nexport
    }

    /// Number of imports still recorded (0 after [`Self::free_imports`]).
    pub fn nimport(&self) -> usize {
        self.place.nimport
    }

    /// Whether `addr` lies in the module's image.
    pub fn contains(&self, addr: *const ()) -> bool {
        (addr as usize).wrapping_sub(self.base() as usize) < self.place.image
    }

    /// Export `i`, in name order, with its address in this process.
    pub fn export(&self, i: usize) -> Option<Dynsym<'_>> {
        if i >= self.place.nexport {
            return None;
        }
        let raw = self.bytes(self.place.exps + i * ExpEntry::SIZE, ExpEntry::SIZE);
        let e = ExpEntry::parse(raw)?;
        let name = self
            .strs()
            .get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
        Some(Dynsym {
            sig: e.sig,
            addr: self.base().wrapping_add(e.value as usize) as *const (),
            name: core::str::from_utf8(name).ok()?,
        })
    }

    /// The type description the module carries for export `i`, if any
    /// (always `None` without the `descs` feature).
    pub fn export_desc(&self, i: usize) -> Option<&str> {
        (i < self.place.nexport)
            .then(|| check::type_desc(self.types(), self.strs(), i))
            .flatten()
    }

    /// The exports in name order.
    pub fn exports(&self) -> impl Iterator<Item = Dynsym<'_>> + '_ {
        (0..self.place.nexport).filter_map(move |i| self.export(i))
    }

    /// Import `i`, in name order, with the address it was bound to.
    pub fn import(&self, i: usize) -> Option<Import<'_>> {
        if i >= self.place.nimport {
            return None;
        }
        let raw = self.bytes(self.place.imps + i * ImpEntry::SIZE, ImpEntry::SIZE);
        let e = ImpEntry::parse(raw)?;
        let name = self
            .strs()
            .get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
        let (addr, provider) = self.binding(i)?;
        Some(Import {
            name: core::str::from_utf8(name).ok()?,
            sig: e.sig,
            addr: addr as usize as *const (),
            provider,
            desc: check::type_desc(self.types(), self.strs(), self.place.nexport + i),
        })
    }

    /// The imports in name order, with their bindings.
    pub fn imports(&self) -> impl Iterator<Item = Import<'_>> + '_ {
        (0..self.place.nimport).filter_map(move |i| self.import(i))
    }

    /// The position of the export called `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        // Compare raw name bytes (validated once, at load) and build the
        // symbol only for the hit.
        let strs = self.strs();
        let exps = self.bytes(self.place.exps, self.place.nexport * ExpEntry::SIZE);
        let key = |i: usize| -> &[u8] {
            let at = i * ExpEntry::SIZE;
            exps.get(at..at + ExpEntry::SIZE)
                .and_then(ExpEntry::parse)
                .and_then(|e| strs.get(e.name as usize..e.name.checked_add(e.namelen)? as usize))
                .unwrap_or(&[])
        };
        let n = self.place.nexport;
        let i = if cfg!(feature = "index") && self.place.slots != 0 {
            let raw = self.bytes(self.place.idx, self.place.slots * 8);
            crate::index::probe_by(
                self.place.slots,
                |s| check::slot(raw, s),
                name.as_bytes(),
                |i, k| i < n && key(i) == k,
            )?
        } else {
            lower_bound(n, key, &Key::new(name.as_bytes()))
        };
        (key(i) == name.as_bytes()).then_some(i)
    }

    /// Export `i`'s name as raw bytes (validated at load), for comparing
    /// without building the symbol; empty if there is no such export.
    #[cfg(all(feature = "registry", feature = "alloc"))]
    pub(crate) fn export_key(&self, i: usize) -> &[u8] {
        if i >= self.place.nexport {
            return &[];
        }
        let raw = self.bytes(self.place.exps + i * ExpEntry::SIZE, ExpEntry::SIZE);
        ExpEntry::parse(raw)
            .and_then(|e| {
                self.strs()
                    .get(e.name as usize..e.name.checked_add(e.namelen)? as usize)
            })
            .unwrap_or(&[])
    }

    /// The module's metadata (see [`crate::meta`]), if it has any.
    pub fn metadata(&self) -> Option<crate::meta::Metadata<'_>> {
        crate::meta::Metadata::new(
            self.bytes(self.place.meta, self.place.metasize),
            self.strs(),
        )
    }

    /// The module's unwind information (see
    /// [`kind::UNWIND`](crate::format::kind::UNWIND)): the image offset
    /// its `.eh_frame` was linked to lie at, and its bytes. `None` without
    /// one, or without the `gdb` feature (which alone keeps it).
    pub fn unwind(&self) -> Option<(usize, &[u8])> {
        let raw = self.bytes(self.place.unwind, self.place.unwindsize);
        let at = raw.get(..4)?;
        let at = u32::from_be_bytes([at[0], at[1], at[2], at[3]]) as usize;
        Some((at, raw.get(8..)?))
    }

    /// Where the module's debug file is (see
    /// [`kind::DEBUGLINK`](crate::format::kind::DEBUGLINK)): its CRC-32 and
    /// path. `None` without one, or without the `gdb` feature.
    pub fn debuglink(&self) -> Option<(u32, &str)> {
        let raw = self.bytes(self.place.link, self.place.linksize);
        let crc = raw.get(..4)?;
        let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        Some((crc, core::str::from_utf8(raw.get(4..)?).ok()?))
    }

    /// Whether the module has a symbols table (always `false` without the
    /// `symbols` feature, which skips the table unread).
    pub fn has_symbols(&self) -> bool {
        self.place.nsym != 0
    }

    /// Entry `i` of the symbols table, in value order.
    pub fn symbol(&self, i: usize) -> Option<SymbolInfo<'_>> {
        if i >= self.place.nsym {
            return None;
        }
        let raw = self.bytes(self.place.syms, self.place.nsym * SymEntry::SIZE);
        let e = check::sym_entry(raw, i)?;
        let name = self
            .strs()
            .get(e.name as usize..e.name.checked_add(e.namelen)? as usize)?;
        Some(SymbolInfo {
            name: core::str::from_utf8(name).ok()?,
            value: e.value,
            size: e.size,
            exported: e.flags & SYM_EXPORTED != 0,
        })
    }

    /// The symbols table: every function and data object the module keeps
    /// that has a name and a size, exported or local, in value order
    /// (empty when the module has no table; see [`Self::has_symbols`]).
    pub fn symbols(&self) -> impl Iterator<Item = SymbolInfo<'_>> + '_ {
        (0..self.place.nsym).filter_map(move |i| self.symbol(i))
    }

    /// The symbol whose code or data `addr` falls in, and how far into it:
    /// for fault handlers and debuggers. `None` for an address outside the
    /// image.
    ///
    /// With a symbols table (see [`Self::symbols`]) this is a binary
    /// search: the last symbol that starts at or below the address, local
    /// (C `static`) ones included, with its size. An address past that
    /// symbol's end (padding, the linker's call stubs, a function without
    /// a recorded size) gives `None`: the table records the extent of
    /// every symbol it lists, so the address lies in none of them, and
    /// naming an earlier symbol would mislead.
    ///
    /// Without a table (a module linked with `aout link --strip-symbols`,
    /// or a loader without the `symbols` feature) the exports are scanned
    /// for the one that starts nearest below the address, whose extent is
    /// unknown (`size` is `None`); `None` before the first export.
    pub fn symbol_at(&self, addr: *const ()) -> Option<SymbolAt<'_>> {
        if !self.contains(addr) {
            return None;
        }
        let a = addr as usize;
        if self.has_symbols() {
            return self.symbol_in_table(a - self.base() as usize);
        }
        // The export that starts nearest below the address (the exports
        // are sorted by name, so this looks at each).
        let s = self
            .exports()
            .filter(|s| s.addr as usize <= a)
            .max_by_key(|s| s.addr as usize)?;
        Some(SymbolAt {
            name: s.name,
            addr: s.addr,
            size: None,
            offset: a - s.addr as usize,
            exported: true,
        })
    }

    /// [`Self::symbol_at`] through the symbols table, for image offset `off`.
    fn symbol_in_table(&self, off: usize) -> Option<SymbolAt<'_>> {
        let raw = self.bytes(self.place.syms, self.place.nsym * SymEntry::SIZE);
        let value = |i: usize| check::sym_entry(raw, i).map_or(u32::MAX, |e| e.value);
        // The first entry that starts past `off`: the one before it is the
        // last that starts at or below it.
        let (mut lo, mut hi) = (0, self.place.nsym);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if value(mid) as usize <= off {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let s = self.symbol(lo.checked_sub(1)?)?;
        let start = s.value as usize;
        let offset = off - start;
        (offset < s.size as usize).then(|| SymbolAt {
            name: s.name,
            addr: self.base().wrapping_add(start) as *const (),
            size: Some(s.size as usize),
            offset,
            exported: s.exported,
        })
    }

    /// The export called `name`: through the module's hash index if it
    /// has one, else by a search of the sorted table.
    pub fn find(&self, name: &str) -> Option<Dynsym<'_>> {
        self.export(self.position(name)?)
    }

    /// The address of export `name`, checking `sig` against the export's
    /// signature when both are non-zero (Plan 9's `dynimport`). The
    /// address is valid only while the module is loaded.
    pub fn addr(&self, name: &str, sig: u32) -> Result<*const (), Error> {
        let i = self.position(name).ok_or_else(|| Error::Undefined {
            name: SymName::new(name),
        })?;
        self.checked(i, sig, false)
    }

    /// Export `i`'s address, checking `sig` against its signature when
    /// both are non-zero; refusing an export without one if `typed`.
    fn checked(&self, i: usize, sig: u32, typed: bool) -> Result<*const (), Error> {
        let s = self.export(i).ok_or_else(|| check::bad("export"))?;
        if typed && s.sig == 0 {
            return Err(Error::Unchecked {
                name: SymName::new(s.name),
            });
        }
        if sig != 0 && s.sig != 0 && sig != s.sig {
            return Err(Error::SigMismatch {
                name: SymName::new(s.name),
                want: sig,
                have: s.sig,
                provider: Provider::MODULE,
                #[cfg(feature = "alloc")]
                detail: crate::error::Mismatch::boxed(
                    (None, sig),
                    (self.export_desc(i), s.sig),
                    None,
                ),
            });
        }
        Ok(s.addr)
    }

    /// Export `name` as a [`Symbol`] of type `F`, a function-pointer type
    /// (`extern "C" fn(i32) -> i32`) or a pointer to data (`*mut i32`):
    /// the export's signature must be that of `F`'s pointee (Plan 9's
    /// `signof` of the function or the data), computed at compile time.
    /// An export without a signature is refused ([`Error::Unchecked`]):
    /// use [`Self::get_unchecked`].
    pub fn get<F: Signof + Copy>(&self, name: &str) -> Result<Symbol<'_, F>, Error> {
        const {
            assert!(core::mem::size_of::<F>() == core::mem::size_of::<*const ()>());
        }
        let sig = const { crate::sig::of_fn::<F>() };
        let i = self.position(name).ok_or_else(|| Error::Undefined {
            name: SymName::new(name),
        })?;
        let addr = self.checked(i, sig, true)?;
        // SAFETY: `addr` is this module's export `name`, whose signature
        // is `F`'s pointee's (checked above, both non-zero).
        Ok(unsafe { Symbol::new(addr) })
    }

    /// Export `name` as a [`Symbol`] of type `F`, checking `sig` against
    /// the export's signature only when both are non-zero.
    ///
    /// # Safety
    ///
    /// `F` must be pointer-sized and describe the export truthfully.
    /// Matching signatures make a mismatch unlikely, not impossible.
    pub unsafe fn get_unchecked<F: Copy>(
        &self,
        name: &str,
        sig: u32,
    ) -> Result<Symbol<'_, F>, Error> {
        const {
            assert!(core::mem::size_of::<F>() == core::mem::size_of::<*const ()>());
        }
        let addr = self.addr(name, sig)?;
        // SAFETY: the caller vouches that the export has type `F`.
        Ok(unsafe { Symbol::new(addr) })
    }

    /// A [`Resolver`] over this module's exports, for binding another
    /// module to them; `provider` is the id its bindings record.
    ///
    /// # Safety
    ///
    /// A module bound through the resolver holds addresses in this one
    /// that nothing ties to this module's life: it must be dropped (or its
    /// imports bound elsewhere, [`Self::rebind`]) before this module is.
    /// A registry that counts dependents by their providers keeps that
    /// promise for its caller.
    pub unsafe fn resolver(&self, provider: Provider) -> ModuleExports<'_, 'p> {
        ModuleExports {
            module: self,
            provider,
        }
    }

    /// Runs the module's constructors (`.preinit_array`, then
    /// `.init_array` in priority order), once; later calls do nothing.
    /// Each is called with three zero arguments, where a C runtime passes
    /// `argc`, `argv` and `envp`.
    /// From then on, unloading the module runs its destructors.
    pub fn init(&mut self) {
        self.start();
    }

    /// [`Self::init`] through a shared reference, for a registry that
    /// hands out shared access while the constructors run.
    pub(crate) fn start(&self) {
        // Load and store, not swap: a registry calls this and `finish`
        // from one thread at a time (the loading one, the unloading one).
        if self.initialized.load(Ordering::Acquire) {
            return;
        }
        self.initialized.store(true, Ordering::Release);
        for i in 0..self.place.ninit {
            self.call_function(self.place.init, i);
        }
    }

    /// Runs what unloading runs before the memory goes: the destructors
    /// from last to first (if the constructors ran), then the exit
    /// handlers the module's code registered. Once only; dropping the
    /// module afterwards just gives its memory back.
    pub(crate) fn finish(&self) {
        if self.initialized.load(Ordering::Acquire) {
            self.initialized.store(false, Ordering::Release);
            for i in (0..self.place.nfini).rev() {
                self.call_function(self.place.fini, i);
            }
        }
        // SAFETY: the module's code and data are still in place.
        #[cfg(feature = "atexit")]
        unsafe {
            runtime::finalize(self.image_range())
        };
    }

    /// Whether [`Self::init`] has run.
    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// Number of constructors and of destructors.
    pub fn functions(&self) -> (usize, usize) {
        (self.place.ninit, self.place.nfini)
    }

    /// Exit handlers the module's code registered that have not run (they
    /// run when it is unloaded; see [`crate::runtime`]; feature `atexit`).
    #[cfg(feature = "atexit")]
    pub fn exit_handlers(&self) -> usize {
        runtime::pending(self.image_range())
    }

    #[cfg(feature = "atexit")]
    fn image_range(&self) -> core::ops::Range<usize> {
        let base = self.base() as usize;
        base..base + self.place.image
    }

    /// Calls entry `i` of the constructor or destructor table at `table`.
    fn call_function(&self, table: usize, i: usize) {
        let raw = self.bytes(table + i * crate::format::FUNC_ENTRY_SIZE, 4);
        let Some(off) = check::func(raw, 0) else {
            return;
        };
        let addr = self.base().wrapping_add(off as usize);
        // SAFETY: the loader checked that the entry lies in the text,
        // which is sealed and in place; the linker put there a function
        // returning nothing (a constructor or destructor of the module's
        // own code). It is called as a C runtime calls `.init_array`
        // entries, with `argc`, `argv` and `envp`, here all zero: a
        // function taking fewer arguments ignores the rest in every C
        // calling convention the loader supports.
        let f: extern "C" fn(usize, usize, usize) = unsafe { core::mem::transmute(addr) };
        f(0, 0, 0);
    }

    /// The import relocations the module keeps, to bind imports again.
    fn import_records(&self) -> check::Records<'_> {
        check::Records {
            bytes: self.bytes(self.place.irel, self.place.irelsize),
            walker: Walker::kept(&self.place, self.arch),
            failed: false,
        }
    }

    /// The refusal of binding import `i` after loading.
    fn late_bind_error(&self, i: usize) -> Error {
        Error::LateBind {
            name: SymName::new(self.import(i).map_or("?", |imp| imp.name)),
        }
    }

    /// Import `i`'s binding: its address and provider. Read a word at a
    /// time, atomically, as a registry writes a late binding
    /// ([`Self::bind_late`]) while others may read it.
    fn binding(&self, i: usize) -> Option<(u64, Provider)> {
        let at = self
            .place
            .binds
            .checked_add(i.checked_mul(check::BINDING_SIZE)?)?;
        if i >= self.place.nimport || at + check::BINDING_SIZE > self.region.len() {
            return None;
        }
        // SAFETY: the binding lies inside the region (checked above),
        // which this module owns; the bindings start 8-aligned in a region
        // aligned to at least 8, so both words are aligned. Every write to
        // a binding after load is atomic (`bind_late`), or made through
        // `&mut self` (`rebind`).
        unsafe {
            let p = self.region.as_ptr().add(at);
            let addr = core::sync::atomic::AtomicUsize::from_ptr(p.cast()).load(Ordering::Acquire);
            let prov =
                core::sync::atomic::AtomicU32::from_ptr(p.add(8).cast()).load(Ordering::Acquire);
            Some((addr as u64, Provider(prov)))
        }
    }

    /// Whether import `i` can be bound again while the module is in use
    /// ([`Self::bind_late`]): as [`Self::check_late_binding`], and every
    /// field is an aligned word, so that one store replaces it.
    #[cfg(feature = "registry")]
    pub(crate) fn check_late_binding_shared(&self, i: usize) -> Result<(), Error> {
        self.check_late_binding(i)?;
        let word = self.arch.word_size();
        let base = self.base() as usize;
        for r in self.import_records() {
            let (r, _) = r?;
            if r.import == Some(i as u32) && (base + r.offset as usize) % word != 0 {
                return Err(self.late_bind_error(i));
            }
        }
        Ok(())
    }

    /// Binds import `i` to `addr` from `provider` while the module may be
    /// in use: as [`Self::rebind`], but each field and the binding are
    /// written by one atomic store, so that code of the module reading one
    /// sees the old address or the new one, and [`Self::import`] readers
    /// the old binding or the new.
    ///
    /// # Safety
    ///
    /// As for [`Self::rebind`], except that the module may be in use; and
    /// [`Self::check_late_binding_shared`] must have accepted the import,
    /// and no other call may bind it at the same time (a registry binds
    /// under its lock).
    #[cfg(feature = "registry")]
    pub(crate) unsafe fn bind_late(
        &self,
        i: usize,
        addr: *const (),
        provider: Provider,
    ) -> Result<(), Error> {
        if self.arch.word_size() != core::mem::size_of::<usize>() {
            return Err(check::bad("late binding of another architecture"));
        }
        // SAFETY: the caller's promise, as above.
        unsafe { self.repoint(i, addr, provider, true) }
    }

    /// Whether import `i` can be bound again after loading: every
    /// reference to it is an address word in the data (a GOT slot, a
    /// pointer), none an instruction in the sealed text. Refused with [`Error::LateBind`]
    /// naming the import otherwise.
    pub fn check_late_binding(&self, i: usize) -> Result<(), Error> {
        self.import(i).ok_or(Error::Limit {
            what: "import index",
            count: i as u64,
            max: self.place.nimport.saturating_sub(1) as u64,
        })?;
        for r in self.import_records() {
            let (r, mode) = r?;
            // Only an address word in the data can be patched again: not
            // an instruction, nor a PC-relative field.
            let word = mode.width == self.arch.word_size() && r.offset as usize >= self.place.text;
            if r.import == Some(i as u32) && !word {
                return Err(self.late_bind_error(i));
            }
        }
        Ok(())
    }

    /// Binds import `i` again, to `addr` from `provider`: every field that
    /// refers to it (GOT slots and pointers in the data) is patched from its
    /// old address to the new one, and [`Self::import`] reports the new
    /// binding. Refused, changing nothing, for an import that is also
    /// reached from the text ([`Error::LateBind`], see
    /// [`Self::check_late_binding`]) or whose new address does not fit a
    /// field.
    ///
    /// # Safety
    ///
    /// `addr` must be a function or object of the type the import
    /// expects, live for as long as the module may use it, and no code of
    /// the module may be using the import while it is patched (the
    /// exclusive borrow keeps handles away, not copies the module's own
    /// code made).
    pub unsafe fn rebind(
        &mut self,
        i: usize,
        addr: *const (),
        provider: Provider,
    ) -> Result<(), Error> {
        self.check_late_binding(i)?;
        // SAFETY: the caller's promise; the exclusive borrow keeps every
        // handle away.
        unsafe { self.repoint(i, addr, provider, false) }
    }

    /// Patches every field referring to import `i` from its old address to
    /// `addr`, and its binding to `addr` from `provider`: twice over the
    /// records, first making and checking each field's new value, then,
    /// all being good, writing them. `shared`: the module may be in use,
    /// so each field must be an aligned word of the data, read and written
    /// by one atomic access, as the binding is.
    ///
    /// # Safety
    ///
    /// As for [`Self::rebind`] (`shared` false, under an exclusive borrow)
    /// or `bind_late` (`shared` true); [`Self::check_late_binding`] (or its
    /// shared form) accepted the import.
    unsafe fn repoint(
        &self,
        i: usize,
        addr: *const (),
        provider: Provider,
        shared: bool,
    ) -> Result<(), Error> {
        use core::sync::atomic::{AtomicU32, AtomicUsize};
        let p = self.place;
        let (old, _) = self.binding(i).ok_or_else(|| check::bad("binding"))?;
        let new = addr as usize as u64;
        let base = self.base() as u64;
        let apply = crate::reloc::patcher(self.arch)?;
        let word = core::mem::size_of::<usize>();
        for write in [false, true] {
            for r in self.import_records() {
                let (r, mode) = r?;
                if r.import != Some(i as u32) {
                    continue;
                }
                let off = r.offset as usize;
                if off < p.text || off + mode.width > p.image || shared && mode.width != word {
                    return Err(self.late_bind_error(i));
                }
                let at = self.region.as_ptr().wrapping_add(off);
                let mut buf = [0u8; 8];
                let field = buf
                    .get_mut(..mode.width)
                    .ok_or_else(|| check::bad("field"))?;
                if shared {
                    // SAFETY: an aligned word of the data
                    // (`check_late_binding_shared`), inside the region;
                    // every write to it after load is atomic.
                    let v = unsafe { AtomicUsize::from_ptr(at.cast()) }.load(Ordering::Acquire);
                    field.copy_from_slice(&v.to_ne_bytes());
                } else {
                    // SAFETY: the field lies in the data, inside the
                    // region, which this module owns.
                    unsafe { core::ptr::copy_nonoverlapping(at, field.as_mut_ptr(), field.len()) };
                }
                // An import word held `addend + old`: take `old` off, add
                // the new address as the load did.
                let addend = crate::arch::field::get(field).wrapping_sub(old);
                crate::arch::field::put(field, addend);
                apply(mode.number, field, base.wrapping_add(off as u64), new).map_err(|_| {
                    Error::ImportOutOfReach {
                        name: SymName::new(self.import(i).map_or("?", |imp| imp.name)),
                        mode: mode.name,
                        offset: r.offset,
                    }
                })?;
                if !write {
                    continue;
                }
                if shared {
                    let mut v = [0u8; core::mem::size_of::<usize>()];
                    v.copy_from_slice(field);
                    // SAFETY: as for the load above.
                    unsafe { AtomicUsize::from_ptr(at.cast()) }
                        .store(usize::from_ne_bytes(v), Ordering::Release);
                } else {
                    // SAFETY: as above; the data stays writable after the
                    // module is sealed (the `Memory` contract).
                    unsafe { core::ptr::copy_nonoverlapping(field.as_ptr(), at, field.len()) };
                }
            }
        }
        let q = self
            .region
            .as_ptr()
            .wrapping_add(p.binds + i * check::BINDING_SIZE);
        // SAFETY: the binding lies in the region's tables (`binding` found
        // it), its words aligned; readers read it atomically. The address
        // word is the low word of the 8 bytes (little-endian targets).
        unsafe {
            AtomicU32::from_ptr(q.add(8).cast()).store(provider.0, Ordering::Release);
            AtomicUsize::from_ptr(q.cast()).store(new as usize, Ordering::Release);
        }
        Ok(())
    }

    /// Forgets the import bindings and relocations (Plan 9's
    /// `dynfreeimport`) and gives their memory back if the provider can
    /// shrink the region. Lookups of exports work as before.
    pub fn free_imports(&mut self) {
        let keep = self.place.imps;
        self.place.nimport = 0;
        self.place.nirel = 0;
        self.place.irelsize = 0;
        // SAFETY: the region is this module's, from this provider, and
        // nothing reads past `imps` once the imports are forgotten.
        if unsafe { self.memory.shrink(&mut self.region, keep) } {
            self.place.irel = keep;
            self.place.binds = keep;
            self.place.total = keep;
        }
    }
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        self.finish();
        // SAFETY: the region is this module's, from this provider; the
        // module is going away, its destructors and exit handlers have
        // run, and no `Symbol` borrows it any more.
        unsafe { self.memory.release(self.region.take()) };
    }
}

impl core::fmt::Debug for Module<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Module")
            .field("arch", &self.arch)
            .field("base", &self.base())
            .field("text", &self.place.text)
            .field("data", &self.place.data)
            .field("bss", &self.place.bss)
            .field("nexport", &self.place.nexport)
            .field("nimport", &self.place.nimport)
            .finish()
    }
}

/// The symbol an address falls in (see [`Module::symbol_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SymbolAt<'a> {
    /// The symbol's name.
    pub name: &'a str,
    /// Where it starts.
    pub addr: *const (),
    /// Its size in bytes, where the module records it.
    pub size: Option<usize>,
    /// How far into it the address lies.
    pub offset: usize,
    /// Whether it is one of the module's exports (else a local symbol).
    pub exported: bool,
}

#[cfg(feature = "registry")]
impl<'a> SymbolAt<'a> {
    /// The start of export `name` at `addr`.
    pub(crate) fn exported(name: &'a str, addr: *const ()) -> Self {
        SymbolAt {
            name,
            addr,
            size: None,
            offset: 0,
            exported: true,
        }
    }
}

/// An entry of a module's symbols table (see [`Module::symbols`] and
/// [`ModuleView::symbols`](crate::ModuleView::symbols)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SymbolInfo<'a> {
    /// The name (local names may repeat: two objects' `static` functions).
    pub name: &'a str,
    /// Image offset of its first byte (on ARM, without the Thumb bit): in
    /// a loaded module, at [`Module::base`] plus this.
    pub value: u32,
    /// Its size in bytes (never 0).
    pub size: u32,
    /// Whether it is one of the module's exports (else a local symbol).
    pub exported: bool,
}

/// A module's exports as a [`Resolver`] (see [`Module::resolver`]).
#[derive(Clone, Copy, Debug)]
pub struct ModuleExports<'m, 'p> {
    module: &'m Module<'p>,
    provider: Provider,
}

impl Resolver for ModuleExports<'_, '_> {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        let i = self.module.position(name)?;
        let s = self.module.export(i)?;
        Some(Resolution {
            addr: s.addr,
            sig: s.sig,
            provider: self.provider,
            desc: self.module.export_desc(i),
        })
    }
}
