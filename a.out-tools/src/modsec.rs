//! Module metadata stated in a module's source, read from the
//! `.dynld.module` section (see [`dynld::meta`]).
//!
//! `DYNLD_MODULE` in `dynld.h` and the `dynld::module!` macro write one
//! record as text, statements ended by a newline or a NUL:
//!
//! ```text
//! module NAME VERSION CLASS
//! abi CLASS MAJOR.MINOR
//! depends NAME RANGE
//! setup FUNCTION
//! teardown FUNCTION
//! ```
//!
//! [`MetaTable`] gathers the statements of every object linked into one
//! [`dynld::meta::MetaSpec`], refusing what the module's metadata table
//! could not say or would say twice. Whether the setup and teardown
//! functions are functions the module exports is the linker's to check
//! (it knows the symbols).

use crate::link::{fail, LinkError};
use dynld::meta::{good_name, MetaSpec, Version, VersionRange};

/// The section's name.
pub const SECTION: &str = dynld::meta::SECTION;

/// The metadata of the objects added so far, with where each part was
/// stated (for messages).
#[derive(Default)]
pub struct MetaTable {
    spec: MetaSpec,
    /// The object of the module record, once one was seen.
    module: Option<String>,
    /// Where each ABI class and dependency was stated, in order.
    abis: Vec<String>,
    deps: Vec<String>,
    /// Where the setup and teardown functions were named.
    setup: Option<String>,
    teardown: Option<String>,
    /// The first statement other than `module`, and its object: refused
    /// if no object has a module record.
    first_item: Option<(String, String)>,
}

/// The module's metadata, gathered.
#[derive(Debug)]
pub struct Collected {
    /// What the module's metadata table is made of.
    pub spec: MetaSpec,
    /// The object with the module record.
    pub origin: String,
    /// The object naming the setup function, if one does.
    pub setup_origin: Option<String>,
    /// The object naming the teardown function, if one does.
    pub teardown_origin: Option<String>,
}

/// `MAJOR.MINOR`, both decimal.
fn major_minor(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    let num = |p: &str| {
        (!p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    Some((num(a)?, num(b)?))
}

/// `s` if it is a good metadata name, else an error saying what it is.
fn name<'s>(what: &str, s: &'s str) -> Result<&'s str, String> {
    if good_name(s) {
        Ok(s)
    } else {
        Err(format!(
            "{what} \"{s}\" is not a name (1 to 56 printable ASCII characters, no spaces)"
        ))
    }
}

impl MetaTable {
    /// Adds the statements of one object's section.
    pub fn add(&mut self, origin: &str, data: &[u8]) -> Result<(), LinkError> {
        for line in data.split(|&b| b == 0 || b == b'\n') {
            let line = std::str::from_utf8(line)
                .map_err(|_| LinkError(format!("{origin}: {SECTION}: statement is not UTF-8")))?
                .trim();
            if line.is_empty() {
                continue;
            }
            self.statement(origin, line).map_err(|e| {
                LinkError(format!(
                    "{origin}: {SECTION}: {e}, in the statement \"{line}\""
                ))
            })?;
        }
        Ok(())
    }

