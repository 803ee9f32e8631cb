//! The registry of loaded modules: names and ids, dependencies, hold
//! counts, safe unload, and the dynamic symbol table (see [`Registry`]).

use core::cell::{Cell, UnsafeCell};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::bind::{Provider, Resolution, Resolver};
use crate::error::{Error, ModuleText, SymName};
use crate::limits::Limits;
use crate::load::Loader;
use crate::memory::Memory;
use crate::module::{Module, SymbolAt};
use crate::sig::Signof;
use crate::source::Source;
use crate::symbol::Symbol;
use crate::sync::Lock;
use crate::table::{Dynsym, ExportTable};

/// The longest module name a registry keeps, in bytes.
pub const MODULE_NAME_MAX: usize = 56;

/// A module's name in a registry.
pub type ModuleName = heapless::String<MODULE_NAME_MAX, u8>;

/// Where a registry module is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Relocated and in the symbol table; its constructors are running.
    Loading,
    /// Loaded and initialized.
    Live,
    /// Its destructors are running; it can no longer be held.
    Unloading,
}

/// A module named by its registry name or its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which<'n> {
    /// By name.
    Name(&'n str),
    /// By id (as [`Held::id`] and [`ModuleInfo::id`] give it).
    Id(u32),
}

impl<'n> From<&'n str> for Which<'n> {
    fn from(name: &'n str) -> Self {
        Which::Name(name)
    }
}

impl From<u32> for Which<'_> {
    fn from(id: u32) -> Self {
        Which::Id(id)
    }
}

impl Which<'_> {
    fn missing(self) -> Error {
        Error::NoModule {
            name: match self {
                Which::Name(n) => SymName::new(n),
                Which::Id(id) => {
                    let mut s = heapless::String::<16>::new();
                    let _ = write!(s, "id {id}");
                    SymName::new(&s)
                }
            },
        }
    }
}

/// What [`Registry::modules`] reports of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleInfo {
    /// Its id: never reused within a registry; also the [`Provider`] that
    /// bindings to its exports record.
    pub id: u32,
    /// Its name.
    pub name: ModuleName,
    /// Address of its text.
    pub base: usize,
    /// Bytes of image (text, data, bss).
    pub image_size: usize,
    /// Bytes of memory it holds, tables included.
    pub memory_size: usize,
    /// Bytes of text.
    pub text_size: usize,
    /// Bytes of data.
    pub data_size: usize,
    /// Bytes of bss.
    pub bss_size: usize,
    /// Holds outstanding.
    pub holds: u32,
    /// Modules bound to its exports.
    pub dependents: u32,
    /// Where it is in its life.
    pub state: State,
    /// Whether an unload was refused and a sweep will unload it once its
    /// counts reach zero.
    pub candidate: bool,
}

/// Where an address lies (see [`Registry::locate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location<'l> {
    /// The module's id as a provider ([`Provider::HOST`] for a host
    /// export).
    pub provider: Provider,
    /// The module's name (`""` for the host).
    pub module: &'l str,
    /// How far the address lies from the module's base (0 for the host).
    pub module_offset: usize,
    /// The symbol it falls in, if any.
    pub symbol: Option<SymbolAt<'l>>,
}

/// One entry of the symbol table (see [`Registry::symbols`]).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SymbolEntry<'l> {
    /// Who exports it.
    pub provider: Provider,
    /// The exporting module's name (`""` for the host).
    pub module: &'l str,
    /// The symbol.
    pub sym: Dynsym<'l>,
}

/// A symbol found by name (see [`Registry::lookup`]): its address is valid
/// only while its module stays loaded; [`Registry::func`] gives one that
/// keeps it loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Found {
    /// The address.
    pub addr: *const (),
    /// Its signature (0 = unchecked).
    pub sig: u32,
    /// Who exports it.
    pub provider: Provider,
}

mod store {
    //! What the two kinds of storage provide: the registry's logic reaches
    //! them only through [`Store`].

    use super::*;

    /// A module's cell: written only under the registry's lock, when no
    /// reference to its module exists (a vacant slot being filled, or an
    /// unloading module with no holds being taken out).
    pub struct Slot<'a> {
        pub(super) module: UnsafeCell<Option<Module<'a>>>,
        /// The module's name, written with the module (so that a hold
        /// reads it without the lock).
        pub(super) name: UnsafeCell<ModuleName>,
        pub(super) holds: AtomicU32,
    }

    // SAFETY: the cell's module is `Sync` and `Send`; it is written only
    // under the lock with no reference to it outstanding (the protocol
    // above), and read through shared references otherwise.
    unsafe impl Sync for Slot<'_> {}
    // SAFETY: as above.
    unsafe impl Send for Slot<'_> {}

    impl Slot<'_> {
        /// A vacant slot.
        pub const fn new() -> Self {
            Slot {
                module: UnsafeCell::new(None),
                name: UnsafeCell::new(ModuleName::new()),
                holds: AtomicU32::new(0),
            }
        }
    }

    /// A loaded module's export found by name.
    pub struct Hit {
        /// Its module's slot.
        pub slot: usize,
        /// Its index among the module's exports.
        pub export: usize,
        /// Its address.
        pub addr: *const (),
        /// Its signature.
        pub sig: u32,
    }

    /// A hold count from which holds are neither taken nor released: a
    /// module whose count reaches it (by 2^31 guards leaked with
    /// `mem::forget`) stays loaded for good rather than let the count
    /// wrap to zero under live guards.
    pub const STUCK: u32 = u32::MAX / 2;

    /// Takes a hold on `holds`, refused at [`STUCK`] - 1.
    pub fn take_hold(holds: &AtomicU32) -> Result<(), Error> {
        holds
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < STUCK - 1).then_some(n + 1)
            })
            .map(drop)
            .map_err(|n| Error::Limit {
                what: "holds",
                count: n as u64 + 1,
                max: STUCK as u64 - 1,
            })
    }

    /// What the registry keeps, under its lock, of a loaded module.
    pub struct Meta {
        pub(super) id: u32,
        pub(super) name: ModuleName,
        pub(super) state: State,
        pub(super) dependents: u32,
        pub(super) candidate: bool,
        pub(super) base: usize,
        pub(super) end: usize,
    }

    /// A registry's storage (see [`Fixed`] and [`Growable`]).
    pub trait Store<'a>: Send {
        /// The module cells, outside the lock at stable addresses.
        type Cells: Sync;
        /// The books, one entry a slot (`None`: vacant).
        fn metas(&self) -> &[Option<Meta>];
        /// The books, to change.
        fn metas_mut(&mut self) -> &mut [Option<Meta>];
        /// A vacant slot, made if the storage can grow.
        fn vacant(&mut self) -> Result<usize, Error>;
        /// Slot `i`'s cell.
        fn cell<'s>(&self, cells: &'s Self::Cells, i: usize) -> Option<&'s Slot<'a>>;
        /// Occupied slots sorted by base address.
        fn order(&self) -> &[u32];
        /// Puts `slot` at `at` in the order.
        fn order_insert(&mut self, at: usize, slot: u32) -> Result<(), Error>;
        /// Takes entry `at` out of the order.
        fn order_remove(&mut self, at: usize);

        /// The slot of the module called `name`.
        fn named(&self, name: &str) -> Option<usize> {
            self.metas()
                .iter()
                .position(|m| m.as_ref().is_some_and(|m| m.name == name))
        }
        /// Records slot `slot`'s name (now in its meta) for [`Self::named`].
        fn index_name(&mut self, _slot: usize) {}
        /// Forgets slot `slot`'s name.
        fn unindex_name(&mut self, _slot: usize) {}

        /// The loaded modules' export called `name`: skipping modules
        /// being unloaded unless `all`.
        fn symbol(&self, cells: &Self::Cells, name: &str, all: bool) -> Option<Hit> {
            self.metas().iter().enumerate().find_map(|(j, m)| {
                let m = m.as_ref()?;
                if m.state == State::Unloading && !all {
                    return None;
                }
                let module = module(self, cells, j)?;
                let i = module.position(name)?;
                let s = module.export(i)?;
                Some(Hit {
                    slot: j,
                    export: i,
                    addr: s.addr,
                    sig: s.sig,
                })
            })
        }
        /// Records slot `slot`'s exports for [`Self::symbol`].
        fn index_symbols(&mut self, _cells: &Self::Cells, _slot: usize) {}
        /// Forgets slot `slot`'s exports.
        fn unindex_symbols(&mut self, _cells: &Self::Cells, _slot: usize) {}
    }

    /// Slot `j`'s module, under the lock.
    pub fn module<'a, 's, S: Store<'a> + ?Sized>(
        store: &S,
        cells: &'s S::Cells,
        j: usize,
    ) -> Option<&'s Module<'a>> {
        let cell = store.cell(cells, j)?;
        // SAFETY: the caller holds the lock, under which alone a cell is
        // written, and drops the reference before releasing it (or holds
        // the module, which keeps it from being written).
        unsafe { (*cell.module.get()).as_ref() }
    }
}

