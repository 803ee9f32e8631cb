//! Module metadata end to end: C modules declaring it with `DYNLD_MODULE`
//! (compiled by gcc at test time) and a Rust one with `dynld::module!`
//! (by rustc) are linked by `aout link`, which writes their metadata
//! table, or refuses what is wrong with a message saying what; `aout
//! dump`, `aout nm` and `ModuleView::metadata` show what was written.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{dynld_rlib, root, run, workdir};

use dynld::meta::{Abi, Version, SETUP_DESC, SETUP_SIG, TEARDOWN_DESC, TEARDOWN_SIG};
use dynld::{Limits, ModuleView};

fn aout() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aout"))
}

/// Writes `src` to `dir/name.c` and compiles it with gcc into `name.o`.
fn cc(dir: &Path, name: &str, src: &str) -> PathBuf {
    let (c, o) = (dir.join(format!("{name}.c")), dir.join(format!("{name}.o")));
    std::fs::write(&c, src).unwrap();
    run(Command::new("gcc")
        .args(["-O2", "-fPIC", "-Wall", "-Werror", "-c", "-I"])
        .arg(root().join("include"))
        .arg(&c)
        .arg("-o")
        .arg(&o));
    o
}

/// `aout link -o out extra inputs`: its standard error, as `Ok` if it
/// succeeded.
fn link(out: &Path, inputs: &[&Path], extra: &[&str]) -> Result<String, String> {
    let o = aout()
        .arg("link")
        .arg("-o")
        .arg(out)
        .args(extra)
        .args(inputs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.success() {
        Ok(err)
    } else {
        Err(err)
    }
}

/// The standard output of `aout CMD module`.
fn show(cmd: &str, module: &Path) -> String {
    String::from_utf8(run(aout().arg(cmd).arg(module)).stdout).unwrap()
}

/// A module with every kind of statement, and its functions.
const CMATH: &str = r#"
#include "dynld.h"
DYNLD_MODULE(cmath, "1.2.3", "library",
    DYNLD_ABI("ansic", 1, 0)
    DYNLD_ABI("video", 2, 4)
    DYNLD_DEPENDS(lib, ">=1.1, <2")
    DYNLD_DEPENDS(any, "*")
    DYNLD_SETUP(cm_setup)
    DYNLD_TEARDOWN(cm_down));
dynld_setup_fn cm_setup;
dynld_teardown_fn cm_down;
static int ready;
int cm_setup(const struct dynld_option *opt, unsigned int nopt) {
    (void)opt;
    ready = 1;
    return (int)nopt;
}
void cm_down(void) { ready = 0; }
int cm_add(int a, int b) { return a + b + ready; }
"#;

/// The metadata lines `aout dump` shows for [`CMATH`] (nm shows them
/// after `# `).
const CMATH_LINES: [&str; 7] = [
    "module cmath 1.2.3 class library",
    "abi ansic 1.0",
    "abi video 2.4",
    "depends lib >=1.1.0, <2.0.0",
    "depends any *",
    "setup cm_setup",
    "teardown cm_down",
];

/// The export named `name` of `v`: its index and description.
fn export<'a>(v: &ModuleView<'a>, name: &str) -> (usize, dynld::FileSym<'a>) {
    v.exports()
        .enumerate()
        .find(|(_, s)| s.name == name)
        .unwrap_or_else(|| panic!("no export {name}"))
}

