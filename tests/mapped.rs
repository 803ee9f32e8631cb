//! Loading a large module through `FileSource`: its text is mapped from the
//! file (copy-on-write) instead of copied, where the module was linked with
//! its text on a page boundary in the file.
//!
//! One test in its own binary, because it reads `/proc/self/maps` and no
//! other thread may map or unmap memory meanwhile.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use aout_tools::link::{link, Options, TextAlign};
use dynld::{Error, ExportTable, FileSource, Loader, Module, SliceSource, MMAP};
use std::fmt::Write as _;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes of constant data in the module's text.
const BLOB: usize = 192 << 10;
/// Pointers into the blob, in the text too: each needs a load-time
/// relocation, patched in a mapped page.
const MARKS: usize = 24;

fn blob() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..BLOB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn mark_at(i: usize) -> usize {
    i * (BLOB / MARKS) + 7 * i
}

/// The C source: the blob and a table of pointers into it (both `const`, so
/// in the text), and functions reading them through absolute addresses.
fn source() -> String {
    let mut c = String::from("static const unsigned char blob[] = {");
    for (i, b) in blob().iter().enumerate() {
        if i % 32 == 0 {
            c.push('\n');
        }
        write!(c, "{b},").unwrap();
    }
    c.push_str("\n};\nstatic const unsigned char *const marks[] = {");
    for i in 0..MARKS {
        write!(c, "blob + {},", mark_at(i)).unwrap();
    }
    c.push_str(
        "};\n\
         unsigned long checksum(void) {\n\
         \x20   unsigned long s = 0;\n\
         \x20   for (unsigned long i = 0; i < sizeof blob; i++) s = s * 31 + blob[i];\n\
         \x20   return s;\n\
         }\n\
         int mark(int i) { return *marks[i]; }\n\
         long counter;\n\
         long bump(long by) { return counter += by; }\n",
    );
    c
}

fn expected_checksum() -> u64 {
    blob()
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn build(dir: &Path, align: TextAlign) -> Vec<u8> {
    let src = dir.join("big.c");
    let obj = dir.join("big.o");
    if !obj.exists() {
        std::fs::write(&src, source()).unwrap();
        // Large code model without PIC: addresses are absolute 64-bit
        // words, patched at load time, in the code and in `marks`.
        let st = Command::new("gcc")
            .args(["-O2", "-fno-pic", "-mcmodel=large", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .expect("gcc");
        assert!(st.success(), "gcc failed");
    }
    link(&Options {
        inputs: vec![obj],
        text_align: align,
        ..Default::default()
    })
    .unwrap()
    .bytes
}

/// (start, end, perms, path) of every mapping.
fn maps() -> Vec<(usize, usize, String, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (a, b) = f[0].split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
                f[1].to_string(),
                f.get(5).unwrap_or(&"").to_string(),
            )
        })
        .collect()
}

/// The mappings covering `m`, and whether any of them maps `file`.
fn covering(m: &Module<'_>, file: &Path) -> (Vec<(usize, usize, String, String)>, bool) {
    let (base, end) = (m.base() as usize, m.base() as usize + m.image_size());
    let v: Vec<_> = maps()
        .into_iter()
        .filter(|&(s, e, _, _)| s < end && e > base)
        .collect();
    let from_file = v.iter().any(|(_, _, _, p)| Path::new(p) == file);
    (v, from_file)
}

fn call(m: &Module<'_>) -> (u64, Vec<u8>, i64) {
    // SAFETY: the module's C source defines these with these types.
    unsafe {
        let checksum: extern "C" fn() -> u64 = m
            .get_unchecked("checksum", 0)
            .map(|s| s.into_raw())
            .unwrap();
        let mark: extern "C" fn(i32) -> i32 =
            m.get_unchecked("mark", 0).map(|s| s.into_raw()).unwrap();
        let bump: extern "C" fn(i64) -> i64 =
            m.get_unchecked("bump", 0).map(|s| s.into_raw()).unwrap();
        let marks = (0..MARKS as i32).map(|i| mark(i) as u8).collect();
        (checksum(), marks, bump(5))
    }
}

