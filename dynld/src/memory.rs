//! Memory for loaded modules, supplied by the caller through [`Memory`].
//!
//! A module lives in one [`Region`]: text, then data, then bss, then the
//! module's symbol tables. The loader writes it while it is readable and
//! writable, then calls [`Memory::seal`], which makes the text executable and
//! no longer writable (never both at once, where the provider can enforce
//! it) and makes the instruction cache see the new code.

use crate::error::Error;
use crate::sync::Spin;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// A block of memory owned by one loaded module.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    /// Part of the region maps a file ([`Memory::map_file`] said so).
    /// Only hosts map files: kernels keep the two-word region.
    #[cfg(all(feature = "std", unix))]
    pub(crate) file_backed: bool,
}

impl Region {
    /// Wraps a block handed out by a [`Memory`] provider.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `len` bytes, initialised
    /// (zeroed), and used by nothing else until the region is given back to
    /// the provider's [`Memory::release`].
    pub unsafe fn from_raw_parts(ptr: NonNull<u8>, len: usize) -> Region {
        Region {
            ptr,
            len,
            #[cfg(all(feature = "std", unix))]
            file_backed: false,
        }
    }

    /// The first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Moves the region out, leaving an empty one behind.
    pub(crate) fn take(&mut self) -> Region {
        Region {
            ptr: self.ptr,
            len: core::mem::take(&mut self.len),
            #[cfg(all(feature = "std", unix))]
            file_backed: self.file_backed,
        }
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The end of the address range [`Memory::allocate_low`] must stay in.
pub const LOW_LIMIT: u64 = 1 << 31;

/// Where a module's text and data lie in its region, for [`Memory::seal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Bytes of text at the start of the region.
    pub text: usize,
    /// Offset of the data segment; `text <= data`.
    pub data: usize,
    /// End of data and bss: `[data, data_end)` must stay writable.
    pub data_end: usize,
}

/// A provider of module memory.
///
/// # Safety
///
/// Implementations promise that [`allocate`](Memory::allocate) (and
/// [`allocate_low`](Memory::allocate_low)) return a zeroed region
/// satisfying [`Region::from_raw_parts`]'s contract, at least `size` bytes
/// long and aligned to `align`; that `seal` leaves `[seal.data,
/// seal.data_end)` readable and writable and everything in the region
/// readable; and that a `shrink` returning `true` left the region's first
/// `len` bytes in place.
///
/// Providers are `Sync`, so that modules (and a registry of them) can move
/// between threads and live in statics; one that keeps state behind a
/// lock ([`Arena`] does) is.
pub unsafe trait Memory: Sync {
    /// A zeroed, readable and writable region of `size` bytes aligned to
    /// `align` (a power of two).
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error>;
    /// Like [`allocate`](Memory::allocate), but the region must end at or
    /// below 2 GiB (for modules that use absolute 32-bit addresses). The
    /// default allocates normally and refuses a region that is not low.
    fn allocate_low(&self, size: usize, align: usize) -> Result<Region, Error> {
        let r = self.allocate(size, align)?;
        if (r.as_ptr() as u64).saturating_add(r.len() as u64) > LOW_LIMIT {
            // SAFETY: `r` was just allocated by this provider.
            unsafe { self.release(r) };
            return Err(Error::Memory {
                what: "module needs memory below 2 GiB",
                size,
            });
        }
        Ok(r)
    }
    /// Called once the image is relocated: make `[0, seal.text)` executable
    /// (and read-only, if the provider enforces W^X) and synchronise the
    /// instruction cache with it. Fails if `seal` does not fit the region.
    ///
    /// # Safety
    ///
    /// `region` came from this provider and has not been released.
    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error>;
    /// Takes back a region.
    ///
    /// # Safety
    ///
    /// `region` came from this provider's `allocate` or `allocate_low` and
    /// nothing uses it any more.
    unsafe fn release(&self, region: Region);
    /// A hint that the loader is about to write `range` of `region` (the
    /// text and data, then the tables, then a small bss). A provider whose
    /// memory faults in page by page can bring the range in at once; the
    /// default does nothing.
    fn prefault(&self, region: &Region, range: core::ops::Range<usize>) {
        let _ = (region, range);
    }
    /// Places `len` bytes of `file`, from file offset `offset`, at offset
    /// `at` of `region` by mapping them copy-on-write instead of copying
    /// them, where the provider can. Returns how many bytes it placed: a
    /// prefix of the `len` (whole pages, say), possibly none; the loader
    /// reads the rest. Placed bytes read as the file's, and writing them
    /// never changes the file. The default places none.
    ///
    /// A provider that maps must keep the file's bytes in place until the
    /// region is released, and fails (`Err`) only if the region can no
    /// longer be used; the loader then releases it.
    ///
    /// # Safety
    ///
    /// `region` came from this provider, has not been sealed or released,
    /// and nothing refers to its bytes `[at, at + len)`.
    #[cfg(all(feature = "std", unix))]
    unsafe fn map_file(
        &self,
        region: &mut Region,
        at: usize,
        file: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Result<usize, Error> {
        let _ = (region, at, file, offset, len);
        Ok(0)
    }
    /// Gives back the tail of `region` past `len` bytes, if the provider can.
    /// Returns whether it did (and then `region` is `len` bytes long).
    ///
    /// # Safety
    ///
    /// `region` came from this provider and nothing uses its bytes past `len`.
    unsafe fn shrink(&self, region: &mut Region, len: usize) -> bool {
        let _ = (region, len);
        false
    }
}

impl Seal {
    /// Checks that the seal's ranges lie in order inside a region of `len`
    /// bytes; every provider's `seal` starts with this.
    pub fn check(&self, len: usize) -> Result<(), Error> {
        if self.text <= self.data && self.data <= self.data_end && self.data_end <= len {
            Ok(())
        } else {
            Err(Error::Memory {
                what: "seal does not fit the region",
                size: len,
            })
        }
    }
}

/// An instruction-cache maintenance hook: called with the text's first byte
/// and length after relocation.
pub type FlushFn = fn(*const u8, usize);

/// Modules on the global allocator (feature `alloc`).
///
/// No W^X: the memory's protection is whatever the allocator gives (on a
/// hosted OS, not executable; on a microcontroller without an MPU setup, all
/// of RAM). Suitable for kernels that run code from the heap, and for loading
/// modules that are inspected but not run.
#[cfg(feature = "alloc")]
#[derive(Debug, Default)]
pub struct HeapMemory {
    flush: Option<FlushFn>,
}

#[cfg(feature = "alloc")]
impl HeapMemory {
    /// A heap provider with no cache maintenance.
    pub const fn new() -> Self {
        HeapMemory { flush: None }
    }
    /// A heap provider that calls `flush` on the text after relocation.
    pub const fn with_icache_flush(flush: FlushFn) -> Self {
        HeapMemory { flush: Some(flush) }
    }
}

/// The heap provider with no cache maintenance.
#[cfg(feature = "alloc")]
pub static HEAP: HeapMemory = HeapMemory::new();

/// Regions from [`HeapMemory`] keep their alignment at the region's end, so
/// `release` can rebuild the layout. Alignment is small (at most
/// `format::MAX_ALIGN`), stored in one word.
#[cfg(feature = "alloc")]
const HEAP_TAG: usize = core::mem::size_of::<usize>();

#[cfg(feature = "alloc")]
unsafe impl Memory for HeapMemory {
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error> {
        let fail = Error::Memory {
            what: "out of memory",
            size,
        };
        let total = size
            .checked_next_multiple_of(HEAP_TAG)
            .and_then(|s| s.checked_add(HEAP_TAG))
            .ok_or(fail.clone())?;
        let layout = core::alloc::Layout::from_size_align(total, align.max(HEAP_TAG))
            .map_err(|_| fail.clone())?;
        // SAFETY: `layout` has a non-zero size (it holds at least the tag).
        let ptr = NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) }).ok_or(fail)?;
        // SAFETY: the tag slot lies inside the allocation and is aligned for usize.
        unsafe {
            ptr.as_ptr()
                .add(total - HEAP_TAG)
                .cast::<usize>()
                .write(layout.align())
        };
        // SAFETY: fresh, zeroed allocation of `total >= size` bytes owned by the region.
        Ok(unsafe { Region::from_raw_parts(ptr, size) })
    }

    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error> {
        seal.check(region.len())?;
        if let Some(f) = self.flush {
            f(region.as_ptr(), seal.text);
        }
        Ok(())
    }

    unsafe fn release(&self, region: Region) {
        let total = region.len().next_multiple_of(HEAP_TAG) + HEAP_TAG;
        // SAFETY: the caller guarantees the region came from this provider,
        // so `allocate` wrote the alignment in the last word of the
        // allocation; `shrink` is not implemented, so `len` is unchanged.
        unsafe {
            let align = region.as_ptr().add(total - HEAP_TAG).cast::<usize>().read();
            let layout = core::alloc::Layout::from_size_align_unchecked(total, align);
            alloc::alloc::dealloc(region.as_ptr(), layout);
        }
    }
}