#[cfg(feature = "alloc")]
use store::Hit;
use store::{module, take_hold, Meta, Slot, Store, STUCK};

/// A registry's storage: [`Fixed`] or [`Growable`].
pub trait Storage<'a>: Store<'a> {}

/// Storage for up to `N` modules, with no allocator.
pub struct Fixed<'a, const N: usize> {
    metas: [Option<Meta>; N],
    order: heapless::Vec<u32, N>,
    _cells: core::marker::PhantomData<&'a ()>,
}

impl<'a, const N: usize> Store<'a> for Fixed<'a, N> {
    type Cells = [Slot<'a>; N];
    fn metas(&self) -> &[Option<Meta>] {
        &self.metas
    }
    fn metas_mut(&mut self) -> &mut [Option<Meta>] {
        &mut self.metas
    }
    fn vacant(&mut self) -> Result<usize, Error> {
        self.metas
            .iter()
            .position(Option::is_none)
            .ok_or(Error::Limit {
                what: "loaded modules",
                count: N as u64 + 1,
                max: N as u64,
            })
    }
    fn cell<'s>(&self, cells: &'s Self::Cells, i: usize) -> Option<&'s Slot<'a>> {
        cells.get(i)
    }
    fn order(&self) -> &[u32] {
        &self.order
    }
    fn order_insert(&mut self, at: usize, slot: u32) -> Result<(), Error> {
        self.order.insert(at, slot).map_err(|_| Error::Limit {
            what: "loaded modules",
            count: N as u64 + 1,
            max: N as u64,
        })
    }
    fn order_remove(&mut self, at: usize) {
        if at < self.order.len() {
            self.order.remove(at);
        }
    }
}

impl<'a, const N: usize> Storage<'a> for Fixed<'a, N> {}

#[cfg(feature = "alloc")]
pub use growable::Growable;

#[cfg(feature = "alloc")]
mod growable {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::ptr::NonNull;
    use hashbrown::HashTable;

    /// An export in the symbol table: its name's hash, slot, index,
    /// address and signature (so that a hit reads nothing more).
    struct SymRef {
        hash: u64,
        slot: u32,
        export: u32,
        addr: *const (),
        sig: u32,
    }

    /// Storage for any number of modules (feature `alloc`): module and
    /// symbol names in `hashbrown` tables, one probe a lookup.
    pub struct Growable<'a> {
        metas: Vec<Option<Meta>>,
        /// Boxed slots, never freed before the registry is: their
        /// addresses stay put while the vector grows.
        cells: Vec<NonNull<Slot<'a>>>,
        order: Vec<u32>,
        names: HashTable<u32>,
        syms: HashTable<SymRef>,
    }

    // SAFETY: the slots behind the pointers are `Send` and `Sync`, owned
    // by this storage, and reached only as the registry's protocol allows.
    unsafe impl Send for Growable<'_> {}

    impl Growable<'_> {
        /// Empty storage.
        pub(super) const fn new() -> Self {
            Growable {
                metas: Vec::new(),
                cells: Vec::new(),
                order: Vec::new(),
                names: HashTable::new(),
                syms: HashTable::new(),
            }
        }

        fn name_of(&self, slot: u32) -> &str {
            match self.metas.get(slot as usize) {
                Some(Some(m)) => &m.name,
                _ => "",
            }
        }

        /// Whether export `export` of slot `slot` is called `name`.
        fn is(&self, slot: u32, export: u32, name: &[u8]) -> bool {
            module(self, &(), slot as usize).is_some_and(|m| m.export_key(export as usize) == name)
        }
    }

    impl Drop for Growable<'_> {
        fn drop(&mut self) {
            for c in self.cells.drain(..) {
                // SAFETY: each pointer came from `Box::into_raw` in
                // `vacant` and is freed once, here, when nothing can reach
                // the slots any more.
                drop(unsafe { Box::from_raw(c.as_ptr()) });
            }
        }
    }

    fn hash(name: &str) -> u64 {
        crate::index::hash(name.as_bytes())
    }

    impl<'a> Store<'a> for Growable<'a> {
        type Cells = ();
        fn metas(&self) -> &[Option<Meta>] {
            &self.metas
        }
        fn metas_mut(&mut self) -> &mut [Option<Meta>] {
            &mut self.metas
        }
        fn vacant(&mut self) -> Result<usize, Error> {
            if let Some(i) = self.metas.iter().position(Option::is_none) {
                return Ok(i);
            }
            if self.metas.len() >= u32::MAX as usize {
                return Err(Error::Limit {
                    what: "loaded modules",
                    count: self.metas.len() as u64,
                    max: u32::MAX as u64 - 1,
                });
            }
            let slot = NonNull::from(Box::leak(Box::new(Slot::new())));
            self.cells.push(slot);
            self.metas.push(None);
            Ok(self.metas.len() - 1)
        }
        fn cell<'s>(&self, _: &'s (), i: usize) -> Option<&'s Slot<'a>> {
            let p = self.cells.get(i)?;
            // SAFETY: the slot is boxed and freed only when this storage
            // is dropped, with the registry; callers reach a slot only
            // through the registry (`'s` is its borrow where it is not
            // the unit `&()` of internal calls, which use the reference
            // under the lock and drop it there).
            Some(unsafe { &*p.as_ptr() })
        }
        fn order(&self) -> &[u32] {
            &self.order
        }
        fn order_insert(&mut self, at: usize, slot: u32) -> Result<(), Error> {
            self.order.insert(at.min(self.order.len()), slot);
            Ok(())
        }
        fn order_remove(&mut self, at: usize) {
            if at < self.order.len() {
                self.order.remove(at);
            }
        }

        fn named(&self, name: &str) -> Option<usize> {
            self.names
                .find(hash(name), |&s| self.name_of(s) == name)
                .map(|&s| s as usize)
        }
        fn index_name(&mut self, slot: usize) {
            let h = hash(self.name_of(slot as u32));
            let metas = &self.metas;
            self.names
                .insert_unique(h, slot as u32, |&s| match metas.get(s as usize) {
                    Some(Some(m)) => hash(&m.name),
                    _ => 0,
                });
        }
        fn unindex_name(&mut self, slot: usize) {
            let h = hash(self.name_of(slot as u32));
            if let Ok(e) = self.names.find_entry(h, |&s| s as usize == slot) {
                e.remove();
            }
        }

        fn symbol(&self, _: &(), name: &str, all: bool) -> Option<Hit> {
            let h = hash(name);
            // The state is part of the match: a name is in the table once
            // per module that exports it, and only one of those can be
            // other than unloading (a clash refuses the rest).
            let live = |slot: u32| match self.metas.get(slot as usize) {
                Some(Some(m)) => all || m.state != State::Unloading,
                _ => false,
            };
            let e = self.syms.find(h, |e| {
                e.hash == h && live(e.slot) && self.is(e.slot, e.export, name.as_bytes())
            })?;
            Some(Hit {
                slot: e.slot as usize,
                export: e.export as usize,
                addr: e.addr,
                sig: e.sig,
            })
        }
        fn index_symbols(&mut self, _: &(), slot: usize) {
            let Some(m) = module(self, &(), slot) else {
                return;
            };
            for (i, s) in m.exports().enumerate() {
                let h = hash(s.name);
                self.syms.insert_unique(
                    h,
                    SymRef {
                        hash: h,
                        slot: slot as u32,
                        export: i as u32,
                        addr: s.addr,
                        sig: s.sig,
                    },
                    |e| e.hash,
                );
            }
        }
        fn unindex_symbols(&mut self, _: &(), slot: usize) {
            let Some(m) = module(self, &(), slot) else {
                return;
            };
            for (i, s) in m.exports().enumerate() {
                let h = hash(s.name);
                if let Ok(e) = self
                    .syms
                    .find_entry(h, |e| e.slot as usize == slot && e.export as usize == i)
                {
                    e.remove();
                }
            }
        }
    }

    impl<'a> Storage<'a> for Growable<'a> {}
}

