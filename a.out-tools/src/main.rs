//! `aout`: link, inspect and run dynld modules.

mod lines;
mod run;
mod shell;

use aout_tools::{exports, input, link, stubs};

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use dynld::{arch, format, Escaped, Limits, ModuleView};
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "aout", version, about = "Link, inspect and run dynld modules")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Link ELF relocatable objects and archives into a module.
    Link {
        /// The module to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Export only this symbol (repeatable).
        #[arg(long = "export", value_name = "NAME")]
        export: Vec<String>,
        /// Export only the symbols named in this file, one per line.
        #[arg(long, value_name = "FILE")]
        export_list: Vec<PathBuf>,
        /// Keep every allocated section, reachable from the exports or not.
        #[arg(long)]
        no_gc: bool,
        /// Write the image layout here: one line per input section and
        /// synthesised area (`OFFSET SIZE OBJECT SECTION`, hexadecimal).
        #[arg(long, value_name = "FILE")]
        map: Option<PathBuf>,
        /// Store a hash index over the exports.
        #[arg(long, value_name = "WHEN", default_value = "auto",
              value_parser = index_mode(format!(
                  "When the module has at least {} exports", link::INDEX_AUTO_MIN)))]
        index: link::IndexMode,
        /// Store each import's name hash (8 bytes an import), which spares
        /// a loader binding through a host's hash index from hashing the
        /// names.
        #[arg(long, value_name = "WHEN", default_value = "auto",
              value_parser = index_mode(format!(
                  "When the module has at least {} imports", link::IMPORT_HASHES_AUTO_MIN)))]
        import_hashes: link::IndexMode,
        /// Start the text at a multiple of this many bytes in the file (a
        /// power of two up to 65536), so that a loader can map it: `auto`
        /// uses 4096 for a 64-bit architecture when the text is at least
        /// 64 KiB, and 1 (no padding) otherwise.
        #[arg(long, value_name = "BYTES", default_value = "auto")]
        text_align: link::TextAlign,
        /// Leave out the symbols table (every function and data object,
        /// static ones too, by address), through which a loader names
        /// the symbol an address falls in; without it, only the exports
        /// can be named.
        #[arg(long)]
        strip_symbols: bool,
        /// Keep the objects' unwind information (.eh_frame) as the
        /// module's unwind table, which a loader hands to a debugger so
        /// that a backtrace goes through module frames (x86-64, AArch64).
        #[arg(long)]
        unwind: bool,
        /// Also write FILE: an ELF file of the module's DWARF (from
        /// objects compiled with -g), symbols and unwind table at image
        /// offsets, for `add-symbol-file FILE -o BASE` in gdb and for
        /// `aout addr2line --debug`.
        #[arg(long, value_name = "FILE")]
        debug: Option<PathBuf>,
        /// Objects (.o) and archives (.a).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Generate a host export table from a list of names and type
    /// descriptions, or from the host's own objects or executable.
    Exports {
        /// Output language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: exports::Lang,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// From ELF files: keep names starting with `_` too.
        #[arg(long)]
        all: bool,
        /// A list (`NAME [DESC]` per line; standard input if none given),
        /// or ELF objects, archives and executables.
        inputs: Vec<PathBuf>,
    },
    /// Write a host's autoload stub table for a module, from a description
    /// file (module, stub, ustub and wstub statements), as Rust or as C.
    Stubs {
        /// Output language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: exports::Lang,
        /// Rust: the file (standard output if absent). C: the header's path
        /// ending in `.h`, the source going beside it as `.c` (default
        /// `MODULE_stubs.h`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The description file.
        file: PathBuf,
    },
    /// Load a module into this process and call FUNCTION with integer arguments.
    Run {
        /// Load this module first and add its exports to the host's (repeatable).
        #[arg(long, value_name = "MODULE")]
        export_from: Vec<PathBuf>,
        /// Load the module through a registry that finds the modules its
        /// metadata declares as dependencies as DIR/NAME.dl, and loads
        /// them first (repeatable: searched in order).
        #[arg(long = "path", value_name = "DIR")]
        path: Vec<PathBuf>,
        /// Load the module through a registry that offers ABI CLASS at
        /// MAJOR.MINOR (repeatable): one requiring an ABI not offered is
        /// refused.
        #[arg(long = "abi", value_name = "CLASS:MAJOR.MINOR", value_parser = shell::parse_abi)]
        abi: Vec<shell::AbiOffer>,
        /// How to print the result.
        #[arg(long, value_enum, default_value = "i32")]
        ret: run::Ret,
        /// The module.
        module: PathBuf,
        /// The exported function to call.
        function: String,
        /// Up to six integer arguments (decimal, or hex with 0x, either
        /// with a leading -). Options go before the module: from the first
        /// argument on, every word is an argument.
        #[arg(allow_hyphen_values = true, value_parser = parse_int)]
        args: Vec<i64>,
    },
    /// Print a module's headers, sizes, tables and relocation counts per mode.
    Dump {
        /// List every relocation.
        #[arg(long)]
        relocs: bool,
        /// List the symbols table (`OFFSET SIZE KIND NAME`, hexadecimal;
        /// KIND is T, D or B, lower case for a local symbol).
        #[arg(long)]
        symbols: bool,
        /// The module file.
        module: PathBuf,
    },
    /// Name the function or object each address falls in, as
    /// `NAME+OFFSET`: module-relative addresses, or loaded ones with
    /// --base.
    Addr2line {
        /// The address the module was loaded at (its text's first byte):
        /// the addresses are then loaded addresses, not image offsets.
        #[arg(long, value_name = "ADDR", value_parser = parse_int)]
        base: Option<i64>,
        /// The module's debug file (aout link --debug): also print the
        /// file and line of each address.
        #[arg(long, value_name = "FILE")]
        debug: Option<PathBuf>,
        /// The module file.
        module: PathBuf,
        /// The addresses (decimal, or hex with 0x).
        #[arg(required = true, value_parser = parse_int)]
        addrs: Vec<i64>,
    },
    /// List a module's exports and imports, nm-style.
    Nm {
        /// The module file.
        module: PathBuf,
    },
    /// Load, hold, unload and call modules in this process by commands, one
    /// a line (see aout(1)).
    Shell {
        /// Find a module loaded by name (`load NAME`), and the dependencies
        /// modules declare, as DIR/NAME.dl (repeatable: searched in
        /// order).
        #[arg(long = "path", value_name = "DIR")]
        path: Vec<PathBuf>,
        /// Offer ABI CLASS at MAJOR.MINOR to modules (repeatable): a
        /// module requiring an ABI the shell does not offer is refused.
        #[arg(long = "abi", value_name = "CLASS:MAJOR.MINOR", value_parser = shell::parse_abi)]
        abi: Vec<shell::AbiOffer>,
        /// The commands; standard input if absent or `-`.
        script: Option<PathBuf>,
    },
}

