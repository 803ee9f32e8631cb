//! The bare-metal kernels in `examples/kernel`, built for Cortex-M3 and RV32
//! and run under `qemu-system-arm` / `qemu-system-riscv32`.
//!
//! Each kernel loads a C module and a Rust module (which imports the C
//! module's exports) from images in its flash through read/seek callbacks,
//! into a static arena, with no allocator; calls them, unloads them, loads
//! them again, runs a module's constructors, destructor and exit handler,
//! and shows the error for a module with a mistyped import. Each kernel is
//! built four times: with the loader's default configuration, with exit
//! handlers, with its minimal one, and with the module registry (a
//! fixed-capacity one in a static: dependents, holds, refused unloads, the
//! sweep, an address resolved to its symbol; a module requiring an ABI
//! major the kernel does not offer refused before its constructor runs; a
//! module loaded with deferred binding before the module it calls, its
//! call caught by a trap, then bound when the provider loads, found by
//! name in flash). The test asserts the exact output, that no `alloc` code is linked, and prints the loader's code
//! size in each.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a kernel may run before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Board {
    target: &'static str,
    name: &'static str,
    nm: &'static str,
    qemu: &'static [&'static str],
}

const CORTEX_M3: Board = Board {
    target: "thumbv7m-none-eabi",
    name: "mps2-an385 (Cortex-M3, Thumb-2)",
    nm: "arm-none-eabi-nm",
    qemu: &[
        "qemu-system-arm",
        "-M",
        "mps2-an385",
        "-semihosting-config",
        "enable=on,target=native",
    ],
};

