//! A memory provider that forwards to another and records what the loader
//! asks of it: the regions live, and every range it asked to bring in
//! ([`Memory::prefault`]), so that a test can bound the memory a load
//! commits against the bytes it read.

use dynld::{Error, Memory, Region, Seal};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// See the module docs.
pub struct CountingMemory<'m> {
    inner: &'m dyn Memory,
    prefaulted: Mutex<Vec<Range<usize>>>,
    live: AtomicUsize,
    allocations: AtomicUsize,
    largest: AtomicUsize,
}

impl<'m> CountingMemory<'m> {
    /// A provider forwarding to `inner`.
    pub fn new(inner: &'m dyn Memory) -> Self {
        CountingMemory {
            inner,
            prefaulted: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            allocations: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
        }
    }

    /// Regions handed out and not yet released.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Regions handed out so far.
    pub fn allocations(&self) -> usize {
        self.allocations.load(Ordering::Relaxed)
    }

    /// The largest region asked for (address space, not memory).
    pub fn largest(&self) -> usize {
        self.largest.load(Ordering::Relaxed)
    }

    /// Every range the loader asked to bring in, in order.
    pub fn prefaulted(&self) -> Vec<Range<usize>> {
        self.prefaulted.lock().unwrap().clone()
    }

    /// Bytes in the ranges the loader asked to bring in.
    pub fn prefaulted_bytes(&self) -> usize {
        self.prefaulted().iter().map(|r| r.len()).sum()
    }

    /// Bytes of the distinct `page`-sized pages those ranges touch: what a
    /// provider that brings whole pages in commits for them.
    pub fn prefaulted_pages(&self, page: usize) -> usize {
        let mut pages: Vec<Range<usize>> = self
            .prefaulted()
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.start / page..r.end.div_ceil(page))
            .collect();
        pages.sort_by_key(|r| r.start);
        let mut total = 0;
        let mut upto = 0;
        for r in pages {
            let from = r.start.max(upto);
            if r.end > from {
                total += r.end - from;
            }
            upto = upto.max(r.end);
        }
        total * page
    }

    fn allocated(&self, r: &Result<Region, Error>, size: usize) {
        if r.is_ok() {
            self.live.fetch_add(1, Ordering::Relaxed);
            self.allocations.fetch_add(1, Ordering::Relaxed);
            self.largest.fetch_max(size, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded to `inner`, which keeps the contract.
unsafe impl Memory for CountingMemory<'_> {
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error> {
        let r = self.inner.allocate(size, align);
        self.allocated(&r, size);
        r
    }

    fn allocate_low(&self, size: usize, align: usize) -> Result<Region, Error> {
        let r = self.inner.allocate_low(size, align);
        self.allocated(&r, size);
        r
    }

    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.seal(region, seal) }
    }

    unsafe fn release(&self, region: Region) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.release(region) }
    }

    fn prefault(&self, region: &Region, range: Range<usize>) {
        self.prefaulted.lock().unwrap().push(range.clone());
        self.inner.prefault(region, range);
    }

    #[cfg(unix)]
    unsafe fn map_file(
        &self,
        region: &mut Region,
        at: usize,
        file: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Result<usize, Error> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.map_file(region, at, file, offset, len) }
    }

    unsafe fn shrink(&self, region: &mut Region, len: usize) -> bool {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.shrink(region, len) }
    }
}