/// Names gathered for a message: all of them with `alloc`, as many as fit
/// without.
struct Names {
    #[cfg(feature = "alloc")]
    text: alloc::string::String,
    #[cfg(not(feature = "alloc"))]
    text: heapless::String<{ SymName::CAPACITY }>,
    count: u32,
}

impl Names {
    const fn new() -> Self {
        Names {
            #[cfg(feature = "alloc")]
            text: alloc::string::String::new(),
            #[cfg(not(feature = "alloc"))]
            text: heapless::String::new(),
            count: 0,
        }
    }

    fn push(&mut self, name: &str) {
        self.count = self.count.saturating_add(1);
        let sep = if self.count > 1 { ", " } else { "" };
        // Without an allocator a name that does not fit is left off, and
        // the list ends with "..." (once).
        if self.text.write_str(sep).is_err() || self.text.write_str(name).is_err() {
            #[cfg(not(feature = "alloc"))]
            if !self.text.ends_with("...") {
                while self.text.len() + 3 > SymName::CAPACITY {
                    self.text.pop();
                }
                let _ = self.text.push_str("...");
            }
        }
    }

    fn name(&self) -> SymName {
        SymName::new(&self.text)
    }

    /// The list as an error's module text.
    fn text(&self) -> ModuleText {
        text(&self.text)
    }
}

/// `s` as an error's module text: whole with `alloc`; without, cut to fit
/// with `...` at the end.
fn text(s: &str) -> ModuleText {
    #[cfg(feature = "alloc")]
    {
        ModuleText::from(s)
    }
    #[cfg(not(feature = "alloc"))]
    {
        let mut t = ModuleText::new();
        if t.push_str(s).is_err() {
            let mut end = (t.capacity() - 3).min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            let _ = t.push_str(s.get(..end).unwrap_or(""));
            let _ = t.push_str("...");
        }
        t
    }
}

/// The symbols a module being loaded may bind to: the host's exports,
/// then the loaded modules'. A name neither has is recorded, and bound to
/// nothing so that the load goes on to name every missing import; a load
/// with any missing fails.
struct Scope<'s, 'a, S: Store<'a>> {
    host: &'s ExportTable<'a>,
    store: &'s S,
    cells: &'s S::Cells,
    missing: core::cell::RefCell<Names>,
    count: Cell<u32>,
}

impl<'a, S: Store<'a>> Resolver for Scope<'_, 'a, S> {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        if let Some(r) = self.host.resolve(name) {
            return Some(r);
        }
        if let Some(hit) = self.store.symbol(self.cells, name, false) {
            let id = self.store.metas().get(hit.slot)?.as_ref()?.id;
            let m = module(self.store, self.cells, hit.slot)?;
            return Some(Resolution {
                addr: hit.addr,
                sig: hit.sig,
                provider: Provider(id),
                desc: m.export_desc(hit.export),
            });
        }
        self.count.set(self.count.get().saturating_add(1));
        self.missing.borrow_mut().push(name);
        Some(Resolution {
            addr: core::ptr::null(),
            sig: 0,
            provider: Provider::HOST,
            desc: None,
        })
    }
}

struct Book<S> {
    store: S,
    /// The next module id (ids start at 1: 0 is the host's provider).
    next: u32,
}

