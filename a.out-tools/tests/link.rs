//! End to end: compile fixtures with gcc and rustc at test time, link them
//! with `aout link`, load and call them with `aout run`, and compare every
//! result (and everything printed) with the same objects linked natively.
//!
//! The suite runs on every architecture `aout link` supports on Linux: on
//! x86-64 with the host's gcc and clang, and cross-built for AArch64 and
//! RV64 (`cargo test --target ...`, run under qemu-user) with Debian's cross
//! gcc and clang's `--target`. Target executables (`aout` itself, the
//! native drivers) run directly where the kernel can, else under
//! `qemu-<arch> -L /usr/<triple>`.
#![cfg(all(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ),
    target_os = "linux"
))]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{dynld_rlib, fixture, root, run, workdir, zlib_dir};
use std::sync::OnceLock;

/// The toolchain for the architecture the tests were built for.
struct Toolchain {
    /// Prefix of the GNU tools (`aarch64-linux-gnu-`), empty on x86-64.
    prefix: &'static str,
    /// Rust target triple.
    triple: &'static str,
    /// clang's `--target`, if not the host.
    clang_target: Option<&'static str>,
    /// qemu-user binary and sysroot, to run target executables when the
    /// kernel cannot.
    qemu: Option<(&'static str, &'static str)>,
}

const TC: Toolchain = if cfg!(target_arch = "aarch64") {
    Toolchain {
        prefix: "aarch64-linux-gnu-",
        triple: "aarch64-unknown-linux-gnu",
        clang_target: Some("aarch64-linux-gnu"),
        qemu: Some(("qemu-aarch64", "/usr/aarch64-linux-gnu")),
    }
} else if cfg!(target_arch = "riscv64") {
    Toolchain {
        prefix: "riscv64-linux-gnu-",
        triple: "riscv64gc-unknown-linux-gnu",
        clang_target: Some("riscv64-linux-gnu"),
        qemu: Some(("qemu-riscv64", "/usr/riscv64-linux-gnu")),
    }
} else {
    Toolchain {
        prefix: "",
        triple: "x86_64-unknown-linux-gnu",
        clang_target: None,
        qemu: None,
    }
};

/// The GNU tool `name` for the target (`gcc`, `ar`).
fn tool(name: &str) -> String {
    format!("{}{name}", TC.prefix)
}

