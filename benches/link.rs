//! Linking a chain of archive members, each needing the next, stored in
//! reverse order: every round of the archive search pulls one member, the
//! case that made a search rescanning every member each round quadratic.
//!
//! Each size N is N members `chain_00000` ... (`chain_K` calls
//! `chain_K+1`), a last one defining `chain_N`, and an object calling
//! `chain_00000`, generated under `target/tmp/link-bench/nN`: the members
//! are one `gcc -O2 -c` object with its two names patched, so making 8000
//! of them takes milliseconds rather than 8000 compiler runs.
//!
//! Candidates, on the same files in the same run:
//!
//! * `aout`: `aout_tools::link::link` of the object and the archive
//!   (reading the files, every phase, the module's bytes in memory);
//! * `ld_r`: `ld -r -o chain.o start.o libchain.a`, a process that pulls
//!   the same members and writes one relocatable object.
//!
//! `cargo bench --bench link`; see `benches/README.md`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;
use common::{run, tmp_dir};

/// Member counts.
const SIZES: &[usize] = &[500, 2000, 8000];

/// The chain of `n` members: the calling object and the archive, made on
/// first use.
fn chain(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let sub = dir.join(format!("n{n}"));
    let (start, lib) = (sub.join("start.o"), sub.join("libchain.a"));
    if start.exists() && lib.exists() {
        return (start, lib);
    }
    std::fs::create_dir_all(&sub).unwrap();
    let cc = |name: &str, src: &str| -> PathBuf {
        let c = sub.join(format!("{name}.c"));
        let o = sub.join(format!("{name}.o"));
        std::fs::write(&c, src).unwrap();
        run(Command::new("gcc")
            .args(["-O2", "-c"])
            .arg(&c)
            .arg("-o")
            .arg(&o));
        o
    };
    let template = std::fs::read(cc(
        "template",
        "long chain_BBBBB(long);\nlong chain_AAAAA(long x) { return 1 + chain_BBBBB(x - 1); }\n",
    ))
    .unwrap();
    let patch = |bytes: &mut Vec<u8>, from: &[u8], to: String| {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("name in the template");
        bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
    };
    let mut members = vec![cc(
        "last",
        &format!("long chain_{n:05}(long x) {{ return 1000000 + x; }}\n"),
    )];
    for i in (0..n).rev() {
        let mut b = template.clone();
        patch(&mut b, b"AAAAA", format!("{i:05}"));
        patch(&mut b, b"BBBBB", format!("{:05}", i + 1));
        let p = sub.join(format!("c{i:05}.o"));
        std::fs::write(&p, b).unwrap();
        members.push(p);
    }
    let list = sub.join("members");
    let names: Vec<String> = members.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&list, names.join("\n")).unwrap();
    let _ = std::fs::remove_file(&lib);
    run(Command::new("sh").arg("-c").arg(format!(
        "xargs ar rcs {} < {}",
        lib.display(),
        list.display()
    )));
    cc(
        "start",
        "long chain_00000(long);\nlong start(long x) { return chain_00000(x); }\n",
    );
    (start, lib)
}

fn aout_link(start: &Path, lib: &Path) -> Vec<u8> {
    aout_tools::link::link(&aout_tools::link::Options {
        inputs: vec![start.to_path_buf(), lib.to_path_buf()],
        exports: None,
        gc: true,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("aout link: {e}"))
    .bytes
}

fn ld_r(start: &Path, lib: &Path, out: &Path) {
    run(Command::new("ld")
        .arg("-r")
        .arg("-o")
        .arg(out)
        .arg(start)
        .arg(lib));
}

fn link(c: &mut Criterion) {
    let dir = tmp_dir("link-bench");
    let mut g = c.benchmark_group("link");
    g.sample_size(10);
    for &n in SIZES {
        let t = Instant::now();
        let (start, lib) = chain(&dir, n);
        let module = aout_link(&start, &lib);
        let view = dynld::ModuleView::parse(&module, &dynld::Limits::DEFAULT).unwrap();
        assert!(view.exports().any(|e| e.name == "start"));
        let out = dir.join(format!("n{n}/chain.o"));
        ld_r(&start, &lib, &out);
        eprintln!(
            "link n{n}: set up and checked in {:.2?}; module {} bytes",
            t.elapsed(),
            module.len()
        );
        g.bench_function(BenchmarkId::new("aout", n), |b| {
            b.iter(|| black_box(aout_link(&start, &lib)))
        });
        g.bench_function(BenchmarkId::new("ld_r", n), |b| {
            b.iter(|| ld_r(&start, &lib, &out))
        });
    }
    g.finish();
}

criterion_group!(benches, link);
criterion_main!(benches);
