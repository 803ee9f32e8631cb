//! The registry of loaded modules: names and ids, dependencies, hold
//! counts, safe unload, and the dynamic symbol table (see [`Registry`]).

use core::cell::{Cell, UnsafeCell};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::bind::{Provider, Resolution, Resolver};
use crate::error::{Error, ModuleText, SymName};
use crate::limits::Limits;
use crate::load::Loader;
use crate::log::{Event, Log};
use crate::memory::Memory;
use crate::meta::{Abi, SetupOption, Version, VersionRange};
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
    /// Whether an unload was refused, or it was loaded as another
    /// module's dependency, and a sweep will unload it once its counts
    /// reach zero.
    pub candidate: bool,
    /// The version its metadata declares (`None` without metadata).
    pub version: Option<Version>,
    /// The class its metadata declares (empty without metadata).
    pub class: ModuleName,
    /// When it was loaded, by the registry's clock
    /// ([`Registry::with_clock`]; with `std` by default milliseconds since
    /// the Unix epoch, without it 0).
    pub loaded_at: u64,
    /// Its imports still waiting for a provider (deferred binding).
    pub pending: u32,
}

/// Finds modules by name for a registry ([`Registry::with_finder`]): the
/// search path with `std` ([`SearchPath`](crate::SearchPath)); on bare
/// metal whatever maps a name to a module in flash.
pub trait Finder: Sync {
    /// Calls `load` with a source for the module called `name` and
    /// returns its result, or [`Error::NotFound`] if there is none.
    fn find(
        &self,
        name: &str,
        load: &mut dyn FnMut(&mut dyn Source) -> Result<(), Error>,
    ) -> Result<(), Error>;
}

/// How [`Registry::load_with`] and [`Registry::load_named`] load a module.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions<'o> {
    setup: &'o [SetupOption<'o>],
    defer: bool,
    /// Found by name through the finder: the module must not declare
    /// another name.
    found: bool,
}

impl<'o> LoadOptions<'o> {
    /// No options, no deferred binding: as [`Registry::load`].
    pub const fn new() -> Self {
        LoadOptions {
            setup: &[],
            defer: false,
            found: false,
        }
    }

    /// The options passed to the module's setup function.
    pub const fn setup(mut self, options: &'o [SetupOption<'o>]) -> Self {
        self.setup = options;
        self
    }

    /// Whether imports that nothing loaded provides are left pending
    /// (bound to traps until a provider loads) rather than refused.
    pub const fn defer(mut self, defer: bool) -> Self {
        self.defer = defer;
        self
    }
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
        /// The module made known to gdb, written with the module.
        #[cfg(all(feature = "gdb", unix))]
        pub(super) gdb: UnsafeCell<Option<crate::gdb::Registration>>,
        /// The module's record in the debuggers' list (feature `modlist`).
        #[cfg(feature = "modlist")]
        pub(super) entry: UnsafeCell<crate::modlist::ModEntry>,
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
                #[cfg(all(feature = "gdb", unix))]
                gdb: UnsafeCell::new(None),
                #[cfg(feature = "modlist")]
                entry: UnsafeCell::new(crate::modlist::ModEntry::new()),
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
        /// When it was loaded (the registry's clock).
        pub(super) loaded_at: u64,
        /// Loaded as another module's dependency (and never by name since).
        pub(super) auto: bool,
        /// Its setup ran and accepted (or it has none): its teardown is due.
        pub(super) set_up: bool,
        /// Marks for finding a cycle (see `Registry::cycle`).
        pub(super) mark: u8,
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
    /// Missing imports are left pending rather than refused.
    defer: bool,
}

impl<'a, S: Store<'a>> Resolver for Scope<'_, 'a, S> {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        if let Some(r) = self.host.resolve(name) {
            return Some(r);
        }
        if let Some(hit) = self.store.symbol(self.cells, name, false) {
            let meta = self.store.metas().get(hit.slot)?.as_ref()?;
            // Only live modules: one still loading may yet be undone.
            if meta.state == State::Live {
                let m = module(self.store, self.cells, hit.slot)?;
                return Some(Resolution {
                    addr: hit.addr,
                    sig: hit.sig,
                    provider: Provider(meta.id),
                    desc: m.export_desc(hit.export),
                });
            }
        }
        self.count.set(self.count.get().saturating_add(1));
        self.missing.borrow_mut().push(name);
        Some(Resolution {
            addr: core::ptr::null(),
            sig: 0,
            provider: if self.defer {
                Provider::PENDING
            } else {
                Provider::HOST
            },
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
    abis: &'a [Abi<'a>],
    finder: Option<&'a dyn Finder>,
    log: Option<&'a dyn Log>,
    clock: fn() -> u64,
    /// The registry's serial among those that deferred imports (0 until
    /// it first does; see [`crate::trap`]).
    serial: AtomicU32,
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
            abis: &[],
            finder: None,
            log: None,
            clock: default_clock,
            serial: AtomicU32::new(0),
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
            abis: &[],
            finder: None,
            log: None,
            clock: default_clock,
            serial: AtomicU32::new(0),
            cells: (),
            book: Lock::new(Book {
                store: Growable::new(),
                next: 1,
            }),
        }
    }
}

/// The registry's clock unless one is given: milliseconds since the Unix
/// epoch with `std`, 0 without.
fn default_clock() -> u64 {
    // (Miri runs without a clock.)
    #[cfg(all(feature = "std", not(miri)))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
    #[cfg(any(not(feature = "std"), miri))]
    {
        0
    }
}

/// The modules being loaded, innermost first: a dependency on one of them
/// is a cycle.
struct Chain<'c> {
    name: &'c str,
    up: Option<&'c Chain<'c>>,
    depth: u32,
}

