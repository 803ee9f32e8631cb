//! `aout link`: ELF relocatable objects and archives in, one dynld module out.
//!
//! The linker does all the work it can: it resolves symbols (pulling archive
//! members on demand, keeping one copy of each COMDAT group, allocating
//! common symbols), drops sections nothing reachable from the exports uses,
//! lays out text, data and bss, resolves every reference inside the module,
//! and makes GOT slots and call stubs for references to imports. What is
//! left for the loader is a handful of relocation modes (see
//! `dynld-module(5)`); a reference it cannot express is an error naming the
//! object, section, offset and relocation type.
//!
//! [`link_inputs`] runs the phases in order, each in its own file under
//! `link/`, each handing the next what it made:
//!
//! | file         | phase                                            | makes      |
//! |--------------|--------------------------------------------------|------------|
//! | `inputs.rs`  | archives expanded, objects parsed, architecture  | `Parsed`   |
//! | `resolve.rs` | symbols resolved, members pulled, exports chosen | `Symbols`, `Exports` |
//! | `meta.rs`    | metadata gathered, setup and teardown checked    | `MetaSpec` |
//! | `gc.rs`      | sections reachable from exports and constructors | `Live`     |
//! | `layout.rs`  | sections, islands, stubs, GOT, commons placed    | `Layout`   |
//! | `synth.rs`   | GOT, stubs, veneers, `atexit` written            | `Image`    |
//! | `apply.rs`   | sections copied in, ELF relocations applied      | `Image`    |
//! | `emit.rs`    | the module file through `dynld::ModuleBuilder`   | bytes      |
//! | `map.rs`     | the link map                                     | `MapEntry`s |
//!
//! Beside them: `obj.rs` (questions about an input object), `ctors.rs`
//! (constructor order), `image.rs` (the image and its load-time
//! relocations), `machine.rs` (the per-architecture trait), and the
//! backends `x86_64.rs`, `aarch64.rs`, `arm.rs`, `riscv.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;

mod apply;
mod ctors;
mod debug;
mod emit;
mod gc;
mod image;
pub(crate) mod inputs;
mod layout;
mod machine;
mod map;
mod meta;
mod obj;
mod resolve;
mod synth;
mod unwind;

mod aarch64;
mod arm;
mod riscv;
mod x86_64;

/// What to link and how.
#[derive(Debug, Default)]
pub struct Options {
    /// Objects and archives.
    pub inputs: Vec<PathBuf>,
    /// Export only these names; if `None`, the objects' natural exports:
    /// every global default-visibility symbol (of a Rust object, only the
    /// unmangled ones) and the names the sources state as exports.
    pub exports: Option<BTreeSet<String>>,
    /// Drop sections not reachable from the exports.
    pub gc: bool,
    /// Whether to store a hash index over the exports.
    pub index: IndexMode,
    /// Whether to store the imports' name hashes.
    pub import_hashes: IndexMode,
    /// Where the text starts in the module file.
    pub text_align: TextAlign,
    /// Leave out the symbols table (`--strip-symbols`): the module's
    /// functions and data objects, local ones too, by address.
    pub strip_symbols: bool,
    /// Keep the objects' `.eh_frame` as the module's unwind table
    /// (`--unwind`), for debuggers (x86-64 and AArch64).
    pub unwind: bool,
    /// Also make the debug file (`--debug FILE`), to be written at this
    /// path: the objects' DWARF relocated to the module's layout, in
    /// [`Linked::debug`]; the module names it (path and CRC-32) for
    /// debuggers. A relative path is made absolute.
    pub debug: Option<PathBuf>,
}

/// Where the text starts in the module file (`--text-align`): on a page
/// boundary, a loader can map it from the file instead of copying it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextAlign {
    /// On a 4 KiB boundary for a 64-bit architecture when the text is at
    /// least [`TEXT_ALIGN_AUTO_MIN`] bytes, else right after the header.
    #[default]
    Auto,
    /// On a multiple of this many bytes (a power of two up to 64 KiB; 1
    /// is right after the header).
    Bytes(u32),
}

/// Text size from which `--text-align auto` aligns: below it, copying the
/// text costs less than mapping it, and the padding would be a large part
/// of the file.
pub const TEXT_ALIGN_AUTO_MIN: usize = 64 << 10;

impl std::str::FromStr for TextAlign {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(TextAlign::Auto);
        }
        match s.parse::<u32>() {
            Ok(n) if dynld::format::text_align_ok(n) => Ok(TextAlign::Bytes(n)),
            _ => Err(format!(
                "`{s}`: expected `auto` or a power of two from 1 to {}",
                dynld::format::MAX_TEXT_ALIGN
            )),
        }
    }
}

/// Whether a module gets an optional table: the hash index over its
/// exports (`--index`), its imports' name hashes (`--import-hashes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexMode {
    /// When the module has at least [`INDEX_AUTO_MIN`] exports (for the
    /// index) or [`IMPORT_HASHES_AUTO_MIN`] imports (for the hashes).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Exports from which `--index auto` stores an index: below this, a search