/// Modules in a caller-supplied buffer, with no allocator at all.
///
/// The arena hands out regions first-fit and takes them back when modules
/// are dropped, so modules can be loaded, unloaded and loaded again in the
/// same static buffer. `N` bounds the number of modules live at once.
///
/// Its bookkeeping is behind a spin lock, so one arena can live in a
/// `static` ([`Arena::from_raw_parts`]) and serve loads from several
/// threads or cores. The lock is held only inside `allocate`, `release`
/// and `shrink`; an interrupt handler must not load or unload modules of
/// an arena that the code it interrupted may be using.
pub struct Arena<'a, const N: usize = 8> {
    base: NonNull<u8>,
    len: usize,
    used: Spin<heapless::Vec<(usize, usize), N>>,
    flush: Option<FlushFn>,
    _buf: PhantomData<&'a mut [u8]>,
}

// SAFETY: the arena's buffer is reached only through regions handed out
// under the lock, each to one module; the bookkeeping is behind the lock.
unsafe impl<const N: usize> Sync for Arena<'_, N> {}
// SAFETY: as above; nothing in the arena is tied to a thread.
unsafe impl<const N: usize> Send for Arena<'_, N> {}

impl<'a, const N: usize> Arena<'a, N> {
    /// An arena over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Arena {
            len: buf.len(),
            base: NonNull::from(buf).cast(),
            used: Spin::new(heapless::Vec::new()),
            flush: None,
            _buf: PhantomData,
        }
    }

    /// An arena over the `len` bytes at `base`, in a constant: for a
    /// `static` arena over a `static mut` buffer.
    ///
    /// ```
    /// use dynld::Arena;
    /// static mut BUF: [u8; 4096] = [0; 4096];
    /// // SAFETY: BUF is used by nothing but the arena.
    /// static ARENA: Arena<'static, 4> =
    ///     unsafe { Arena::from_raw_parts(core::ptr::addr_of_mut!(BUF).cast(), 4096) };
    /// assert_eq!(ARENA.capacity(), 4096);
    /// ```
    ///
    /// # Safety
    ///
    /// `base` must be non-null and valid for reads and writes of `len`
    /// bytes for `'a`, and used by nothing but this arena.
    pub const unsafe fn from_raw_parts(base: *mut u8, len: usize) -> Self {
        Arena {
            len,
            // SAFETY: the caller vouches that `base` is non-null.
            base: unsafe { NonNull::new_unchecked(base) },
            used: Spin::new(heapless::Vec::new()),
            flush: None,
            _buf: PhantomData,
        }
    }

    /// [`Self::with_icache_flush`] in a constant.
    pub const fn with_icache_flush_const(mut self, flush: FlushFn) -> Self {
        self.flush = Some(flush);
        self
    }

    /// Calls `flush` on each module's text after relocation.
    pub fn with_icache_flush(mut self, flush: FlushFn) -> Self {
        self.flush = Some(flush);
        self
    }

    /// Bytes currently handed out.
    pub fn in_use(&self) -> usize {
        self.used.with(|u| u.iter().map(|&(_, l)| l).sum())
    }

    /// Number of live regions.
    pub fn regions(&self) -> usize {
        self.used.with(|u| u.len())
    }

    /// Size of the buffer.
    pub fn capacity(&self) -> usize {
        self.len
    }
}

