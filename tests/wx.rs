//! The mmap provider's W^X sequence, observed in `/proc/self/maps`.
//!
//! This is its own test binary with a single test, so no other test thread can
//! map memory at the freed address between the drop and the final check.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::{signof, Dynsym, ExportTable, Loader, SliceSource, MMAP};
use dynld_suite::calc;

extern "C" fn host_double(x: i32) -> i32 {
    2 * x
}

static HOST: [Dynsym; 1] = [Dynsym::new(
    "host_double",
    signof!("fn(int) int"),
    host_double as *const (),
)];

/// Parses /proc/self/maps into (start, end, perms).
fn maps() -> Vec<(usize, usize, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next().unwrap();
            let perms = it.next().unwrap().to_string();
            let (a, b) = range.split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
                perms,
            )
        })
        .collect()
}

#[test]
fn mmap_provider_is_w_xor_x() {
    let bytes = dynld_suite::calc().build().unwrap();
    let m = Loader::new(ExportTable::new(&HOST).unwrap(), &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    let base = m.base() as usize;
    let end = base + m.image_size();
    let covering: Vec<_> = maps()
        .into_iter()
        .filter(|&(s, e, _)| s < end && e > base)
        .collect();
    assert!(!covering.is_empty());
    for (s, e, p) in &covering {
        let (w, x) = (p.as_bytes()[1] == b'w', p.as_bytes()[2] == b'x');
        assert!(!(w && x), "mapping {s:#x}-{e:#x} is {p}");
    }
    let perms_at = |a: usize| {
        covering
            .iter()
            .find(|&&(s, e, _)| s <= a && a < e)
            .map(|(_, _, p)| p[..3].to_string())
            .unwrap()
    };
    assert_eq!(perms_at(base), "r-x", "text");
    assert_eq!(perms_at(base + calc::DATA as usize), "rw-", "data");
    assert_eq!(perms_at(base + calc::SCRATCH as usize), "rw-", "bss");
    // And it runs: module -> host -> module.
    // SAFETY: the calc sample exports twice_plus_one with this type.
    let tpo: extern "C" fn(i32) -> i32 = unsafe {
        m.get_unchecked("twice_plus_one", signof!("fn(int) int"))
            .map(|s| s.into_raw())
            .unwrap()
    };
    assert_eq!(tpo(20), 41);
    // Bump the counter, so the next load shows whether data was zeroed
    // and rewritten.
    // SAFETY: the calc sample exports bump with this type.
    let bump: extern "C" fn(i32) -> i32 =
        unsafe { m.get_unchecked("bump", 0).map(|s| s.into_raw()).unwrap() };
    assert_eq!(bump(100), 105);
    let scratch = m.addr("scratch", 0).unwrap() as *mut [u8; 16];
    // SAFETY: scratch is 16 writable bytes of the module's bss.
    unsafe { *scratch = [0xaa; 16] };
    drop(m);
    // Unloaded: the memory is kept for reuse (small modules) but nothing of
    // it is executable any more, or it is unmapped.
    for (s, e, p) in maps() {
        if s < end && e > base {
            assert_eq!(&p[..3], "rw-", "{s:#x}-{e:#x} after drop");
        }
    }
    // Loading again reuses the mapping, made executable again, with the
    // module's own data (not the previous instance's).
    let m = Loader::new(ExportTable::new(&HOST).unwrap(), &MMAP)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    assert_eq!(m.base() as usize, base, "mapping reused");
    let perms: Vec<_> = maps()
        .into_iter()
        .filter(|&(s, _, _)| s == base)
        .map(|(_, _, p)| p)
        .collect();
    assert_eq!(perms.len(), 1);
    assert_eq!(&perms[0][..3], "r-x");
    // SAFETY: as above.
    let bump: extern "C" fn(i32) -> i32 =
        unsafe { m.get_unchecked("bump", 0).map(|s| s.into_raw()).unwrap() };
    assert_eq!(bump(0), 5, "data rewritten");
    let scratch = m.addr("scratch", 0).unwrap() as *const [u8; 16];
    // SAFETY: scratch is 16 bytes of the module's bss.
    assert_eq!(unsafe { *scratch }, [0; 16], "bss zeroed");
}
