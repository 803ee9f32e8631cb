//! `aout shell` end to end: two modules compiled from C by gcc at test
//! time, a provider that prints from its destructor and an app bound to
//! it, driven by scripts (from a file, and interactively through a pipe)
//! whose whole output is compared: refused unloads, holds, the sweep,
//! destructors' output in order, fresh data on reload, symbols by name and
//! by address, error lines and the exit status. Then the registry's
//! deferred binding (`load --defer`, `unresolved`, `resolve`, a call
//! reaching a trap, cycles), loading by name through `--path` with
//! dependencies, setup options and `info` from the modules' metadata, and
//! `aout run --path`.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{root, run, workdir};

/// A provider: two functions and a counter in its data; its destructor
/// prints the count.
const LIB: &str = r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_EXPORT(lib_add, "fn(int, int) int");
DYNLD_EXPORT(lib_bump, "fn(void) int");
static int counter;
int lib_add(int a, int b) { return a + b; }
int lib_bump(void) { return ++counter; }
__attribute__((destructor)) static void lib_bye(void) {
    printf("lib: bye after %d bumps\n", counter);
}
"#;

/// Bound to lib; prints from its constructor, its function and its
/// destructor.
const APP: &str = r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_IMPORT(lib_add, "fn(int, int) int");
DYNLD_IMPORT(lib_bump, "fn(void) int");
DYNLD_EXPORT(app_run, "fn(int) int");
extern int lib_add(int, int);
extern int lib_bump(void);
int app_run(int x) {
    printf("app: run %d\n", x);
    return lib_add(x, 1000) + lib_bump();
}
__attribute__((constructor)) static void app_hello(void) { printf("app: hello\n"); }
__attribute__((destructor)) static void app_bye(void) { printf("app: bye\n"); }
"#;

fn aout() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aout"))
}

/// Compiles `src` with gcc and links it with `aout link` into `dir`.
fn module(dir: &Path, name: &str, src: &str) -> PathBuf {
    let (c, o, m) = (
        dir.join(format!("{name}.c")),
        dir.join(format!("{name}.o")),
        dir.join(format!("{name}.dl")),
    );
    std::fs::write(&c, src).unwrap();
    run(Command::new("gcc")
        .args(["-O2", "-fPIC", "-c", "-I"])
        .arg(root().join("include"))
        .arg(&c)
        .arg("-o")
        .arg(&o));
    run(aout().arg("link").arg("-o").arg(&m).arg(&o));
    m
}

struct Mods {
    dir: PathBuf,
    lib: PathBuf,
    app: PathBuf,
}