/// The values of `--index` and `--import-hashes`, `auto` described by
/// `auto`: each option states its own threshold (the variants' doc comments
/// speak of both).
fn index_mode(auto: String) -> impl TypedValueParser<Value = link::IndexMode> {
    PossibleValuesParser::new([
        PossibleValue::new("auto").help(auto),
        PossibleValue::new("always").help("Always"),
        PossibleValue::new("never").help("Never"),
    ])
    .map(|s| match s.as_str() {
        "always" => link::IndexMode::Always,
        "never" => link::IndexMode::Never,
        _ => link::IndexMode::Auto,
    })
}

/// Why a command stopped early.
enum Stop {
    /// An error, reported on standard error.
    Error(String),
    /// Standard output was closed: nothing more can be said, and nothing
    /// went wrong.
    Closed,
    /// Something failed and was reported already (a command of `aout
    /// shell`, on its error line).
    Failed,
}

impl From<String> for Stop {
    fn from(e: String) -> Stop {
        Stop::Error(e)
    }
}

/// A failed write to standard output.
fn output_error(e: std::io::Error) -> Stop {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Stop::Closed
    } else {
        Stop::Error(format!("standard output: {e}"))
    }
}

/// `writeln!` to standard output, stopping the command when it fails.
macro_rules! out {
    ($w:expr, $($t:tt)*) => {
        writeln!($w, $($t)*).map_err(output_error)?
    };
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    input::read(path)
}

fn view<'a>(path: &Path, bytes: &'a [u8]) -> Result<ModuleView<'a>, String> {
    ModuleView::parse(bytes, &Limits::DEFAULT).map_err(|e| format!("{}: {e}", path.display()))
}

/// `T` for text, `D` for data, `B` for bss.
fn kind(v: &ModuleView<'_>, value: u32) -> char {
    let value = value as usize;
    let dataoff = v.data_offset();
    if value < v.text_size() {
        'T'
    } else if value < dataoff + v.exec().data as usize {
        'D'
    } else {
        'B'
    }
}

