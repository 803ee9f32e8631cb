//! The module registry for C: one registry in the library, set up once by
//! [`dynld_reginit`] with the program's export table, then modules loaded
//! under names ([`dynld_regload`]), held and released by handle
//! ([`dynld_hold`], [`dynld_release`]), unloaded by name
//! ([`dynld_unload`], [`dynld_sweep`]), and symbols found by name
//! ([`dynld_lookup`], [`dynld_holdsym`]) and by address
//! ([`dynld_locate`]).
//!
//! Hosted, the registry grows as needed; freestanding it holds
//! [`MODULES`] modules. A hold handle is a small positive number; the
//! library keeps [`HOLDS`] of them at once.

use core::ffi::{c_char, c_int, c_ulong, c_void};
use core::ptr;

use dynld::stub::Autoload;
use dynld::{Dynsym as RDynsym, Error, ExportTable, Held, LoadOptions, Registry};

use crate::sync::{Once, Spin};
use crate::{
    c_str, fail, module_memory, or_fail, record_memory, sig32, CError, CSource, CTable, Dynsym,
    ReadFn, SeekFn,
};

/// Modules a freestanding registry holds at once.
pub const MODULES: usize = 8;
/// Hold handles outstanding at once.
pub const HOLDS: usize = 32;

#[cfg(feature = "std")]
type Store = dynld::Growable<'static>;
#[cfg(not(feature = "std"))]
type Store = dynld::Fixed<'static, MODULES>;

type Reg = Registry<'static, Store>;
type Hold = Held<'static, 'static, Store>;

static REG: Once<Reg> = Once::new();
/// The holds outstanding, each with its slot's generation: a handle names
/// the slot and the generation, so a handle released (and its slot reused)
/// is refused rather than taken for the newer hold.
static HELD: Spin<[(u32, Option<Hold>); HOLDS]> = Spin::new([const { (0, None) }; HOLDS]);

/// Generations a slot goes through before its handles repeat.
const GENERATIONS: u32 = (c_int::MAX as u32) / HOLDS as u32;

/// The slot of handle `h`, if it is a hold outstanding.
fn slot_of(slots: &[(u32, Option<Hold>); HOLDS], h: c_int) -> Option<usize> {
    let k = u32::try_from(h).ok()?.checked_sub(1)?;
    let (gen, i) = (k / HOLDS as u32, (k % HOLDS as u32) as usize);
    let (g, held) = slots.get(i)?;
    (*g == gen && held.is_some()).then_some(i)
}

fn reg() -> Result<&'static Reg, CError> {
    REG.get()
        .ok_or(CError::Msg("registry not set up: call dynld_reginit first"))
}

/// Sets up the registry, binding modules against `exports` (`nexport`
/// entries sorted by name, checked) and the modules loaded before them.
/// Once; 0, or -1 with the reason in `dynld_errstr`.
///
/// # Safety
///
/// `exports` must point at `nexport` entries with NUL-terminated names,
/// true addresses and signatures, and live (unchanged) for the rest of the
/// program.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_reginit(exports: *mut Dynsym, nexport: c_int) -> c_int {
    let r = (|| {
        if REG.get().is_some() {
            return Err(CError::Msg("registry set up already"));
        }
        // SAFETY: the caller's promise, for the rest of the program.
        let host: CTable<'static> = unsafe { CTable::new(exports, nexport)? };
        let n = host.entries().len();
        let syms: &'static [RDynsym<'static>] = if n == 0 {
            &[]
        } else {
            let size = n * core::mem::size_of::<RDynsym<'static>>();
            let region =
                record_memory()?.allocate(size, core::mem::align_of::<RDynsym<'static>>())?;
            let base = region.as_ptr().cast::<RDynsym<'static>>();
            for (i, s) in host.entries().iter().enumerate() {
                // SAFETY: checked by CTable::new; the caller's for good.
                let name = unsafe { c_str(s.name, "nil name")? };
                // SAFETY: the fresh region holds `n` entries, aligned.
                unsafe {
                    base.add(i)
                        .write(RDynsym::new(name, sig32(s.sig)?, s.addr as *const ()))
                };
            }
            // The region is kept for the rest of the program, as the
            // registry is: never released.
            // SAFETY: `n` entries were written just now, and the region is
            // never released or written again.
            unsafe { core::slice::from_raw_parts(base, n) }
        };
        // The descriptions dynld_describe gave, if any, in record memory
        // for good like the entries.
        let descs: &'static [&'static str] = match host.desc_all() {
            Some(iter) if n > 0 => {
                let size = n * core::mem::size_of::<&'static str>();
                let region =
                    record_memory()?.allocate(size, core::mem::align_of::<&'static str>())?;
                let base = region.as_ptr().cast::<&'static str>();
                for (i, d) in iter.enumerate().take(n) {
                    // SAFETY: the fresh region holds `n` entries, aligned.
                    unsafe { base.add(i).write(d) };
                }
                // SAFETY: `n` entries written just now; never released.
                unsafe { core::slice::from_raw_parts(base, n) }
            }
            _ => &[],
        };
        let table = ExportTable::new(syms)?;
        let table = if descs.is_empty() {
            table
        } else {
            table.with_descs(descs)?
        };
        let memory = module_memory()?;
        #[cfg(feature = "std")]
        let r = Registry::growable(table, memory);
        #[cfg(not(feature = "std"))]
        let r = Registry::fixed(table, memory);
        REG.set(r)
            .map(|_| 0)
            .map_err(|_| CError::Msg("registry set up already"))
    })();
    or_fail(r, None, -1)
}