impl<const N: usize> Arena<'_, N> {
    /// First fit for `size` bytes at `align` among the live regions `used`.
    fn allocate_in(
        &self,
        used: &mut heapless::Vec<(usize, usize), N>,
        size: usize,
        align: usize,
    ) -> Result<Region, Error> {
        if used.is_full() {
            return Err(Error::Memory {
                what: "arena: too many modules",
                size,
            });
        }
        let addr = self.base.as_ptr() as usize;
        let oom = Error::Memory {
            what: "arena: out of memory",
            size,
        };
        let align_at = |o: usize| (addr + o).checked_next_multiple_of(align).map(|a| a - addr);
        // First fit: the gap before each live region, then the tail.
        let mut prev_end = 0;
        let mut found = None;
        for i in 0..=used.len() {
            let limit = used.get(i).map_or(self.len, |&(o, _)| o);
            if let Some(start) = align_at(prev_end) {
                if start.checked_add(size).is_some_and(|end| end <= limit) {
                    found = Some((i, start));
                    break;
                }
            }
            if let Some(&(o, l)) = used.get(i) {
                prev_end = o + l;
            }
        }
        let (slot, start) = found.ok_or(oom)?;
        used.insert(slot, (start, size))
            .map_err(|_| Error::Memory {
                what: "arena: too many modules",
                size,
            })?;
        // SAFETY: `[start, start + size)` lies inside the buffer this arena
        // borrows exclusively for 'a, and overlaps no live region.
        unsafe {
            let p = self.base.as_ptr().add(start);
            p.write_bytes(0, size);
            Ok(Region::from_raw_parts(NonNull::new_unchecked(p), size))
        }
    }
}

