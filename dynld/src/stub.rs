//! Autoload stubs: entry points of modules that are not loaded, called as
//! if they were there.
//!
//! A host declares, for each function of a module it may never need, an
//! [`Entry`]: a pointer the host calls through (its first word, so C reads
//! it as `int (*f)(int)`) that starts out at the entry's own stub, a few
//! instructions that put the entry's address in a scratch register and
//! jump to the trampoline of its kind. The trampoline saves every argument
//! register, integer and floating point, calls into this module, restores
//! them, and passes the original call on, stack arguments untouched, so
//! the caller never knows. `aout stubs` writes the entries, the stubs and
//! their [`StubModule`] from a description file, as Rust (a [`stubs!`](crate::stubs)
//! invocation) or as C.
//!
//! # The kinds
//!
//! * **`stub FUNC RETFUNC`**: the first call loads the module (through the
//!   [`Autoload`] given to [`set_autoload`]: a registry and its finder),
//!   checks the function's signature, patches the entry's pointer with the
//!   function's address and jumps there; later calls go straight to the
//!   function. If the load or the check fails, the call goes to RETFUNC,
//!   with the same arguments, and returns its result.
//!
//!   **Unload.** A patched entry holds its module: the registry refuses to
//!   unload it (callers may be inside it at any time, and nothing counts
//!   them). [`StubModule::unload`] puts the entries back to their stubs,
//!   gives up the holds and unloads the module, so the next call loads it
//!   again; it is `unsafe`, because only the caller can know that no call
//!   through a patched pointer is still running or about to start.
//! * **`ustub FUNC RETFUNC ARGNWORD`**: never patched. Every call holds the
//!   module for its duration (loading it first if it is not loaded), so
//!   the module may be unloaded whenever it is idle, by anyone. The
//!   trampoline calls the function itself, so it must forward the stack
//!   arguments: it copies ARGNWORD words from the caller's stack argument
//!   area (an upper bound is fine: the words past the caller's are read
//!   from its frame and ignored), besides every argument register.
//! * **`wstub FUNC RETFUNC [ARGNWORD]`**: weak. It never loads: while the
//!   module is not loaded, calls go to RETFUNC; once something else has
//!   loaded it, calls go through, each holding the module as a `ustub`'s
//!   do. ARGNWORD (0 if left out) is as for `ustub`.
//!
//! # Concurrency and re-entrancy
//!
//! Loads are serialised per [`StubModule`]: two threads making a first
//! call at once load the module once, the second waiting for the first.
//! A stub reached while its own module is being loaded by the same thread
//! (from the module's constructors or setup) calls RETFUNC; without `std`
//! there are no threads to tell apart, so any stub reached while its
//! module loads (an interrupt handler's, say) calls RETFUNC rather than
//! wait for a load that cannot finish until it returns.
//!
//! The stubs take the registry's lock (to hold the module and find the
//! function), so on bare metal an interrupt handler must not call through
//! an entry that is not patched, or through a `ustub` or `wstub`, while
//! the code it interrupted may be inside a registry call.
//!
//! Failures that send a call to RETFUNC are counted
//! ([`StubModule::failures`]) and passed to the hook set with
//! [`set_failure_hook`], if any.

use crate::registry::{ErasedHold, LoadOptions, Registry, Storage};
use crate::Error;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

#[cfg(target_arch = "aarch64")]
#[path = "stub/aarch64.rs"]
mod tramp;
#[cfg(target_arch = "arm")]
#[path = "stub/arm.rs"]
mod tramp;
#[cfg(any(target_arch = "riscv64", target_arch = "riscv32"))]
#[path = "stub/riscv.rs"]
mod tramp;
#[cfg(target_arch = "x86_64")]
#[path = "stub/x86_64.rs"]
mod tramp;

/// An entry's kind.
pub mod kind {
    /// Loads on the first call; patched.
    pub const STUB: u16 = 0;
    /// Holds the module for each call; loads if needed.
    pub const USTUB: u16 = 1;
    /// Holds the module for each call; never loads.
    pub const WSTUB: u16 = 2;
}

