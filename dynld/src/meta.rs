//! Module metadata: what a module says of itself (name, version, class),
//! the ABI versions it requires of the host, the modules it depends on,
//! and its setup and teardown functions.
//!
//! A module declares it once in its source (`DYNLD_MODULE` in `dynld.h`,
//! [`module!`](crate::module!) in Rust); `aout link` writes it as the
//! module's [`kind::METADATA`] table; [`Module::metadata`] and
//! [`ModuleView::metadata`] read it. A [`Registry`](crate::Registry)
//! checks the ABI requirements against the host's before any of the
//! module's code runs, loads its dependencies first, and calls its setup
//! with the caller's options.
//!
//! [`Module::metadata`]: crate::Module::metadata
//! [`ModuleView::metadata`]: crate::ModuleView::metadata

use core::fmt;

use crate::error::Error;
use crate::format::{
    kind, MetaEntry, MAX_META, META_ABI, META_DEPENDS, META_MODULE, META_SETUP, META_TEARDOWN,
};

/// A version: major.minor.patch, ordered as numbers, most significant first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The largest version: as an upper bound, none.
    pub const MAX: Version = Version::new(u32::MAX, u32::MAX, u32::MAX);

    /// Parses `1`, `1.2` or `1.2.3` (missing parts are 0).
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split('.');
        let mut part = |need: bool| match it.next() {
            None if !need => Some(0),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
            _ => None,
        };
        let v = Version::new(part(true)?, part(false)?, part(false)?);
        it.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The versions a dependency accepts: from `min` (included) up to `max`
/// (excluded; [`Version::MAX`] for no upper bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// The lowest version accepted.
    pub min: Version,
    /// The first version refused, or [`Version::MAX`].
    pub max: Version,
}

impl VersionRange {
    /// Every version.
    pub const ANY: VersionRange = VersionRange {
        min: Version::new(0, 0, 0),
        max: Version::MAX,
    };

    /// Whether `v` is in the range.
    pub fn contains(&self, v: Version) -> bool {
        self.min <= v && (v < self.max || self.max == Version::MAX)
    }

    /// Parses a range: `*` (any), or comparisons separated by commas or
    /// spaces, all of which must hold: `>=1.2`, `>1.2` (above every
    /// 1.2.x when the patch is left out), `<2`, `<=1.4.2`, `=1.3.0`, or a
    /// bare version `1.2`, which means `>=1.2, <2` (the same major; for
    /// major 0, the same minor).
    pub fn parse(s: &str) -> Option<VersionRange> {
        let mut r = VersionRange::ANY;
        let mut any = false;
        for w in s.split([',', ' ']).filter(|w| !w.is_empty()) {
            any = true;
            if w == "*" {
                continue;
            }
            let (op, v) = match w.find(|c: char| c.is_ascii_digit()) {
                Some(at) => w.split_at(at),
                None => return None,
            };
            let parts = v.split('.').count();
            let v = Version::parse(v)?;
            // The version after every one `v` stands for: 1.2 stands for
            // 1.2.x, 1 for 1.x.y.
            let after = match parts {
                1 => Version::new(v.major.checked_add(1)?, 0, 0),
                2 => Version::new(v.major, v.minor.checked_add(1)?, 0),
                _ => Version::new(v.major, v.minor, v.patch.checked_add(1)?),
            };
            let (lo, hi) = match op {
                ">=" => (v, Version::MAX),
                ">" => (after, Version::MAX),
                "<" => (Version::new(0, 0, 0), v),
                "<=" => (Version::new(0, 0, 0), after),
                "=" | "==" => (v, after),
                "" | "^" => {
                    let hi = if v.major > 0 || parts == 1 {
                        Version::new(v.major.checked_add(1)?, 0, 0)
                    } else {
                        Version::new(0, v.minor.checked_add(1)?, 0)
                    };
                    (v, hi)
                }
                _ => return None,
            };
            r.min = r.min.max(lo);
            r.max = r.max.min(hi);
        }
        (any && r.min < r.max).then_some(r)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min == Version::new(0, 0, 0), self.max == Version::MAX) {
            (true, true) => f.write_str("*"),
            (false, true) => write!(f, ">={}", self.min),
            (true, false) => write!(f, "<{}", self.max),
            (false, false) => write!(f, ">={}, <{}", self.min, self.max),
        }
    }
}

