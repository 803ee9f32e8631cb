//! Traps for imports bound later: where a deferred import points until a
//! module providing it loads (see [`Registry::load_with`]).
//!
//! A module loaded with deferred binding may have imports that nothing
//! loaded provides yet. Each such import is bound to a trap of its own: a
//! function that, if the module calls the import before it is bound,
//! reports the import's name and module to the handler
//! ([`set_handler`]) and returns the handler's result to the caller, as
//! the import's (integer) result. The default handler panics with the
//! import's name and module. Never a jump to address 0 or to nowhere.
//!
//! There are [`TRAPS`] traps, shared by every registry of the program; an
//! import gives its trap back when it is bound or its module unloads.
//!
//! [`Registry::load_with`]: crate::Registry::load_with

use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::error::Error;
use crate::registry::ModuleName;
use crate::sync::Lock;

/// How many imports may be pending at once, in all registries together.
pub const TRAPS: usize = 64;

/// A call that reached the trap of an import not yet bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unbound<'a> {
    /// The module that called the import.
    pub module: &'a str,
    /// The import's name.
    pub import: &'a str,
}

impl core::fmt::Display for Unbound<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "call to unresolved import {} of module {}",
            self.import, self.module
        )
    }
}

/// A trap handler: told of the call, it returns what the import's caller
/// receives as the (integer) result. It may also not return (a kernel's
/// fault path).
pub type Handler = fn(&Unbound<'_>) -> usize;

fn default_handler(u: &Unbound<'_>) -> usize {
    panic!("{u}")
}

static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Makes `h` the handler of every trap, in place of the default (which
/// panics naming the import and its module).
pub fn set_handler(h: Handler) {
    HANDLER.store(h as *mut (), Ordering::Release);
}

fn handler() -> Handler {
    let p = HANDLER.load(Ordering::Acquire);
    if p.is_null() {
        return default_handler;
    }
    // SAFETY: only `set_handler` stores a non-null value, and it stores a
    // `Handler`.
    unsafe { core::mem::transmute::<*mut (), Handler>(p) }
}

/// What a trap in use stands for.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The registry (its serial) and module id that own it, and the
    /// import's index in that module.
    pub owner: u32,
    pub module_id: u32,
    pub import: usize,
    /// The module's name, copied.
    pub module: ModuleName,
    /// The import's name, in the module's memory (which outlives the
    /// entry: the entry goes when the module unloads).
    name: *const u8,
    len: usize,
}

struct Pool([Option<Entry>; TRAPS]);

// SAFETY: the name pointers are read only while their module is loaded
// (see `Entry::name`), and only through the lock.
unsafe impl Send for Pool {}

static POOL: Lock<Pool> = Lock::new(Pool([const { None }; TRAPS]));

/// Registries get serials from here when they first defer an import.
static SERIALS: AtomicU32 = AtomicU32::new(1);

/// A new registry serial.
pub(crate) fn serial() -> u32 {
    SERIALS.fetch_add(1, Ordering::Relaxed)
}

/// A trap for import `import` (named `name`, in memory that lives as long
/// as module `module_id`, called `module`) of registry `owner`: its
/// number and address.
pub(crate) fn arm(
    owner: u32,
    module_id: u32,
    module: &str,
    import: usize,
    name: &str,
) -> Result<(usize, *const ()), Error> {
    POOL.with(|p| {
        let k = p.0.iter().position(Option::is_none).ok_or(Error::Limit {
            what: "pending imports",
            count: TRAPS as u64 + 1,
            max: TRAPS as u64,
        })?;
        let mut m = ModuleName::new();
        let _ = m.push_str(module);
        p.0[k] = Some(Entry {
            owner,
            module_id,
            import,
            module: m,
            name: name.as_ptr(),
            len: name.len(),
        });
        Ok((k, TRAP_FNS[k] as *const ()))
    })
}

/// Gives back every trap of registry `owner` for which `f` (given the
/// module id and import index) says so.
pub(crate) fn disarm(owner: u32, mut f: impl FnMut(u32, usize) -> bool) {
    POOL.with(|p| {
        for e in p.0.iter_mut() {
            if e.as_ref()
                .is_some_and(|e| e.owner == owner && f(e.module_id, e.import))
            {
                *e = None;
            }
        }
    })
}

/// Calls `f` with each trap of registry `owner`: module id, module name,
/// import index, import name. Under the pool's lock: `f` must not arm or
/// disarm.
pub(crate) fn each(owner: u32, mut f: impl FnMut(u32, &str, usize, &str)) {
    POOL.with(|p| {
        for e in p.0.iter().flatten().filter(|e| e.owner == owner) {
            f(e.module_id, &e.module, e.import, e.name());
        }
    })
}

impl Entry {
    fn name(&self) -> &str {
        // SAFETY: the bytes are the import's name in its module's string
        // table, checked UTF-8 at load; the module is loaded while the
        // entry exists (its unload disarms it first).
        let b = unsafe { core::slice::from_raw_parts(self.name, self.len) };
        core::str::from_utf8(b).unwrap_or("?")
    }
}

/// What trap `k` does when called.
fn fire(k: usize) -> usize {
    let got = POOL.with(|p| {
        let e = p.0.get(k)?.as_ref()?;
        // The name as far as it fits (a handler's message needs no more).
        let mut name = heapless::String::<128>::new();
        for c in e.name().chars() {
            if name.push(c).is_err() {
                break;
            }
        }
        Some((e.module.clone(), name))
    });
    let (module, import) = match &got {
        Some((m, n)) => (m.as_str(), n.as_str()),
        None => ("?", "?"),
    };
    handler()(&Unbound { module, import })
}

extern "C" fn trap<const K: usize>() -> usize {
    fire(K)
}

macro_rules! traps {
    ($($k:literal)*) => { [$(trap::<$k> as extern "C" fn() -> usize),*] };
}

/// One function per trap, so that each knows which import it stands for.
static TRAP_FNS: [extern "C" fn() -> usize; TRAPS] = traps!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
    62 63
);