/// One entry point of a module that may not be loaded. `#[repr(C)]`: the
/// C that `aout stubs --lang c` writes defines entries with this layout
/// (`struct dynld_stub_entry` in `dynld.h`).
#[repr(C)]
pub struct Entry {
    /// What callers call through: the stub, or once patched, the function.
    slot: AtomicPtr<()>,
    /// This entry's stub (what `slot` starts at and goes back to).
    stub: *const (),
    /// Called instead of the function when it cannot be reached.
    retfunc: *const (),
    /// The function's name, NUL-terminated.
    name: *const u8,
    /// The module the function is in.
    module: *const StubModule,
    /// The hold a patched `stub` entry keeps (0 for none).
    hold: AtomicUsize,
    /// The function's signature (0: unchecked).
    sig: u32,
    /// Stack words a `ustub` or `wstub` forwards (read by the trampolines
    /// at offset [`ARGN_OFFSET`]).
    argnword: u16,
    /// One of [`kind`].
    kind: u16,
}

impl Entry {
    /// An entry, its pointer at its stub.
    ///
    /// # Safety
    ///
    /// `stub` must be this entry's own stub (the code [`stubs!`](crate::stubs)
    /// or `aout stubs` writes for it, which jumps to the trampoline of
    /// `kind`), `retfunc` a function of the type `sig` describes, `name` a
    /// NUL-terminated name and `module` the module whose entries include
    /// this one, all living for good.
    #[allow(clippy::too_many_arguments)]
    pub const unsafe fn new(
        stub: *const (),
        retfunc: *const (),
        name: *const u8,
        module: *const StubModule,
        sig: u32,
        argnword: u16,
        kind: u16,
    ) -> Entry {
        Entry {
            slot: AtomicPtr::new(stub.cast_mut()),
            stub,
            retfunc,
            name,
            module,
            hold: AtomicUsize::new(0),
            sig,
            argnword,
            kind,
        }
    }

    /// The function's signature.
    pub fn sig(&self) -> u32 {
        self.sig
    }

    /// The entry's kind (one of [`kind`]).
    pub fn kind(&self) -> u16 {
        self.kind
    }
}

/// Where an entry's ARGNWORD (the stack words a `ustub` or `wstub`
/// forwards) is, for the trampolines.
pub const ARGN_OFFSET: usize = 6 * core::mem::size_of::<usize>() + 4;
const _: () = assert!(core::mem::offset_of!(Entry, argnword) == ARGN_OFFSET);

// SAFETY: every field that changes after the entry is made is an atomic;
// the pointers are to code and to NUL-terminated text that never changes.
unsafe impl Sync for Entry {}

/// A module whose functions the host reaches through [`Entry`]s
/// (`struct dynld_stub_module` in `dynld.h`).
#[repr(C)]
pub struct StubModule {
    /// The module's name, NUL-terminated: what the finder loads.
    name: *const u8,
    /// The versions accepted (a [`crate::meta::VersionRange`], a bare
    /// version meaning that major version from it on), NUL-terminated; ""
    /// for any.
    version: *const u8,
    /// The class the module must declare, NUL-terminated; "" for any.
    class: *const u8,
    /// The entries, by reference.
    entries: *const &'static Entry,
    /// How many.
    nentries: usize,
    /// 0, or the token of the thread loading the module.
    loading: AtomicUsize,
    /// Calls sent to RETFUNC because the function could not be reached.
    failures: AtomicU32,
}

impl StubModule {
    /// A stub module.
    ///
    /// # Safety
    ///
    /// `name`, `version` and `class` must be NUL-terminated and `entries`
    /// point at `nentries` references to this module's entries, all
    /// living for good.
    pub const unsafe fn new(
        name: *const u8,
        version: *const u8,
        class: *const u8,
        entries: *const &'static Entry,
        nentries: usize,
    ) -> StubModule {
        StubModule {
            name,
            version,
            class,
            entries,
            nentries,
            loading: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
        }
    }
}

// SAFETY: as for Entry.
unsafe impl Sync for StubModule {}