/// An ABI version: a class name with major.minor. A module requires
/// some; a host offers some ([`Registry::with_abis`]). A requirement is
/// met by an offer of the same class and major whose minor is at least
/// the one required.
///
/// [`Registry::with_abis`]: crate::Registry::with_abis
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Abi<'a> {
    /// The class (`"video"`, `"ansic"`, a kernel's interface name).
    pub class: &'a str,
    /// Incompatible revisions.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
}

impl<'a> Abi<'a> {
    /// `class` at `major.minor`.
    pub const fn new(class: &'a str, major: u32, minor: u32) -> Self {
        Abi {
            class,
            major,
            minor,
        }
    }

    /// Whether an offer of `self` meets the requirement `want`.
    pub fn meets(&self, want: &Abi<'_>) -> bool {
        self.class == want.class && self.major == want.major && self.minor >= want.minor
    }
}

impl fmt::Display for Abi<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}.{}", self.class, self.major, self.minor)
    }
}

/// A module another depends on, by name, with the versions accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency<'a> {
    /// The module's name (its registry name when loaded by name).
    pub name: &'a str,
    /// The versions accepted.
    pub range: VersionRange,
}

/// One option for a module's setup function: C strings `key` and `value`.
/// The setup function receives an array of them and its length.
///
/// ```
/// let opts = [dynld::SetupOption::new(c"depth", c"24")];
/// assert_eq!(opts[0].key().to_bytes(), b"depth");
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SetupOption<'s> {
    key: *const core::ffi::c_char,
    value: *const core::ffi::c_char,
    _s: core::marker::PhantomData<&'s core::ffi::CStr>,
}

// SAFETY: the pointers are those of shared `&CStr`s, which are `Sync`.
unsafe impl Send for SetupOption<'_> {}
// SAFETY: as above.
unsafe impl Sync for SetupOption<'_> {}

impl<'s> SetupOption<'s> {
    /// The option `key=value`.
    pub const fn new(key: &'s core::ffi::CStr, value: &'s core::ffi::CStr) -> Self {
        SetupOption {
            key: key.as_ptr(),
            value: value.as_ptr(),
            _s: core::marker::PhantomData,
        }
    }

    /// The key.
    pub fn key(&self) -> &'s core::ffi::CStr {
        // SAFETY: made from a `&'s CStr` in `new`.
        unsafe { core::ffi::CStr::from_ptr(self.key) }
    }

    /// The value.
    pub fn value(&self) -> &'s core::ffi::CStr {
        // SAFETY: made from a `&'s CStr` in `new`.
        unsafe { core::ffi::CStr::from_ptr(self.value) }
    }
}

impl crate::sig::Signof for SetupOption<'_> {
    const DESC: crate::sig::Desc = crate::sig::Desc::new("struct dynld_option { *char, *char }");
}

