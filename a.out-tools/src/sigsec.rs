//! Signatures stated in a module's source, read from the `.dynld.sig` section.
//!
//! Each record is `E NAME DESC` (an export) or `I NAME DESC` (an import),
//! ended by a NUL or a newline, where DESC is a type description (see
//! `dynld(3)`); `dynld.h` and the `dynld::export_sig!`/`import_sig!` macros
//! write them.

use crate::dwarfsig::DebugSig;
use crate::link::{fail, LinkError};
use std::collections::HashMap;

/// The section's name.
pub const SECTION: &str = ".dynld.sig";

/// Signatures by symbol name, with where each was stated; beside them, for
/// names the sources state nothing of, the signatures the debug
/// information gives.
#[derive(Default)]
pub struct SigTable {
    by_name: HashMap<String, (u32, String, String)>,
    /// The names stated as exports (`E` records), in order.
    exports: std::collections::BTreeSet<String>,
    /// The names whose entry comes from debug information, not a statement.
    derived: std::collections::HashSet<String>,
    /// What is worth a warning about a name's type, if the name ends up
    /// exported or imported.
    notes: HashMap<String, Vec<String>>,
}

impl SigTable {
    /// Adds the records of one object's section.
    pub fn add(&mut self, origin: &str, data: &[u8]) -> Result<(), LinkError> {
        for rec in data.split(|&b| b == 0 || b == b'\n') {
            let rec = std::str::from_utf8(rec)
                .map_err(|_| LinkError(format!("{origin}: {SECTION}: record is not UTF-8")))?
                .trim();
            if rec.is_empty() {
                continue;
            }
            let mut it = rec.splitn(3, ' ');
            let (kind, name, desc) = (it.next(), it.next(), it.next());
            let (Some("E" | "I"), Some(name), Some(desc)) = (kind, name, desc) else {
                fail!("{origin}: {SECTION}: malformed record {rec:?}")
            };
            let desc = desc.trim();
            if kind == Some("E") {
                self.exports.insert(name.to_owned());
            }
            let sig = dynld::sig::hash(desc)
                .map_err(|e| LinkError(format!("{origin}: {SECTION}: {name}: {e} in {desc:?}")))?;
            match self.by_name.get(name) {
                Some((s, d, o)) if *s != sig => fail!(
                    "conflicting signatures for {name}: {d:?} ({s:#x}) in {o} and {desc:?} ({sig:#x}) in {origin}"
                ),
                Some(_) => {}
                None => {
                    self.by_name
                        .insert(name.to_owned(), (sig, desc.to_owned(), origin.to_owned()));
                }
            }
        }
        Ok(())
    }

    /// States export `name` with signature `sig` and type description
    /// `desc`, on behalf of `origin`, as an `E` record would: for a
    /// function whose type something else declares (a module's setup and
    /// teardown functions). A signature stated already is kept.
    /// A signature from debug information alone is replaced (with a note
    /// if it differs).
    pub fn state_export(&mut self, origin: &str, name: &str, sig: u32, desc: &str) {
        self.exports.insert(name.to_owned());
        if self.derived.remove(name) {
            if let Some((s, d, o)) = self.by_name.remove(name) {
                if s != sig {
                    self.note(
                        name,
                        format!("{name}: {o} gives {d:?} ({s:#010x}); {desc:?} ({sig:#010x}) is used, the type {origin} requires"),
                    );
                }
            }
        }
        self.by_name
            .entry(name.to_owned())
            .or_insert_with(|| (sig, desc.to_owned(), origin.to_owned()));
    }

    /// Adds what the objects' debug information says, `(entry, object)`
    /// in input order: for each name the sources state nothing of, the
    /// type of its definition, or failing one, of its first declaration.
    /// A stated signature is kept; one the debug information contradicts,
    /// a declaration that disagrees with the definition, and a type with
    /// no description are noted.
    pub fn add_debug(&mut self, entries: Vec<(DebugSig, String)>) {
        let mut by_name: HashMap<&str, Vec<&(DebugSig, String)>> = HashMap::new();
        for e in &entries {
            by_name.entry(e.0.name.as_str()).or_default().push(e);
        }
        let mut names: Vec<&str> = by_name.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            let all = &by_name[name];
            let Some(&chosen) = all.iter().find(|e| e.0.definition).or_else(|| all.first()) else {
                continue;
            };
            let (dbg, obj) = chosen;
            let said = |e: &(DebugSig, String)| -> Option<String> {
                let d = e.0.desc.as_ref().ok()?;
                Some(format!(
                    "the debug information of {} gives {d:?} ({:#010x})",
                    e.1,
                    e.0.sig()
                ))
            };
            if let Some((s, d, o)) = self.by_name.get(name) {
                if let Some(what) = said(chosen).filter(|_| dbg.sig() != *s) {
                    let note =
                        format!("{name}: stated as {d:?} ({s:#010x}) in {o}, but {what}; the stated signature is used");
                    self.note(name, note);
                }
                continue;
            }
            match &dbg.desc {
                Ok(d) => {
                    let sig = dbg.sig();
                    // Declarations that differ only in the structs they see
                    // complete (a header's `struct internal_state;`) are
                    // the same type told with less; others are noted.
                    let differ: Vec<&str> = all
                        .iter()
                        .filter(|e| {
                            e.0.desc
                                .as_ref()
                                .is_ok_and(|o| e.0.sig() != sig && shape(o) != shape(d))
                        })
                        .map(|e| e.1.as_str())
                        .collect();
                    if let Some(first) = differ.first() {
                        let other = all.iter().find(|e| e.1 == *first).and_then(|e| said(e));
                        let note = format!(
                            "{name}: {}, but {}{}; the first is used",
                            said(chosen).unwrap_or_default(),
                            other.unwrap_or_default(),
                            match differ.len() {
                                1 => String::new(),
                                n => format!(" (and {} more objects disagree)", n - 1),
                            }
                        );
                        self.note(name, note);
                    }
                    self.by_name.insert(
                        name.to_owned(),
                        (sig, d.clone(), format!("the debug information of {obj}")),
                    );
                    self.derived.insert(name.to_owned());
                }
                Err(why) => {
                    let note = format!(
                        "{name}: the debug information of {obj} gives no signature ({why}): left unchecked"
                    );
                    self.note(name, note);
                }
            }
        }
    }

    fn note(&mut self, name: &str, text: String) {
        self.notes.entry(name.to_owned()).or_default().push(text);
    }

    /// What is worth a warning about `name`'s type.
    pub fn notes(&self, name: &str) -> &[String] {
        self.notes.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether `name`'s signature is stated in a source (not derived from
    /// debug information).
    pub fn is_stated(&self, name: &str) -> bool {
        self.by_name.contains_key(name) && !self.derived.contains(name)
    }

    /// The signature stated for `name`, or 0 (unchecked).
    pub fn get(&self, name: &str) -> u32 {
        self.by_name.get(name).map_or(0, |e| e.0)
    }

    /// The type description stated for `name`, if any.
    pub fn desc(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(|e| e.1.as_str())
    }

    /// The names of the exports stated (`E` records), in order.
    pub fn stated_exports(&self) -> impl Iterator<Item = &str> + '_ {
        self.exports.iter().map(String::as_str)
    }

    /// The object that first stated a signature for `name`, if any.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(|e| e.2.as_str())
    }
}

/// A description with every struct and union body left out: what two
/// descriptions of one type share when one sees a struct complete and the
/// other does not.
fn shape(desc: &str) -> String {
    let mut out = String::with_capacity(desc.len());
    let mut depth = 0usize;
    for c in desc.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
