//! `aout shell`: a command interpreter over a module registry in this
//! process, in the manner of a kernel's module administration tool.
//!
//! Commands come one a line; each prints its result, or one line starting
//! with `error:`, to standard output, so that both stay in order with
//! what the modules print (C stdio is flushed before every line the shell
//! writes and after every command). `aout(1)` documents the commands and
//! their output.

use crate::run::{self, HostTable, Ret};
use crate::{output_error, parse_int, Stop};
use dynld::{
    Abi, Escaped, Growable, LoadOptions, ModuleInfo, Provider, Registry, SearchPath, SetupOption,
    State, Which, MMAP,
};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The longest line the shell reads, in bytes, without its newline: a
/// longer one is an error (and skipped to its end), so a script cannot
/// make the shell's memory grow without bound.
pub const MAX_LINE: usize = 4096;

type Reg<'h> = Registry<'h, Growable<'h>>;
type Held<'r, 'h> = dynld::Held<'r, 'h, Growable<'h>>;

/// Where the shell writes: every line goes out after what the C library
/// buffered, and is flushed at once.
struct Out<'w, W: Write> {
    w: &'w mut W,
}

impl<W: Write> Out<'_, W> {
    fn line(&mut self, text: &str) -> Result<(), Stop> {
        run::flush_c();
        writeln!(self.w, "{text}")
            .and_then(|()| self.w.flush())
            .map_err(output_error)
    }

    /// Flushes what modules and the shell have written.
    fn flush(&mut self) -> Result<(), Stop> {
        run::flush_c();
        self.w.flush().map_err(output_error)
    }
}

/// A command's outcome: done (its lines printed), or the message of its
/// error line.
type Done = Result<(), String>;

/// The first call to reach an unresolved import's trap since the last
/// look ([`trapped`]): the module's name and the import's.
static TRAPPED: Mutex<Option<(String, String)>> = Mutex::new(None);

/// The shell's trap handler: records the call (the first one since the
/// last look) and returns 0 to the module, which goes on.
fn on_trap(u: &dynld::trap::Unbound<'_>) -> usize {
    let mut t = TRAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_none() {
        *t = Some((u.module.to_owned(), u.import.to_owned()));
    }
    0
}

/// The message for the call that reached a trap since the last look, if
/// one did; the record is cleared.
fn trapped() -> Option<String> {
    let (module, import) = TRAPPED.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    Some(format!(
        "call to unresolved import {} of module {}",
        Escaped::new(&import),
        Escaped::new(&module)
    ))
}

/// The shell's state: the registry and the holds the shell keeps on it.
struct Shell<'r, 'h, 'w, W: Write> {
    reg: &'r Reg<'h>,
    /// Whether `--path` gave directories to find modules by name in.
    searched: bool,
    /// The shell's own holds, by module id (`hold` pushes, `release` pops).
    holds: BTreeMap<u32, Vec<Held<'r, 'h>>>,
    out: Out<'w, W>,
}

/// A module named on a command line: an all-digits word is an id (one
/// past `u32::MAX` is looked up as a name, and found nowhere, as `load`
/// refuses such names).
fn which(word: &str) -> Which<'_> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(id) = word.parse::<u32>() {
            return Which::Id(id);
        }
    }
    Which::Name(word)
}

/// An address: decimal, or hexadecimal with `0x`.
fn parse_addr(s: &str) -> Result<usize, String> {
    if s.starts_with('-') {
        return Err(format!("{}: not an address", Escaped::new(s)));
    }
    let v = parse_int(s).map_err(|e| Escaped::new(&e).to_string())?;
    usize::try_from(v as u64).map_err(|_| format!("{}: not an address", Escaped::new(s)))
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Loading => "loading",
        State::Live => "live",
        State::Unloading => "unloading",
    }
}

/// `host`, or `module NAME` (escaped) for a module's id.
fn provider_name(reg: &Reg<'_>, p: Provider) -> String {
    if p == Provider::HOST {
        return "host".into();
    }
    match reg.info(p.0) {
        Ok(i) => format!("module {}", Escaped::new(&i.name)),
        Err(_) => format!("module id {}", p.0),
    }
}

fn usage(text: &str) -> String {
    format!("usage: {text}")
}

/// Whether `load`'s first word is a file's path (it holds `/` or ends in
/// `.dl`) rather than a module's name, to find through `--path`.
fn is_path(word: &str) -> bool {
    word.contains('/') || word.ends_with(".dl")
}

