//! Replays the committed fuzz corpora through the fuzz targets' checks, so
//! every input the fuzzers found interesting stays a regression test on the
//! stable toolchain. `write_seed_corpus` (ignored) regenerates the seeds.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus for {target}");
    v
}

#[test]
fn corpus_load() {
    for (_, b) in inputs("load") {
        let _ = dynld_suite::fuzzing::load(&b);
    }
}

#[test]
fn corpus_load_mutated() {
    for (_, b) in inputs("load_mutated") {
        let m = dynld_suite::fuzzing::mutate(&b);
        let _ = dynld_suite::fuzzing::load(&m);
        dynld_suite::fuzzing::roundtrip(&m);
    }
}

#[test]
fn corpus_roundtrip() {
    for (_, b) in inputs("roundtrip") {
        dynld_suite::fuzzing::roundtrip(&b);
    }
}

#[test]
fn corpus_link() {
    for (_, b) in inputs("link") {
        dynld_suite::fuzzing::link(&b);
    }
}

/// Writes seed inputs, made from the test fixtures, to `fuzz/seeds/`.
#[test]
#[ignore]
fn write_seed_corpus() {
    let seeds = fuzz_dir().join("seeds");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("a.out-tools/tests/fixtures");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    for t in ["load", "load_mutated", "roundtrip", "link"] {
        std::fs::create_dir_all(seeds.join(t)).unwrap();
    }
    let mut objects = Vec::new();
    for (src, flags) in [
        ("calc", ""),
        ("calc", "-O2"),
        ("calc", "-O2 -fPIC"),
        ("calc", "-fno-pic"),
        ("user", "-O2"),
        ("mismatch", ""),
        ("comdat_a", "-O2 -fcommon"),
        ("tls", ""),
        ("twice_user", "-O2"),
    ] {
        let out = seeds
            .join("link")
            .join(format!("{src}{}.o", flags.replace(' ', "")));
        let ok = Command::new("gcc")
            .args(flags.split_whitespace())
            .arg("-I")
            .arg(&include)
            .arg("-c")
            .arg(fixtures.join(format!("{src}.c")))
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        objects.push(out);
    }
    for o in &objects {
        let opts = aout_tools::link::Options {
            inputs: vec![o.clone()],
            exports: None,
            gc: true,
            ..Default::default()
        };
        if let Ok(linked) = aout_tools::link::link(&opts) {
            let name = o.file_stem().unwrap().to_str().unwrap().to_owned() + ".dl";
            for t in ["load", "roundtrip"] {
                std::fs::write(seeds.join(t).join(&name), &linked.bytes).unwrap();
            }
        }
    }
    // A relocation stream longer than the loader's read buffer, with
    // records of every size, bound against the fuzz targets' host table.
    let (b, _) = dynld_suite::long_stream(&["host_double", "malloc"], 16 << 10);
    let long = b.build().unwrap();
    for t in ["load", "roundtrip"] {
        std::fs::write(seeds.join(t).join("long-stream.dl"), &long).unwrap();
    }
    for (i, m) in dynld_suite::fuzzing::samples().iter().enumerate() {
        for t in ["load", "roundtrip"] {
            std::fs::write(seeds.join(t).join(format!("sample{i}.dl")), m).unwrap();
        }
        std::fs::write(
            seeds.join("load_mutated").join(format!("pick{i}")),
            [i as u8],
        )
        .unwrap();
    }
}

/// Inputs that once broke a check, kept as regressions.
#[test]
fn regressions() {
    let dir = fuzz_dir().join("regressions");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        let target = p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .to_owned();
        match target.as_str() {
            "load" => drop(dynld_suite::fuzzing::load(&b)),
            "mutated" => {
                let m = dynld_suite::fuzzing::mutate(&b);
                let _ = dynld_suite::fuzzing::load(&m);
                dynld_suite::fuzzing::roundtrip(&m);
            }
            "roundtrip" => dynld_suite::fuzzing::roundtrip(&b),
            "link" => dynld_suite::fuzzing::link(&b),
            other => panic!("{}: unknown target {other}", p.display()),
        }
    }
}
