//! Setup shared by the benchmarks: deterministic pseudo-random numbers,
//! realistic symbol names, a scratch directory under `target/tmp`, and
//! shared objects built with gcc. Each bench uses part of it.
#![allow(dead_code)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Deterministic xorshift.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` distinct names, half C-style, half legacy Rust-mangled (40–300
/// bytes), sorted.
pub fn names(n: usize) -> Vec<String> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let words = [
        "core", "fmt", "alloc", "vec", "iter", "sync", "net", "io", "kernel", "sched",
    ];
    let mut v: Vec<String> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                format!(
                    "subsys_{}_{}_{i}",
                    words[(r.next() % 10) as usize],
                    r.next() % 997
                )
            } else {
                let mut s = String::from("_ZN");
                let target = 40 + (r.next() % 261) as usize;
                while s.len() + 24 < target {
                    let w = words[(r.next() % 10) as usize];
                    s += &format!("{}{w}", w.len());
                }
                s + &format!("17h{:016x}E", r.next() ^ i as u64)
            }
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Names laid out in one buffer in table order, as the string literals of
/// a generated `static [Dynsym; N]` are, rather than scattered over the heap.
pub struct Pool {
    text: String,
    ends: Vec<usize>,
}

impl Pool {
    pub fn new(names: &[String]) -> Pool {
        let mut at = 0;
        let ends = names
            .iter()
            .map(|s| {
                at += s.len();
                at
            })
            .collect();
        Pool {
            text: names.concat(),
            ends,
        }
    }

    /// The names, in order, as slices of the one buffer.
    pub fn names(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = &self.text[start..end];
                start = end;
                s
            })
            .collect()
    }
}

/// `target/tmp/<sub>`, created.
pub fn tmp_dir(sub: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, panicking with its output if it fails.
pub fn run(cmd: &mut Command) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The path of a data-only shared object exporting `names` (one byte
/// each), built with the system assembler and gcc on first use and cached
/// under `target/tmp/lookup-bench`.
pub fn symbols_so(names: &[String]) -> PathBuf {
    let dir = tmp_dir("lookup-bench");
    let so = dir.join(format!("libsyms{}.so", names.len()));
    if !so.exists() {
        let mut asm = String::from(".data\n");
        for n in names {
            asm += &format!(".globl \"{n}\"\n\"{n}\": .byte 0\n");
        }
        let s = dir.join(format!("syms{}.s", names.len()));
        std::fs::write(&s, asm).unwrap();
        run(Command::new("gcc")
            .args(["-shared", "-nostdlib", "-o"])
            .arg(&so)
            .arg(&s));
    }
    so
}

/// `path` as a C string.
pub fn c_path(path: &Path) -> CString {
    CString::new(path.to_str().unwrap()).unwrap()
}

/// Whether the dynamic linker still has `path` loaded (`RTLD_NOLOAD`).
pub fn resident(path: &Path) -> bool {
    let c = c_path(path);
    // SAFETY: RTLD_NOLOAD only queries; a handle it returns is released at once.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if !h.is_null() {
            libc::dlclose(h);
        }
        !h.is_null()
    }
}
