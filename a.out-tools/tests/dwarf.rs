//! Signatures from debug information (`aout_tools::dwarfsig`, used by
//! `aout link` and `aout exports`): C types from gcc and clang on every
//! target the loader supports, each checked against the value of Plan 9's
//! `signof` computed here by a walk of its own over the type (not through
//! `dynld::sig`); Rust types from rustc `-g` against `dynld::sig::Signof`;
//! a stated signature against the debug information's; zlib with `-g`.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod common;
use common::{root, run, workdir, zlib_dir};
use dynld::sig::{kind as k, T1, T2, T3};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A type as Plan 9's compiler held it.
#[derive(Clone)]
enum Ty {
    /// A scalar, by its kind constant.
    K(u32),
    P(Box<Ty>),
    A(Box<Ty>),
    F(Vec<Ty>, Box<Ty>),
    Dots,
    /// A struct or union: identity, kind, members (`None`: incomplete, or a
    /// mention of one whose members another mention gives).
    S(u32, u32, Option<Vec<Ty>>),
}
use Ty::*;

fn mix(s: u32, m: u32, a: u32) -> u32 {
    s.wrapping_mul(m).wrapping_add(a)
}

/// Plan 9's `signat`: the walk, over the type itself.
fn signat(t: &Ty, seen: &mut Vec<u32>) -> u32 {
    let mut s = 0u32;
    let mut t = t;
    loop {
        match t {
            K(kind) => return mix(s, T1, *kind),
            Dots => return mix(s, T1, k::DOTS),
            P(x) => {
                s = mix(s, T1, k::POINTER);
                t = x;
            }
            A(x) => {
                s = mix(mix(s, T1, k::ARRAY), T2, 0);
                t = x;
            }
            F(params, r) => {
                s = mix(s, T1, k::FUNCTION);
                for p in params {
                    s = mix(s, T3, signat(p, seen));
                }
                t = r;
            }
            S(id, kind, body) => {
                s = mix(s, T1, *kind);
                if let Some(n) = seen.iter().position(|x| x == id) {
                    return mix(s, T2, n as u32);
                }
                if let Some(members) = body {
                    seen.push(*id);
                    for m in members {
                        s = mix(s, T3, signat(m, seen));
                    }
                }
                return s;
            }
        }
    }
}

fn signof(t: &Ty) -> u32 {
    match signat(t, &mut Vec::new()) {
        0 => dynld::sig::SIGN_INTERN,
        s => s,
    }
}

fn p(t: Ty) -> Ty {
    P(Box::new(t))
}
fn a(t: Ty) -> Ty {
    A(Box::new(t))
}
fn f(params: Vec<Ty>, r: Ty) -> Ty {
    F(params, Box::new(r))
}

/// How a target's C types come out.
#[derive(Clone, Copy)]
struct Target {
    /// The compiler command and its flags.
    cc: &'static [&'static str],
    /// `long` and pointers are 64-bit.
    lp64: bool,
    /// Plain `char` is signed.
    char_signed: bool,
    /// `long double` is 8 bytes (a `double`).
    ld8: bool,
}

const TARGETS: &[Target] = &[
    Target {
        cc: &["gcc"],
        lp64: true,
        char_signed: true,
        ld8: false,
    },
    Target {
        cc: &["clang"],
        lp64: true,
        char_signed: true,
        ld8: false,
    },
    Target {
        cc: &["clang", "-O2"],
        lp64: true,
        char_signed: true,
        ld8: false,
    },
    Target {
        cc: &["aarch64-linux-gnu-gcc"],
        lp64: true,
        char_signed: false,
        ld8: false,
    },
    Target {
        cc: &["riscv64-linux-gnu-gcc"],
        lp64: true,
        char_signed: false,
        ld8: false,
    },
    Target {
        cc: &["riscv64-linux-gnu-gcc", "-march=rv32imac", "-mabi=ilp32"],
        lp64: false,
        char_signed: false,
        ld8: false,
    },
    Target {
        cc: &["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb"],
        lp64: false,
        char_signed: false,
        ld8: true,
    },
];

