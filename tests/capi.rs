//! The C API (`capi/`, `libdynld_capi.a`, declared in `include/dynld.h`)
//! from C: a hosted program written against dynld(3) that loads modules
//! from a memory buffer through its own read and seek callbacks, and a
//! freestanding Cortex-M3 kernel in C that loads a module from its flash
//! into an arena under QEMU, with no malloc linked.
//!
//! The hosts' `_exporttab`s are written here by a small generator (names
//! sorted, signatures from `dynld::sig::hash`, a nil entry at the end):
//! `aout exports --lang c` on this branch declares a `struct Dynsym` of its
//! own, which would clash with the header's.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A cargo command free of the environment of the cargo running this test.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Builds libdynld_capi.a (for `target`, freestanding, if given); returns
/// its path.
fn staticlib(target: Option<&str>) -> PathBuf {
    let tdir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-lib");
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "dynld-capi", "--target-dir"])
        .arg(&tdir);
    if let Some(t) = target {
        cmd.args([
            "--target",
            t,
            "--no-default-features",
            "--features",
            "freestanding",
        ]);
    }
    assert!(cmd.status().expect("cargo").success(), "building capi");
    match target {
        Some(t) => tdir.join(t).join("release/libdynld_capi.a"),
        None => tdir.join("release/libdynld_capi.a"),
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sig(desc: &str) -> u32 {
    dynld::sig::hash(desc).unwrap()
}

/// A C `_exporttab` over `(name, desc)` pairs, sorted, nil-terminated.
fn exporttab(syms: &[(&str, &str)]) -> String {
    let mut s: Vec<_> = syms.to_vec();
    s.sort();
    let mut c = String::from("Dynsym _exporttab[] = {\n");
    for (name, desc) in &s {
        c += &format!(
            "\t{{{:#010x}, (uintptr_t){name}, \"{name}\"}}, /* {desc} */\n",
            sig(desc)
        );
    }
    c + "\t{0, 0, 0},\n};\n"
}

const MODULE: &str = r#"
#include "dynld.h"
DYNLD_IMPORT(host_add, "fn(int, int) int");
DYNLD_IMPORT(host_log, "fn(*char) void");
DYNLD_EXPORT(triple_add, "fn(int, int) int");
DYNLD_EXPORT(counter, "int");
extern int host_add(int, int);
extern void host_log(const char *);
int counter = 100;
int triple_add(int a, int b)
{
	counter++;
	host_log("triple_add called");
	return 3 * host_add(a, b);
}
"#;

/// Imports host_add with another type than the host's.
const MISTYPED: &str = r#"
#include "dynld.h"
DYNLD_IMPORT(host_add, "fn(int, int) uint");
DYNLD_EXPORT(use_add, "fn(void) uint");
extern unsigned host_add(int, int);
unsigned use_add(void) { return host_add(1, 2); }
"#;

const HOST: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dynld.h"

/* A module file in memory, read through dynloadgen's callbacks. */
struct mem {
	unsigned char *p;
	long long n, off;
};

static long mread(void *f, void *buf, long n)
{
	struct mem *m = f;
	long long left = m->n - m->off;

	if (n > left)
		n = (long)left;
	memcpy(buf, m->p + m->off, (size_t)n);
	m->off += n;
	return n;
}

static long long mseek(void *f, long long off, int type)
{
	struct mem *m = f;
	long long to = type == 0 ? off : type == 1 ? m->off + off : m->n + off;

	if (to < 0 || to > m->n)
		return -1;
	m->off = to;
	return to;
}

static int nerr;
static char lasterr[256];

static void err(char *s)
{
	nerr++;
	snprintf(lasterr, sizeof lasterr, "%s", s);
}

static struct mem slurp(const char *path)
{
	struct mem m = {0, 0, 0};
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		exit(2);
	m.p = malloc(1 << 20);
	m.n = (long long)fread(m.p, 1, 1 << 20, f);
	fclose(f);
	return m;
}

int host_add(int a, int b) { return a + b; }
void host_log(char *s) { printf("log: %s\n", s); }

EXPORTTAB

static char *errstr(void)
{
	static char b[256];
	dynld_errstr(b, sizeof b);
	return b;
}

int main(int argc, char **argv)
{
	struct mem good, bad, mistyped;
	Dynobj *o;
	Dynsym *s, unsorted[3];
	int (*tri)(int, int), *counter, i, n, h, r;
	void *p;
	Dynloc loc;

	if (argc != 3)
		return 2;
	good = slurp(argv[1]);
	mistyped = slurp(argv[2]);
	n = dyntabsize(_exporttab);
	printf("dyntabsize %d\n", n);
	s = dynfindsym("host_log", _exporttab, n);
	printf("dynfindsym host_log: %s\n", s == &_exporttab[1] ? "entry 1" : "wrong");
	printf("dynfindsym nope: %s\n", dynfindsym("nope", _exporttab, n) ? "found" : "nil");
	printf("dynld_sig: %s\n", dynld_sig("fn(int, int) int") == SIG_TRIPLE ? "ok" : "wrong");
	printf("dynld_sig bad: %lu\n", dynld_sig("fn(int"));
	printf("dynloadable: %d\n", dynloadable(&good, mread, mseek));

	good.off = 0;
	o = dynloadgen(&good, mread, mseek, err, _exporttab, n, 0);
	if (o == NULL) {
		printf("load failed: %s\n", lasterr);
		return 1;
	}
	printf("loaded: text %lu data %lu bss %lu size %lu\n", o->text > 0 ? 1UL : 0UL,
		o->data > 0 ? 1UL : 0UL, o->bss, o->size >= o->text + o->data + o->bss ? 1UL : 0UL);
	printf("exports %d:", o->nexport);
	for (i = 0; i < o->nexport; i++)
		printf(" %s", o->export[i].name);
	printf("\nimports %d:", o->nimport);
	for (i = 0; i < o->nimport; i++)
		printf(" %s%s", o->import[i]->name,
			o->import[i] >= _exporttab && o->import[i] < _exporttab + n ? "(tab)" : "(?)");
	printf("\n");
	dynld_init(o);
	tri = (int (*)(int, int))dynimport(o, "triple_add", dynld_sig("fn(int, int) int"));
	counter = dynimport(o, "counter", dynld_sig("int"));
	if (tri == NULL || counter == NULL) {
		printf("dynimport failed: %s\n", errstr());
		return 1;
	}
	printf("triple_add(2, 5) = %d\n", tri(2, 5));
	printf("counter = %d\n", *counter);
	p = dynimport(o, "triple_add", dynld_sig("fn(int, int) uint"));
	printf("dynimport mistyped: %s\n", p ? "found" : "nil");
	printf("errstr: %s\n", errstr());
	p = dynimport(o, "nope", 0);
	printf("dynimport missing: %s\n", p ? "found" : "nil");
	printf("errstr: %s\n", errstr());
	dynfreeimport(o);
	printf("after dynfreeimport: nimport %d, triple_add(1, 1) = %d\n", o->nimport,
		((int (*)(int, int))dynimport(o, "triple_add", 0))(1, 1));
	dynobjfree(o);

	bad = good;
	bad.p = malloc((size_t)good.n);
	memcpy(bad.p, good.p, (size_t)good.n);
	bad.p[0] ^= 0xff;
	bad.off = 0;
	printf("dynloadable bad: %d\n", dynloadable(&bad, mread, mseek));
	o = dynloadgen(&bad, mread, mseek, err, _exporttab, n, 0);
	printf("bad module: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);
	bad.n = 40;
	memcpy(bad.p, good.p, 40);
	bad.off = 0;
	o = dynloadgen(&bad, mread, mseek, err, _exporttab, n, 0);
	printf("truncated module: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);
	o = dynloadgen(&mistyped, mread, mseek, err, _exporttab, n, 0);
	printf("mistyped module: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);
	unsorted[0] = _exporttab[1];
	unsorted[1] = _exporttab[0];
	good.off = 0;
	o = dynloadgen(&good, mread, mseek, err, unsorted, 2, 0);
	printf("unsorted table: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);
	good.off = 0;
	o = dynloadgen(&good, mread, mseek, err, _exporttab, n, 64);
	printf("maxsize 64: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);
	o = dynloadgen(&good, NULL, mseek, err, _exporttab, n, 0);
	printf("nil read: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);

	/* The registry. */
	r = dynld_regload("m", &good, mread, mseek);
	printf("regload before reginit: %d: %s\n", r, errstr());
	printf("reginit: %d\n", dynld_reginit(_exporttab, n));
	good.off = 0;
	h = dynld_regload("m", &good, mread, mseek);
	printf("regload: %s\n", h > 0 ? "held" : errstr());
	tri = (int (*)(int, int))dynld_lookup("triple_add", dynld_sig("fn(int, int) int"));
	printf("lookup triple_add(1, 2) = %d\n", tri ? tri(1, 2) : -1);
	printf("lookup host_add: %s\n", dynld_lookup("host_add", 0) == (void *)host_add ? "host" : "wrong");
	p = dynld_lookup("triple_add", dynld_sig("fn(void) int"));
	printf("lookup mistyped: %s: %s\n", p ? "found" : "nil", errstr());
	printf("holdsym counter: %d\n", *(int *)dynld_holdsym(h, "counter", dynld_sig("int")));
	if (dynld_locate((char *)tri + 2, &loc) == 0)
		printf("locate: %s: %s+%lu\n", loc.module, loc.symbol, loc.symbol_offset);
	else
		printf("locate: %s\n", errstr());
	printf("locate nowhere: %d\n", dynld_locate((void *)16, &loc));
	r = dynld_unload("m");
	printf("unload while held: %d: %s\n", r, errstr());
	printf("release: %d\n", dynld_release(h));
	r = dynld_release(h);
	printf("release again: %d: %s\n", r, errstr());
	printf("unload: %d\n", dynld_unload("m"));
	printf("lookup after unload: %s\n", dynld_lookup("triple_add", 0) ? "found" : "nil");
	r = dynld_hold("m");
	printf("hold unloaded: %d: %s\n", r, errstr());
	printf("arena on a hosted build: %d\n", dynld_arena(good.p, 16));
	printf("done\n");
	return 0;
}
"#;

fn cc_check(cc: &str, dir: &Path) {
    let c = dir.join("header.c");
    std::fs::write(
        &c,
        "#include \"dynld.h\"\nint main(void) { return dyntabsize(0); }\n",
    )
    .unwrap();
    run(
        Command::new(cc)
            .args([
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-pedantic",
                "-Werror",
                "-c",
                "-I",
            ])
            .arg(root().join("include"))
            .arg(&c)
            .arg("-o")
            .arg(dir.join(format!("header-{cc}.o"))),
        cc,
    );
}

/// include/dynld.h compiles warning-free as C99 with gcc and clang.
#[test]
fn header_is_clean_c99() {
    let dir = scratch("capi-header");
    cc_check("gcc", &dir);
    cc_check("clang", &dir);
}

/// A hosted C program against dynld(3): dynloadgen over its callbacks, its
/// `_exporttab`, dynimport with run-time signatures, errors through err
/// and dynld_errstr, and the registry calls.
#[test]
fn hosted_c_program() {
    let lib = staticlib(None);
    let dir = scratch("capi-hosted");
    let good = dynld_suite::cc::module("capi-good", &[MODULE], false);
    let mistyped = dynld_suite::cc::module("capi-mistyped", &[MISTYPED], false);
    std::fs::write(dir.join("good.dl"), &good).unwrap();
    std::fs::write(dir.join("mistyped.dl"), &mistyped).unwrap();
    let tab = exporttab(&[
        ("host_log", "fn(*char) void"),
        ("host_add", "fn(int, int) int"),
    ]);
    let src = HOST.replace("EXPORTTAB", &tab);
    std::fs::write(dir.join("host.c"), src).unwrap();
    let exe = dir.join("host");
    run(
        Command::new("gcc")
            // Not -pedantic: dynimport's result becomes a function pointer,
            // as in the manual's example (the header itself is checked
            // pedantic by header_is_clean_c99).
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"])
            .arg(format!("-DSIG_TRIPLE={:#x}UL", sig("fn(int, int) int")))
            .arg("-I")
            .arg(root().join("include"))
            .arg(dir.join("host.c"))
            .arg(&lib)
            .args([
                "-lpthread",
                "-ldl",
                "-lm",
                "-lrt",
                "-lutil",
                "-lgcc_s",
                "-o",
            ])
            .arg(&exe),
        "gcc host.c",
    );
    let out = Command::new(&exe)
        .arg(dir.join("good.dl"))
        .arg(dir.join("mistyped.dl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    assert!(out.status.success(), "host exited {:?}", out.status);
    let want_mismatch = format!(
        "signature mismatch: host_add: module wants {:#010x}, host has {:#010x}",
        sig("fn(int, int) uint"),
        sig("fn(int, int) int")
    );
    let expect: &[&str] = &[
        "dyntabsize 2",
        "dynfindsym host_log: entry 1",
        "dynfindsym nope: nil",
        "dynld_sig: ok",
        "dynld_sig bad: 0",
        "dynloadable: 1",
        "loaded: text 1 data 1 bss 0 size 1",
        "exports 2: counter triple_add",
        "imports 2: host_add(tab) host_log(tab)",
        "log: triple_add called",
        "triple_add(2, 5) = 21",
        "counter = 101",
        "dynimport mistyped: nil",
        "errstr: signature mismatch: triple_add",
        "dynimport missing: nil",
        "errstr: undefined symbol: nope",
        "after dynfreeimport: nimport 0, triple_add(1, 1) = 6",
        "dynloadable bad: 0",
        "bad module: nil, err called 1: ",
        "truncated module: nil, err called 2: ",
        &format!("mistyped module: nil, err called 3: {want_mismatch}"),
        "unsorted table: nil, err called 4: export table not sorted by name or a name repeated: host_add",
        "maxsize 64: nil, err called 5: ",
        "nil read: nil, err called 6: nil read or seek function",
        "regload before reginit: -1: registry not set up: call dynld_reginit first",
        "reginit: 0",
        "regload: held",
        "lookup triple_add(1, 2) = 9",
        "lookup host_add: host",
        "lookup mistyped: nil: signature mismatch: triple_add",
        "holdsym counter: 101",
        "locate: m: triple_add+2",
        "locate nowhere: -1",
        "unload while held: -1: module m in use: 1 hold, 0 dependents",
        "release: 0",
        "release again: -1: no such hold",
        "unload: 0",
        "lookup after unload: nil",
        "hold unloaded: -1: ",
        "arena on a hosted build: -1",
        "done",
    ];
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("log: ") || l.contains("triple"))
        .collect();
    let mut at = 0;
    for want in expect {
        let found = lines[at..].iter().position(|l| l.starts_with(want));
        match found {
            Some(k) => at += k + 1,
            None => panic!("no line starting {want:?} after line {at} in:\n{text}"),
        }
    }
    // The errors say what went wrong, not only that something did.
    for l in &lines {
        if l.starts_with("bad module")
            || l.starts_with("truncated module")
            || l.starts_with("maxsize")
            || l.starts_with("hold unloaded")
        {
            let msg = l.rsplit(": ").next().unwrap();
            assert!(msg.len() > 4, "empty error in {l:?}");
        }
    }
}
