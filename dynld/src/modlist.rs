//! The loaded modules as a debugger attached to a kernel reads them
//! (feature `modlist`): a list at a fixed symbol, `dynld_modules`, of
//! plain C records, which `scripts/dynld-gdb.py` walks to load each
//! module's symbols at its address, as Linux's `lx-symbols` walks the
//! kernel's module list; and a function, `dynld_modules_changed`, called
//! after each change, on which the script keeps a breakpoint to follow
//! loads and unloads.
//!
//! Every registry of the program adds the modules it loads (once
//! relocated, before any of their code runs) and takes out those it
//! unloads (after their destructors, before their memory goes back). The
//! records need no debug information to read:
//!
//! ```text
//! struct dynld_modules { u32 version (1); u32 generation; ModEntry *first; }
//! struct ModEntry { ModEntry *next; usize base, text, data_offset, image;
//!                   u32 id; u32 name_len; u8 name[56]; }
//! ```
//!
//! (`usize` and pointers are the target's words; `generation` counts the
//! changes.)

use core::cell::UnsafeCell;
use core::ptr::null_mut;

use crate::module::Module;
use crate::registry::MODULE_NAME_MAX;
use crate::sync::Spin;

/// One loaded module in the list (see the [module](self) documentation).
#[repr(C)]
#[derive(Debug)]
pub struct ModEntry {
    next: *mut ModEntry,
    /// The address of its text.
    pub base: usize,
    /// Bytes of text.
    pub text: usize,
    /// Offset of its data from the base.
    pub data_offset: usize,
    /// Bytes of image.
    pub image: usize,
    /// Its registry id.
    pub id: u32,
    name_len: u32,
    name: [u8; MODULE_NAME_MAX],
}

impl ModEntry {
    /// A record in no list.
    pub(crate) const fn new() -> Self {
        ModEntry {
            next: null_mut(),
            base: 0,
            text: 0,
            data_offset: 0,
            image: 0,
            id: 0,
            name_len: 0,
            name: [0; MODULE_NAME_MAX],
        }
    }

    /// Its module's name.
    pub fn name(&self) -> &str {
        let n = (self.name_len as usize).min(MODULE_NAME_MAX);
        core::str::from_utf8(&self.name[..n]).unwrap_or("")
    }
}

/// The list's head, by the name debuggers look for.
#[repr(C)]
#[doc(hidden)]
pub struct Head {
    version: u32,
    generation: u32,
    first: *mut ModEntry,
}

/// The head, written only under [`LOCK`].
#[repr(transparent)]
#[doc(hidden)]
pub struct HeadCell(UnsafeCell<Head>);

// SAFETY: written only with `LOCK` held; a debugger reads it while the
// program is stopped.
unsafe impl Sync for HeadCell {}

/// The loaded modules, for debuggers.
#[no_mangle]
#[doc(hidden)]
pub static dynld_modules: HeadCell = HeadCell(UnsafeCell::new(Head {
    version: 1,
    generation: 0,
    first: null_mut(),
}));

/// Serializes changes of the list (registries have locks of their own).
static LOCK: Spin<()> = Spin::new(());

/// Called after each change of the list: a debugger's breakpoint here
/// sees every load and unload.
#[no_mangle]
#[inline(never)]
#[doc(hidden)]
pub extern "C" fn dynld_modules_changed() {
    // A side effect the optimizer keeps, so the call is never dropped.
    // SAFETY: reading a field of the head, which lives for ever.
    unsafe {
        core::ptr::read_volatile(&raw const (*dynld_modules.0.get()).generation);
    }
}

/// Fills `entry` for `m`, loaded as `name` with `id`, and puts it first
/// in the list.
///
/// # Safety
///
/// `entry` must be in no list, and stay at its address until
/// [`remove`] takes it out.
pub(crate) unsafe fn add(entry: *mut ModEntry, m: &Module<'_>, name: &str, id: u32) {
    LOCK.with(|()| {
        // SAFETY: the caller's promise; the lock keeps other writers out.
        unsafe {
            let e = &mut *entry;
            e.base = m.base() as usize;
            e.text = m.text_size();
            e.data_offset = m.data_offset();
            e.image = m.image_size();
            e.id = id;
            let n = name.len().min(MODULE_NAME_MAX);
            e.name[..n].copy_from_slice(&name.as_bytes()[..n]);
            e.name_len = n as u32;
            let h = dynld_modules.0.get();
            e.next = (*h).first;
            (*h).first = entry;
            (*h).generation = (*h).generation.wrapping_add(1);
        }
    });
    dynld_modules_changed();
}

/// Takes `entry` out of the list, if it is in it.
///
/// # Safety
///
/// `entry` must be a record [`add`] was given (or a new one).
pub(crate) unsafe fn remove(entry: *mut ModEntry) {
    let found = LOCK.with(|()| {
        // SAFETY: the lock keeps other writers out; every record linked is
        // live (taken out before it goes).
        unsafe {
            let h = dynld_modules.0.get();
            let mut link: *mut *mut ModEntry = &raw mut (*h).first;
            while !(*link).is_null() {
                if *link == entry {
                    *link = (*entry).next;
                    (*entry).next = null_mut();
                    (*h).generation = (*h).generation.wrapping_add(1);
                    return true;
                }
                link = &raw mut (**link).next;
            }
            false
        }
    });
    if found {
        dynld_modules_changed();
    }
}

/// Calls `f` with each listed module, the last loaded first. `f` must not
/// load or unload.
pub fn each(mut f: impl FnMut(&ModEntry)) {
    LOCK.with(|()| {
        // SAFETY: under the lock, every record linked is live.
        unsafe {
            let mut e = (*dynld_modules.0.get()).first;
            while let Some(r) = e.as_ref() {
                f(r);
                e = r.next;
            }
        }
    });
}