#[test]
fn c_module_metadata_is_linked_and_shown() {
    let dir = workdir("meta-c");
    let obj = cc(&dir, "cmath", CMATH);
    let module = dir.join("cmath.dl");
    link(&module, &[&obj], &[]).unwrap();

    let dump = show("dump", &module);
    let block: String = std::iter::once("metadata:\n".to_owned())
        .chain(CMATH_LINES.iter().map(|l| format!("  {l}\n")))
        .collect();
    assert!(dump.contains(&block), "{dump}");
    assert!(
        dump.contains("  metadata                  ") && dump.contains("7 entries, required"),
        "{dump}"
    );
    let nm = show("nm", &module);
    let tail: Vec<&str> = nm.lines().skip_while(|l| !l.starts_with("# ")).collect();
    let want: Vec<String> = CMATH_LINES.iter().map(|l| format!("# {l}")).collect();
    assert_eq!(tail, want, "{nm}");
    // The functions the metadata names carry their type, stated by none.
    assert!(
        nm.contains(&format!(" T cm_setup sig={SETUP_SIG:#010x}\n")),
        "{nm}"
    );
    assert!(
        nm.contains(&format!(" T cm_down sig={TEARDOWN_SIG:#010x}\n")),
        "{nm}"
    );

    let bytes = std::fs::read(&module).unwrap();
    let v = ModuleView::parse(&bytes, &Limits::DEFAULT).unwrap();
    let m = v.metadata().expect("no metadata");
    assert_eq!((m.name(), m.class()), ("cmath", "library"));
    assert_eq!(m.version(), Version::new(1, 2, 3));
    let abis: Vec<Abi<'_>> = m.abis().collect();
    assert_eq!(abis, [Abi::new("ansic", 1, 0), Abi::new("video", 2, 4)]);
    let deps: Vec<(&str, String)> = m
        .dependencies()
        .map(|d| (d.name, d.range.to_string()))
        .collect();
    assert_eq!(
        deps,
        [
            ("lib", ">=1.1.0, <2.0.0".to_owned()),
            ("any", "*".to_owned())
        ]
    );
    let (setup, s) = export(&v, "cm_setup");
    assert_eq!(m.setup(), Some(setup));
    assert_eq!((s.sig, s.desc), (SETUP_SIG, Some(SETUP_DESC)));
    let (teardown, t) = export(&v, "cm_down");
    assert_eq!(m.teardown(), Some(teardown));
    assert_eq!((t.sig, t.desc), (TEARDOWN_SIG, Some(TEARDOWN_DESC)));

    // Named exports: the setup and teardown functions are exports still.
    let only = dir.join("only.dl");
    link(&only, &[&obj], &["--export", "cm_add"]).unwrap();
    let nm = show("nm", &only);
    for name in [" T cm_add ", " T cm_setup ", " T cm_down "] {
        assert!(nm.contains(name), "{name}: {nm}");
    }
    assert!(nm.ends_with("# teardown cm_down\n"), "{nm}");

    // Without metadata, dump says so and nm adds nothing.
    let plain = cc(&dir, "plain", "int f(int x) { return x; }\n");
    let module = dir.join("plain.dl");
    link(&module, &[&plain], &[]).unwrap();
    assert!(show("dump", &module).contains("\nmetadata none\n"));
    assert!(!show("nm", &module).contains('#'));
}

/// The statements may come from several objects: the record in one, its
/// functions (and a hand-written statement) in another.
#[test]
fn statements_of_two_objects_make_one_record() {
    let dir = workdir("meta-two");
    let head = cc(
        &dir,
        "head",
        "#include \"dynld.h\"\nDYNLD_MODULE(split, \"2\", \"service\", DYNLD_SETUP(sp_go));\n",
    );
    let body = cc(
        &dir,
        "body",
        "__attribute__((used, section(\".dynld.module\"))) static const char more[] =\n\
         \"depends base 0.3\\n\";\n\
         int sp_go(const void *o, unsigned n) { (void)o; return (int)n; }\n",
    );
    let module = dir.join("split.dl");
    link(&module, &[&head, &body], &[]).unwrap();
    let bytes = std::fs::read(&module).unwrap();
    let v = ModuleView::parse(&bytes, &Limits::DEFAULT).unwrap();
    let m = v.metadata().unwrap();
    assert_eq!((m.name(), m.version()), ("split", Version::new(2, 0, 0)));
    let d = m.dependencies().next().unwrap();
    assert_eq!(
        (d.name, d.range.to_string()),
        ("base", ">=0.3.0, <0.4.0".into())
    );
    assert_eq!(m.setup(), Some(export(&v, "sp_go").0));
    assert_eq!(m.teardown(), None);
    // The statements take no room in the image.
    assert_eq!(v.exec().data, 0);
}

