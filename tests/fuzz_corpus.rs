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

/// Runs `check` on every input of `target`'s corpus; fails naming every
/// input whose check panicked.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let failed: Vec<String> = inputs(target)
        .into_iter()
        .filter(|(_, b)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(b))).is_err()
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} inputs failed: {failed:#?}",
        failed.len()
    );
}

#[test]
fn corpus_load() {
    replay("load", |b| drop(dynld_suite::fuzzing::load(b)));
}

#[test]
fn corpus_load_mutated() {
    replay("load_mutated", dynld_suite::fuzzing::load_mutated);
}

#[test]
fn corpus_load_defaults() {
    replay("load_defaults", dynld_suite::fuzzing::load_defaults);
}

#[test]
fn corpus_roundtrip() {
    replay("roundtrip", dynld_suite::fuzzing::roundtrip);
}

/// The registry target's inputs are the loader's corpus. A registry loads
/// modules for the machine it runs on, and the corpus is x86-64.
#[cfg(target_arch = "x86_64")]
#[test]
fn corpus_registry() {
    replay("load", dynld_suite::fuzzing::registry);
}

#[test]
fn corpus_link() {
    replay("link", dynld_suite::fuzzing::link);
}

/// Writes seed inputs, made from the test fixtures, to `fuzz/seeds/`.
#[test]
#[ignore]
fn write_seed_corpus() {
    let seeds = fuzz_dir().join("seeds");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("a.out-tools/tests/fixtures");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    for t in ["load", "load_mutated", "load_defaults", "roundtrip", "link"] {
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
            for t in ["load", "load_defaults", "roundtrip"] {
                std::fs::write(seeds.join(t).join(&name), &linked.bytes).unwrap();
            }
        }
    }
    // A relocation stream longer than the loader's read buffer, with
    // records of every size, bound against the fuzz targets' host table.
    let (b, _) = dynld_suite::long_stream(&["host_double", "malloc"], 16 << 10);
    let long = b.build().unwrap();
    for t in ["load", "load_defaults", "roundtrip"] {
        std::fs::write(seeds.join(t).join("long-stream.dl"), &long).unwrap();
    }
    // Headers that claim a large image the file does not hold: 1 GiB of
    // data after 1 byte of text, and a 1 GiB data offset with no data.
    for (name, m) in [
        ("claims-1g-data", dynld_suite::claims_data(1 << 30)),
        ("claims-1g-dataoff", dynld_suite::claims_dataoff(1 << 30)),
    ] {
        std::fs::write(seeds.join("load_defaults").join(name), m).unwrap();
    }
    for (i, m) in dynld_suite::fuzzing::samples().iter().enumerate() {
        for t in ["load", "load_defaults", "roundtrip"] {
            std::fs::write(seeds.join(t).join(format!("sample{i}.dl")), m).unwrap();
        }
        std::fs::write(
            seeds.join("load_mutated").join(format!("pick{i}")),
            [i as u8],
        )
        .unwrap();
    }
}

/// Regressions that still fail, each for a defect not yet fixed outside
/// the tests: file name, and where the fix belongs. The test fails once
/// one of them passes, so that it moves to the regressions that must pass.
const STILL_FAILING: &[(&str, &str)] = &[];

/// Runs the regression `b`, named `name` (its target is the part before
/// the first '-').
fn run_regression(name: &str, b: &[u8]) {
    match name.split('-').next().unwrap() {
        "load" => drop(dynld_suite::fuzzing::load(b)),
        "mutated" => dynld_suite::fuzzing::load_mutated(b),
        "defaults" => dynld_suite::fuzzing::load_defaults(b),
        "roundtrip" => dynld_suite::fuzzing::roundtrip(b),
        "link" => dynld_suite::fuzzing::link(b),
        other => panic!("{name}: unknown target {other}"),
    }
}

/// Inputs that once broke a check, kept as regressions.
#[test]
fn regressions() {
    let dir = fuzz_dir().join("regressions");
    let mut failed = Vec::new();
    let mut fixed = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let ok = std::panic::catch_unwind(|| run_regression(&name, &b)).is_ok();
        match (ok, STILL_FAILING.iter().any(|k| k.0 == name)) {
            (false, false) => failed.push(name),
            (true, true) => fixed.push(name),
            _ => {}
        }
    }
    assert!(failed.is_empty(), "regressions failed: {failed:?}");
    assert!(
        fixed.is_empty(),
        "fixed, take them off STILL_FAILING: {fixed:?}"
    );
}