fn dump(out: &mut impl Write, path: &Path, relocs: bool, symbols: bool) -> Result<(), Stop> {
    let bytes = read(path)?;
    let v = view(path, &bytes)?;
    let (e, h) = (v.exec(), v.header());
    out!(
        out,
        "{}: dynld module, format version {}, {}",
        path.display(),
        h.version,
        v.arch()
    );
    out!(out, "magic   {:#010x}", e.magic);
    out!(
        out,
        "text    {:#x} ({} bytes) at 0, file offset {:#x}",
        e.text,
        e.text,
        v.text_offset()
    );
    out!(
        out,
        "data    {:#x} ({} bytes) at {:#x}",
        e.data,
        e.data,
        h.dataoff
    );
    out!(out, "bss     {:#x} ({} bytes)", e.bss, e.bss);
    out!(out, "image   {} bytes, align {}", v.image_size(), h.align);
    out!(
        out,
        "flags   {:#x}, extension header {} bytes, {} tables",
        h.flags,
        h.hdrsize,
        h.ntable
    );
    for t in v.tables() {
        let name = if format::kind::known(t.kind) {
            format::kind::name(t.kind).to_owned()
        } else {
            format!("kind {} (unknown, optional)", t.kind)
        };
        out!(
            out,
            "  {name:<20} {:>8} bytes at {:#x}, {} entries{}",
            t.size,
            t.offset,
            t.count,
            if t.flags & format::TABLE_REQUIRED != 0 {
                ", required"
            } else {
                ""
            }
        );
    }
    let (nexport, nimport) = (v.exports().count(), v.imports().count());
    out!(out, "exports {nexport}");
    out!(out, "imports {nimport}");
    if let Some(hashes) = v.import_hashes() {
        let wrong = v
            .imports()
            .zip(hashes)
            .filter(|(i, h)| dynld::index::hash(i.name.as_bytes()) != *h)
            .count();
        out!(
            out,
            "hashes  {nimport} import name hash{}{}",
            if nimport == 1 { "" } else { "es" },
            match wrong {
                0 => String::new(),
                n => format!(", {n} of them wrong (the loader hashes those names itself)"),
            }
        );
    }
    let offsets = |it: &mut dyn Iterator<Item = u32>| {
        it.map(|o| format!("{o:#x}")).collect::<Vec<_>>().join(" ")
    };
    match v.init_offsets().count() {
        0 => out!(out, "init    none"),
        n => out!(out, "init    {n}: {}", offsets(&mut v.init_offsets())),
    }
    match v.fini_offsets().count() {
        0 => out!(out, "fini    none"),
        n => out!(out, "fini    {n}: {}", offsets(&mut v.fini_offsets())),
    }
    let typed = v
        .exports()
        .chain(v.imports())
        .filter(|s| s.desc.is_some())
        .count();
    if typed != 0 {
        out!(
            out,
            "types   {typed} of {} symbols described",
            nexport + nimport
        );
    }
    match metadata_lines(&v) {
        lines if lines.is_empty() => out!(out, "metadata none"),
        lines => {
            out!(out, "metadata:");
            for l in lines {
                out!(out, "  {l}");
            }
        }
    }
    out!(
        out,
        "relocs  {} base, {} import",
        v.relocs().count(),
        v.import_relocs().count()
    );
    match v.index_slots() {
        0 => out!(out, "index   none"),
        n => out!(out, "index   {n} slots"),
    }
    match v.symbols().count() {
        0 => out!(out, "symbols none"),
        n => out!(
            out,
            "symbols {n} ({} local)",
            v.symbols().filter(|s| !s.exported).count()
        ),
    }
    if let Some((at, cfi)) = v.unwind() {
        out!(
            out,
            "unwind  {} bytes, linked at image offset {at:#x}",
            cfi.len()
        );
    }
    if let Some((crc, path)) = v.debuglink() {
        out!(out, "debug   {} (crc {crc:#010x})", Escaped::new(path));
    }
    let modes = arch::modes(v.arch());
    let mut counts = vec![0usize; modes.len()];
    for (r, _) in v.all_relocs() {
        if let Some(i) = modes.iter().position(|m| m.number == r.mode) {
            counts[i] += 1;
        }
    }
    for (m, n) in modes.iter().zip(&counts) {
        if *n > 0 {
            out!(out, "  {:<12} {n}", m.name);
        }
    }
    if relocs {
        let imports: Vec<_> = v.imports().collect();
        for (r, mode) in v.all_relocs() {
            let name = mode.name;
            match r.import {
                Some(i) => out!(
                    out,
                    "{:08x} {name:<12} {}",
                    r.offset,
                    imports
                        .get(i as usize)
                        .map_or(Escaped::new("?"), |s| Escaped::new(s.name))
                ),
                None => out!(out, "{:08x} {name}", r.offset),
            }
        }
    }
    if symbols {
        for s in v.symbols() {
            let k = kind(&v, s.value);
            out!(
                out,
                "{:08x} {:8x} {} {}",
                s.value,
                s.size,
                if s.exported {
                    k
                } else {
                    k.to_ascii_lowercase()
                },
                Escaped::new(s.name)
            );
        }
    }
    Ok(())
}