    /// Adds one statement; an error is said without where.
    fn statement(&mut self, origin: &str, line: &str) -> Result<(), String> {
        let (keyword, rest) = line
            .split_once([' ', '\t'])
            .map_or((line, ""), |(k, r)| (k, r.trim()));
        let words: Vec<&str> = rest.split_whitespace().collect();
        let count = |n: usize, form: &str| {
            if words.len() == n {
                Ok(())
            } else {
                Err(format!("expected `{keyword} {form}`"))
            }
        };
        if keyword != "module" && self.first_item.is_none() {
            self.first_item = Some((origin.to_owned(), line.to_owned()));
        }
        match keyword {
            "module" => {
                count(3, "NAME VERSION CLASS")?;
                if let Some(first) = &self.module {
                    return Err(if first == origin {
                        format!("two module metadata records in {origin}")
                    } else {
                        format!("two module metadata records: in {first} and {origin}")
                    });
                }
                let n = name("module name", words[0])?;
                let version = Version::parse(words[1]).ok_or_else(|| {
                    format!(
                        "version \"{}\" is not MAJOR.MINOR.PATCH (decimal numbers)",
                        words[1]
                    )
                })?;
                if version == Version::default() {
                    return Err("version 0.0.0 is not allowed (the lowest is 0.0.1)".into());
                }
                let class = name("module class", words[2])?;
                self.spec.name = n.to_owned();
                self.spec.version = version;
                self.spec.class = class.to_owned();
                self.module = Some(origin.to_owned());
            }
            "abi" => {
                count(2, "CLASS MAJOR.MINOR")?;
                let class = name("ABI class", words[0])?;
                let (major, minor) = major_minor(words[1]).ok_or_else(|| {
                    format!(
                        "ABI version \"{}\" is not MAJOR.MINOR (decimal numbers)",
                        words[1]
                    )
                })?;
                if let Some(i) = self.spec.abis.iter().position(|a| a.0 == class) {
                    let (_, a, b) = self.spec.abis[i];
                    return Err(format!(
                        "ABI class {class} is required twice: {a}.{b} in {} and {major}.{minor} in {origin}",
                        self.abis[i]
                    ));
                }
                self.spec.abis.push((class.to_owned(), major, minor));
                self.abis.push(origin.to_owned());
            }
            "depends" => {
                if words.len() < 2 {
                    count(2, "NAME RANGE")?;
                }
                let dep = name("dependency name", words[0])?;
                let text = rest.strip_prefix(words[0]).unwrap_or("").trim();
                let range = VersionRange::parse(text).ok_or_else(|| {
                    format!(
                        "version range \"{text}\" for {dep} is not a range (`*`, or comparisons such as `>=1.2, <2`, all of which can hold)"
                    )
                })?;
                if let Some(i) = self.spec.dependencies.iter().position(|d| d.0 == dep) {
                    return Err(format!(
                        "dependency {dep} is stated twice: in {} and in {origin}",
                        self.deps[i]
                    ));
                }
                self.spec.dependencies.push((dep.to_owned(), range));
                self.deps.push(origin.to_owned());
            }
            "setup" | "teardown" => {
                count(1, "FUNCTION")?;
                let (spec, seen) = if keyword == "setup" {
                    (&mut self.spec.setup, &mut self.setup)
                } else {
                    (&mut self.spec.teardown, &mut self.teardown)
                };
                if let (Some(f), Some(first)) = (spec.as_deref(), seen.as_deref()) {
                    return Err(format!(
                        "two {keyword} functions: {f} in {first} and {} in {origin}",
                        words[0]
                    ));
                }
                *spec = Some(words[0].to_owned());
                *seen = Some(origin.to_owned());
            }
            _ => {
                return Err(format!(
                "unknown statement \"{keyword}\" (expected module, abi, depends, setup or teardown)"
            ))
            }
        }
        Ok(())
    }

