//! A spin lock: what a kernel's registry, arena and the exit-handler list
//! need to live in a `static` and be shared, with no operating system.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A value behind a spin lock.
///
/// Taking the lock spins until it is free, so it must never be taken
/// again by code that interrupted its holder on the same core (an
/// interrupt handler loading a module while the interrupted code was
/// loading one): that would wait forever.
pub(crate) struct Spin<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to the value, so a
// value that may move between threads may be shared behind it.
unsafe impl<T: Send> Sync for Spin<T> {}

impl<T> Spin<T> {
    /// An unlocked value.
    pub const fn new(value: T) -> Self {
        Spin {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with the value locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        self.locked_with(f)
    }

    /// Runs `f` with the value locked if it is free now; `None` if not.
    #[cfg(all(feature = "registry", not(feature = "std")))]
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(self.locked_with(f))
    }

    /// Runs `f` on the value, which the caller has just locked, and
    /// unlocks it.
    fn locked_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: the caller took the lock, held until `_unlock` drops,
        // after `f` returns (or unwinds), so this is the only reference.
        f(unsafe { &mut *self.value.get() })
    }
}

/// The registry's lock: the operating system's mutex with `std` (a thread
/// waiting for a load sleeps), the spin lock without.
#[cfg(all(feature = "registry", feature = "std"))]
pub(crate) struct Lock<T>(std::sync::Mutex<T>);

#[cfg(all(feature = "registry", feature = "std"))]
impl<T> Lock<T> {
    /// An unlocked value.
    pub const fn new(value: T) -> Self {
        Lock(std::sync::Mutex::new(value))
    }

    /// Runs `f` with the value locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A panic while locked (a memory provider's, a source's) leaves
        // the registry's books as consistent as any early return does.
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Runs `f` with the value locked if it is free now; `None` if not.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut g = match self.0.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(f(&mut g))
    }
}

/// The registry's lock: the operating system's mutex with `std` (a thread
/// waiting for a load sleeps), the spin lock without.
#[cfg(all(feature = "registry", not(feature = "std")))]
pub(crate) type Lock<T> = Spin<T>;
