//! The `dynld(10.2)` API for C, as the static library `libdynld_capi.a`:
//! [`dynloadgen`], [`dynloadfd`], [`dynloadable`], [`dynimport`],
//! [`dynfindsym`], [`dyntabsize`], [`dynfreeimport`], [`dynobjfree`] with
//! Plan 9's `Dynsym` and `Dynobj` structures, a run-time signature
//! ([`dynld_sig`]), the last error ([`dynld_errstr`]), the arena of a
//! freestanding build ([`dynld_arena`]) and the module registry
//! ([`registry`]). `include/dynld.h` declares them; `dynld(3)` describes
//! them.
//!
//! Nothing here panics on bad input: a nil pointer, a negative count, an
//! unsorted table, a name that is not UTF-8, a bad module are errors,
//! reported through the caller's `err` (where the call has one) and
//! [`dynld_errstr`], with a nil or -1 result.
//!
//! Two builds: hosted (feature `std`, the default), where modules load
//! into dynld's default memory provider (mmap with W^X on unix) and the
//! library's bookkeeping comes from malloc; and freestanding
//! (`--no-default-features --features freestanding`, e.g. for
//! thumbv7m-none-eabi), where everything comes from the arena the program
//! gives [`dynld_arena`] and no allocator is linked.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// C's `unsigned long` is 32 bits on some targets and 64 on others, so a
// conversion that is needed on one is the identity on another.
#![allow(clippy::useless_conversion)]

use core::ffi::{c_char, c_int, c_long, c_longlong, c_ulong, c_void, CStr};
use core::fmt::{self, Write as _};
use core::ptr;

use dynld::{Error, Limits, Loader, Memory, Module, Provider, Region, Resolution, Resolver};

pub mod registry;
mod sync;

#[cfg(not(feature = "std"))]
use sync::Once;
use sync::Spin;

/// A symbol, as C sees it (Plan 9's `Dynsym`).
///
/// `sig` is `unsigned long` as in the manual, but signatures are 32-bit
/// (see `dynld::sig`): a value above `0xffffffff` is refused. `addr` is a
/// `uintptr_t` where the manual has `ulong` (the same size on ILP32 and
/// LP64 machines, not on LLP64 ones).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Dynsym {
    /// Type signature; 0 for none (unchecked).
    pub sig: c_ulong,
    /// Address in the current address space.
    pub addr: usize,
    /// Linkage name, NUL-terminated; nil ends a table (`_exporttab`).
    pub name: *const c_char,
}

/// A loaded module, as C sees it (Plan 9's `Dynobj`). The library owns it:
/// the caller reads its fields and gives it back to [`dynobjfree`].
#[repr(C)]
#[derive(Debug)]
pub struct Dynobj {
    /// Total bytes of the image (text, data, bss).
    pub size: c_ulong,
    /// Bytes of text.
    pub text: c_ulong,
    /// Bytes of data.
    pub data: c_ulong,
    /// Bytes of bss.
    pub bss: c_ulong,
    /// Start of text, data, bss.
    pub base: *mut u8,
    /// Length of `export`.
    pub nexport: c_int,
    /// The module's exports, sorted by name, addresses in this process.
    pub export: *mut Dynsym,
    /// Length of `import`.
    pub nimport: c_int,
    /// The module's imports: each points at the entry of the caller's
    /// export table it was bound to (imports dynld supplies itself, such as
    /// `__cxa_atexit`, are not listed).
    pub import: *mut *mut Dynsym,
}

/// `long (*read)(void *file, void *buf, long n)`: bytes read, 0 at the
/// end, -1 on error.
pub type ReadFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_long) -> c_long;
/// `vlong (*seek)(void *file, vlong off, int type)`: the new offset, or -1
/// (`type` 0 from the start, 1 from the current offset).
pub type SeekFn = unsafe extern "C" fn(*mut c_void, c_longlong, c_int) -> c_longlong;
/// `void (*err)(char *msg)`: called with the error string of a failed load.
pub type ErrFn = unsafe extern "C" fn(*mut c_char);

/// Longest error string kept, NUL included (longer ones are cut).
pub const ERRMAX: usize = 256;