/// A module name the shell can load under: not all digits (it would read
/// as an id).
fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{}: a module name cannot be all digits (an id)",
            Escaped::new(name)
        ));
    }
    Ok(())
}

/// `load`'s `KEY=VALUE` words as C strings: a word without `=`, with an
/// empty key, or holding a NUL byte is refused.
fn options(words: &[&str]) -> Result<Vec<(CString, CString)>, String> {
    words
        .iter()
        .map(|w| {
            let shown = || Escaped::new(w).to_string();
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("{}: not an option (KEY=VALUE)", shown()))?;
            if k.is_empty() {
                return Err(format!("{}: an option needs a key (KEY=VALUE)", shown()));
            }
            match (CString::new(k), CString::new(v)) {
                (Ok(k), Ok(v)) => Ok((k, v)),
                _ => Err(format!("{}: an option cannot hold a NUL byte", shown())),
            }
        })
        .collect()
}

impl<W: Write> Shell<'_, '_, '_, W> {
    /// The lines of `list`, aligned: numbers to the right, words to the
    /// left, no trailing blanks.
    fn list(&mut self) -> Result<Done, Stop> {
        const HEAD: [&str; 9] = [
            "ID",
            "NAME",
            "BASE",
            "IMAGE",
            "MEMORY",
            "HOLDS",
            "DEPENDENTS",
            "STATE",
            "CANDIDATE",
        ];
        const RIGHT: [bool; 9] = [true, false, false, true, true, true, true, false, false];
        let mut rows: Vec<[String; 9]> = vec![HEAD.map(str::to_owned)];
        self.reg.modules(|i: &ModuleInfo| {
            rows.push([
                i.id.to_string(),
                Escaped::new(&i.name).to_string(),
                format!("{:#x}", i.base),
                i.image_size.to_string(),
                i.memory_size.to_string(),
                i.holds.to_string(),
                i.dependents.to_string(),
                state_name(i.state).to_owned(),
                if i.candidate { "yes" } else { "no" }.to_owned(),
            ])
        });
        let mut width = [0usize; 9];
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        for r in &rows {
            let mut line = String::new();
            for (k, c) in r.iter().enumerate() {
                if k > 0 {
                    line.push(' ');
                }
                let pad = width[k] - c.chars().count();
                if RIGHT[k] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            self.out.line(line.trim_end())?;
        }
        Ok(Ok(()))
    }

    /// `load [--defer] PATH [NAME] [KEY=VALUE...]` and `load [--defer]
    /// NAME [KEY=VALUE...]`: a first word holding `/` or ending in `.dl`
    /// is a path, any other a name to find through `--path`.
    fn load(&mut self, words: &[&str]) -> Result<Done, Stop> {
        const USE: &str =
            "load [--defer] PATH [NAME] [KEY=VALUE...] | load [--defer] NAME [KEY=VALUE...]";
        let (defer, words) = match words {
            ["--defer", rest @ ..] => (true, rest),
            _ => (false, words),
        };
        let [what, rest @ ..] = words else {
            return Ok(Err(usage(USE)));
        };
        let by_path = is_path(what);
        let (name, opts) = match rest {
            [n, o @ ..] if by_path && !n.contains('=') => (Some(*n), o),
            _ => (None, rest),
        };
        let pairs = match options(opts) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let setup: Vec<SetupOption<'_>> =
            pairs.iter().map(|(k, v)| SetupOption::new(k, v)).collect();
        let how = LoadOptions::new().setup(&setup).defer(defer);
        if by_path {
            self.load_path(what, name, &how)
        } else {
            self.load_named(what, &how)
        }
    }

    fn load_path(
        &mut self,
        path: &str,
        name: Option<&str>,
        how: &LoadOptions<'_>,
    ) -> Result<Done, Stop> {
        let p = Path::new(path);
        let name = match name {
            Some(n) => n,
            None => match p.file_stem().and_then(|s| s.to_str()) {
                Some(s) => s,
                None => {
                    return Ok(Err(format!(
                        "{}: no file name to name the module by",
                        Escaped::new(path)
                    )))
                }
            },
        };
        if let Err(e) = check_name(name) {
            return Ok(Err(e));
        }
        let before = self.reg.info(name).ok().map(|i| i.id);
        let shown = Escaped::new(path).to_string();
        // An open that fails says why after the path, as does a load.
        let loaded = run::with_source(p, |src| self.reg.load_with(name, src, how))
            .map_err(|e| Escaped::new(&e).to_string())
            .and_then(|r| r.map_err(|e| run::load_error(&shown, e)));
        match loaded {
            Ok(h) => self.loaded(name, before, h),
            Err(e) => Ok(Err(e)),
        }
    }

    fn load_named(&mut self, name: &str, how: &LoadOptions<'_>) -> Result<Done, Stop> {
        if let Err(e) = check_name(name) {
            return Ok(Err(e));
        }
        let before = self.reg.info(name).ok().map(|i| i.id);
        match self.reg.load_named(name, how) {
            Ok(h) => self.loaded(name, before, h),
            Err(dynld::Error::NotFound { name: missing }) if missing.as_str() == name => {
                let mut e = format!("module {} not found", Escaped::new(name));
                if !self.searched {
                    e.push_str(" (no --path directories to search; a path holds / or ends in .dl)");
                }
                Ok(Err(e))
            }
            Err(e) => Ok(Err(run::load_error(&Escaped::new(name).to_string(), e))),
        }
    }

    /// Prints what a load did, and drops the hold it gave.
    fn loaded(
        &mut self,
        name: &str,
        before: Option<u32>,
        held: Held<'_, '_>,
    ) -> Result<Done, Stop> {
        let id = held.id();
        // The shell keeps no hold but those `hold` takes.
        drop(held);
        let line = if before == Some(id) {
            let holds = self.reg.info(id).map_or(0, |i| i.holds);
            format!(
                "already loaded {} id {id} holds {holds}",
                Escaped::new(name)
            )
        } else {
            format!("loaded {} id {id}", Escaped::new(name))
        };
        self.out.line(&line)?;
        Ok(Ok(()))
    }

    /// `info NAME|ID`: what the registry knows of the module, then what
    /// its metadata says.
    fn info(&mut self, word: &str) -> Result<Done, Stop> {
        let i = match self.reg.info(which(word)) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let mut lines = vec![
            format!("id {}", i.id),
            format!("name {}", Escaped::new(&i.name)),
            format!("state {}", state_name(i.state)),
            format!("holds {}", i.holds),
            format!("dependents {}", i.dependents),
            format!("pending {}", i.pending),
            format!("loaded-at {}", i.loaded_at),
        ];
        // Held to read its metadata (the counts above are from before).
        match self.reg.hold(i.id) {
            Ok(h) => match h.metadata() {
                None => lines.push("metadata none".into()),
                Some(md) => {
                    lines.push(format!("module {}", Escaped::new(md.name())));
                    lines.push(format!("version {}", md.version()));
                    if !md.class().is_empty() {
                        lines.push(format!("class {}", Escaped::new(md.class())));
                    }
                    for a in md.abis() {
                        lines.push(format!(
                            "abi {} {}.{}",
                            Escaped::new(a.class),
                            a.major,
                            a.minor
                        ));
                    }
                    for d in md.dependencies() {
                        lines.push(format!("depends {} {}", Escaped::new(d.name), d.range));
                    }
                    let export = |k: Option<usize>| k.and_then(|k| h.export(k)).map(|e| e.name);
                    if let Some(f) = export(md.setup()) {
                        lines.push(format!("setup {}", Escaped::new(f)));
                    }
                    if let Some(f) = export(md.teardown()) {
                        lines.push(format!("teardown {}", Escaped::new(f)));
                    }
                }
            },
            // Loading or unloading: its metadata cannot be read now.
            Err(_) => lines.push("metadata unavailable".into()),
        }
        for l in &lines {
            self.out.line(l)?;
        }
        Ok(Ok(()))
    }

    /// `unresolved`: one line per pending import, `MODULE IMPORT`.
    fn unresolved(&mut self) -> Result<Done, Stop> {
        let mut lines = Vec::new();
        self.reg.unresolved(|m, i| {
            lines.push(format!("{} {}", Escaped::new(m), Escaped::new(i)));
        });
        for l in &lines {
            self.out.line(l)?;
        }
        Ok(Ok(()))
    }

    /// `resolve`: binds the pending imports that loaded modules provide;
    /// prints how many it bound, or fails naming those left.
    fn resolve(&mut self) -> Result<Done, Stop> {
        let before = self.pending();
        if let Err(e) = self.reg.resolve() {
            return Ok(Err(e.to_string()));
        }
        self.out.line(&format!("resolved {before}"))?;
        Ok(Ok(()))
    }

    /// How many imports are pending.
    fn pending(&self) -> usize {
        let mut n = 0;
        self.reg.unresolved(|_, _| n += 1);
        n
    }

    fn unload(&mut self, word: &str) -> Result<Done, Stop> {
        let w = which(word);
        let info = match self.reg.info(w) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let before = self.reg.list();
        if let Err(e) = self.reg.unload(info.id) {
            return Ok(Err(e.to_string()));
        }
        // Its destructors' output came first (flushed by `line`). A cycle
        // goes as a whole: the module named, then the others, newest
        // first.
        let mut gone: Vec<&ModuleInfo> = before
            .iter()
            .filter(|m| m.id != info.id && self.reg.info(m.id).is_err())
            .collect();
        gone.sort_by_key(|m| std::cmp::Reverse(m.id));
        for m in std::iter::once(&info).chain(gone) {
            self.out
                .line(&format!("unloaded {} id {}", Escaped::new(&m.name), m.id))?;
        }
        Ok(Ok(()))
    }

    fn hold(&mut self, word: &str) -> Result<Done, Stop> {
        let h = match self.reg.hold(which(word)) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let (id, name) = (h.id(), h.name().to_owned());
        self.holds.entry(id).or_default().push(h);
        let n = self.reg.info(id).map_or(0, |i| i.holds);
        self.out
            .line(&format!("held {} id {id} holds {n}", Escaped::new(&name)))?;
        Ok(Ok(()))
    }

    fn release(&mut self, word: &str) -> Result<Done, Stop> {
        let info = match self.reg.info(which(word)) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let name = Escaped::new(&info.name).to_string();
        let Some(h) = self.holds.get_mut(&info.id).and_then(Vec::pop) else {
            return Ok(Err(format!("the shell has no hold on {name} to release")));
        };
        drop(h);
        if self.holds.get(&info.id).is_some_and(Vec::is_empty) {
            self.holds.remove(&info.id);
        }
        let n = self.reg.info(info.id).map_or(0, |i| i.holds);
        self.out
            .line(&format!("released {name} id {} holds {n}", info.id))?;
        Ok(Ok(()))
    }

    fn call(&mut self, words: &[&str]) -> Result<Done, Stop> {
        const USE: &str = "call [--ret i32|i64|u32|u64|void] NAME FUNC [ARG...]";
        let (ret, words) = match words {
            ["--ret", r, rest @ ..] => match <Ret as clap::ValueEnum>::from_str(r, false) {
                Ok(ret) => (ret, rest),
                Err(_) => {
                    return Ok(Err(format!(
                        "--ret {}: not one of i32, i64, u32, u64, void",
                        Escaped::new(r)
                    )))
                }
            },
            _ => (Ret::I32, words),
        };
        let [module, func, args @ ..] = words else {
            return Ok(Err(usage(USE)));
        };
        if args.len() > run::MAX_ARGS {
            return Ok(Err("at most six arguments".into()));
        }
        let mut ints = Vec::with_capacity(args.len());
        for a in args {
            match parse_int(a) {
                Ok(v) => ints.push(v),
                Err(e) => return Ok(Err(Escaped::new(&e).to_string())),
            }
        }
        // Held for the call: the module cannot go while its code runs.
        let h = match self.reg.hold(which(module)) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let addr = match run::function_addr(&h, func) {
            Ok(a) => a,
            Err(e) => return Ok(Err(format!("{}: {e}", Escaped::new(h.name())))),
        };
        // SAFETY: the user names a function in the module's text taking up
        // to six integer arguments, as for `aout run`; the hold keeps the
        // module loaded until the call returns.
        let r = match unsafe { run::call(addr, &ints) } {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        drop(h);
        // A call that reached an unbound import's trap got 0 from it: its
        // result means nothing.
        if let Some(e) = trapped() {
            return Ok(Err(e));
        }
        if let Some(text) = ret.format(r) {
            self.out.line(&text)?;
        }
        Ok(Ok(()))
    }

    fn sym(&mut self, name: &str) -> Result<Done, Stop> {
        let Some(f) = self.reg.lookup(name) else {
            return Ok(Err(format!("undefined symbol: {}", Escaped::new(name))));
        };
        let line = format!(
            "{} {:#x} sig={:#010x} {}",
            Escaped::new(name),
            f.addr as usize,
            f.sig,
            provider_name(self.reg, f.provider)
        );
        self.out.line(&line)?;
        Ok(Ok(()))
    }

    fn addr(&mut self, word: &str) -> Result<Done, Stop> {
        let a = match parse_addr(word) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let found = self.reg.locate(a as *const (), |l| {
            let mut s = if l.provider == Provider::HOST {
                "host".to_owned()
            } else {
                format!("{}+{:#x}", Escaped::new(l.module), l.module_offset)
            };
            if let Some(sym) = &l.symbol {
                let _ = write!(s, " {}+{:#x}", Escaped::new(sym.name), sym.offset);
            }
            s
        });
        match found {
            Some(line) => self.out.line(&line)?,
            None => return Ok(Err(format!("{a:#x}: in no module"))),
        }
        Ok(Ok(()))
    }

    /// Runs one command line's words.
    fn command(&mut self, words: &[&str]) -> Result<Done, Stop> {
        let Some((&cmd, args)) = words.split_first() else {
            return Ok(Ok(()));
        };
        match (cmd, args) {
            ("load", _) => self.load(args),
            ("info", [m]) => self.info(m),
            ("info", _) => Ok(Err(usage("info NAME|ID"))),
            ("unresolved", []) => self.unresolved(),
            ("unresolved", _) => Ok(Err(usage("unresolved"))),
            ("resolve", []) => self.resolve(),
            ("resolve", _) => Ok(Err(usage("resolve"))),
            ("unload", [m]) => self.unload(m),
            ("unload", _) => Ok(Err(usage("unload NAME|ID"))),
            ("hold", [m]) => self.hold(m),
            ("hold", _) => Ok(Err(usage("hold NAME|ID"))),
            ("release", [m]) => self.release(m),
            ("release", _) => Ok(Err(usage("release NAME|ID"))),
            ("list", []) => self.list(),
            ("list", _) => Ok(Err(usage("list"))),
            ("call", _) => self.call(args),
            ("sym", [name]) => self.sym(name),
            ("sym", _) => Ok(Err(usage("sym SYMBOL"))),
            ("addr", [a]) => self.addr(a),
            ("addr", _) => Ok(Err(usage("addr ADDRESS"))),
            ("sweep", []) => {
                let n = self.reg.sweep();
                self.out.line(&format!("swept {n}"))?;
                Ok(Ok(()))
            }
            ("sweep", _) => Ok(Err(usage("sweep"))),
            _ => Ok(Err(format!("unknown command: {}", Escaped::new(cmd)))),
        }
    }
}

/// One line of input, at most [`MAX_LINE`] bytes and its newline.
enum Line {
    /// The line, without its newline.
    Text(Vec<u8>),
    /// Longer than [`MAX_LINE`]: its bytes were read to its end and
    /// dropped.
    TooLong,
}

/// The next line of `input`, `None` at its end; reading never holds more
/// than [`MAX_LINE`] + 1 bytes.
fn next_line(input: &mut dyn BufRead) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let n = std::io::Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(Line::Text(buf)));
    }
    if buf.len() <= MAX_LINE {
        // The last line, without a newline.
        return Ok(Some(Line::Text(buf)));
    }
    // Skip to the end of the line, a buffer at a time.
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(Some(Line::TooLong));
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(Some(Line::TooLong));
            }
            None => {
                let len = chunk.len();
                input.consume(len);
            }
        }
    }
}