/// What the stubs load and bind through: in practice a [`Registry`] with
/// a finder (implemented for every `Registry`; [`set_autoload`] takes one
/// that lives for good).
pub trait Autoload: Sync {
    /// The address of export `func` of module `module`, its signature
    /// checked against `sig`, with a hold on the module; if the module is
    /// not loaded, it is loaded first when `load` is set (and otherwise
    /// the answer is an error).
    fn bind(
        &self,
        module: &StubModule,
        func: &str,
        sig: u32,
        load: bool,
    ) -> Result<(*const (), ErasedHold<'_>), Error>;

    /// Unloads `module` (see [`Registry::unload`]).
    fn unload(&self, module: &str) -> Result<(), Error>;
}

impl<'a, S: Storage<'a>> Autoload for Registry<'a, S>
where
    Registry<'a, S>: Sync,
{
    fn bind(
        &self,
        m: &StubModule,
        func: &str,
        sig: u32,
        load: bool,
    ) -> Result<(*const (), ErasedHold<'_>), Error> {
        let held = match self.hold(m.name()) {
            Ok(h) => h,
            Err(Error::NoModule { .. }) if load => {
                self.load_named(m.name(), &LoadOptions::new())?
            }
            Err(e) => return Err(e),
        };
        m.check(held.metadata())?;
        let addr = held.addr(func, sig)?;
        Ok((addr, held.erase()))
    }

    fn unload(&self, module: &str) -> Result<(), Error> {
        Registry::unload(self, module)
    }
}

static AUTOLOAD: crate::sync::Spin<Option<&'static dyn Autoload>> = crate::sync::Spin::new(None);

/// Sets what every stub loads and binds through (once, before the first
/// call through a stub; a stub called before it goes to its RETFUNC).
///
/// The registry must live for good: a `static`, or one leaked.
pub fn set_autoload(a: &'static dyn Autoload) {
    AUTOLOAD.with(|s| *s = Some(a));
}

fn autoload() -> Result<&'static dyn Autoload, Error> {
    AUTOLOAD.with(|s| *s).ok_or(Error::NoAutoload)
}

/// Called with the entry and the error when a call goes to RETFUNC.
pub type FailureHook = fn(&Entry, &Error);

static HOOK: crate::sync::Spin<Option<FailureHook>> = crate::sync::Spin::new(None);

/// Sets the hook told of each call sent to RETFUNC (a kernel logs it).
pub fn set_failure_hook(hook: FailureHook) {
    HOOK.with(|h| *h = Some(hook));
}

/// Text from a NUL-terminated pointer of an entry or module ("" if not
/// UTF-8).
fn text(p: *const u8) -> &'static str {
    if p.is_null() {
        return "";
    }
    // SAFETY: the entries and modules `stubs!` and `aout stubs` write point
    // at NUL-terminated text in static memory.
    let c = unsafe { core::ffi::CStr::from_ptr(p.cast()) };
    c.to_str().unwrap_or("")
}

impl Entry {
    /// The function's name.
    pub fn name(&self) -> &'static str {
        text(self.name)
    }

    /// The module.
    pub fn module(&self) -> &'static StubModule {
        // SAFETY: entries point at their static module.
        unsafe { &*self.module }
    }

    /// Whether the pointer has been patched to the function.
    #[inline]
    pub fn is_patched(&self) -> bool {
        self.slot.load(Ordering::Acquire) != self.stub.cast_mut()
    }

    /// The pointer callers call through, as `F` (an `extern "C" fn` type
    /// of the function's signature, which `stubs!` and `aout stubs` give).
    #[inline]
    pub fn get(&self) -> *const () {
        self.slot.load(Ordering::Acquire)
    }

    fn fail(&self, e: &Error) -> *const () {
        self.module().failures.fetch_add(1, Ordering::Relaxed);
        if let Some(h) = HOOK.with(|h| *h) {
            h(self, e);
        }
        self.retfunc
    }
}

/// This thread's token for [`StubModule::loading`].
fn token() -> usize {
    #[cfg(feature = "std")]
    {
        std::thread_local!(static T: u8 = const { 0 });
        T.with(|t| t as *const u8 as usize)
    }
    #[cfg(not(feature = "std"))]
    {
        1
    }
}

enum Turn {
    /// This call loads.
    Mine,
    /// This thread (or, without std, anyone) is loading already.
    Reentered,
}

