//! Symbol lookup at 1k, 64k and 1M symbols: `dynfindsym` on a sorted table
//! against `binary_search_by`, `std::collections::HashMap`, `hashbrown`,
//! glibc `dlsym` on a shared object exporting the same names (built with the
//! system assembler and gcc when the benchmark starts), and `elf_loader`'s
//! `get` on that shared object loaded by `elf_loader`. Names are realistic:
//! C-style identifiers and Rust-mangled names of 40–300 bytes. Probes are
//! 90% hits and 10% misses, in a fixed pseudo-random order.
//!
//! `cargo bench --bench lookup`; see `benches/README.md` for the figures.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dynld::{dynfindsym, Dynsym, ExportTable};
use elf_loader::{AddressSpaceId, Domain, Loader as ElfLoader, Relocator};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::Path;

mod common;
use common::{c_path, names, symbols_so, Pool, Rng};

/// `dlopen` of the shared object exporting `names`.
fn shared_object(so: &Path) -> *mut libc::c_void {
    let c = c_path(so);
    // SAFETY: loading a data-only shared object built by `symbols_so`.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {}", so.display());
    h
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    for n in [1usize << 10, 1 << 16, 1 << 20] {
        let owned = names(n);
        let pool = Pool::new(&owned);
        let names = pool.names();
        let syms: Vec<Dynsym> = names
            .iter()
            .enumerate()
            .map(|(i, s)| Dynsym::new(s, 0, i as *const ()))
            .collect();
        let slots = dynld::index::build_vec(names.len(), |i| names[i].as_bytes()).unwrap();
        let indexed = ExportTable::new(&syms).unwrap().with_index(&slots).unwrap();
        let std_map: HashMap<&str, usize> =
            names.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let hb_map: hashbrown::HashMap<&str, usize> =
            names.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let probes: Vec<String> = (0..1024)
            .map(|k| {
                let s = &names[(r.next() % names.len() as u64) as usize];
                if k % 10 == 9 {
                    format!("{s}_missing")
                } else {
                    s.to_string()
                }
            })
            .collect();
        let cprobes: Vec<CString> = probes
            .iter()
            .map(|p| CString::new(p.as_str()).unwrap())
            .collect();
        let so = symbols_so(&owned);
        let handle = shared_object(&so);
        // The same shared object loaded and relocated by `elf_loader`.
        let raw = ElfLoader::new()
            .run(Domain::native(AddressSpaceId::PROCESS))
            .load_dylib(so.to_str().unwrap())
            .unwrap();
        let elf = Relocator::new().run(raw).relocate().unwrap();
        // SAFETY: the pointer is only tested for presence, never used.
        let elf_hit = |x: &str| matches!(unsafe { elf.get::<*const u8>(x) }, Ok(Some(_)));
        let hits = probes.iter().filter(|x| elf_hit(x)).count();
        assert_eq!(
            hits,
            probes
                .iter()
                .filter(|x| names.binary_search(&x.as_str()).is_ok())
                .count()
        );
        g.throughput(Throughput::Elements(probes.len() as u64));
        g.bench_with_input(BenchmarkId::new("dynfindsym", n), &probes, |b, p| {
            b.iter(|| p.iter().filter(|x| dynfindsym(x, &syms).is_some()).count())
        });
        g.bench_with_input(BenchmarkId::new("dynld_index", n), &probes, |b, p| {
            b.iter(|| p.iter().filter(|x| indexed.find(x).is_some()).count())
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
        g.bench_with_input(BenchmarkId::new("elf_loader", n), &probes, |b, p| {
            b.iter(|| p.iter().filter(|x| elf_hit(x)).count())
        });
        black_box(&handle);
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