/// Loaded modules by name and id, their dependencies and holds, and the
/// symbol table over them and the host.
///
/// A registry loads modules under names and binds each one's imports
/// against the host's exports and the exports of the modules it already
/// holds; every binding records its provider, so each module knows its
/// *dependents* (the modules bound to its exports). A caller *holds* a
/// module while it uses it ([`Held`]); a module that is held or depended
/// on cannot be unloaded: the request is refused and the module becomes a
/// candidate for a later [`Registry::sweep`].
///
/// The registry's symbol table is the host's exports plus every loaded
/// module's: lookup by name ([`Registry::lookup`], [`Registry::func`]),
/// address to module, symbol and offset ([`Registry::locate`]), and
/// iteration ([`Registry::symbols`]). A module's symbols join it once the
/// module is relocated, before its constructors run. From the start of its
/// unload they are no longer found by name (nor can the module be held or
/// bound to), though they still refuse a module exporting one of them;
/// they leave the table after its destructors ran, before its memory goes
/// back.
///
/// Two kinds of storage: [`Fixed`] (`N` modules, no allocator, names
/// looked up by a scan of the loaded modules) and [`Growable`] (feature
/// `alloc`: any number, module and symbol names in `hashbrown` tables).
/// Both can live in a `static` and be shared between threads: the books
/// are behind one lock (the OS mutex with `std`, a spin lock without), and
/// hold counts are atomic.
///
/// ```no_run
/// # #[cfg(all(feature = "std", unix))] {
/// use dynld::{ExportTable, FileSource, Growable, Registry, MMAP};
///
/// static REG: Registry<'static, Growable<'static>> =
///     Registry::growable(ExportTable::EMPTY, &MMAP);
///
/// let lib = REG.load("lib", &mut FileSource::open("lib.dl").unwrap()).unwrap();
/// let app = REG.load("app", &mut FileSource::open("app.dl").unwrap()).unwrap();
/// drop(lib); // release the holds the loads gave
/// assert!(REG.unload("lib").is_err()); // app is bound to it
/// let main = REG.func::<extern "C" fn() -> i32>("main").unwrap();
/// main.symbol().call();
/// drop((main, app));
/// REG.unload("app").unwrap(); // its destructors run
/// assert_eq!(REG.sweep(), 1); // lib, refused before, goes now
/// # }
/// ```
pub struct Registry<'a, S: Storage<'a>> {
    host: ExportTable<'a>,
    memory: &'a dyn Memory,
    limits: Limits,
    cells: S::Cells,
    book: Lock<Book<S>>,
}

impl<'a, const N: usize> Registry<'a, Fixed<'a, N>> {
    /// A registry for up to `N` modules, binding them against `host` and
    /// loading them into `memory`.
    pub const fn fixed(host: ExportTable<'a>, memory: &'a dyn Memory) -> Self {
        Registry {
            host,
            memory,
            limits: Limits::DEFAULT,
            cells: [const { Slot::new() }; N],
            book: Lock::new(Book {
                store: Fixed {
                    metas: [const { None }; N],
                    order: heapless::Vec::new(),
                    _cells: core::marker::PhantomData,
                },
                next: 1,
            }),
        }
    }
}

#[cfg(feature = "alloc")]
impl<'a> Registry<'a, Growable<'a>> {
    /// A registry for any number of modules, binding them against `host`
    /// and loading them into `memory`.
    pub const fn growable(host: ExportTable<'a>, memory: &'a dyn Memory) -> Self {
        Registry {
            host,
            memory,
            limits: Limits::DEFAULT,
            cells: (),
            book: Lock::new(Book {
                store: Growable::new(),
                next: 1,
            }),
        }
    }
}

/// Checks a module name for a registry.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MODULE_NAME_MAX {
        return Err(Error::Limit {
            what: "module name length",
            count: name.len() as u64,
            max: MODULE_NAME_MAX as u64,
        });
    }
    Ok(())
}

/// What a load found under the registry's lock.
enum Loaded<'r, 'a> {
    /// The name was loaded already; now held once more.
    Again(&'r Slot<'a>, u32),
    /// Newly loaded into this slot, held once, its constructors yet to run.
    Fresh(&'r Slot<'a>, u32, usize),
}

