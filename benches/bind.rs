//! Import binding: a module importing M names is loaded against a host
//! export table of N names, as `dynloadgen` does it, for M = 100 and 10k
//! against N = 1k, 64k and 1M, and M = N at 1k and 64k (the import limit is
//! 64 Ki). A baseline loads the same kind of module with no imports, so the
//! fixed cost of a load can be subtracted from the binding cases.
//!
//! Names are the realistic ones of the lookup bench (C-style identifiers and
//! legacy Rust-mangled names of 40–300 bytes); the M imports are drawn at
//! random from the host table, every one resolves, and each carries the same
//! non-zero signature as its export, so the signature check runs too. The
//! module is one `ret` of text, no data and no relocations: everything a
//! load does beyond the baseline is reading, validating and binding the
//! import table. Like `aout link` by default, modules with 32 imports or
//! more store their names' hashes, which binding through the index uses.
//!
//! `cargo bench --bench bind`; see `benches/README.md`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dynld::{
    Arch, Dynsym, ExportTable, Limits, Loader, ModuleBuilder, ModuleView, SliceSource, HEAP,
};
use std::time::Instant;

mod common;
use common::{names, Pool, Rng};

/// A non-zero signature per name, the same for the export and the import.
fn sig(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) | 1
}

/// A module of one `ret` importing `imports` (any order: the writer sorts),
/// storing the imports' name hashes when `aout link` would by default.
fn module(imports: &[&str]) -> Vec<u8> {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3])
        .import_hashes(imports.len() >= aout_tools::link::IMPORT_HASHES_AUTO_MIN);
    for n in imports {
        b.import(n, sig(n));
    }
    b.build().unwrap()
}

/// `m` distinct names drawn at random from `names` (a partial shuffle).
fn draw<'a>(names: &[&'a str], m: usize, seed: u64) -> Vec<&'a str> {
    let mut r = Rng(seed);
    let mut idx: Vec<usize> = (0..names.len()).collect();
    for k in 0..m {
        let j = k + (r.next() % (names.len() - k) as u64) as usize;
        idx.swap(k, j);
    }
    idx[..m].iter().map(|&i| names[i]).collect()
}

/// One load: read, check, bind, seal (a no-op for the heap), and drop.
fn load(table: ExportTable<'_>, bytes: &[u8]) -> usize {
    let m = Loader::new(table, &HEAP)
        .load(&mut SliceSource::new(bytes))
        .unwrap();
    m.nimport()
}

/// The module's string table (here its import names and nothing else)
/// and where each import's name lies in it, in import (name) order.
fn import_names(bytes: &[u8]) -> (&[u8], Vec<(usize, usize)>) {
    let view = ModuleView::parse(bytes, &Limits::DEFAULT).unwrap();
    let at = |s: &str| s.as_ptr() as usize - bytes.as_ptr() as usize;
    let spans: Vec<(usize, usize)> = view.imports().map(|i| (at(i.name), i.name.len())).collect();
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.0 + s.1).max().unwrap();
    let spans = spans.iter().map(|&(o, l)| (o - start, l)).collect();
    (&bytes[start..end], spans)
}

/// The floor of binding M = N imports while keeping the module's names:
/// copy the string table into fresh memory and compare each import's name
/// there with the host name of the same rank. No parsing, no checks, no
/// search, no signatures, nothing written but the copy: what any loader
/// that keeps the names and compares them in full must at least do.
fn floor(strs: &[u8], spans: &[(usize, usize)], host: &[&str]) -> usize {
    let mut copy = Vec::with_capacity(strs.len());
    copy.extend_from_slice(strs);
    spans
        .iter()
        .zip(host)
        .filter(|&(&(o, l), h)| copy.get(o..o + l) == Some(h.as_bytes()))
        .count()
}

fn bind(c: &mut Criterion) {
    let mut g = c.benchmark_group("bind");

    // Baseline: the same module with no imports. With nothing to bind the
    // host table is never read, so the empty table stands for every N.
    // Measured first: criterion keeps a group's throughput once set.
    let empty = module(&[]);
    g.bench_function("baseline/m0", |b| {
        b.iter(|| load(ExportTable::EMPTY, &empty))
    });

    for n in [1usize << 10, 1 << 16, 1 << 20] {
        let t = Instant::now();
        let pool = Pool::new(&names(n));
        let names = pool.names();
        let syms: Vec<Dynsym> = names
            .iter()
            .enumerate()
            .map(|(i, s)| Dynsym::new(s, sig(s), (0x10_0000 + 16 * i) as *const ()))
            .collect();
        let table = ExportTable::new(&syms).unwrap();
        // The same table with a hash index (as `aout exports` generates).
        let slots = dynld::index::build_vec(names.len(), |i| names[i].as_bytes()).unwrap();
        let indexed = table.with_index(&slots).unwrap();
        let setup_table = t.elapsed();
        let ms: &[usize] = match n {
            1024 => &[100, 1024],
            65536 => &[100, 10_000, 65536],
            _ => &[100, 10_000],
        };
        for &m in ms {
            let t = Instant::now();
            let bytes = module(&draw(&names, m, 0x5851_f42d_4c95_7f2d ^ m as u64));
            eprintln!(
                "bind: N = {n}: host table {setup_table:.2?}; M = {m}: module of {} bytes in {:.2?}",
                bytes.len(),
                t.elapsed()
            );
            // Every import must bind: a failure here is a setup bug.
            assert_eq!(load(table, &bytes), m);
            assert_eq!(load(indexed, &bytes), m);
            g.throughput(Throughput::Elements(m as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("m{m}"), format!("n{n}")),
                &bytes,
                |b, bytes| b.iter(|| load(table, bytes)),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("m{m}-indexed"), format!("n{n}")),
                &bytes,
                |b, bytes| b.iter(|| load(indexed, bytes)),
            );
            if m == n {
                let (strs, spans) = import_names(&bytes);
                assert_eq!(floor(strs, &spans, &names), m);
                g.bench_with_input(
                    BenchmarkId::new(format!("floor-m{m}"), format!("n{n}")),
                    &bytes,
                    |b, _| b.iter(|| floor(strs, &spans, &names)),
                );
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bind);
criterion_main!(benches);