const DECLS: &str = r#"
typedef int myint;
typedef __SIZE_TYPE__ size_t;
struct node { int v; struct node *next; };
union u { int i; float f; };
enum color { RED, GREEN };
struct incomplete;
struct bits { int a : 3; int b; };
struct a; struct b;
struct a { struct b *b; int x; };
struct b { struct a *a; };
typedef struct { int x, y; } pt;
struct arrs { int v[4]; char name[8]; double m[2][3]; };
long f_long(long x) { return x; }
int f_int(int x) { return x; }
unsigned long f_ulong(unsigned long x) { return x; }
long long f_vlong(long long x) { return x; }
unsigned long long f_uvlong(unsigned long long x) { return x; }
char f_char(signed char a, unsigned char b, char c) { return (char)(a + b + c); }
short f_short(short a, unsigned short b) { return (short)(a + b); }
unsigned f_uint(unsigned a) { return a; }
float f_float(float a, double b) { return (float)(a + b); }
void f_void(void) {}
int f_noproto() { return 0; }
int f_dots(const char *fmt, ...) { return fmt != 0; }
int f_node(struct node *n) { return n->v; }
myint f_qual(const volatile myint *restrict p) { return *p; }
int f_union(union u x) { return x.i; }
enum color f_enum(enum color c) { return c; }
int f_incomplete(struct incomplete *p) { return p != 0; }
int f_fnptr(int (*cb)(int, double)) { return cb(1, 2.0); }
int f_arrptr(int (*a)[4]) { return a[0][0]; }
size_t f_size(size_t n) { return n; }
_Bool f_bool(_Bool b) { return b; }
int f_mutual(struct a *p) { return p->x; }
int f_twice(pt a, pt b) { return a.x + b.y; }
int f_arrs(struct arrs *s) { return s->v[0]; }
void *f_voidp(void *p, const void **q) { return p ? p : (void *)q; }
int (*f_retfn(int k))(int) { return k ? f_int : 0; }
long double f_ld(long double x) { return x; }
int f_bits(struct bits *b) { return b->b; }
double _Complex f_complex(double _Complex z) { return z; }
int v_arr[10];
struct node *v_head;
const char *v_names[3];
int (*v_fn)(void);
static int f_static(int x) { return x + 1; }
int use_static(int x) { return f_static(x); }
extern long imported(long);
long call_imported(long x) { return imported(x) + 1; }
"#;