/// Each way of getting metadata wrong, and what the linker says.
#[test]
fn wrong_metadata_is_refused_with_what_is_wrong() {
    let dir = workdir("meta-refused");
    let fns =
        "int m_setup(const struct dynld_option *o, unsigned int n) { (void)o; return (int)n; }\n\
               void m_down(void) {}\n";
    let module = |items: &str| {
        format!("#include \"dynld.h\"\nDYNLD_MODULE(m, \"1.0.0\", \"lib\" {items});\n{fns}")
    };
    let refused = |name: &str, objs: &[&Path]| {
        let out = dir.join(format!("{name}.dl"));
        let e = link(&out, objs, &[]).expect_err(name);
        assert!(!out.exists(), "{name}: a module was written");
        e
    };
    let a = cc(&dir, "a", &module(""));
    let b = cc(
        &dir,
        "b",
        "#include \"dynld.h\"\nDYNLD_MODULE(n, \"1\", \"lib\");\n",
    );
    let (ap, bp) = (a.display(), b.display());
    let cases: Vec<(&str, Vec<&Path>, String)> = vec![(
        "two-records",
        vec![&a, &b],
        format!("{bp}: .dynld.module: two module metadata records: in {ap} and {bp}"),
    )];
    for (name, objs, want) in &cases {
        let e = refused(name, objs);
        assert!(e.contains(want.as_str()), "{name}: {e}");
    }

    // One object each: the source, and what the message must contain.
    let one: &[(&str, String, &str)] = &[
        (
            "static-setup",
            format!(
                "#include \"dynld.h\"\nDYNLD_MODULE(m, \"1\", \"lib\", DYNLD_SETUP(hidden));\n\
                 __attribute__((used)) static int hidden(const struct dynld_option *o, unsigned int n) {{ (void)o; return (int)n; }}\n{fns}"
            ),
            "setup function hidden is static (local to ",
        ),
        (
            "undefined-setup",
            module(", DYNLD_SETUP(nowhere)"),
            "setup function nowhere is not defined",
        ),
        (
            "undefined-teardown",
            module(", DYNLD_TEARDOWN(m_gone)"),
            "teardown function m_gone is not defined",
        ),
        (
            "data-teardown",
            format!("{}int m_state = 3;\n", module(", DYNLD_TEARDOWN(m_state)")),
            "teardown function m_state is not a function",
        ),
        (
            "setup-typed",
            format!(
                "{}DYNLD_EXPORT(m_setup, \"fn(int) int\");\n",
                module(", DYNLD_SETUP(m_setup)")
            ),
            "setup function m_setup is stated with type \"fn(int) int\"",
        ),
        (
            "teardown-typed",
            format!(
                "{}DYNLD_EXPORT(m_down, \"fn(int) void\");\n",
                module(", DYNLD_TEARDOWN(m_down)")
            ),
            "but a teardown function's type is \"fn(void) void\"",
        ),
        (
            "version",
            "#include \"dynld.h\"\nDYNLD_MODULE(m, \"1.x\", \"lib\");\nint f(void) { return 0; }\n"
                .to_owned(),
            ".dynld.module: version \"1.x\" is not MAJOR.MINOR.PATCH (decimal numbers), in the statement \"module m 1.x lib\"",
        ),
        (
            "version-zero",
            "#include \"dynld.h\"\nDYNLD_MODULE(m, \"0.0\", \"lib\");\nint f(void) { return 0; }\n"
                .to_owned(),
            "version 0.0.0 is not allowed",
        ),
        (
            "range",
            module(", DYNLD_DEPENDS(lib, \">=2, <1\")"),
            "version range \">=2, <1\" for lib is not a range",
        ),
        (
            "abi-version",
            module(", DYNLD_ABI(\"ansic\", 1.5, 0)"),
            "ABI version \"1.5.0\" is not MAJOR.MINOR",
        ),
        (
            "name",
            "#include \"dynld.h\"\nDYNLD_MODULE(m, \"1\", \"a class\");\nint f(void) { return 0; }\n"
                .to_owned(),
            "expected `module NAME VERSION CLASS`",
        ),
        (
            "abi-class",
            module(", DYNLD_ABI(\"\\x7f\", 1, 0)"),
            "ABI class \"\\x7f\" is not a name",
        ),
        (
            "abi-twice",
            module(", DYNLD_ABI(\"ansic\", 1, 0) DYNLD_ABI(\"ansic\", 1, 2)"),
            "ABI class ansic is required twice: 1.0 in ",
        ),
        (
            "depends-twice",
            module(", DYNLD_DEPENDS(lib, \"1\") DYNLD_DEPENDS(lib, \"2\")"),
            "dependency lib is stated twice",
        ),
        (
            "depends-self",
            module(", DYNLD_DEPENDS(m, \"1\")"),
            ".dynld.module: module m depends on itself",
        ),
        (
            "two-setups",
            module(", DYNLD_SETUP(m_setup) DYNLD_SETUP(m_setup)"),
            "two setup functions: m_setup in ",
        ),
        (
            "two-teardowns",
            module(", DYNLD_TEARDOWN(m_down) DYNLD_TEARDOWN(m_setup)"),
            "two teardown functions: m_down in ",
        ),
        (
            "unknown",
            module(", \"requires x\\n\""),
            "unknown statement \"requires\" (expected module, abi, depends, setup or teardown)",
        ),
        (
            "no-module",
            "__attribute__((used, section(\".dynld.module\"))) static const char r[] = \"abi ansic 1.0\";\n\
             int f(void) { return 0; }\n"
                .to_owned(),
            ".dynld.module: metadata \"abi ansic 1.0\" without a module record",
        ),
    ];
    for (name, src, want) in one {
        let o = cc(&dir, name, src);
        let e = refused(name, &[&o]);
        assert!(e.contains(want), "{name}: {e}");
        assert!(e.contains(&format!("{}:", o.display())), "{name}: {e}");
    }
}

