//! gdb sees the modules a registry loads, with no command from the user
//! (dynld's `gdb` feature, gdb's JIT interface): this program, run under
//! `gdb -batch` as a host (`gdb.rs host MODE MODULE`), loads a module
//! compiled from C by gcc and linked by `aout link`, and the tests read
//! what gdb prints: a fault inside a module function named in the
//! backtrace with the host's caller below it, a pending breakpoint by
//! name that hits once the module loads, and the module's symbols gone
//! from gdb once it is unloaded.
//!
//! Its own `main` (no test harness): gdb runs it as an ordinary program.
//! gdb is a test tool like gcc: `scripts/test` installs it, and a missing
//! gdb fails the tests.

/// The module (linked with `--unwind`): `mod_fault` writes through the
/// pointer it is given; `mod_write` does so from a local (static)
/// function `mod_store`; `mod_deep` from a local function `mod_deeper`
/// after adjusting its stack (`sub rsp`), which gdb unwinds only by the
/// module's unwind table, not by reading the code.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const MODULE: &str = r#"
#include "dynld.h"
DYNLD_EXPORT(mod_fault, "fn(*int) int");
DYNLD_EXPORT(mod_write, "fn(*int, int) int");
DYNLD_EXPORT(mod_deep, "fn(*int, int) int");
int mod_fault(int *p) { *p = 42; return 1; }
__attribute__((noinline)) static int mod_store(int *p, int v) { p[1] = v; return v + 1; }
int mod_write(int *p, int v) { return mod_store(p, v) * 2; }
__attribute__((noinline)) static int mod_deeper(int *p, int v) {
    volatile int b[8];
    b[v & 7] = v;
    p[1] = b[(v + 1) & 7];
    return v + 1;
}
int mod_deep(int *p, int v) { int r = mod_deeper(p, v); return r * 3 + p[0]; }
"#;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod host {
    use dynld::{ExportTable, FileSource, Growable, Registry, MMAP};

    type Fault = extern "C" fn(*mut i32) -> i32;
    type Write = extern "C" fn(*mut i32, i32) -> i32;

    /// The host's function that calls into the module: it must appear
    /// below the module's frames in a backtrace.
    #[inline(never)]
    #[no_mangle]
    pub extern "C" fn host_calls_module(f: Fault, p: *mut i32) -> i32 {
        std::hint::black_box(f)(std::hint::black_box(p))
    }

    /// The host's function that calls `mod_deep`.
    #[inline(never)]
    #[no_mangle]
    pub extern "C" fn host_calls_deep(f: Write, p: *mut i32) -> i32 {
        std::hint::black_box(f)(std::hint::black_box(p), 3)
    }

    /// Runs as gdb's inferior: loads `module` through a registry and,
    /// by `mode`: `fault` calls `mod_fault(NULL)` from
    /// `host_calls_module`; `deep-fault` calls `mod_deep(NULL)` from
    /// `host_calls_deep`; `call` calls `mod_fault`, `mod_write` and
    /// `mod_deep` on a good pointer and exits; `unload` unloads the module
    /// and stops (SIGTRAP) for gdb to look.
    pub fn run(mode: &str, module: &str) {
        static REG: Registry<'static, Growable<'static>> =
            Registry::growable(ExportTable::EMPTY, &MMAP);
        let mut src = FileSource::open(module).expect("open the module");
        let held = REG.load("faulty", &mut src).expect("load the module");
        let fault = REG.func::<Fault>("mod_fault").expect("mod_fault");
        let write = REG.func::<Write>("mod_write").expect("mod_write");
        let deep = REG.func::<Write>("mod_deep").expect("mod_deep");
        // SAFETY: used only while `fault` and `write` hold the module.
        let (f, w) = unsafe { (fault.symbol().into_raw(), write.symbol().into_raw()) };
        match mode {
            "fault" => {
                let r = host_calls_module(f, std::ptr::null_mut());
                println!("survived the fault: {r}");
            }
            "deep-fault" => {
                // SAFETY: used while `deep` holds the module.
                let d = unsafe { deep.symbol().into_raw() };
                let r = host_calls_deep(d, std::ptr::null_mut());
                println!("survived the fault: {r}");
            }
            "call" => {
                let mut cell = [0i32; 2];
                let a = host_calls_module(f, cell.as_mut_ptr());
                let b = w(cell.as_mut_ptr(), 5);
                println!("results {a} {b} {cell:?}");
                // SAFETY: used while `deep` holds the module.
                let d = unsafe { deep.symbol().into_raw() };
                println!("deep {}", host_calls_deep(d, cell.as_mut_ptr()));
            }
            "unload" => {
                drop((fault, write, deep, held));
                REG.unload("faulty").expect("unload");
                println!("unloaded");
                // SAFETY: raising a signal gdb catches (the test runs
                // this only under gdb).
                unsafe { libc::raise(libc::SIGTRAP) };
            }
            _ => panic!("unknown mode {mode}"),
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    /// The module files the cases run on.
    pub struct Modules {
        /// Linked with `--unwind`: what gdb knows comes from the
        /// registry's registration alone.
        pub plain: PathBuf,
        /// Compiled with `-g` and linked with `--unwind` and `--debug`.
        pub debug: PathBuf,
        /// Its debug file, beside it.
        pub debug_file: PathBuf,
    }

    /// Links the modules into files.
    pub fn module_files() -> Modules {
        let dir = std::env::temp_dir();
        let name = |ext: &str| dir.join(format!("dynld-gdb-{}{ext}", std::process::id()));
        let (plain, debug, debug_file) = (name(".dl"), name("-g.dl"), name("-g.debug"));
        let linked = dynld_suite::cc::module_with("gdb", &[super::MODULE], &[], |o| {
            o.unwind = true;
        });
        std::fs::write(&plain, &linked.bytes).unwrap();
        let linked = dynld_suite::cc::module_with("gdb-g", &[super::MODULE], &["-g"], |o| {
            o.unwind = true;
            o.debug = Some(debug_file.clone());
        });
        std::fs::write(&debug, &linked.bytes).unwrap();
        std::fs::write(&debug_file, linked.debug.expect("the debug file")).unwrap();
        Modules {
            plain,
            debug,
            debug_file,
        }
    }

    /// Runs this program as a host in `mode` under `gdb -batch` with
    /// `cmds` (each an `-ex`): what gdb and the program printed.
    pub fn gdb(mode: &str, module: &std::path::Path, cmds: &[&str]) -> String {
        let exe = std::env::current_exe().unwrap();
        let mut c = Command::new("gdb");
        c.args(["-nx", "-batch", "-ex", "set debuginfod enabled off"]);
        c.args(["-ex", "set auto-load off", "-ex", "set pagination off"]);
        for cmd in cmds {
            c.args(["-ex", cmd]);
        }
        c.arg("--args").arg(exe).arg("host").arg(mode).arg(module);
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("cannot run gdb ({e}); scripts/test installs it"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("--- gdb, host {mode}:\n{text}---");
        text
    }

    /// The file gdb is given for a module, read back in this process:
    /// an ELF executable of the module's machine whose `.text` (no
    /// contents) lies at the module's text, naming its exports as global
    /// functions and its static function as a local one, at their loaded
    /// addresses with their sizes; gone from the list at unload.
    pub fn the_file_names_the_symbols(m: &Modules) {
        let m = m.plain.as_path();
        use dynld::gdb::Registration;
        use dynld::{ExportTable, FileSource, Growable, Registry, MMAP};
        use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
        let reg: Registry<'static, Growable<'static>> =
            Registry::growable(ExportTable::EMPTY, &MMAP);
        let before = Registration::count();
        let held = reg
            .load("faulty", &mut FileSource::open(m).unwrap())
            .unwrap();
        assert_eq!(Registration::count(), before + 1);
        let base = held.base() as u64;
        let mut file = None;
        Registration::each_file(|f| {
            let o = object::File::parse(f).unwrap();
            if o.section_by_name(".text").unwrap().address() == base {
                file = Some(f.to_vec());
            }
        });
        let file = file.expect("no file at the module's text");
        let o = object::File::parse(&*file).unwrap();
        assert_eq!(o.architecture(), object::Architecture::X86_64);
        let text = o.section_by_name(".text").unwrap();
        assert_eq!(text.size(), held.text_size() as u64);
        assert_eq!(text.kind(), SectionKind::UninitializedData);
        let sym = |name: &str| {
            o.symbols()
                .find(|s| s.name() == Ok(name))
                .unwrap_or_else(|| panic!("no {name}"))
        };
        for name in ["mod_fault", "mod_write"] {
            let s = sym(name);
            assert_eq!(s.address(), held.find(name).unwrap().addr as u64, "{name}");
            assert!(s.is_global() && s.kind() == SymbolKind::Text, "{name}");
            assert!(s.size() > 0, "{name}");
        }
        let local = sym("mod_store");
        assert!(local.is_local() && local.kind() == SymbolKind::Text);
        let info = held.symbols().find(|s| s.name == "mod_store").unwrap();
        assert_eq!(local.address(), base + u64::from(info.value));
        assert_eq!(local.size(), u64::from(info.size));
        // The unwind table, past the image, covering mod_deep.
        let (at, cfi) = held.unwind().expect("the module's unwind table");
        assert!(at >= held.image_size());
        let eh = o.section_by_name(".eh_frame").expect(".eh_frame");
        assert_eq!((eh.address(), eh.data().unwrap()), (base + at as u64, cfi));
        drop(held);
        reg.unload("faulty").unwrap();
        assert_eq!(Registration::count(), before);
    }

    /// The frame lines of a backtrace (`#N ...`), in order.
    pub fn frames(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with('#')).collect()
    }

    /// A fault in a module function: gdb names it, and the host's caller
    /// is the next frame.
    pub fn backtrace_names_the_module_function(m: &Modules) {
        let m = m.plain.as_path();
        let out = gdb("fault", m, &["run", "bt"]);
        assert!(out.contains("SIGSEGV"), "no fault:\n{out}");
        let f = frames(&out);
        assert!(
            f.first().is_some_and(|l| l.contains(" mod_fault ")),
            "frame 0 is not mod_fault:\n{out}"
        );
        assert!(
            f.get(1).is_some_and(|l| l.contains("host_calls_module")),
            "frame 1 is not the host's caller:\n{out}"
        );
        assert!(!out.contains("survived"), "{out}");
    }

    /// A fault two module frames deep, the outer one having moved the
    /// stack pointer: gdb unwinds through both by the module's unwind
    /// table to the host's caller.
    pub fn backtrace_goes_through_module_frames(m: &Modules) {
        let m = m.plain.as_path();
        let out = gdb("deep-fault", m, &["run", "bt"]);
        assert!(out.contains("SIGSEGV"), "no fault:\n{out}");
        let f = frames(&out);
        let want = [" mod_deeper ", " mod_deep ", "host_calls_deep"];
        for (i, w) in want.iter().enumerate() {
            assert!(
                f.get(i).is_some_and(|l| l.contains(w)),
                "frame {i} is not{w}:\n{out}"
            );
        }
        assert!(f.iter().any(|l| l.contains("gdb::host::run")), "{out}");
    }

    /// The line of `MODULE` (gcc's numbering) that holds `text`.
    fn line_of(text: &str) -> usize {
        1 + super::MODULE
            .lines()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text} not in the module"))
    }

    /// The module names the debug file `aout link --debug` wrote beside
    /// it, and the file gdb is given names it in turn (`.gnu_debuglink`):
    /// with no command, the frames show file and line, and the
    /// arguments.
    pub fn debug_file_gives_file_and_line(mods: &Modules) {
        use dynld::gdb::Registration;
        use dynld::{ExportTable, FileSource, Growable, Registry, MMAP};
        use object::{Object, ObjectSection};
        // The file gdb is given names the debug file and its CRC-32.
        let reg: Registry<'static, Growable<'static>> =
            Registry::growable(ExportTable::EMPTY, &MMAP);
        let held = reg
            .load("g", &mut FileSource::open(&mods.debug).unwrap())
            .unwrap();
        let (crc, path) = held.debuglink().expect("the module's debug link");
        assert_eq!(std::path::Path::new(path), mods.debug_file);
        let base = held.base() as u64;
        let mut link = None;
        Registration::each_file(|f| {
            let o = object::File::parse(f).unwrap();
            if o.section_by_name(".text").unwrap().address() == base {
                link = o.gnu_debuglink().unwrap().map(|(p, c)| (p.to_vec(), c));
            }
        });
        assert_eq!(link, Some((path.as_bytes().to_vec(), crc)));
        drop(held);
        drop(reg);
        let m = mods.debug.as_path();
        let out = gdb("deep-fault", m, &["run", "bt"]);
        let f = frames(&out);
        let at = |i: usize, func: &str, line: usize| {
            f.get(i).is_some_and(|l| {
                l.contains(&format!(" {func} (")) && l.ends_with(&format!("0.c:{line}"))
            })
        };
        assert!(
            at(0, "mod_deeper", line_of("p[1] = b[")),
            "frame 0 without its line:\n{out}"
        );
        assert!(
            at(1, "mod_deep", line_of("int mod_deep(")),
            "frame 1 without its line:\n{out}"
        );
        assert!(
            f[0].contains("p=p@entry=0x0") || f[0].contains("p=0x0"),
            "{out}"
        );
        assert!(
            f.get(2).is_some_and(|l| l.contains("host_calls_deep")),
            "{out}"
        );
    }

    /// A breakpoint on a module function set by name before the module
    /// exists hits once it loads; so does one on a local function, and a
    /// backtrace from it names its exported caller and the host's code.
    pub fn pending_breakpoints_hit(m: &Modules) {
        let m = m.plain.as_path();
        let out = gdb(
            "call",
            m,
            &[
                "set breakpoint pending on",
                "break mod_fault",
                "break mod_store",
                "run",
                "bt 3",
                "continue",
                "bt 3",
                "continue",
            ],
        );
        assert!(
            out.contains("Breakpoint 1 (mod_fault) pending"),
            "not pending:\n{out}"
        );
        let hits: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("Breakpoint "))
            .collect();
        assert!(
            hits.iter()
                .any(|l| l.starts_with("Breakpoint 1, ") && l.contains("mod_fault")),
            "mod_fault's breakpoint did not hit:\n{out}"
        );
        assert!(
            hits.iter()
                .any(|l| l.starts_with("Breakpoint 2, ") && l.contains("mod_store")),
            "mod_store's breakpoint did not hit:\n{out}"
        );
        let f = frames(&out);
        assert!(
            f.iter()
                .any(|l| l.starts_with("#1") && l.contains("host_calls_module")),
            "{out}"
        );
        assert!(
            f.windows(2)
                .any(|w| w[0].contains(" mod_store ") && w[1].contains(" mod_write ")),
            "no mod_store <- mod_write:\n{out}"
        );
        // And the program ran on to its end.
        assert!(out.contains("results 1 12 [42, 5]"), "{out}");
    }

    /// Once the registry unloads the module, gdb no longer knows its
    /// symbols (a breakpoint set while it was loaded keeps its address,
    /// as gdb keeps those of any unloaded JIT code).
    pub fn unloaded_modules_are_forgotten(m: &Modules) {
        let m = m.plain.as_path();
        let out = gdb(
            "unload",
            m,
            &[
                "set breakpoint pending on",
                "break mod_fault",
                "run",
                "info symbol mod_fault",
                "info breakpoints",
            ],
        );
        assert!(out.contains("unloaded"), "{out}");
        assert!(out.contains("SIGTRAP"), "{out}");
        assert!(
            out.contains("No symbol \"mod_fault\" in current context"),
            "mod_fault still known:\n{out}"
        );
        // It was known while loaded: the breakpoint found it then.
        assert!(
            out.lines()
                .any(|l| l.starts_with("1       breakpoint") && l.contains("0x0000")),
            "the breakpoint never found mod_fault:\n{out}"
        );
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("host") {
        host::run(&args[2], &args[3]);
        return;
    }
    let m = tests::module_files();
    type Case = fn(&tests::Modules);
    let cases: [(&str, Case); 6] = [
        (
            "the_file_names_the_symbols",
            tests::the_file_names_the_symbols,
        ),
        (
            "backtrace_names_the_module_function",
            tests::backtrace_names_the_module_function,
        ),
        (
            "backtrace_goes_through_module_frames",
            tests::backtrace_goes_through_module_frames,
        ),
        ("pending_breakpoints_hit", tests::pending_breakpoints_hit),
        (
            "debug_file_gives_file_and_line",
            tests::debug_file_gives_file_and_line,
        ),
        (
            "unloaded_modules_are_forgotten",
            tests::unloaded_modules_are_forgotten,
        ),
    ];
    // A filter, as the harness takes one.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = 0;
    let mut passed = 0;
    for (name, case) in cases {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(|| case(&m)) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    for f in [&m.plain, &m.debug, &m.debug_file] {
        std::fs::remove_file(f).ok();
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed");
    if failed != 0 {
        std::process::exit(101);
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn main() {
    println!("\ntest result: ok. 0 passed; 0 failed (gdb tests run on x86-64 Linux)");
}
