//! Typed errors whose `Display` reads like Plan 9's error strings.

#[cfg(feature = "registry")]
use crate::escape::Escaped;
use crate::format::{kind, Arch};
use core::fmt;

/// A module's name, or a list of them, in a registry error: whole with
/// `alloc`; without it at most 48 bytes (cut text ends with `...`), so
/// that errors stay small on a kernel's stack.
#[cfg(all(feature = "registry", feature = "alloc"))]
pub type ModuleText = alloc::string::String;
/// A module's name, or a list of them, in a registry error: whole with
/// `alloc`; without it at most 48 bytes (cut text ends with `...`), so
/// that errors stay small on a kernel's stack.
#[cfg(all(feature = "registry", not(feature = "alloc")))]
pub type ModuleText = heapless::String<48, u8>;

/// A symbol name carried by an error.
///
/// With the `alloc` feature the whole name is kept. Without it, at most
/// [`SymName::CAPACITY`] bytes are kept and the message says how long the
/// full name was, so a long name is never cut silently.
#[derive(Clone, PartialEq, Eq)]
pub struct SymName {
    #[cfg(feature = "alloc")]
    text: alloc::string::String,
    #[cfg(not(feature = "alloc"))]
    text: heapless::String<{ SymName::CAPACITY }>,
    len: usize,
}

impl SymName {
    /// Bytes kept without the `alloc` feature.
    pub const CAPACITY: usize = 96;

    /// Copies `name`.
    pub fn new(name: &str) -> SymName {
        #[cfg(feature = "alloc")]
        let text = alloc::string::String::from(name);
        #[cfg(not(feature = "alloc"))]
        let text = {
            // The longest prefix that fits and ends on a character.
            let mut end = name.len().min(Self::CAPACITY);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            let mut t = heapless::String::new();
            let _ = t.push_str(name.get(..end).unwrap_or(""));
            t
        };
        SymName {
            text,
            len: name.len(),
        }
    }

    /// The kept part of the name (the whole name unless [`Self::is_truncated`]).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether only a prefix of the name was kept.
    pub fn is_truncated(&self) -> bool {
        self.text.len() < self.len
    }
}

/// Shows the name with control characters and other non-printing ones
/// escaped ([`Escaped`](crate::Escaped)), so a name from a module cannot
/// forge a line of output or drive a terminal.
impl fmt::Display for SymName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always UTF-8 (a `str`): escaped without the invalid-byte path.
        crate::escape::write_text(f, &self.text)?;
        if self.is_truncated() {
            write!(f, "...[{} bytes]", self.len)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SymName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl PartialEq<&str> for SymName {
    fn eq(&self, other: &&str) -> bool {
        !self.is_truncated() && self.text == **other
    }
}

/// What a signature mismatch error says beyond the two signatures
/// (feature `alloc`).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// The importer's description of the type.
    pub want_desc: Option<alloc::string::String>,
    /// The exporter's description of the type.
    pub have_desc: Option<alloc::string::String>,
    /// The module being loaded ([`Loader::name`](crate::Loader::name)).
    pub module: Option<alloc::string::String>,
}

#[cfg(feature = "alloc")]
impl Mismatch {
    /// The detail of a mismatch, if there is any to give: each
    /// description only if it is the one its signature was computed from
    /// (a module's file could carry any text).
    pub(crate) fn boxed(
        want: (Option<&str>, u32),
        have: (Option<&str>, u32),
        module: Option<&str>,
    ) -> Option<alloc::boxed::Box<Mismatch>> {
        use alloc::string::ToString;
        let shown = |(d, sig): (Option<&str>, u32)| {
            d.filter(|d| crate::sig::hash(d) == Ok(sig))
                .map(str::to_string)
        };
        let m = Mismatch {
            want_desc: shown(want),
            have_desc: shown(have),
            module: module.map(str::to_string),
        };
        (m != Mismatch::default()).then(|| alloc::boxed::Box::new(m))
    }
}

/// Which symbol table an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// The module's export table.
    Export,
    /// The module's import table.
    Import,
    /// The export table the loading program supplied.
    Host,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Export => "export",
            Table::Import => "import",
            Table::Host => "host export",
        })
    }
}