/// A setup function's type: the options and their number; 0 accepts the
/// load, anything else refuses it with that code.
pub type SetupFn = extern "C" fn(*const SetupOption<'static>, u32) -> i32;
/// A teardown function's type.
pub type TeardownFn = extern "C" fn();

/// The type description of a setup function ([`SetupFn`]).
pub const SETUP_DESC: &str = "fn(*struct dynld_option { *char, *char }, uint) int";
/// The type description of a teardown function ([`TeardownFn`]).
pub const TEARDOWN_DESC: &str = "fn(void) void";
/// The signature a setup function's export carries.
pub const SETUP_SIG: u32 = crate::sig::hash_or_panic(SETUP_DESC);
/// The signature a teardown function's export carries.
pub const TEARDOWN_SIG: u32 = crate::sig::hash_or_panic(TEARDOWN_DESC);

/// Metadata for [`ModuleBuilder::metadata`](crate::ModuleBuilder::metadata),
/// with setup and teardown functions named (they must be exports).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaSpec {
    /// The module's name.
    pub name: alloc::string::String,
    /// Its version.
    pub version: Version,
    /// Its class.
    pub class: alloc::string::String,
    /// ABI requirements: class, major, minor.
    pub abis: alloc::vec::Vec<(alloc::string::String, u32, u32)>,
    /// Dependencies: module name, versions accepted.
    pub dependencies: alloc::vec::Vec<(alloc::string::String, VersionRange)>,
    /// The setup function's export name.
    pub setup: Option<alloc::string::String>,
    /// The teardown function's export name.
    pub teardown: Option<alloc::string::String>,
}

/// A module's metadata as its table holds it (see [`kind::METADATA`]),
/// checked when the module was loaded or parsed.
#[derive(Clone, Copy, Debug)]
pub struct Metadata<'a> {
    raw: &'a [u8],
    strs: &'a [u8],
}

fn rec(raw: &[u8], i: usize) -> Option<MetaEntry> {
    MetaEntry::parse(raw.get(i.checked_mul(MetaEntry::SIZE)?..)?)
}

fn string(strs: &[u8], off: u32, len: u32) -> Option<&str> {
    let at = off as usize;
    let b = strs.get(at..at.checked_add(len as usize)?)?;
    core::str::from_utf8(b).ok()
}

/// Whether `s` is a good metadata name: non-empty, printable ASCII
/// without spaces, at most 56 bytes (a registry's longest module name).
pub fn good_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 56 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks a metadata table `raw` against the string table and the
/// module's `nexport` exports.
pub(crate) fn check(raw: &[u8], strs: &[u8], nexport: usize) -> Result<(), Error> {
    let fail = |what| Error::BadTable {
        kind: kind::METADATA,
        what,
    };
    if raw.is_empty() {
        return Ok(());
    }
    let n = raw.len() / MetaEntry::SIZE;
    if n as u64 > u64::from(MAX_META) {
        return Err(Error::Limit {
            what: "metadata records",
            count: n as u64,
            max: MAX_META.into(),
        });
    }
    let (mut setup, mut teardown) = (false, false);
    for i in 0..n {
        let e = rec(raw, i).ok_or(fail("truncated record"))?;
        if (e.tag == META_MODULE) != (i == 0) {
            return Err(fail("not one module record, first"));
        }
        let name = string(strs, e.str, e.len).ok_or(fail("string outside the string table"))?;
        let version_ok = |a: u32, b: u32, c: u32| (a, b, c) != (0, 0, 0) || e.tag != META_MODULE;
        let ok = match e.tag {
            META_MODULE => {
                let class = string(strs, e.d, e.e).ok_or(fail("class outside the string table"))?;
                if !good_name(name) || !good_name(class) {
                    return Err(fail("module name or class not a name"));
                }
                version_ok(e.a, e.b, e.c) && e.f == 0
            }
            META_ABI => good_name(name) && e.c == 0 && e.d == 0 && e.e == 0 && e.f == 0,
            META_DEPENDS => {
                let min = Version::new(e.a, e.b, e.c);
                let max = Version::new(e.d, e.e, e.f);
                good_name(name) && min < max
            }
            META_SETUP | META_TEARDOWN => {
                let seen = if e.tag == META_SETUP {
                    &mut setup
                } else {
                    &mut teardown
                };
                if core::mem::replace(seen, true) {
                    return Err(fail("two setup or teardown records"));
                }
                (e.a as usize) < nexport
                    && e.len == 0
                    && (e.b, e.c, e.d, e.e, e.f) == (0, 0, 0, 0, 0)
            }
            _ => return Err(fail("unknown record tag")),
        };
        if !ok {
            return Err(fail("malformed record"));
        }
    }
    Ok(())
}