impl Chain<'_> {
    fn has(&self, name: &str) -> bool {
        self.name == name || self.up.is_some_and(|u| u.has(name))
    }

    /// `outer -> ... -> self -> last`.
    fn text(&self, last: &str) -> ModuleText {
        fn walk(c: &Chain<'_>, t: &mut ModuleText, from: &str) -> bool {
            // From the outermost link that is `from` (the cycle's start).
            let started = match c.up {
                Some(u) if u.has(from) => walk(u, t, from),
                _ => c.name == from,
            };
            if started {
                let _ = write!(t, "{} -> ", c.name);
            }
            started
        }
        let mut t = ModuleText::new();
        walk(self, &mut t, last);
        let _ = t.write_str(last);
        t
    }
}

/// Whether module `m` depends on the module `p` books: an import of `m`
/// is bound to it, or `m`'s metadata names it as a dependency.
fn depends_on(m: &Module<'_>, p: &Meta) -> bool {
    m.imports().any(|i| i.provider == Provider(p.id))
        || m.metadata()
            .is_some_and(|md| md.dependencies().any(|d| d.name == p.name.as_str()))
}

/// The version `m`'s metadata declares (0.0.0 without metadata).
fn version_of(m: &Module<'_>) -> Version {
    m.metadata().map_or(Version::default(), |md| md.version())
}

/// Export `i` of `m` as a function of type `F`.
///
/// # Safety
///
/// The export must be a function of type `F` (its signature checked, or
/// the module's word for it), and `F` a function pointer type.
unsafe fn function<F: Copy>(m: &Module<'_>, i: usize) -> Option<F> {
    let e = m.export(i)?;
    // SAFETY: the caller's promise; the address lies in the module's
    // sealed text (an export the loader checked).
    Some(unsafe { core::mem::transmute_copy::<*const (), F>(&e.addr) })
}

/// Calls `m`'s setup function, if it has one, with `options`: its
/// refusal code if it refuses.
fn run_setup(m: &Module<'_>, options: &[SetupOption<'_>]) -> Result<(), i32> {
    let Some(i) = m.metadata().and_then(|md| md.setup()) else {
        return Ok(());
    };
    // SAFETY: the metadata names export `i` as the setup function, and
    // the registry refused a module whose export has another signature
    // (`check_metadata`).
    let Some(f) = (unsafe { function::<crate::meta::SetupFn>(m, i) }) else {
        return Ok(());
    };
    let n = u32::try_from(options.len()).unwrap_or(u32::MAX);
    match f(options.as_ptr().cast(), n) {
        0 => Ok(()),
        code => Err(code),
    }
}

/// Calls `m`'s teardown function, if it has one.
fn run_teardown(m: &Module<'_>) {
    let Some(i) = m.metadata().and_then(|md| md.teardown()) else {
        return;
    };
    // SAFETY: as for the setup function in `run_setup`.
    if let Some(f) = unsafe { function::<crate::meta::TeardownFn>(m, i) } {
        f();
    }
}

/// Binds import `i` of `m` (pending, in registry `serial`, module `id`
/// called `module`) to a trap of its own.
fn arm_one(m: &mut Module<'_>, serial: u32, id: u32, module: &str, i: usize) -> Result<(), Error> {
    m.check_late_binding_shared(i)?;
    let iname = m
        .import(i)
        .map(|imp| imp.name)
        .ok_or_else(|| crate::check::bad("import"))?;
    let (_, trap) = crate::trap::arm(serial, id, module, i, iname)?;
    // SAFETY: the trap is a function of the program that reports the call
    // and returns a word, whatever arguments the module passes; none of
    // the module's code has run, and it is patched only in the data.
    unsafe { m.rebind(i, trap, Provider::PENDING) }
}