impl StubModule {
    /// The module's name.
    pub fn name(&self) -> &'static str {
        text(self.name)
    }

    /// The entries.
    pub fn entries(&self) -> &'static [&'static Entry] {
        if self.nentries == 0 {
            return &[];
        }
        // SAFETY: `entries` points at `nentries` references to static
        // entries.
        unsafe { core::slice::from_raw_parts(self.entries, self.nentries) }
    }

    /// The module's name, as the C string it is.
    pub fn c_name(&self) -> &'static core::ffi::CStr {
        // SAFETY: NUL-terminated static text (`new`'s contract).
        unsafe { core::ffi::CStr::from_ptr(self.name.cast()) }
    }

    /// The versions accepted ("" for any).
    pub fn version(&self) -> &'static str {
        text(self.version)
    }

    /// The class required ("" for any).
    pub fn class(&self) -> &'static str {
        text(self.class)
    }

    /// Refuses a module whose metadata (none: version 0.0.0, no class)
    /// does not meet the version and class the stubs ask for.
    pub fn check(&self, meta: Option<crate::meta::Metadata<'_>>) -> Result<(), Error> {
        use core::fmt::Write;
        let (have, class) = meta.map_or((crate::meta::Version::new(0, 0, 0), ""), |m| {
            (m.version(), m.class())
        });
        let want = match self.version() {
            "" => None,
            v => Some(crate::meta::VersionRange::parse(v).ok_or(Error::StubVersion)?),
        };
        let class_ok = self.class().is_empty() || self.class() == class;
        match want {
            Some(w) if !w.contains(have) || !class_ok => {
                let mut names = crate::ModuleText::new();
                let _ = write!(names, "stubs need {}", self.name());
                if !class_ok {
                    let _ = write!(names, " of class {}", self.class());
                }
                Err(Error::Dependency {
                    names,
                    want: w,
                    have,
                })
            }
            None if !class_ok => {
                let mut names = crate::ModuleText::new();
                let _ = write!(
                    names,
                    "stubs need {} of class {}",
                    self.name(),
                    self.class()
                );
                Err(Error::Dependency {
                    names,
                    want: crate::meta::VersionRange::ANY,
                    have,
                })
            }
            _ => Ok(()),
        }
    }

    /// Calls sent to RETFUNC so far.
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Takes the module's load turn, waiting for another thread's load.
    fn turn(&self) -> Turn {
        let me = token();
        loop {
            match self
                .loading
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Turn::Mine,
                Err(t) if t == me || cfg!(not(feature = "std")) => return Turn::Reentered,
                Err(_) => {
                    #[cfg(feature = "std")]
                    std::thread::yield_now();
                    #[cfg(not(feature = "std"))]
                    core::hint::spin_loop();
                }
            }
        }
    }

    fn end_turn(&self) {
        self.loading.store(0, Ordering::Release);
    }

    /// Puts every patched `stub` entry back to its stub and gives up its
    /// hold, then unloads the module; the next call through an entry loads
    /// it again. Entries of the other kinds keep nothing between calls.
    ///
    /// # Safety
    ///
    /// No call through a patched entry may be running, or have read the
    /// entry's pointer and be about to call it: their code goes when the
    /// module does. (A kernel stops the other cores, or knows its callers.)
    pub unsafe fn unload(&self) -> Result<(), Error> {
        let a = autoload()?;
        for e in self.entries() {
            if e.kind == kind::STUB {
                e.slot.store(e.stub.cast_mut(), Ordering::Release);
                let h = e.hold.swap(0, Ordering::AcqRel);
                if h != 0 {
                    // SAFETY: the word came from `into_raw` in
                    // `dynld_stub_resolve`, for the registry that lives
                    // for good, and is taken back once (swapped out).
                    drop(unsafe { ErasedHold::from_raw(h) });
                }
            }
        }
        a.unload(self.name())
    }
}

