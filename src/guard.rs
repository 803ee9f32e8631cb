//! A memory provider that checks the loader never writes outside the
//! regions it is given: every region sits between two guard zones filled
//! with a known pattern, checked when the region is released and on demand.

use dynld::{Error, Memory, Region, Seal};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Mutex;

/// The pattern guard zones hold.
pub const PATTERN: u8 = 0xa5;

/// Bytes of guard before and after each region (at least the alignment).
const GUARD: usize = 256;

/// See the module docs.
#[derive(Default)]
pub struct GuardedMemory {
    live: Mutex<Vec<(Base, usize, Layout, usize)>>,
    violations: Mutex<Vec<String>>,
    /// Refuse allocations larger than this (0 = no cap), like a small device.
    pub cap: usize,
}

/// A live allocation's first byte.
#[derive(Clone, Copy)]
struct Base(*mut u8);

// SAFETY: an address of an allocation this provider owns, used only under
// its lock.
unsafe impl Send for Base {}

impl GuardedMemory {
    /// A provider with no size cap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of regions handed out and not yet released.
    pub fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    fn check_one(&self, base: *mut u8, lead: usize, layout: Layout, len: usize) {
        // SAFETY: `base` is a live allocation of `layout.size()` bytes made
        // by `allocate`; only its guard zones are read.
        let all = unsafe { std::slice::from_raw_parts(base, layout.size()) };
        let before = &all[..lead];
        let after = &all[lead + len..];
        if before.iter().chain(after).any(|&b| b != PATTERN) {
            self.violations.lock().unwrap().push(format!(
                "write outside region at {:p}+{len}",
                base.wrapping_add(lead)
            ));
        }
    }

    /// Checks every live region's guards; returns the violations seen so far.
    pub fn violations(&self) -> Vec<String> {
        let live = self.live.lock().unwrap().clone();
        for (base, lead, layout, len) in live {
            self.check_one(base.0, lead, layout, len);
        }
        self.violations.lock().unwrap().clone()
    }
}

// SAFETY: regions are fresh zeroed allocations, aligned as asked, used by
// nothing else until released; seal changes nothing (no W^X here).
unsafe impl Memory for GuardedMemory {
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error> {
        let oom = Error::Memory {
            what: "out of memory",
            size,
        };
        if self.cap != 0 && size > self.cap {
            return Err(oom);
        }
        let lead = GUARD.max(align);
        let total = size
            .checked_add(lead)
            .and_then(|t| t.checked_add(GUARD))
            .ok_or(oom.clone())?;
        let layout = Layout::from_size_align(total, align.max(16)).map_err(|_| oom.clone())?;
        // SAFETY: `layout` has a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        if base.is_null() {
            return Err(oom);
        }
        // SAFETY: both guard zones lie inside the allocation just made.
        unsafe {
            base.write_bytes(PATTERN, lead);
            base.add(lead + size).write_bytes(PATTERN, GUARD);
        }
        self.live
            .lock()
            .unwrap()
            .push((Base(base), lead, layout, size));
        // SAFETY: `[lead, lead + size)` is zeroed, aligned to `align` (lead
        // is a multiple of it), and owned by the region until released.
        Ok(unsafe { Region::from_raw_parts(NonNull::new_unchecked(base.add(lead)), size) })
    }

    /// This provider cannot promise an address below 2 GiB, so it refuses
    /// such modules on every machine (rather than by where the heap is).
    fn allocate_low(&self, size: usize, _align: usize) -> Result<Region, Error> {
        Err(Error::Memory {
            what: "module needs memory below 2 GiB",
            size,
        })
    }

    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error> {
        seal.check(region.len())?;
        Ok(())
    }

    unsafe fn release(&self, region: Region) {
        let p = region.as_ptr();
        let mut live = self.live.lock().unwrap();
        let Some(i) = live
            .iter()
            .position(|&(b, lead, _, _)| b.0.wrapping_add(lead) == p)
        else {
            drop(live);
            self.violations
                .lock()
                .unwrap()
                .push(format!("release of unknown region {p:p}"));
            return;
        };
        let (Base(base), lead, layout, len) = live.swap_remove(i);
        drop(live);
        self.check_one(base, lead, layout, len);
        // SAFETY: allocated by `allocate` with this layout, released once.
        unsafe { dealloc(base, layout) };
    }
}

impl Drop for GuardedMemory {
    fn drop(&mut self) {
        let live: Vec<_> = self.live.lock().unwrap().drain(..).collect();
        for (Base(base), _, layout, _) in live {
            // SAFETY: allocated by `allocate` with this layout.
            unsafe { dealloc(base, layout) };
        }
    }
}