/// How deep dependencies may nest.
const MAX_DEPTH: u32 = 16;

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

    /// Offers `abis` to modules: a module requiring an ABI class none of
    /// them has, another major, or a higher minor is refused before any of
    /// its code runs ([`Error::Abi`]).
    pub const fn with_abis(mut self, abis: &'a [Abi<'a>]) -> Self {
        self.abis = abis;
        self
    }

    /// Finds modules by name through `finder` ([`Self::load_named`], and
    /// the dependencies a module declares).
    pub const fn with_finder(mut self, finder: &'a dyn Finder) -> Self {
        self.finder = Some(finder);
        self
    }

    /// Tells `log` what the registry loads, unloads and refuses (see
    /// [`crate::log`]): a [`Putbuf`](crate::Putbuf) without an allocator.
    pub const fn with_log(mut self, log: &'a dyn Log) -> Self {
        self.log = Some(log);
        self
    }

    /// Tells the log that loading `name` was refused with `error` (out of
    /// line: one copy for every source type).
    #[cold]
    #[inline(never)]
    fn refused(&self, name: &str, error: &Error) {
        self.tell(Event::LoadRefused { name, error });
    }

    /// Tells the log that `m` was loaded as `name` with `id` (out of line,
    /// as [`Self::refused`]).
    #[inline(never)]
    fn loaded(&self, name: &str, id: u32, m: &Module<'_>) {
        self.tell(Event::Loaded {
            name,
            id,
            base: m.base() as usize,
            size: m.image_size(),
        });
    }

    /// Tells the log, if any, of `event`.
    fn tell(&self, event: Event<'_>) {
        if let Some(log) = self.log {
            log.log(&event);
        }
    }

    /// Stamps each module's [`ModuleInfo::loaded_at`] with `clock`.
    pub const fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// The ABI versions the registry offers.
    pub fn abis(&self) -> &'a [Abi<'a>] {
        self.abis
    }

    /// The host's exports.
    pub fn host(&self) -> &ExportTable<'a> {
        &self.host
    }

    /// Loads the module in `src` under `name`, binds its imports against
    /// the host and the loaded modules, runs its constructors, and returns
    /// it held once: [`Self::load_with`] with no options.
    pub fn load<Src: Source + ?Sized>(
        &self,
        name: &str,
        src: &mut Src,
    ) -> Result<Held<'_, 'a, S>, Error> {
        self.load_with(name, src, &LoadOptions::new())
    }

    /// Loads the module in `src` under `name` and returns it held once.
    ///
    /// If a module called `name` is loaded already, `src` is not read:
    /// that module is returned with one more hold (as `dlopen` does).
    /// Otherwise, in order:
    ///
    /// 1. The modules its metadata names as dependencies are loaded
    ///    first, each once, through the finder ([`Self::with_finder`])
    ///    unless loaded already, and checked against the versions it
    ///    accepts ([`Error::Dependency`]); a dependency on a module whose
    ///    load is under way is a cycle ([`Error::Cycle`], naming it).
    ///    They are loaded as candidates for [`Self::sweep`]: once nothing
    ///    uses them, a sweep unloads them.
    /// 2. It is loaded and bound against the host and the live modules;
    ///    its metadata's ABI requirements are checked against
    ///    [`Self::with_abis`] ([`Error::Abi`]), before any of its code
    ///    runs. Imports nothing provides refuse it ([`Error::Unresolved`],
    ///    naming them all) unless `how` defers them: then each is bound to
    ///    a trap ([`crate::trap`]) until a module providing it loads (an
    ///    import the text reaches directly cannot wait:
    ///    [`Error::LateBind`]). A name the host or a loaded module exports
    ///    already refuses it ([`Error::Clash`], naming both).
    /// 3. Its symbols enter the table, and its constructors run, then its
    ///    setup function with `how`'s options; a non-zero result undoes the
    ///    load ([`Error::Setup`], with the code): its destructors run, its
    ///    memory goes back, and the dependencies loaded for it go again.
    /// 4. It becomes [`State::Live`], and the pending imports of other
    ///    modules that it provides are bound to it (each signature
    ///    checked; it gains a dependent for each module so bound).
    ///
    /// A refused load leaves the registry as it was. Constructors and
    /// setup run outside the registry's lock (they may use the registry);
    /// meanwhile the module is [`State::Loading`]: it cannot be held,
    /// unloaded or bound to, and loading its name again is refused
    /// ([`Error::Busy`]) rather than waited for. Reading `src` and the
    /// memory provider's calls run under the lock: neither may use the
    /// registry.
    pub fn load_with<Src: Source + ?Sized>(
        &self,
        name: &str,
        src: &mut Src,
        how: &LoadOptions<'_>,
    ) -> Result<Held<'_, 'a, S>, Error> {
        self.load_in(name, src, how, None, false)
    }

    /// Loads the module called `name` through the finder
    /// ([`Self::with_finder`]; [`Error::NotFound`] without one or if it
    /// has none), as [`Self::load_with`] does.
    pub fn load_named(&self, name: &str, how: &LoadOptions<'_>) -> Result<Held<'_, 'a, S>, Error> {
        self.load_found(name, how, None, false)
    }

    fn load_found(
        &self,
        name: &str,
        how: &LoadOptions<'_>,
        up: Option<&Chain<'_>>,
        auto: bool,
    ) -> Result<Held<'_, 'a, S>, Error> {
        check_name(name)?;
        if let Some(h) = self.again(name, auto)? {
            return Ok(h);
        }
        let missing = || Error::NotFound {
            name: SymName::new(name),
        };
        let mut reached = false;
        let how = &LoadOptions {
            found: true,
            ..*how
        };
        let got = self.finder.ok_or_else(missing).and_then(|finder| {
            let mut got = None;
            finder.find(name, &mut |src| {
                reached = true;
                got = Some(self.load_in(name, src, how, up, auto)?);
                Ok(())
            })?;
            got.ok_or_else(missing)
        });
        // A refusal from the load itself was told there.
        if let (Err(error), false, Some(_)) = (&got, reached, self.log) {
            self.refused(name, error);
        }
        got
    }

    /// The module called `name` held once more, if loaded; unless `auto`
    /// (a dependency's load), no longer a candidate for the sweep.
    fn again(&self, name: &str, auto: bool) -> Result<Option<Held<'_, 'a, S>>, Error> {
        let got = self.book.with(|b| {
            let Some(slot) = b.store.named(name) else {
                return Ok(None);
            };
            let (cell, id) = self.hold_slot(&b.store, slot, Which::Name(name))?;
            if !auto {
                // Asked for again: no longer a candidate for the sweep.
                if let Some(Some(meta)) = b.store.metas_mut().get_mut(slot) {
                    meta.candidate = false;
                    meta.auto = false;
                }
            }
            Ok(Some((cell, id)))
        })?;
        Ok(got.map(|(cell, id)| self.held(cell, id)))
    }

    /// Takes a hold on slot `slot` (the module `which` named), if live:
    /// its cell and id. Under the lock.
    fn hold_slot(
        &self,
        store: &S,
        slot: usize,
        which: Which<'_>,
    ) -> Result<(&Slot<'a>, u32), Error> {
        let meta = store.metas().get(slot).and_then(Option::as_ref);
        let cell = store.cell(&self.cells, slot);
        let (Some(meta), Some(cell)) = (meta, cell) else {
            return Err(which.missing());
        };
        // Only a live module can be held: one loading may be undone.
        if meta.state != State::Live {
            return Err(busy(meta));
        }
        take_hold(&cell.holds)?;
        Ok((cell, meta.id))
    }

    /// Loads `src` as `name` (see [`Self::load_with`]), telling the log of
    /// the outcome.
    fn load_in<Src: Source + ?Sized>(
        &self,
        name: &str,
        src: &mut Src,
        how: &LoadOptions<'_>,
        up: Option<&Chain<'_>>,
        auto: bool,
    ) -> Result<Held<'_, 'a, S>, Error> {
        let got = self.load_untold(name, src, how, up, auto);
        if let (Err(error), Some(_)) = (&got, self.log) {
            self.refused(name, error);
        }
        got
    }

    fn load_untold<Src: Source + ?Sized>(
        &self,
        name: &str,
        src: &mut Src,
        how: &LoadOptions<'_>,
        up: Option<&Chain<'_>>,
        auto: bool,
    ) -> Result<Held<'_, 'a, S>, Error> {
        check_name(name)?;
        if let Some(h) = self.again(name, auto)? {
            return Ok(h);
        }
        let chain = Chain {
            name,
            up,
            depth: up.map_or(0, |u| u.depth + 1),
        };
        if chain.depth > MAX_DEPTH {
            return Err(Error::Limit {
                what: "dependency depth",
                count: chain.depth.into(),
                max: MAX_DEPTH.into(),
            });
        }
        // Its dependencies first.
        let peek = Loader::new(ExportTable::EMPTY, self.memory).limits(self.limits);
        let deps = peek.dependencies(src, |dep, range| {
            self.dependency(name, dep, range, how, &chain)
        });
        if let Err(e) = deps {
            self.reap();
            return Err(e);
        }
        let got = self
            .book
            .with(|b| self.load_locked(b, name, src, how, auto));
        let (cell, id, slot) = match got {
            Ok(Loaded::Again(cell, id)) => return Ok(self.held(cell, id)),
            Ok(Loaded::Fresh(cell, id, slot)) => (cell, id, slot),
            Err(e) => {
                self.reap();
                return Err(e);
            }
        };
        let h = self.held(cell, id);
        h.module.start();
        if let Err(code) = run_setup(h.module, how.setup) {
            drop(h);
            // Loading: nothing can have held it or bound to it.
            self.book.with(|b| {
                if let Some(Some(m)) = b.store.metas_mut().get_mut(slot) {
                    m.state = State::Unloading;
                }
            });
            self.teardown(slot);
            self.reap();
            return Err(Error::Setup {
                module: text(name),
                code,
            });
        }
        self.book.with(|b| {
            if let Some(Some(m)) = b.store.metas_mut().get_mut(slot) {
                m.state = State::Live;
                m.set_up = true;
            }
        });
        if self.log.is_some() {
            self.loaded(name, id, h.module);
        }
        self.bind_pending();
        Ok(h)
    }

    /// Dependency `dep` (accepting `range`) of module `name`, being
    /// loaded in `chain`: checked if loaded, loaded if not.
    fn dependency(
        &self,
        name: &str,
        dep: &str,
        range: VersionRange,
        how: &LoadOptions<'_>,
        chain: &Chain<'_>,
    ) -> Result<(), Error> {
        if chain.has(dep) {
            return Err(Error::Cycle {
                names: chain.text(dep),
            });
        }
        let wrong = |have: Version| {
            let mut names = ModuleText::new();
            let _ = write!(names, "{name} needs {dep}");
            Error::Dependency {
                names,
                want: range,
                have,
            }
        };
        let have = self.book.with(|b| {
            let j = b.store.named(dep)?;
            module(&b.store, &self.cells, j).map(version_of)
        });
        if let Some(have) = have {
            return if range.contains(have) {
                Ok(())
            } else {
                Err(wrong(have))
            };
        }
        let dep_how = LoadOptions::new().defer(how.defer);
        let h = self.load_found(dep, &dep_how, Some(chain), true)?;
        let have = version_of(&h);
        drop(h);
        if !range.contains(have) {
            return Err(wrong(have));
        }
        Ok(())
    }

    /// Unloads the modules loaded as dependencies that nothing uses any
    /// more (those a refused load brought in).
    fn reap(&self) {
        while let Some(slot) = self.begin_free_candidate(true) {
            self.teardown(slot);
        }
    }

    /// Marks unloading the first candidate (only one loaded as a
    /// dependency, if `auto`) that is live and neither held nor depended
    /// on: its slot, for [`Self::teardown`].
    fn begin_free_candidate(&self, auto: bool) -> Option<usize> {
        self.book.with(|b| {
            let j = (0..b.store.metas().len()).find(|&j| {
                let holds = b
                    .store
                    .cell(&self.cells, j)
                    .map_or(0, |c| c.holds.load(Ordering::Acquire));
                matches!(b.store.metas().get(j), Some(Some(m))
                    if m.candidate && (m.auto || !auto) && m.state == State::Live
                        && m.dependents == 0 && holds == 0)
            })?;
            self.begin_unload(b, j, false).ok()
        })
    }

    /// This registry's trap serial, assigned on first use.
    fn serial(&self) -> u32 {
        let s = self.serial.load(Ordering::Acquire);
        if s != 0 {
            return s;
        }
        let new = crate::trap::serial();
        match self
            .serial
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(old) => old,
        }
    }

    fn load_locked<Src: Source + ?Sized>(
        &self,
        b: &mut Book<S>,
        name: &str,
        src: &mut Src,
        how: &LoadOptions<'_>,
        auto: bool,
    ) -> Result<Loaded<'_, 'a>, Error> {
        if let Some(slot) = b.store.named(name) {
            let (cell, id) = self.hold_slot(&b.store, slot, Which::Name(name))?;
            return Ok(Loaded::Again(cell, id));
        }
        let slot = b.store.vacant()?;
        let cell = b
            .store
            .cell(&self.cells, slot)
            .ok_or_else(|| crate::check::bad("registry slot"))?;
        let id = b.next;
        if id == u32::MAX - 1 {
            return Err(Error::Limit {
                what: "module ids",
                count: id as u64,
                max: u32::MAX as u64 - 2,
            });
        }
        let mut m = {
            let scope = Scope {
                host: &self.host,
                store: &b.store,
                cells: &self.cells,
                missing: core::cell::RefCell::new(Names::new()),
                count: Cell::new(0),
                defer: how.defer,
            };
            let got = Loader::with_resolver(&scope, self.memory)
                .limits(self.limits)
                .name(name)
                .load(src);
            // A missing import is the error, whatever else binding to
            // nothing led to.
            let count = scope.count.get();
            if count != 0 && !how.defer {
                return Err(Error::Unresolved {
                    count,
                    names: scope.missing.borrow().name(),
                });
            }
            match got {
                // A deferred import the text reaches cannot wait.
                Err(Error::ImportOutOfReach { name, .. }) if count != 0 => {
                    return Err(Error::LateBind { name })
                }
                got => got?,
            }
        };
        self.check_metadata(&b.store, name, how.found, &m)?;
        self.check_clashes(&b.store, name, &m)?;
        // Deferred imports: each to a trap of its own.
        let serial = if how.defer { self.serial() } else { 0 };
        let mut armed = Ok(());
        for i in 0..m.nimport() {
            if m.import(i)
                .is_some_and(|imp| imp.provider == Provider::PENDING)
            {
                armed = arm_one(&mut m, serial, id, name, i);
                if armed.is_err() {
                    break;
                }
            }
        }
        let base = m.base() as usize;
        let at = b.store.order().partition_point(|&s| {
            b.store
                .metas()
                .get(s as usize)
                .and_then(Option::as_ref)
                .is_some_and(|o| o.base < base)
        });
        if let Err(e) = armed.and_then(|()| b.store.order_insert(at, slot as u32)) {
            crate::trap::disarm(serial, |mid, _| mid == id);
            return Err(e);
        }
        // Nothing fails from here on.
        // Its providers gain a dependent each.
        for j in 0..b.store.metas().len() {
            let edge = match b.store.metas().get(j) {
                Some(Some(p)) => depends_on(&m, p),
                _ => false,
            };
            if edge {
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
                candidate: auto,
                auto,
                base,
                end: base.saturating_add(m.image_size()),
                loaded_at: (self.clock)(),
                set_up: false,
                mark: 0,
            });
        }
        b.next = id + 1;
        cell.holds.store(1, Ordering::Release);
        // SAFETY: the slot was vacant: no reference to its module or name
        // exists, and the lock is held.
        unsafe {
            // Known to gdb before any of its code runs.
            #[cfg(all(feature = "gdb", unix))]
            {
                *cell.gdb.get() = Some(crate::gdb::Registration::new(&m, name));
            }
            // And to a debugger attached to the kernel. The cell stays put
            // (a static, or leaked) until teardown takes the entry out.
            #[cfg(feature = "modlist")]
            crate::modlist::add(cell.entry.get(), &m, name, id);
            *cell.module.get() = Some(m);
            *cell.name.get() = mname;
        }
        b.store.index_name(slot);
        b.store.index_symbols(&self.cells, slot);
        Ok(Loaded::Fresh(cell, id, slot))
    }

    /// Refuses `m` if its metadata requires an ABI the registry does not
    /// offer, names setup or teardown functions of another type, or
    /// depends on a module that is not loaded and live at a version it
    /// accepts.
    fn check_metadata(
        &self,
        store: &S,
        name: &str,
        found: bool,
        m: &Module<'a>,
    ) -> Result<(), Error> {
        let Some(md) = m.metadata() else {
            return Ok(());
        };
        // The finder gave the file for `name`: one that says it is another
        // module is the wrong file.
        if found && md.name() != name {
            let mut names = ModuleText::new();
            let _ = write!(names, "{name}, but it declares itself {}", md.name());
            return Err(Error::Misnamed { names });
        }
        if let Some((want, have)) = md.unmet(self.abis) {
            return Err(Error::Abi {
                module: text(name),
                class: text(want.class),
                want: (want.major, want.minor),
                have: have.map(|h| (h.major, h.minor)),
            });
        }
        let typed = |i: Option<usize>, sig: u32| {
            i.and_then(|i| m.export(i))
                .is_none_or(|e| e.sig == 0 || e.sig == sig)
        };
        if !typed(md.setup(), crate::meta::SETUP_SIG)
            || !typed(md.teardown(), crate::meta::TEARDOWN_SIG)
        {
            return Err(Error::BadTable {
                kind: crate::format::kind::METADATA,
                what: "setup or teardown function of another type",
            });
        }
        for d in md.dependencies() {
            let j = store.named(d.name).filter(
                |&j| matches!(store.metas().get(j), Some(Some(o)) if o.state == State::Live),
            );
            let Some(dm) = j.and_then(|j| module(store, &self.cells, j)) else {
                return Err(Error::NotFound {
                    name: SymName::new(d.name),
                });
            };
            let have = version_of(dm);
            if !d.range.contains(have) {
                let mut names = ModuleText::new();
                let _ = write!(names, "{name} needs {}", d.name);
                return Err(Error::Dependency {
                    names,
                    want: d.range,
                    have,
                });
            }
        }
        Ok(())
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
            self.hold_slot(&b.store, slot, which)
        })?;
        Ok(self.held(cell, id))
    }

    /// Unloads the module `which` names: refused while it is held or
    /// other modules are bound to it ([`Error::InUse`], with both counts
    /// and the dependents' names), which makes it a candidate for
    /// [`Self::sweep`]. Otherwise its destructors and exit handlers run
    /// (outside the lock), then its symbols leave the table and its
    /// providers lose a dependent, then its memory goes back.
    ///
    /// **Cycles.** Modules bound to each other (through deferred binding)
    /// depend on each other, so neither could go first. A cycle unloads
    /// as a whole: unloading a module whose only dependents are in its
    /// cycle (the modules it depends on, directly or not, that depend on
    /// it) unloads every module of the cycle, newest first, provided none
    /// of them is held and nothing outside the cycle depends on any of
    /// them; otherwise it is refused as above.
    pub fn unload<'n>(&self, which: impl Into<Which<'n>>) -> Result<(), Error> {
        let which = which.into();
        let got = self.unload_untold(which);
        if let (Err(error), Some(log)) = (&got, self.log) {
            let mut id = heapless::String::<16>::new();
            let name = match which {
                Which::Name(n) => n,
                Which::Id(n) => {
                    let _ = write!(id, "id {n}");
                    &id
                }
            };
            log.log(&Event::UnloadRefused { name, error });
        }
        got
    }

    fn unload_untold(&self, which: Which<'_>) -> Result<(), Error> {
        let slot = self.book.with(|b| {
            let slot = find(&b.store, which).ok_or_else(|| which.missing())?;
            match self.begin_unload(b, slot, true) {
                Ok(slot) => Ok(Some(slot)),
                Err(e @ Error::InUse { holds: 0, .. }) => match self.cycle(b, slot) {
                    true => Ok(None),
                    false => Err(e),
                },
                Err(e) => Err(e),
            }
        })?;
        match slot {
            Some(slot) => self.teardown(slot),
            None => {
                self.teardown_cycle();
            }
        }
        Ok(())
    }

    /// Marks the cycle of slot `x` unloading, if it can go as a whole
    /// (see [`Self::unload`]); whether it did.
    fn cycle(&self, b: &mut Book<S>, x: usize) -> bool {
        let n = b.store.metas().len();
        for m in b.store.metas_mut().iter_mut().flatten() {
            m.mark = 0;
        }
        let set = |b: &mut Book<S>, j: usize, bit: u8| {
            if let Some(Some(m)) = b.store.metas_mut().get_mut(j) {
                m.mark |= bit;
            }
        };
        set(b, x, 3);
        // Bit 1: what `x` depends on; bit 2: what depends on `x`; both:
        // its cycle. Until nothing changes (a few rounds for a few modules).
        let mut changed = true;
        while changed {
            changed = false;
            for j in 0..n {
                for k in 0..n {
                    let (Some(Some(mj)), Some(Some(mk))) =
                        (b.store.metas().get(j), b.store.metas().get(k))
                    else {
                        continue;
                    };
                    let (from, to) = (mj.mark, mk.mark);
                    // j depends on k?
                    let Some(dj) = module(&b.store, &self.cells, j) else {
                        continue;
                    };
                    if !depends_on(dj, mk) {
                        continue;
                    }
                    if from & 1 != 0 && to & 1 == 0 {
                        set(b, k, 1);
                        changed = true;
                    }
                    if to & 2 != 0 && from & 2 == 0 {
                        set(b, j, 2);
                        changed = true;
                    }
                }
            }
        }
        // Closed: no holds, all live, and every dependent inside.
        let mut ok = true;
        for j in 0..n {
            let Some(Some(mj)) = b.store.metas().get(j) else {
                continue;
            };
            if mj.mark != 3 {
                continue;
            }
            let holds = b
                .store
                .cell(&self.cells, j)
                .map_or(1, |c| c.holds.load(Ordering::Acquire));
            ok &= holds == 0 && mj.state == State::Live;
            for k in 0..n {
                let (Some(Some(mk)), Some(dk)) =
                    (b.store.metas().get(k), module(&b.store, &self.cells, k))
                else {
                    continue;
                };
                ok &= mk.mark == 3 || !depends_on(dk, mj);
            }
        }
        for m in b.store.metas_mut().iter_mut().flatten() {
            if m.mark == 3 && ok {
                m.state = State::Unloading;
            } else {
                m.mark = 0;
            }
        }
        ok
    }

    /// Unloads the cycle `cycle` marked, newest first; how many.
    fn teardown_cycle(&self) -> usize {
        let mut n = 0;
        loop {
            let next = self.book.with(|b| {
                let metas = b.store.metas();
                let j = (0..metas.len())
                    .filter(|&j| matches!(metas.get(j), Some(Some(m)) if m.mark == 3 && m.state == State::Unloading))
                    .max_by_key(|&j| metas.get(j).and_then(Option::as_ref).map_or(0, |m| m.id))?;
                if let Some(Some(m)) = b.store.metas_mut().get_mut(j) {
                    m.mark = 0;
                }
                Some(j)
            });
            let Some(slot) = next else { return n };
            self.teardown(slot);
            n += 1;
        }
    }

    /// Binds every pending import (of any module) that a live module now
    /// provides with a signature it accepts; each provider gains a
    /// dependent for each module newly bound to it.
    fn bind_pending(&self) {
        let serial = self.serial.load(Ordering::Acquire);
        if serial == 0 {
            return;
        }
        self.book.with(|b| loop {
            let store = &b.store;
            let mut hit = None;
            crate::trap::each(serial, |mid, _, i, iname| {
                if hit.is_some() {
                    return;
                }
                let Some(ms) = find(store, Which::Id(mid)) else {
                    return;
                };
                let (Some(m), Some(p)) = (
                    module(store, &self.cells, ms),
                    store.symbol(&self.cells, iname, false),
                ) else {
                    return;
                };
                let live =
                    matches!(store.metas().get(p.slot), Some(Some(o)) if o.state == State::Live);
                let want = m.import(i).map_or(0, |imp| imp.sig);
                if live && p.slot != ms && (want == 0 || p.sig == 0 || want == p.sig) {
                    hit = Some((ms, mid, i, p.addr, p.slot));
                }
            });
            let Some((ms, mid, i, addr, ps)) = hit else {
                return;
            };
            let (Some(m), Some(Some(p))) = (module(store, &self.cells, ms), store.metas().get(ps))
            else {
                return;
            };
            let (had, pid) = (depends_on(m, p), p.id);
            // SAFETY: the import was accepted for late binding when it was
            // armed; the address is the export of a live module of the
            // signature the import expects, which now gains the importer
            // as a dependent (so stays loaded while the binding lives);
            // the registry's lock keeps other binders away.
            if unsafe { m.bind_late(i, addr, Provider(pid)) }.is_err() {
                return;
            }
            crate::trap::disarm(serial, |id, j| id == mid && j == i);
            if !had {
                if let Some(Some(p)) = b.store.metas_mut().get_mut(ps) {
                    p.dependents = p.dependents.saturating_add(1);
                }
            }
        });
    }

    /// Calls `f` with each import still pending (deferred, its provider
    /// not loaded): the importing module's name and the import's name, as
    /// RTEMS's `RTLD_DI_UNRESOLVED` lists them. `f` must not use the
    /// registry.
    pub fn unresolved(&self, mut f: impl FnMut(&str, &str)) {
        let serial = self.serial.load(Ordering::Acquire);
        if serial != 0 {
            crate::trap::each(serial, |_, module, _, import| f(module, import));
        }
    }

    /// Binds every pending import that a loaded module provides (as
    /// loads do), then fails if any is left, naming them all
    /// ([`Error::Unresolved`]: `import (module)`, ...). A pending import
    /// whose provider exports it with another signature stays pending.
    pub fn resolve(&self) -> Result<(), Error> {
        self.bind_pending();
        let mut names = Names::new();
        let mut count = 0u32;
        self.unresolved(|module, import| {
            count += 1;
            let mut one = heapless::String::<160>::new();
            let _ = write!(one, "{import} ({module})");
            names.push(&one);
        });
        match count {
            0 => Ok(()),
            count => Err(Error::Unresolved {
                count,
                names: names.name(),
            }),
        }
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
                    if depends_on(dm, meta) {
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

    /// Unloads slot `slot`, marked unloading with no holds: its teardown
    /// (if its setup ran), its destructors and exit handlers, then it
    /// leaves the books and its memory goes back.
    fn teardown(&self, slot: usize) {
        let m = self.book.with(|b| {
            let set_up = matches!(b.store.metas().get(slot), Some(Some(m)) if m.set_up);
            module(&b.store, &self.cells, slot).map(|m| (m as *const Module<'a>, set_up))
        });
        if let Some((m, set_up)) = m {
            // SAFETY: the module is unloading: nothing can hold it or
            // take it out of its cell but this call, which does so only
            // after this reference is gone.
            let m: &Module<'a> = unsafe { &*m };
            if set_up {
                run_teardown(m);
            }
            m.finish();
        }
        let mut gone = None;
        let taken = self.book.with(|b| {
            let serial = self.serial.load(Ordering::Acquire);
            if let Some(Some(meta)) = b.store.metas().get(slot) {
                let id = meta.id;
                crate::trap::disarm(serial, |mid, _| mid == id);
                if self.log.is_some() {
                    gone = Some((id, meta.name.clone()));
                }
            }
            b.store.unindex_symbols(&self.cells, slot);
            b.store.unindex_name(slot);
            if let Some(at) = b.store.order().iter().position(|&s| s as usize == slot) {
                b.store.order_remove(at);
            }
            // Its providers lose a dependent.
            if let Some(m) = module(&b.store, &self.cells, slot) {
                for j in 0..b.store.metas().len() {
                    let edge = match b.store.metas().get(j) {
                        Some(Some(p)) if j != slot => depends_on(m, p),
                        _ => false,
                    };
                    if edge {
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
            unsafe {
                // Unknown to gdb before its memory goes.
                #[cfg(all(feature = "gdb", unix))]
                drop((*cell.gdb.get()).take());
                #[cfg(feature = "modlist")]
                crate::modlist::remove(cell.entry.get());
                (*cell.module.get()).take()
            }
        });
        // Its memory goes back (its destructors ran above).
        drop(taken);
        if let Some((id, name)) = &gone {
            self.tell(Event::Unloaded { name, id: *id });
        }
    }

    /// Unloads every candidate (see [`Self::unload`]) whose hold and
    /// dependent counts are zero, and the candidates that frees, and the
    /// cycles a candidate is in that can go as a whole, until none is left
    /// that can go; returns how many it unloaded. A module
    /// that was never refused is not a candidate and stays.
    pub fn sweep(&self) -> usize {
        let mut n = 0;
        loop {
            if let Some(slot) = self.begin_free_candidate(false) {
                self.teardown(slot);
                n += 1;
                continue;
            }
            // A candidate in a cycle that can go as a whole.
            let cycle = self.book.with(|b| {
                (0..b.store.metas().len()).any(|j| {
                    matches!(b.store.metas().get(j), Some(Some(m))
                        if m.candidate && m.state == State::Live && m.dependents != 0)
                        && self.cycle(b, j)
                })
            });
            if !cycle {
                return n;
            }
            n += self.teardown_cycle();
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
            version: m.metadata().map(|md| md.version()),
            class: {
                let mut c = ModuleName::new();
                let _ = c.push_str(m.metadata().map_or("", |md| md.class()));
                c
            },
            loaded_at: meta.loaded_at,
            pending: {
                let mut n = 0u32;
                let serial = self.serial.load(Ordering::Acquire);
                if serial != 0 {
                    crate::trap::each(serial, |mid, _, _, _| n += u32::from(mid == meta.id));
                }
                n
            },
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
            self.hold_slot(&b.store, j, Which::Name(name))
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

impl<'r, 'a, S: Storage<'a>> Held<'r, 'a, S> {
    /// The hold alone, without the module: it still keeps the module
    /// loaded until dropped. What [`crate::stub`] keeps for an entry it
    /// has patched.
    pub fn erase(self) -> ErasedHold<'r> {
        let h = ErasedHold { holds: self.holds };
        core::mem::forget(self);
        h
    }
}

/// A hold on a registry module whose type is forgotten (see
/// [`Held::erase`]): dropping it releases the hold.
pub struct ErasedHold<'r> {
    holds: &'r AtomicU32,
}

impl<'r> ErasedHold<'r> {
    /// The hold as a word, for code that keeps it where no Rust type can
    /// live (a stub entry shared with C, an assembly frame).
    #[cfg(feature = "stubs")]
    pub(crate) fn into_raw(self) -> usize {
        let p = self.holds as *const AtomicU32 as usize;
        core::mem::forget(self);
        p
    }

    /// The hold [`Self::into_raw`] gave.
    ///
    /// # Safety
    ///
    /// `raw` must come from `into_raw` of a hold on a registry that lives
    /// for `'r`, and be turned back only once.
    #[cfg(feature = "stubs")]
    pub(crate) unsafe fn from_raw(raw: usize) -> Self {
        // SAFETY: the caller's promise: the counter lives for 'r.
        ErasedHold {
            holds: unsafe { &*(raw as *const AtomicU32) },
        }
    }
}

impl Drop for ErasedHold<'_> {
    fn drop(&mut self) {
        // As Held's drop.
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

    /// Deferred binding on both storages: the dependent loads first, its
    /// word on a trap; the provider's load binds it and counts the
    /// dependent; unloading the dependent gives the edge back.
    fn deferred<'a, S: Storage<'a>>(reg: &Registry<'a, S>) {
        let dep = dependent();
        assert!(matches!(
            reg.load("dep", &mut SliceSource::new(&dep)),
            Err(Error::Unresolved { count: 1, .. })
        ));
        let how = LoadOptions::new().defer(true);
        let d = reg
            .load_with("dep", &mut SliceSource::new(&dep), &how)
            .unwrap();
        let imp = d.import(0).unwrap();
        assert_eq!(imp.provider, Provider::PENDING);
        assert!(!imp.addr.is_null());
        let mut seen = 0;
        reg.unresolved(|m, i| {
            assert_eq!((m, i), ("dep", "val"));
            seen += 1;
        });
        assert_eq!((seen, reg.info("dep").unwrap().pending), (1, 1));
        assert!(!bound(reg, &d));
        let prov = provider();
        let p = reg.load("prov", &mut SliceSource::new(&prov)).unwrap();
        assert!(bound(reg, &d), "bound when the provider loaded");
        assert_eq!(d.import(0).unwrap().provider, Provider(p.id()));
        assert_eq!(reg.info("prov").unwrap().dependents, 1);
        assert_eq!(reg.info("dep").unwrap().pending, 0);
        reg.resolve().unwrap();
        drop((d, p));
        assert!(reg.unload("prov").is_err());
        reg.unload("dep").unwrap();
        assert_eq!(reg.info("prov").unwrap().dependents, 0);
        reg.unload("prov").unwrap();
    }

    #[test]
    fn deferred_binding() {
        deferred(&Registry::growable(ExportTable::EMPTY, &HEAP));
        deferred(&Registry::<Fixed<2>>::fixed(ExportTable::EMPTY, &HEAP));
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

    /// The messages a registry tells its log: each load, unload and
    /// refusal, one line each in a putbuf, in order.
    #[test]
    fn messages_go_to_the_putbuf() {
        static PUTBUF: crate::Putbuf<1024> = crate::Putbuf::new();
        let reg = Registry::<Fixed<2>>::fixed(ExportTable::EMPTY, &HEAP).with_log(&PUTBUF);
        exercise(&reg);
        let mut out = [0u8; 1024];
        let n = PUTBUF.read(&mut out);
        let text = core::str::from_utf8(&out[..n]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let loaded = |l: &str, name: &str, id: u32| {
            l.starts_with(&alloc::format!("loaded {name} (id {id}) at 0x")) && l.ends_with(" bytes")
        };
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(lines[0], "load d refused: undefined symbol: val", "{text}");
        assert!(loaded(lines[1], "p", 1), "{text}");
        assert!(loaded(lines[2], "d", 2), "{text}");
        assert!(lines[3].starts_with("unload p refused: "), "{text}");
        assert!(lines[4].starts_with("unload d refused: "), "{text}");
        // The sweep: the dependent first, then its provider.
        assert_eq!(&lines[5..], ["unloaded d (id 2)", "unloaded p (id 1)"]);
        // By id, a refusal names the id; a full registry refuses.
        PUTBUF.clear();
        assert!(reg.unload(7u32).is_err());
        let (p, d) = (provider(), dependent());
        let _a = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        let _b = reg.load("d", &mut SliceSource::new(&d)).unwrap();
        assert!(reg.load("e", &mut SliceSource::new(&p)).is_err());
        let n = PUTBUF.read(&mut out);
        let text = core::str::from_utf8(&out[..n]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("unload id 7 refused: "), "{text}");
        assert!(
            lines[3].starts_with("load e refused: implausible"),
            "{text}"
        );
    }

    /// A refused setup tells of the load's refusal after the unload that
    /// undid it; a finder that has no such module tells of the refusal.
    #[test]
    fn refusals_from_the_finder_are_told() {
        struct None_;
        impl Finder for None_ {
            fn find(
                &self,
                _: &str,
                _: &mut dyn FnMut(&mut dyn Source) -> Result<(), Error>,
            ) -> Result<(), Error> {
                Err(Error::NotFound {
                    name: SymName::new("x"),
                })
            }
        }
        static FINDER: None_ = None_;
        let seen = std::sync::Mutex::new(Vec::new());
        let log = |e: &Event<'_>| seen.lock().unwrap().push(alloc::format!("{e}"));
        let reg = Registry::growable(ExportTable::EMPTY, &HEAP)
            .with_finder(&FINDER)
            .with_log(&log);
        assert!(reg.load_named("ghost", &LoadOptions::new()).is_err());
        drop(reg);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].starts_with("load ghost refused: "), "{seen:?}");
    }

    /// The debuggers' list gains each module as it loads, with its
    /// place and name, and loses it at unload.
    #[cfg(feature = "modlist")]
    #[test]
    fn the_debuggers_list_follows_the_registry() {
        let reg = Registry::<Fixed<2>>::fixed(ExportTable::EMPTY, &HEAP);
        let (p, d) = (provider(), dependent());
        let ph = reg.load("p", &mut SliceSource::new(&p)).unwrap();
        let dh = reg.load("d", &mut SliceSource::new(&d)).unwrap();
        let bases = [ph.base() as usize, dh.base() as usize];
        let ours = || {
            let mut v = Vec::new();
            crate::modlist::each(|e| {
                if bases.contains(&e.base) {
                    v.push((alloc::string::String::from(e.name()), e.id, e.image));
                }
            });
            v
        };
        // The last loaded first.
        assert_eq!(
            ours(),
            [
                ("d".into(), dh.id(), dh.image_size()),
                ("p".into(), ph.id(), ph.image_size())
            ]
        );
        drop((ph, dh));
        reg.unload("d").unwrap();
        assert_eq!(ours(), [("p".into(), 1, 16)]);
        reg.unload("p").unwrap();
        assert!(ours().is_empty());
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
