//! Symbol lookup at 1k, 64k and 1M symbols: `dynfindsym` on a sorted table
//! against `binary_search_by`, `std::collections::HashMap`, `hashbrown`, and
//! glibc `dlsym` on a shared object exporting the same names (built with the
//! system assembler and gcc when the benchmark starts). Names are realistic:
//! C-style identifiers and Rust-mangled names of 40–300 bytes. Probes are
//! 90% hits and 10% misses, in a fixed pseudo-random order.
//!
//! `cargo bench --bench lookup`; see `benches/README.md` for the figures.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dynld::{dynfindsym, Dynsym};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::process::Command;

/// Deterministic xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` distinct names, half C-style, half legacy Rust-mangled (40–300 bytes).
fn names(n: usize) -> Vec<String> {
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

/// A shared object exporting `names` as data symbols, and its handle.
fn shared_object(names: &[String]) -> *mut libc::c_void {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lookup-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let so = dir.join(format!("libsyms{}.so", names.len()));
    if !so.exists() {
        let mut asm = String::from(".data\n");
        for n in names {
            asm += &format!(".globl \"{n}\"\n\"{n}\": .byte 0\n");
        }
        let s = dir.join(format!("syms{}.s", names.len()));
        std::fs::write(&s, asm).unwrap();
        let ok = Command::new("gcc")
            .args(["-shared", "-nostdlib", "-o"])
            .arg(&so)
            .arg(&s)
            .status()
            .unwrap();
        assert!(ok.success(), "building {}", so.display());
    }
    let c = CString::new(so.to_str().unwrap()).unwrap();
    // SAFETY: loading a data-only shared object built above.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {}", so.display());
    h
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    for n in [1usize << 10, 1 << 16, 1 << 20] {
        let names = names(n);
        let syms: Vec<Dynsym> = names
            .iter()
            .enumerate()
            .map(|(i, s)| Dynsym::new(s, 0, i as *const ()))
            .collect();
        let std_map: HashMap<&str, usize> =
            names.iter().enumerate().map(|(i, s)| (&s[..], i)).collect();
        let hb_map: hashbrown::HashMap<&str, usize> =
            names.iter().enumerate().map(|(i, s)| (&s[..], i)).collect();
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let probes: Vec<String> = (0..1024)
            .map(|k| {
                let s = &names[(r.next() % names.len() as u64) as usize];
                if k % 10 == 9 {
                    format!("{s}_missing")
                } else {
                    s.clone()
                }
            })
            .collect();
        let cprobes: Vec<CString> = probes
            .iter()
            .map(|p| CString::new(p.as_str()).unwrap())
            .collect();
        let handle = shared_object(&names);
        g.throughput(Throughput::Elements(probes.len() as u64));
        g.bench_with_input(BenchmarkId::new("dynfindsym", n), &probes, |b, p| {
            b.iter(|| p.iter().filter(|x| dynfindsym(x, &syms).is_some()).count())
        });
        g.bench_with_input(BenchmarkId::new("binary_search_by", n), &probes, |b, p| {
            b.iter(|| {
                p.iter()
                    .filter(|x| syms.binary_search_by(|s| s.name.cmp(x.as_str())).is_ok())
                    .count()
            })
        });
        g.bench_with_input(BenchmarkId::new("std_hashmap", n), &probes, |b, p| {
            b.iter(|| {
                p.iter()
                    .filter(|x| std_map.contains_key(x.as_str()))
                    .count()
            })
        });
        g.bench_with_input(BenchmarkId::new("hashbrown", n), &probes, |b, p| {
            b.iter(|| p.iter().filter(|x| hb_map.contains_key(x.as_str())).count())
        });
        g.bench_with_input(BenchmarkId::new("dlsym", n), &cprobes, |b, p| {
            b.iter(|| {
                p.iter()
                    // SAFETY: dlsym only looks the name up in the handle.
                    .filter(|x| !unsafe { libc::dlsym(handle, x.as_ptr()) }.is_null())
                    .count()
            })
        });
        black_box(&handle);
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
