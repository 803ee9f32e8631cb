//! Symbol resolution: the given objects are included, archive members are
//! pulled while they define something still wanted, one copy of each
//! COMDAT group is kept, common symbols are merged, and the exports are
//! chosen. [`Symbols::resolve`] then answers, for any symbol an object
//! references, where it is.

use super::obj::{
    is_default_visibility, is_global, sym_name, sym_type, unknown_section, Obj, SectionId,
};
use super::{fail, LinkError};
use crate::sigsec::SigTable;
use object::{Object, ObjectComdat, ObjectSection, ObjectSymbol, SymbolIndex, SymbolSection};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Where a global symbol is defined.
#[derive(Clone, Copy, Debug)]
pub(super) enum Def {
    /// By symbol `sym` of object `obj`.
    Sym {
        obj: usize,
        sym: SymbolIndex,
        weak: bool,
    },
    /// As a common symbol (the largest size and strictest alignment seen).
    Common { size: u64, align: u64 },
}

/// A resolved symbol reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Resolved {
    /// In object `.0`'s section `.1`, at offset `.2`.
    In(usize, usize, u64),
    /// An absolute value.
    Abs(u64),
    /// A common symbol, by name.
    Common(String),
    /// An import, by name.
    Import(String),
    /// A function the linker writes itself.
    Synth(SynthFn),
    /// The start (or with `stop`, the end) of the kept sections named
    /// `section`, placed together: `__start_SECTION`, `__stop_SECTION`.
    Bound { section: String, stop: bool },
}

/// The functions the linker writes into a module that calls them without
/// defining them, in place of the C library's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum SynthFn {
    /// `int atexit(void (*f)(void))`: `__cxa_atexit(f, 0, &__dso_handle)`,
    /// so that the handler belongs to the module and runs when it is
    /// unloaded, as glibc's `atexit` does for a shared object.
    AtExit,
}

/// The object that identifies a module to `__cxa_atexit`: the linker
/// gives every module that refers to it its own, in the bss.
pub(super) const DSO_HANDLE: &str = "__dso_handle";

/// The import a module's exit handlers are registered through (dynld binds
/// it to its own; see `dynld::runtime`).
pub(super) const CXA_ATEXIT: &str = "__cxa_atexit";

impl SynthFn {
    /// The function called `name`, if the linker writes one.
    fn named(name: &str) -> Option<SynthFn> {
        (name == "atexit").then_some(SynthFn::AtExit)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            SynthFn::AtExit => "atexit",
        }
    }

    /// The common symbols it refers to.
    pub fn needs_commons(self) -> &'static [&'static str] {
        match self {
            SynthFn::AtExit => &[DSO_HANDLE],
        }
    }
}

/// What a module cannot do, by the C library function it calls: the
/// message says why and what to use instead.
const REFUSED_CALLS: &[(&str, &str)] = &[
    (
        "on_exit",
        "on_exit handlers take the exit status, which a module's unload has none of: use atexit or __attribute__((destructor))",
    ),
    (
        "__cxa_throw",
        "C++ exceptions need unwind tables, which modules do not carry: compile with -fno-exceptions",
    ),
    (
        "__cxa_rethrow",
        "C++ exceptions need unwind tables, which modules do not carry: compile with -fno-exceptions",
    ),
    (
        "__cxa_begin_catch",
        "C++ exceptions need unwind tables, which modules do not carry: compile with -fno-exceptions",
    ),
    (
        "_Unwind_RaiseException",
        "unwinding needs unwind tables, which modules do not carry",
    ),
];

/// The personality routines whose references say which exception
/// machinery an object's unwind tables were made for.
const PERSONALITIES: &[&str] = &[
    "__gxx_personality_v0",
    "__gcc_personality_v0",
    "rust_eh_personality",
];

/// The objects linked and their global symbols.
pub(super) struct Symbols<'d> {
    /// Every object included, in the order they were; object indices
    /// elsewhere index this.
    pub objs: Vec<Obj<'d>>,
    /// Every global symbol defined, and where.
    pub globals: HashMap<String, Def>,
    /// Names referenced with a strong (not weak) undefined symbol.
    strong: HashSet<String>,
    /// Definitions the linker made (`__dso_handle`): never exported.
    internal: HashSet<String>,
    /// The `__start_SECTION` and `__stop_SECTION` symbols the objects
    /// refer to and nothing defines, where sections named SECTION exist:
    /// the section name, and whether it is the stop symbol.
    bounds: HashMap<String, (String, bool)>,
    /// The sections of each name that such symbols bound, in object and
    /// section order.
    pub bounded: BTreeMap<String, Vec<SectionId>>,
    /// Exports stated in archive members (Rust ones, whose stated exports
    /// pull them), by name, with the member: they must be defined even if
    /// nothing was pulled.
    stated: BTreeMap<String, String>,
}