/// The `stub` trampoline's call: the function's address (loading the
/// module and patching the entry on the first call), or RETFUNC.
///
/// # Safety
///
/// `e` must be a live entry (the trampolines pass their own).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_stub_resolve(e: *const Entry) -> *const () {
    // SAFETY: the caller's promise.
    let e = unsafe { &*e };
    let m = e.module();
    if e.is_patched() {
        return e.get();
    }
    if let Turn::Reentered = m.turn() {
        return e.fail(&Error::StubReentered);
    }
    // Another thread may have patched it while this one waited.
    if e.is_patched() {
        m.end_turn();
        return e.get();
    }
    let r = autoload().and_then(|a| a.bind(m, e.name(), e.sig, true));
    let to = match r {
        Ok((addr, hold)) => {
            e.hold.store(hold.into_raw(), Ordering::Release);
            e.slot.store(addr.cast_mut(), Ordering::Release);
            addr
        }
        Err(err) => e.fail(&err),
    };
    m.end_turn();
    to
}

/// The `ustub`/`wstub` trampoline's first call: the function's address,
/// with a hold for the call's duration written to `*hold` (0 for none),
/// or RETFUNC.
///
/// # Safety
///
/// `e` must be a live entry and `hold` writable (the trampolines pass
/// their own).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_stub_enter(e: *const Entry, hold: *mut usize) -> *const () {
    // SAFETY: the caller's promise.
    let (e, hold) = unsafe { (&*e, &mut *hold) };
    *hold = 0;
    let a = match autoload() {
        Ok(a) => a,
        Err(err) => return e.fail(&err),
    };
    let m = e.module();
    // Reached while this module loads on this thread (or, without std,
    // at all): binding would wait for the load, which cannot finish.
    let loading = m.loading.load(Ordering::Acquire);
    if loading != 0 && (loading == token() || cfg!(not(feature = "std"))) {
        return e.fail(&Error::StubReentered);
    }
    // Loaded already (the common case): no turn to take.
    let r = match a.bind(m, e.name(), e.sig, false) {
        Err(Error::NoModule { .. }) if e.kind == kind::USTUB => match m.turn() {
            Turn::Reentered => Err(Error::StubReentered),
            Turn::Mine => {
                let r = a.bind(m, e.name(), e.sig, true);
                m.end_turn();
                r
            }
        },
        r => r,
    };
    match r {
        Ok((addr, h)) => {
            *hold = h.into_raw();
            addr
        }
        Err(err) => e.fail(&err),
    }
}

/// The `ustub`/`wstub` trampoline's call after the function returns:
/// gives back the hold [`dynld_stub_enter`] took.
///
/// # Safety
///
/// `hold` must be 0 or what `dynld_stub_enter` wrote, given back once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dynld_stub_leave(hold: usize) {
    if hold != 0 {
        // SAFETY: the caller's promise.
        drop(unsafe { ErasedHold::from_raw(hold) });
    }
}

/// An [`Entry`] whose function has type `F` (an `extern "C" fn` type):
/// what [`stubs!`](crate::stubs) declares.
#[repr(transparent)]
pub struct Typed<F> {
    /// The entry.
    pub entry: Entry,
    _f: core::marker::PhantomData<F>,
}

// SAFETY: as for Entry; `F` is only a type.
unsafe impl<F> Sync for Typed<F> {}

impl<F: crate::Signof + Copy> Typed<F> {
    /// The entry, typed. Its signature must be `F`'s function's
    /// (`stubs!` makes it so).
    pub const fn new(entry: Entry) -> Self {
        assert!(
            entry.sig == crate::sig::of_fn::<F>(),
            "entry signature is not F's"
        );
        assert!(core::mem::size_of::<F>() == core::mem::size_of::<*const ()>());
        Typed {
            entry,
            _f: core::marker::PhantomData,
        }
    }

    /// The pointer to call through: the entry's stub, or once patched the
    /// function itself (which, being patched, stays loaded until the
    /// unsafe [`StubModule::unload`]).
    #[inline]
    pub fn call(&self) -> F {
        let p = self.entry.get();
        // SAFETY: `p` is the entry's stub, which passes any call of
        // signature F on to the function or RETFUNC (both of type F,
        // checked when bound and by `stubs!`), or the function itself;
        // F is a function pointer type of pointer size (checked in new).
        unsafe { core::mem::transmute_copy::<*const (), F>(&p) }
    }
}

impl<F> core::ops::Deref for Typed<F> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        &self.entry
    }
}

pub use tramp::{dynld_stub_tail, dynld_stub_wrap};

