//! W^X module memory from `mmap`/`mprotect` on unix hosts (feature `std`).

use crate::error::Error;
use crate::memory::{Memory, Region, Seal};
use core::ptr::NonNull;

/// Page-granular module memory with true W^X.
///
/// Regions are private anonymous mappings, readable and writable while the
/// loader writes them. [`Memory::seal`] switches the text pages to read +
/// execute; no page is ever writable and executable at once. The text must
/// therefore end on a page boundary before the data starts: a module whose
/// data shares a page with its text is refused at seal time.
///
/// A released region of up to `SPARE_MAX` (4 MiB) bytes is made readable and
/// writable again (never executable), zeroed, and kept for the next module
/// of the same page count, up to `SPARE_SLOTS` (4) of them: loading a module
/// again then costs no mapping and no page faults. Code of an unloaded
/// module can no longer run, and its bytes are gone.
#[derive(Debug, Default, Clone, Copy)]
pub struct MmapMemory;

/// The mmap provider.
pub static MMAP: MmapMemory = MmapMemory;

/// Ranges shorter than this many pages are left to fault in.
const PREFAULT_MIN_PAGES: usize = 8;

/// Texts shorter than this many whole pages are read, not mapped: copying
/// them costs less than the mapping and its first page faults.
const MAP_MIN_PAGES: usize = 16;

/// Regions of this many bytes or more are asked for huge pages.
const HUGE: usize = 2 << 20;

/// Largest region kept for reuse when released.
pub const SPARE_MAX: usize = 4 << 20;
/// Released regions kept for reuse at most.
pub const SPARE_SLOTS: usize = 4;

/// Spare mappings.
struct Spares {
    /// (start, page-rounded length), each readable, writable and zeroed.
    kept: [Option<(usize, usize)>; SPARE_SLOTS],
    /// Starts of spares handed out again and not yet released: their pages
    /// are all present, so prefaulting them is wasted work.
    reused: [usize; SPARE_SLOTS],
}

static SPARE: std::sync::Mutex<Spares> = std::sync::Mutex::new(Spares {
    kept: [None; SPARE_SLOTS],
    reused: [0; SPARE_SLOTS],
});

/// A spare mapping of exactly `len` bytes aligned to `align`, if one is kept.
fn take_spare(len: usize, align: usize) -> Option<usize> {
    let mut spare = SPARE.lock().ok()?;
    let slot = spare
        .kept
        .iter_mut()
        .find(|s| matches!(s, Some((start, l)) if *l == len && start % align == 0))?;
    let (start, _) = slot.take()?;
    if let Some(r) = spare.reused.iter_mut().find(|r| **r == 0) {
        *r = start;
    }
    Some(start)
}

/// Whether the region at `start` is a spare handed out again.
fn is_reused(start: usize) -> bool {
    SPARE
        .lock()
        .is_ok_and(|s| start != 0 && s.reused.contains(&start))
}

/// Keeps the mapping `[start, start + len)` if there is room; returns
/// whether it did.
fn keep_spare(start: usize, len: usize) -> bool {
    let Ok(mut spare) = SPARE.lock() else {
        return false;
    };
    if let Some(r) = spare.reused.iter_mut().find(|r| **r == start) {
        *r = 0;
    }
    match spare.kept.iter_mut().find(|s| s.is_none()) {
        Some(slot) => {
            *slot = Some((start, len));
            true
        }
        None => false,
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

fn round(len: usize, page: usize) -> Option<usize> {
    len.checked_next_multiple_of(page)
}

/// Makes the instruction cache see `len` bytes of new code at `p`.
#[allow(unused_variables)]
fn flush_icache(p: *const u8, len: usize) {
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        extern "C" {
            fn __clear_cache(start: *mut core::ffi::c_char, end: *mut core::ffi::c_char);
        }
        // SAFETY: the range lies inside one live mapping owned by the caller.
        unsafe { __clear_cache(p as *mut _, p.add(len) as *mut _) };
    }
}

impl MmapMemory {
    fn map(
        &self,
        size: usize,
        align: usize,
        extra_flags: libc::c_int,
        hint: usize,
    ) -> Result<Region, Error> {
        let page = page_size();
        let fail = Error::Memory {
            what: "mmap failed",
            size,
        };
        if !align.is_power_of_two() {
            return Err(fail);
        }
        let len = round(size.max(1), page).ok_or(fail.clone())?;
        // A large region starts on a huge-page boundary, so the kernel can
        // back it with huge pages (see below).
        let align = if cfg!(target_os = "linux") && len >= HUGE {
            align.max(HUGE)
        } else {
            align
        };
        let extra = if align > page { align } else { 0 };
        let map = len.checked_add(extra).ok_or(fail.clone())?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected (the hint is only a hint: no MAP_FIXED).
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                map,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(fail);
        }
        let mut start = p as usize;
        if extra != 0 {
            let aligned = start.next_multiple_of(align);
            // SAFETY: both trimmed ranges lie inside the mapping just made
            // and are page-aligned (align and page are powers of two, align > page).
            unsafe {
                if aligned > start {
                    libc::munmap(p, aligned - start);
                }
                let tail = start + map - (aligned + len);
                if tail > 0 {
                    libc::munmap((aligned + len) as *mut _, tail);
                }
            }
            start = aligned;
        }
        // SAFETY: `start..start+len` is a live RW mapping, zero-filled by the
        // kernel and owned only by the region.
        Ok(unsafe { Region::from_raw_parts(NonNull::new_unchecked(start as *mut u8), size) })
    }
}

