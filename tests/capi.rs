//! The C API (`capi/`, `libdynld_capi.a`, declared in `include/dynld.h`)
//! from C: a hosted program written against dynld(3) that loads modules
//! from a memory buffer through its own read and seek callbacks, and a
//! freestanding Cortex-M3 kernel in C that loads a module from its flash
//! into an arena under QEMU, with no malloc linked.
//!
//! The hosted program's `_exporttab` and `_exportdesc` are written by
//! `aout exports --lang c` from the program's own object, compiled with
//! `-g`: the signatures come from its debug information (Plan 9's `-x`).
//! The freestanding kernel states its table by hand.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

/// What `aout exports --lang c OBJ` writes (the library behind it).
fn exports_c(obj: &Path) -> String {
    let input = aout_tools::link::Input::read(obj).unwrap();
    let got = aout_tools::exports::from_elf(vec![input], false).unwrap();
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    aout_tools::exports::render(&got.syms, aout_tools::exports::Lang::C).unwrap()
}

/// The C callbacks the hosts give dynloadgen: a module file in memory.
const MEMCALLBACKS: &str = r#"/* A module file in memory, read through dynloadgen's callbacks. */
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
"#;

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

MEMCALLBACKS
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

/* From aout exports --lang c over this file's object. */
extern Dynsym _exporttab[];
extern const char *const _exportdesc[];

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
	int (*tri)(int, int), *counter, i, n, h, h2, r;
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
	printf("describe: %d\n", dynld_describe(_exporttab, _exportdesc));
	mistyped.off = 0;
	o = dynloadgen(&mistyped, mread, mseek, err, _exporttab, n, 0);
	printf("mistyped, described: %s, err called %d: %s\n", o ? "loaded" : "nil", nerr, lasterr);
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
	h2 = dynld_hold("m");
	r = dynld_release(h);
	printf("stale release: %s %d: %s\n", h2 > 0 && h2 != h ? "new handle," : "same handle!", r, errstr());
	printf("release new: %d\n", dynld_release(h2));
	printf("unload: %d\n", dynld_unload("m"));
	printf("lookup after unload: %s\n", dynld_lookup("triple_add", 0) ? "found" : "nil");
	r = dynld_hold("m");
	printf("hold unloaded: %d: %s\n", r, errstr());
	good.off = 0;
	h = dynld_regload("m", &good, mread, mseek);
	r = dynld_unload("m");
	i = dynld_sweep();
	printf("unload held again: %d, sweep while held: %d\n", r, i);
	dynld_release(h);
	r = dynld_sweep();
	printf("sweep after release: %d, lookup: %s\n", r,
		dynld_lookup("triple_add", 0) ? "found" : "nil");
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
    std::fs::write(
        dir.join("host.c"),
        HOST.replace("MEMCALLBACKS", MEMCALLBACKS),
    )
    .unwrap();
    let exe = dir.join("host");
    let c99 = |src: &str, obj: &str| {
        run(
            Command::new("gcc")
                // Not -pedantic: dynimport's result becomes a function
                // pointer, as in the manual's example (the header itself
                // is checked pedantic by header_is_clean_c99).
                .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-c"])
                .arg(format!("-DSIG_TRIPLE={:#x}UL", sig("fn(int, int) int")))
                .arg("-I")
                .arg(root().join("include"))
                .arg(dir.join(src))
                .arg("-o")
                .arg(dir.join(obj)),
            src,
        )
    };
    c99("host.c", "host.o");
    std::fs::write(dir.join("tab.c"), exports_c(&dir.join("host.o"))).unwrap();
    c99("tab.c", "tab.o");
    run(
        Command::new("gcc")
            .arg(dir.join("host.o"))
            .arg(dir.join("tab.o"))
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
        "signature mismatch: host_add: module wants fn(int, int) uint ({:#010x}), host has {:#010x}",
        sig("fn(int, int) uint"),
        sig("fn(int, int) int")
    );
    let expect: &[&str] = &[
        "dyntabsize 3",
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
        "describe: 0",
        &format!(
            "mistyped, described: nil, err called 4: signature mismatch: host_add: module wants fn(int, int) uint ({:#010x}), host has fn(int, int) int ({:#010x})",
            sig("fn(int, int) uint"),
            sig("fn(int, int) int")
        ),
        "unsorted table: nil, err called 5: export table not sorted by name or a name repeated: host_add",
        "maxsize 64: nil, err called 6: ",
        "nil read: nil, err called 7: nil read or seek function",
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
        "stale release: new handle, -1: no such hold",
        "release new: 0",
        "unload: 0",
        "lookup after unload: nil",
        "hold unloaded: -1: ",
        "unload held again: -1, sweep while held: 0",
        "sweep after release: 1, lookup: nil",
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

/// The Cortex-M3 kernel's module: calls back into the kernel.
const ARM_MODULE: &str = r#"
#include "dynld.h"
DYNLD_IMPORT(kputs, "fn(*char) void");
DYNLD_IMPORT(kadd, "fn(int, int) int");
DYNLD_EXPORT(mod_sum, "fn(int) int");
extern void kputs(const char *);
extern int kadd(int, int);
static int base = 1000;
int mod_sum(int n)
{
	int s = base;
	kputs("mod_sum running\n");
	while (n > 0)
		s = kadd(s, n--);
	return s;
}
"#;

/// Imports kadd with another type than the kernel's.
const ARM_MISTYPED: &str = r#"
#include "dynld.h"
DYNLD_IMPORT(kadd, "fn(int, int) uint");
DYNLD_EXPORT(f, "fn(void) uint");
extern unsigned kadd(int, int);
unsigned f(void) { return kadd(1, 2); }
"#;

/// A freestanding C kernel for QEMU mps2-an385: prints over the CMSDK
/// UART, exits through semihosting; no C library.
const KERNEL: &str = r#"
#include "dynld.h"

#define UART_DATA (*(volatile unsigned *)0x40004000)
#define UART_STATE (*(volatile unsigned *)0x40004004)
#define UART_CTRL (*(volatile unsigned *)0x40004008)

extern unsigned _sbss, _ebss, _sdata, _edata, _sidata, _stack_top;
void reset(void);
__attribute__((section(".vectors"), used)) static void *const vectors[] = {
	&_stack_top, (void *)reset,
};

void kputs(const char *s)
{
	while (*s) {
		while (UART_STATE & 1)
			;
		UART_DATA = (unsigned char)*s++;
	}
}

static void kputn(long v)
{
	char b[24];
	int i = 23;
	int neg = v < 0;
	unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;

	b[i] = 0;
	do {
		b[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		b[--i] = '-';
	kputs(b + i);
}

int kadd(int a, int b) { return a + b; }

static void kexit(int ok)
{
	register unsigned r0 __asm__("r0") = 0x18;
	register unsigned r1 __asm__("r1") = ok ? 0x20026 : 0x20023;
	__asm__ volatile("bkpt #0xab" : : "r"(r0), "r"(r1));
	for (;;)
		;
}

MODULES

Dynsym _exporttab[] = {
EXPORTS
	{0, 0, 0},
};

struct flash {
	const unsigned char *p;
	long n, off;
};

static long fread_(void *f, void *buf, long n)
{
	struct flash *m = f;
	long i;

	if (n > m->n - m->off)
		n = m->n - m->off;
	for (i = 0; i < n; i++)
		((unsigned char *)buf)[i] = m->p[m->off + i];
	m->off += n;
	return n;
}

static long long fseek_(void *f, long long off, int type)
{
	struct flash *m = f;
	long long to = type == 0 ? off : m->off + off;

	if (to < 0 || to > m->n)
		return -1;
	m->off = (long)to;
	return to;
}

static void err(char *s)
{
	kputs("err: ");
	kputs(s);
	kputs("\n");
}

static unsigned char arena[32768] __attribute__((aligned(8)));

static int kmain(void)
{
	struct flash f = {good, sizeof good, 0};
	struct flash bad = {mistyped, sizeof mistyped, 0};
	Dynobj *o;
	int (*sum)(int);
	int n = dyntabsize(_exporttab), h;

	UART_CTRL = 1;
	kputs("C kernel\n");
	if (dynloadgen(&f, fread_, fseek_, err, _exporttab, n, 0) == 0)
		kputs("no arena yet\n");
	if (dynld_arena(arena, sizeof arena) != 0)
		return 0;
	f.off = 0;
	o = dynloadgen(&f, fread_, fseek_, err, _exporttab, n, 0);
	if (o == 0)
		return 0;
	kputs("loaded: exports ");
	kputn(o->nexport);
	kputs(" ");
	kputs(o->export[0].name);
	kputs(", imports ");
	kputn(o->nimport);
	kputs("\n");
	dynld_init(o);
	sum = (int (*)(int))dynimport(o, "mod_sum", dynld_sig("fn(int) int"));
	if (sum == 0)
		return 0;
	kputs("mod_sum(10) = ");
	kputn(sum(10));
	kputs("\n");
	if (dynimport(o, "mod_sum", dynld_sig("fn(int) uint")) == 0)
		kputs("dynimport mistyped: nil\n");
	dynobjfree(o);
	o = dynloadgen(&bad, fread_, fseek_, err, _exporttab, n, 0);
	if (o != 0)
		return 0;
	if (dynld_reginit(_exporttab, n) != 0)
		return 0;
	f.off = 0;
	h = dynld_regload("sum", &f, fread_, fseek_);
	sum = (int (*)(int))dynld_lookup("mod_sum", dynld_sig("fn(int) int"));
	if (h <= 0 || sum == 0)
		return 0;
	kputs("registry: mod_sum(3) = ");
	kputn(sum(3));
	kputs("\n");
	kputs("unload held: ");
	kputn(dynld_unload("sum"));
	kputs("\n");
	dynld_release(h);
	kputs("unload: ");
	kputn(dynld_unload("sum"));
	kputs("\n");
	kputs("done\n");
	return 1;
}

void reset(void)
{
	unsigned *d = &_sdata, *s = &_sidata;

	for (d = &_sbss; d < &_ebss; d++)
		*d = 0;
	for (d = &_sdata; d < &_edata; d++)
		*d = *s++;
	kexit(kmain());
}
"#;

fn c_array(name: &str, bytes: &[u8]) -> String {
    let mut s = format!("static const unsigned char {name}[] __attribute__((aligned(8))) = {{");
    for (i, b) in bytes.iter().enumerate() {
        if i % 16 == 0 {
            s += "\n\t";
        }
        s += &format!("{b:#04x},");
    }
    s + "\n};\n"
}

/// Compiles `src` for the Cortex-M3 and links it into a module.
fn arm_module(dir: &Path, name: &str, src: &str) -> Vec<u8> {
    let (c, o) = (dir.join(format!("{name}.c")), dir.join(format!("{name}.o")));
    std::fs::write(&c, src).unwrap();
    run(
        Command::new("arm-none-eabi-gcc")
            .args([
                "-mthumb",
                "-mcpu=cortex-m3",
                "-Os",
                "-ffreestanding",
                "-fno-pic",
            ])
            .args(["-fno-asynchronous-unwind-tables", "-c", "-I"])
            .arg(root().join("include"))
            .arg(&c)
            .arg("-o")
            .arg(&o),
        "arm-none-eabi-gcc module",
    );
    aout_tools::link::link(&aout_tools::link::Options {
        inputs: vec![o],
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("aout link {name}: {e}"))
    .bytes
}

/// Runs `elf` on QEMU mps2-an385; its exit status and UART output.
fn qemu(elf: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args([
        "-M",
        "mps2-an385",
        "-semihosting-config",
        "enable=on,target=native",
    ])
    .args([
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-kernel",
    ])
    .arg(elf);
    dynld_suite::qemu::run(cmd, Duration::from_secs(60))
}

/// A freestanding C kernel for Cortex-M3: the library built for
/// thumbv7m-none-eabi without std, an arena, a module from flash loaded,
/// called and freed, a mistyped one refused, the registry; no malloc in
/// the image.
#[test]
fn freestanding_c_kernel() {
    let lib = staticlib(Some("thumbv7m-none-eabi"));
    let dir = scratch("capi-kernel");
    let good = arm_module(&dir, "sum", ARM_MODULE);
    let mistyped = arm_module(&dir, "mistyped", ARM_MISTYPED);
    let mut exports = [("kadd", "fn(int, int) int"), ("kputs", "fn(*char) void")];
    exports.sort();
    let table: String = exports
        .iter()
        .map(|(n, d)| format!("\t{{{:#010x}, (uintptr_t){n}, \"{n}\"}},\n", sig(d)))
        .collect();
    let src = KERNEL
        .replace(
            "MODULES",
            &(c_array("good", &good) + &c_array("mistyped", &mistyped)),
        )
        .replace("EXPORTS\n", &table);
    std::fs::write(dir.join("kernel.c"), src).unwrap();
    let elf = dir.join("kernel.elf");
    run(
        Command::new("arm-none-eabi-gcc")
            .args([
                "-mthumb",
                "-mcpu=cortex-m3",
                "-Os",
                "-ffreestanding",
                "-std=c99",
            ])
            .args(["-Wall", "-Wextra", "-Werror", "-nostdlib", "-I"])
            .arg(root().join("include"))
            .arg("-T")
            .arg(root().join("examples/kernel/arm.ld"))
            .arg("-Wl,--gc-sections")
            .arg(dir.join("kernel.c"))
            .arg(&lib)
            .arg("-lgcc")
            .arg("-o")
            .arg(&elf),
        "arm-none-eabi-gcc kernel",
    );
    let nm = Command::new("arm-none-eabi-nm").arg(&elf).output().unwrap();
    assert!(nm.status.success());
    let syms = String::from_utf8_lossy(&nm.stdout);
    assert!(syms.contains(" dynloadgen"), "no dynloadgen in the image");
    let alloc: Vec<&str> = syms
        .lines()
        .filter(|l| {
            let n = l.rsplit(' ').next().unwrap_or("");
            ["malloc", "free", "calloc", "realloc", "_sbrk", "sbrk"].contains(&n)
                || n.contains("__rust_alloc")
                || n.contains("__rust_dealloc")
                || n.contains("__rg_alloc")
        })
        .collect();
    assert!(alloc.is_empty(), "allocator linked: {alloc:?}");
    let (code, out) = qemu(&elf);
    println!("{out}");
    let mismatch = format!(
        "err: signature mismatch: kadd: module wants {:#010x}, host has {:#010x}",
        sig("fn(int, int) uint"),
        sig("fn(int, int) int")
    );
    let want = format!(
        "C kernel
err: no arena: call dynld_arena first
no arena yet
loaded: exports 1 mod_sum, imports 2
mod_sum(10) = mod_sum running
1055
dynimport mistyped: nil
{mismatch}
registry: mod_sum(3) = mod_sum running
1006
unload held: -1
unload: 0
done
"
    );
    assert_eq!(out, want);
    assert_eq!(code, Some(0), "kernel failed");
}

/// The host defines `long f(long)`; a module declares and calls
/// `int f(int)`. Both compiled with `-g` and no signature statements: the
/// loader refuses the module, both descriptions in the message. The same
/// module without `-g` loads (nothing to check), and one declaring
/// `long f(long)` loads and calls f.
#[test]
fn int_and_long_refused_from_debug_information() {
    let lib = staticlib(None);
    let dir = scratch("capi-dwarf");
    let host = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include "dynld.h"

extern Dynsym _exporttab[];
extern const char *const _exportdesc[];

long f(long x) { return 2 * x; }

int main(int argc, char **argv)
{
	int i, fd;
	Dynobj *o;
	long (*g)(long);
	char b[512];

	if (dynld_describe(_exporttab, _exportdesc) != 0)
		return 2;
	for (i = 1; i < argc; i++) {
		fd = open(argv[i], O_RDONLY);
		o = dynloadfd(fd, _exporttab, dyntabsize(_exporttab), 0);
		close(fd);
		if (o == NULL) {
			dynld_errstr(b, sizeof b);
			printf("%d: refused: %s\n", i, b);
			continue;
		}
		dynld_init(o);
		g = (long (*)(long))dynimport(o, "g", 0);
		printf("%d: g(21) = %ld\n", i, g(21));
		dynobjfree(o);
	}
	return 0;
}
"#;
    std::fs::write(dir.join("host.c"), host).unwrap();
    let cc = |src: &str, obj: &str, flags: &[&str]| {
        run(
            Command::new("gcc")
                .args(["-Wall", "-Wextra", "-Werror", "-c", "-I"])
                .arg(root().join("include"))
                .args(flags)
                .arg(dir.join(src))
                .arg("-o")
                .arg(dir.join(obj)),
            src,
        );
        dir.join(obj)
    };
    let host_o = cc("host.c", "host.o", &["-g", "-O1"]);
    let tab = exports_c(&host_o);
    assert!(tab.contains("\t/* fn(vlong) vlong */"), "{tab}");
    std::fs::write(dir.join("tab.c"), tab).unwrap();
    let tab_o = cc("tab.c", "tab.o", &["-std=c99", "-pedantic"]);
    let exe = dir.join("host");
    run(
        Command::new("gcc")
            .arg(&host_o)
            .arg(&tab_o)
            .arg(&lib)
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe),
        "gcc host",
    );
    std::fs::write(
        dir.join("bad.c"),
        "extern int f(int);\nint g(int x) { return f(x) + 1; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("good.c"),
        "extern long f(long);\nlong g(long x) { return f(x) + 1; }\n",
    )
    .unwrap();
    let module = |src: &str, obj: &str, flags: &[&str]| {
        let o = cc(src, obj, flags);
        let m = aout_tools::link::link(&aout_tools::link::Options {
            inputs: vec![o],
            ..Default::default()
        })
        .unwrap();
        let path = dir.join(obj).with_extension("dl");
        std::fs::write(&path, m.bytes).unwrap();
        path
    };
    let bad = module("bad.c", "bad.o", &["-g", "-O2", "-fPIC"]);
    let bad_nog = module("bad.c", "bad-nog.o", &["-O2", "-fPIC"]);
    let good = module("good.c", "good.o", &["-g", "-O2", "-fPIC"]);
    let out = Command::new(&exe)
        .arg(&bad)
        .arg(&bad_nog)
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let want = format!(
        "1: refused: signature mismatch: f: module wants fn(int) int ({:#010x}), host has fn(vlong) vlong ({:#010x})\n\
         2: g(21) = 43\n\
         3: g(21) = 43\n",
        sig("fn(int) int"),
        sig("fn(vlong) vlong")
    );
    assert_eq!(text, want);
}

/// Autoload stubs from C: `aout stubs --lang c` over two description
/// files; the first call through a `stub` loads the module through the
/// program's load callback, a `ustub` forwards stack arguments and holds
/// the module for the call only, a `wstub` goes through while the module is
/// loaded and to RETFUNC once `dynld_stubunload` has put the entries back,
/// and a missing module's stub calls RETFUNC.
#[test]
fn c_autoload_stubs() {
    let lib = staticlib(None);
    let dir = scratch("capi-stubs");
    let module = r#"
int cm_add(int a, int b) { return a + b; }
long cm_many(long a0, long a1, long a2, long a3, long a4, long a5, long a6, long a7, long s0, long s1)
{
	return a0 + 2 * a1 + 3 * a2 + 4 * a3 + 5 * a4 + 6 * a5 + 7 * a6 + 8 * a7 + 9 * s0 + 10 * s1;
}
int cm_twice(int x) { return 2 * x; }
"#;
    let m = dynld_suite::cc::module("capi-stubs-cmath", &[module], false);
    std::fs::write(dir.join("cmath.dl"), m).unwrap();
    let files = [
        (
            "cmath",
            "module cmath * *\nstub cm_add add_failed fn(int, int) int\nustub cm_many many_failed 4 fn(vlong, vlong, vlong, vlong, vlong, vlong, vlong, vlong, vlong, vlong) vlong\nwstub cm_twice twice_absent fn(int) int\n",
        ),
        ("nomod", "module nomod * *\nstub nm_add add_failed2 fn(int, int) int\n"),
    ];
    for (name, text) in files {
        let f = aout_tools::stubs::parse(text).unwrap();
        let (h, c) =
            aout_tools::stubs::c(&f, &format!("{name}.stubs"), &format!("{name}_stubs.h")).unwrap();
        std::fs::write(dir.join(format!("{name}_stubs.h")), h).unwrap();
        std::fs::write(dir.join(format!("{name}_stubs.c")), c).unwrap();
    }
    let host = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dynld.h"
#include "cmath_stubs.h"
#include "nomod_stubs.h"

MEMCALLBACKS
static const char *dir;
static int loads;
static int load(const char *name)
{
	char path[512];
	struct mem m = {0, 0, 0};
	FILE *f;
	int h;

	snprintf(path, sizeof path, "%s/%s.dl", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	m.p = malloc(1 << 20);
	m.n = (long long)fread(m.p, 1, 1 << 20, f);
	fclose(f);
	h = dynld_regload(name, &m, mread, mseek);
	free(m.p);
	if (h < 0)
		return -1;
	loads++;
	dynld_release(h);
	return 0;
}

int add_failed(int a, int b) { return 1000 + a + b; }
int add_failed2(int a, int b) { return 2000 + a + b; }
long long many_failed(long long a0, long long a1, long long a2, long long a3, long long a4,
	long long a5, long long a6, long long a7, long long s0, long long s1)
{
	return -(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + s0 + s1);
}
int twice_absent(int x) { return -x; }

static Dynsym none[1];

int main(int argc, char **argv)
{
	char b[256];
	int r;
	long long v;

	if (argc != 2)
		return 2;
	dir = argv[1];
	dynld_reginit(none, 0);
	dynld_stubinit(load);
	printf("twice before: %d\n", cm_twice(21));
	r = cm_add(2, 3);
	printf("add: %d, loads %d\n", r, loads);
	r = cm_add(4, 5);
	printf("add again: %d, loads %d\n", r, loads);
	printf("many: %lld\n", cm_many(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
	printf("twice: %d\n", cm_twice(21));
	printf("unload held: %d\n", dynld_unload("cmath"));
	printf("stubunload: %d\n", dynld_stubunload(&cmath_stubs));
	printf("twice after: %d\n", cm_twice(21));
	v = cm_many(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
	printf("many after: %lld, loads %d\n", v, loads);
	printf("unload idle: %d\n", dynld_unload("cmath"));
	r = nm_add(1, 2);
	printf("missing: %d, failures %u\n", r, (unsigned)nomod_stubs.failures);
	dynld_errstr(b, sizeof b);
	return 0;
}
"#;
    std::fs::write(
        dir.join("host.c"),
        host.replace("MEMCALLBACKS", MEMCALLBACKS),
    )
    .unwrap();
    let mut objs = Vec::new();
    for src in ["host.c", "cmath_stubs.c", "nomod_stubs.c"] {
        let o = dir.join(src).with_extension("o");
        run(
            Command::new("gcc")
                .args([
                    "-std=c99",
                    "-Wall",
                    "-Wextra",
                    "-pedantic",
                    "-Werror",
                    "-O1",
                    "-c",
                    "-I",
                ])
                .arg(root().join("include"))
                .arg("-I")
                .arg(&dir)
                .arg(dir.join(src))
                .arg("-o")
                .arg(&o),
            src,
        );
        objs.push(o);
    }
    let exe = dir.join("host");
    run(
        Command::new("gcc")
            .args(&objs)
            .arg(&lib)
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe),
        "gcc host",
    );
    let out = Command::new(&exe).arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text,
        "twice before: -21\n\
         add: 5, loads 1\n\
         add again: 9, loads 1\n\
         many: 385\n\
         twice: 42\n\
         unload held: -1\n\
         stubunload: 0\n\
         twice after: -21\n\
         many after: 385, loads 2\n\
         unload idle: 0\n\
         missing: 2003, failures 1\n"
    );
}
