//! Signatures stated in a module's source, read from the `.dynld.sig` section.
//!
//! Each record is `E NAME DESC` (an export) or `I NAME DESC` (an import),
//! ended by a NUL or a newline, where DESC is a type description (see
//! `dynld(3)`); `dynld.h` and the `dynld::export_sig!`/`import_sig!` macros
//! write them.

use crate::link::{fail, LinkError};
use std::collections::HashMap;

/// The section's name.
pub const SECTION: &str = ".dynld.sig";

/// Signatures by symbol name, with where each was stated.
#[derive(Default)]
pub struct SigTable {
    by_name: HashMap<String, (u32, String, String)>,
    /// The names stated as exports (`E` records), in order.
    exports: std::collections::BTreeSet<String>,
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
    pub fn state_export(&mut self, origin: &str, name: &str, sig: u32, desc: &str) {
        self.exports.insert(name.to_owned());
        self.by_name
            .entry(name.to_owned())
            .or_insert_with(|| (sig, desc.to_owned(), origin.to_owned()));
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