/// An error of the C layer: dynld's own, or one about the call's arguments.
#[derive(Debug)]
pub(crate) enum CError {
    /// From the loader or the registry.
    Dynld(Error),
    /// About the arguments.
    Msg(&'static str),
    /// About an argument, with the symbol or module name it concerns.
    Named(&'static str, NameBuf),
}

impl From<Error> for CError {
    fn from(e: Error) -> Self {
        CError::Dynld(e)
    }
}

impl fmt::Display for CError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CError::Dynld(e) => write!(f, "{e}"),
            CError::Msg(m) => f.write_str(m),
            CError::Named(m, n) => write!(f, "{m}: {}", n.as_str()),
        }
    }
}

/// A short copy of a name for an error message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameBuf {
    b: [u8; 64],
    n: usize,
}

impl NameBuf {
    pub(crate) fn new(s: &[u8]) -> Self {
        let mut b = [0u8; 64];
        let n = s.len().min(b.len());
        b[..n].copy_from_slice(&s[..n]);
        NameBuf { b, n }
    }
    fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.b[..self.n]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.b[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

/// An error string being built: NUL-terminated, cut at [`ERRMAX`].
pub(crate) struct ErrBuf {
    b: [u8; ERRMAX],
    n: usize,
}

impl ErrBuf {
    const fn new() -> Self {
        ErrBuf {
            b: [0; ERRMAX],
            n: 0,
        }
    }
}

impl fmt::Write for ErrBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &c in s.as_bytes() {
            // Keep room for the NUL; a NUL inside would cut the string.
            if self.n + 1 < ERRMAX && c != 0 {
                self.b[self.n] = c;
                self.n += 1;
            }
        }
        self.b[self.n] = 0;
        Ok(())
    }
}

/// The last error of any call.
static LAST: Spin<ErrBuf> = Spin::new(ErrBuf::new());

/// Records `e` as the last error and, if given, passes it to `err`.
pub(crate) fn fail(e: &CError, err: Option<ErrFn>) {
    let mut b = ErrBuf::new();
    let _ = write!(b, "{e}");
    LAST.with(|l| {
        l.b = b.b;
        l.n = b.n;
    });
    if let Some(f) = err {
        // SAFETY: the caller's callback, given a NUL-terminated string in
        // a buffer that lives for the call (Plan 9's werrstr copies it).
        unsafe { f(b.b.as_mut_ptr().cast()) };
    }
}

/// The result of `r`, or `bad` after recording the error.
pub(crate) fn or_fail<T>(r: Result<T, CError>, err: Option<ErrFn>, bad: T) -> T {
    r.unwrap_or_else(|e| {
        fail(&e, err);
        bad
    })
}

/// Copies the last error string (of any call of this library) into
/// `buf`, at most `n` bytes with the NUL; returns its length (without the
/// NUL), or -1 if `buf` is nil or `n` is not positive.
///
/// # Safety
///
/// `buf` must be nil or valid for writing `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_errstr(buf: *mut c_char, n: c_int) -> c_int {
    let Ok(n) = usize::try_from(n) else { return -1 };
    if buf.is_null() || n == 0 {
        return -1;
    }
    LAST.with(|l| {
        let k = l.n.min(n - 1);
        // SAFETY: the caller vouches for `n` writable bytes at `buf`;
        // `k + 1 <= n`.
        unsafe {
            ptr::copy_nonoverlapping(l.b.as_ptr(), buf.cast::<u8>(), k);
            buf.add(k).write(0);
        }
        c_int::try_from(k).unwrap_or(c_int::MAX)
    })
}

/// A C string as `&str`, or an error naming `what`.
///
/// # Safety
///
/// `p` must be nil or a NUL-terminated string living for `'a`.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, CError> {
    if p.is_null() {
        return Err(CError::Msg(what));
    }
    // SAFETY: the caller vouches for the string.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| CError::Named("name is not UTF-8", NameBuf::new(c.to_bytes())))
}

/// A 32-bit signature from C's `unsigned long`.
pub(crate) fn sig32(sig: c_ulong) -> Result<u32, CError> {
    u32::try_from(sig).map_err(|_| CError::Msg("signature wider than 32 bits"))
}

/// A source over Plan 9's read and seek callbacks.
pub(crate) struct CSource {
    file: *mut c_void,
    read: ReadFn,
    seek: SeekFn,
}