/// A Rust staticlib declaring its metadata with `dynld::module!`.
#[test]
fn rust_module_metadata_is_linked_and_shown() {
    let dir = workdir("meta-rust");
    let src = dir.join("rmeta.rs");
    std::fs::write(
        &src,
        r#"#![no_std]
use dynld::meta::SetupOption;

#[unsafe(no_mangle)]
pub extern "C" fn rm_setup(opts: *const SetupOption<'static>, n: u32) -> i32 {
    let _ = opts;
    n as i32
}
#[unsafe(no_mangle)]
pub extern "C" fn rm_teardown() {}
#[unsafe(no_mangle)]
pub extern "C" fn rm_twice(x: i64) -> i64 {
    x * 2
}

dynld::module!(rmeta, "0.4.1", "driver",
    abi("video", 2, 4),
    depends(cmath, "1.2"),
    setup(rm_setup),
    teardown(rm_teardown));

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
"#,
    )
    .unwrap();
    let triple = "x86_64-unknown-linux-gnu";
    let (rlib, deps) = dynld_rlib(triple, false);
    let lib = dir.join("librmeta.a");
    run(Command::new("rustc")
        .args(["--edition", "2021", "--target", triple])
        .args(["--crate-type", "staticlib", "--crate-name", "rmeta"])
        .args(["-C", "panic=abort", "-C", "opt-level=2", "--extern"])
        .arg(format!("dynld={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg(&src)
        .arg("-o")
        .arg(&lib));
    let module = dir.join("rmeta.dl");
    link(&module, &[&lib], &[]).unwrap();
    let lines = [
        "module rmeta 0.4.1 class driver",
        "abi video 2.4",
        "depends cmath >=1.2.0, <2.0.0",
        "setup rm_setup",
        "teardown rm_teardown",
    ];
    let dump = show("dump", &module);
    let block: String = std::iter::once("metadata:\n".to_owned())
        .chain(lines.iter().map(|l| format!("  {l}\n")))
        .collect();
    assert!(dump.contains(&block), "{dump}");
    let nm = show("nm", &module);
    let tail: Vec<&str> = nm.lines().filter(|l| l.starts_with("# ")).collect();
    let want: Vec<String> = lines.iter().map(|l| format!("# {l}")).collect();
    assert_eq!(tail, want, "{nm}");

    let bytes = std::fs::read(&module).unwrap();
    let v = ModuleView::parse(&bytes, &Limits::DEFAULT).unwrap();
    let m = v.metadata().unwrap();
    assert_eq!((m.name(), m.class()), ("rmeta", "driver"));
    assert_eq!(m.version(), Version::new(0, 4, 1));
    assert_eq!(m.abis().collect::<Vec<_>>(), [Abi::new("video", 2, 4)]);
    let (setup, s) = export(&v, "rm_setup");
    assert_eq!((m.setup(), s.sig), (Some(setup), SETUP_SIG));
    let (teardown, t) = export(&v, "rm_teardown");
    assert_eq!((m.teardown(), t.sig), (Some(teardown), TEARDOWN_SIG));
}