const RV32: Board = Board {
    target: "riscv32imac-unknown-none-elf",
    name: "virt (RV32IMAC)",
    nm: "riscv64-linux-gnu-nm",
    qemu: &["qemu-system-riscv32", "-M", "virt", "-bios", "none"],
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A cargo command in `dir`, free of the environment of the cargo running
/// this test (its target directory, flags and package variables).
fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The loader configurations the kernels are built with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Config {
    /// The kernel's default: dynld's hash indexes and relocation fast path
    /// (the configuration the loader's size is held to).
    Full,
    /// The default and dynld's exit handlers for modules (the kernel's
    /// `lifecycle` feature).
    Lifecycle,
    /// dynld's minimal configuration (`--no-default-features`).
    Minimal,
    /// The default and the module registry demonstration (the kernel's
    /// `registry` feature): the loader's size with the registry.
    Registry,
}

/// Builds the kernel (and, through its build script, its modules) for
/// `target` in release mode; returns the ELF's path.
fn build(target: &str, config: Config) -> PathBuf {
    let tdir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(match config {
        Config::Full => "kernel",
        Config::Lifecycle => "kernel-lifecycle",
        Config::Minimal => "kernel-minimal",
        Config::Registry => "kernel-registry",
    });
    let mut cmd = cargo(&root().join("examples/kernel"));
    cmd.args(["build", "--release", "--target", target, "--target-dir"])
        .arg(&tdir);
    match config {
        Config::Full => {}
        Config::Lifecycle => {
            cmd.args(["--features", "lifecycle"]);
        }
        Config::Minimal => {
            cmd.arg("--no-default-features");
        }
        Config::Registry => {
            cmd.args(["--features", "registry"]);
        }
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building the kernel for {target} failed");
    tdir.join(target).join("release/kernel")
}

/// Runs `elf` under QEMU; returns its exit status and console output.
fn run(board: &Board, elf: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(board.qemu[0]);
    cmd.args(&board.qemu[1..])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .arg("-kernel")
        .arg(elf);
    dynld_suite::qemu::run(cmd, TIMEOUT)
}

/// What each kernel prints: the same on both boards but for its name.
fn expected(board: &Board, config: Config) -> String {
    let want = dynld::sig::hash("fn(void) int").unwrap();
    let have = dynld::sig::hash("fn(void) uint").unwrap();
    let life = match config {
        Config::Lifecycle => {
            "life.dl loaded: constructors made 12
  atexit returned 0
  life.dl destructor
  life.dl exit handler
  unloaded
"
        }
        Config::Full | Config::Minimal | Config::Registry => {
            "life.dl refused: undefined symbol: __cxa_atexit\n"
        }
    };
    let registry = match config {
        Config::Registry => {
            "registry
  r_fib_sum(10) = 88
  id 1 cmath: holds 0, dependents 1
  id 2 rstat: holds 0, dependents 0
  unload cmath: module cmath in use: 0 holds, 1 dependent (rstat)
  unload rstat: module rstat in use: 1 hold, 0 dependents
  c_fib+6 is cmath: c_fib+0x6
  rstat unloaded
  sweep unloaded 1
  arena: 0 bytes in use
  offers ABI kernel 1.2
  refused: module abi2 requires ABI kernel 2.0; the host offers kernel 1.2
  late waits for c_fib
  trap: call to unresolved import c_fib of module late
  late_fib(20) = 0
  cmath loaded: 0 imports pending
  late_fib(20) = 6765
  unload cmath: module cmath in use: 0 holds, 1 dependent (late)
  sweep unloaded 1
  arena: 0 bytes in use
  c_fib stub patched: false
  c_fib(20) = 6765
  c_fib stub patched: true, to c_fib: true
  c_fib(10) = 55
  unload cmath: module cmath in use: 1 hold, 0 dependents
  cmath unloaded, c_fib stub patched: false
  wstub m_sum before many loads: -1
  ustub m_sum = 385
  many unloaded while idle
  ustub m_wide = 0x300000003
  wstub m_sum while loaded: 385
  wstub m_sum after unload: -1
  arena: 0 bytes in use
"
        }
        _ => "",
    };
    let round = |t: u32| {
        format!(
            "  cmath.dl loaded: 4 exports, 3 imports
hello from C, kernel (tick {})
  c_greet wrote 30 bytes
  c_fib(20) = 6765
  c_crc32(\"123456789\") = 0xcbf43926
  c_calls = 3
  rstat.dl loaded: 2 exports, 3 imports
  r_fib_sum(10) = 88
rust: fib sum below 12 is 232 (even, even), report 1 at tick {}
rust: fib sum below 13 is 376 (odd), report 2 at tick {}
  r_report returned 2; c_calls = 38
  unloaded: 0 bytes in 0 regions in use
",
            t + 1,
            t + 2,
            t + 3
        )
    };
    format!(
        "dynld kernel on {}\nround 1\n{}round 2\n{}  same addresses as round 1: true
{life}{registry}refused: signature mismatch: kticks: module wants {want:#010x}, host has {have:#010x}
arena: 0 bytes in use
done
",
        board.name,
        round(0),
        round(3)
    )
}

/// Fails if anything of the `alloc` crate, or an allocator, is linked in.
fn assert_no_alloc(board: &Board, elf: &Path) {
    let out = Command::new(board.nm)
        .arg("--demangle")
        .arg(elf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", board.nm));
    assert!(out.status.success(), "{} failed", board.nm);
    let syms = String::from_utf8_lossy(&out.stdout);
    // The check sees Rust's symbols at all: the loader's are there.
    assert!(
        syms.contains("dynld::load::Loader::load_at"),
        "no loader symbols in {}",
        elf.display()
    );
    let alloc: Vec<&str> = syms
        .lines()
        .filter(|l| {
            let name = l.splitn(3, ' ').nth(2).unwrap_or("");
            name.starts_with("alloc::")
                || name.contains("<alloc::")
                || name.contains(" alloc::")
                || [
                    "__rust_alloc",
                    "__rust_dealloc",
                    "__rg_alloc",
                    "__rdl_alloc",
                ]
                .iter()
                .any(|a| name.contains(a))
        })
        .collect();
    assert!(
        alloc.is_empty(),
        "{}: alloc linked: {alloc:#?}",
        board.target
    );
}

fn kernel(board: &Board, config: Config) {
    let elf = build(board.target, config);
    let (code, out) = run(board, &elf);
    // The module that requires another ABI major is refused before any of
    // its code runs: its constructor's line never appears.
    assert!(
        !out.contains("abi2.dl constructor"),
        "{} {config:?}: abi2.dl's constructor ran:\n{out}",
        board.target
    );
    assert_eq!(
        out,
        expected(board, config),
        "{} {config:?} printed",
        board.target
    );
    assert_eq!(code, Some(0), "{} {config:?} exit status", board.target);
    assert_no_alloc(board, &elf);
    let size = Command::new(root().join("scripts/loader-size"))
        .arg(&elf)
        .arg(board.nm)
        .output()
        .unwrap();
    assert!(size.status.success());
    let size = String::from_utf8(size.stdout).unwrap();
    assert!(size.starts_with("loader code: "), "{size}");
    println!(
        "{} ({}), {} configuration: {}",
        board.name,
        board.target,
        match config {
            Config::Full => "default",
            Config::Lifecycle => "default + exit handlers",
            Config::Minimal => "minimal",
            Config::Registry => "default + registry",
        },
        size.trim()
    );
}

// One test for both boards: the builds share a target directory.
#[test]
fn kernels_load_modules_under_qemu() {
    for config in [
        Config::Full,
        Config::Lifecycle,
        Config::Minimal,
        Config::Registry,
    ] {
        kernel(&CORTEX_M3, config);
        kernel(&RV32, config);
    }
}

/// The README's kernel example compiles, unchanged, for a Cortex-M with
/// dynld's allocator-free build.
#[test]
fn readme_kernel_example_builds() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (_, after) = readme
        .split_once("<!-- kernel example")
        .expect("README: kernel example marker");
    let (_, block) = after.split_once("```rust\n").unwrap();
    let (code, _) = block.split_once("```").unwrap();
    assert!(code.lines().count() < 40, "the README example grew");

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-kernel");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"readme-kernel\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [dependencies]\ndynld = {{ path = {:?}, default-features = false }}\n[workspace]\n",
            root().join("dynld")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!(
            "#![no_std]\n#![deny(warnings)]\n\
             pub fn entry(image: &'static [u8]) -> u32 {{ run_module(image).unwrap_or(0) }}\n{code}"
        ),
    )
    .unwrap();
    let status = cargo(&dir)
        .args(["build", "--target", "thumbv7m-none-eabi", "--target-dir"])
        .arg(dir.join("target"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the README's kernel example does not build"
    );
}