/// Each name of [`DECLS`] with the description and the type Plan 9 gives
/// it on `t`, or `None` where the type cannot map.
fn expected(t: Target) -> Vec<(&'static str, Option<(String, Ty)>)> {
    let (int, uint, char, uchar) = (K(k::INT), K(k::UINT), K(k::CHAR), K(k::UCHAR));
    let (long, ulong) = if t.lp64 {
        (("vlong", K(k::VLONG)), ("uvlong", K(k::UVLONG)))
    } else {
        (("long", K(k::LONG)), ("ulong", K(k::ULONG)))
    };
    let size = if t.lp64 {
        ("uvlong", K(k::UVLONG))
    } else {
        ("uint", K(k::UINT))
    };
    let c = if t.char_signed {
        ("char", char.clone())
    } else {
        ("uchar", uchar.clone())
    };
    let double = K(k::DOUBLE);
    let node = |first: bool| {
        if first {
            S(
                1,
                k::STRUCT,
                Some(vec![int.clone(), p(S(1, k::STRUCT, None))]),
            )
        } else {
            S(1, k::STRUCT, None)
        }
    };
    let node_d = "struct node { int, *struct node }";
    let mut rows: Vec<(&str, Option<(String, Ty)>)> = vec![
        (
            "f_long",
            Some((
                format!("fn({0}) {0}", long.0),
                f(vec![long.1.clone()], long.1.clone()),
            )),
        ),
        (
            "f_int",
            Some(("fn(int) int".into(), f(vec![int.clone()], int.clone()))),
        ),
        (
            "f_ulong",
            Some((
                format!("fn({0}) {0}", ulong.0),
                f(vec![ulong.1.clone()], ulong.1.clone()),
            )),
        ),
        (
            "f_vlong",
            Some(("fn(vlong) vlong".into(), f(vec![K(k::VLONG)], K(k::VLONG)))),
        ),
        (
            "f_uvlong",
            Some((
                "fn(uvlong) uvlong".into(),
                f(vec![K(k::UVLONG)], K(k::UVLONG)),
            )),
        ),
        (
            "f_char",
            Some((
                format!("fn(char, uchar, {0}) {0}", c.0),
                f(vec![char.clone(), uchar.clone(), c.1.clone()], c.1.clone()),
            )),
        ),
        (
            "f_short",
            Some((
                "fn(short, ushort) short".into(),
                f(vec![K(k::SHORT), K(k::USHORT)], K(k::SHORT)),
            )),
        ),
        (
            "f_uint",
            Some(("fn(uint) uint".into(), f(vec![uint.clone()], uint.clone()))),
        ),
        (
            "f_float",
            Some((
                "fn(float, double) float".into(),
                f(vec![K(k::FLOAT), double.clone()], K(k::FLOAT)),
            )),
        ),
        (
            "f_void",
            Some(("fn(void) void".into(), f(vec![K(k::VOID)], K(k::VOID)))),
        ),
        (
            "f_noproto",
            Some(("fn() int".into(), f(vec![], int.clone()))),
        ),
        (
            "f_dots",
            Some((
                format!("fn(*{}, ...) int", c.0),
                f(vec![p(c.1.clone()), Dots], int.clone()),
            )),
        ),
        (
            "f_node",
            Some((
                format!("fn(*{node_d}) int"),
                f(vec![p(node(true))], int.clone()),
            )),
        ),
        (
            "f_qual",
            Some(("fn(*int) int".into(), f(vec![p(int.clone())], int.clone()))),
        ),
        (
            "f_union",
            Some((
                "fn(union u { int, float }) int".into(),
                f(
                    vec![S(2, k::UNION, Some(vec![int.clone(), K(k::FLOAT)]))],
                    int.clone(),
                ),
            )),
        ),
        (
            "f_enum",
            Some((
                "fn(enum color) enum color".into(),
                f(vec![K(k::ENUM)], K(k::ENUM)),
            )),
        ),
        (
            "f_incomplete",
            Some((
                "fn(*struct incomplete) int".into(),
                f(vec![p(S(3, k::STRUCT, None))], int.clone()),
            )),
        ),
        (
            "f_fnptr",
            Some((
                "fn(*fn(int, double) int) int".into(),
                f(
                    vec![p(f(vec![int.clone(), double.clone()], int.clone()))],
                    int.clone(),
                ),
            )),
        ),
        (
            "f_arrptr",
            Some((
                "fn(*[4]int) int".into(),
                f(vec![p(a(int.clone()))], int.clone()),
            )),
        ),
        (
            "f_size",
            Some((
                format!("fn({0}) {0}", size.0),
                f(vec![size.1.clone()], size.1.clone()),
            )),
        ),
        (
            "f_bool",
            Some((
                "fn(uchar) uchar".into(),
                f(vec![uchar.clone()], uchar.clone()),
            )),
        ),
        (
            "f_mutual",
            Some((
                "fn(*struct a { *struct b { *struct a }, int }) int".into(),
                f(
                    vec![p(S(
                        4,
                        k::STRUCT,
                        Some(vec![
                            p(S(5, k::STRUCT, Some(vec![p(S(4, k::STRUCT, None))]))),
                            int.clone(),
                        ]),
                    ))],
                    int.clone(),
                ),
            )),
        ),
        (
            "f_twice",
            Some((
                "fn(struct anon { int, int }, struct anon) int".into(),
                f(
                    vec![
                        S(6, k::STRUCT, Some(vec![int.clone(), int.clone()])),
                        S(6, k::STRUCT, None),
                    ],
                    int.clone(),
                ),
            )),
        ),
        (
            "f_arrs",
            Some((
                format!(
                    "fn(*struct arrs {{ [4]int, [8]{}, [2][3]double }}) int",
                    c.0
                ),
                f(
                    vec![p(S(
                        7,
                        k::STRUCT,
                        Some(vec![a(int.clone()), a(c.1.clone()), a(a(double.clone()))]),
                    ))],
                    int.clone(),
                ),
            )),
        ),
        (
            "f_voidp",
            Some((
                "fn(*void, **void) *void".into(),
                f(vec![p(K(k::VOID)), p(p(K(k::VOID)))], p(K(k::VOID))),
            )),
        ),
        (
            "f_retfn",
            Some((
                "fn(int) *fn(int) int".into(),
                f(vec![int.clone()], p(f(vec![int.clone()], int.clone()))),
            )),
        ),
        (
            "f_ld",
            t.ld8.then(|| {
                (
                    "fn(double) double".into(),
                    f(vec![double.clone()], double.clone()),
                )
            }),
        ),
        ("f_bits", None),
        ("f_complex", None),
        ("v_arr", Some(("[10]int".into(), a(int.clone())))),
        ("v_head", Some((format!("*{node_d}"), p(node(true))))),
        ("v_names", Some((format!("[3]*{}", c.0), a(p(c.1.clone()))))),
        (
            "v_fn",
            Some(("*fn(void) int".into(), p(f(vec![K(k::VOID)], int.clone())))),
        ),
        (
            "use_static",
            Some(("fn(int) int".into(), f(vec![int.clone()], int.clone()))),
        ),
        (
            "call_imported",
            Some((
                format!("fn({0}) {0}", long.0),
                f(vec![long.1.clone()], long.1.clone()),
            )),
        ),
    ];
    rows.sort_by_key(|r| r.0);
    rows
}

