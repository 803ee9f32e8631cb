//! Typed handles to a loaded module's exports that cannot outlive it.

use core::marker::PhantomData;

/// An export of a loaded module, of type `F`, borrowing the module: the
/// module cannot be unloaded while the handle lives, so the handle can
/// never reach code or data that is gone. Made by
/// [`Module::get`](crate::Module::get), which checks the export's
/// signature against `F`'s.
///
/// A function is called through the handle ([`Symbol::call`]); data is
/// reached through [`Symbol::as_ptr`]. Neither hands out a value that
/// outlives the module; [`Symbol::into_raw`] does, and is `unsafe`.
///
/// A handle kept past its module does not compile:
///
/// ```compile_fail,E0597
/// use dynld::{ExportTable, Loader, SliceSource, HEAP};
/// fn keep(bytes: &[u8]) -> i32 {
///     let add = {
///         let m = Loader::new(ExportTable::EMPTY, &HEAP)
///             .load(&mut SliceSource::new(bytes))
///             .unwrap();
///         m.get::<extern "C" fn(i32, i32) -> i32>("add").unwrap()
///     }; // the module is unloaded here
///     add.call(2, 3)
/// }
/// ```
///
/// ```no_run
/// # fn demo(m: &dynld::Module<'_>) -> Result<(), dynld::Error> {
/// let add = m.get::<extern "C" fn(i32, i32) -> i32>("add")?;
/// assert_eq!(add.call(2, 3), 5);
/// let counter = m.get::<*mut i32>("counter")?;
/// // SAFETY: the module's `int counter`, live while `m` is.
/// unsafe { *counter.as_ptr() += 1 };
/// # Ok(()) }
/// ```
pub struct Symbol<'m, F> {
    addr: *const (),
    _module: PhantomData<&'m ()>,
    _type: PhantomData<F>,
}

// SAFETY: a handle is an address in a module that is itself shared
// (`Module` is `Sync`); calling through it is as thread-safe as `F` says.
unsafe impl<F: Sync> Sync for Symbol<'_, F> {}
// SAFETY: as above.
unsafe impl<F: Send> Send for Symbol<'_, F> {}

impl<F> Clone for Symbol<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Symbol<'_, F> {}

impl<F> core::fmt::Debug for Symbol<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Symbol").field(&self.addr).finish()
    }
}

impl<'m, F> Symbol<'m, F> {
    /// A handle to `addr`, valid while the module borrowed for `'m` is.
    ///
    /// # Safety
    ///
    /// `addr` must be an export of that module, of type `F`.
    pub(crate) const unsafe fn new(addr: *const ()) -> Self {
        Symbol {
            addr,
            _module: PhantomData,
            _type: PhantomData,
        }
    }

    /// The export's address (valid only while the module is loaded).
    pub fn addr(&self) -> *const () {
        self.addr
    }

    /// The export as a bare `F` (a function pointer, say), no longer tied
    /// to the module.
    ///
    /// # Safety
    ///
    /// The caller must not use the value once the module is unloaded: a
    /// function pointer kept past that would run whatever is loaded next
    /// at the same address.
    pub unsafe fn into_raw(self) -> F
    where
        F: Copy,
    {
        const {
            assert!(core::mem::size_of::<F>() == core::mem::size_of::<*const ()>());
        }
        // SAFETY: `F` is pointer-sized (checked above) and the export has
        // type `F` (this handle's invariant).
        unsafe { core::mem::transmute_copy::<*const (), F>(&self.addr) }
    }
}

impl<T> Symbol<'_, *const T> {
    /// The data's address; reading it needs `unsafe`, and is sound only
    /// while the module is loaded.
    pub fn as_ptr(&self) -> *const T {
        self.addr.cast()
    }
}

impl<T> Symbol<'_, *mut T> {
    /// The data's address; reading or writing it needs `unsafe`, and is
    /// sound only while the module is loaded.
    pub fn as_ptr(&self) -> *mut T {
        self.addr as *mut T
    }
}

/// `call` for function handles of each arity.
macro_rules! calls {
    ($($a:ident: $t:ident),*) => {
        impl<R $(, $t)*> Symbol<'_, extern "C" fn($($t),*) -> R> {
            /// Calls the function.
            #[inline]
            #[allow(clippy::too_many_arguments)]
            pub fn call(&self $(, $a: $t)*) -> R {
                // SAFETY: the export is a function of this type (checked
                // by its signature when the handle was made), and the
                // borrowed module keeps its code in place.
                let f: extern "C" fn($($t),*) -> R = unsafe { core::mem::transmute(self.addr) };
                f($($a),*)
            }
        }

        impl<R $(, $t)*> Symbol<'_, unsafe extern "C" fn($($t),*) -> R> {
            /// Calls the function.
            ///
            /// # Safety
            ///
            /// The function's own contract (why its type is `unsafe`).
            #[inline]
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn call(&self $(, $a: $t)*) -> R {
                // SAFETY: as for the safe `call`; the caller keeps the
                // function's own contract.
                unsafe {
                    let f: unsafe extern "C" fn($($t),*) -> R = core::mem::transmute(self.addr);
                    f($($a),*)
                }
            }
        }
    };
}

calls!();
calls!(a: A);
calls!(a: A, b: B);
calls!(a: A, b: B, c: C);
calls!(a: A, b: B, c: C, d: D);
calls!(a: A, b: B, c: C, d: D, e: E);
calls!(a: A, b: B, c: C, d: D, e: E, g: G);
calls!(a: A, b: B, c: C, d: D, e: E, g: G, h: H);
calls!(a: A, b: B, c: C, d: D, e: E, g: G, h: H, i: I);