/// Includes the `given` objects and pulls archive `members`, as `ld` does:
/// while a member defines a name that is wanted (referenced strongly, or
/// named in `exports`) and not yet defined, or only as a common symbol.
///
/// The search goes in rounds, as ld's passes over an archive's index do:
/// each round looks up the names that became wanted in the one before in
/// an index from defined names to the members defining them, and pulls,
/// in member order, each member that defines one of them still undefined,
/// so the first member to define a name is the one pulled. Every wanted
/// name is looked up once: the search takes time linear in the symbols
/// (with a sort of each round's members), where scanning every member for
/// every round took time quadratic in a chain of members each needing the
/// next.
pub(super) fn resolve<'d>(
    given: Vec<Obj<'d>>,
    members: Vec<Obj<'d>>,
    exports: Option<&BTreeSet<String>>,
) -> Result<Symbols<'d>, LinkError> {
    let mut syms = Symbols {
        objs: Vec::new(),
        globals: HashMap::new(),
        strong: HashSet::new(),
        internal: HashSet::new(),
        bounds: HashMap::new(),
        bounded: BTreeMap::new(),
        stated: BTreeMap::new(),
    };
    let mut comdats: HashSet<Vec<u8>> = HashSet::new();
    // Wanted: names with a strong reference (a weak reference pulls
    // nothing, as in ld) or named as exports (as `ld -u` makes them).
    // `fresh` holds those not looked up yet.
    let mut wanted = Wanted::default();
    for n in exports.into_iter().flatten() {
        wanted.add(n);
    }
    // Without names given, a Rust archive member's natural exports (its
    // #[no_mangle] items, and what its source states with export_sig!)
    // are wanted as named ones are: a staticlib's members are all archive
    // members, and would otherwise pull nothing.
    let mut stated = BTreeMap::new();
    if exports.is_none() {
        for o in members.iter().filter(|o| o.rust) {
            for s in o.file.symbols() {
                if is_global(&s)
                    && !s.is_undefined()
                    && !matches!(s.section(), SymbolSection::Common)
                    && o.natural_export(&s)
                {
                    wanted.add(&sym_name(&s));
                }
            }
            for n in super::emit::signatures(std::slice::from_ref(o))?.stated_exports() {
                wanted.add(n);
                stated.entry(n.to_owned()).or_insert_with(|| o.name.clone());
            }
        }
    }
    // A Rust archive member stating the module's metadata is included
    // as a given object is: its record is a local static, which no name
    // would pull, and rustc may have put it in a codegen unit of its own.
    let (stating, members): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|o| o.rust && o.file.section_by_name(crate::modsec::SECTION).is_some());
    for o in given.into_iter().chain(stating) {
        wanted.add_refs(&o);
        syms.include(o, &mut comdats)?;
    }
    let index = MemberIndex::new(&members);
    let mut members: Vec<Option<Obj<'d>>> = members.into_iter().map(Some).collect();
    while !wanted.fresh.is_empty() {
        // The members defining this round's names, in order, each with
        // the names it was found for.
        let mut found: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for name in std::mem::take(&mut wanted.fresh) {
            for &m in index.definers(&name) {
                if members[m].is_some() {
                    found.entry(m).or_default().push(name.clone());
                }
            }
        }
        for (m, names) in found {
            // Checked against the definitions so far, so the first member
            // to define a name is the one pulled.
            let still = names
                .iter()
                .any(|n| matches!(syms.globals.get(n), None | Some(Def::Common { .. })));
            if let Some(o) = members[m].take_if(|_| still) {
                wanted.add_refs(&o);
                syms.include(o, &mut comdats)?;
            }
        }
    }
    syms.strong = wanted.strong;
    syms.stated = stated;
    syms.find_bounds();
    syms.refuse_calls()?;
    // A module's own `__dso_handle`, if its code (or the atexit the linker
    // writes) refers to it and nothing defines it: a word in the bss, as
    // the C runtime's start files give a shared object.
    let needs_dso = syms.refers_to(DSO_HANDLE)
        || syms.strong.contains("atexit") && !syms.globals.contains_key("atexit");
    if needs_dso && !syms.globals.contains_key(DSO_HANDLE) {
        let word = if syms.objs.first().is_some_and(|o| o.file.is_64()) {
            8
        } else {
            4
        };
        syms.globals.insert(
            DSO_HANDLE.to_owned(),
            Def::Common {
                size: word,
                align: word,
            },
        );
        syms.internal.insert(DSO_HANDLE.to_owned());
    }
    Ok(syms)
}