fn compile(dir: &Path, cc: &[&str], name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let o = dir.join(format!("{name}.o"));
    run(Command::new(cc[0])
        .args(&cc[1..])
        .args(["-g", "-c", "-ffreestanding"])
        .arg(&c)
        .arg("-o")
        .arg(&o));
    o
}

/// Every C type of [`DECLS`], from every compiler and target, equals
/// Plan 9's `signof`; those with no Plan 9 type are refused with a reason;
/// statics are not listed; a declaration is an import.
#[test]
fn c_types_are_plan9_signof() {
    let dir = workdir("dwarf-c");
    let mut checked = 0;
    for (i, t) in TARGETS.iter().enumerate() {
        let o = compile(&dir, t.cc, &format!("decls{i}"), DECLS);
        let got = aout_tools::dwarfsig::read_bytes(&std::fs::read(&o).unwrap())
            .unwrap_or_else(|e| panic!("{:?}: {e}", t.cc));
        let what = |name: &str| {
            got.iter()
                .find(|d| d.name == name && d.definition)
                .unwrap_or_else(|| panic!("{:?}: no {name} in {got:#?}", t.cc))
        };
        for (name, want) in expected(*t) {
            let d = what(name);
            match want {
                Some((desc, ty)) => {
                    assert_eq!(d.desc.as_deref(), Ok(desc.as_str()), "{:?}: {name}", t.cc);
                    assert_eq!(d.sig(), signof(&ty), "{:?}: {name}: {desc}", t.cc);
                    checked += 1;
                }
                None => {
                    let why = d.desc.as_ref().expect_err(name);
                    assert!(
                        why.contains("no Plan 9 type") || why.contains("bit-field"),
                        "{why}"
                    );
                    assert_eq!(d.sig(), 0);
                }
            }
        }
        assert!(!got.iter().any(|d| d.name == "f_static"), "{:?}", t.cc);
        // gcc describes what a unit calls but does not define; clang only
        // with call-site information (optimising).
        if t.cc[0] != "clang" || t.cc.len() > 1 {
            let imp = got
                .iter()
                .find(|d| d.name == "imported")
                .unwrap_or_else(|| panic!("{:?}: no declaration of imported", t.cc));
            assert!(!imp.definition);
            let l = if t.lp64 { "vlong" } else { "long" };
            assert_eq!(imp.desc.as_deref(), Ok(format!("fn({l}) {l}").as_str()));
        }
    }
    assert!(checked >= TARGETS.len() * 30, "{checked}");
}

