//! Load relocatable code modules into a running program: a port of Plan 9 /
//! Inferno `dynld` for kernels and firmware, with type-checked imports.
//!
//! A *module* is a Plan 9 a.out variant holding text, data, a name-sorted
//! export table, a name-sorted import table whose entries carry 32-bit type
//! signatures, compact relocation streams, and the module's constructors
//! and destructors, in tables that a directory after the header lists
//! (format version 2, see `dynld-module(5)`). The loader reads it through
//! caller-supplied callbacks ([`Source`]), places it in caller-supplied
//! memory ([`Memory`]), binds its imports against the program's
//! [`ExportTable`] or any [`Resolver`] — refusing any whose signatures
//! differ — applies the relocations, and makes the text executable. It runs
//! none of the module's code.
//!
//! Nothing in a module is trusted: every count, offset, size, index and name
//! is checked before use, tables are verified sorted, and no write lands
//! outside the module's own memory. Every failure is a typed [`Error`] whose
//! `Display` reads like Plan 9's error strings, and the source is put back
//! where it was.
//!
//! A loaded [`Module`] owns its memory. [`Module::init`] runs its
//! constructors, once; [`Module::get`] gives a typed [`Symbol`], checked
//! against the export's signature and unable to outlive the module;
//! dropping the module runs its destructors (if `init` ran), then the exit
//! handlers its code registered ([`runtime`]), then gives its memory back.
//!
//! Two layers over one implementation:
//!
//! * Plan 9 names ([`dynloadgen`], [`dynloadfd`], [`dynimport`],
//!   [`dynfindsym`], [`dyntabsize`], [`dynfreeimport`], [`dynobjfree`],
//!   [`dynloadable`]) for code ported from Inferno;
//! * [`Loader`], [`Module`], [`Symbol`], [`Resolver`], [`ExportTable`],
//!   [`Source`] for new code.
//!
//! ```no_run
//! # #[cfg(all(feature = "std", unix))] {
//! use dynld::{signof, Dynsym, ExportTable, Loader, MMAP};
//!
//! extern "C" fn kprint(x: i32) -> i32 { println!("{x}"); 0 }
//! static HOST: [Dynsym; 1] =
//!     [Dynsym::new("kprint", signof!("fn(int) int"), kprint as *const ())];
//!
//! let file = std::fs::File::open("hello.dl").unwrap();
//! let mut m = Loader::new(ExportTable::new_const(&HOST), &MMAP)
//!     .load(&mut dynld::IoSource(file))
//!     .unwrap();
//! m.init(); // its constructors
//! let main = m.get::<extern "C" fn() -> i32>("main").unwrap();
//! main.call();
//! // Dropping `m` runs its destructors and exit handlers, then gives its
//! // memory back.
//! # }
//! ```
//!
//! Features: `std` (`dynloadfd`, `std::io` sources, mmap W^X provider;
//! default), `alloc` (heap memory provider, module writer, whole names,
//! type descriptions and the module's name in errors; implied by `std`),
//! `cross` (relocation for every architecture, not only the one built
//! for; implied by `std`), `embedded-io` (sources over
//! `embedded_io::Read + Seek`), `index` (hash indexes, a module's own and
//! the host table's; default), `fast-reloc` (the relocation loop's fast
//! path; default), `atexit` (each module's own exit handlers, run at its
//! unload, see `runtime`; default: without it `__cxa_atexit` is bound like
//! any import, which saves a kernel whose modules register none the code
//! and the handler list), `descs` (type descriptions, shown in
//! signature-mismatch messages with `alloc` and by
//! [`Module::export_desc`]; default: without it a module's descriptions
//! are skipped unread, as its index is without `index`), `symbols` (the
//! symbols table, local symbols included, through which
//! [`Module::symbol_at`] names the function or object an address falls
//! in by a binary search, and [`Module::symbols`]; default: without it the
//! table is skipped unread and `symbol_at` scans the exports), `gdb`
//! (gdb's JIT interface: every module a registry loads is made known to
//! gdb, with its unwind table and debug file when it names them; see
//! [`gdb`]; default, unix), `modlist` (the loaded modules in a list at
//! `dynld_modules` for a debugger attached to a kernel; see
//! `modlist`). Messages of a registry go to a [`Log`], a [`Putbuf`]
//! without an allocator (see [`log`]). With
//! `default-features = false`, the minimal configuration, modules load
//! into an [`Arena`] over a caller's buffer, with no allocator.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod arch;
mod bind;
mod check;
mod error;
mod escape;
pub mod format;
#[cfg(all(feature = "gdb", unix))]
pub mod gdb;
pub mod index;
mod limits;
mod load;
pub mod log;
pub mod memory;
pub mod meta;
#[cfg(all(feature = "std", unix))]
mod mmap;
#[cfg(feature = "modlist")]
pub mod modlist;
mod module;
mod plan9;
#[cfg(feature = "registry")]
mod registry;
mod reloc;
#[cfg(feature = "atexit")]
pub mod runtime;
#[cfg(all(feature = "registry", feature = "std", unix))]
mod search;
pub mod sig;
mod source;
#[cfg(all(
    feature = "stubs",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "riscv32",
        target_arch = "arm"
    )
))]
pub mod stub;
mod symbol;
mod sync;
mod table;
#[cfg(feature = "registry")]
pub mod trap;
mod view;
#[cfg(feature = "alloc")]
mod write;

pub use bind::{Chain, Provider, Resolution, Resolver};
#[cfg(feature = "alloc")]
pub use error::Mismatch;
#[cfg(feature = "registry")]
pub use error::ModuleText;
pub use error::{Error, NameProblem, SymName, Table};
pub use escape::Escaped;
pub use format::Arch;
pub use limits::{Limits, MAX_NAME};
pub use load::Loader;
pub use log::{Event, Log, Putbuf};
pub use memory::{Arena, Memory, Region, Seal};
#[cfg(feature = "alloc")]
pub use memory::{HeapMemory, HEAP};
#[cfg(all(feature = "std", unix))]
pub use memory::{MmapMemory, MMAP};
pub use meta::{Abi, Metadata, SetupOption, Version, VersionRange};
pub use module::{Import, Module, ModuleExports, SymbolAt, SymbolInfo};
#[cfg(feature = "std")]
pub use plan9::dynloadfd;
#[cfg(feature = "alloc")]
pub use plan9::{default_memory, dynloadgen};
pub use plan9::{
    dynfindsym, dynfreeimport, dynimport, dynloadable, dynobjfree, dyntabsize, Dynobj,
};
#[cfg(all(feature = "registry", feature = "alloc"))]
pub use registry::Growable;
#[cfg(feature = "registry")]
pub use registry::{
    ErasedHold, Finder, Fixed, Found, Func, Held, LoadOptions, Location, ModuleInfo, ModuleName,
    Registry, State, Storage, SymbolEntry, Which, MODULE_NAME_MAX,
};
#[cfg(all(feature = "registry", feature = "std", unix))]
pub use search::SearchPath;
pub use sig::Signof;
#[cfg(feature = "embedded-io")]
pub use source::EmbeddedSource;
#[cfg(all(feature = "std", unix))]
pub use source::FileSource;
#[cfg(feature = "std")]
pub use source::IoSource;
pub use source::{FnSource, SliceSource, Source, SEEK_CUR, SEEK_SET};
pub use symbol::Symbol;
pub use table::{Dynsym, ExportTable};
pub use view::{FileSym, ModuleView};
#[cfg(feature = "alloc")]
pub use write::ModuleBuilder;