impl CSource {
    pub(crate) fn new(
        file: *mut c_void,
        read: Option<ReadFn>,
        seek: Option<SeekFn>,
    ) -> Result<Self, CError> {
        match (read, seek) {
            (Some(read), Some(seek)) => Ok(CSource { file, read, seek }),
            _ => Err(CError::Msg("nil read or seek function")),
        }
    }
}

impl dynld::Source for CSource {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let want = c_long::try_from(buf.len()).unwrap_or(c_long::MAX);
        // SAFETY: the caller's callback, asked for at most `want` bytes
        // into `buf`, which holds at least that many.
        let got = unsafe { (self.read)(self.file, buf.as_mut_ptr().cast(), want) };
        match usize::try_from(got) {
            Ok(n) if n <= buf.len() => Ok(n),
            _ => Err(Error::Read),
        }
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        let p = c_longlong::try_from(pos).map_err(|_| Error::Seek)?;
        // SAFETY: the caller's callback, with its own file.
        match unsafe { (self.seek)(self.file, p, 0) } {
            r if r == p => Ok(()),
            _ => Err(Error::Seek),
        }
    }
    fn position(&mut self) -> Result<u64, Error> {
        // SAFETY: as in `seek`.
        let r = unsafe { (self.seek)(self.file, 0, 1) };
        u64::try_from(r).map_err(|_| Error::Seek)
    }
}

/// The caller's export table, checked: names present, UTF-8, strictly
/// increasing (memcmp order), signatures 32-bit.
#[derive(Clone, Copy)]
pub(crate) struct CTable<'a> {
    syms: &'a [Dynsym],
    /// The descriptions [`dynld_describe`] gave for this table, one per
    /// entry, if it gave any.
    descs: Option<&'a [*const c_char]>,
}

/// The table [`dynld_describe`] was last given, and its descriptions (by
/// address; 0 for none).
static DESCRIBED: Spin<(usize, usize)> = Spin::new((0, 0));

impl<'a> CTable<'a> {
    /// # Safety
    ///
    /// `syms` must be nil (with `n` 0) or point at `n` entries whose names
    /// are nil or NUL-terminated, all living for `'a`.
    pub(crate) unsafe fn new(syms: *const Dynsym, n: c_int) -> Result<Self, CError> {
        let n = usize::try_from(n).map_err(|_| CError::Msg("negative export count"))?;
        if n == 0 {
            return Ok(CTable {
                syms: &[],
                descs: None,
            });
        }
        if syms.is_null() {
            return Err(CError::Msg("nil export table"));
        }
        // SAFETY: the caller vouches for `n` entries at `syms`.
        let syms = unsafe { core::slice::from_raw_parts(syms, n) };
        let mut prev: Option<&[u8]> = None;
        for s in syms {
            // SAFETY: the caller vouches for each name.
            let name = unsafe { c_str(s.name, "export table: nil name before its end")? };
            if name.is_empty() {
                return Err(CError::Msg("export table: empty name"));
            }
            sig32(s.sig).map_err(|_| {
                CError::Named(
                    "export table: signature too wide",
                    NameBuf::new(name.as_bytes()),
                )
            })?;
            if let Some(p) = prev {
                if p >= name.as_bytes() {
                    return Err(CError::Named(
                        "export table not sorted by name or a name repeated",
                        NameBuf::new(name.as_bytes()),
                    ));
                }
            }
            prev = Some(name.as_bytes());
        }
        let (tab, descs) = DESCRIBED.with(|d| *d);
        let descs = (tab == syms.as_ptr() as usize && descs != 0).then(|| {
            // SAFETY: dynld_describe's caller vouched for one live
            // description per entry of this table, up to its nil entry,
            // which `n` does not pass (the entries before it have names).
            unsafe { core::slice::from_raw_parts(descs as *const *const c_char, n) }
        });
        Ok(CTable { syms, descs })
    }