const RUST: &str = r#"
#![allow(improper_ctypes_definitions)]
#[repr(C)]
pub struct Pt { pub x: i32, pub y: f64 }
#[no_mangle]
pub extern "C" fn r_small(a: i8, b: u8, c: bool, d: i16, e: u16, f: i32, g: u32, h: char) -> i64 {
    (a as i64) + (b as i64) + (c as i64) + (d as i64) + (e as i64) + (f as i64) + (g as i64) + (h as i64)
}
#[no_mangle]
pub extern "C" fn r_wide(a: u64, b: isize, c: usize, d: f32, e: f64) -> u64 {
    a + b as u64 + c as u64 + d as u64 + e as u64
}
#[no_mangle]
pub extern "C" fn r_ptrs(a: *const u8, b: *mut i32, c: &u16, d: extern "C" fn(i32) -> i32, e: *const [u16; 3]) -> usize {
    a as usize + b as usize + *c as usize + d as usize + e as usize
}
#[no_mangle]
pub extern "C" fn r_unit() {}
#[no_mangle]
pub extern "C" fn r_struct(p: *const Pt) -> i32 { unsafe { (*p).x } }
#[no_mangle]
pub static mut R_COUNTER: i32 = 0;
"#;

#[repr(C)]
struct Pt {
    _x: i32,
    _y: f64,
}
dynld::impl_signof!(struct Pt { i32, f64 });

/// rustc's `-g` gives what `dynld::sig::Signof` gives the same types.
#[test]
#[allow(improper_ctypes_definitions)]
fn rust_types_match_signof() {
    use dynld::sig::{of, of_fn};
    let dir = workdir("dwarf-rust");
    let src = dir.join("r.rs");
    std::fs::write(&src, RUST).unwrap();
    let o = dir.join("r.o");
    run(Command::new("rustc")
        .args(["--crate-type=lib", "--emit=obj", "-g", "--edition", "2021"])
        .arg(&src)
        .arg("-o")
        .arg(&o));
    let got = aout_tools::dwarfsig::read_bytes(&std::fs::read(&o).unwrap()).unwrap();
    let sig = |n: &str| {
        let d = got
            .iter()
            .find(|d| d.name == n)
            .unwrap_or_else(|| panic!("no {n} in {got:#?}"));
        assert!(d.desc.is_ok(), "{n}: {:?}", d.desc);
        d.sig()
    };
    type Small = extern "C" fn(i8, u8, bool, i16, u16, i32, u32, char) -> i64;
    type Wide = extern "C" fn(u64, isize, usize, f32, f64) -> u64;
    type Ptrs = extern "C" fn(
        *const u8,
        *mut i32,
        &'static u16,
        extern "C" fn(i32) -> i32,
        *const [u16; 3],
    ) -> usize;
    assert_eq!(sig("r_small"), of_fn::<Small>());
    assert_eq!(sig("r_wide"), of_fn::<Wide>());
    assert_eq!(sig("r_ptrs"), of_fn::<Ptrs>());
    assert_eq!(sig("r_unit"), of_fn::<extern "C" fn()>());
    assert_eq!(sig("r_struct"), of_fn::<extern "C" fn(*const Pt) -> i32>());
    assert_eq!(sig("R_COUNTER"), of::<i32>());
}