/// A command running the target executable `exe`: directly, or under
/// qemu-user when this kernel cannot run it (cross-built tests).
fn exec(exe: &Path) -> Command {
    static QEMU: OnceLock<bool> = OnceLock::new();
    let qemu = TC.qemu.filter(|_| {
        *QEMU.get_or_init(|| {
            // Under qemu-user a failed exec shows as an error or as exit
            // status 127, depending on how the child was spawned.
            !Command::new(env!("CARGO_BIN_EXE_aout"))
                .arg("--help")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    });
    match qemu {
        Some((q, sysroot)) => {
            let mut c = Command::new(q);
            c.arg("-L").arg(sysroot).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

fn gcc_c(src: &Path, flags: &str, out: &Path) {
    cc("gcc", src, flags, out)
}

/// Compiles with `compiler` (`gcc`, `clang`, `g++`) for the target.
fn cc(compiler: &str, src: &Path, flags: &str, out: &Path) {
    let mut cmd = match (compiler, TC.clang_target) {
        ("clang", Some(t)) => {
            let mut c = Command::new("clang");
            c.arg(format!("--target={t}"));
            c
        }
        ("clang", None) => Command::new("clang"),
        _ => Command::new(tool(compiler)),
    };
    run(cmd
        .args(flags.split_whitespace())
        .arg("-I")
        .arg(root().join("include"))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out));
}

fn aout() -> Command {
    exec(Path::new(env!("CARGO_BIN_EXE_aout")))
}

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

/// One call: function name and arguments.
type Call = (&'static str, &'static [i64]);

/// Builds a native executable from `inputs` that calls one function named
/// on its command line, as `aout run --ret i64` does.
fn native(dir: &Path, inputs: &[&Path], calls: &[Call], rust: bool) -> PathBuf {
    let mut names: Vec<&str> = calls.iter().map(|c| c.0).collect();
    names.sort();
    names.dedup();
    let mut src = String::from("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n");
    for n in &names {
        src += &format!("long {n}(long, long, long, long, long, long);\n");
    }
    if rust {
        // Only the precompiled core's unwind tables name it; never called.
        src += "void rust_eh_personality(void) {}\n";
    }
    src += "int main(int argc, char **argv) {\n long a[6] = {0};\n";
    src += " for (int i = 2; i < argc && i < 8; i++) a[i - 2] = strtol(argv[i], 0, 0);\n long r;\n";
    for n in &names {
        src += &format!(
            " if (!strcmp(argv[1], \"{n}\")) r = {n}(a[0], a[1], a[2], a[3], a[4], a[5]);\n else"
        );
    }
    src += " return 2;\n fflush(0);\n printf(\"%ld\\n\", r);\n return 0;\n}\n";
    let driver = dir.join("driver.c");
    std::fs::write(&driver, src).unwrap();
    let exe = dir.join("native");
    run(Command::new(tool("gcc"))
        .arg("-no-pie")
        .arg(&driver)
        .args(inputs)
        .arg("-lm")
        .arg("-o")
        .arg(&exe));
    exe
}

/// Runs every call natively and through the module; their outputs must match.
fn compare(exe: &Path, module: &Path, deps: &[&Path], calls: &[Call]) {
    for (name, args) in calls {
        let args: Vec<String> = args.iter().map(i64::to_string).collect();
        let n = run(exec(exe).arg(name).args(&args));
        let mut cmd = aout();
        cmd.arg("run").arg("--ret").arg("i64");
        for d in deps {
            cmd.arg("--export-from").arg(d);
        }
        let m = run(cmd.arg(module).arg(name).args(&args));
        assert_eq!(
            String::from_utf8_lossy(&m.stdout),
            String::from_utf8_lossy(&n.stdout),
            "{name}({args:?}) via {}",
            module.display()
        );
    }
}

const CALC_CALLS: &[Call] = &[
    ("prime", &[5]),
    ("prime", &[23]),
    ("apply", &[0, 6, 7]),
    ("apply", &[1, 6, 7]),
    ("apply", &[2, 6, 7]),
    ("constructed", &[]),
    ("bump", &[3]),
    ("jump", &[0]),
    ("jump", &[5]),
    ("jump", &[7]),
    ("jump", &[9]),
    ("name_len", &[3]),
    ("fmt", &[42]),
    ("sorted", &[17]),
    ("heap", &[1000]),
    ("maths", &[3]),
    ("jumps", &[21]),
    ("a_scale", &[5]),
];

#[test]
fn c_fixtures_match_native_at_every_flag_set() {
    let dir = workdir("c-flags");
    let flag_sets = [
        "",
        "-O0",
        "-O2",
        "-fPIC",
        "-O2 -fPIC",
        "-fno-pic",
        "-O2 -fno-pic",
    ];
    let builds = flag_sets
        .iter()
        .map(|f| ("gcc", *f))
        .chain(["-O0", "-O2", "-O2 -fPIC", "-O2 -fno-pic"].map(|f| ("clang", f)));
    for (i, (compiler, flags)) in builds.enumerate() {
        let obj = dir.join(format!("calc{i}.o"));
        cc(compiler, &fixture("calc.c"), flags, &obj);
        let module = dir.join(format!("calc{i}.dl"));
        link(&module, &[&obj], &[]).unwrap_or_else(|e| panic!("{compiler} {flags}: {e}"));
        let sub = dir.join(format!("native{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let exe = native(&sub, &[&obj], CALC_CALLS, false);
        compare(&exe, &module, &[], CALC_CALLS);
    }
}

#[test]
fn modules_import_each_others_exports() {
    let dir = workdir("two");
    let (a, b) = (dir.join("calc.o"), dir.join("user.o"));
    gcc_c(&fixture("calc.c"), "-O2", &a);
    gcc_c(&fixture("user.c"), "-O2", &b);
    let (am, bm) = (dir.join("a.dl"), dir.join("b.dl"));
    link(&am, &[&a], &[]).unwrap();
    link(&bm, &[&b], &[]).unwrap();
    let calls: &[Call] = &[("b_twice_scaled", &[5]), ("b_counter", &[])];
    let exe = native(&dir, &[&a, &b], calls, false);
    compare(&exe, &bm, &[&am], calls);
    // The module records what it imports, with the stated signatures.
    let nm = run(aout().arg("nm").arg(&bm));
    let nm = String::from_utf8_lossy(&nm.stdout).into_owned();
    let want = format!("U a_scale sig={:#010x}", dynld::signof!("fn(vlong) vlong"));
    assert!(nm.contains(&want), "{nm}");
    // Without module A, B's imports are undefined.
    let o = aout()
        .arg("run")
        .arg(&bm)
        .arg("b_counter")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("undefined symbol: a_scale"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn signature_mismatch_stated_in_source_is_refused() {
    let dir = workdir("mismatch");
    let (a, c) = (dir.join("calc.o"), dir.join("mismatch.o"));
    gcc_c(&fixture("calc.c"), "", &a);
    gcc_c(&fixture("mismatch.c"), "", &c);
    let (am, cm) = (dir.join("a.dl"), dir.join("c.dl"));
    link(&am, &[&a], &[]).unwrap();
    link(&cm, &[&c], &[]).unwrap();
    let o = aout()
        .args(["run", "--export-from"])
        .arg(&am)
        .arg(&cm)
        .args(["c_use", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // Both modules carry their descriptions: the message names the
    // module and gives both types.
    let want = format!(
        "{}: signature mismatch: a_scale: module wants fn(double) vlong ({:#010x}), \
         host has fn(vlong) vlong ({:#010x})",
        cm.display(),
        dynld::signof!("fn(double) vlong"),
        dynld::signof!("fn(vlong) vlong")
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&want), "{err}");
    // The matching importer loads (see modules_import_each_others_exports);
    // two objects stating different types for one name do not link.
    let k = dir.join("conflict.o");
    gcc_c(&fixture("conflict.c"), "", &k);
    let e = link(&dir.join("x.dl"), &[&a, &k], &[]).unwrap_err();
    assert!(e.contains("conflicting signatures for a_scale"), "{e}");
}

#[test]
fn what_a_module_cannot_express_is_a_link_error() {
    let dir = workdir("errors");
    let t = dir.join("tls.o");
    gcc_c(&fixture("tls.c"), "-O2", &t);
    let e = link(&dir.join("t.dl"), &[&t], &[]).unwrap_err();
    assert!(
        e.contains("tls.o") && e.contains("thread-local storage"),
        "{e}"
    );
    // The large code model's GOT-relative forms are not expressible.
    #[cfg(target_arch = "x86_64")]
    {
        let l = dir.join("large.o");
        gcc_c(&fixture("calc.c"), "-O2 -fPIC -mcmodel=large", &l);
        let e = link(&dir.join("l.dl"), &[&l], &[]).unwrap_err();
        assert!(
            e.contains("large.o: section .text")
                && e.contains("relocation R_X86_64_")
                && e.contains("not supported"),
            "{e}"
        );
    }
    // A symbol defined twice.
    let (a1, a2) = (dir.join("a1.o"), dir.join("a2.o"));
    gcc_c(&fixture("calc.c"), "", &a1);
    gcc_c(&fixture("calc.c"), "-O2", &a2);
    let e = link(&dir.join("d.dl"), &[&a1, &a2], &[]).unwrap_err();
    assert!(e.contains("defined twice"), "{e}");
    // An export that is not defined.
    let e = link(&dir.join("x.dl"), &[&a1], &["--export", "nope"]).unwrap_err();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn export_lists_and_section_gc() {
    let dir = workdir("exports");
    let a = dir.join("calc.o");
    gcc_c(
        &fixture("calc.c"),
        "-O2 -ffunction-sections -fdata-sections",
        &a,
    );
    let all = dir.join("all.dl");
    link(&all, &[&a], &[]).unwrap();
    let list = dir.join("list.txt");
    std::fs::write(&list, "# just these\nprime\n").unwrap();
    let one = dir.join("one.dl");
    link(
        &one,
        &[&a],
        &["--export-list", list.to_str().unwrap(), "--export", "jump"],
    )
    .unwrap();
    let nm = |m: &Path| String::from_utf8_lossy(&run(aout().arg("nm").arg(m)).stdout).into_owned();
    let (n_all, n_one) = (nm(&all), nm(&one));
    assert!(n_all.contains(" T heap "), "{n_all}");
    let exported: Vec<&str> = n_one.lines().filter(|l| !l.contains(" U ")).collect();
    assert_eq!(exported.len(), 2, "{n_one}");
    assert!(n_one.contains(" T jump ") && n_one.contains(" T prime "));
    // Unreferenced sections were dropped: no imports of qsort, printf, ...
    assert!(!n_one.contains(" U "), "{n_one}");
    assert!(std::fs::metadata(&one).unwrap().len() < std::fs::metadata(&all).unwrap().len());
    let r = run(aout().arg("run").arg(&one).args(["prime", "4"]));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "11\n");
}

fn sysroot_lib(triple: &str, prefix: &str) -> PathBuf {
    let o = run(Command::new("rustc").args(["--print", "sysroot"]));
    let dir = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
        .join("lib/rustlib")
        .join(triple)
        .join("lib");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(prefix) && f.ends_with(".rlib"))
        })
        .unwrap_or_else(|| panic!("no {prefix}*.rlib in {}", dir.display()))
}

const RUST_CALLS: &[Call] = &[
    ("r_classify", &[0]),
    ("r_classify", &[4]),
    ("r_classify", &[7]),
    ("r_classify", &[12]),
    ("r_sum", &[5]),
    ("r_sum", &[100]),
    ("r_window", &[2, 3]),
    ("r_index", &[3]),
    ("r_area", &[0]),
    ("r_area", &[1]),
    ("r_area", &[5]),
];

/// The bare-metal Rust target whose objects also run on this machine's
/// Linux (same instruction set and calling convention), if any.
const BARE_TRIPLE: Option<&str> = if cfg!(target_arch = "aarch64") {
    Some("aarch64-unknown-none")
} else {
    None
};

#[test]
fn rust_objects_and_staticlibs_match_native() {
    let dir = workdir("rust");
    // An object built at opt-level 0 or 1 expects generic instantiations
    // from upstream crates that the precompiled libcore does not export (GNU
    // ld cannot link it either), so objects are built at 2 and 3; staticlibs
    // carry their own and are built at 0 and 3.
    let variants = [
        ("obj", "2", "legacy"),
        ("obj", "3", "v0"),
        ("staticlib", "0", "v0"),
        ("staticlib", "3", "legacy"),
    ];
    let triples = std::iter::once(TC.triple).chain(BARE_TRIPLE);
    for (triple, (kind, opt, mangling)) in
        triples.flat_map(|t| variants.iter().map(move |v| (t, *v)))
    {
        let (rlib, deps) = dynld_rlib(triple, false);
        let core = sysroot_lib(triple, "libcore-");
        let builtins = sysroot_lib(triple, "libcompiler_builtins-");
        let tag = format!("{triple}-{kind}-O{opt}-{mangling}");
        let sub = dir.join(&tag);
        std::fs::create_dir_all(&sub).unwrap();
        let mut rustc = Command::new("rustc");
        rustc
            .args([
                "--edition",
                "2021",
                "--target",
                triple,
                "--crate-name",
                "rmod",
            ])
            .args(["-C", "panic=abort", "-C"])
            .arg(format!("opt-level={opt}"))
            .args(if mangling == "v0" {
                &["-C", "symbol-mangling-version=v0"][..]
            } else {
                // Legacy mangling is stable rustc's default.
                &[][..]
            })
            .arg("--extern")
            .arg(format!("dynld={}", rlib.display()))
            .arg("-L")
            .arg(format!("dependency={}", deps.display()));
        let inputs: Vec<PathBuf> = if kind == "obj" {
            let o = sub.join("rmod.o");
            run(rustc
                .args(["--crate-type", "lib", "--emit=obj"])
                .arg(fixture("rmod.rs"))
                .arg("-o")
                .arg(&o));
            vec![o, core.clone(), builtins.clone()]
        } else {
            let a = sub.join("librmod.a");
            run(rustc
                .args(["--crate-type", "staticlib"])
                .arg(fixture("rmod.rs"))
                .arg("-o")
                .arg(&a));
            vec![a]
        };
        let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        let module = sub.join("rmod.dl");
        let exports = [
            "--export",
            "r_classify",
            "--export",
            "r_sum",
            "--export",
            "r_window",
            "--export",
            "r_index",
            "--export",
            "r_area",
        ];
        link(&module, &refs, &exports).unwrap_or_else(|e| panic!("{tag}: {e}"));
        let exe = native(&sub, &refs, RUST_CALLS, true);
        compare(&exe, &module, &[], RUST_CALLS);
        // The panic path: the module's handler formats the message and
        // calls the host's puts and exit.
        let o = aout()
            .arg("run")
            .arg(&module)
            .args(["r_index", "10"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(101), "{tag}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "module panicked: index out of bounds: the len is 8 but the index is 10\n",
            "{tag}"
        );
        // Signatures stated with dynld::export_sig! are in the module.
        let nm = String::from_utf8_lossy(&run(aout().arg("nm").arg(&module)).stdout).into_owned();
        let want = format!(
            "T r_classify sig={:#010x}",
            dynld::signof!("fn(vlong) vlong")
        );
        assert!(nm.contains(&want), "{tag}: {nm}");
    }
}

/// zlib's own sources, from the libz-sys crate.

#[test]
fn zlib_compiled_unchanged_gives_identical_bytes() {
    let dir = workdir("zlib");
    let z = zlib_dir();
    let mut objs = Vec::new();
    for f in [
        "adler32", "compress", "crc32", "deflate", "infback", "inffast", "inflate", "inftrees",
        "trees", "uncompr", "zutil", "gzclose", "gzlib", "gzread", "gzwrite",
    ] {
        let o = dir.join(format!("{f}.o"));
        run(Command::new(tool("gcc"))
            .args(["-O2", "-c", "-D_LARGEFILE64_SOURCE=1", "-I"])
            .arg(&z)
            .arg(z.join(format!("{f}.c")))
            .arg("-o")
            .arg(&o));
        objs.push(o);
    }
    let lib = dir.join("libz.a");
    run(Command::new(tool("ar")).arg("rcs").arg(&lib).args(&objs));
    let drv = dir.join("zdriver.o");
    run(Command::new(tool("gcc"))
        .args(["-O2", "-c", "-I"])
        .arg(&z)
        .arg(fixture("zdriver.c"))
        .arg("-o")
        .arg(&drv));
    let module = dir.join("z.dl");
    link(&module, &[&drv, &lib], &[]).unwrap();
    let calls: &[Call] = &[
        ("z_roundtrip", &[0, 6]),
        ("z_roundtrip", &[100, 1]),
        ("z_roundtrip", &[5000, 6]),
        ("z_roundtrip", &[70000, 9]),
        ("z_versions", &[]),
    ];
    let exe = native(&dir, &[&drv, &lib], calls, false);
    compare(&exe, &module, &[], calls);
}

#[test]
fn generated_host_table_binds_a_module() {
    let dir = workdir("exports-host");
    let obj = dir.join("twice_user.o");
    gcc_c(&fixture("twice_user.c"), "-O2", &obj);
    let module = dir.join("twice.dl");
    link(&module, &[&obj], &[]).unwrap();
    let (rlib, deps) = dynld_rlib(TC.triple, true);
    std::fs::copy(fixture("host.rs"), dir.join("host.rs")).unwrap();
    for (list, want) in [
        (
            "# the host's exports\nhost_twice fn(vlong) vlong\nabort\n",
            "43\n".to_string(),
        ),
        (
            "host_twice fn(int) int\n",
            format!(
                "signature mismatch: host_twice: module wants fn(vlong) vlong ({:#010x}), \
                 host has fn(int) int ({:#010x})\n",
                dynld::signof!("fn(vlong) vlong"),
                dynld::signof!("fn(int) int")
            ),
        ),
    ] {
        let listf = dir.join("list.txt");
        std::fs::write(&listf, list).unwrap();
        run(aout()
            .args(["exports", "--lang", "rust", "-o"])
            .arg(dir.join("exports.rs"))
            .arg(&listf));
        let exe = dir.join("host");
        run(Command::new("rustc")
            .args(["--edition", "2021", "--target", TC.triple])
            .arg(format!("-Clinker={}", tool("gcc")))
            .args(["-C", "opt-level=1", "--extern"])
            .arg(format!("dynld={}", rlib.display()))
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg(dir.join("host.rs"))
            .arg("-o")
            .arg(&exe));
        let o = exec(&exe).arg(&module).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    }
    // The C form compiles, and bad lists are refused.
    let listf = dir.join("c.txt");
    std::fs::write(&listf, "host_twice fn(vlong) vlong\nabort\n").unwrap();
    let c = dir.join("exports.c");
    run(aout()
        .args(["exports", "--lang", "c", "-o"])
        .arg(&c)
        .arg(&listf));
    run(Command::new(tool("gcc"))
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-c",
            "-I",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../include"))
        .arg(&c)
        .arg("-o")
        .arg(dir.join("exports.o")));
    let text = std::fs::read_to_string(&c).unwrap();
    assert!(text.find("\"abort\"").unwrap() < text.find("\"host_twice\"").unwrap());
    for bad in ["a fn(int\n", "a\na\n"] {
        std::fs::write(&listf, bad).unwrap();
        let o = aout().arg("exports").arg(&listf).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
    }
}

#[test]
fn comdat_groups_and_common_symbols_are_merged() {
    let dir = workdir("comdat");
    let (a, b) = (dir.join("a.o"), dir.join("b.o"));
    gcc_c(&fixture("comdat_a.c"), "-O2 -fcommon", &a);
    gcc_c(&fixture("comdat_b.c"), "-O2 -fcommon", &b);
    let module = dir.join("c.dl");
    link(&module, &[&a, &b], &[]).unwrap();
    let nm = String::from_utf8_lossy(&run(aout().arg("nm").arg(&module)).stdout).into_owned();
    assert_eq!(nm.matches(" shared_fn ").count(), 1, "{nm}");
    assert!(nm.contains(" B tally "), "{nm}");
    let calls: &[Call] = &[("use_a", &[5]), ("use_b", &[6])];
    let exe = native(&dir, &[&a, &b], calls, false);
    compare(&exe, &module, &[], calls);
}

/// Writes `src` to `dir/name` and compiles it with `compiler flags`.
fn compile(dir: &Path, compiler: &str, name: &str, src: &str, flags: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, src).unwrap();
    let obj = path.with_extension("o");
    cc(compiler, &path, flags, &obj);
    obj
}

fn archive(dir: &Path, name: &str, members: &[&Path]) -> PathBuf {
    let a = dir.join(name);
    run(Command::new(tool("ar")).arg("rcs").arg(&a).args(members));
    a
}

fn run_result(module: &Path, func: &str, args: &[&str]) -> String {
    let o = run(aout()
        .arg("run")
        .arg("--ret")
        .arg("i64")
        .arg(module)
        .arg(func)
        .args(args));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Each case was a module that linked but ran differently from the same
/// objects linked by ld, or a valid input refused.
#[test]
fn linker_follows_ld_semantics() {
    let dir = workdir("ld-semantics");
    let m = |n: &str| dir.join(n);
    // Data aligned beyond a page keeps its alignment.
    let al = compile(
        &dir,
        "gcc",
        "al.c",
        "_Alignas(8192) char buf[8192] = {1};\n_Alignas(16384) char zbuf[100];\n\
         long f(void) { return (long)buf & 8191; }\nlong g(void) { return (long)zbuf & 16383; }\n",
        "-O2",
    );
    link(&m("al.dl"), &[&al], &[]).unwrap();
    assert_eq!(run_result(&m("al.dl"), "f", &[]), "0");
    assert_eq!(run_result(&m("al.dl"), "g", &[]), "0");
    // The first archive member to define a name is the one pulled.
    let main = compile(
        &dir,
        "gcc",
        "m.c",
        "long foo(void);\nlong use(void) { return foo(); }\n",
        "-O2",
    );
    let f1 = compile(&dir, "gcc", "f1.c", "long foo(void) { return 1; }\n", "-O2");
    let f2 = compile(&dir, "gcc", "f2.c", "long foo(void) { return 2; }\n", "-O2");
    let (l1, l2) = (archive(&dir, "l1.a", &[&f1]), archive(&dir, "l2.a", &[&f2]));
    link(&m("ar.dl"), &[&main, &l1, &l2], &[]).unwrap();
    assert_eq!(run_result(&m("ar.dl"), "use", &[]), "1");
    // A weak reference pulls no member and, undefined, is 0.
    let wu = compile(&dir, "gcc", "wu.c",
        "extern long opt(void) __attribute__((weak));\nlong pick(void) { return opt ? opt() : 7; }\n", "-O2");
    let op = compile(&dir, "gcc", "op.c", "long opt(void) { return 1; }\n", "-O2");
    let lop = archive(&dir, "lop.a", &[&op]);
    link(&m("wu.dl"), &[&wu, &lop], &[]).unwrap();
    assert_eq!(run_result(&m("wu.dl"), "pick", &[]), "7");
    // A common symbol overrides a weak definition, in either order.
    let w1 = compile(
        &dir,
        "gcc",
        "w1.c",
        "__attribute__((weak)) long wc = 5;\nlong get_wc(void) { return wc; }\n",
        "-O2 -fcommon",
    );
    let w2 = compile(&dir, "gcc", "w2.c", "long wc;\n", "-O2 -fcommon");
    for (order, name) in [
        ([w1.as_path(), &w2], "wc1.dl"),
        ([w2.as_path(), &w1], "wc2.dl"),
    ] {
        link(&m(name), &order, &[]).unwrap();
        assert_eq!(run_result(&m(name), "get_wc", &[]), "0", "{name}");
    }
    // Merged commons keep the strictest alignment.
    let c1 = compile(
        &dir,
        "gcc",
        "cm1.c",
        "_Alignas(64) char cbuf[8];\nlong align1(void) { return (long)cbuf & 63; }\n",
        "-O2 -fcommon",
    );
    let c2 = compile(&dir, "gcc", "cm2.c", "char cbuf[32];\n", "-O2 -fcommon");
    link(&m("cm.dl"), &[&c1, &c2], &[]).unwrap();
    assert_eq!(run_result(&m("cm.dl"), "align1", &[]), "0");
    // Static constructors (section symbol + offset) run, in order, with
    // zeroed arguments.
    let ct = compile(&dir, "gcc", "ct.c",
        "static long seen, arg = -1;\n\
         __attribute__((constructor)) static void a(void) { seen = seen * 10 + 1; }\n\
         __attribute__((constructor)) static void b(int argc) { seen = seen * 10 + 2; arg = argc; }\n\
         long ctors(void) { return seen * 100 + arg; }\n", "-O2");
    link(&m("ct.dl"), &[&ct], &[]).unwrap();
    let calls: &[Call] = &[("ctors", &[])];
    let sub = m("ct-native");
    std::fs::create_dir_all(&sub).unwrap();
    let exe = native(&sub, &[&ct], calls, false);
    let native_out = run(exec(&exe).arg("ctors"));
    let order = String::from_utf8_lossy(&native_out.stdout)
        .trim()
        .to_owned();
    let got = run_result(&m("ct.dl"), "ctors", &[]);
    // Same order as ld; argc is 0 here (natively it is the real argc).
    assert_eq!(
        &got[..got.len() - 1],
        &order[..order.len() - 1],
        "{got} vs {order}"
    );
    assert!(got.ends_with('0'), "{got}");
    // --no-gc with C++ inline functions in two units (COMDAT + unwind tables).
    let h = "inline int sq(int x) { return x * x; }\n";
    let p1 = compile(
        &dir,
        "g++",
        "c1.cc",
        &format!("{h}extern \"C\" long one(long x) {{ return sq(x); }}\n"),
        "-O0",
    );
    let p2 = compile(
        &dir,
        "g++",
        "c2.cc",
        &format!("{h}extern \"C\" long two(long x) {{ return sq(x) + 1; }}\n"),
        "-O0",
    );
    link(&m("cc.dl"), &[&p1, &p2], &["--no-gc"]).unwrap();
    assert_eq!(run_result(&m("cc.dl"), "two", &["3"]), "10");
}

/// Inputs a module cannot express are refused, naming the object.
#[cfg(target_arch = "x86_64")]
#[test]
fn linker_refuses_what_modules_cannot_express() {
    let dir = workdir("ld-refuse");
    let m = |n: &str| dir.join(n);
    let x64 = compile(&dir, "gcc", "a.c", "long a(void) { return 1; }\n", "-O2");
    let x32 = compile(
        &dir,
        "gcc",
        "b.c",
        "long b(void) { return 2; }\n",
        "-O2 -m32",
    );
    let e = link(&m("mix.dl"), &[&x64, &x32], &[]).unwrap_err();
    assert!(e.contains("b.o: not an object for amd64"), "{e}");
    let ifn = compile(
        &dir,
        "gcc",
        "ifn.c",
        "static long t(long x) { return 3 * x; }\nstatic void *res(void) { return (void *)t; }\n\
         long tri(long) __attribute__((ifunc(\"res\")));\n",
        "-O2",
    );
    let e = link(&m("ifn.dl"), &[&ifn], &[]).unwrap_err();
    assert!(e.contains("ifn.o: tri is an indirect function"), "{e}");
    let ctors = compile(&dir, "gcc", "ctors.c",
        "static void c(void) {}\n__attribute__((section(\".ctors\"), used)) static void (*p)(void) = c;\n", "-O2");
    let e = link(&m("ctors.dl"), &[&ctors], &["--no-gc"]).unwrap_err();
    assert!(e.contains("ctors.o: section .ctors"), "{e}");
    let hidden = compile(&dir, "gcc", "hid.c",
        "extern long h(void) __attribute__((visibility(\"hidden\")));\nlong call_h(void) { return h(); }\n", "-O2");
    let e = link(&m("hid.dl"), &[&hidden], &[]).unwrap_err();
    assert!(e.contains("hidden symbol h is not defined"), "{e}");
    let abs = m("abs.s");
    std::fs::write(
        &abs,
        ".globl ABSV\n.set ABSV, 0x1234\n.text\n.globl f\nf: ret\n",
    )
    .unwrap();
    let abs_o = m("abs.o");
    run(Command::new("gcc")
        .arg("-c")
        .arg(&abs)
        .arg("-o")
        .arg(&abs_o));
    let e = link(&m("abs.dl"), &[&abs_o], &["--export", "ABSV"]).unwrap_err();
    assert!(e.contains("cannot export ABSV"), "{e}");
    let wx = m("wx.s");
    std::fs::write(
        &wx,
        ".section .wxcode,\"awx\",@progbits\n.globl g\ng: ret\n",
    )
    .unwrap();
    let wx_o = m("wx.o");
    run(Command::new("gcc").arg("-c").arg(&wx).arg("-o").arg(&wx_o));
    let e = link(&m("wx.dl"), &[&wx_o], &[]).unwrap_err();
    assert!(e.contains("writable and executable"), "{e}");
}

/// Assembles `src` for the target.
#[cfg(not(target_arch = "x86_64"))]
fn assemble(dir: &Path, name: &str, src: &str) -> PathBuf {
    let s = dir.join(name);
    std::fs::write(&s, src).unwrap();
    let o = s.with_extension("o");
    run(Command::new(tool("gcc"))
        .arg("-c")
        .arg(&s)
        .arg("-o")
        .arg(&o));
    o
}

/// AArch64: a branch beyond its range and the forms a module cannot
/// express are refused with the object, section, offset and type.
#[cfg(target_arch = "aarch64")]
#[test]
fn aarch64_relocations_out_of_range_or_unsupported() {
    let dir = workdir("a64-refuse");
    // b.eq reaches 1 MiB; the target lies 2 MiB away, in another section.
    let far = assemble(
        &dir,
        "far.s",
        ".text\n.globl f\nf: b.eq far\n ret\n.space 0x200000\n\
         .section .text.far,\"ax\",@progbits\n.globl far\nfar: ret\n",
    );
    let e = link(&dir.join("far.dl"), &[&far], &[]).unwrap_err();
    assert!(
        e.contains("far.o: section .text+0x0: relocation R_AARCH64_CONDBR19 (280) against far: value out of range"),
        "{e}"
    );
    // An absolute address of the module's own code built with movz/movk.
    let mov = assemble(
        &dir,
        "mov.s",
        ".text\n.globl g\ng: movz x0, #:abs_g1:g\n movk x0, #:abs_g0_nc:g\n ret\n",
    );
    let e = link(&dir.join("mov.dl"), &[&mov], &[]).unwrap_err();
    assert!(
        e.contains("mov.o: section .text+0x0: relocation R_AARCH64_MOVW_UABS_G1 (265) against g: absolute addresses built with movz/movk are not supported"),
        "{e}"
    );
    // Small-model PIC (-fpic): GOT entries relative to the GOT's page.
    let pic = assemble(
        &dir,
        "pic.s",
        ".text\n.globl h\nh: adrp x0, _GLOBAL_OFFSET_TABLE_\n ldr x0, [x0, #:gotpage_lo15:ext]\n ret\n",
    );
    let e = link(&dir.join("pic.dl"), &[&pic], &[]).unwrap_err();
    assert!(
        e.contains("pic.o: section .text+0x4: relocation R_AARCH64_LD64_GOTPAGE_LO15 (313) against ext: relocation type not supported (small-model PIC"),
        "{e}"
    );
}

/// AArch64 code built without -fPIC reads an import's data with adrp and a
/// low-12 offset; the loader patches both (within 4 GiB), and the linker
/// says so.
#[cfg(target_arch = "aarch64")]
#[test]
fn aarch64_non_pic_code_reaches_imported_data() {
    let dir = workdir("a64-nopic");
    let (a, b) = (dir.join("calc.o"), dir.join("user.o"));
    gcc_c(&fixture("calc.c"), "-O2", &a);
    gcc_c(&fixture("user.c"), "-O2 -fno-pic", &b);
    let (am, bm) = (dir.join("a.dl"), dir.join("b.dl"));
    link(&am, &[&a], &[]).unwrap();
    let warn = link(&bm, &[&b], &[]).unwrap();
    assert!(
        warn.contains("counter is reached with adrp: the module loads only within 4 GiB of it"),
        "{warn}"
    );
    let dump = run(aout().args(["dump", "--relocs"]).arg(&bm));
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(
        dump.contains("import-adrp") && dump.contains("import-lo12"),
        "{dump}"
    );
    let calls: &[Call] = &[("b_twice_scaled", &[5]), ("b_counter", &[])];
    let exe = native(&dir, &[&a, &b], calls, false);
    compare(&exe, &bm, &[&am], calls);
}

/// RV64: a branch beyond its range and the forms a module cannot express
/// are refused with the object, section, offset and type.
#[cfg(target_arch = "riscv64")]
#[test]
fn riscv64_relocations_out_of_range_or_unsupported() {
    let dir = workdir("rv64-refuse");
    // A jump reaches 1 MiB; the target lies further, in another section
    // (the assembler turns a branch to another section into bne + j).
    let far = assemble(
        &dir,
        "far.s",
        ".option norvc\n.text\n.globl f\nf: j far\n ret\n.space 0x100000\n\
         .section .text.far,\"ax\",@progbits\n.globl far\nfar: ret\n",
    );
    let e = link(&dir.join("far.dl"), &[&far], &[]).unwrap_err();
    assert!(
        e.contains(
            "far.o: section .text+0x0: relocation R_RISCV_JAL (17) against far: value out of range"
        ),
        "{e}"
    );
    // An import's address built with lui/addi (non-PIC code).
    let imp = assemble(
        &dir,
        "imp.s",
        ".text\n.globl h\nh: lui a0, %hi(ext)\n addi a0, a0, %lo(ext)\n ret\n",
    );
    let e = link(&dir.join("imp.dl"), &[&imp], &[]).unwrap_err();
    assert!(
        e.contains("imp.o: section .text+0x0: relocation R_RISCV_HI20 (26) against ext: an import's address cannot be built with lui/addi"),
        "{e}"
    );
    // A label difference with one half missing.
    let add = assemble(
        &dir,
        "add.s",
        ".text\n.globl g\ng: ret\n.data\n.globl d\nd: .reloc d, R_RISCV_ADD32, g\n .word 0\n",
    );
    let e = link(&dir.join("add.dl"), &[&add], &[]).unwrap_err();
    assert!(
        e.contains(
            "add.o: section .data+0x0: relocation R_RISCV_ADD32 (35) has no paired relocation"
        ),
        "{e}"
    );
    // A %pcrel_lo whose label has no %pcrel_hi.
    let lo = assemble(
        &dir,
        "lo.s",
        ".text\n.globl k\nk: nop\n1: addi a0, a0, %pcrel_lo(1b)\n ret\n",
    );
    let e = link(&dir.join("lo.dl"), &[&lo], &[]).unwrap_err();
    assert!(
        e.contains("lo.o: section .text+0x")
            && e.contains("relocation R_RISCV_PCREL_LO12_I (24)")
            && e.contains("no R_RISCV_PCREL_HI20 or R_RISCV_GOT_HI20 at the label"),
        "{e}"
    );
}

/// Runs `aout run MODULE FUNC` and returns its status and standard output:
/// the function's result, then what the module prints as it unloads.
fn run_output(module: &Path, func: &str) -> (bool, String, String) {
    let o = aout().arg("run").arg(module).arg(func).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `.preinit_array` entries run before `.init_array` ones, destructors run
/// when the module is unloaded, then the handlers its code gave `atexit`,
/// and the process exits cleanly after (the handlers were the module's own,
/// not left with the C library to run after the module's memory is gone).
#[test]
fn constructors_destructors_and_exit_handlers_run_in_order() {
    let dir = workdir("lifecycle");
    let m = |n: &str| dir.join(n);
    let obj = compile(
        &dir,
        "gcc",
        "life.c",
        "#include <stdio.h>\n#include <stdlib.h>\n\
         static int number;\n\
         static void pre(void) { number = 1; }\n\
         __attribute__((section(\".preinit_array\"), used)) static void (*pre_p)(void) = pre;\n\
         __attribute__((constructor)) static void init(void) { number = number * 10 + 2; }\n\
         __attribute__((destructor)) static void fin(void) { printf(\"fin %d\\n\", number); }\n\
         __attribute__((destructor(200))) static void fin_first(void) { printf(\"fin200\\n\"); }\n\
         static void bye(void) { printf(\"bye %d\\n\", number); }\n\
         static void bye2(void) { printf(\"bye2\\n\"); }\n\
         int probe(void) { return number; }\n\
         int reg(void) { return atexit(bye) + atexit(bye2); }\n",
        "-O2 -fPIC",
    );
    for (name, extra) in [("life.dl", &[][..]), ("life-nogc.dl", &["--no-gc"][..])] {
        link(&m(name), &[&obj], extra).unwrap();
        // Constructors: preinit (1), then init (1 * 10 + 2). Destructors
        // run last to first (fini_array holds priority 200 before the
        // plain one).
        assert_eq!(
            run_output(&m(name), "probe"),
            (true, "12\nfin 12\nfin200\n".to_owned(), String::new()),
            "{name}"
        );
        // The exit handlers, last registered first, after the destructors.
        assert_eq!(
            run_output(&m(name), "reg"),
            (
                true,
                "0\nfin 12\nfin200\nbye2\nbye 12\n".to_owned(),
                String::new()
            ),
            "{name}"
        );
    }
    let dump = run(aout().arg("dump").arg(m("life.dl")));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("init    2: "), "{dump}");
    assert!(dump.contains("fini    2: "), "{dump}");
    // The module has its own __dso_handle and atexit; __cxa_atexit is an
    // import, which dynld binds itself.
    let nm = run(aout().arg("nm").arg(m("life.dl")));
    let nm = String::from_utf8_lossy(&nm.stdout);
    assert!(nm.contains("U __cxa_atexit"), "{nm}");
    assert!(!nm.contains("__dso_handle"), "{nm}");
    assert!(!nm.contains(" atexit"), "{nm}");
}

/// C++ objects with static storage register their destructors with
/// `__cxa_atexit` and the module's `__dso_handle`: they run at unload.
#[test]
fn cxx_static_destructors_run_at_unload() {
    let dir = workdir("cxx-statics");
    let src = dir.join("noisy.cc");
    std::fs::write(
        &src,
        "#include <cstdio>\n\
         struct Noisy { int v; Noisy(int x) : v(x) {} ~Noisy() { std::printf(\"~Noisy %d\\n\", v); } };\n\
         static Noisy a(7), b(8);\n\
         int counter() { static Noisy local(9); return local.v; }\n\
         extern \"C\" int value() { return a.v * 10 + b.v; }\n\
         extern \"C\" int value_and_local() { return value() + counter(); }\n",
    )
    .unwrap();
    let obj = dir.join("noisy.o");
    // No libstdc++ in the host table: no thread-safe statics (their guards
    // are libstdc++ functions).
    cc(
        "g++",
        &src,
        "-O2 -fPIC -fno-exceptions -fno-threadsafe-statics",
        &obj,
    );
    let module = dir.join("noisy.dl");
    link(&module, &[&obj], &[]).unwrap();
    // Destroyed in the reverse of their construction.
    assert_eq!(
        run_output(&module, "value"),
        (true, "78\n~Noisy 8\n~Noisy 7\n".to_owned(), String::new())
    );
    // A function-local static registers when first used, so it goes first.
    assert_eq!(
        run_output(&module, "value_and_local"),
        (
            true,
            "87\n~Noisy 9\n~Noisy 8\n~Noisy 7\n".to_owned(),
            String::new()
        )
    );
}

/// What a module cannot do is refused when it is linked, naming the object
/// and, for exceptions, the personality routine its unwind tables name.
#[test]
fn exceptions_and_on_exit_are_refused() {
    let dir = workdir("refused-calls");
    let src = dir.join("throws.cc");
    std::fs::write(
        &src,
        "extern \"C\" int f(int x) { try { if (x) throw 1; } catch (int) { return 2; } return 0; }\n",
    )
    .unwrap();
    let obj = dir.join("throws.o");
    cc("g++", &src, "-O2 -fPIC", &obj);
    let e = link(&dir.join("throws.dl"), &[&obj], &[]).unwrap_err();
    assert!(
        e.contains("throws.o: calls __cxa_throw (personality routine __gxx_personality_v0)"),
        "{e}"
    );
    assert!(e.contains("compile with -fno-exceptions"), "{e}");
    let on_exit = compile(
        &dir,
        "gcc",
        "onexit.c",
        "#include <stdlib.h>\nstatic void h(int s, void *a) { (void)s; (void)a; }\n\
         int reg(void) { return on_exit(h, 0); }\n",
        "-O2 -fPIC",
    );
    let e = link(&dir.join("onexit.dl"), &[&on_exit], &[]).unwrap_err();
    assert!(e.contains("onexit.o: calls on_exit"), "{e}");
    // .dtors, like .ctors, is refused.
    let dtors = compile(
        &dir,
        "gcc",
        "dtors.c",
        "static void d(void) {}\n__attribute__((section(\".dtors\"), used)) static void (*p)(void) = d;\n",
        "-O2",
    );
    let e = link(&dir.join("dtors.dl"), &[&dtors], &["--no-gc"]).unwrap_err();
    assert!(e.contains("dtors.o: section .dtors"), "{e}");
    // A constructor that is not code in the text.
    let data_ctor = compile(
        &dir,
        "gcc",
        "datactor.c",
        "int table[4];\n__attribute__((section(\".init_array\"), used)) static void *p = table;\n",
        "-O2",
    );
    let e = link(&dir.join("datactor.dl"), &[&data_ctor], &[]).unwrap_err();
    assert!(
        e.contains("constructor is not a function in the module's text"),
        "{e}"
    );
}

/// `aout nm`'s lines for the exports of `module` (every line but the
/// imports').
fn exports_of(module: &Path) -> Vec<String> {
    let nm = run(aout().arg("nm").arg(module));
    String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter(|l| !l.contains(" U "))
        .map(str::to_owned)
        .collect()
}

/// Builds `src` as a Rust staticlib for the target, at opt-level 2.
fn rust_staticlib(dir: &Path, name: &str, src: &Path) -> PathBuf {
    let (rlib, deps) = dynld_rlib(TC.triple, false);
    let lib = dir.join(format!("lib{name}.a"));
    run(Command::new("rustc")
        .args(["--edition", "2021", "--target", TC.triple])
        .args(["--crate-type", "staticlib", "--crate-name", name])
        .args(["-C", "panic=abort", "-C", "opt-level=2", "--extern"])
        .arg(format!("dynld={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg(src)
        .arg("-o")
        .arg(&lib));
    lib
}

/// Without --export, a Rust staticlib exports what its source states
/// (export_sig!) and its #[no_mangle] extern "C" items, nothing of its
/// mangled Rust functions or of its dependencies; a module exporting
/// nothing is an error, or with a constructor a warning.
#[test]
fn rust_staticlibs_export_their_c_items_by_default() {
    let dir = workdir("rust-exports");
    let lib = rust_staticlib(&dir, "rmod", &fixture("rmod.rs"));
    let module = dir.join("rmod.dl");
    link(&module, &[&lib], &[]).unwrap();
    let mut names: Vec<String> = exports_of(&module)
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["r_area", "r_classify", "r_index", "r_sum", "r_window"],
        "{names:?}"
    );
    let stated = format!(
        "T r_classify sig={:#010x}",
        dynld::signof!("fn(vlong) vlong")
    );
    assert!(
        exports_of(&module).iter().any(|l| l.ends_with(&stated)),
        "{:?}",
        exports_of(&module)
    );
    assert_eq!(run_result(&module, "r_classify", &["4"]), "41");
    assert_eq!(run_result(&module, "r_sum", &["3"]), "81");
    // A stated export that is no symbol of that name (a mangled Rust
    // function) is an error saying so.
    let src = dir.join("mangled.rs");
    std::fs::write(
        &src,
        "#![no_std]\n\
         dynld::export_sig!(fn helper: extern \"C\" fn(i64) -> i64);\n\
         pub extern \"C\" fn helper(a: i64) -> i64 { a + 1 }\n\
         #[panic_handler]\nfn panic(_: &core::panic::PanicInfo<'_>) -> ! { loop {} }\n",
    )
    .unwrap();
    let lib = rust_staticlib(&dir, "mangled", &src);
    let e = link(&dir.join("mangled.dl"), &[&lib], &[]).unwrap_err();
    assert!(
        e.contains("helper is stated as an export") && e.contains("#[no_mangle]"),
        "{e}"
    );
    // A C archive alone pulls nothing: the module would export nothing.
    let c = compile(&dir, "gcc", "c.c", "long f(void) { return 1; }\n", "-O2");
    let a = archive(&dir, "libc1.a", &[&c]);
    let e = link(&dir.join("c.dl"), &[&a], &[]).unwrap_err();
    assert!(
        e.contains(
            "exports nothing: name exports with --export, or state them with DYNLD_EXPORT / export_sig!"
        ),
        "{e}"
    );
    // A module with a constructor may work by it alone: a warning.
    let ct = compile(
        &dir,
        "gcc",
        "ct.c",
        "#include <stdio.h>\n__attribute__((constructor)) static void hello(void) { puts(\"ctor ran\"); }\n",
        "-O2 -fPIC",
    );
    let w = link(&dir.join("ct.dl"), &[&ct], &[]).unwrap();
    assert!(
        w.contains("warning: ") && w.contains("exports nothing"),
        "{w}"
    );
}

/// Offset of the size field in an archive member's header.
const AR_SIZE: usize = 48;

/// An archive whose symbol index, member headers or member objects cannot
/// be read is refused, naming it, instead of being skipped (its symbols
/// would have become imports).
#[test]
fn corrupt_archives_are_refused() {
    let dir = workdir("bad-archive");
    let f = compile(&dir, "gcc", "f.c", "long foo(void) { return 1; }\n", "-O2");
    let m = compile(
        &dir,
        "gcc",
        "m.c",
        "long foo(void);\nlong use(void) { return foo(); }\n",
        "-O2",
    );
    let good = std::fs::read(archive(&dir, "good.a", &[&f])).unwrap();
    assert_eq!(&good[8..10], b"/ ", "the archive starts with its index");
    let index_len: usize = String::from_utf8_lossy(&good[8 + AR_SIZE..8 + AR_SIZE + 10])
        .trim()
        .parse()
        .unwrap();
    let member = 8 + 60 + index_len.next_multiple_of(2);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // The index's size field past the end of the file: ar and ld refuse it.
    let mut b = good.clone();
    b[8 + AR_SIZE..8 + AR_SIZE + 10].copy_from_slice(b"9999999999");
    cases.push(("size.a", b, "size.a: "));
    // An index claiming more entries than it holds.
    let mut b = good.clone();
    b[8 + 60..8 + 64].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("count.a", b, "count.a: "));
    // A member header without its terminator.
    let mut b = good.clone();
    b[member + 58..member + 60].copy_from_slice(b"xx");
    cases.push(("header.a", b, "header.a: "));
    // An ELF member whose section headers lie outside it.
    let mut b = good.clone();
    b[member + 60 + 0x28..member + 60 + 0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("elf.a", b, "elf.a(f.o): "));
    for (name, bytes, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = link(&dir.join("out.dl"), &[&m, &p], &[]).unwrap_err();
        assert!(e.contains(want), "{name}: {e}");
    }
    // A thin archive's members are other files, not read.
    let thin = dir.join("thin.a");
    run(Command::new(tool("ar")).arg("rcsT").arg(&thin).arg(&f));
    let e = link(&dir.join("out.dl"), &[&m, &thin], &[]).unwrap_err();
    assert!(e.contains("thin.a: a thin archive"), "{e}");
}

/// What the linker writes, its reader accepts with the default limits: a
/// name longer than `dynld::MAX_NAME` and more imports than
/// `Limits::DEFAULT` allows are refused, naming them.
#[test]
fn the_loaders_default_limits_bound_what_is_linked() {
    let dir = workdir("limits");
    let max = dynld::MAX_NAME as usize;
    let at = compile(
        &dir,
        "gcc",
        "at.c",
        &format!("long {}(void) {{ return 1; }}\n", "m".repeat(max)),
        "-O2",
    );
    link(&dir.join("at.dl"), &[&at], &[]).unwrap();
    assert_eq!(exports_of(&dir.join("at.dl")).len(), 1);
    let over = compile(
        &dir,
        "gcc",
        "over.c",
        &format!("long {}(void) {{ return 1; }}\n", "n".repeat(max + 1)),
        "-O2",
    );
    let e = link(&dir.join("over.dl"), &[&over], &[]).unwrap_err();
    assert!(
        e.contains(&format!("export {}...", "n".repeat(32)))
            && e.contains(&format!("{} bytes", max + 1))
            && e.contains(&format!("longer than {max} bytes")),
        "{}",
        &e[..e.len().min(400)]
    );
    assert!(e.len() < 1000, "the name is abbreviated: {} bytes", e.len());
    let import = compile(
        &dir,
        "gcc",
        "imp.c",
        &format!(
            "long {0}(void);\nlong call(void) {{ return {0}(); }}\n",
            "i".repeat(max + 1)
        ),
        "-O2",
    );
    let e = link(&dir.join("imp.dl"), &[&import], &[]).unwrap_err();
    assert!(
        e.contains("imp.o: import iiii"),
        "{}",
        &e[..e.len().min(400)]
    );
    let n = dynld::Limits::DEFAULT.max_imports as usize + 1;
    let mut src: String = (0..n).map(|i| format!("extern char f{i}[];\n")).collect();
    src += "void *tab[] = {";
    src += &(0..n)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(",");
    src += "};\n";
    let many = compile(&dir, "gcc", "many.c", &src, "-O2");
    let e = link(&dir.join("many.dl"), &[&many], &[]).unwrap_err();
    assert!(
        e.contains(&format!("{n} imports")) && e.contains(&format!("at most {}", n - 1)),
        "{e}"
    );
}

/// Writes `n` archive members `chain_00000`, ..., each calling the next
/// one, from one object compiled by gcc whose names are patched, and
/// a last one, `chain_N`, returning a million plus its argument.
fn chain_members(dir: &Path, n: usize) -> Vec<PathBuf> {
    let t = compile(
        dir,
        "gcc",
        "chain.c",
        "long chain_BBBBB(long);\nlong chain_AAAAA(long x) { return 1 + chain_BBBBB(x - 1); }\n",
        "-O2",
    );
    let template = std::fs::read(t).unwrap();
    let patch = |bytes: &[u8], from: &[u8], to: &[u8]| -> Vec<u8> {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("name in the object");
        let mut b = bytes.to_vec();
        b[at..at + from.len()].copy_from_slice(to);
        b
    };
    let mut out = Vec::new();
    for i in 0..n {
        let b = patch(&template, b"AAAAA", format!("{i:05}").as_bytes());
        let b = patch(&b, b"BBBBB", format!("{:05}", i + 1).as_bytes());
        let p = dir.join(format!("c{i:05}.o"));
        std::fs::write(&p, b).unwrap();
        out.push(p);
    }
    out.push(compile(
        dir,
        "gcc",
        "last.c",
        &format!("long chain_{n:05}(long x) {{ return 1000000 + x; }}\n"),
        "-O2",
    ));
    out
}

/// A chain of archive members, each needing the next, in reverse order:
/// every round of the search pulls one member. It links in time linear in
/// its length (the benchmark `link` measures it), and the first member
/// to define a wanted name is the one pulled.
#[test]
fn archive_chains_link_and_pull_the_first_definer() {
    let dir = workdir("chain");
    let n = 8000;
    let mut members = chain_members(&dir, n);
    members.reverse();
    let start = compile(
        &dir,
        "gcc",
        "start.c",
        "long chain_00000(long);\nlong start(long x) { return chain_00000(x); }\n",
        "-O2",
    );
    let decoy = compile(
        &dir,
        "gcc",
        "decoy.c",
        "long chain_04000(long x) { return 7000 + x; }\n",
        "-O2",
    );
    let lib = dir.join("libchain.a");
    let list = dir.join("members");
    let names: Vec<String> = members.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&list, names.join("\n")).unwrap();
    run(Command::new("sh").arg("-c").arg(format!(
        "xargs {} rcs {} < {}",
        tool("ar"),
        lib.display(),
        list.display()
    )));
    let t = std::time::Instant::now();
    link(&dir.join("chain.dl"), &[&start, &lib], &[]).unwrap();
    let took = t.elapsed();
    // Quadratic, this took minutes; the bound is loose (and kept to the
    // native run, not qemu's), the benchmark is the measure.
    if cfg!(target_arch = "x86_64") {
        assert!(took.as_secs() < 60, "{n} members linked in {took:?}");
    }
    let whole = format!("{}", 1000000 + 5);
    assert_eq!(run_result(&dir.join("chain.dl"), "start", &["5"]), whole);
    // members[k] defines chain_(n - k); members[0] is the last one. With
    // the members up to chain_03999 in one archive, the decoy first in
    // another and the chain's own chain_04000 after it: the decoy is
    // pulled, and nothing of the rest of the chain.
    let low: Vec<&Path> = members[n - 3999..].iter().map(PathBuf::as_path).collect();
    let low = archive(&dir, "low.a", &low);
    let first = archive(&dir, "first.a", &[&decoy, &members[n - 4000]]);
    link(&dir.join("first.dl"), &[&start, &low, &first], &[]).unwrap();
    // 4000 steps, then the decoy's 7000 + (5 - 4000).
    assert_eq!(run_result(&dir.join("first.dl"), "start", &["5"]), "7005");
    // The chain's own chain_04000 first, the decoy after: the chain's.
    let after = archive(&dir, "after.a", &[&members[n - 4000], &decoy]);
    let high: Vec<&Path> = members[..n - 4000].iter().map(PathBuf::as_path).collect();
    let high = archive(&dir, "high.a", &high);
    link(&dir.join("after.dl"), &[&start, &low, &after, &high], &[]).unwrap();
    assert_eq!(run_result(&dir.join("after.dl"), "start", &["5"]), whole);
}

/// clang's -flto objects are LLVM bitcode, not machine code: the linker
/// says so, given or in an archive.
#[test]
fn llvm_bitcode_objects_are_named_as_such() {
    let dir = workdir("bitcode");
    let bc = compile(
        &dir,
        "clang",
        "lto.c",
        "long lto(void) { return 1; }\n",
        "-O2 -flto",
    );
    let e = link(&dir.join("lto.dl"), &[&bc], &[]).unwrap_err();
    assert!(
        e.contains("lto.o: LLVM bitcode (an LTO object, from -flto)")
            && e.contains("compile without -flto"),
        "{e}"
    );
    let a = archive(&dir, "liblto.a", &[&bc]);
    let m = compile(
        &dir,
        "gcc",
        "m.c",
        "long lto(void);\nlong use(void) { return lto(); }\n",
        "-O2",
    );
    let e = link(&dir.join("ar.dl"), &[&m, &a], &[]).unwrap_err();
    assert!(e.contains("liblto.a(lto.o): LLVM bitcode"), "{e}");
}

/// `__start_SECTION` and `__stop_SECTION` bound the kept sections named
/// SECTION, placed together, as GNU ld defines them; the sections are
/// kept for them.
#[test]
fn start_and_stop_symbols_bound_their_sections() {
    let dir = workdir("start-stop");
    let users = "extern const long __start_dl_set[], __stop_dl_set[];\n\
         extern long __start_dl_wset[], __stop_dl_wset[];\n\
         long set_sum(void) { long s = 0; for (const long *p = __start_dl_set; p < __stop_dl_set; p++) s += *p; return s; }\n\
         long set_count(void) { return __stop_dl_set - __start_dl_set; }\n\
         long wset_bump(void) { long s = 0; for (long *p = __start_dl_wset; p < __stop_dl_wset; p++) s += ++*p; return s; }\n";
    let a_src = format!(
        "__attribute__((section(\"dl_set\"), used)) static const long a_items[2] = {{1, 2}};\n\
         __attribute__((section(\"dl_wset\"), used)) static long a_w[1] = {{100}};\n{users}"
    );
    let b_src =
        "__attribute__((section(\"dl_set\"), used)) static const long b_items[3] = {10, 20, 30};\n\
         static char pad[3] = {1};\nchar *padding(void) { return pad; }\n\
         __attribute__((section(\"dl_wset\"), used)) static long b_w[2] = {1000, 10000};\n";
    let calls: &[Call] = &[("set_sum", &[]), ("set_count", &[]), ("wset_bump", &[])];
    for flags in ["-O2", "-O2 -fPIC", "-O0"] {
        let sub = dir.join(flags.replace(' ', ""));
        std::fs::create_dir_all(&sub).unwrap();
        let a = compile(&sub, "gcc", "a.c", &a_src, flags);
        let b = compile(&sub, "gcc", "b.c", b_src, flags);
        let module = sub.join("set.dl");
        let w = link(&module, &[&a, &b], &[]).unwrap_or_else(|e| panic!("{flags}: {e}"));
        assert!(!w.contains("__start_"), "{flags}: {w}");
        let exe = native(&sub, &[&a, &b], calls, false);
        compare(&exe, &module, &[], calls);
        assert_eq!(run_result(&module, "set_sum", &[]), "63", "{flags}");
    }
}

/// Patches the section index of symbol `name` in the 64-bit
/// little-endian ELF object at `path`.
fn patch_shndx(path: &Path, name: &str, shndx: u16) {
    let mut b = std::fs::read(path).unwrap();
    let u16at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u32at =
        |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let u64at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64at(&b, 0x28), u16at(&b, 0x3a), u16at(&b, 0x3c));
    let sh = |i: usize| shoff + i * shentsize;
    let symtab = (0..shnum).map(sh).find(|&s| u32at(&b, s + 4) == 2).unwrap();
    let strtab = sh(u32at(&b, symtab + 0x28));
    let (symoff, symsize) = (u64at(&b, symtab + 0x18), u64at(&b, symtab + 0x20));
    let stroff = u64at(&b, strtab + 0x18);
    let sym = (symoff..symoff + symsize)
        .step_by(24)
        .find(|&s| {
            let n = stroff + u32at(&b, s);
            b[n..].starts_with(name.as_bytes()) && b[n + name.len()] == 0
        })
        .unwrap();
    b[sym + 6..sym + 8].copy_from_slice(&shndx.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

/// A global defined at a reserved section index is refused, naming the
/// symbol and the index, rather than taken for 0.
#[test]
fn symbols_at_reserved_section_indices_are_refused() {
    let dir = workdir("reserved-shndx");
    let o = compile(
        &dir,
        "gcc",
        "rsv.c",
        "long g = 5;\nlong *gp = &g;\nlong get(void) { return *gp; }\n",
        "-O2",
    );
    patch_shndx(&o, "g", 0xff05);
    let e = link(&dir.join("rsv.dl"), &[&o], &[]).unwrap_err();
    assert!(
        e.contains("rsv.o: symbol g is defined at reserved section index 0xff05"),
        "{e}"
    );
}

/// RISC-V code built with -fno-pic builds an import's address with
/// lui/addi (-mcmodel=medlow) or reaches it PC-relatively (medany): both
/// are refused, and the message names -fno-pic as the cause; without it
/// (the toolchain's default -fPIE, or -fPIC) either model links.
#[test]
fn riscv_non_pic_imports_name_the_cause() {
    let dir = workdir("rv-medlow");
    let src = dir.join("rv.c");
    std::fs::write(
        &src,
        "extern long counter;\nextern long host_fn(long);\n\
         long use(long i) { return host_fn(i) + counter; }\n",
    )
    .unwrap();
    for (flags, links) in [
        ("-O2 -mcmodel=medlow -fno-pic", false),
        ("-O2 -mcmodel=medany -fno-pic", false),
        ("-O2 -mcmodel=medlow", true),
        ("-O2 -mcmodel=medany", true),
        ("-O2 -mcmodel=medlow -fPIC", true),
    ] {
        let obj = dir.join(format!("rv{}.o", flags.replace(' ', "")));
        run(Command::new("riscv64-linux-gnu-gcc")
            .args(flags.split_whitespace())
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj));
        let r = link(&dir.join("rv.dl"), &[&obj], &[]);
        match (r, links) {
            (Ok(_), true) => {}
            (Err(e), false) => {
                assert!(
                    e.contains("counter")
                        && e.contains("built with -fno-pic")
                        && e.contains("compile without -fno-pic")
                        && !e.contains("or -mcmodel=medany"),
                    "{flags}: {e}"
                );
            }
            (r, _) => panic!("{flags}: {r:?}"),
        }
    }
}

/// x86-64 `R_X86_64_PC32` to an absolute address (a weak symbol nothing
/// defines, at 0, or an absolute symbol): `lea` computes it exactly (as
/// `mov $value`); an access PC-relative to it has no value in a module
/// that loads anywhere, and the error says why and what to do.
#[cfg(target_arch = "x86_64")]
#[test]
fn pc_relative_references_to_absolute_addresses() {
    let dir = workdir("pc32-abs");
    // gcc -fno-pic tests &weak_data with R_X86_64_32 and reads it with
    // R_X86_64_PC32.
    let src = "extern long weak_data __attribute__((weak));\n\
               long has(void) { return &weak_data != 0; }\n\
               long get(void) { return &weak_data ? weak_data : -1; }\n";
    let nopic = compile(&dir, "gcc", "weak.c", src, "-O2 -fno-pic");
    let e = link(&dir.join("nopic.dl"), &[&nopic], &[]).unwrap_err();
    assert!(
        e.contains("weak.o: section .text")
            && e.contains("R_X86_64_PC32 (2) against weak_data")
            && e.contains("weak_data is a weak symbol nothing defines (address 0)")
            && e.contains("compile with -fPIC"),
        "{e}"
    );
    let pic = compile(&dir, "gcc", "weakpic.c", src, "-O2 -fPIC");
    link(&dir.join("pic.dl"), &[&pic], &[]).unwrap();
    assert_eq!(run_result(&dir.join("pic.dl"), "has", &[]), "0");
    assert_eq!(run_result(&dir.join("pic.dl"), "get", &[]), "-1");
    // lea of the address, 64- and 32-bit, to a weak undefined symbol and
    // to an absolute one defined in another object.
    let abs = dir.join("absdef.s");
    std::fs::write(&abs, ".globl ABSV\n.set ABSV, 0x1234\n").unwrap();
    let abs_o = dir.join("absdef.o");
    run(Command::new("gcc")
        .arg("-c")
        .arg(&abs)
        .arg("-o")
        .arg(&abs_o));
    let lea = dir.join("lea.s");
    std::fs::write(
        &lea,
        ".text\n.weak wd\n\
         .globl addr_wd\naddr_wd: lea wd(%rip), %rax\n ret\n\
         .globl addr_abs\naddr_abs: lea ABSV+8(%rip), %r9\n mov %r9, %rax\n ret\n\
         .globl addr32\naddr32: mov $-1, %rax\n lea ABSV(%rip), %eax\n ret\n\
         .globl load_abs\nload_abs: mov ABSV(%rip), %eax\n ret\n",
    )
    .unwrap();
    let lea_o = dir.join("lea.o");
    run(Command::new("gcc")
        .arg("-c")
        .arg(&lea)
        .arg("-o")
        .arg(&lea_o));
    let e = link(&dir.join("lea.dl"), &[&lea_o, &abs_o], &[]).unwrap_err();
    assert!(
        e.contains("lea.o: section .text+0x")
            && e.contains("against ABSV")
            && e.contains("ABSV is absolute (0x1234)")
            && e.contains("compile with -fPIC"),
        "{e}"
    );
    let only_lea = dir.join("onlylea.s");
    let text = std::fs::read_to_string(&lea).unwrap();
    std::fs::write(&only_lea, &text[..text.find(".globl load_abs").unwrap()]).unwrap();
    let only_o = dir.join("onlylea.o");
    run(Command::new("gcc")
        .arg("-c")
        .arg(&only_lea)
        .arg("-o")
        .arg(&only_o));
    let m = dir.join("onlylea.dl");
    link(&m, &[&only_o, &abs_o], &[]).unwrap();
    assert_eq!(run_result(&m, "addr_wd", &[]), "0");
    assert_eq!(run_result(&m, "addr_abs", &[]), format!("{}", 0x1234 + 8));
    assert_eq!(run_result(&m, "addr32", &[]), format!("{}", 0x1234));
}