/// Declares a module's stub entries: the Rust form of what `aout stubs`
/// writes.
///
/// ```ignore
/// extern "C" fn add_failed(_: i32, _: i32) -> i32 { -1 }
/// dynld::stubs! {
///     /// The math module, loaded on first use.
///     pub module CMATH = "cmath";
///     stub CM_ADD: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
///     ustub CM_SUB: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed, words 0;
///     wstub CM_MUL: extern "C" fn(i32, i32) -> i32 = "fn(int, int) int", or add_failed;
/// }
/// let r = (CM_ADD.call())(1, 2);  // loads cmath on the first call
/// ```
///
/// Each entry becomes a `static` of type [`Typed<F>`] whose `call()` gives
/// the pointer to call through; the module a `static` [`StubModule`]. The
/// description must be `F`'s and RETFUNC of type `F`: both are checked
/// when compiled. An entry's name is the function's, in the module.
#[macro_export]
macro_rules! stubs {
    (
        $(#[$m:meta])*
        $vis:vis module $module:ident = $mname:literal $(, version $ver:literal)? $(, class $cls:literal)?;
        $( $kind:ident $entry:ident : $fty:ty = $desc:literal, or $ret:path $(, words $n:literal)? ; )*
    ) => {
        $(#[$m])*
        // SAFETY: static text, and the list of this module's entries.
        $vis static $module: $crate::stub::StubModule = unsafe {
            $crate::stub::StubModule::new(
                concat!($mname, "\0").as_ptr(),
                concat!($($ver,)? "\0").as_ptr(),
                concat!($($cls,)? "\0").as_ptr(),
                {
                    static LIST: [&'static $crate::stub::Entry; $crate::__stub_count!($($entry)*)] =
                        [$(&$entry.entry),*];
                    LIST.as_ptr()
                },
                $crate::__stub_count!($($entry)*),
            )
        };
        $(
            $crate::__stub_entry!($vis $module; $kind $entry : $fty = $desc, or $ret $(, words $n)?);
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stub_count {
    () => { 0usize };
    ($first:ident $($rest:ident)*) => { 1usize + $crate::__stub_count!($($rest)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stub_kind {
    (stub) => {
        $crate::stub::kind::STUB
    };
    (ustub) => {
        $crate::stub::kind::USTUB
    };
    (wstub) => {
        $crate::stub::kind::WSTUB
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stub_entry {
    ($vis:vis $module:ident; $kind:ident $entry:ident : $fty:ty = $desc:literal, or $ret:path $(, words $n:literal)?) => {
        #[allow(non_upper_case_globals)]
        $vis static $entry: $crate::stub::Typed<$fty> = {
            // RETFUNC has the function's type; the description is F's.
            const _: $fty = $ret;
            const _: () = assert!(
                $crate::sig::hash_or_panic($desc) == $crate::sig::of_fn::<$fty>(),
                "the description is not the function type's"
            );
            unsafe extern "C" {
                #[link_name = concat!("dynld_stub_", stringify!($module), "_", stringify!($entry))]
                fn stub();
            }
            // SAFETY: `stub` is this entry's (__stub_asm below), RETFUNC
            // of type F (checked above), the name and module static.
            $crate::stub::Typed::new(unsafe {
                $crate::stub::Entry::new(
                    stub as *const (),
                    $ret as *const (),
                    concat!(stringify!($entry), "\0").as_ptr(),
                    &$module,
                    $crate::sig::of_fn::<$fty>(),
                    0 $(+ $n)?,
                    $crate::__stub_kind!($kind),
                )
            })
        };
        $crate::__stub_asm!($kind, $module, $entry);
    };
}

/// The assembler name of an entry's stub, and the trampoline its kind
/// jumps to.
#[doc(hidden)]
#[macro_export]
macro_rules! __stub_asm {
    (stub, $m:ident, $e:ident) => {
        $crate::__stub_code!("dynld_stub_tail", $m, $e);
    };
    (ustub, $m:ident, $e:ident) => {
        $crate::__stub_code!("dynld_stub_wrap", $m, $e);
    };
    (wstub, $m:ident, $e:ident) => {
        $crate::__stub_code!("dynld_stub_wrap", $m, $e);
    };
}