fn aout() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aout"))
}

/// A stated signature wins over the debug information's, with a warning
/// naming both; with none stated, the debug information's goes into the
/// module, description and all.
#[test]
fn stated_signature_wins_with_a_warning() {
    let dir = workdir("dwarf-stated");
    let src = format!(
        "#include \"{}\"\nDYNLD_EXPORT(g, \"fn(int) int\");\nlong g(long x) {{ return x; }}\nlong h(long x) {{ return x + 1; }}\n",
        root().join("include/dynld.h").display()
    );
    let o = compile(&dir, &["gcc", "-O2", "-fPIC"], "stated", &src);
    let linked = aout_tools::link::link(&aout_tools::link::Options {
        inputs: vec![o],
        ..Default::default()
    })
    .unwrap();
    let w = linked.warnings.join("\n");
    assert!(
        w.contains("g: stated as \"fn(int) int\"")
            && w.contains("gives \"fn(vlong) vlong\"")
            && w.contains("the stated signature is used"),
        "{w}"
    );
    let v = dynld::ModuleView::parse(&linked.bytes, &dynld::Limits::DEFAULT).unwrap();
    let e = |n: &str| v.exports().find(|s| s.name == n).unwrap();
    assert_eq!(e("g").sig, dynld::signof!("fn(int) int"));
    assert_eq!(e("h").sig, dynld::signof!("fn(vlong) vlong"));
    assert_eq!(e("h").desc, Some("fn(vlong) vlong"));
    // Without -g the module has no signature for h.
    let o2 = dir.join("nog.o");
    run(Command::new("gcc")
        .args(["-O2", "-fPIC", "-c"])
        .arg(dir.join("stated.c"))
        .arg("-o")
        .arg(&o2));
    let linked = aout_tools::link::link(&aout_tools::link::Options {
        inputs: vec![o2],
        ..Default::default()
    })
    .unwrap();
    let v = dynld::ModuleView::parse(&linked.bytes, &dynld::Limits::DEFAULT).unwrap();
    assert_eq!(v.exports().find(|s| s.name == "h").unwrap().sig, 0);
}

/// zlib compiled with `-g` and no signature statements: every export of
/// the module has a signature and a description, and so does every import
/// (the C library's functions its headers declare); `aout exports` over
/// the same objects gives the same values.
#[test]
fn zlib_with_g_has_a_signature_on_every_export() {
    let dir = workdir("dwarf-zlib");
    let z = zlib_dir();
    let mut objs = Vec::new();
    for name in [
        "adler32", "compress", "crc32", "deflate", "infback", "inffast", "inflate", "inftrees",
        "trees", "uncompr", "zutil", "gzclose", "gzlib", "gzread", "gzwrite",
    ] {
        let o = dir.join(format!("{name}.o"));
        run(Command::new("gcc")
            .args(["-g", "-O2", "-fPIC", "-c", "-D_LARGEFILE64_SOURCE=1", "-I"])
            .arg(&z)
            .arg(z.join(format!("{name}.c")))
            .arg("-o")
            .arg(&o));
        objs.push(o);
    }
    let linked = aout_tools::link::link(&aout_tools::link::Options {
        inputs: objs.clone(),
        ..Default::default()
    })
    .unwrap();
    let v = dynld::ModuleView::parse(&linked.bytes, &dynld::Limits::DEFAULT).unwrap();
    let exports: Vec<_> = v.exports().collect();
    assert!(exports.len() >= 80, "{}", exports.len());
    for e in &exports {
        assert_ne!(
            e.sig, 0,
            "{} has no signature; warnings: {:?}",
            e.name, linked.warnings
        );
        let d = e
            .desc
            .unwrap_or_else(|| panic!("{} has no description", e.name));
        assert_eq!(dynld::sig::hash(d), Ok(e.sig), "{}", e.name);
    }
    let deflate = exports.iter().find(|e| e.name == "deflate").unwrap();
    assert!(
        deflate
            .desc
            .unwrap()
            .starts_with("fn(*struct z_stream_s { *uchar, uint, "),
        "{:?}",
        deflate.desc
    );
    for i in v.imports() {
        assert_ne!(i.sig, 0, "import {} has no signature", i.name);
    }
    // aout exports (Plan 9's -x) over the same objects agrees.
    let o = run(aout().args(["exports", "--lang", "c"]).args(&objs));
    let text = String::from_utf8_lossy(&o.stdout);
    // (names starting with `_` are left out there, unless --all)
    for e in exports.iter().filter(|e| !e.name.starts_with('_')) {
        assert!(
            text.contains(&format!("{{{:#010x}, (uintptr_t)", e.sig))
                && text.contains(&format!("\"{}\"}}", e.name)),
            "{}",
            e.name
        );
    }
}

