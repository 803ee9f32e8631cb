//! Section garbage collection: the sections reachable through relocations
//! from the exports, the constructors and the destructors are kept;
//! without `--gc`, every section that takes space in the module is too.

use super::obj::{part_of, FnArray, SectionId};
use super::resolve::{Exports, Resolved, Symbols};
use super::{fail, LinkError};
use object::{Object, ObjectSection, RelocationTarget, SectionIndex};
use std::collections::{BTreeSet, HashSet};

/// What the module keeps.
pub(super) struct Live {
    /// The sections kept, in object and section order.
    pub sections: Vec<SectionId>,
    /// The common symbols referenced or exported.
    pub commons: BTreeSet<String>,
}

/// Walks the references from the exports and the constructors (from every
/// section without `gc`).
pub(super) fn live(syms: &Symbols<'_>, exports: &Exports, gc: bool) -> Result<Live, LinkError> {
    let objs = &syms.objs;
    let mut keep: HashSet<SectionId> = HashSet::new();
    let mut work: Vec<SectionId> = Vec::new();
    for (o, si) in exports.syms.values() {
        if let Resolved::In(oi, idx, _) = syms.resolve(*o, *si)? {
            work.push((oi, idx));
        }
    }
    for (oi, o) in objs.iter().enumerate() {
        for s in o.file.sections() {
            let name = s.name().unwrap_or("");
            let live = FnArray::of(name).is_some() || !gc && part_of(o, &s)?.is_some();
            if live && !o.discarded.contains(&s.index()) {
                work.push((oi, s.index().0));
            }
        }
    }
    let mut commons: BTreeSet<String> = exports.commons.clone();
    while let Some((oi, idx)) = work.pop() {
        let o = &objs[oi];
        if o.discarded.contains(&SectionIndex(idx)) {
            fail!(
                "{}: reference to section {} of a discarded COMDAT group",
                o.name,
                o.section_name(SectionIndex(idx))
            );
        }
        if !keep.insert((oi, idx)) {
            continue;
        }
        for (_, r) in o.section(idx)?.relocations() {
            if let RelocationTarget::Symbol(si) = r.target() {
                match syms.resolve(oi, si)? {
                    Resolved::In(o2, i2, _) => work.push((o2, i2)),
                    Resolved::Common(n) => {
                        commons.insert(n);
                    }
                    Resolved::Synth(f) => {
                        // A synthesised function reaches what it calls.
                        commons.extend(f.needs_commons().iter().map(|n| n.to_string()));
                    }
                    // The sections a __start_/__stop_ symbol bounds are
                    // kept with it, as GNU ld keeps them.
                    Resolved::Bound { section, .. } => {
                        work.extend(syms.bounded.get(&section).into_iter().flatten().copied());
                    }
                    Resolved::Import(_) | Resolved::Abs(_) => {}
                }
            }
        }
    }
    let mut sections: Vec<SectionId> = keep.into_iter().collect();
    sections.sort();
    Ok(Live { sections, commons })
}
