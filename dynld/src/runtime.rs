//! What dynld supplies to modules itself: their exit handlers.
//!
//! C++ objects with static storage, and C code calling `atexit`, register
//! a handler to run "at exit" with `__cxa_atexit(f, arg, dso)`, where
//! `dso` is the address of the registering object's `__dso_handle`. For a
//! module, "at exit" is its unload: a handler left with the host's C
//! library would run after the module's memory is gone. So the loader
//! binds every module's `__cxa_atexit` import to [`cxa_atexit`] here,
//! whatever the host exports under that name; `aout link` gives each
//! module its own `__dso_handle` (and an `atexit` that calls
//! `__cxa_atexit` with it). When a module is unloaded, after its
//! destructors, the handlers registered with a `dso` inside its image run,
//! last registered first, as `__cxa_finalize` does for a shared object.
//!
//! The handlers wait in one list for the whole program: growable with the
//! `alloc` feature, [`CAPACITY`] entries without it (a registration beyond
//! that fails, returning -1, as the C++ ABI allows).

use crate::sync::Spin;
use core::ffi::{c_int, c_void};
use core::ops::Range;

/// Handlers the list holds without the `alloc` feature.
pub const CAPACITY: usize = 64;

/// One registered handler.
#[derive(Clone, Copy)]
struct Record {
    f: unsafe extern "C" fn(*mut c_void),
    arg: usize,
    dso: usize,
}

#[cfg(feature = "alloc")]
type List = alloc::vec::Vec<Record>;
#[cfg(not(feature = "alloc"))]
type List = heapless::Vec<Record, CAPACITY>;

static HANDLERS: Spin<List> = Spin::new(List::new());

/// The `__cxa_atexit` every module is bound to: registers `f(arg)` to run
/// when the module whose image holds `dso` is unloaded. Returns 0, or -1
/// if the list is full or `f` is null.
///
/// # Safety
///
/// `f` must be safe to call with `arg` at the unload of the module that
/// holds `dso`. Modules call this through their import; the host has no
/// reason to.
pub unsafe extern "C" fn cxa_atexit(
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
    dso: *mut c_void,
) -> c_int {
    let Some(f) = f else { return -1 };
    let r = Record {
        f,
        arg: arg as usize,
        dso: dso as usize,
    };
    HANDLERS.with(|l| {
        #[cfg(feature = "alloc")]
        l.push(r);
        #[cfg(not(feature = "alloc"))]
        if l.push(r).is_err() {
            return -1;
        }
        0
    })
}

/// Handlers registered with a `dso` in `image`, not yet run.
pub fn pending(image: Range<usize>) -> usize {
    HANDLERS.with(|l| l.iter().filter(|r| image.contains(&r.dso)).count())
}

/// Runs and forgets the handlers registered with a `dso` in `image`,
/// last registered first (a handler may register more; they run too).
///
/// # Safety
///
/// The code and data of the module at `image` must still be in place.
pub(crate) unsafe fn finalize(image: Range<usize>) {
    loop {
        let next = HANDLERS.with(|l| {
            let i = l.iter().rposition(|r| image.contains(&r.dso))?;
            Some(l.remove(i))
        });
        let Some(r) = next else { break };
        // SAFETY: the module registered `f(arg)` to run at its unload
        // (the caller vouches that it is still in place); the list's lock
        // is not held, so the handler may register or run others.
        unsafe { (r.f)(r.arg as *mut c_void) };
    }
}

/// A function dynld supplies to modules under a name.
pub(crate) struct Special {
    pub name: &'static str,
    pub sig: u32,
    pub desc: &'static str,
    pub addr: *const (),
}

// SAFETY: a function's address and constant strings.
unsafe impl Sync for Special {}

/// `fn(*fn(*void) void, *void, *void) int`.
const CXA_ATEXIT_DESC: &str = "fn(*fn(*void) void, *void, *void) int";

static CXA_ATEXIT: Special = Special {
    name: "__cxa_atexit",
    sig: crate::sig::hash_or_panic(CXA_ATEXIT_DESC),
    desc: CXA_ATEXIT_DESC,
    addr: cxa_atexit as *const (),
};

/// The import that dynld binds itself, if the module has it: its index in
/// the (sorted) import table, found by a binary search over the names
/// `name(i)` of `n` imports.
pub(crate) fn special_import<'n>(
    name: impl Fn(usize) -> Option<&'n [u8]>,
    n: usize,
) -> Option<(usize, &'static Special)> {
    let want = CXA_ATEXIT.name.as_bytes();
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match name(mid)?.cmp(want) {
            core::cmp::Ordering::Less => lo = mid + 1,
            core::cmp::Ordering::Greater => hi = mid,
            core::cmp::Ordering::Equal => return Some((mid, &CXA_ATEXIT)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicUsize, Ordering};

    static ORDER: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn note(arg: *mut c_void) {
        let v = ORDER.load(Ordering::Relaxed);
        ORDER.store(v * 10 + arg as usize, Ordering::Relaxed);
    }

    #[test]
    fn handlers_run_last_first_for_their_image_only() {
        let image = 0x1000..0x2000;
        let other = 0x3000usize;
        let p = |v: usize| core::ptr::without_provenance_mut::<c_void>(v);
        // SAFETY: `note` may run at any time; the dso values are made up
        // and never dereferenced.
        unsafe {
            assert_eq!(cxa_atexit(Some(note), p(1), p(0x1008)), 0);
            assert_eq!(cxa_atexit(Some(note), p(2), p(other)), 0);
            assert_eq!(cxa_atexit(Some(note), p(3), p(0x1ff0)), 0);
            assert_eq!(cxa_atexit(None, p(4), p(0x1008)), -1);
            assert_eq!(pending(image.clone()), 2);
            finalize(image.clone());
        }
        assert_eq!(ORDER.load(Ordering::Relaxed), 31);
        assert_eq!(pending(image), 0);
        assert_eq!(pending(other..other + 1), 1);
        // SAFETY: as above.
        unsafe { finalize(other..other + 1) };
        assert_eq!(ORDER.load(Ordering::Relaxed), 312);
    }

    #[test]
    fn the_special_import_is_found_by_name() {
        let names: [&[u8]; 3] = [b"__cxa_atexit", b"malloc", b"printf"];
        let found = special_import(|i| names.get(i).copied(), 3).map(|s| s.0);
        assert_eq!(found, Some(0));
        let names: [&[u8]; 2] = [b"a", b"b"];
        assert!(special_import(|i| names.get(i).copied(), 2).is_none());
        assert_eq!(CXA_ATEXIT.sig, crate::sig::hash(CXA_ATEXIT_DESC).unwrap());
    }
}