fn mods(test: &str) -> Mods {
    let dir = workdir(&format!("shell-{test}"));
    Mods {
        lib: module(&dir, "lib", LIB),
        app: module(&dir, "app", APP),
        dir,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `aout shell` on `input` given as standard input.
fn shell_stdin(input: &[u8]) -> Output {
    let mut child = aout()
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// An `aout shell` fed through a pipe, answering as it is fed.
struct Session {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    /// Everything read so far.
    got: String,
}

impl Session {
    fn new() -> Session {
        let mut child = aout()
            .arg("shell")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Session {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            got: String::new(),
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Reads lines up to one starting with `prefix`; returns the rest of it.
    fn until(&mut self, prefix: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the shell ended early:\n{}", self.got);
            self.got.push_str(&line);
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    /// Ends the input; returns all the output, the status and the errors.
    fn finish(mut self) -> (String, Option<i32>, String) {
        drop(self.stdin.take());
        std::io::Read::read_to_string(&mut self.stdout, &mut self.got).unwrap();
        let mut err = String::new();
        let mut e = self.child.stderr.take().unwrap();
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        let status = self.child.wait().unwrap();
        (self.got, status.code(), err)
    }
}

/// The first word of `s`, a hexadecimal address.
fn hex(s: &str) -> usize {
    let a = s.split_whitespace().next().unwrap();
    usize::from_str_radix(a.strip_prefix("0x").unwrap(), 16).unwrap()
}

/// Checks a `list` table: the header, then one row a module as `want`
/// gives it (id, name, holds, dependents, state, candidate; base and
/// sizes are checked for form), its columns aligned under the header's.
fn check_list(lines: &[&str], want: &[[&str; 6]]) {
    let head = "ID NAME BASE IMAGE MEMORY HOLDS DEPENDENTS STATE CANDIDATE";
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(words.join(" "), head, "{lines:?}");
    assert_eq!(lines.len(), want.len() + 1, "{lines:?}");
    // Where each header word starts and ends.
    let spans: Vec<(usize, usize)> = words
        .iter()
        .scan(0, |from, w| {
            let at = *from + lines[0][*from..].find(w).unwrap();
            *from = at + w.len();
            Some((at, at + w.len()))
        })
        .collect();
    let right = [true, false, false, true, true, true, true, false, false];
    for (row, w) in lines[1..].iter().zip(want) {
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f.len(), 9, "{row}");
        assert_eq!([f[0], f[1], f[5], f[6], f[7], f[8]], *w, "{row}");
        assert!(f[2].starts_with("0x") && usize::from_str_radix(&f[2][2..], 16).is_ok());
        assert!(f[3].parse::<usize>().is_ok() && f[4].parse::<usize>().is_ok());
        // Each field is flush with its header word: a number ends where
        // its header ends, a word starts where its header starts.
        let mut from = 0;
        for (k, field) in f.iter().enumerate() {
            let at = from + row[from..].find(field).unwrap();
            from = at + field.len();
            let (start, end) = spans[k];
            match right[k] {
                true => assert_eq!(from, end, "column {k} of {row:?}"),
                false => assert_eq!(at, start, "column {k} of {row:?}"),
            }
        }
    }
}

/// lib_bump's offset in the module, from `aout nm`.
fn nm_offset(module: &Path, name: &str) -> usize {
    let o = run(aout().arg("nm").arg(module));
    let out = text(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in {out}"));
    usize::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

/// The whole lifecycle, driven through a pipe: the address `addr` is
/// given is the one `sym` printed, plus 4.
#[test]
fn refusals_holds_sweep_reload_and_symbols() {
    let m = mods("life");
    let (lib, app) = (m.lib.display(), m.app.display());
    let first = format!(
        "# Two modules: app is bound to lib.
load {lib}
load {app}

list
unload lib          # refused: app depends on it
hold app
hold app
unload app          # refused: held twice
release app
release app
release app         # the shell holds none
call app app_run 5
unload app
sweep
list
load {lib}
call lib lib_bump
call lib lib_bump
call lib lib_add -5 0x10
frobnicate
load
sym lib_bump
"
    );
    let mut sh = Session::new();
    sh.send(&first);
    // The shell answers each command at once: read up to sym's line.
    let addr = hex(&sh.until("lib_bump "));
    sh.send(&format!("addr {:#x}\naddr 0x10\n", addr + 4));
    let (got, status, err) = sh.finish();
    assert_eq!(err, "");
    assert_eq!(status, Some(1), "a command failed:\n{got}");

    let lines: Vec<&str> = got.lines().collect();
    check_list(
        &lines[3..6],
        &[
            ["1", "lib", "0", "1", "live", "no"],
            ["2", "app", "0", "0", "live", "no"],
        ],
    );
    check_list(&lines[19..20], &[]);
    let off = nm_offset(&m.lib, "lib_bump");
    let want_head = "loaded lib id 1\napp: hello\nloaded app id 2\n";
    let want_mid = "\
error: line 6: module lib in use: 0 holds, 1 dependent (app)
held app id 2 holds 1
held app id 2 holds 2
error: line 9: module app in use: 2 holds, 0 dependents
released app id 2 holds 1
released app id 2 holds 0
error: line 12: the shell has no hold on app to release
app: run 5
1006
app: bye
unloaded app id 2
lib: bye after 1 bumps
swept 1
";
    let want_tail = format!(
        "\
loaded lib id 3
1
2
11
error: line 21: unknown command: frobnicate
error: line 22: usage: load [--defer] PATH [NAME] [KEY=VALUE...] | load [--defer] NAME [KEY=VALUE...]
lib_bump {addr:#x} sig={:#010x} module lib
lib+{:#x} lib_bump+0x4
error: line 25: 0x10: in no module
lib: bye after 2 bumps
",
        dynld::signof!("fn(void) int"),
        off + 4
    );
    let want = format!(
        "{want_head}{}\n{want_mid}{}\n{want_tail}",
        lines[3..6].join("\n"),
        lines[19]
    );
    assert_eq!(got, want);
}

/// A script file with comments and blank lines, no failure: status 0; a
/// hold the shell keeps to the end is dropped there, and the module's
/// destructor output shows; a host symbol by name and by address.
#[test]
fn script_file_succeeds_and_unloads_at_end() {
    let m = mods("file");
    let script = m.dir.join("script");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env aout shell\n\n   # indented comment\nload {} mylib # named\n\t\nhold mylib\ncall mylib lib_bump\ncall --ret void mylib lib_bump\ncall --ret u32 mylib lib_add -1 0\nload {} mylib\n",
            m.lib.display(),
            m.lib.display()
        ),
    )
    .unwrap();
    let o = run(aout().arg("shell").arg(&script));
    assert_eq!(
        text(&o.stdout),
        "loaded mylib id 1\nheld mylib id 1 holds 1\n1\n4294967295\n\
         already loaded mylib id 1 holds 1\nlib: bye after 2 bumps\n"
    );
    assert_eq!(text(&o.stderr), "");

    // printf from the host: found by name, and its address is the host's
    // (the C library has aliases at one address, such as _IO_printf: the
    // shell names the first in the table, whose address is printf's).
    let mut sh = Session::new();
    sh.send("sym printf\n");
    let rest = sh.until("printf ");
    assert!(rest.ends_with(" sig=0x00000000 host\n"), "{rest}");
    let addr = hex(&rest);
    sh.send(&format!("addr {addr:#x}\n"));
    let alias = sh.until("host ");
    let alias = alias.strip_suffix("+0x0\n").unwrap();
    sh.send(&format!("sym {alias}\n"));
    assert_eq!(hex(&sh.until(&format!("{alias} "))), addr);
    let (_, status, err) = sh.finish();
    assert_eq!((status, err.as_str()), (Some(0), ""));
}

/// Input the shell refuses line by line: not UTF-8, too long, wrong
/// argument counts; it goes on after each, and ends with status 1. A
/// directory as the script is refused as a whole.
#[test]
fn bad_lines_are_errors_not_panics() {
    let mut input = b"list\n\xff\xfe\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend(b"\nsweep now\nsweep\nunload\ncall lib\ncall lib f 1 2 3 4 5 6 7\n");
    input.extend(b"call --ret i8 lib f\naddr -1\nunload \x1b[2J\nrelease 7\nsweep");
    let o = shell_stdin(&input);
    assert_eq!(
        text(&o.stdout),
        "ID NAME BASE IMAGE MEMORY HOLDS DEPENDENTS STATE CANDIDATE
error: line 2: not UTF-8
error: line 3: longer than 4096 bytes
error: line 4: usage: sweep
swept 0
error: line 6: usage: unload NAME|ID
error: line 7: usage: call [--ret i32|i64|u32|u64|void] NAME FUNC [ARG...]
error: line 8: at most six arguments
error: line 9: --ret i8: not one of i32, i64, u32, u64, void
error: line 10: -1: not an address
error: line 11: no module loaded as \\x1b[2J
error: line 12: no module loaded as id 7
swept 0
"
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "");

    let o = aout().arg("shell").arg(root()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!("aout: {}: Is a directory (os error 21)\n", root().display())
    );
    // A module name that is all digits would read as an id.
    let o = shell_stdin(b"load x.dl 42\n");
    assert_eq!(
        text(&o.stdout),
        "error: line 1: 42: a module name cannot be all digits (an id)\n"
    );
}

/// Runs `aout shell ARGS...` with `script` as its standard input.
fn shell_with(args: &[&str], script: &str) -> Output {
    let mut child = aout()
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Imports `prov_val`, which `PROV` exports.
const USER: &str = r#"
#include "dynld.h"
DYNLD_IMPORT(prov_val, "fn(int) int");
DYNLD_EXPORT(user_get, "fn(int) int");
extern int prov_val(int);
int user_get(int x) { return prov_val(x) + 1; }
"#;

const PROV: &str = r#"
#include "dynld.h"
DYNLD_EXPORT(prov_val, "fn(int) int");
int prov_val(int x) { return 2 * x; }
"#;

/// A module loaded with `--defer` before the module it imports from: its
/// import is listed pending, a call reaching it is an error line naming
/// import and module (and the shell goes on), the provider's load binds
/// it, and the call then works.
#[test]
fn deferred_import_bound_by_a_later_load() {
    let dir = workdir("shell-defer");
    let user = module(&dir, "user", USER);
    let prov = module(&dir, "prov", PROV);
    let (user, prov) = (user.display(), prov.display());
    let o = shell_with(
        &[],
        &format!(
            "load {user}
load --defer {user}
unresolved
call user user_get 20
list
load {prov}
unresolved
call user user_get 20
unload prov
resolve
"
        ),
    );
    let got = text(&o.stdout);
    let lines: Vec<&str> = got.lines().collect();
    let want = format!(
        "error: line 1: {user}: undefined symbol: prov_val
loaded user id 1
user prov_val
error: line 4: call to unresolved import prov_val of module user
{}
loaded prov id 2
41
error: line 9: module prov in use: 0 holds, 1 dependent (user)
resolved 0
",
        lines[4..6].join("\n")
    );
    assert_eq!(got, want);
    check_list(&lines[4..6], &[["1", "user", "0", "0", "live", "no"]]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "");
}

/// Three modules, each importing from the other two, loaded with
/// `--defer` in each of the six orders: every import is bound once the
/// three are loaded, `resolve` has nothing left to do, each calls the
/// others, and all three unload at the end.
#[test]
fn three_deferred_modules_in_every_order() {
    let dir = workdir("shell-ring");
    let names = ["p", "q", "r"];
    let mut paths = Vec::new();
    for (k, n) in names.iter().enumerate() {
        let (a, b) = (names[(k + 1) % 3], names[(k + 2) % 3]);
        let src = format!(
            r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_IMPORT({a}_id, "fn(void) int");
DYNLD_IMPORT({b}_id, "fn(void) int");
DYNLD_EXPORT({n}_id, "fn(void) int");
DYNLD_EXPORT({n}_sum, "fn(void) int");
extern int {a}_id(void);
extern int {b}_id(void);
int {n}_id(void) {{ return {id}; }}
int {n}_sum(void) {{ return 10 * {a}_id() + {b}_id(); }}
__attribute__((destructor)) static void bye(void) {{ printf("{n}: bye\n"); }}
"#,
            id = k + 1
        );
        paths.push(module(&dir, n, &src));
    }
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let mut script = String::new();
        let mut want = String::new();
        for (id, &k) in order.iter().enumerate() {
            script.push_str(&format!("load --defer {}\n", paths[k].display()));
            want.push_str(&format!("loaded {} id {}\n", names[k], id + 1));
        }
        script.push_str("unresolved\nresolve\ncall p p_sum\ncall q q_sum\ncall r r_sum\n");
        want.push_str("resolved 0\n23\n31\n12\n");
        let o = shell_with(&[], &script);
        let got = text(&o.stdout);
        let (head, tail) = got.split_at(want.len().min(got.len()));
        assert_eq!(head, want, "order {order:?}");
        // The registry unloads the three at the end.
        let mut byes: Vec<&str> = tail.lines().collect();
        byes.sort_unstable();
        assert_eq!(byes, ["p: bye", "q: bye", "r: bye"], "order {order:?}");
        assert_eq!(o.status.code(), Some(0), "order {order:?}: {got}");
    }
}

/// `resolve` with imports nothing provides: an error line naming each,
/// with its module; after the provider loads it has nothing left.
#[test]
fn resolve_names_what_is_left() {
    let dir = workdir("shell-resolve");
    let user = module(&dir, "user", USER);
    let two = module(
        &dir,
        "two",
        r#"
#include "dynld.h"
DYNLD_IMPORT(gone_a, "fn(void) int");
DYNLD_IMPORT(gone_b, "fn(void) int");
DYNLD_EXPORT(two_f, "fn(void) int");
extern int gone_a(void), gone_b(void);
int two_f(void) { return gone_a() + gone_b(); }
"#,
    );
    let prov = module(&dir, "prov", PROV);
    let o = shell_with(
        &[],
        &format!(
            "resolve\nload --defer {}\nload --defer {}\nresolve\nunresolved\nload {}\nresolve\ncall two two_f\nunresolved\nresolve extra\n",
            user.display(),
            two.display(),
            prov.display()
        ),
    );
    assert_eq!(
        text(&o.stdout),
        "resolved 0
loaded user id 1
loaded two id 2
error: line 4: undefined symbols: prov_val (user), gone_a (two), gone_b (two)
user prov_val
two gone_a
two gone_b
loaded prov id 3
error: line 7: undefined symbols: gone_a (two), gone_b (two)
error: line 8: call to unresolved import gone_a of module two
two gone_a
two gone_b
error: line 10: usage: resolve
"
    );
    assert_eq!(o.status.code(), Some(1));
}

/// Two modules importing from each other, loaded with `--defer`: both
/// work; unloading one is refused while the other is held, and then
/// unloads the whole cycle, newest first.
#[test]
fn a_cycle_loads_works_and_unloads_whole() {
    let dir = workdir("shell-cycle");
    let c1 = module(
        &dir,
        "c1",
        r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_IMPORT(c2_val, "fn(void) int");
DYNLD_EXPORT(c1_val, "fn(void) int");
DYNLD_EXPORT(c1_sum, "fn(void) int");
extern int c2_val(void);
int c1_val(void) { return 1; }
int c1_sum(void) { return c2_val() + 100; }
__attribute__((destructor)) static void bye(void) { printf("c1: bye\n"); }
"#,
    );
    let c2 = module(
        &dir,
        "c2",
        r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_IMPORT(c1_val, "fn(void) int");
DYNLD_EXPORT(c2_val, "fn(void) int");
DYNLD_EXPORT(c2_sum, "fn(void) int");
extern int c1_val(void);
int c2_val(void) { return 2; }
int c2_sum(void) { return c1_val() + 200; }
__attribute__((destructor)) static void bye(void) { printf("c2: bye\n"); }
"#,
    );
    let o = shell_with(
        &[],
        &format!(
            "load --defer {}\nload --defer {}\ncall c1 c1_sum\ncall c2 c2_sum\nlist\nhold c2\nunload c1\nrelease c2\nunload c1\nlist\n",
            c1.display(),
            c2.display()
        ),
    );
    let got = text(&o.stdout);
    let lines: Vec<&str> = got.lines().collect();
    check_list(
        &lines[4..7],
        &[
            ["1", "c1", "0", "1", "live", "no"],
            ["2", "c2", "0", "1", "live", "no"],
        ],
    );
    check_list(&lines[14..15], &[]);
    let want = format!(
        "loaded c1 id 1
loaded c2 id 2
102
201
{}
held c2 id 2 holds 1
error: line 7: module c1 in use: 0 holds, 1 dependent (c2)
released c2 id 2 holds 0
c2: bye
c1: bye
unloaded c1 id 1
unloaded c2 id 2
{}
",
        lines[4..7].join("\n"),
        lines[14]
    );
    assert_eq!(got, want);
    assert_eq!(o.status.code(), Some(1));
}

/// A library with metadata, version 1.3.0.
const META_LIB: &str = r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_MODULE(lib, "1.3.0", "library");
DYNLD_EXPORT(lib_twice, "fn(int) int");
int lib_twice(int x) { return 2 * x; }
__attribute__((destructor)) static void bye(void) { printf("lib: bye\n"); }
"#;

/// Depends on lib, requires ABI kernel 1.0; its setup keeps option
/// `depth` (refusing the load with 22 without it), which `app_depth`
/// returns doubled by lib.
const META_APP: &str = r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_MODULE(app, "0.2.1", "driver",
	DYNLD_ABI("kernel", 1, 0) DYNLD_DEPENDS(lib, "1.0")
	DYNLD_SETUP(app_setup) DYNLD_TEARDOWN(app_teardown));
DYNLD_IMPORT(lib_twice, "fn(int) int");
DYNLD_EXPORT(app_depth, "fn(void) int");
extern int lib_twice(int);
static int depth = -1;
dynld_setup_fn app_setup;
int app_setup(const struct dynld_option *opt, unsigned n) {
	for (unsigned i = 0; i < n; i++) {
		const char *k = opt[i].key, *v = opt[i].value;
		if (k[0] == 'd' && k[1] == 'e' && k[2] == 'p' && k[3] == 't' && k[4] == 'h' && !k[5])
			for (depth = 0; *v >= '0' && *v <= '9'; v++)
				depth = 10 * depth + *v - '0';
	}
	printf("app: setup with %u options\n", n);
	return depth < 0 ? 22 : 0;
}
dynld_teardown_fn app_teardown;
void app_teardown(void) { printf("app: teardown\n"); }
int app_depth(void) { return lib_twice(depth); }
__attribute__((destructor)) static void bye(void) { printf("app: bye\n"); }
"#;

/// Requires ABI kernel 2.0, which the shell does not offer.
const META_NEWABI: &str = r#"
#include "dynld.h"
DYNLD_MODULE(newabi, "1.0.0", "driver", DYNLD_ABI("kernel", 2, 0));
DYNLD_EXPORT(newabi_f, "fn(void) int");
int newabi_f(void) { return 1; }
"#;

/// `lib.dl`, `app.dl` and `newabi.dl` in a directory of their own, for
/// `--path`.
fn meta_mods(test: &str) -> PathBuf {
    let dir = workdir(&format!("shell-{test}"));
    let mods = dir.join("mods");
    std::fs::create_dir_all(&mods).unwrap();
    for (name, src) in [
        ("lib", META_LIB),
        ("app", META_APP),
        ("newabi", META_NEWABI),
    ] {
        let m = module(&dir, name, src);
        std::fs::rename(&m, mods.join(format!("{name}.dl"))).unwrap();
    }
    mods
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Loading by name through `--path`: the dependency comes first, options
/// reach the setup function, a refusing setup leaves nothing loaded (the
/// dependency loaded for it goes too), the ABI is checked, `info` shows
/// registry facts and metadata, teardown runs before the destructors.
#[test]
fn load_by_name_dependencies_and_setup_options() {
    let mods = meta_mods("named");
    let dir = mods.display();
    let start = now_ms();
    let o = shell_with(
        &["--path", &dir.to_string(), "--abi", "kernel:1.4"],
        &format!(
            "load app
list
load app depth=21 mode=fast
call app app_depth
list
info app
info lib
load newabi
load nosuch
unload app
load {dir}/app.dl myapp depth=5
call myapp app_depth
unload myapp
sweep
list
"
        ),
    );
    let end = now_ms();
    let got = text(&o.stdout);
    let lines: Vec<&str> = got.lines().collect();
    check_list(&lines[4..5], &[]);
    check_list(
        &lines[8..11],
        &[
            ["3", "lib", "0", "1", "live", "yes"],
            ["4", "app", "0", "0", "live", "no"],
        ],
    );
    check_list(&lines[48..49], &[]);
    // Loaded during the test, app after lib.
    let stamp = |k: usize| {
        let t: u64 = lines[k]
            .strip_prefix("loaded-at ")
            .unwrap()
            .parse()
            .unwrap();
        assert!((start..=end).contains(&t), "{t} not in {start}..={end}");
        t
    };
    let (app_at, lib_at) = (stamp(17), stamp(31));
    assert!(lib_at <= app_at);
    let want = format!(
        "app: setup with 0 options
app: bye
lib: bye
error: line 1: app: module app refused its setup with code 22
{}
app: setup with 2 options
loaded app id 4
42
{}
id 4
name app
state live
holds 0
dependents 0
pending 0
loaded-at {app_at}
module app
version 0.2.1
class driver
abi kernel 1.0
depends lib >=1.0.0, <2.0.0
setup app_setup
teardown app_teardown
id 3
name lib
state live
holds 0
dependents 1
pending 0
loaded-at {lib_at}
module lib
version 1.3.0
class library
error: line 8: newabi: module newabi requires ABI kernel 2.0; the host offers kernel 1.4
error: line 9: module nosuch not found
app: teardown
app: bye
unloaded app id 4
app: setup with 1 options
loaded myapp id 5
10
app: teardown
app: bye
unloaded myapp id 5
lib: bye
swept 1
{}
",
        lines[4],
        lines[8..11].join("\n"),
        lines[48]
    );
    assert_eq!(got, want);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "");
}

/// `load`'s options and names refused line by line; a module without
/// metadata says so in `info`; without `--path` a name is found nowhere
/// (and the error says how to give a path); a `--path` that is not a
/// directory, or an `--abi` that is not CLASS:MAJOR.MINOR, is refused.
#[test]
fn load_words_refused_and_info_without_metadata() {
    let mods = meta_mods("words");
    let prov = module(mods.parent().unwrap(), "prov", PROV);
    let path = mods.display().to_string();
    let o = shell_with(
        &["--path", &path, "--path", &path],
        &format!(
            "load lib depth
load lib =1
load lib a\0b=1
load lib k=v\0
load --defer
load {} p x=1 y
load lib
load lib k=v
load --defer {} prov
info prov
info
info 9
",
            prov.display(),
            prov.display()
        ),
    );
    let got = text(&o.stdout);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[..12].join("\n"),
        format!(
            "error: line 1: depth: not an option (KEY=VALUE)
error: line 2: =1: an option needs a key (KEY=VALUE)
error: line 3: a\\0b=1: an option cannot hold a NUL byte
error: line 4: k=v\\0: an option cannot hold a NUL byte
error: line 5: usage: load [--defer] PATH [NAME] [KEY=VALUE...] | load [--defer] NAME [KEY=VALUE...]
error: line 6: y: not an option (KEY=VALUE)
loaded lib id 1
already loaded lib id 1 holds 0
loaded prov id 2
id 2
name prov
state live"
        )
    );
    assert!(lines[15].starts_with("loaded-at "), "{got}");
    assert_eq!(
        lines[16..].join("\n"),
        "metadata none
error: line 11: usage: info NAME|ID
error: line 12: no module loaded as id 9
lib: bye"
    );
    assert_eq!(o.status.code(), Some(1));

    let o = shell_with(&[], "load lib\n");
    assert_eq!(
        text(&o.stdout),
        "error: line 1: module lib not found (no --path directories to search; a path holds / or ends in .dl)\n"
    );
    let o = shell_with(&["--path", &format!("{path}/lib.dl")], "");
    assert_eq!(
        text(&o.stderr),
        format!("aout: --path {path}/lib.dl: not a directory\n")
    );
    assert_eq!(o.status.code(), Some(1));
    let o = shell_with(&["--path", &format!("{path}/none")], "");
    assert_eq!(
        text(&o.stderr),
        format!("aout: --path {path}/none: No such file or directory (os error 2)\n")
    );
    for bad in ["kernel", "kernel:1", ":1.0", "kernel:1.x", "kernel:-1.0"] {
        let o = shell_with(&["--abi", bad], "");
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(text(&o.stderr).contains("not CLASS:MAJOR.MINOR"), "{bad}");
    }
}

/// `aout run --path`: the module is loaded through a registry, which
/// loads the dependency its metadata declares from the directory first
/// and unloads it after the module; without `--path` the module is
/// loaded alone, as before, and its import is undefined.
#[test]
fn run_loads_declared_dependencies_from_path() {
    let mods = meta_mods("run-path");
    let dir = mods.parent().unwrap();
    let uses = module(
        dir,
        "uses",
        r#"
#include <stdio.h>
#include "dynld.h"
DYNLD_MODULE(uses, "1.0.0", "driver", DYNLD_DEPENDS(lib, "1"));
DYNLD_IMPORT(lib_twice, "fn(int) int");
DYNLD_EXPORT(uses_f, "fn(int) int");
extern int lib_twice(int);
int uses_f(int x) { return lib_twice(x) + 1; }
__attribute__((destructor)) static void bye(void) { printf("uses: bye\n"); }
"#,
    );
    let (m, u) = (mods.to_str().unwrap(), uses.to_str().unwrap());
    let o = aout()
        .args(["run", "--path", m, u, "uses_f", "4"])
        .output()
        .unwrap();
    assert_eq!(
        (text(&o.stdout).as_str(), text(&o.stderr).as_str()),
        ("9\nuses: bye\nlib: bye\n", "")
    );
    assert_eq!(o.status.code(), Some(0));

    let o = aout().args(["run", u, "uses_f", "4"]).output().unwrap();
    assert_eq!(
        text(&o.stderr),
        format!("aout: {u}: undefined symbol: lib_twice\n")
    );
    assert_eq!(o.status.code(), Some(1));

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let o = aout()
        .args(["run", "--path", e, u, "uses_f", "4"])
        .output()
        .unwrap();
    assert_eq!(
        text(&o.stderr),
        format!("aout: {u}: module lib not found\n")
    );
    assert_eq!(o.status.code(), Some(1));

    // ABIs as `--abi` offers them; `run` passes no options to setup.
    let app = format!("{m}/app.dl");
    let o = aout()
        .args(["run", "--path", m, &app, "app_depth"])
        .output()
        .unwrap();
    assert_eq!(
        text(&o.stderr),
        format!("aout: {app}: module app requires ABI kernel 1.0; the host offers no kernel ABI\n")
    );
    assert_eq!(o.status.code(), Some(1));
    let o = aout()
        .args(["run", "--path", m, "--abi", "kernel:1.2", &app, "app_depth"])
        .output()
        .unwrap();
    assert_eq!(
        (text(&o.stdout).as_str(), text(&o.stderr)),
        (
            "app: setup with 0 options\napp: bye\nlib: bye\n",
            format!("aout: {app}: module app refused its setup with code 22\n")
        )
    );
    // Without --path, --abi alone loads through a registry too: it finds
    // no dependency.
    let o = aout()
        .args(["run", "--abi", "kernel:1.2", u, "uses_f", "4"])
        .output()
        .unwrap();
    assert_eq!(
        text(&o.stderr),
        format!("aout: {u}: module lib not found\n")
    );
    let o = aout()
        .args(["run", "--path", &app, u, "uses_f", "4"])
        .output()
        .unwrap();
    assert_eq!(
        text(&o.stderr),
        format!("aout: --path {app}: not a directory\n")
    );
}
