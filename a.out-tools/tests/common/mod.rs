//! Helpers shared by the aout test binaries: paths, scratch directories
//! and running commands.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory for one test.
pub fn workdir(name: &str) -> PathBuf {
    let d = root()
        .join("target/aout-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The dynld rlib for `triple`, without std (for modules that use its
/// macros) or with it (for host programs).
pub fn dynld_rlib(triple: &str, std: bool) -> (PathBuf, PathBuf) {
    let target_dir = root().join(if std {
        "target/fixture-deps-std"
    } else {
        "target/fixture-deps"
    });
    let o = run(Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "-q", "-p", "dynld", "--target", triple])
        .args(["--message-format=json"])
        .args(if std {
            &[][..]
        } else {
            &["--no-default-features"][..]
        })
        .arg("--target-dir")
        .arg(&target_dir));
    let out = String::from_utf8_lossy(&o.stdout);
    let rlib = out
        .lines()
        .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"name\":\"dynld\""))
        .find_map(|l| {
            let end = l.find(".rlib\"")? + 5;
            let start = l[..end].rfind('"')? + 1;
            Some(PathBuf::from(&l[start..end]))
        })
        .filter(|p| p.exists())
        .expect("no dynld rlib in cargo's output");
    let deps = rlib.parent().unwrap().join("deps");
    (rlib, deps)
}

/// The triple rustc builds for by default (this machine's).
pub fn host_triple() -> String {
    let o = run(Command::new("rustc").arg("-vV"));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("no host line in rustc -vV")
        .trim()
        .to_owned()
}

/// The zlib sources libz-sys carries (compiled unchanged by the tests).
pub fn zlib_dir() -> PathBuf {
    let o = run(Command::new(env!("CARGO")).current_dir(root()).args([
        "metadata",
        "--format-version",
        "1",
    ]));
    let meta = String::from_utf8_lossy(&o.stdout);
    let key = "\"manifest_path\":\"";
    let manifest = meta
        .match_indices(key)
        .map(|(i, _)| {
            let rest = &meta[i + key.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .find(|p| p.contains("/libz-sys-") && p.ends_with("/Cargo.toml"))
        .expect("libz-sys is not in the dependency graph");
    Path::new(manifest).parent().unwrap().join("src/zlib")
}