/// `aout exports` over a linked executable (Plan 9's `2l -x`): its
/// external functions and data with their debug information's
/// signatures; the C library's `_`-names left out, with a warning, unless
/// `--all`.
#[test]
fn exports_of_an_executable() {
    let dir = workdir("dwarf-exe");
    let c = dir.join("exe.c");
    std::fs::write(
        &c,
        "long kf(long x) { return x; }\nint counter;\nstatic int hidden(void) { return 1; }\nint main(void) { return (int)kf(counter) + hidden(); }\n",
    )
    .unwrap();
    let exe = dir.join("exe");
    run(Command::new("gcc")
        .args(["-g", "-O1"])
        .arg(&c)
        .arg("-o")
        .arg(&exe));
    let o = run(aout().args(["exports", "--lang", "c"]).arg(&exe));
    let text = String::from_utf8_lossy(&o.stdout);
    let warn = String::from_utf8_lossy(&o.stderr);
    for (name, desc) in [
        ("counter", "int"),
        ("kf", "fn(vlong) vlong"),
        ("main", "fn(void) int"),
    ] {
        let sig = dynld::sig::hash(desc).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(&format!("\"{name}\"}}")))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        assert!(line.starts_with(&format!("\t{{{sig:#010x}, ")), "{line}");
        assert!(line.ends_with(&format!("/* {desc} */")), "{line}");
    }
    assert!(
        !text.contains("\"hidden\"") && !text.contains("\"_start\""),
        "{text}"
    );
    assert!(warn.contains("starting with `_` left out"), "{warn}");
    let o = run(aout().args(["exports", "--all"]).arg(&exe));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"_start\""));
}

/// A type whose description doubles at every level (a function taking two
/// pointers to a function taking two pointers to ...) is refused with a
/// reason, at once, rather than walked for 2^40 steps.
#[test]
fn exponential_types_are_cut_short() {
    let dir = workdir("dwarf-exp");
    let mut src = String::from("typedef int (*f0)(int);\n");
    for i in 1..=40 {
        src += &format!("typedef int (*f{i})(f{0}, f{0});\n", i - 1);
    }
    src += "int deep(f40 a) { return a != 0; }\nint shallow(f3 a) { return a != 0; }\n";
    let o = compile(&dir, &["gcc"], "exp", &src);
    let got = aout_tools::dwarfsig::read_bytes(&std::fs::read(&o).unwrap()).unwrap();
    let deep = got.iter().find(|d| d.name == "deep").unwrap();
    let why = deep.desc.as_ref().unwrap_err();
    assert!(why.contains("parts") || why.contains("deeply"), "{why}");
    let shallow = got.iter().find(|d| d.name == "shallow").unwrap();
    assert!(shallow
        .desc
        .as_ref()
        .unwrap()
        .starts_with("fn(*fn(*fn(*fn("));
}