unsafe impl<const N: usize> Memory for Arena<'_, N> {
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error> {
        // Every live region takes at least a byte, so offsets identify them.
        let size = size.max(1);
        self.used.with(|used| self.allocate_in(used, size, align))
    }
    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error> {
        seal.check(region.len())?;
        if let Some(f) = self.flush {
            f(region.as_ptr(), seal.text);
        }
        Ok(())
    }

    unsafe fn release(&self, region: Region) {
        let off = region.as_ptr() as usize - self.base.as_ptr() as usize;
        self.used.with(|used| {
            if let Some(i) = used.iter().position(|&(o, _)| o == off) {
                used.remove(i);
            }
        });
    }

    unsafe fn shrink(&self, region: &mut Region, len: usize) -> bool {
        let off = region.as_ptr() as usize - self.base.as_ptr() as usize;
        self.used
            .with(|used| match used.iter_mut().find(|(o, _)| *o == off) {
                Some(r) if len <= r.1 => {
                    r.1 = len;
                    region.len = len;
                    true
                }
                _ => false,
            })
    }
}

#[cfg(all(feature = "std", unix))]
pub use crate::mmap::{MmapMemory, MMAP};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_regions_never_share_an_offset() {
        let mut buf = [0u8; 256];
        let arena: Arena<'_, 4> = Arena::new(&mut buf);
        let empty = arena.allocate(0, 8).unwrap();
        let real = arena.allocate(16, 8).unwrap();
        assert_ne!(empty.as_ptr(), real.as_ptr());
        // SAFETY: both regions came from this arena and are unused.
        unsafe {
            arena.release(empty);
            assert_eq!(arena.regions(), 1);
            arena.release(real);
        }
        assert_eq!(arena.in_use(), 0);
    }

    #[test]
    fn seal_must_fit_the_region() {
        let mut buf = [0u8; 64];
        let arena: Arena<'_, 1> = Arena::new(&mut buf);
        let r = arena.allocate(32, 8).unwrap();
        let bad = Seal {
            text: 16,
            data: 8,
            data_end: 32,
        };
        let past = Seal {
            text: 8,
            data: 8,
            data_end: 33,
        };
        // SAFETY: the region came from this arena.
        unsafe {
            assert!(arena.seal(&r, bad).is_err());
            assert!(arena.seal(&r, past).is_err());
            assert!(arena
                .seal(
                    &r,
                    Seal {
                        text: 8,
                        data: 16,
                        data_end: 32
                    }
                )
                .is_ok());
            arena.release(r);
        }
    }
}