impl<'a> Metadata<'a> {
    /// The metadata in `raw` (a checked table; empty for none).
    pub(crate) fn new(raw: &'a [u8], strs: &'a [u8]) -> Option<Self> {
        (raw.len() >= MetaEntry::SIZE).then_some(Metadata { raw, strs })
    }

    fn records(&self) -> impl Iterator<Item = MetaEntry> + 'a {
        let raw = self.raw;
        (0..raw.len() / MetaEntry::SIZE).filter_map(move |i| rec(raw, i))
    }

    fn head(&self) -> MetaEntry {
        rec(self.raw, 0).unwrap_or_default()
    }

    /// The name the module declares.
    pub fn name(&self) -> &'a str {
        let h = self.head();
        string(self.strs, h.str, h.len).unwrap_or("")
    }

    /// Its version.
    pub fn version(&self) -> Version {
        let h = self.head();
        Version::new(h.a, h.b, h.c)
    }

    /// Its class: what kind of module it is.
    pub fn class(&self) -> &'a str {
        let h = self.head();
        string(self.strs, h.d, h.e).unwrap_or("")
    }

    /// The ABI versions it requires of the host.
    pub fn abis(&self) -> impl Iterator<Item = Abi<'a>> + 'a {
        let strs = self.strs;
        self.records()
            .filter(|e| e.tag == META_ABI)
            .map(move |e| Abi::new(string(strs, e.str, e.len).unwrap_or(""), e.a, e.b))
    }

    /// The modules it depends on, in the order it states them.
    pub fn dependencies(&self) -> impl Iterator<Item = Dependency<'a>> + 'a {
        let strs = self.strs;
        self.records()
            .filter(|e| e.tag == META_DEPENDS)
            .map(move |e| Dependency {
                name: string(strs, e.str, e.len).unwrap_or(""),
                range: VersionRange {
                    min: Version::new(e.a, e.b, e.c),
                    max: Version::new(e.d, e.e, e.f),
                },
            })
    }

    /// The export index of its setup function, if it has one.
    pub fn setup(&self) -> Option<usize> {
        self.records()
            .find(|e| e.tag == META_SETUP)
            .map(|e| e.a as usize)
    }

    /// The export index of its teardown function, if it has one.
    pub fn teardown(&self) -> Option<usize> {
        self.records()
            .find(|e| e.tag == META_TEARDOWN)
            .map(|e| e.a as usize)
    }

    /// The first ABI it requires that none of `offered` meets: the
    /// requirement and the offer of its class with the highest version
    /// (if any).
    pub fn unmet<'o>(&self, offered: &'o [Abi<'o>]) -> Option<(Abi<'a>, Option<Abi<'o>>)> {
        self.abis().find_map(|want| {
            if offered.iter().any(|o| o.meets(&want)) {
                return None;
            }
            let best = offered
                .iter()
                .filter(|o| o.class == want.class)
                .max_by_key(|o| (o.major, o.minor))
                .copied();
            Some((want, best))
        })
    }
}

/// Name of the object-file section that metadata records go to.
pub const SECTION: &str = ".dynld.module";