/// A handle for `h`, or an error if all are in use (the hold is released).
fn keep(h: Hold) -> Result<c_int, CError> {
    HELD.with(|slots| {
        let i = slots
            .iter()
            .position(|s| s.1.is_none())
            .ok_or(CError::Msg("too many holds"))?;
        slots[i].1 = Some(h);
        let k = slots[i].0 * HOLDS as u32 + i as u32 + 1;
        Ok(c_int::try_from(k).unwrap_or(c_int::MAX))
    })
}

/// Loads the module read through `read` and `seek` on `file` under
/// `name`, binds it against the program and the loaded modules, runs its
/// constructors and setup; returns a hold handle on it, or -1. If a module
/// called `name` is loaded already, the file is not read and the handle
/// holds that module.
///
/// # Safety
///
/// As for `dynloadgen`'s callbacks; `name` nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_regload(
    name: *const c_char,
    file: *mut c_void,
    read: Option<ReadFn>,
    seek: Option<SeekFn>,
) -> c_int {
    let r = (|| {
        // SAFETY: the caller's promise.
        let name = unsafe { c_str(name, "nil module name")? };
        let mut src = CSource::new(file, read, seek)?;
        let h = reg()?.load_with(name, &mut src, &LoadOptions::new())?;
        keep(h)
    })();
    or_fail(r, None, -1)
}

/// Holds the module called `name`: it cannot be unloaded until the handle
/// is released. A handle, or -1.
///
/// # Safety
///
/// `name` must be nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_hold(name: *const c_char) -> c_int {
    let r = (|| {
        // SAFETY: the caller's promise.
        let name = unsafe { c_str(name, "nil module name")? };
        keep(reg()?.hold(name)?)
    })();
    or_fail(r, None, -1)
}

/// Releases hold `h`; 0, or -1 if `h` is not a hold outstanding.
#[unsafe(no_mangle)]
pub extern "C" fn dynld_release(h: c_int) -> c_int {
    let held = HELD.with(|slots| {
        let i = slot_of(slots, h)?;
        let slot = slots.get_mut(i)?;
        slot.0 = (slot.0 + 1) % GENERATIONS;
        slot.1.take()
    });
    match held {
        // Dropped outside the lock.
        Some(held) => {
            drop(held);
            0
        }
        None => {
            fail(&CError::Msg("no such hold"), None);
            -1
        }
    }
}

/// Unloads the module called `name`: refused (-1) while it is held or
/// modules are bound to it (a later [`dynld_sweep`] unloads it once
/// neither is so); otherwise its teardown, destructors and exit handlers
/// run and its memory goes back. 0 on success.
///
/// # Safety
///
/// `name` must be nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_unload(name: *const c_char) -> c_int {
    let r = (|| {
        // SAFETY: the caller's promise.
        let name = unsafe { c_str(name, "nil module name")? };
        reg()?.unload(name)?;
        Ok(0)
    })();
    or_fail(r, None, -1)
}

/// Unloads the modules whose unload was refused and that nothing holds
/// or uses now; returns how many (0 without a registry).
#[unsafe(no_mangle)]
pub extern "C" fn dynld_sweep() -> c_int {
    reg().map_or(0, |r| c_int::try_from(r.sweep()).unwrap_or(c_int::MAX))
}

/// The address of the symbol called `name`, the program's export or a
/// loaded module's, or nil; with `sig` non-zero the symbol's (non-zero)
/// signature must equal it. The address is valid only while its module
/// stays loaded: hold the module, or use [`dynld_holdsym`].
///
/// # Safety
///
/// `name` must be nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_lookup(name: *const c_char, sig: c_ulong) -> *mut c_void {
    let r = (|| {
        // SAFETY: the caller's promise.
        let name = unsafe { c_str(name, "nil name")? };
        let want = sig32(sig)?;
        let f = reg()?.lookup(name).ok_or(CError::Named(
            "undefined symbol",
            crate::NameBuf::new(name.as_bytes()),
        ))?;
        if want != 0 && f.sig != 0 && want != f.sig {
            return Err(CError::Named(
                "signature mismatch",
                crate::NameBuf::new(name.as_bytes()),
            ));
        }
        Ok(f.addr.cast_mut().cast())
    })();
    or_fail(r, None, ptr::null_mut())
}