/// The module's metadata, one statement a line (none without metadata):
/// `module NAME VERSION class CLASS`, `abi CLASS MAJOR.MINOR`, `depends
/// NAME RANGE`, `setup FUNCTION`, `teardown FUNCTION`.
fn metadata_lines(v: &ModuleView<'_>) -> Vec<String> {
    let Some(m) = v.metadata() else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "module {} {} class {}",
        Escaped::new(m.name()),
        m.version(),
        Escaped::new(m.class())
    )];
    lines.extend(
        m.abis()
            .map(|a| format!("abi {}", Escaped::new(&a.to_string()))),
    );
    lines.extend(
        m.dependencies()
            .map(|d| format!("depends {} {}", Escaped::new(d.name), d.range)),
    );
    let export = |i: usize| {
        v.exports()
            .nth(i)
            .map_or_else(|| format!("#{i}"), |s| Escaped::new(s.name).to_string())
    };
    lines.extend(m.setup().map(|i| format!("setup {}", export(i))));
    lines.extend(m.teardown().map(|i| format!("teardown {}", export(i))));
    lines
}

fn nm(out: &mut impl Write, path: &Path) -> Result<(), Stop> {
    let bytes = read(path)?;
    let v = view(path, &bytes)?;
    for s in v.exports() {
        out!(
            out,
            "{:016x} {} {} sig={:#010x}",
            s.value,
            kind(&v, s.value),
            Escaped::new(s.name),
            s.sig
        );
    }
    for s in v.imports() {
        out!(
            out,
            "{:16} U {} sig={:#010x}",
            "",
            Escaped::new(s.name),
            s.sig
        );
    }
    // After the symbols, the metadata, each line marked as no symbol's.
    for l in metadata_lines(&v) {
        out!(out, "# {l}");
    }
    Ok(())
}

/// Where image offset `off` of the module `v` falls: `NAME+0xOFF` in the
/// symbols table's symbol that holds it (its exports' nearest below
/// without a table, whose extents are unknown), `text+0xOFF` or the like
/// in no symbol, `None` outside the image.
fn place(v: &ModuleView<'_>, off: u64) -> Option<String> {
    if off >= v.image_size() as u64 {
        return None;
    }
    let syms: Vec<_> = v.symbols().collect();
    let found = if syms.is_empty() {
        // The exports: code ones on ARM carry the Thumb bit.
        let text = v.text_size() as u64;
        let thumb = v.arch() == dynld::Arch::Arm;
        v.exports()
            .map(|s| {
                let val = u64::from(s.value);
                let val = if thumb && val < text { val & !1 } else { val };
                (s.name, val)
            })
            .filter(|&(_, val)| val <= off)
            .max_by_key(|&(_, val)| val)
    } else {
        // Sorted by value, an exported one last among those at a value.
        let at = syms.partition_point(|s| u64::from(s.value) <= off);
        at.checked_sub(1)
            .and_then(|i| syms.get(i))
            .filter(|s| off < u64::from(s.value) + u64::from(s.size))
            .map(|s| (s.name, u64::from(s.value)))
    };
    Some(match found {
        Some((name, val)) => format!("{}+{:#x}", Escaped::new(name), off - val),
        None => {
            let (part, start) = match kind(v, off as u32) {
                'T' => ("text", 0),
                'D' => ("data", v.data_offset() as u64),
                _ => ("bss", (v.data_offset() + v.exec().data as usize) as u64),
            };
            format!("?? ({part}+{:#x})", off - start)
        }
    })
}

