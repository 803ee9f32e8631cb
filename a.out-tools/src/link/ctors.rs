//! Constructors and destructors: the functions the kept `.preinit_array`,
//! `.init_array` and `.fini_array` sections name, in the order of the
//! module's tables of them.

use super::obj::{FnArray, SectionId};
use super::resolve::{Resolved, Symbols};
use super::{fail, LinkError};
use object::{ObjectSection, RelocationTarget};

/// The functions a module runs around its life.
pub(super) struct Functions {
    /// Constructors, in the order they run: `.preinit_array` entries, then
    /// `.init_array` ones.
    pub init: Vec<Resolved>,
    /// Destructors in `.fini_array` order (they run last to first).
    pub fini: Vec<Resolved>,
}

/// The constructors and destructors in the kept `sections`. Within each
/// kind of array: by priority (`.init_array.N` by N, then the plain
/// section), then in input order, then in their section's order. Every
/// entry must name a function in the text.
pub(super) fn functions(
    syms: &Symbols<'_>,
    sections: &[SectionId],
    in_text: impl Fn(&Resolved) -> bool,
) -> Result<Functions, LinkError> {
    let mut arrays = Vec::new();
    for &(oi, idx) in sections {
        let s = syms.objs[oi].section(idx)?;
        let name = s.name().unwrap_or("");
        if let Some(kind) = FnArray::of(name) {
            arrays.push((kind, priority(name), oi, idx, name.to_owned()));
        }
    }
    arrays.sort_by_key(|(kind, prio, oi, ..)| (*kind, *prio, *oi));
    let mut f = Functions {
        init: Vec::new(),
        fini: Vec::new(),
    };
    for (kind, _, oi, idx, name) in &arrays {
        let o = &syms.objs[*oi];
        let mut entries = Vec::new();
        for (off, r) in o.section(*idx)?.relocations() {
            let RelocationTarget::Symbol(si) = r.target() else {
                continue;
            };
            // A static constructor is often its section's symbol plus an
            // offset.
            let at = match syms.resolve(*oi, si)? {
                Resolved::In(a, b, v) => u64::try_from(r.addend())
                    .ok()
                    .and_then(|x| v.checked_add(x))
                    .map(|v| Resolved::In(a, b, v)),
                _ => None,
            };
            match at {
                Some(Resolved::In(a, b, v))
                    if v < syms.objs[a].section_size(b) && in_text(&Resolved::In(a, b, v)) =>
                {
                    entries.push((off, Resolved::In(a, b, v)))
                }
                _ => fail!(
                    "{}: section {name}+{off:#x}: {} is not a function in the module's text",
                    o.name,
                    if *kind == FnArray::Fini {
                        "destructor"
                    } else {
                        "constructor"
                    }
                ),
            }
        }
        entries.sort_by_key(|e| e.0);
        let list = if *kind == FnArray::Fini {
            &mut f.fini
        } else {
            &mut f.init
        };
        list.extend(entries.into_iter().map(|e| e.1));
    }
    Ok(f)
}

/// Sort key of constructor sections: `.init_array.N` by N, plain last.
fn priority(name: &str) -> (u32, u32) {
    match name
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse::<u32>().ok())
    {
        Some(p) => (0, p),
        None => (1, 0),
    }
}