/// The address of export `name` of the module hold `h` holds, checked
/// against `sig` as `dynimport` does; nil if none.
///
/// # Safety
///
/// `name` must be nil or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_holdsym(h: c_int, name: *const c_char, sig: c_ulong) -> *mut c_void {
    let r = (|| {
        // SAFETY: the caller's promise.
        let name = unsafe { c_str(name, "nil name")? };
        let want = sig32(sig)?;
        HELD.with(
            |slots| match slot_of(slots, h).and_then(|i| slots[i].1.as_ref()) {
                Some(held) => Ok(held.addr(name, want)?.cast_mut().cast()),
                None => Err(CError::Msg("no such hold")),
            },
        )
    })();
    or_fail(r, None, ptr::null_mut())
}

/// Where an address lies (see [`dynld_locate`]): names NUL-terminated,
/// cut to fit.
#[repr(C)]
#[derive(Debug)]
pub struct Dynloc {
    /// The module's name; empty for the program's own export.
    pub module: [c_char; 64],
    /// The symbol it falls in; empty if none.
    pub symbol: [c_char; 64],
    /// How far the address lies from the module's base.
    pub module_offset: c_ulong,
    /// How far it lies into the symbol.
    pub symbol_offset: c_ulong,
}

fn put(dst: &mut [c_char; 64], s: &str) {
    let n = s.len().min(dst.len() - 1);
    for (d, &b) in dst.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = b as c_char;
    }
    dst[n] = 0;
}

/// Fills `*loc` with where `addr` lies: in a loaded module (the symbol it
/// falls in and how far in) or at a program export's address. 0, or -1 if
/// it lies in neither (or `loc` is nil).
///
/// # Safety
///
/// `loc` must be nil or valid for writing a `Dynloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_locate(addr: *const c_void, loc: *mut Dynloc) -> c_int {
    let r = (|| {
        if loc.is_null() {
            return Err(CError::Msg("nil Dynloc"));
        }
        let found = reg()?.locate(addr.cast(), |l| {
            let mut d = Dynloc {
                module: [0; 64],
                symbol: [0; 64],
                module_offset: l.module_offset as c_ulong,
                symbol_offset: 0,
            };
            put(&mut d.module, l.module);
            if let Some(s) = l.symbol {
                put(&mut d.symbol, s.name);
                d.symbol_offset = s.offset as c_ulong;
            }
            d
        });
        let d = found.ok_or(CError::Msg("address in no module"))?;
        // SAFETY: the caller vouches for `loc`.
        unsafe { loc.write(d) };
        Ok(0)
    })();
    or_fail(r, None, -1)
}

/// What C's autoload stubs load and bind through: the registry, and for a
/// module it lacks, the program's load callback.
struct CAutoload;

/// The load callback [`dynld_stubinit`] was given.
static LOAD: Spin<Option<unsafe extern "C" fn(*const c_char) -> c_int>> = Spin::new(None);

impl Autoload for CAutoload {
    fn bind(
        &self,
        m: &dynld::stub::StubModule,
        func: &str,
        sig: u32,
        load: bool,
    ) -> Result<(*const (), dynld::ErasedHold<'_>), Error> {
        let reg = reg().map_err(|_| Error::NoAutoload)?;
        match reg.bind(m, func, sig, false) {
            Err(Error::NoModule { .. }) if load => {
                let Some(cb) = LOAD.with(|l| *l) else {
                    return Err(Error::NoAutoload);
                };
                // SAFETY: the callback dynld_stubinit was given, called
                // with the module's NUL-terminated name.
                if unsafe { cb(m.c_name().as_ptr()) } != 0 {
                    return Err(Error::NotFound {
                        name: dynld::SymName::new(m.name()),
                    });
                }
                reg.bind(m, func, sig, false)
            }
            r => r,
        }
    }

    fn unload(&self, module: &str) -> Result<(), Error> {
        reg().map_err(|_| Error::NoAutoload)?.unload(module)
    }
}

/// Makes C's autoload stubs bind through the registry (set up first with
/// [`dynld_reginit`]), calling `load(name)` to load a module it lacks
/// (which loads it with [`dynld_regload`] and returns 0, or -1). 0, or -1
/// if `load` is nil.
///
/// # Safety
///
/// `load` must be nil or a function safe to call with a module's name
/// from any thread that calls through a stub.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_stubinit(
    load: Option<unsafe extern "C" fn(*const c_char) -> c_int>,
) -> c_int {
    let r = (|| {
        let load = load.ok_or(CError::Msg("nil load function"))?;
        LOAD.with(|l| *l = Some(load));
        static AUTOLOAD: CAutoload = CAutoload;
        dynld::stub::set_autoload(&AUTOLOAD);
        Ok(0)
    })();
    or_fail(r, None, -1)
}

/// Puts the patched entries of stub module `m` back to their stubs and
/// unloads the module; 0, or -1 with the reason in `dynld_errstr`.
///
/// # Safety
///
/// `m` must be a module `aout stubs` wrote, and no call through one of its
/// entries may be running or about to start.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_stubunload(m: *const dynld::stub::StubModule) -> c_int {
    let r = (|| {
        if m.is_null() {
            return Err(CError::Msg("nil stub module"));
        }
        // SAFETY: the caller's promise.
        unsafe { (*m).unload()? };
        Ok(0)
    })();
    or_fail(r, None, -1)
}