    /// The description [`dynld_describe`] gave entry `i`, if any.
    pub(crate) fn desc(&self, i: usize) -> Option<&'a str> {
        let d = *self.descs?.get(i)?;
        // SAFETY: non-nil descriptions are NUL-terminated and live as long
        // as the table (dynld_describe's contract).
        let d = unsafe { c_str(d, "").ok()? };
        (!d.is_empty()).then_some(d)
    }

    fn name(s: &Dynsym) -> &[u8] {
        // SAFETY: checked non-nil and NUL-terminated by `new`; lives for 'a.
        unsafe { CStr::from_ptr(s.name) }.to_bytes()
    }

    /// The position of `name`.
    pub(crate) fn position(&self, name: &[u8]) -> Option<usize> {
        self.syms.binary_search_by(|s| Self::name(s).cmp(name)).ok()
    }

    /// Every entry's description ("" for none), if [`dynld_describe`]
    /// gave this table some.
    pub(crate) fn desc_all(&self) -> Option<impl Iterator<Item = &'a str> + '_> {
        self.descs?;
        Some((0..self.syms.len()).map(|i| self.desc(i).unwrap_or("")))
    }

    pub(crate) fn entries(&self) -> &'a [Dynsym] {
        self.syms
    }
}

impl Resolver for CTable<'_> {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        let i = self.position(name.as_bytes())?;
        let s = self.syms.get(i)?;
        Some(Resolution {
            addr: s.addr as *const (),
            sig: u32::try_from(s.sig).ok()?,
            provider: Provider::HOST,
            desc: self.desc(i),
        })
    }
}

/// The memory modules load into: dynld's default provider when hosted,
/// the arena when freestanding.
pub(crate) fn module_memory() -> Result<&'static dyn Memory, CError> {
    #[cfg(feature = "std")]
    {
        Ok(dynld::default_memory())
    }
    #[cfg(not(feature = "std"))]
    {
        arena()
    }
}

/// The memory for the library's own records (a `Dynobj` and its tables,
/// the registry's host table): malloc when hosted, the arena when
/// freestanding.
pub(crate) fn record_memory() -> Result<&'static dyn Memory, CError> {
    #[cfg(feature = "std")]
    {
        Ok(&dynld::HEAP)
    }
    #[cfg(not(feature = "std"))]
    {
        arena()
    }
}

/// Regions the arena can have out at once: each module takes one, and its
/// `Dynobj` another.
#[cfg(not(feature = "std"))]
pub const ARENA_REGIONS: usize = 16;

#[cfg(not(feature = "std"))]
static ARENA: Once<dynld::Arena<'static, ARENA_REGIONS>> = Once::new();

#[cfg(not(feature = "std"))]
fn arena() -> Result<&'static dyn Memory, CError> {
    match ARENA.get() {
        Some(a) => Ok(a),
        None => Err(CError::Msg("no arena: call dynld_arena first")),
    }
}

/// Gives a freestanding library the `len` bytes at `mem` for modules and
/// its records; once, before any load. Returns 0, or -1 if `mem` is nil,
/// `len` is 0, an arena was given already, or the library is a hosted
/// build (whose memory comes from the system).
///
/// # Safety
///
/// `mem` must be valid for reads and writes of `len` bytes for the rest of
/// the program, used by nothing else, and executable where the machine
/// distinguishes (a Cortex-M's SRAM is).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_arena(mem: *mut c_void, len: usize) -> c_int {
    #[cfg(feature = "std")]
    {
        let _ = (mem, len);
        fail(
            &CError::Msg("dynld_arena: hosted build, memory comes from the system"),
            None,
        );
        -1
    }
    #[cfg(not(feature = "std"))]
    {
        if mem.is_null() || len == 0 {
            fail(&CError::Msg("dynld_arena: nil or empty"), None);
            return -1;
        }
        // SAFETY: the caller gives the buffer to the arena for good.
        let a = unsafe { dynld::Arena::from_raw_parts(mem.cast(), len) };
        if ARENA.set(a).is_err() {
            fail(&CError::Msg("dynld_arena: arena given already"), None);
            return -1;
        }
        0
    }
}

/// A loaded module with its C view: the `Dynobj` first, so a `Dynobj *`
/// is a pointer to it.
#[repr(C)]
struct Obj {
    c: Dynobj,
    module: Module<'static>,
    /// This record's own region (the record, the export and import tables
    /// and the export names follow it).
    region: Region,
    memory: &'static dyn Memory,
}