/// The words of a line: split at ASCII blanks, up to a word that starts
/// with `#`, which starts a comment.
fn words(line: &str) -> Vec<&str> {
    line.split_ascii_whitespace()
        .take_while(|w| !w.starts_with('#'))
        .collect()
}

/// Opens the script at `path`, or standard input for `None` or `-`; a
/// directory is refused with the system's message.
pub fn open(path: Option<&Path>) -> Result<Box<dyn BufRead>, String> {
    let path = match path {
        None => return Ok(Box::new(std::io::stdin().lock())),
        Some(p) if p.as_os_str() == "-" => return Ok(Box::new(std::io::stdin().lock())),
        Some(p) => p,
    };
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(fail)?;
    if file.metadata().map_err(fail)?.is_dir() {
        return Err(fail(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    Ok(Box::new(std::io::BufReader::new(file)))
}

/// The search path of `--path DIR...`: each directory itself, file name
/// `NAME.dl`; a `DIR` that is not a directory is refused.
pub fn search_path(dirs: &[PathBuf]) -> Result<SearchPath, String> {
    let mut path = SearchPath::new().subdir("").pattern("%s.dl");
    for d in dirs {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => path = path.dir(d),
            Ok(_) => return Err(format!("--path {}: not a directory", d.display())),
            Err(e) => return Err(format!("--path {}: {e}", d.display())),
        }
    }
    Ok(path)
}

/// An ABI the shell offers (`--abi CLASS:MAJOR.MINOR`).
#[derive(Clone, Debug)]
pub struct AbiOffer {
    class: String,
    major: u32,
    minor: u32,
}

impl AbiOffer {
    /// The ABI offered.
    pub fn abi(&self) -> Abi<'_> {
        Abi::new(&self.class, self.major, self.minor)
    }
}

/// Parses `--abi`'s `CLASS:MAJOR.MINOR`.
pub fn parse_abi(s: &str) -> Result<AbiOffer, String> {
    let bad = || format!("{}: not CLASS:MAJOR.MINOR", Escaped::new(s));
    let (class, version) = s.rsplit_once(':').ok_or_else(bad)?;
    let (major, minor) = version.split_once('.').ok_or_else(bad)?;
    let number = |n: &str| {
        n.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| n.parse::<u32>().ok())
            .flatten()
            .ok_or_else(bad)
    };
    if !dynld::meta::good_name(class) {
        return Err(bad());
    }
    Ok(AbiOffer {
        class: class.to_owned(),
        major: number(major)?,
        minor: number(minor)?,
    })
}