/// Declares a module's metadata, once, in its source; `aout link` collects
/// it into the module's metadata table (see [`crate::meta`]).
///
/// ```
/// use dynld::meta::SetupOption;
///
/// #[unsafe(no_mangle)]
/// pub extern "C" fn cmath_setup(opts: *const SetupOption<'static>, n: u32) -> i32 {
///     let _ = (opts, n);
///     0
/// }
/// #[unsafe(no_mangle)]
/// pub extern "C" fn cmath_teardown() {}
///
/// dynld::module!(cmath, "1.2.3", "library",
///     abi("ansic", 1, 0),
///     depends(lib, ">=1.1, <2"),
///     setup(cmath_setup),
///     teardown(cmath_teardown));
/// ```
///
/// The name, then the version (`major.minor.patch`) and the class, then
/// any of: `abi(CLASS, MAJOR, MINOR)` (an ABI the host must offer, once
/// per class), `depends(NAME, RANGE)` (a module to load first; `RANGE` as
/// [`VersionRange::parse`] reads it), `setup(FN)` and `teardown(FN)`. The
/// setup function must coerce to [`SetupFn`] and the teardown function to
/// [`TeardownFn`] (checked by the compiler); both must be exported
/// (`#[unsafe(no_mangle)]`, public), which the linker checks. The macro
/// expands to a `static` in the [`SECTION`] section holding the record
/// as text, one statement a line:
///
/// ```text
/// module cmath 1.2.3 library
/// abi ansic 1.0
/// depends lib >=1.1, <2
/// setup cmath_setup
/// teardown cmath_teardown
/// ```
#[macro_export]
macro_rules! module {
    ($name:ident, $version:literal, $class:literal $(, $k:ident ( $($a:tt)* ))* $(,)?) => {
        const _: () = {
            $( $crate::__module_item!(@check $k ( $($a)* )); )*
            const REC: &str = concat!(
                "module ", stringify!($name), " ", $version, " ", $class, "\n"
                $(, $crate::__module_item!(@text $k ( $($a)* )))*
            );
            #[used]
            #[unsafe(link_section = ".dynld.module")]
            static RECORD: [u8; REC.len()] = {
                let mut a = [0u8; REC.len()];
                let b = REC.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    a[i] = b[i];
                    i += 1;
                }
                a
            };
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __module_item {
    (@text abi ($class:literal, $major:literal, $minor:literal)) => {
        concat!("abi ", $class, " ", $major, ".", $minor, "\n")
    };
    (@text depends ($name:ident, $range:literal)) => {
        concat!("depends ", stringify!($name), " ", $range, "\n")
    };
    (@text setup ($f:ident)) => {
        concat!("setup ", stringify!($f), "\n")
    };
    (@text teardown ($f:ident)) => {
        concat!("teardown ", stringify!($f), "\n")
    };
    (@check setup ($f:ident)) => {
        const _: $crate::meta::SetupFn = $f;
    };
    (@check teardown ($f:ident)) => {
        const _: $crate::meta::TeardownFn = $f;
    };
    (@check abi ($class:literal, $major:literal, $minor:literal)) => {};
    (@check depends ($name:ident, $range:literal)) => {};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_ranges() {
        assert_eq!(Version::parse("1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(Version::parse("4"), Some(Version::new(4, 0, 0)));
        for bad in ["", "1.", "1.2.3.4", "a", "-1", "1..2", "99999999999"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        let r = |s| VersionRange::parse(s).unwrap();
        assert_eq!(r("*"), VersionRange::ANY);
        assert_eq!(r(">=1.2, <2").to_string(), ">=1.2.0, <2.0.0");
        assert_eq!(r("1.2"), r(">=1.2 <2"));
        assert_eq!(r("0.3"), r(">=0.3, <0.4"));
        assert_eq!(r("=1.3"), r(">=1.3.0, <1.4.0"));
        assert_eq!(r("<=1.4.2"), r("<1.4.3"));
        assert_eq!(r(">1.2"), r(">=1.3"));
        assert!(r("1.2").contains(Version::new(1, 9, 9)));
        assert!(!r("1.2").contains(Version::new(2, 0, 0)));
        assert!(!r("1.2").contains(Version::new(1, 1, 9)));
        assert!(r(">=1").contains(Version::MAX));
        for bad in ["", ">=2, <1", "~1", ">=x", "1.2.3.4"] {
            assert_eq!(VersionRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn abi_offers() {
        let offered = [Abi::new("video", 2, 4), Abi::new("ansic", 1, 0)];
        assert!(offered[0].meets(&Abi::new("video", 2, 3)));
        assert!(!offered[0].meets(&Abi::new("video", 2, 5)));
        assert!(!offered[0].meets(&Abi::new("video", 3, 0)));
        assert!(!offered[0].meets(&Abi::new("input", 2, 0)));
        assert_eq!(Abi::new("video", 2, 5).to_string(), "video 2.5");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn round_trip_and_checks() {
        use crate::format::Arch;
        use crate::{Limits, ModuleBuilder, ModuleView};
        let spec = MetaSpec {
            name: "cmath".into(),
            version: Version::new(1, 2, 3),
            class: "library".into(),
            abis: alloc::vec![("ansic".into(), 1, 0), ("video".into(), 2, 4)],
            dependencies: alloc::vec![("lib".into(), VersionRange::parse("1.1").unwrap())],
            setup: Some("go".into()),
            teardown: Some("stop".into()),
        };
        let build = |spec: MetaSpec| {
            let mut b = ModuleBuilder::new(Arch::Amd64);
            b.text(&[0xc3; 8])
                .export("go", SETUP_SIG, 0)
                .export("stop", TEARDOWN_SIG, 4)
                .metadata(spec);
            b.build()
        };
        let bytes = build(spec.clone()).unwrap();
        let v = ModuleView::parse(&bytes, &Limits::DEFAULT).unwrap();
        let m = v.metadata().unwrap();
        assert_eq!((m.name(), m.class()), ("cmath", "library"));
        assert_eq!(m.version(), Version::new(1, 2, 3));
        let abis: alloc::vec::Vec<_> = m.abis().collect();
        assert_eq!(abis, [Abi::new("ansic", 1, 0), Abi::new("video", 2, 4)]);
        let deps: alloc::vec::Vec<_> = m.dependencies().collect();
        assert_eq!(deps[0].name, "lib");
        assert_eq!(deps[0].range.to_string(), ">=1.1.0, <2.0.0");
        assert_eq!((m.setup(), m.teardown()), (Some(0), Some(1)));
        let host = [Abi::new("ansic", 1, 3), Abi::new("video", 2, 3)];
        let (want, have) = m.unmet(&host).unwrap();
        assert_eq!((want, have), (Abi::new("video", 2, 4), Some(host[1])));
        assert_eq!(
            m.unmet(&[Abi::new("ansic", 1, 0), Abi::new("video", 2, 9)]),
            None
        );
        // Not an export: refused by the writer.
        let mut bad = spec.clone();
        bad.setup = Some("nowhere".into());
        assert!(build(bad).is_err());
        // The checks a reader makes: a record tag unknown, a setup index
        // past the exports, a version 0.0.0, two setups.
        let at = |i: usize| {
            let e = v.table_entry(kind::METADATA).unwrap();
            e.offset as usize + i * MetaEntry::SIZE
        };
        let refused = |patch: &dyn Fn(&mut [u8])| {
            let mut b = bytes.clone();
            patch(&mut b);
            ModuleView::parse(&b, &Limits::DEFAULT)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(&|b| b[at(1) + 3] = 9).contains("unknown record tag"));
        assert!(refused(&|b| b[at(4) + 15] = 7).contains("malformed"));
        assert!(refused(&|b| b[at(0) + 12..at(0) + 24].fill(0)).contains("malformed"));
        assert!(refused(&|b| b[at(5) + 3] = 4).contains("two setup"));
        assert!(refused(&|b| b[at(1) + 3] = 1).contains("module record"));
    }

    #[test]
    fn setup_types() {
        use crate::sig::Signof;
        assert_eq!(SETUP_DESC, <SetupFn as Signof>::DESC.pointee().as_str());
        assert_eq!(
            TEARDOWN_DESC,
            <TeardownFn as Signof>::DESC.pointee().as_str()
        );
        assert_eq!(SETUP_SIG, crate::sig::of_fn::<SetupFn>());
        assert_eq!(TEARDOWN_SIG, crate::sig::of_fn::<TeardownFn>());
    }
}