/// Builds the C record for `m`, bound against `host`.
fn record(m: Module<'static>, host: &CTable<'_>) -> Result<*mut Dynobj, CError> {
    let nexport = m.nexport();
    let names: usize = m.exports().map(|s| s.name.len() + 1).sum();
    let bound: usize = m
        .imports()
        .filter(|i| i.provider == Provider::HOST && host.position(i.name.as_bytes()).is_some())
        .count();
    let too_big = || CError::Msg("module too big for a Dynobj");
    let cnexport = c_int::try_from(nexport).map_err(|_| too_big())?;
    let cnimport = c_int::try_from(bound).map_err(|_| too_big())?;
    let exp_at = core::mem::size_of::<Obj>().next_multiple_of(core::mem::align_of::<Dynsym>());
    let imp_at = exp_at + nexport * core::mem::size_of::<Dynsym>();
    let names_at = imp_at + bound * core::mem::size_of::<*mut Dynsym>();
    let size = names_at + names;
    let memory = record_memory()?;
    let region = memory.allocate(size, core::mem::align_of::<Obj>())?;
    let base = region.as_ptr();
    // SAFETY: the region is fresh, `size` bytes, aligned for `Obj` (and so
    // for `Dynsym` and pointers, whose alignment is no more): every write
    // below lands inside it at an offset aligned for what is written.
    unsafe {
        let exp = base.add(exp_at).cast::<Dynsym>();
        let imp = base.add(imp_at).cast::<*mut Dynsym>();
        let mut name = base.add(names_at);
        for (i, s) in m.exports().enumerate().take(nexport) {
            ptr::copy_nonoverlapping(s.name.as_ptr(), name, s.name.len());
            name.add(s.name.len()).write(0);
            exp.add(i).write(Dynsym {
                sig: c_ulong::from(s.sig),
                addr: s.addr as usize,
                name: name.cast(),
            });
            name = name.add(s.name.len() + 1);
        }
        let mut k = 0;
        for i in m.imports() {
            if k == bound || i.provider != Provider::HOST {
                continue;
            }
            if let Some(j) = host.position(i.name.as_bytes()) {
                imp.add(k)
                    .write(ptr::from_ref(&host.entries()[j]).cast_mut());
                k += 1;
            }
        }
        let c = Dynobj {
            size: m.image_size() as c_ulong,
            text: m.text_size() as c_ulong,
            data: m.data_size() as c_ulong,
            bss: m.bss_size() as c_ulong,
            base: m.base().cast_mut(),
            nexport: cnexport,
            export: exp,
            nimport: c_int::try_from(k).unwrap_or(cnimport),
            import: imp,
        };
        let obj = base.cast::<Obj>();
        obj.write(Obj {
            c,
            module: m,
            region,
            memory,
        });
        Ok(obj.cast::<Dynobj>())
    }
}

/// Loads a module through `read` and `seek` on `file` (Plan 9's
/// `dynloadgen`), binding its imports to `exports` (`nexport` entries,
/// sorted by name, checked). `maxsize`, if non-zero, limits its image.
/// Returns the module, or nil after passing the error string to `err` (if
/// not nil) and recording it for [`dynld_errstr`]; the file is put back
/// where it was. The module's constructors are not run.
///
/// # Safety
///
/// `read` and `seek` must behave as `dynld(3)` says, on `file`; `exports`
/// must point at `nexport` entries with NUL-terminated names, and the
/// addresses in it be what their names and signatures say; the table must
/// outlive the module (its `import` entries point into it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynloadgen(
    file: *mut c_void,
    read: Option<ReadFn>,
    seek: Option<SeekFn>,
    err: Option<ErrFn>,
    exports: *mut Dynsym,
    nexport: c_int,
    maxsize: c_ulong,
) -> *mut Dynobj {
    let r = (|| {
        let mut src = CSource::new(file, read, seek)?;
        // SAFETY: the caller's promise about the table.
        let host = unsafe { CTable::new(exports, nexport)? };
        load(&mut src, &host, maxsize)
    })();
    or_fail(r, err, ptr::null_mut())
}

fn load(
    src: &mut dyn dynld::Source,
    host: &CTable<'_>,
    maxsize: c_ulong,
) -> Result<*mut Dynobj, CError> {
    let m = Loader::with_resolver(host, module_memory()?)
        .limits(Limits {
            max_size: u64::from(maxsize),
            ..Limits::DEFAULT
        })
        .load(src)?;
    record(m, host)
}