/// The names that pull archive members, as they become wanted.
#[derive(Default)]
struct Wanted {
    /// Every name wanted so far.
    all: HashSet<String>,
    /// Those not looked up in the members yet.
    fresh: Vec<String>,
    /// The names the included objects reference strongly.
    strong: HashSet<String>,
}

impl Wanted {
    /// Wants `name`.
    fn add(&mut self, name: &str) {
        if !self.all.contains(name) {
            self.all.insert(name.to_owned());
            self.fresh.push(name.to_owned());
        }
    }

    /// Wants the names `o` references with a strong (not weak) undefined
    /// symbol.
    fn add_refs(&mut self, o: &Obj<'_>) {
        for s in o.file.symbols() {
            if s.is_undefined() && is_global(&s) && !s.is_weak() {
                let name = sym_name(&s);
                self.add(&name);
                self.strong.insert(name);
            }
        }
    }
}

/// Which archive members define each name (not as a common symbol, which
/// pulls nothing), in member order.
struct MemberIndex {
    by_name: HashMap<String, Vec<usize>>,
}

impl MemberIndex {
    fn new(members: &[Obj<'_>]) -> MemberIndex {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (m, o) in members.iter().enumerate() {
            for s in o.file.symbols() {
                if is_global(&s)
                    && !s.is_undefined()
                    && !matches!(s.section(), SymbolSection::Common)
                {
                    let list = by_name.entry(sym_name(&s)).or_default();
                    if list.last() != Some(&m) {
                        list.push(m);
                    }
                }
            }
        }
        MemberIndex { by_name }
    }