/// Runs the commands of `input`, writing to `w`, finding modules loaded
/// by name in `dirs` and offering modules `abis`; returns whether every command succeeded. At the end
/// of the input (or when the output fails) the shell drops its holds and
/// the registry, which unloads every module (dependents first), so their
/// destructors run and what they print shows. Input that cannot be read
/// ends the shell with an error line, as a failed command.
pub fn shell(
    input: &mut dyn BufRead,
    w: &mut impl Write,
    dirs: &[PathBuf],
    abis: &[AbiOffer],
) -> Result<bool, Stop> {
    let path = search_path(dirs)?;
    let abis: Vec<Abi<'_>> = abis.iter().map(AbiOffer::abi).collect();
    dynld::trap::set_handler(on_trap);
    let host = HostTable::new(&run::host_exports()?);
    let reg = Reg::growable(host.table()?, &MMAP)
        .with_finder(&path)
        .with_abis(&abis);
    let ran = {
        let mut sh = Shell {
            reg: &reg,
            searched: !dirs.is_empty(),
            holds: BTreeMap::new(),
            out: Out { w: &mut *w },
        };
        interpret(&mut sh, input)
        // The shell's holds go here: every module can then be unloaded.
    };
    drop(reg);
    let mut out = Out { w };
    // A destructor that reached a trap as the registry went.
    let late = match trapped() {
        Some(e) => out
            .line(&format!("error: end of input: {e}"))
            .map(|()| false),
        None => Ok(true),
    };
    let flushed = out.flush();
    let ok = ran?;
    let late = late?;
    flushed?;
    Ok(ok && late)
}

fn interpret<W: Write>(
    sh: &mut Shell<'_, '_, '_, W>,
    input: &mut dyn BufRead,
) -> Result<bool, Stop> {
    let mut ok = true;
    let mut number = 0u64;
    loop {
        number += 1;
        let done = match next_line(input) {
            Ok(None) => break,
            Ok(Some(Line::TooLong)) => Err(format!("longer than {MAX_LINE} bytes")),
            Ok(Some(Line::Text(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => sh.command(&words(text))?,
                Err(_) => Err("not UTF-8".to_owned()),
            },
            Err(e) => {
                sh.out
                    .line(&format!("error: line {number}: cannot read: {e}"))?;
                return Ok(false);
            }
        };
        if let Err(e) = done {
            ok = false;
            sh.out.line(&format!("error: line {number}: {e}"))?;
        }
        // A constructor, setup, destructor or call that reached a trap.
        if let Some(e) = trapped() {
            ok = false;
            sh.out.line(&format!("error: line {number}: {e}"))?;
        }
        sh.out.flush()?;
    }
    Ok(ok)
}