/// Loads a module from the file open on `fd`, at its current offset
/// (Plan 9's `dynloadfd`); the error string goes to [`dynld_errstr`].
/// Hosted builds only.
///
/// # Safety
///
/// As [`dynloadgen`] for the table; `fd` must be nil (negative) or an
/// open descriptor, not closed meanwhile.
#[cfg(all(feature = "std", unix))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynloadfd(
    fd: c_int,
    exports: *mut Dynsym,
    nexport: c_int,
    maxsize: c_ulong,
) -> *mut Dynobj {
    use std::os::fd::FromRawFd;
    let r = (|| {
        if fd < 0 {
            return Err(CError::Msg("bad file descriptor"));
        }
        // SAFETY: the caller's promise about the table.
        let host = unsafe { CTable::new(exports, nexport)? };
        // SAFETY: `fd` is the caller's open descriptor; ManuallyDrop keeps
        // it open when this borrowed File goes.
        let f = core::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        load(&mut dynld::IoSource(&*f), &host, maxsize)
    })();
    or_fail(r, None, ptr::null_mut())
}

/// Whether `file` holds a module for this machine: 1 or 0. The file's
/// offset is left where it was.
///
/// # Safety
///
/// As for [`dynloadgen`]'s callbacks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynloadable(
    file: *mut c_void,
    read: Option<ReadFn>,
    seek: Option<SeekFn>,
) -> c_int {
    match CSource::new(file, read, seek) {
        Ok(mut src) => c_int::from(dynld::dynloadable(&mut src)),
        Err(e) => {
            fail(&e, None);
            0
        }
    }
}

/// The module a `Dynobj *` from this library describes.
///
/// # Safety
///
/// `o` must be nil or from [`dynloadgen`] or [`dynloadfd`], not freed.
unsafe fn obj<'o>(o: *mut Dynobj) -> Result<&'o mut Obj, CError> {
    if o.is_null() {
        return Err(CError::Msg("nil Dynobj"));
    }
    // SAFETY: the caller's promise: `o` is the first field of a live Obj.
    Ok(unsafe { &mut *o.cast::<Obj>() })
}

/// The address of export `name` of `o`, or nil if `o` does not export it
/// or `sig` is non-zero and the export's (non-zero) signature differs
/// (Plan 9's `dynimport`); the reason goes to [`dynld_errstr`].
///
/// # Safety
///
/// `o` must be nil or a live module of this library; `name` nil or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynimport(
    o: *mut Dynobj,
    name: *const c_char,
    sig: c_ulong,
) -> *mut c_void {
    let r = (|| {
        // SAFETY: the caller's promises.
        let (o, name) = unsafe { (obj(o)?, c_str(name, "nil name")?) };
        Ok(o.module.addr(name, sig32(sig)?)?.cast_mut().cast())
    })();
    or_fail(r, None, ptr::null_mut())
}

/// The entry called `name` in the name-sorted table `syms` of `nsym`
/// entries (Plan 9's `dynfindsym`), or nil.
///
/// # Safety
///
/// `syms` must be nil or point at `nsym` entries with NUL-terminated
/// names; `name` nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynfindsym(
    name: *const c_char,
    syms: *mut Dynsym,
    nsym: c_int,
) -> *mut Dynsym {
    let Ok(n) = usize::try_from(nsym) else {
        return ptr::null_mut();
    };
    if name.is_null() || syms.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: the caller vouches for the name and the `n` entries.
    let (key, t) = unsafe {
        (
            CStr::from_ptr(name).to_bytes(),
            core::slice::from_raw_parts(syms, n),
        )
    };
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let s = &t[mid];
        if s.name.is_null() {
            // A nil name sorts last (the terminator).
            hi = mid;
            continue;
        }
        // SAFETY: a non-nil name of the caller's table.
        match unsafe { CStr::from_ptr(s.name) }.to_bytes().cmp(key) {
            core::cmp::Ordering::Less => lo = mid + 1,
            core::cmp::Ordering::Greater => hi = mid,
            core::cmp::Ordering::Equal => return ptr::from_ref(s).cast_mut(),
        }
    }
    ptr::null_mut()
}

/// The number of entries of `t` before the first with a nil name (Plan
/// 9's `dyntabsize`, for `_exporttab`); 0 for nil.
///
/// # Safety
///
/// `t` must be nil or a table ending in an entry with a nil name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dyntabsize(t: *mut Dynsym) -> c_int {
    if t.is_null() {
        return 0;
    }
    let mut n: c_int = 0;
    // SAFETY: the caller vouches for the terminator, so every entry up to
    // it is readable.
    while n < c_int::MAX && !unsafe { (*t.add(n as usize)).name }.is_null() {
        n += 1;
    }
    n
}