impl<'a, S: Storage<'a>> Registry<'a, S> {
    /// Uses `limits` for every load.
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The host's exports.
    pub fn host(&self) -> &ExportTable<'a> {
        &self.host
    }

    /// Loads the module in `src` under `name`, binds its imports against
    /// the host and the loaded modules, runs its constructors, and returns
    /// it held once.
    ///
    /// If a module called `name` is loaded already, `src` is not read:
    /// that module is returned with one more hold (as `dlopen` does). A
    /// module is refused, and nothing changes, if any of its imports has
    /// no provider ([`Error::Unresolved`], naming them all), if it
    /// exports a name the host or a loaded module exports
    /// ([`Error::Clash`], naming both), or for any reason a load fails.
    ///
    /// Its symbols enter the table once it is relocated, before its
    /// constructors run, which happens outside the registry's lock (a
    /// constructor may use the registry); meanwhile its state is
    /// [`State::Loading`] and it cannot be unloaded, and loading its name
    /// again is refused ([`Error::Busy`]) rather than waited for.
    ///
    /// The load itself (reading `src`, the memory provider's calls) runs
    /// under the lock: neither may use the registry, and every other use
    /// of the registry waits for it.
    pub fn load<Src: Source + ?Sized>(
        &self,
        name: &str,
        src: &mut Src,
    ) -> Result<Held<'_, 'a, S>, Error> {
        check_name(name)?;
        let got = self.book.with(|b| self.load_locked(b, name, src))?;
        match got {
            Loaded::Again(cell, id) => Ok(self.held(cell, id)),
            Loaded::Fresh(cell, id, slot) => {
                let h = self.held(cell, id);
                h.module.start();
                self.book.with(|b| {
                    if let Some(Some(m)) = b.store.metas_mut().get_mut(slot) {
                        m.state = State::Live;
                    }
                });
                Ok(h)
            }
        }
    }

    fn load_locked<Src: Source + ?Sized>(
        &self,
        b: &mut Book<S>,
        name: &str,
        src: &mut Src,
    ) -> Result<Loaded<'_, 'a>, Error> {
        if let Some(slot) = b.store.named(name) {
            let meta = b.store.metas().get(slot).and_then(Option::as_ref);
            let cell = b.store.cell(&self.cells, slot);
            let (Some(meta), Some(cell)) = (meta, cell) else {
                return Err(Which::Name(name).missing());
            };
            if meta.state != State::Live {
                return Err(busy(meta));
            }
            take_hold(&cell.holds)?;
            let id = meta.id;
            // Asked for again: no longer a candidate for the sweep.
            if let Some(Some(meta)) = b.store.metas_mut().get_mut(slot) {
                meta.candidate = false;
            }
            return Ok(Loaded::Again(cell, id));
        }
        let slot = b.store.vacant()?;
        let cell = b
            .store
            .cell(&self.cells, slot)
            .ok_or_else(|| crate::check::bad("registry slot"))?;
        let id = b.next;
        if id == u32::MAX {
            return Err(Error::Limit {
                what: "module ids",
                count: id as u64,
                max: u32::MAX as u64 - 1,
            });
        }
        let m = {
            let scope = Scope {
                host: &self.host,
                store: &b.store,
                cells: &self.cells,
                missing: core::cell::RefCell::new(Names::new()),
                count: Cell::new(0),
            };
            let got = Loader::with_resolver(&scope, self.memory)
                .limits(self.limits)
                .name(name)
                .load(src);
            // A missing import is the error, whatever else binding to
            // nothing led to.
            if scope.count.get() != 0 {
                return Err(Error::Unresolved {
                    count: scope.count.get(),
                    names: scope.missing.borrow().name(),
                });
            }
            got?
        };
        self.check_clashes(&b.store, name, &m)?;
        let base = m.base() as usize;
        let at = b.store.order().partition_point(|&s| {
            b.store
                .metas()
                .get(s as usize)
                .and_then(Option::as_ref)
                .is_some_and(|o| o.base < base)
        });
        b.store.order_insert(at, slot as u32)?;
        // Nothing fails from here on.
        // Its providers gain a dependent each.
        for j in 0..b.store.metas().len() {
            let Some(pid) = b
                .store
                .metas()
                .get(j)
                .and_then(Option::as_ref)
                .map(|p| p.id)
            else {
                continue;
            };
            if m.imports().any(|i| i.provider == Provider(pid)) {
                if let Some(Some(p)) = b.store.metas_mut().get_mut(j) {
                    p.dependents = p.dependents.saturating_add(1);
                }
            }
        }
        let mut mname = ModuleName::new();
        let _ = mname.push_str(name);
        if let Some(meta) = b.store.metas_mut().get_mut(slot) {
            *meta = Some(Meta {
                id,
                name: mname.clone(),
                state: State::Loading,
                dependents: 0,
                candidate: false,
                base,
                end: base.saturating_add(m.image_size()),
            });
        }
        b.next = id + 1;
        cell.holds.store(1, Ordering::Release);
        // SAFETY: the slot was vacant: no reference to its module or name
        // exists, and the lock is held.
        unsafe {
            *cell.module.get() = Some(m);
            *cell.name.get() = mname;
        }
        b.store.index_name(slot);
        b.store.index_symbols(&self.cells, slot);
        Ok(Loaded::Fresh(cell, id, slot))
    }

    /// Refuses `m` if it exports a name the host or a loaded module does.
    #[cfg_attr(not(feature = "alloc"), allow(unused_variables))]
    fn check_clashes(&self, store: &S, name: &str, m: &Module<'a>) -> Result<(), Error> {
        for s in m.exports() {
            let other = if self.host.find(s.name).is_some() {
                Some(("host", Provider::HOST))
            } else {
                // Unloading modules too: their symbols are in the table
                // until their destructors have run.
                store
                    .symbol(&self.cells, s.name, true)
                    .and_then(|hit| store.metas().get(hit.slot)?.as_ref())
                    .map(|o| (o.name.as_str(), Provider(o.id)))
            };
            if let Some((_other_name, other)) = other {
                return Err(Error::Clash {
                    name: SymName::new(s.name),
                    other,
                    #[cfg(feature = "alloc")]
                    names: alloc::boxed::Box::new((text(name), text(_other_name))),
                });
            }
        }
        Ok(())
    }

    /// A guard for a hold already counted on `cell`'s module.
    fn held<'r>(&'r self, cell: &'r Slot<'a>, id: u32) -> Held<'r, 'a, S> {
        // SAFETY: the module is in the cell and held (counted by the
        // caller), so nothing writes the cell while the guard lives.
        let (module, name) = unsafe { ((*cell.module.get()).as_ref(), &*cell.name.get()) };
        match module {
            Some(module) => Held {
                module,
                name,
                holds: &cell.holds,
                id,
                _reg: core::marker::PhantomData,
            },
            // Unreachable by the protocol; a guard must have a module.
            None => unreachable_hold(),
        }
    }

    /// Holds the module `which` names: it cannot be unloaded until the
    /// guard (and every clone of it) is dropped.
    pub fn hold<'n>(&self, which: impl Into<Which<'n>>) -> Result<Held<'_, 'a, S>, Error> {
        let which = which.into();
        let (cell, id) = self.book.with(|b| {
            let slot = find(&b.store, which).ok_or_else(|| which.missing())?;
            let meta = b.store.metas().get(slot).and_then(Option::as_ref);
            let cell = b.store.cell(&self.cells, slot);
            let (Some(meta), Some(cell)) = (meta, cell) else {
                return Err(which.missing());
            };
            if meta.state == State::Unloading {
                return Err(busy(meta));
            }
            take_hold(&cell.holds)?;
            Ok((cell, meta.id))
        })?;
        Ok(self.held(cell, id))
    }

    /// Unloads the module `which` names: refused while it is held or
    /// other modules are bound to it ([`Error::InUse`], with both counts
    /// and the dependents' names), which makes it a candidate for
    /// [`Self::sweep`]. Otherwise its destructors and exit handlers run
    /// (outside the lock), then its symbols leave the table and its
    /// providers lose a dependent, then its memory goes back.
    pub fn unload<'n>(&self, which: impl Into<Which<'n>>) -> Result<(), Error> {
        let which = which.into();
        let slot = self.book.with(|b| {
            let slot = find(&b.store, which).ok_or_else(|| which.missing())?;
            self.begin_unload(b, slot, true)
        })?;
        self.teardown(slot);
        Ok(())
    }

    /// Marks slot `slot` unloading if it can go; if not, and `refusal`,
    /// the error (and the module becomes a candidate).
    fn begin_unload(&self, b: &mut Book<S>, slot: usize, refusal: bool) -> Result<usize, Error> {
        let holds = b
            .store
            .cell(&self.cells, slot)
            .map_or(0, |c| c.holds.load(Ordering::Acquire));
        let store = &b.store;
        let Some(meta) = store.metas().get(slot).and_then(Option::as_ref) else {
            return Err(crate::check::bad("registry slot"));
        };
        if meta.state != State::Live {
            return Err(busy(meta));
        }
        if holds != 0 || meta.dependents != 0 {
            let mut by = Names::new();
            if refusal && meta.dependents != 0 {
                for (j, o) in store.metas().iter().enumerate() {
                    let Some(o) = o else { continue };
                    let Some(dm) = module(store, &self.cells, j) else {
                        continue;
                    };
                    if dm.imports().any(|i| i.provider == Provider(meta.id)) {
                        by.push(&o.name);
                    }
                }
            }
            let err = Error::InUse {
                name: text(&meta.name),
                holds,
                dependents: meta.dependents,
                by: by.text(),
            };
            if let Some(Some(meta)) = b.store.metas_mut().get_mut(slot) {
                meta.candidate |= refusal;
            }
            return Err(err);
        }
        if let Some(Some(meta)) = b.store.metas_mut().get_mut(slot) {
            meta.state = State::Unloading;
        }
        Ok(slot)
    }

    /// Unloads slot `slot`, marked unloading with no holds.
    fn teardown(&self, slot: usize) {
        let m = self
            .book
            .with(|b| module(&b.store, &self.cells, slot).map(|m| m as *const _));
        if let Some(m) = m {
            // SAFETY: the module is unloading: nothing can hold it or
            // take it out of its cell but this call, which does so only
            // after this reference is gone.
            let m: &Module<'a> = unsafe { &*m };
            m.finish();
        }
        let taken = self.book.with(|b| {
            b.store.unindex_symbols(&self.cells, slot);
            b.store.unindex_name(slot);
            if let Some(at) = b.store.order().iter().position(|&s| s as usize == slot) {
                b.store.order_remove(at);
            }
            // Its providers lose a dependent.
            if let Some(m) = module(&b.store, &self.cells, slot) {
                for j in 0..b.store.metas().len() {
                    let pid = match b.store.metas().get(j) {
                        Some(Some(p)) if j != slot => p.id,
                        _ => continue,
                    };
                    if m.imports().any(|i| i.provider == Provider(pid)) {
                        let metas = b.store.metas_mut();
                        if let Some(Some(p)) = metas.get_mut(j) {
                            p.dependents = p.dependents.saturating_sub(1);
                        }
                    }
                }
            }
            if let Some(meta) = b.store.metas_mut().get_mut(slot) {
                *meta = None;
            }
            let cell = b.store.cell(&self.cells, slot)?;
            // SAFETY: under the lock; the module is unloading with no
            // holds, out of every table, and no reference to it remains.
            unsafe { (*cell.module.get()).take() }
        });
        // Its memory goes back (its destructors ran above).
        drop(taken);
    }

    /// Unloads every candidate (see [`Self::unload`]) whose hold and
    /// dependent counts are zero, and the candidates that frees, until
    /// none is left that can go; returns how many it unloaded. A module
    /// that was never refused is not a candidate and stays.
    pub fn sweep(&self) -> usize {
        let mut n = 0;
        loop {
            let next = self.book.with(|b| {
                let j = (0..b.store.metas().len()).find(|&j| {
                    let holds = b
                        .store
                        .cell(&self.cells, j)
                        .map_or(0, |c| c.holds.load(Ordering::Acquire));
                    matches!(b.store.metas().get(j), Some(Some(m))
                        if m.candidate && m.state == State::Live && m.dependents == 0 && holds == 0)
                })?;
                self.begin_unload(b, j, false).ok()
            });
            let Some(slot) = next else { return n };
            self.teardown(slot);
            n += 1;
        }
    }

    /// Calls `f` with what the registry knows of each module, in load
    /// order: one consistent picture.
    ///
    /// `f` runs under the registry's lock: it must not use the registry
    /// (nor [`Held::name`]); [`Self::list`] gives a copy to work from.
    pub fn modules(&self, mut f: impl FnMut(&ModuleInfo)) {
        self.book.with(|b| {
            let mut last = 0;
            // By id, smallest first, without an allocator.
            while let Some(j) = (0..b.store.metas().len())
                .filter(|&j| matches!(b.store.metas().get(j), Some(Some(m)) if m.id > last))
                .min_by_key(|&j| {
                    b.store
                        .metas()
                        .get(j)
                        .and_then(Option::as_ref)
                        .map(|m| m.id)
                })
            {
                if let Some(info) = self.info_locked(&b.store, j) {
                    last = info.id;
                    f(&info);
                } else {
                    break;
                }
            }
        });
    }

    /// What the registry knows of each module, in load order.
    #[cfg(feature = "alloc")]
    pub fn list(&self) -> alloc::vec::Vec<ModuleInfo> {
        let mut v = alloc::vec::Vec::new();
        self.modules(|i| v.push(i.clone()));
        v
    }

    /// What the registry knows of the module `which` names.
    pub fn info<'n>(&self, which: impl Into<Which<'n>>) -> Result<ModuleInfo, Error> {
        let which = which.into();
        self.book.with(|b| {
            find(&b.store, which)
                .and_then(|j| self.info_locked(&b.store, j))
                .ok_or_else(|| which.missing())
        })
    }

    fn info_locked(&self, store: &S, j: usize) -> Option<ModuleInfo> {
        let meta = store.metas().get(j)?.as_ref()?;
        let m = module(store, &self.cells, j)?;
        let holds = store.cell(&self.cells, j)?.holds.load(Ordering::Acquire);
        Some(ModuleInfo {
            id: meta.id,
            name: meta.name.clone(),
            base: meta.base,
            image_size: m.image_size(),
            memory_size: m.memory_size(),
            text_size: m.text_size(),
            data_size: m.data_size(),
            bss_size: m.bss_size(),
            holds,
            dependents: meta.dependents,
            state: meta.state,
            candidate: meta.candidate,
        })
    }

    /// The symbol called `name` in the table: the host's export, or a
    /// loaded module's. The address is valid only while its module stays
    /// loaded; use [`Self::func`] to call it.
    pub fn lookup(&self, name: &str) -> Option<Found> {
        if let Some(s) = self.host.find(name) {
            return Some(Found {
                addr: s.addr,
                sig: s.sig,
                provider: Provider::HOST,
            });
        }
        self.book.with(|b| {
            let hit = b.store.symbol(&self.cells, name, false)?;
            let id = b.store.metas().get(hit.slot)?.as_ref()?.id;
            Some(Found {
                addr: hit.addr,
                sig: hit.sig,
                provider: Provider(id),
            })
        })
    }

    /// The loaded modules' export called `name` as an `F` (see
    /// [`Module::get`]: the export's signature must be `F`'s), holding its
    /// module for as long as the result lives. The host's exports are not
    /// looked at: the host has its own functions, and its table's
    /// addresses are its promise, not something a registry can check.
    pub fn func<F: Signof + Copy>(&self, name: &str) -> Result<Func<'_, 'a, S, F>, Error> {
        const {
            assert!(core::mem::size_of::<F>() == core::mem::size_of::<*const ()>());
        }
        let (cell, id) = self.book.with(|b| {
            let j = b
                .store
                .symbol(&self.cells, name, false)
                .ok_or_else(|| Error::Undefined {
                    name: SymName::new(name),
                })?
                .slot;
            let id = b
                .store
                .metas()
                .get(j)
                .and_then(Option::as_ref)
                .map(|m| m.id);
            let cell = b.store.cell(&self.cells, j);
            let (Some(id), Some(cell)) = (id, cell) else {
                return Err(crate::check::bad("registry slot"));
            };
            take_hold(&cell.holds)?;
            Ok((cell, id))
        })?;
        let held = self.held(cell, id);
        let sym = held.module.get::<F>(name)?;
        Ok(Func {
            sym,
            held: Some(held),
        })
    }

    /// Calls `f` with where `addr` lies: in a loaded module (the symbol it
    /// falls in and how far in, found by binary searches: the modules by
    /// address, then the module's symbols), or at a host export's exact
    /// address (the host table has no sizes). `None` if neither.
    ///
    /// `f` runs under the registry's lock: it must not use the registry.
    /// Without `std` the lock is a spin lock: a fault handler that calls
    /// this must not have interrupted code holding it (a load, say), or it
    /// waits forever; [`Self::try_locate`] gives up instead.
    pub fn locate<R>(&self, addr: *const (), f: impl FnOnce(&Location<'_>) -> R) -> Option<R> {
        self.locate_by(addr, f, |book, g| Some(book.with(g)))
    }

    /// [`Self::locate`] if the registry's lock is free now: `None` without
    /// waiting if it is held (by a load, an unload's book-keeping, or the
    /// code a fault handler interrupted). For fault handlers, which must
    /// not wait for a lock their own core may hold.
    pub fn try_locate<R>(&self, addr: *const (), f: impl FnOnce(&Location<'_>) -> R) -> Option<R> {
        self.locate_by(addr, f, |book, g| book.try_with(g))
    }

    /// [`Self::locate`] with the lock taken by `lock`.
    fn locate_by<R>(
        &self,
        addr: *const (),
        f: impl FnOnce(&Location<'_>) -> R,
        lock: impl FnOnce(
            &Lock<Book<S>>,
            &mut dyn FnMut(&mut Book<S>) -> Option<R>,
        ) -> Option<Option<R>>,
    ) -> Option<R> {
        let a = addr as usize;
        let mut f = Some(f);
        let r = lock(&self.book, &mut |b: &mut Book<S>| {
            let order = b.store.order();
            let metas = b.store.metas();
            let base = |s: &u32| metas.get(*s as usize).and_then(Option::as_ref);
            let at = order.partition_point(|s| base(s).is_some_and(|m| m.base <= a));
            let j = *order.get(at.checked_sub(1)?)? as usize;
            let meta = metas.get(j)?.as_ref()?;
            if a >= meta.end {
                return None;
            }
            let m = module(&b.store, &self.cells, j)?;
            let f = f.take()?;
            Some(f(&Location {
                provider: Provider(meta.id),
                module: &meta.name,
                module_offset: a - meta.base,
                symbol: m.symbol_at(addr),
            }))
        });
        match r {
            // The lock was busy (`try_locate`).
            None => return None,
            Some(Some(r)) => return Some(r),
            Some(None) => {}
        }
        let s = self.host.as_slice().iter().find(|s| s.addr == addr)?;
        let f = f.take()?;
        Some(f(&Location {
            provider: Provider::HOST,
            module: "",
            module_offset: 0,
            symbol: Some(SymbolAt::exported(s.name, s.addr)),
        }))
    }

    /// Calls `f` for each symbol in the table: the host's exports, then
    /// each loaded module's in load order.
    ///
    /// `f` runs under the registry's lock: it must not use the registry.
    pub fn symbols(&self, mut f: impl FnMut(&SymbolEntry<'_>)) {
        for s in self.host.as_slice() {
            f(&SymbolEntry {
                provider: Provider::HOST,
                module: "",
                sym: *s,
            });
        }
        self.book.with(|b| {
            for &j in b.store.order() {
                let j = j as usize;
                let (Some(Some(meta)), Some(m)) =
                    (b.store.metas().get(j), module(&b.store, &self.cells, j))
                else {
                    continue;
                };
                for sym in m.exports() {
                    f(&SymbolEntry {
                        provider: Provider(meta.id),
                        module: &meta.name,
                        sym,
                    });
                }
            }
        });
    }
}

/// The slot `which` names.
fn find<'a, S: Store<'a>>(store: &S, which: Which<'_>) -> Option<usize> {
    match which {
        Which::Name(n) => store.named(n),
        Which::Id(id) => store
            .metas()
            .iter()
            .position(|m| m.as_ref().is_some_and(|m| m.id == id)),
    }
}

fn busy(meta: &Meta) -> Error {
    Error::Busy {
        name: text(&meta.name),
        what: match meta.state {
            State::Loading => "loading",
            _ => "unloading",
        },
    }
}

#[cold]
fn unreachable_hold() -> ! {
    // A hold is counted only on a cell holding a module, and the module
    // leaves its cell only with no holds: this cannot be reached.
    unreachable!("registry hold without a module")
}

impl<'a, S: Storage<'a>> Drop for Registry<'a, S> {
    /// Unloads every module, dependents before their providers.
    fn drop(&mut self) {
        loop {
            let next = self.book.with(|b| {
                let metas = b.store.metas();
                let free = |j: &usize| matches!(metas.get(*j), Some(Some(m)) if m.dependents == 0);
                let any = |j: &usize| matches!(metas.get(*j), Some(Some(_)));
                // The last loaded of those nothing depends on; failing
                // that (impossible: bindings go to modules loaded
                // earlier), the last loaded.
                let id = |j: &usize| metas.get(*j).and_then(Option::as_ref).map_or(0, |m| m.id);
                let j = (0..metas.len())
                    .filter(free)
                    .max_by_key(id)
                    .or_else(|| (0..metas.len()).filter(any).max_by_key(id))?;
                if let Some(Some(m)) = b.store.metas_mut().get_mut(j) {
                    m.state = State::Unloading;
                }
                Some(j)
            });
            let Some(j) = next else { break };
            self.teardown(j);
        }
    }
}

/// A hold on a registry module (see [`Registry::hold`]): while it lives the
/// module cannot be unloaded. It derefs to the [`Module`], whose
/// [`Symbol`]s borrow the guard and so cannot outlive the hold. Cloning it
/// takes another hold; dropping it releases one.
pub struct Held<'r, 'a, S: Storage<'a>> {
    module: &'r Module<'a>,
    name: &'r str,
    holds: &'r AtomicU32,
    id: u32,
    _reg: core::marker::PhantomData<&'r Registry<'a, S>>,
}

impl<'a, S: Storage<'a>> Held<'_, 'a, S> {
    /// The module's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        self.name
    }
}