/// of the sorted table is as fast and the index's bytes are not worth it.
pub const INDEX_AUTO_MIN: usize = 32;

/// Imports from which `--import-hashes auto` stores their hashes (8 bytes
/// each): below this, hashing the names as the loader binds them costs
/// next to nothing.
pub const IMPORT_HASHES_AUTO_MIN: usize = 32;

/// A link error: the message names the object, section, offset and
/// relocation where one is involved.
#[derive(Debug)]
pub struct LinkError(pub String);

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! fail {
    ($($t:tt)*) => { return Err(LinkError(format!($($t)*))) };
}
pub(crate) use fail;

/// One input file: its name (for messages) and contents.
pub struct Input {
    /// Shown in messages.
    pub name: String,
    /// The file's bytes: an ELF relocatable object or an archive.
    pub bytes: Vec<u8>,
}

impl Input {
    /// Reads a file by the rule of [`crate::input::read`]: a regular file
    /// whole, a pipe or device at most [`crate::input::MAX_STREAM`] bytes,
    /// a directory not at all. Errors name the path.
    pub fn read(path: &std::path::Path) -> Result<Input, LinkError> {
        let bytes = crate::input::read(path).map_err(LinkError)?;
        Ok(Input {
            name: path.display().to_string(),
            bytes,
        })
    }
}

/// The largest module the linker writes.
pub const MAX_MODULE: u64 = 256 << 20;

/// The linked module.
pub struct Linked {
    /// The module file's bytes.
    pub bytes: Vec<u8>,
    /// Warnings worth showing.
    pub warnings: Vec<String>,
    /// Where each input section and synthesised area went, in image order.
    pub map: Vec<MapEntry>,
    /// The debug file, if [`Options::debug`] asked for it: an ELF file
    /// of the module's symbols, unwind table and DWARF at image offsets.
    pub debug: Option<Vec<u8>>,
}

/// One line of the link map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// Image offset.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
    /// The input (`file` or `archive(member)`), or `*` for what the linker
    /// made itself.
    pub object: String,
    /// The input section's name, or for `*`: `stub NAME`, `abs-stub VALUE`,
    /// `got`, `init`, `common NAME`.
    pub section: String,
}

/// Links the files `opts.inputs` into a module.
pub fn link(opts: &Options) -> Result<Linked, LinkError> {
    let inputs = opts
        .inputs
        .iter()
        .map(|p| Input::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    link_inputs(inputs, opts)
}

/// Links inputs already in memory (`opts.inputs` is not read).
pub fn link_inputs(inputs: Vec<Input>, opts: &Options) -> Result<Linked, LinkError> {
    let files = inputs::expand(inputs)?;
    let inputs::Parsed {
        arch,
        given,
        members,
        mut warnings,
    } = inputs::parse(&files)?;
    let syms = resolve::resolve(given, members, opts.exports.as_ref())?;
    let mut sigs = emit::signatures(&syms.objs)?;
    let meta = meta::metadata(&syms, &mut sigs)?;
    // The setup and teardown functions are exports, named or not.
    let only = opts.exports.clone().map(|mut only| {
        let functions = meta.iter().flat_map(|m| [&m.setup, &m.teardown]);
        only.extend(functions.flatten().cloned());
        only
    });
    let exports = syms.exports(only.as_ref(), &sigs)?;
    let live = gc::live(&syms, &exports, opts.gc)?;
    let m = machine::backend(arch)?;
    let lay = layout::layout(&syms, live, m, arch.word_size() as u64)?;
    let img = synth::synthesize(&lay, m)?;
    let img = apply::relocate(img, &syms, &lay, m, arch)?;
    let unwind = match opts.unwind {
        true => unwind::unwind(&syms, &lay, arch, &mut warnings)?,
        false => None,
    };
    let module = emit::Module {
        arch,
        m,
        syms: &syms,
        exports: &exports,
        sigs: &sigs,
        meta: meta.as_ref(),
        lay: &lay,
        unwind: unwind.as_ref(),
        debuglink: None,
    };
    let mut out = emit::emit(&img, &module, opts)?;
    let mut debug = None;
    if let Some(path) = &opts.debug {
        let file = debug::debug_file(&syms, &lay, arch, &out.bytes, unwind.as_ref())?;
        let path =
            std::path::absolute(path).map_err(|e| LinkError(format!("{}: {e}", path.display())))?;
        let path = path
            .to_str()
            .ok_or_else(|| LinkError(format!("{}: not UTF-8", path.display())))?
            .to_owned();
        // Again, naming the debug file.
        let module = emit::Module {
            debuglink: Some((&path, debug::crc32(&file))),
            ..module
        };
        out = emit::emit(&img, &module, opts)?;
        debug = Some(file);
    }
    warnings.extend(out.warnings);
    Ok(Linked {
        bytes: out.bytes,
        warnings,
        map: map::map(&syms, &lay, m),
        debug,
    })
}