unsafe impl Memory for MmapMemory {
    fn allocate(&self, size: usize, align: usize) -> Result<Region, Error> {
        let page = page_size();
        if let Some(len) = round(size.max(1), page).filter(|&l| l <= SPARE_MAX) {
            if let Some(start) = take_spare(len, align.max(page)) {
                // SAFETY: a spare is a live RW mapping of `len >= size`
                // bytes, zeroed when it was released and owned by nobody
                // since it left the list.
                return Ok(unsafe {
                    Region::from_raw_parts(NonNull::new_unchecked(start as *mut u8), size)
                });
            }
        }
        self.map(size, align, 0, 0)
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn allocate_low(&self, size: usize, align: usize) -> Result<Region, Error> {
        let r = self.map(size, align, libc::MAP_32BIT, 0)?;
        if (r.as_ptr() as u64).saturating_add(r.len() as u64) > crate::memory::LOW_LIMIT {
            // SAFETY: `r` was just allocated by this provider.
            unsafe { self.release(r) };
            return Err(Error::Memory {
                what: "no memory below 2 GiB",
                size,
            });
        }
        Ok(r)
    }

    /// Asks the kernel for free space below 2 GiB by hints, as there is no
    /// `MAP_32BIT` here.
    #[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
    fn allocate_low(&self, size: usize, align: usize) -> Result<Region, Error> {
        let low = crate::memory::LOW_LIMIT;
        for hint in [0x4000_0000usize, 0x1000_0000, 0x0100_0000, 0x6000_0000] {
            let r = self.map(size, align, 0, hint)?;
            if (r.as_ptr() as u64).saturating_add(r.len() as u64) <= low {
                return Ok(r);
            }
            let len = round(r.len().max(1), page_size()).unwrap_or(usize::MAX);
            // SAFETY: `r` is the mapping of `len` bytes just made, used by
            // nothing (unmapped rather than kept as a spare).
            unsafe { libc::munmap(r.as_ptr().cast(), len) };
        }
        Err(Error::Memory {
            what: "no memory below 2 GiB",
            size,
        })
    }

    fn prefault(&self, region: &Region, range: core::ops::Range<usize>) {
        // One call faults the pages in, instead of one fault per page as
        // the loader first writes them. Linux 5.14 and later; elsewhere, or
        // on failure, the pages fault in as they are written.
        #[cfg(target_os = "linux")]
        if !is_reused(region.as_ptr() as usize) {
            let page = page_size();
            let start = range.start & !(page - 1);
            let end = range.end.min(region.len());
            // Populating a large module page by page costs a fault (and,
            // virtualised, an exit) per 4 KiB; huge pages take one per
            // 2 MiB. Only for whole huge pages of what the loader is about
            // to write: a huge page over a few bytes would commit 2 MiB of
            // memory nobody asked for. A hint: where transparent huge
            // pages are off, nothing changes.
            let base = region.as_ptr() as usize;
            let huge_start = (base + start).next_multiple_of(HUGE) - base;
            let huge_end = ((base + end) & !(HUGE - 1)).saturating_sub(base);
            if huge_start < huge_end {
                // SAFETY: advice on whole huge pages inside the region's
                // mapping; no byte changes.
                unsafe {
                    libc::madvise(
                        region.as_ptr().add(huge_start).cast(),
                        huge_end - huge_start,
                        libc::MADV_HUGEPAGE,
                    )
                };
            }
            // A few pages fault in as cheaply as the call costs.
            if start < end && end - start >= PREFAULT_MIN_PAGES * page {
                // SAFETY: `[start, end)` lies inside the region's mapping
                // (page-aligned down from an offset in it); populating for
                // write allocates the pages as a write would but changes
                // no byte.
                unsafe {
                    libc::madvise(
                        region.as_ptr().add(start).cast(),
                        end - start,
                        libc::MADV_POPULATE_WRITE,
                    )
                };
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (region, range);
    }

    unsafe fn seal(&self, region: &Region, seal: Seal) -> Result<(), Error> {
        seal.check(region.len())?;
        if seal.text == 0 {
            return Ok(());
        }
        let page = page_size();
        let end = round(seal.text, page).unwrap_or(usize::MAX);
        if end > seal.data && seal.data_end > seal.data {
            return Err(Error::Memory {
                what: "text and data share a page: link the module with page-aligned data",
                size: 0,
            });
        }
        flush_icache(region.as_ptr(), seal.text);
        // SAFETY: the caller guarantees the region is a live mapping made by
        // `allocate`, which covers whole pages; `end` is the text rounded up
        // to a page, inside the region's pages since `text <= len`, and no
        // data or bss byte lies below it (checked above).
        let r = unsafe {
            libc::mprotect(
                region.as_ptr().cast(),
                end,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        if r != 0 {
            return Err(Error::Memory {
                what: "mprotect failed",
                size: 0,
            });
        }
        Ok(())
    }

    /// Maps the whole pages of `[offset, offset + len)` of a regular file on
    /// an executable mount, when there are at least `MAP_MIN_PAGES` of them
    /// and both `offset` and the target address are page-aligned. The
    /// mapping is private: relocating the text writes copies of the pages
    /// it patches, and the other pages stay shared with the page cache
    /// until the module first touches them.
    unsafe fn map_file(
        &self,
        region: &mut Region,
        at: usize,
        file: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Result<usize, Error> {
        use std::os::fd::AsRawFd;
        let page = page_size();
        let whole = len & !(page - 1);
        let addr = region.as_ptr() as usize;
        if whole < MAP_MIN_PAGES * page
            || at > region.len()
            || whole > region.len() - at
            || (addr + at) % page != 0
            || offset % page as u64 != 0
        {
            return Ok(0);
        }
        let (Ok(off), Some(end)) = (
            libc::off_t::try_from(offset),
            offset.checked_add(whole as u64),
        ) else {
            return Ok(0);
        };
        let fd = file.as_raw_fd();
        // Only a regular file that holds every mapped byte: touching a
        // mapped page past the end of the file raises SIGBUS. And only where
        // the pages may become executable (not a `noexec` mount, where
        // sealing would fail): elsewhere the loader reads the text instead.
        // SAFETY: fstat and fstatvfs write only the structures passed.
        let (st, vfs) = unsafe {
            let mut st: libc::stat = core::mem::zeroed();
            let mut vfs: libc::statvfs = core::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 || libc::fstatvfs(fd, &mut vfs) != 0 {
                return Ok(0);
            }
            (st, vfs)
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG
            || u64::try_from(st.st_size).map_or(true, |size| size < end)
            || vfs.f_flag & libc::ST_NOEXEC != 0
        {
            return Ok(0);
        }
        let target = (addr + at) as *mut libc::c_void;
        region.file_backed = true;
        // SAFETY: `[addr + at, addr + at + whole)` lies inside the region's
        // mapping (checked above), which the caller guarantees nothing
        // refers to; MAP_FIXED replaces those pages of it and nothing else.
        let p = unsafe {
            libc::mmap(
                target,
                whole,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                fd,
                off,
            )
        };
        if p == target {
            return Ok(whole);
        }
        // A failed MAP_FIXED may already have removed the old pages: put
        // fresh zeroed ones back, or give up on the region.
        // SAFETY: as above, anonymous memory in the same range.
        let back = unsafe {
            libc::mmap(
                target,
                whole,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if back == target {
            region.file_backed = false;
            Ok(0)
        } else {
            Err(Error::Memory {
                what: "mmap of the module file failed",
                size: whole,
            })
        }
    }

    unsafe fn release(&self, region: Region) {
        let len = round(region.len().max(1), page_size()).unwrap_or(usize::MAX);
        // A region that maps a file is not kept: its pages are not zeroed
        // anonymous memory, and zeroing them would copy every one.
        if len <= SPARE_MAX && !region.file_backed {
            let p = region.as_ptr();
            // SAFETY: the caller guarantees the region is this provider's
            // mapping of `len` bytes and unused: making it read-write (not
            // executable) and zeroing it touches only that mapping.
            let reusable = unsafe {
                libc::mprotect(p.cast(), len, libc::PROT_READ | libc::PROT_WRITE) == 0 && {
                    core::ptr::write_bytes(p, 0, len);
                    true
                }
            };
            if reusable && keep_spare(p as usize, len) {
                return;
            }
        }
        if let Ok(mut spare) = SPARE.lock() {
            let start = region.as_ptr() as usize;
            if let Some(r) = spare.reused.iter_mut().find(|r| **r == start) {
                *r = 0;
            }
        }
        // SAFETY: the caller guarantees the region is a mapping of `len`
        // bytes made by `allocate` (possibly shrunk to a page multiple by
        // `shrink`) and no longer used.
        unsafe { libc::munmap(region.as_ptr().cast(), len) };
    }

    unsafe fn shrink(&self, region: &mut Region, len: usize) -> bool {
        let page = page_size();
        let (Some(keep), Some(have)) = (round(len.max(1), page), round(region.len().max(1), page))
        else {
            return false;
        };
        if len > region.len() {
            return false;
        }
        if keep < have {
            // SAFETY: the caller guarantees the region is this provider's
            // mapping; `[keep, have)` is its unused tail.
            unsafe { libc::munmap(region.as_ptr().add(keep).cast(), have - keep) };
        }
        // SAFETY: the first `len` bytes are still mapped and owned by the region.
        let file_backed = region.file_backed;
        *region = unsafe { Region::from_raw_parts(NonNull::new_unchecked(region.as_ptr()), len) };
        region.file_backed = file_backed;
        true
    }
}