impl<'a, S: Storage<'a>> core::ops::Deref for Held<'_, 'a, S> {
    type Target = Module<'a>;
    fn deref(&self) -> &Module<'a> {
        self.module
    }
}

impl<'a, S: Storage<'a>> Clone for Held<'_, 'a, S> {
    fn clone(&self) -> Self {
        // A hold exists, so the module cannot be unloaded meanwhile. At
        // STUCK the count stays put (and the module loaded for good)
        // rather than wrap to zero under live guards.
        let _ = self
            .holds
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < STUCK).then_some(n + 1)
            });
        Held {
            module: self.module,
            name: self.name,
            holds: self.holds,
            id: self.id,
            _reg: core::marker::PhantomData,
        }
    }
}

impl<'a, S: Storage<'a>> Drop for Held<'_, 'a, S> {
    fn drop(&mut self) {
        // A stuck count stays (see `clone`); no count is zero under a
        // guard.
        let _ = self
            .holds
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < STUCK && n > 0).then(|| n - 1)
            });
    }
}

impl<'a, S: Storage<'a>> core::fmt::Debug for Held<'_, 'a, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Held")
            .field("id", &self.id)
            .field("module", self.module)
            .finish()
    }
}

/// A function or datum from the registry's table (see [`Registry::func`]),
/// holding its module (unless the host provides it) for as long as it
/// lives.
pub struct Func<'r, 'a, S: Storage<'a>, F> {
    sym: Symbol<'r, F>,
    held: Option<Held<'r, 'a, S>>,
}