/// `aout addr2line`: each address, then where it falls (see [`place`]).
fn addr2line(
    out: &mut impl Write,
    path: &Path,
    base: Option<u64>,
    debug: Option<&Path>,
    addrs: &[i64],
) -> Result<(), Stop> {
    let bytes = read(path)?;
    let v = view(path, &bytes)?;
    let lines = match debug {
        Some(d) => {
            let b = read(d)?;
            Some(lines::Lines::read(&b).map_err(|e| format!("{}: {e}", d.display()))?)
        }
        None => None,
    };
    for &a in addrs {
        let a = a as u64;
        let off = match base {
            Some(b) => a.checked_sub(b),
            None => Some(a),
        };
        let line = match (&lines, off) {
            (Some(l), Some(off)) => match l.at(off) {
                Some((file, line)) => format!(" at {}:{line}", Escaped::new(file)),
                None => " at ??:0".into(),
            },
            _ => String::new(),
        };
        match off.and_then(|off| place(&v, off)) {
            Some(p) => out!(out, "{a:#x} {p}{line}"),
            None => out!(out, "{a:#x} ?? (outside the module)"),
        }
    }
    Ok(())
}

/// `aout link`: `opts` has everything but the exports, which come from
/// `export` and the `export_list` files.
fn link_cmd(
    output: &Path,
    export: &[String],
    export_list: &[PathBuf],
    map: Option<&Path>,
    debug: Option<&Path>,
    mut opts: link::Options,
) -> Result<(), String> {
    let mut names: BTreeSet<String> = export.iter().cloned().collect();
    for f in export_list {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        names.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    opts.exports = (!export.is_empty() || !export_list.is_empty()).then_some(names);
    // Link messages carry names from the objects: escaped like any other.
    let linked = link::link(&opts).map_err(|e| Escaped::new(&e.to_string()).to_string())?;
    for w in &linked.warnings {
        report(&format!("warning: {}", Escaped::new(w)));
    }
    if let Some(m) = map {
        let text: String = linked
            .map
            .iter()
            .map(|e| format!("{:#x} {:#x} {} {}\n", e.offset, e.size, e.object, e.section))
            .collect();
        std::fs::write(m, text).map_err(|e| format!("{}: {e}", m.display()))?;
    }
    if let (Some(d), Some(bytes)) = (debug, &linked.debug) {
        std::fs::write(d, bytes).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(output, &linked.bytes).map_err(|e| format!("{}: {e}", output.display()))
}

fn stubs_cmd(
    out: &mut impl Write,
    lang: exports::Lang,
    output: Option<&Path>,
    file: &Path,
) -> Result<(), Stop> {
    let text = String::from_utf8(input::read(file)?)
        .map_err(|_| format!("{}: not text", file.display()))?;
    let f = stubs::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let source = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let write = |p: &Path, text: &str| {
        std::fs::write(p, text).map_err(|e| Stop::Error(format!("{}: {e}", p.display())))
    };
    match lang {
        exports::Lang::Rust => {
            let src = stubs::rust(&f, &source)?;
            match output {
                Some(p) => write(p, &src),
                None => out.write_all(src.as_bytes()).map_err(output_error),
            }
        }
        exports::Lang::C => {
            let h = output.map_or_else(
                || PathBuf::from(format!("{}_stubs.h", f.module)),
                Path::to_path_buf,
            );
            if h.extension().is_none_or(|e| e != "h") {
                return Err(format!("{}: the C header's name must end in .h", h.display()).into());
            }
            let name = h
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (header, source_c) = stubs::c(&f, &source, &name)?;
            write(&h, &header)?;
            write(&h.with_extension("c"), &source_c)
        }
    }
}

fn exports_cmd(
    out: &mut impl Write,
    lang: exports::Lang,
    output: Option<&Path>,
    inputs: &[PathBuf],
    all: bool,
) -> Result<(), Stop> {
    let files = inputs
        .iter()
        .map(|p| link::Input::read(p).map_err(|e| e.0))
        .collect::<Result<Vec<_>, _>>()?;
    let binary = files
        .iter()
        .filter(|f| exports::is_binary(&f.bytes))
        .count();
    let syms = if binary == 0 && files.len() <= 1 {
        let text = match files.into_iter().next() {
            Some(f) => String::from_utf8(f.bytes).map_err(|_| format!("{}: not text", f.name))?,
            None => std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?,
        };
        exports::parse(&text)?
    } else if binary == files.len() {
        let got = exports::from_elf(files, all)?;
        for w in &got.warnings {
            report(&format!("warning: {}", Escaped::new(w)));
        }
        got.syms
    } else {
        return Err(
            "give either one list of names or ELF files (objects, archives, executables), not both"
                .to_string()
                .into(),
        );
    };
    let src = exports::render(&syms, lang)?;
    match output {
        Some(p) => std::fs::write(p, src).map_err(|e| Stop::Error(format!("{}: {e}", p.display()))),
        None => out.write_all(src.as_bytes()).map_err(output_error),
    }
}

/// An argument of `aout run`: decimal, or hexadecimal with `0x`, either
/// with a leading `-`, from -2^63 to 2^64-1 (those past 2^63-1 pass as
/// their 64-bit pattern, for `--ret u64`).
fn parse_int(s: &str) -> Result<i64, String> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s),
    };
    let magnitude = match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    }
    .map_err(|e| format!("{s}: {e}"))?;
    match neg {
        false => Ok(magnitude as i64),
        true if magnitude <= 1 << 63 => Ok((magnitude as i64).wrapping_neg()),
        true => Err(format!("{s}: number too small to fit in a 64-bit integer")),
    }
}