    /// The metadata gathered, if any object stated some: refused if it
    /// has no module record, if the module depends on itself, or if it
    /// has more records than the loader takes.
    pub fn finish(self) -> Result<Option<Collected>, LinkError> {
        let Some(origin) = self.module else {
            return match self.first_item {
                Some((o, line)) => fail!(
                    "{o}: {SECTION}: metadata \"{line}\" without a module record: declare the module with DYNLD_MODULE or dynld::module!"
                ),
                None => Ok(None),
            };
        };
        let spec = self.spec;
        if let Some(i) = spec.dependencies.iter().position(|d| d.0 == spec.name) {
            fail!(
                "{}: {SECTION}: module {} depends on itself",
                self.deps[i],
                spec.name
            );
        }
        let records = 1
            + spec.abis.len()
            + spec.dependencies.len()
            + usize::from(spec.setup.is_some())
            + usize::from(spec.teardown.is_some());
        let max = dynld::format::MAX_META as usize;
        if records > max {
            fail!(
                "module {}: {records} metadata records, more than dynld's loader takes (at most {max}, dynld::format::MAX_META)",
                spec.name
            );
        }
        Ok(Some(Collected {
            spec,
            origin,
            setup_origin: self.setup,
            teardown_origin: self.teardown,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(objs: &[(&str, &str)]) -> Result<Option<Collected>, String> {
        let mut t = MetaTable::default();
        for (o, text) in objs {
            t.add(o, text.as_bytes()).map_err(|e| e.0)?;
        }
        t.finish().map_err(|e| e.0)
    }

    fn refused(objs: &[(&str, &str)]) -> String {
        match collect(objs) {
            Err(e) => e,
            Ok(c) => panic!("{objs:?} accepted: {c:?}"),
        }
    }

    #[test]
    fn statements() {
        let c = collect(&[
            (
                "a.o",
                "module cmath 1.2.3 library\nabi ansic 1.0\0depends lib >=1.1, <2\n",
            ),
            ("b.o", "setup cm_setup\nteardown cm_down\n\0"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.origin, "a.o");
        assert_eq!(c.setup_origin.as_deref(), Some("b.o"));
        let s = c.spec;
        assert_eq!((s.name.as_str(), s.class.as_str()), ("cmath", "library"));
        assert_eq!(s.version, Version::new(1, 2, 3));
        assert_eq!(s.abis, [("ansic".to_owned(), 1, 0)]);
        assert_eq!(s.dependencies[0].1.to_string(), ">=1.1.0, <2.0.0");
        assert_eq!(s.setup.as_deref(), Some("cm_setup"));
        assert_eq!(s.teardown.as_deref(), Some("cm_down"));
        assert!(collect(&[("a.o", "\0\n")]).unwrap().is_none());
    }

    #[test]
    fn refusals() {
        let m = "module m 1.0.0 lib\n";
        for (objs, want) in [
            (
                &[("a.o", m), ("b.o", m)][..],
                "two module metadata records: in a.o and b.o",
            ),
            (
                &[("a.o", "module m 1 x\nmodule n 1 x")],
                "two module metadata records in a.o",
            ),
            (&[("a.o", "abi ansic 1.0")], "without a module record"),
            (&[("a.o", "module m 1.x lib")], "version \"1.x\" is not"),
            (
                &[("a.o", "module m 0.0 lib")],
                "version 0.0.0 is not allowed",
            ),
            (
                &[("a.o", "module m 1")],
                "expected `module NAME VERSION CLASS`",
            ),
            (
                &[("a.o", "module m\x01 1 lib")],
                "module name \"m\x01\" is not a name",
            ),
            (
                &[("a.o", "abi ansic 1")],
                "ABI version \"1\" is not MAJOR.MINOR",
            ),
            (
                &[("a.o", "abi ansic 1.0\nabi ansic 2.0\nmodule m 1 x")],
                "ABI class ansic is required twice: 1.0 in a.o and 2.0 in a.o",
            ),
            (
                &[("a.o", "depends lib >=2, <1\nmodule m 1 x")],
                "version range \">=2, <1\" for lib is not a range",
            ),
            (&[("a.o", "depends lib")], "expected `depends NAME RANGE`"),
            (
                &[
                    ("a.o", "module m 1 x\ndepends l 1\n"),
                    ("b.o", "depends l 2"),
                ],
                "dependency l is stated twice: in a.o and in b.o",
            ),
            (
                &[("a.o", "module m 1 x\ndepends m 1\n")],
                "a.o: .dynld.module: module m depends on itself",
            ),
            (
                &[("a.o", "module m 1 x\nsetup f\nsetup g")],
                "two setup functions: f in a.o and g in a.o",
            ),
            (
                &[("a.o", "module m 1 x\nteardown f g")],
                "expected `teardown FUNCTION`",
            ),
            (
                &[("a.o", "module m 1 x\nrequires y")],
                "unknown statement \"requires\"",
            ),
        ] {
            let bytes: Vec<(&str, &str)> = objs.to_vec();
            let e = refused(&bytes);
            assert!(e.contains(want), "{objs:?}: {e}");
        }
        let mut t = MetaTable::default();
        let e = t.add("a.o", b"module m 1 x\n\xff\n").unwrap_err().0;
        assert!(
            e.contains("a.o: .dynld.module: statement is not UTF-8"),
            "{e}"
        );
        let many: String = (0..300).map(|i| format!("abi c{i} 1.0\n")).collect();
        let e = refused(&[("a.o", &format!("{m}{many}"))]);
        assert!(e.contains("more than dynld's loader takes"), "{e}");
    }
}
