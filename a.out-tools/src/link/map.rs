//! The link map (`aout link --map`): where each input section and each
//! thing the linker made went, in image order.

use super::layout::{IslandEntry, Layout};
use super::machine::Machine;
use super::resolve::{Symbols, SynthFn};
use super::MapEntry;
use object::SectionIndex;

/// The map of layout `lay`, whose stubs and veneers backend `m` sized.
pub(super) fn map(syms: &Symbols<'_>, lay: &Layout, m: &dyn Machine) -> Vec<MapEntry> {
    let mut map = Vec::new();
    for ((oi, idx), _, at) in lay.placed() {
        let o = &syms.objs[oi];
        map.push(MapEntry {
            offset: at,
            size: o.section_size(idx),
            object: o.name.clone(),
            section: o.section_name(SectionIndex(idx)),
        });
    }
    let made = |offset: u64, size: u64, section: String| MapEntry {
        offset,
        size,
        object: "*".into(),
        section,
    };
    for (n, at) in &lay.stubs {
        map.push(made(*at, m.stub_size(), format!("stub {n}")));
    }
    for (v, at) in &lay.abs_stubs {
        map.push(made(*at, m.abs_stub_size(), format!("abs-stub {v:#x}")));
    }
    for (at, entry) in &lay.islands {
        map.push(match entry {
            IslandEntry::Veneer { addend, .. } => {
                made(*at, m.veneer_size(), format!("veneer {addend:+}"))
            }
            IslandEntry::Stub(n) => made(*at, m.stub_size(), format!("stub {n}")),
        });
    }
    for (f, at) in &lay.synth {
        let size = match f {
            SynthFn::AtExit => m.atexit_size(),
        };
        map.push(made(*at, size, f.name().into()));
    }
    if !lay.got.is_empty() {
        map.push(made(
            lay.dataoff + lay.got_start,
            lay.data_len - lay.got_start,
            "got".into(),
        ));
    }
    for (n, (at, size)) in &lay.commons {
        map.push(made(
            lay.dataoff + lay.bss_start + at,
            *size,
            format!("common {n}"),
        ));
    }
    map.sort_by(|a, b| (a.offset, &a.object, &a.section).cmp(&(b.offset, &b.object, &b.section)));
    map
}