    /// The members defining `name`, in order.
    fn definers(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The section a `__start_SECTION` or `__stop_SECTION` symbol bounds, and
/// whether it is the stop one: SECTION must be a C identifier, as in GNU
/// ld.
fn bound_of(name: &str) -> Option<(&str, bool)> {
    let (section, stop) = match name.strip_prefix("__start_") {
        Some(s) => (s, false),
        None => (name.strip_prefix("__stop_")?, true),
    };
    let ident = section
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && section
            .chars()
            .all(|c| c == '_' || c.is_ascii_alphanumeric());
    ident.then_some((section, stop))
}

impl<'d> Symbols<'d> {
    /// Defines the `__start_SECTION` and `__stop_SECTION` symbols that
    /// objects refer to and none defines, for each SECTION that some
    /// object has (allocated, not in a dropped COMDAT group).
    fn find_bounds(&mut self) {
        let mut wanted: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for o in &self.objs {
            for s in o.file.symbols() {
                if !s.is_undefined() || !is_global(&s) {
                    continue;
                }
                let name = sym_name(&s);
                if self.globals.contains_key(&name) {
                    continue;
                }
                if let Some((section, stop)) = bound_of(&name) {
                    wanted.insert(name.clone(), (section.to_owned(), stop));
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        let names: HashSet<&str> = wanted.values().map(|(s, _)| s.as_str()).collect();
        let mut bounded: BTreeMap<String, Vec<SectionId>> = BTreeMap::new();
        for (oi, o) in self.objs.iter().enumerate() {
            for sec in o.file.sections() {
                let Ok(n) = sec.name() else { continue };
                let alloc = matches!(sec.flags(), object::SectionFlags::Elf { sh_flags }
                    if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0);
                if alloc && names.contains(n) && !o.discarded.contains(&sec.index()) {
                    bounded
                        .entry(n.to_owned())
                        .or_default()
                        .push((oi, sec.index().0));
                }
            }
        }
        self.bounds = wanted
            .into_iter()
            .filter(|(_, (section, _))| bounded.contains_key(section))
            .collect();
        self.bounded = bounded;
    }

    /// Whether any object refers to `name` (strongly or weakly) without
    /// defining it.
    fn refers_to(&self, name: &str) -> bool {
        self.objs.iter().any(|o| {
            o.file
                .symbols()
                .any(|s| s.is_undefined() && s.name() == Ok(name))
        })
    }

    /// Refuses a module whose code calls what a module cannot do (see
    /// [`REFUSED_CALLS`]), naming the object, and for exceptions the
    /// personality routine its unwind tables name.
    fn refuse_calls(&self) -> Result<(), LinkError> {
        for (name, why) in REFUSED_CALLS {
            if self.globals.contains_key(*name) || !self.strong.contains(*name) {
                continue;
            }
            let Some(o) = self.objs.iter().find(|o| {
                o.file
                    .symbols()
                    .any(|s| s.is_undefined() && s.name() == Ok(*name))
            }) else {
                continue;
            };
            let personality = o
                .file
                .symbols()
                .filter_map(|s| s.name().ok())
                .find(|n| PERSONALITIES.contains(n));
            match personality {
                Some(p) => fail!("{}: calls {name} (personality routine {p}): {why}", o.name),
                None => fail!("{}: calls {name}: {why}", o.name),
            }
        }
        Ok(())
    }

    /// Adds an object's definitions to the global table, dropping sections
    /// of COMDAT groups already seen.
    fn include(
        &mut self,
        mut obj: Obj<'d>,
        comdats: &mut HashSet<Vec<u8>>,
    ) -> Result<(), LinkError> {
        for c in obj.file.comdats() {
            let key = c.name_bytes().unwrap_or(b"").to_vec();
            if !comdats.insert(key) {
                obj.discarded.extend(c.sections());
            }
        }
        let oi = self.objs.len();
        for s in obj.file.symbols() {
            if sym_type(&s) == object::elf::STT_GNU_IFUNC && !s.is_undefined() {
                fail!(
                    "{}: {} is an indirect function (ifunc): modules cannot express it",
                    obj.name,
                    sym_name(&s)
                );
            }
            if s.name() == Ok("__gnu_lto_slim") {
                fail!(
                    "{}: a slim LTO object holds no code: compile without -flto (or with -ffat-lto-objects)",
                    obj.name
                );
            }
            if !is_global(&s) || s.is_undefined() {
                continue;
            }
            let name = sym_name(&s);
            let new = match s.section() {
                SymbolSection::Common => Def::Common {
                    size: s.size(),
                    align: s.address().max(1),
                },
                SymbolSection::Section(idx) if obj.discarded.contains(&idx) => continue,
                SymbolSection::Section(_) | SymbolSection::Absolute => Def::Sym {
                    obj: oi,
                    sym: s.index(),
                    weak: s.is_weak(),
                },
                // Defined, but where the linker cannot tell: not 0.
                SymbolSection::Unknown => fail!(
                    "{}: symbol {name} is defined {}, which the linker does not know",
                    obj.name,
                    unknown_section(&obj, &s)
                ),
                _ => continue,
            };
            self.define(name, new, &obj)?;
        }
        self.objs.push(obj);
        Ok(())
    }

    /// Records definition `new` of `name` (from `obj`, not yet included)
    /// against any before it: a strong definition beats a weak one and a
    /// common one, a common one beats a weak one, and two strong ones are
    /// an error.
    fn define(&mut self, name: String, new: Def, obj: &Obj<'_>) -> Result<(), LinkError> {
        match (self.globals.get(&name).copied(), new) {
            (None, _) => {
                self.globals.insert(name, new);
            }
            (Some(Def::Sym { weak: true, .. }), Def::Sym { weak: false, .. })
            | (Some(Def::Sym { weak: true, .. }), Def::Common { .. })
            | (Some(Def::Common { .. }), Def::Sym { weak: false, .. }) => {
                self.globals.insert(name, new);
            }
            (Some(Def::Common { size: a, align: x }), Def::Common { size: b, align: y }) => {
                // The largest size and the strictest alignment, as ld does.
                self.globals.insert(
                    name,
                    Def::Common {
                        size: a.max(b),
                        align: x.max(y),
                    },
                );
            }
            (
                Some(Def::Sym {
                    weak: false,
                    obj: o,
                    ..
                }),
                Def::Sym { weak: false, .. },
            ) => {
                let first = self.objs.get(o).map_or(&obj.name, |x| &x.name);
                fail!(
                    "symbol {name} defined twice: in {first} and in {}",
                    obj.name
                )
            }
            _ => {}
        }
        Ok(())
    }

    /// Resolves symbol `si` of object `oi`.
    pub fn resolve(&self, oi: usize, si: SymbolIndex) -> Result<Resolved, LinkError> {
        let o = &self.objs[oi];
        let s = o
            .file
            .symbol_by_index(si)
            .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
        if is_global(&s) {
            let name = sym_name(&s);
            // A function the linker writes, for a module calling it
            // without defining it.
            let def = self.globals.get(&name);
            if let (None, Some(f)) = (def, SynthFn::named(&name)) {
                if self.strong.contains(&name) {
                    return Ok(Resolved::Synth(f));
                }
            }
            if let (None, Some((section, stop))) = (def, self.bounds.get(&name)) {
                return Ok(Resolved::Bound {
                    section: section.clone(),
                    stop: *stop,
                });
            }
            return Ok(match def {
                Some(Def::Sym { obj, sym, .. }) => {
                    let d = &self.objs[*obj];
                    let ds = d
                        .file
                        .symbol_by_index(*sym)
                        .map_err(|e| LinkError(format!("{}: {e}", d.name)))?;
                    match ds.section() {
                        SymbolSection::Section(idx) => {
                            Resolved::In(*obj, idx.0, d.offset_in(idx, &ds)?)
                        }
                        _ => Resolved::Abs(ds.address()),
                    }
                }
                Some(Def::Common { .. }) => Resolved::Common(name),
                None if !is_default_visibility(&s) => fail!(
                    "{}: hidden symbol {name} is not defined in the module",
                    o.name
                ),
                // A weak reference nothing defines is 0, as in a static
                // link; it does not become an import.
                None if !self.strong.contains(&name) => Resolved::Abs(0),
                None => Resolved::Import(name),
            });
        }
        Ok(match s.section() {
            SymbolSection::Section(idx) => Resolved::In(oi, idx.0, o.offset_in(idx, &s)?),
            SymbolSection::Absolute => Resolved::Abs(s.address()),
            SymbolSection::Unknown => fail!(
                "{}: local symbol {} is defined {}, which the linker does not know",
                o.name,
                sym_name(&s),
                unknown_section(o, &s)
            ),
            _ => fail!("{}: local symbol {} has no section", o.name, sym_name(&s)),
        })
    }

    /// The exports: the names in `only`; else each object's natural
    /// exports (every global symbol of default visibility, for Rust
    /// objects only the unmangled ones: see [`Obj::natural_export`]) and
    /// the names the sources state as exports (`sigs`), which must be
    /// defined.
    pub fn exports(
        &self,
        only: Option<&BTreeSet<String>>,
        sigs: &SigTable,
    ) -> Result<Exports, LinkError> {
        let mut ex = Exports {
            syms: BTreeMap::new(),
            commons: BTreeSet::new(),
        };
        // The stated exports, with where each was stated.
        let stated: BTreeMap<&str, &str> = match only {
            Some(_) => BTreeMap::new(),
            None => self
                .stated
                .iter()
                .map(|(n, o)| (n.as_str(), o.as_str()))
                .chain(
                    sigs.stated_exports()
                        .map(|n| (n, sigs.origin(n).unwrap_or("?"))),
                )
                .collect(),
        };
        for (name, def) in &self.globals {
            if self.internal.contains(name) {
                continue;
            }
            let wanted = match only {
                Some(set) => set.contains(name),
                None => {
                    stated.contains_key(name.as_str())
                        || match def {
                            Def::Sym { obj, sym, .. } => {
                                let o = &self.objs[*obj];
                                o.file
                                    .symbol_by_index(*sym)
                                    .is_ok_and(|s| o.natural_export(&s))
                            }
                            Def::Common { .. } => true,
                        }
                }
            };
            if wanted {
                match def {
                    Def::Sym { obj, sym, .. } => {
                        ex.syms.insert(name.clone(), (*obj, *sym));
                    }
                    Def::Common { .. } => {
                        ex.commons.insert(name.clone());
                    }
                }
            }
        }
        for n in only.into_iter().flatten() {
            if !self.globals.contains_key(n) {
                fail!("exported symbol {n} is not defined");
            }
        }
        for (n, origin) in stated {
            if !self.globals.contains_key(n) || self.internal.contains(n) {
                fail!(
                    "{origin}: {n} is stated as an export (DYNLD_EXPORT or export_sig!), but no object defines a global symbol of that name (in C, not static; in Rust, #[no_mangle] or #[export_name])"
                );
            }
        }
        Ok(ex)
    }
}

/// The symbols the module exports.
pub(super) struct Exports {
    /// Defined by a symbol: its object and index.
    pub syms: BTreeMap<String, (usize, SymbolIndex)>,
    /// Common symbols.
    pub commons: BTreeSet<String>,
}
