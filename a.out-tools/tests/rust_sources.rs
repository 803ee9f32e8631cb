//! Rust sources built with rustc at test time: dynld's signature macros
//! check the items they describe, and both they and the code `aout
//! exports` generates build on editions 2021 and 2024.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
use common::{dynld_rlib, host_triple, workdir};

/// The no_std dynld rlib and its dependencies, built once per test binary.
fn rlib() -> &'static (PathBuf, PathBuf) {
    static RLIB: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RLIB.get_or_init(|| dynld_rlib(&host_triple(), false))
}

/// Type-checks `src` (written to `dir/name`) as a library against dynld,
/// on `edition`.
fn rustc(dir: &Path, name: &str, src: &str, edition: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, src).unwrap();
    let (rlib, deps) = rlib();
    Command::new("rustc")
        .args([
            "--edition",
            edition,
            "--crate-type",
            "lib",
            "--emit=metadata",
        ])
        .args(["-D", "warnings", "--extern"])
        .arg(format!("dynld={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--out-dir")
        .arg(dir)
        .arg(&path)
        .output()
        .unwrap()
}

fn assert_builds(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed to build:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The items the mismatch cases describe, stated with 2021's and 2024's
/// spellings alike.
const ITEMS: &str = r#"#![no_std]
#![allow(dead_code)]
unsafe extern "C" {
    fn host_log(v: i32) -> i32;
    static HOST_LEVEL: i32;
}
#[unsafe(no_mangle)]
pub extern "C" fn add(a: i32, b: i32) -> i32 { a + b }
#[unsafe(no_mangle)]
pub static mut COUNTER: i64 = 0;
#[unsafe(no_mangle)]
pub static LIMIT: u32 = 7;
"#;

#[test]
fn sig_macros_check_the_item_they_describe() {
    let dir = workdir("sig-check");
    let matched = format!(
        "{ITEMS}\
         dynld::export_sig!(fn add: extern \"C\" fn(i32, i32) -> i32);\n\
         dynld::import_sig!(fn host_log: unsafe extern \"C\" fn(i32) -> i32);\n\
         dynld::import_sig!(HOST_LEVEL: i32);\n\
         dynld::export_sig!(COUNTER: i64);\n\
         dynld::export_sig!(LIMIT: u32);\n\
         dynld::export_sig!(LIMIT = \"uint\");\n"
    );
    for edition in ["2021", "2024"] {
        assert_builds(&rustc(&dir, "matched.rs", &matched, edition), edition);
    }
    for (case, stmt, want) in [
        (
            "fn",
            "dynld::export_sig!(fn add: extern \"C\" fn(i64) -> i64);",
            "expected fn pointer `extern \"C\" fn(i64) -> i64`",
        ),
        (
            "import",
            "dynld::import_sig!(fn host_log: unsafe extern \"C\" fn(i64) -> i32);",
            "expected fn pointer `unsafe extern \"C\" fn(i64)",
        ),
        (
            "static-mut",
            "dynld::export_sig!(COUNTER: i32);",
            "expected `*const i32`, found `*const i64`",
        ),
        (
            "static",
            "dynld::export_sig!(LIMIT: u64);",
            "expected `*const u64`, found `*const u32`",
        ),
        (
            "extern-static",
            "dynld::import_sig!(HOST_LEVEL: u8);",
            "expected `*const u8`, found `*const i32`",
        ),
    ] {
        let o = rustc(&dir, "mismatch.rs", &format!("{ITEMS}{stmt}\n"), "2021");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{case}: {stmt} compiled");
        assert!(err.contains("mismatched types"), "{case}: {err}");
        assert!(err.contains(want), "{case}: {err}");
    }
}

/// `aout exports` on `list`, as Rust.
fn exports_rust(dir: &Path, list: &str) -> String {
    let listf = dir.join("list.txt");
    std::fs::write(&listf, list).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_aout"))
        .args(["exports", "--lang", "rust"])
        .arg(&listf)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn generated_table_and_module_sources_build_on_2021_and_2024() {
    let dir = workdir("editions");
    let table = exports_rust(&dir, "host_twice fn(vlong) vlong\nabort\nhost_level int\n");
    let host = format!("#![no_std]\n{table}");
    let stats = std::fs::read_to_string(common::root().join("examples/hello/stats.rs")).unwrap();
    for edition in ["2021", "2024"] {
        assert_builds(
            &rustc(&dir, "table.rs", &host, edition),
            &format!("aout exports output on {edition}"),
        );
        assert_builds(
            &rustc(&dir, "stats.rs", &stats, edition),
            &format!("examples/hello/stats.rs on {edition}"),
        );
    }
}