impl<'a, S: Storage<'a>, F> Func<'_, 'a, S, F> {
    /// The symbol, borrowing this hold.
    pub fn symbol(&self) -> Symbol<'_, F> {
        self.sym
    }

    /// Who provides it: [`Provider::HOST`] or the module's id.
    pub fn provider(&self) -> Provider {
        self.held
            .as_ref()
            .map_or(Provider::HOST, |h| Provider(h.id))
    }
}

#[cfg(all(test, feature = "alloc", target_arch = "x86_64"))]
mod tests {
    //! The registry's books and its unsafe cells, over data-only modules
    //! (no code runs, so Miri checks these too).

    use super::*;
    use crate::arch::x86_64::IMPORT64;
    use crate::format::Arch;
    use crate::source::SliceSource;
    use crate::write::ModuleBuilder;
    use crate::HEAP;

    /// A provider exporting `val` (a word holding 42).
    fn provider() -> alloc::vec::Vec<u8> {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3; 8])
            .data(&42u64.to_le_bytes())
            .data_offset(8)
            .export("val", 0, 8);
        b.build().unwrap()
    }

    /// A dependent whose word `ptr` is bound to `val`'s address.
    fn dependent() -> alloc::vec::Vec<u8> {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        b.text(&[0xc3; 8]).data(&[0; 8]).data_offset(8);
        let v = b.import("val", 0);
        b.reloc(8, IMPORT64, Some(v)).export("ptr", 0, 8);
        b.build().unwrap()
    }

    /// Whether the dependent's `ptr` holds the address of `val`, which
    /// holds 42 (compared as addresses: a word the loader wrote has no
    /// provenance to read through).
    fn bound<'a, S: Storage<'a>>(reg: &Registry<'a, S>, h: &Held<'_, 'a, S>) -> bool {
        let p = h.find("ptr").unwrap().addr as *const u64;
        let Some(val) = reg.lookup("val") else {
            return false;
        };
        // SAFETY: `ptr` is the dependent's word and `val` the provider's,
        // both loaded (the hold, the binding).
        let (word, v) = unsafe {
            (
                p.read_unaligned(),
                (val.addr as *const u64).read_unaligned(),
            )
        };
        word == val.addr as u64 && v == 42
    }

    fn exercise<'a, S: Storage<'a>>(reg: &Registry<'a, S>) {
        let (p, d) = (provider(), dependent());
        assert!(matches!(
            reg.load("d", &mut SliceSource::new(&d)),
            Err(Error::Unresolved { count: 1, .. })
        ));
        let ph = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        let dh = reg.load("d", &mut SliceSource::new(&d)).unwrap();
        assert!(bound(reg, &dh));
        assert_eq!(reg.info("p").unwrap().dependents, 1);
        drop(ph);
        assert!(matches!(
            reg.unload("p"),
            Err(Error::InUse {
                holds: 0,
                dependents: 1,
                ..
            })
        ));
        let again = dh.clone();
        drop(dh);
        assert!(matches!(
            reg.unload("d"),
            Err(Error::InUse { holds: 1, .. })
        ));
        assert!(bound(reg, &again));
        drop(again);
        assert_eq!(reg.sweep(), 2);
        let mut n = 0;
        reg.modules(|_| n += 1);
        assert_eq!(n, 0);
        assert!(reg.lookup("val").is_none());
    }

    #[test]
    fn growable_books() {
        exercise(&Registry::growable(ExportTable::EMPTY, &HEAP));
    }

    #[test]
    fn fixed_books() {
        let reg = Registry::<Fixed<2>>::fixed(ExportTable::EMPTY, &HEAP);
        exercise(&reg);
        // Full: a third module is refused.
        let (p, d) = (provider(), dependent());
        let _a = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        let _b = reg.load("d", &mut SliceSource::new(&d)).unwrap();
        assert!(matches!(
            reg.load("e", &mut SliceSource::new(&p)),
            Err(Error::Limit { max: 2, .. })
        ));
    }

    #[test]
    fn a_hold_count_never_wraps() {
        let reg = Registry::growable(ExportTable::EMPTY, &HEAP);
        let p = provider();
        let h = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        // As if 2^31 - 2 guards had been leaked with mem::forget.
        h.holds.store(STUCK - 1, Ordering::SeqCst);
        assert!(matches!(
            reg.hold("p"),
            Err(Error::Limit { what: "holds", .. })
        ));
        let c = h.clone();
        assert_eq!(h.holds.load(Ordering::SeqCst), STUCK, "stuck");
        let more = c.clone();
        drop((c, more));
        assert_eq!(h.holds.load(Ordering::SeqCst), STUCK, "stays stuck");
        drop(h);
        assert!(matches!(reg.unload("p"), Err(Error::InUse { .. })));
        assert_eq!(reg.sweep(), 0, "loaded for good");
        // The registry's drop would unload it regardless of holds (none
        // can exist then); put the count back for a clean drop.
        reg.book.with(|b| {
            let c = b.store.cell(&reg.cells, 0).unwrap();
            c.holds.store(0, Ordering::SeqCst);
        });
    }

    #[test]
    fn clashes_count_unloading_modules() {
        let reg = Registry::growable(ExportTable::EMPTY, &HEAP);
        let p = provider();
        drop(reg.load("p", &mut SliceSource::new(&p)).unwrap());
        // As while p's destructors run (outside the lock).
        reg.book.with(|b| {
            if let Some(Some(m)) = b.store.metas_mut().get_mut(0) {
                m.state = State::Unloading;
            }
        });
        assert!(reg.lookup("val").is_none(), "no longer found by name");
        let e = reg.load("q", &mut SliceSource::new(&p)).unwrap_err();
        assert!(matches!(e, Error::Clash { .. }), "{e}");
        reg.book.with(|b| {
            if let Some(Some(m)) = b.store.metas_mut().get_mut(0) {
                m.state = State::Live;
            }
        });
        assert!(reg.lookup("val").is_some());
    }

    #[test]
    fn guards_name_their_module_without_the_lock() {
        let reg = Registry::<Fixed<2>>::fixed(ExportTable::EMPTY, &HEAP);
        let p = provider();
        let h = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        let mut seen = alloc::vec::Vec::new();
        // Under the lock: a guard's name takes no lock.
        reg.modules(|i| seen.push((i.name.clone(), h.name() == i.name.as_str())));
        assert_eq!(seen.len(), 1);
        assert!(seen[0].1);
        drop(h);
        // Refused, then asked for again: no longer a candidate.
        let (d, q) = (dependent(), reg.hold("p").unwrap());
        drop(reg.load("d", &mut SliceSource::new(&d)).unwrap());
        drop(q);
        assert!(reg.unload("p").is_err());
        assert!(reg.info("p").unwrap().candidate);
        drop(reg.load("p", &mut SliceSource::new(&[])).unwrap());
        assert!(!reg.info("p").unwrap().candidate);
        reg.unload("d").unwrap();
        assert_eq!(reg.sweep(), 0, "p was asked for again");
    }

    #[test]
    fn try_locate_does_not_wait() {
        let reg = Registry::growable(ExportTable::EMPTY, &HEAP);
        let p = provider();
        let h = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        let at = h.find("val").unwrap().addr;
        let name = |l: &Location<'_>| l.symbol.map(|s| s.offset);
        assert_eq!(reg.try_locate(at, name), Some(Some(0)));
        assert_eq!(reg.locate(at, name), Some(Some(0)));
        // With the lock held (as by the code a fault handler interrupted).
        reg.book
            .with(|_| assert_eq!(reg.try_locate(at, name), None));
    }

    #[test]
    fn threads_share_a_registry() {
        let reg = Registry::growable(ExportTable::EMPTY, &HEAP);
        let (p, d) = (provider(), dependent());
        let rounds = if cfg!(miri) { 4 } else { 200 };
        std::thread::scope(|s| {
            for t in 0..2 {
                let (reg, p, d) = (&reg, &p, &d);
                s.spawn(move || {
                    for i in 0..rounds {
                        if let Ok(h) = reg.load("d", &mut SliceSource::new(d)) {
                            assert!(bound(reg, &h));
                        }
                        drop(reg.load("p", &mut SliceSource::new(p)));
                        let _ = reg.unload(if (i + t) % 2 == 0 { "d" } else { "p" });
                        if let Some(f) = reg.lookup("ptr") {
                            assert_ne!(f.provider, Provider::HOST);
                        }
                    }
                });
            }
        });
    }
}
