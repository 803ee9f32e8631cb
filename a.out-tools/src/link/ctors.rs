//! Constructors: the functions the kept `.init_array` sections name, in
//! the order the init function calls them.

use super::obj::{is_init_array, SectionId};
use super::resolve::{Resolved, Symbols};
use super::{fail, LinkError};
use object::{ObjectSection, RelocationTarget};

/// The constructors in the kept `sections`: by priority (`.init_array.N`
/// by N, then plain `.init_array`), then in input order, then in their
/// section's order.
pub(super) fn constructors(
    syms: &Symbols<'_>,
    sections: &[SectionId],
) -> Result<Vec<Resolved>, LinkError> {
    let mut arrays = Vec::new();
    for &(oi, idx) in sections {
        let s = syms.objs[oi].section(idx)?;
        let name = s.name().unwrap_or("");
        if is_init_array(name) {
            arrays.push((oi, idx, name.to_owned()));
        }
    }
    arrays.sort_by_key(|(oi, _, name)| (priority(name), *oi));
    let mut targets = Vec::new();
    for (oi, idx, name) in &arrays {
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
                    .map(|v| (a, b, v)),
                _ => None,
            };
            match at {
                Some((a, b, v)) if v < syms.objs[a].section_size(b) => {
                    entries.push((off, Resolved::In(a, b, v)))
                }
                _ => fail!(
                    "{}: section {name}+{off:#x}: constructor is not a function defined in the module",
                    o.name
                ),
            }
        }
        entries.sort_by_key(|e| e.0);
        targets.extend(entries.into_iter().map(|e| e.1));
    }
    Ok(targets)
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