/// Forgets `o`'s import bindings (Plan 9's `dynfreeimport`): `nimport`
/// becomes 0 and `import` nil; the exports work as before.
///
/// # Safety
///
/// `o` must be nil or a live module of this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynfreeimport(o: *mut Dynobj) {
    // SAFETY: the caller's promise.
    if let Ok(o) = unsafe { obj(o) } {
        o.module.free_imports();
        o.c.nimport = 0;
        o.c.import = ptr::null_mut();
    }
}

/// Unloads `o` (Plan 9's `dynobjfree`): runs its destructors if
/// [`dynld_init`] ran its constructors, then the exit handlers it
/// registered, then gives its memory back. Nil is ignored.
///
/// # Safety
///
/// `o` must be nil or a live module of this library, and none of its code
/// or data be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynobjfree(o: *mut Dynobj) {
    if o.is_null() {
        return;
    }
    // SAFETY: the caller's promise: `o` heads a live Obj, read out once
    // here and never again; its region is this record's, from `memory`.
    unsafe {
        let Obj {
            module,
            region,
            memory,
            ..
        } = o.cast::<Obj>().read();
        drop(module);
        memory.release(region);
    }
}

/// Runs `o`'s constructors, once (a second call does nothing); 0, or -1
/// for nil.
///
/// # Safety
///
/// `o` must be nil or a live module of this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_init(o: *mut Dynobj) -> c_int {
    // SAFETY: the caller's promise.
    match unsafe { obj(o) } {
        Ok(o) => {
            o.module.init();
            0
        }
        Err(e) => {
            fail(&e, None);
            -1
        }
    }
}

/// Gives the type descriptions of table `t`'s entries, `descs[i]` for
/// `t[i]` ("" for none), so that a signature mismatch against the table
/// shows the host's description beside the module's (Plan 9's `Dynsym`
/// has no room for one). `aout exports --lang c` writes `_exportdesc`
/// for `_exporttab`. One table at a time; nil `descs` forgets them.
/// Returns 0, or -1 if the two do not end together (the reason to
/// [`dynld_errstr`]).
///
/// # Safety
///
/// `t` must be a table ending in an entry with a nil name, and `descs`
/// nil or an array of as many NUL-terminated strings followed by nil,
/// both living as long as the table is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_describe(t: *mut Dynsym, descs: *const *const c_char) -> c_int {
    let r = (|| {
        if t.is_null() {
            return Err(CError::Msg("nil export table"));
        }
        if descs.is_null() {
            DESCRIBED.with(|d| *d = (0, 0));
            return Ok(0);
        }
        // SAFETY: the caller's promise of a nil-terminated table.
        let n = unsafe { dyntabsize(t) } as usize;
        for i in 0..=n {
            // SAFETY: `descs` has n entries and a nil (the caller's
            // promise); reading stops at the first nil.
            let d = unsafe { *descs.add(i) };
            if d.is_null() != (i == n) {
                return Err(CError::Msg(
                    "descriptions and export table do not end together",
                ));
            }
        }
        DESCRIBED.with(|d| *d = (t as usize, descs as usize));
        Ok(0)
    })();
    or_fail(r, None, -1)
}

/// The signature of the type that `desc` describes, in the grammar of
/// `dynld(3)` (the value `DYNLD_EXPORT` and `aout link` give it), or 0
/// (never a signature) if `desc` is nil or malformed, the reason going to
/// [`dynld_errstr`].
///
/// # Safety
///
/// `desc` must be nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_sig(desc: *const c_char) -> c_ulong {
    let r = (|| {
        // SAFETY: the caller's promise.
        let d = unsafe { c_str(desc, "nil type description")? };
        dynld::sig::hash(d)
            .map(c_ulong::from)
            .map_err(|_| CError::Named("bad type description", NameBuf::new(d.as_bytes())))
    })();
    or_fail(r, None, 0)
}

#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Nothing in the library panics on any input; should a bug make it,
    // stop here rather than unwind into C.
    loop {
        core::hint::spin_loop();
    }
}