fn text(m: &Module<'_>) -> Vec<u8> {
    // SAFETY: the module's text is `m.text_size()` readable bytes at its base.
    unsafe { std::slice::from_raw_parts(m.base(), m.text_size()) }.to_vec()
}

fn load(path: &Path, skip: u64) -> Result<Module<'static>, Error> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(skip)).unwrap();
    let mut src = FileSource::new(f).unwrap();
    Loader::new(ExportTable::EMPTY, &MMAP).load(&mut src)
}

#[test]
fn large_text_is_mapped_from_the_file() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mapped");
    std::fs::create_dir_all(&dir).unwrap();
    let blob = blob();
    let want_marks: Vec<u8> = (0..MARKS).map(|i| blob[mark_at(i)]).collect();
    let want = (expected_checksum(), want_marks, 5);

    // `--text-align auto`: a 64-bit module with this much text starts its
    // text at 4096 in the file.
    let bytes = build(&dir, TextAlign::Auto);
    let view = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
    assert_eq!(view.text_offset(), 4096);
    let path = dir.join("big.dl");
    std::fs::write(&path, &bytes).unwrap();
    let path = path.canonicalize().unwrap();

    // Copied from memory: the reference image.
    let copied = Loader::new(ExportTable::EMPTY, &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert!(copied.text_size() >= BLOB);
    assert!(!covering(&copied, &path).1);
    assert_eq!(call(&copied), want);
    let reference = text(&copied);
    drop(copied);

    let m = load(&path, 0).unwrap();
    let (cover, from_file) = covering(&m, &path);
    assert!(from_file, "text not mapped from the file: {cover:?}");
    for (s, e, p, file) in &cover {
        assert!(
            !p.contains('w') || !p.contains('x'),
            "{s:#x}-{e:#x} {p} {file}"
        );
        if Path::new(file) == path {
            assert_eq!(&p[..3], "r-x", "mapped text {s:#x}-{e:#x}");
        }
    }
    // The same relocated text as the copy, the same results, and the file
    // untouched by the relocations applied to its mapped pages.
    assert_eq!(text(&m), reference);
    assert_eq!(call(&m), want);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let (base, size) = (m.base() as usize, m.image_size());
    drop(m);
    assert!(
        !maps()
            .iter()
            .any(|(s, e, _, p)| *s < base + size && *e > base && Path::new(p) == path),
        "file still mapped after unload"
    );

    // A module at a file offset that is not page-aligned is read instead.
    let shifted = dir.join("shifted.dl");
    let mut with_prefix = vec![0xee];
    with_prefix.extend_from_slice(&bytes);
    std::fs::write(&shifted, &with_prefix).unwrap();
    let m = load(&shifted, 1).unwrap();
    assert!(!covering(&m, &shifted.canonicalize().unwrap()).1);
    assert_eq!(text(&m), reference);
    assert_eq!(call(&m), want);
    drop(m);

    // A file cut short in the text is an error, never a mapping past its
    // end (which would fault when touched).
    let cut = dir.join("cut.dl");
    std::fs::write(&cut, &bytes[..4096 + BLOB / 2]).unwrap();
    assert!(matches!(
        load(&cut, 0),
        Err(Error::Truncated { what: "text" })
    ));

    // Linked with no padding: read, same image.
    let plain = build(&dir, TextAlign::Bytes(1));
    assert!(plain.len() < bytes.len());
    let plain_path = dir.join("plain.dl");
    std::fs::write(&plain_path, &plain).unwrap();
    let m = load(&plain_path, 0).unwrap();
    assert!(!covering(&m, &plain_path.canonicalize().unwrap()).1);
    assert_eq!(text(&m), reference);
    assert_eq!(call(&m), want);
}
