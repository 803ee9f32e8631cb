//! Builds the modules the kernel carries: compiles `modules/*.c` with the
//! target's C compiler and `modules/rstat` with cargo for the same target,
//! links each with aout (the library behind `aout link`), and leaves the
//! images in OUT_DIR for `include_bytes!`. Selects the linker script.

use aout_tools::link::{link, Options};
use std::collections::BTreeSet;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C compiler and flags for a target; `KERNEL_CC` overrides the compiler.
fn c_compiler(target: &str) -> (String, &'static [&'static str]) {
    let (cc, flags): (&str, &[&str]) = match target {
        "thumbv7m-none-eabi" => ("arm-none-eabi-gcc", &["-mthumb", "-mcpu=cortex-m3"]),
        "riscv32imac-unknown-none-elf" => (
            "riscv64-linux-gnu-gcc",
            &["-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany"],
        ),
        _ => panic!("the kernel builds for thumbv7m-none-eabi or riscv32imac-unknown-none-elf, not {target}"),
    };
    (
        env::var("KERNEL_CC").unwrap_or_else(|_| cc.to_string()),
        flags,
    )
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// Whether the modules get debug files: the kernel's `gdb` feature, on
/// Cortex-M3 (`aout link --debug` takes absolute relocations, not RISC-V's
/// paired ones).
fn debug_files() -> bool {
    env::var_os("CARGO_FEATURE_GDB").is_some()
        && env::var("TARGET").is_ok_and(|t| t.starts_with("thumb"))
}

/// Links `inputs` into OUT_DIR/NAME.dl, exporting `exports` (all if empty);
/// with [`debug_files`], with the debug file OUT_DIR/NAME.debug.
fn aout_link(out: &Path, name: &str, inputs: Vec<PathBuf>, exports: &[&str]) {
    let debug = debug_files().then(|| out.join(format!("{name}.debug")));
    let opts = Options {
        debug: debug.clone(),
        inputs,
        exports: (!exports.is_empty()).then(|| {
            exports
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>()
        }),
        ..Options::default()
    };
    let linked = link(&opts).unwrap_or_else(|e| panic!("aout link {name}: {e}"));
    for w in &linked.warnings {
        println!("cargo:warning={name}: {w}");
    }
    std::fs::write(out.join(format!("{name}.dl")), &linked.bytes).unwrap();
    if let (Some(path), Some(bytes)) = (debug, &linked.debug) {
        std::fs::write(path, bytes).unwrap();
    }
}

fn main() {
    let target = env::var("TARGET").unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let include = dir.join("../../include");
    let (cc, flags) = c_compiler(&target);

    for name in ["cmath", "bad", "life", "abi2", "late", "many"] {
        let obj = out.join(format!("{name}.o"));
        run(Command::new(&cc)
            .args(flags)
            .args([
                "-Os",
                "-ffreestanding",
                "-fno-pic",
                "-fno-asynchronous-unwind-tables",
            ])
            // Line tables and call frame information for the debug files.
            .args(debug_files().then_some("-g"))
            .arg("-I")
            .arg(&include)
            .arg("-c")
            .arg(dir.join("modules").join(format!("{name}.c")))
            .arg("-o")
            .arg(&obj));
        aout_link(&out, name, vec![obj], &[]);
    }

    // The Rust module: a staticlib built by a nested cargo for the same
    // target, in its own target directory (the outer build holds the
    // kernel's). Nothing of the kernel's flags or environment leaks in.
    let rtarget = out.join("rstat-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", &target, "--manifest-path"])
        .arg(dir.join("modules/rstat/Cargo.toml"))
        .arg("--target-dir")
        .arg(&rtarget);
    for (k, _) in env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTC" {
            cmd.env_remove(k);
        }
    }
    run(&mut cmd);
    let lib = rtarget.join(&target).join("release/librstat.a");
    aout_link(&out, "rstat", vec![lib], &["r_fib_sum", "r_report"]);

    let script = if target.starts_with("thumb") {
        "arm.ld"
    } else {
        "riscv.ld"
    };
    println!("cargo:rustc-link-arg-bins=-T{}", dir.join(script).display());
    println!("cargo:rerun-if-changed=modules");
    println!(
        "cargo:rerun-if-changed={}",
        include.join("dynld.h").display()
    );
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rerun-if-env-changed=KERNEL_CC");
}
