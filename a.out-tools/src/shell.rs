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
use dynld::{Escaped, Growable, ModuleInfo, Provider, Registry, State, Which, MMAP};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::Path;

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

/// The shell's state: the registry and the holds the shell keeps on it.
struct Shell<'r, 'h, 'w, W: Write> {
    reg: &'r Reg<'h>,
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

    fn load(&mut self, path: &str, name: Option<&str>) -> Result<Done, Stop> {
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
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Err(format!(
                "{}: a module name cannot be all digits (an id)",
                Escaped::new(name)
            )));
        }
        let before = self.reg.info(name).ok().map(|i| i.id);
        let shown = Escaped::new(path).to_string();
        // An open that fails says why after the path, as does a load.
        let loaded = run::with_source(p, |src| self.reg.load(name, src))
            .map_err(|e| Escaped::new(&e).to_string())
            .and_then(|r| r.map_err(|e| run::load_error(&shown, e)));
        let held = match loaded {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
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

    fn unload(&mut self, word: &str) -> Result<Done, Stop> {
        let w = which(word);
        let info = match self.reg.info(w) {
            Ok(i) => i,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if let Err(e) = self.reg.unload(info.id) {
            return Ok(Err(e.to_string()));
        }
        // Its destructors' output came first (flushed by `line`).
        self.out.line(&format!(
            "unloaded {} id {}",
            Escaped::new(&info.name),
            info.id
        ))?;
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
            ("load", [path]) => self.load(path, None),
            ("load", [path, name]) => self.load(path, Some(name)),
            ("load", _) => Ok(Err(usage("load PATH [NAME]"))),
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

/// Runs the commands of `input`, writing to `w`; returns whether every
/// command succeeded. At the end of the input (or when the output fails)
/// the shell drops its holds and the registry, which unloads every module
/// (dependents first), so their destructors run and what they print shows.
/// Input that cannot be read ends the shell with an error line, as a
/// failed command.
pub fn shell(input: &mut dyn BufRead, w: &mut impl Write) -> Result<bool, Stop> {
    let host = HostTable::new(&run::host_exports()?);
    let reg = Reg::growable(host.table()?, &MMAP);
    let ran = {
        let mut sh = Shell {
            reg: &reg,
            holds: BTreeMap::new(),
            out: Out { w: &mut *w },
        };
        interpret(&mut sh, input)
        // The shell's holds go here: every module can then be unloaded.
    };
    drop(reg);
    let flushed = Out { w }.flush();
    let ok = ran?;
    flushed?;
    Ok(ok)
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
        sh.out.flush()?;
    }
    Ok(ok)
}