/// Writes `text` and a newline to standard error; a standard error that
/// cannot be written leaves nothing else to tell.
fn report(text: &str) {
    let _ = writeln!(std::io::stderr(), "aout: {text}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let r: Result<(), Stop> = match &cli.cmd {
        Cmd::Link {
            output,
            export,
            export_list,
            no_gc,
            map,
            index,
            import_hashes,
            text_align,
            strip_symbols,
            unwind,
            debug,
            inputs,
        } => link_cmd(
            output,
            export,
            export_list,
            map.as_deref(),
            debug.as_deref(),
            link::Options {
                inputs: inputs.clone(),
                exports: None,
                gc: !no_gc,
                index: *index,
                import_hashes: *import_hashes,
                text_align: *text_align,
                strip_symbols: *strip_symbols,
                unwind: *unwind,
                debug: debug.clone(),
            },
        )
        .map_err(Stop::Error),
        Cmd::Run {
            export_from,
            path,
            abi,
            ret,
            module,
            function,
            args,
        } => run::run(
            module,
            function,
            args,
            export_from,
            (path, abi),
            *ret,
            |r| {
                // The result, then what the modules do as they unload.
                match r {
                    Some(r) => writeln!(out, "{r}").and_then(|()| out.flush()),
                    None => Ok(()),
                }
            },
        )
        .map_err(Stop::Error)
        .and_then(|shown| shown.map_err(output_error)),
        Cmd::Stubs { lang, output, file } => stubs_cmd(&mut out, *lang, output.as_deref(), file),
        Cmd::Exports {
            lang,
            output,
            all,
            inputs,
        } => exports_cmd(&mut out, *lang, output.as_deref(), inputs, *all),
        Cmd::Dump {
            relocs,
            symbols,
            module,
        } => dump(&mut out, module, *relocs, *symbols),
        Cmd::Nm { module } => nm(&mut out, module),
        Cmd::Addr2line {
            base,
            debug,
            module,
            addrs,
        } => addr2line(
            &mut out,
            module,
            base.map(|b| b as u64),
            debug.as_deref(),
            addrs,
        ),
        Cmd::Shell { path, abi, script } => shell::open(script.as_deref())
            .map_err(Stop::Error)
            .and_then(|mut input| shell::shell(&mut input, &mut out, path, abi))
            .and_then(|ok| if ok { Ok(()) } else { Err(Stop::Failed) }),
    };
    match r.and_then(|()| out.flush().map_err(output_error)) {
        // A closed output (`aout nm m.dl | head -1`) is a normal end, as
        // for nm(1) when SIGPIPE is ignored.
        Ok(()) | Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Error(e)) => {
            report(&e);
            ExitCode::FAILURE
        }
        Err(Stop::Failed) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_int;

    #[test]
    fn integers() {
        assert_eq!(parse_int("-0x10"), Ok(-16));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("0xffffffffffffffff"), Ok(-1));
        assert!(parse_int("-9223372036854775809").is_err());
        assert!(parse_int("--1").is_err());
        assert!(parse_int("").is_err());
    }
}
