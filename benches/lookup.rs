//! Symbol lookup: `dynfindsym` on a sorted table against a std `HashMap`,
//! for C-style names, hits in random order.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dynld::{dynfindsym, Dynsym};
use std::collections::HashMap;

/// Deterministic names like `subsys_0042_init_17`.
fn names(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|i| format!("subsys_{:04}_op{}_{}", i % 7919, i % 13, i))
        .collect();
    v.sort();
    v
}

/// A fixed pseudo-random probe order (xorshift).
fn order(n: usize, count: usize) -> Vec<usize> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    for n in [1usize << 10, 1 << 16] {
        let names = names(n);
        let syms: Vec<Dynsym> = names
            .iter()
            .enumerate()
            .map(|(i, s)| Dynsym::new(s, 0, i as *const ()))
            .collect();
        let map: HashMap<&str, usize> =
            names.iter().enumerate().map(|(i, s)| (&s[..], i)).collect();
        let probes: Vec<&str> = order(n, 1024).into_iter().map(|i| &names[i][..]).collect();
        g.bench_with_input(BenchmarkId::new("dynfindsym", n), &probes, |b, p| {
            b.iter(|| {
                for name in p {
                    black_box(dynfindsym(name, &syms));
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("std_hashmap", n), &probes, |b, p| {
            b.iter(|| {
                for name in p {
                    black_box(map.get(name));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