/// What is wrong with a name in a symbol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name's bytes lie outside the string table.
    OutOfBounds,
    /// The name is longer than the limit.
    TooLong,
    /// The name holds a NUL byte.
    Nul,
    /// The name is not UTF-8.
    NotUtf8,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "empty name",
            NameProblem::OutOfBounds => "name outside string table",
            NameProblem::TooLong => "name too long",
            NameProblem::Nul => "NUL byte in name",
            NameProblem::NotUtf8 => "name is not UTF-8",
        })
    }
}

/// Everything that can go wrong loading a module or looking up a symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The first word is not a module magic at all.
    BadMagic {
        /// The word read.
        magic: u32,
    },
    /// A module, but for another architecture than the loader's.
    WrongArch {
        /// The module's architecture.
        found: Arch,
        /// The architecture the loader relocates for.
        want: Arch,
    },
    /// A format version this loader does not know.
    BadVersion {
        /// The version read.
        version: u32,
    },
    /// A header field is inconsistent.
    BadHeader {
        /// What is wrong.
        what: &'static str,
    },
    /// The image (text + data + bss) is larger than allowed.
    TooBig {
        /// Image bytes the module needs.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A table count exceeds its limit.
    Limit {
        /// Which count.
        what: &'static str,
        /// The count read.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The source ended before the module did.
    Truncated {
        /// The part being read.
        what: &'static str,
    },
    /// The source's read callback failed.
    Read,
    /// The source's seek callback failed.
    Seek,
    /// A table entry's name is malformed.
    BadName {
        /// Which table.
        table: Table,
        /// Entry index.
        index: u32,
        /// What is wrong.
        problem: NameProblem,
    },
    /// A table is not sorted by name.
    Unsorted {
        /// Which table.
        table: Table,
        /// The first name found out of order.
        name: SymName,
    },
    /// A name appears twice in a table.
    Duplicate {
        /// Which table.
        table: Table,
        /// The repeated name.
        name: SymName,
    },
    /// An export's address lies outside the module's text, data and bss.
    BadExport {
        /// The export.
        name: SymName,
        /// Its image offset.
        value: u32,
    },
    /// An import names a symbol the program does not export.
    Undefined {
        /// The name.
        name: SymName,
    },
    /// Import and export both carry signatures and they differ.
    SigMismatch {
        /// The name.
        name: SymName,
        /// The signature the importer expects.
        want: u32,
        /// The signature of the export.
        have: u32,
        /// Who exports the symbol.
        provider: crate::Provider,
        /// With the `alloc` feature: the two type descriptions, when the
        /// module and the exporter carry them, and the module's name, when
        /// the loader was told it.
        #[cfg(feature = "alloc")]
        detail: Option<alloc::boxed::Box<Mismatch>>,
    },
    /// A typed lookup ([`Module::get`](crate::Module::get)) found an export
    /// that carries no signature, so its type cannot be checked.
    Unchecked {
        /// The export.
        name: SymName,
    },
    /// An autoload stub was called before [`crate::stub::set_autoload`].
    NoAutoload,
    /// An autoload stub was reached while its own module was being loaded
    /// (by its constructors or setup, or by an interrupt handler): its
    /// call went to RETFUNC.
    StubReentered,
    /// A stub module's version range is malformed.
    StubVersion,
    /// An import is reached from the text (an instruction patched at load),
    /// so it cannot be bound again once the text is sealed.
    LateBind {
        /// The import.
        name: SymName,
    },
    /// A table of the directory is malformed.
    BadTable {
        /// Its kind (see [`crate::format::kind`]).
        kind: u16,
        /// What is wrong.
        what: &'static str,
    },
    /// The module has a table this loader does not know and must not skip.
    UnknownTable {
        /// Its kind.
        kind: u16,
    },
    /// A constructor or destructor lies outside the text.
    BadFunction {
        /// [`kind::INIT`] or [`kind::FINI`].
        kind: u16,
        /// Entry index.
        index: u32,
        /// Its image offset.
        value: u32,
    },
    /// A hash index is malformed (see [`crate::index`]).
    BadIndex {
        /// Which table the index serves.
        table: Table,
        /// What is wrong.
        what: &'static str,
    },
    /// A relocation record cannot be decoded.
    BadReloc {
        /// Record index.
        index: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// A relocation mode the architecture does not define.
    BadRelocMode {
        /// Record index.
        index: u32,
        /// The mode.
        mode: u8,
        /// The architecture.
        arch: Arch,
    },
    /// A relocation would patch bytes outside the text and data.
    RelocOutOfImage {
        /// Record index.
        index: u32,
        /// Image offset of the field.
        offset: u32,
    },
    /// A relocation names an import that does not exist.
    BadImportIndex {
        /// Record index.
        index: u32,
        /// The import index read.
        import: u32,
        /// Number of imports.
        nimport: u32,
    },
    /// A relocated value does not fit its field.
    RelocOverflow {
        /// Record index.
        index: u32,
        /// Image offset of the field.
        offset: u32,
    },
    /// An import's address does not fit the field that refers to it: the
    /// module loaded too far from it for the reference the code uses.
    ImportOutOfReach {
        /// The import.
        name: SymName,
        /// The relocation mode's name (`import-pc32`, ...).
        mode: &'static str,
        /// Image offset of the field.
        offset: u32,
    },
    #[cfg(feature = "registry")]
    /// A registry has no module of this name or id.
    NoModule {
        /// The name or id asked for.
        name: SymName,
    },
    #[cfg(feature = "registry")]
    /// A registry module is being loaded or unloaded by another caller.
    Busy {
        /// The module.
        name: ModuleText,
        /// What it is doing: `"loading"` or `"unloading"`.
        what: &'static str,
    },
    #[cfg(feature = "registry")]
    /// Unload refused: the module is held, or other modules are bound to
    /// its exports. It is now a candidate for a later sweep.
    InUse {
        /// The module.
        name: ModuleText,
        /// Its hold count.
        holds: u32,
        /// Its dependent count.
        dependents: u32,
        /// The dependents' names, comma-separated (without `alloc`, as
        /// many as fit).
        by: ModuleText,
    },
    #[cfg(feature = "registry")]
    /// A module exports a name the host or a loaded module already
    /// exports; the module is refused.
    Clash {
        /// The name.
        name: SymName,
        /// Who exports it already: the host, or a module by its id.
        other: crate::Provider,
        /// The refused module's name and the other module's (`host` for
        /// the host), with `alloc`.
        #[cfg(feature = "alloc")]
        names: alloc::boxed::Box<(ModuleText, ModuleText)>,
    },
    #[cfg(feature = "registry")]
    /// The registry's finder (its search path) has no module of this name,
    /// or the registry has no finder.
    NotFound {
        /// The name asked for.
        name: SymName,
    },
    #[cfg(feature = "registry")]
    /// A module requires an ABI version the host does not offer; refused
    /// before any of its code ran.
    Abi {
        /// The module.
        module: ModuleText,
        /// The ABI class it requires.
        class: ModuleText,
        /// The version it requires: major, minor.
        want: (u32, u32),
        /// The host's version of that class (its highest), if it offers
        /// the class at all.
        have: Option<(u32, u32)>,
    },
    #[cfg(feature = "registry")]
    /// A module's setup function refused the load with a non-zero code;
    /// the load was undone.
    Setup {
        /// The module.
        module: ModuleText,
        /// The code its setup returned.
        code: i32,
    },
    #[cfg(feature = "registry")]
    /// Modules depend on each other in a cycle: the names in order, the
    /// first repeated at the end.
    Cycle {
        /// `a -> b -> a`.
        names: ModuleText,
    },
    #[cfg(feature = "registry")]
    /// The finder's file for a name holds a module that declares another
    /// name in its metadata.
    Misnamed {
        /// `app, but it declares itself lib`.
        names: ModuleText,
    },
    #[cfg(feature = "registry")]
    /// A module depends on a version of another that is not the one
    /// loaded (or found).
    Dependency {
        /// `app needs lib`.
        names: ModuleText,
        /// The versions it accepts.
        want: crate::meta::VersionRange,
        /// The version there is (0.0.0 for a module without metadata).
        have: crate::meta::Version,
    },
    #[cfg(feature = "registry")]
    /// Imports that neither the host nor any loaded module provides.
    Unresolved {
        /// How many.
        count: u32,
        /// Their names, comma-separated (without `alloc`, as many as fit).
        names: SymName,
    },
    /// The memory provider could not supply or protect memory.
    Memory {
        /// What failed.
        what: &'static str,
        /// Bytes asked for, if an allocation failed.
        size: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadMagic { magic } => write!(
                f,
                "not dynamic object file or wrong platform (magic {magic:#010x})"
            ),
            Error::WrongArch { found, want } => write!(
                f,
                "not dynamic object file or wrong platform (module for {found}, loader for {want})"
            ),
            Error::BadVersion { version } => {
                write!(f, "unsupported module format version {version}")
            }
            Error::BadHeader { what } => write!(f, "bad module header: {what}"),
            Error::TooBig { size, .. } => write!(f, "{size}: object too big"),
            Error::Limit { what, count, max } => {
                write!(f, "implausible {what}: {count} (limit {max})")
            }
            Error::Truncated { what } => write!(f, "premature end of module reading {what}"),
            Error::Read => f.write_str("read error"),
            Error::Seek => f.write_str("seek error"),
            Error::BadName {
                table,
                index,
                problem,
            } => write!(f, "bad {table} table entry {index}: {problem}"),
            Error::Unsorted { table, name } => {
                write!(f, "{table} table not sorted at: {name}")
            }
            Error::Duplicate { table, name } => {
                write!(f, "duplicate symbol in {table} table: {name}")
            }
            Error::BadExport { name, value } => {
                write!(f, "export outside module: {name} ({value:#x})")
            }
            Error::Undefined { name } => write!(f, "undefined symbol: {name}"),
            #[cfg(feature = "registry")]
            Error::NoModule { name } => write!(f, "no module loaded as {name}"),
            #[cfg(feature = "registry")]
            Error::Busy { name, what } => write!(f, "module {} is {what}", Escaped::new(name)),
            #[cfg(feature = "registry")]
            Error::InUse {
                name,
                holds,
                dependents,
                by,
            } => {
                write!(
                    f,
                    "module {} in use: {holds} hold{}, {dependents} dependent{}",
                    Escaped::new(name),
                    if *holds == 1 { "" } else { "s" },
                    if *dependents == 1 { "" } else { "s" }
                )?;
                if *dependents != 0 {
                    write!(f, " ({})", Escaped::new(by))?;
                }
                Ok(())
            }
            #[cfg(feature = "registry")]
            #[cfg(all(feature = "registry", feature = "alloc"))]
            Error::Clash { name, names, .. } => write!(
                f,
                "module {} exports {name}, which {} already exports",
                Escaped::new(&names.0),
                Escaped::new(&names.1)
            ),
            #[cfg(all(feature = "registry", not(feature = "alloc")))]
            Error::Clash { name, other, .. } => {
                if *other == crate::Provider::HOST {
                    write!(f, "module exports {name}, which the host already exports")
                } else {
                    write!(
                        f,
                        "module exports {name}, which module id {} already exports",
                        other.0
                    )
                }
            }
            #[cfg(feature = "registry")]
            Error::NotFound { name } => write!(f, "module {name} not found"),
            #[cfg(feature = "registry")]
            Error::Abi {
                module,
                class,
                want,
                have,
            } => {
                write!(
                    f,
                    "module {} requires ABI {} {}.{}; the host offers ",
                    Escaped::new(module),
                    Escaped::new(class),
                    want.0,
                    want.1
                )?;
                match have {
                    Some((a, b)) => write!(f, "{} {a}.{b}", Escaped::new(class)),
                    None => write!(f, "no {} ABI", Escaped::new(class)),
                }
            }
            #[cfg(feature = "registry")]
            Error::Setup { module, code } => write!(
                f,
                "module {} refused its setup with code {code}",
                Escaped::new(module)
            ),
            #[cfg(feature = "registry")]
            Error::Cycle { names } => write!(f, "dependency cycle: {}", Escaped::new(names)),
            #[cfg(feature = "registry")]
            Error::Misnamed { names } => {
                write!(f, "module found as {}", Escaped::new(names))
            }
            #[cfg(feature = "registry")]
            Error::Dependency { names, want, have } => {
                write!(f, "{} {want}, but has {have}", Escaped::new(names))
            }
            #[cfg(feature = "registry")]
            Error::Unresolved { count, names } => write!(
                f,
                "undefined symbol{}: {names}",
                if *count == 1 { "" } else { "s" }
            ),

            Error::SigMismatch {
                name,
                want,
                have,
                provider,
                #[cfg(feature = "alloc")]
                detail,
            } => {
                #[cfg(feature = "alloc")]
                let (want_desc, have_desc, module) = match detail {
                    Some(d) => (
                        d.want_desc.as_deref(),
                        d.have_desc.as_deref(),
                        d.module.as_deref(),
                    ),
                    None => (None, None, None),
                };
                #[cfg(not(feature = "alloc"))]
                let (want_desc, have_desc, module) = (None::<&str>, None::<&str>, None::<&str>);
                if let Some(m) = module {
                    write!(f, "{}: ", crate::Escaped::new(m))?;
                }
                // A lookup in a module: the caller wants, the module has.
                let lookup = *provider == crate::Provider::MODULE;
                write!(f, "signature mismatch: {name}: ")?;
                f.write_str(if lookup {
                    "caller wants "
                } else {
                    "module wants "
                })?;
                match want_desc {
                    Some(d) => write!(f, "{d} ({want:#010x})")?,
                    None => write!(f, "{want:#010x}")?,
                }
                if lookup {
                    f.write_str(", module has ")?;
                } else if *provider == crate::Provider::HOST {
                    f.write_str(", host has ")?;
                } else {
                    write!(f, ", provider {} has ", provider.0)?;
                }
                match have_desc {
                    Some(d) => write!(f, "{d} ({have:#010x})"),
                    None => write!(f, "{have:#010x}"),
                }
            }
            Error::Unchecked { name } => write!(
                f,
                "export has no signature, its type cannot be checked: {name}"
            ),
            Error::NoAutoload => f.write_str("autoload stub called before stub::set_autoload"),
            Error::StubReentered => f.write_str("autoload stub reached while its own module loads"),
            Error::StubVersion => f.write_str("stub module's version range malformed"),
            Error::LateBind { name } => write!(
                f,
                "import patched in the text cannot be bound after loading: {name}"
            ),
            Error::BadTable { kind, what } => {
                write!(f, "bad {} table: {what}", kind::name(*kind))?;
                if !kind::known(*kind) {
                    write!(f, " (kind {kind})")?;
                }
                Ok(())
            }
            Error::UnknownTable { kind } => write!(
                f,
                "module needs a table this loader does not know (kind {kind})"
            ),
            Error::BadFunction { kind, index, value } => write!(
                f,
                "{} entry {index} outside the text ({value:#x})",
                if *kind == kind::INIT {
                    "constructor"
                } else {
                    "destructor"
                }
            ),
            Error::BadIndex { table, what } => write!(f, "bad {table} hash index: {what}"),
            Error::BadReloc { index, what } => write!(f, "bad relocation {index}: {what}"),
            Error::BadRelocMode { index, mode, arch } => {
                write!(
                    f,
                    "bad relocation {index}: mode {mode} undefined for {arch}"
                )
            }
            Error::RelocOutOfImage { index, offset } => {
                write!(
                    f,
                    "bad relocation {index}: offset {offset:#x} outside text and data"
                )
            }
            Error::BadImportIndex {
                index,
                import,
                nimport,
            } => write!(
                f,
                "bad relocation {index}: import {import} out of range ({nimport} imports)"
            ),
            Error::RelocOverflow { index, offset } => write!(
                f,
                "bad relocation {index}: value out of range for field at {offset:#x}"
            ),
            Error::ImportOutOfReach { name, mode, offset } => write!(
                f,
                "import {name} out of reach of its {mode} reference at {offset:#x}"
            ),
            Error::Memory { what, size } => {
                if *size != 0 {
                    write!(f, "{what}: {size} bytes")
                } else {
                    f.write_str(what)
                }
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
