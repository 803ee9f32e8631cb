//! Layout: where every kept section, stub, veneer island, GOT slot, common
//! symbol and function the linker writes goes, and which functions are the
//! module's constructors and destructors. The image is
//!
//! ```text
//! text sections (and islands), stubs, written functions | page | data sections, GOT | bss
//! ```
//!
//! Nothing is written here; [`Layout::addr`] gives every resolved symbol
//! its place.

use super::ctors;
use super::gc::Live;
use super::image::Target;
use super::machine::{Machine, Need};
use super::obj::{part_of, Part, SectionId};
use super::resolve::{Def, Resolved, Symbols, SynthFn, CXA_ATEXIT};
use super::{fail, LinkError, MAX_MODULE};
use object::{ObjectSection, RelocationFlags, RelocationTarget};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where everything goes. Offsets are image offsets unless said otherwise.
pub(super) struct Layout {
    /// The kept sections, in object and section order.
    pub sections: Vec<SectionId>,
    /// Each kept section that takes space: its part, and its offset in it.
    place: HashMap<SectionId, (Part, u64)>,
    /// The strictest alignment in each part.
    pub align: [u64; 3],
    /// What `__start_SECTION` and `__stop_SECTION` bound: for each
    /// SECTION, its part and the offsets in it of its first placed section
    /// and of the end of its last.
    bounds: HashMap<String, (Part, u64, u64)>,
    /// Common symbols: offset in the bss, and size.
    pub commons: HashMap<String, (u64, u64)>,
    /// The stub of each import called.
    pub stubs: BTreeMap<String, u64>,
    /// The stub of each absolute address called.
    pub abs_stubs: BTreeMap<u64, u64>,
    /// What the veneer islands hold, island by island.
    pub islands: Vec<(u64, IslandEntry)>,
    /// The GOT slots, in order, and what each holds.
    pub got: Vec<(u64, Resolved)>,
    /// The functions the linker writes, and where.
    pub synth: BTreeMap<SynthFn, u64>,
    /// The constructors, in the order they run.
    pub init: Vec<Resolved>,
    /// The destructors, in `.fini_array` order.
    pub fini: Vec<Resolved>,
    /// End of the text (after the stubs and the written functions).
    pub text_end: u64,
    /// Start of the data: on a page and on the data's and bss's alignment.
    pub dataoff: u64,
    /// Offset of the GOT in the data.
    pub got_start: u64,
    /// Bytes of data, the GOT included.
    pub data_len: u64,
    /// Offset of the bss from the start of the data.
    pub bss_start: u64,
    /// End of the bss: the image's size.
    pub image_end: u64,
}

/// Something in a veneer island.
pub(super) enum IslandEntry {
    /// A veneer jumping to `target` plus `addend`, inside the module.
    Veneer { target: Resolved, addend: i64 },
    /// A copy of an import's stub.
    Stub(String),
}

impl Layout {
    /// Where a resolved symbol is in the module; `None` if its section was
    /// dropped.
    pub fn addr(&self, r: &Resolved) -> Option<Target> {
        Some(match r {
            Resolved::In(oi, idx, off) => {
                let (part, at) = *self.place.get(&(*oi, *idx))?;
                Target::Local(
                    off + match part {
                        Part::Text => at,
                        Part::Data => self.dataoff + at,
                        Part::Bss => self.dataoff + self.bss_start + at,
                    },
                )
            }
            Resolved::Abs(v) => Target::Abs(*v),
            Resolved::Common(n) => {
                Target::Local(self.dataoff + self.bss_start + self.commons.get(n)?.0)
            }
            Resolved::Import(n) => Target::Import(n.clone()),
            Resolved::Synth(f) => Target::Local(*self.synth.get(f)?),
            Resolved::Bound { section, stop } => {
                let &(part, start, end) = self.bounds.get(section)?;
                let at = if *stop { end } else { start };
                Target::Local(
                    at + match part {
                        Part::Text => 0,
                        Part::Data => self.dataoff,
                        Part::Bss => self.dataoff + self.bss_start,
                    },
                )
            }
        })
    }

    /// The kept sections that take space, in order: their part and image
    /// offset.
    pub fn placed(&self) -> impl Iterator<Item = (SectionId, Part, u64)> + '_ {
        self.sections.iter().filter_map(|&(oi, idx)| {
            let (part, _) = *self.place.get(&(oi, idx))?;
            match self.addr(&Resolved::In(oi, idx, 0))? {
                Target::Local(at) => Some(((oi, idx), part, at)),
                _ => None,
            }
        })
    }
}

/// `v` rounded up to a multiple of `a`, within [`MAX_MODULE`].
fn round(v: u64, a: u64) -> Result<u64, LinkError> {
    v.checked_next_multiple_of(a.max(1))
        .filter(|&r| r <= MAX_MODULE)
        .ok_or_else(|| LinkError(format!("module too large (over {MAX_MODULE} bytes)")))
}

/// `a + b`, within [`MAX_MODULE`].
fn grow(a: u64, b: u64) -> Result<u64, LinkError> {
    a.checked_add(b)
        .filter(|&r| r <= MAX_MODULE)
        .ok_or_else(|| LinkError(format!("module too large (over {MAX_MODULE} bytes)")))
}

/// Lays out what GC kept for backend `m`, whose addresses are `word`
/// bytes.
pub(super) fn layout(
    syms: &Symbols<'_>,
    live: Live,
    m: &dyn Machine,
    word: u64,
) -> Result<Layout, LinkError> {
    let sections = live.sections;
    let order = Order::new(syms, &sections);
    let mut parts = place(syms, &order.sections)?;
    let needs = needs(syms, &sections, &parts, m)?;
    let islands = islands(syms, &order, &mut parts, &needs, m)?;
    let bounds = order.bounds(syms, &parts)?;
    let commons = place_commons(syms, &live.commons, &mut parts)?;
    let in_text = |r: &Resolved| match r {
        Resolved::In(oi, idx, _) => {
            matches!(parts.place.get(&(*oi, *idx)), Some((Part::Text, _)))
        }
        _ => false,
    };
    let ctors::Functions { init, fini } = ctors::functions(syms, &sections, in_text)?;

    // Stubs and the functions the linker writes after the text.
    let stub_start = round(parts.sizes[0], 16)?;
    let stubs: BTreeMap<String, u64> = needs
        .stubs
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), stub_start + i as u64 * m.stub_size()))
        .collect();
    let abs_start = stub_start + stubs.len() as u64 * m.stub_size();
    let abs_stubs: BTreeMap<u64, u64> = needs
        .abs_stubs
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, abs_start + i as u64 * m.abs_stub_size()))
        .collect();
    let mut text_end = abs_start + abs_stubs.len() as u64 * m.abs_stub_size();
    let mut synth = BTreeMap::new();
    for &f in &needs.synth {
        text_end = round(text_end, 16)?;
        synth.insert(f, text_end);
        text_end = grow(
            text_end,
            match f {
                SynthFn::AtExit => m.atexit_size(),
            },
        )?;
    }
    // Data starts on a page, and on its strictest alignment.
    let align = parts.align;
    let dataoff = round(text_end, m.page_size().max(align[1]).max(align[2]))?;
    let got_start = round(parts.sizes[1], word)?;
    let data_len = grow(got_start, word * needs.got.len() as u64)?;
    let bss_start = round(data_len, align[2])?;
    let image_end = grow(grow(dataoff, bss_start)?, parts.sizes[2])?;
    let got = needs
        .got
        .into_iter()
        .enumerate()
        .map(|(i, k)| (dataoff + got_start + word * i as u64, k))
        .collect();
    Ok(Layout {
        sections,
        place: parts.place,
        align,
        bounds,
        commons,
        stubs,
        abs_stubs,
        islands,
        got,
        synth,
        init,
        fini,
        text_end,
        dataoff,
        got_start,
        data_len,
        bss_start,
        image_end,
    })
}

/// The order sections are placed in: object and section order, except
/// that the sections of a name that `__start_`/`__stop_` symbols bound
/// follow the first of them, so that they are placed together.
struct Order {
    sections: Vec<SectionId>,
    /// The sections that continue a bounded run (no island goes before
    /// them).
    inside: std::collections::HashSet<SectionId>,
    /// Each bounded name's sections, in placement order.
    runs: BTreeMap<String, Vec<SectionId>>,
}

impl Order {
    fn new(syms: &Symbols<'_>, sections: &[SectionId]) -> Order {
        let live: std::collections::HashSet<SectionId> = sections.iter().copied().collect();
        let mut run_of: HashMap<SectionId, &str> = HashMap::new();
        let mut runs: BTreeMap<String, Vec<SectionId>> = BTreeMap::new();
        for (name, ids) in &syms.bounded {
            let kept: Vec<SectionId> = ids.iter().copied().filter(|id| live.contains(id)).collect();
            for id in &kept {
                run_of.insert(*id, name);
            }
            if !kept.is_empty() {
                runs.insert(name.clone(), kept);
            }
        }
        let mut order = Order {
            sections: Vec::with_capacity(sections.len()),
            inside: std::collections::HashSet::new(),
            runs: BTreeMap::new(),
        };
        let mut done = std::collections::HashSet::new();
        for id in sections {
            match run_of.get(id) {
                None => order.sections.push(*id),
                Some(name) if done.insert(*name) => {
                    let run = &runs[*name];
                    order.sections.extend(run);
                    order.inside.extend(run.iter().skip(1));
                }
                Some(_) => {}
            }
        }
        order.runs = runs;
        order
    }

    /// Where each bounded run lies: its part, and the offsets in it of its
    /// start and end. A run's sections must all go to one part.
    fn bounds(
        &self,
        syms: &Symbols<'_>,
        parts: &Parts,
    ) -> Result<HashMap<String, (Part, u64, u64)>, LinkError> {
        let mut out = HashMap::new();
        for (name, run) in &self.runs {
            let mut span: Option<(Part, u64, u64)> = None;
            for &(oi, idx) in run {
                let Some(&(part, at)) = parts.place.get(&(oi, idx)) else {
                    continue;
                };
                let end = at + syms.objs[oi].section_size(idx);
                span = match span {
                    None => Some((part, at, end)),
                    Some((p, start, _)) if p == part => Some((p, start, end)),
                    Some((p, ..)) => fail!(
                        "{}: section {name} goes to the {}, other sections named {name} to the {}: __start_{name} and __stop_{name} need them in one (all read-only, all writable or all zero-filled)",
                        syms.objs[oi].name,
                        part.name(),
                        p.name()
                    ),
                };
            }
            if let Some(span) = span {
                out.insert(name.clone(), span);
            }
        }
        Ok(out)
    }
}

/// Sections placed within their parts.
struct Parts {
    /// Each section's part and offset in it.
    place: HashMap<SectionId, (Part, u64)>,
    /// Bytes in each part so far.
    sizes: [u64; 3],
    /// The strictest alignment in each part so far.
    align: [u64; 3],
}

/// Places each section that takes space in its part, in order.
fn place(syms: &Symbols<'_>, sections: &[SectionId]) -> Result<Parts, LinkError> {
    let mut parts = Parts {
        place: HashMap::new(),
        sizes: [0; 3],
        align: [1; 3],
    };
    for &(oi, idx) in sections {
        let o = &syms.objs[oi];
        let s = o.section(idx)?;
        let Some(part) = part_of(o, &s)? else {
            continue;
        };
        let p = part.index();
        let a = s.align().max(1);
        if !a.is_power_of_two() || a > 1 << 16 {
            fail!(
                "{}: section {}: alignment {a} not supported",
                o.name,
                s.name().unwrap_or("")
            );
        }
        parts.sizes[p] = round(parts.sizes[p], a)?;
        parts.place.insert((oi, idx), (part, parts.sizes[p]));
        parts.sizes[p] = grow(parts.sizes[p], s.size())?;
        parts.align[p] = parts.align[p].max(a);
    }
    Ok(parts)
}

/// What the placed sections' relocations need made.
struct Needs {
    /// Imports called: each gets a stub (and a GOT slot).
    stubs: BTreeSet<String>,
    /// Absolute addresses called (weak functions nothing defines, at 0).
    abs_stubs: BTreeSet<u64>,
    /// Targets reached through the GOT.
    got: BTreeSet<Resolved>,
    /// Calls inside the module, by target and addend (for veneers).
    far_calls: BTreeSet<(Resolved, i64)>,
    /// Functions the linker writes.
    synth: BTreeSet<SynthFn>,
}

/// Collects what the placed sections' relocations need made.
fn needs(
    syms: &Symbols<'_>,
    sections: &[SectionId],
    parts: &Parts,
    m: &dyn Machine,
) -> Result<Needs, LinkError> {
    let mut needs = Needs {
        stubs: BTreeSet::new(),
        abs_stubs: BTreeSet::new(),
        got: BTreeSet::new(),
        far_calls: BTreeSet::new(),
        synth: BTreeSet::new(),
    };
    for &(oi, idx) in sections.iter().filter(|id| parts.place.contains_key(id)) {
        let s = syms.objs[oi].section(idx)?;
        for (off, r) in s.relocations() {
            let (RelocationFlags::Elf { r_type }, RelocationTarget::Symbol(si)) =
                (r.flags(), r.target())
            else {
                continue;
            };
            let res = syms.resolve(oi, si)?;
            if let Resolved::Synth(f) = res {
                needs.synth.insert(f);
            }
            if let (Need::Stub, Resolved::In(..) | Resolved::Synth(_), Some(_)) =
                (m.needs(r_type), &res, m.branch_reach())
            {
                // A call inside the module: it may need a veneer if the
                // text outgrows the branch's reach.
                let field = usize::try_from(off)
                    .ok()
                    .and_then(|o| s.data().ok()?.get(o..o.checked_add(4)?));
                let a = if r.has_implicit_addend() {
                    field.map_or(0, |f| m.call_addend(r_type, f))
                } else {
                    r.addend()
                };
                needs.far_calls.insert((res.clone(), a));
            }
            match m.needs(r_type) {
                Need::Got => {
                    needs.got.insert(res);
                }
                Need::Stub => match &res {
                    Resolved::Import(n) => {
                        needs.stubs.insert(n.clone());
                        needs.got.insert(res);
                    }
                    Resolved::Abs(v) => {
                        needs.abs_stubs.insert(*v);
                    }
                    _ => {}
                },
                Need::None => {}
            }
        }
    }
    // What the written functions call: `atexit` tail-calls the
    // `__cxa_atexit` import through its stub.
    if needs.synth.contains(&SynthFn::AtExit) {
        needs.stubs.insert(CXA_ATEXIT.to_owned());
        needs.got.insert(Resolved::Import(CXA_ATEXIT.to_owned()));
    }
    Ok(needs)
}

/// Text beyond a direct call's reach: lays the text out again with an
/// island before every stretch of half the reach, each island holding a
/// veneer for every call target inside the module and a copy of every
/// import's stub, so every call site has an island within reach.
fn islands(
    syms: &Symbols<'_>,
    order: &Order,
    parts: &mut Parts,
    needs: &Needs,
    m: &dyn Machine,
) -> Result<Vec<(u64, IslandEntry)>, LinkError> {
    let veneers_len = m.veneer_size() * needs.far_calls.len() as u64;
    let island_len = veneers_len + m.stub_size() * needs.stubs.len() as u64;
    let chunk = match m.branch_reach() {
        Some(reach) if island_len > 0 && parts.sizes[0] >= reach / 2 => reach / 2,
        _ => return Ok(Vec::new()),
    };
    let mut at: Vec<u64> = Vec::new();
    let mut off = 0u64;
    let mut last: Option<u64> = None;
    for id in &order.sections {
        let Some(&(Part::Text, _)) = parts.place.get(id) else {
            continue;
        };
        let s = syms.objs[id.0].section(id.1)?;
        let start = round(off, s.align().max(1))?;
        // No island inside a run of sections that __start_/__stop_
        // symbols bound.
        let may_break = !order.inside.contains(id);
        if last.is_none_or(|l| may_break && start.saturating_add(s.size()) - l > chunk) {
            off = round(off, 16)?;
            at.push(off);
            last = Some(off);
            off = grow(off, island_len)?;
        }
        off = round(off, s.align().max(1))?;
        parts.place.insert(*id, (Part::Text, off));
        off = grow(off, s.size())?;
    }
    parts.sizes[0] = off;
    let mut entries = Vec::new();
    for island in at {
        for (i, (target, addend)) in needs.far_calls.iter().enumerate() {
            let veneer = IslandEntry::Veneer {
                target: target.clone(),
                addend: *addend,
            };
            entries.push((island + i as u64 * m.veneer_size(), veneer));
        }
        for (j, n) in needs.stubs.iter().enumerate() {
            let copy = IslandEntry::Stub(n.clone());
            entries.push((island + veneers_len + j as u64 * m.stub_size(), copy));
        }
    }
    Ok(entries)
}

/// Places the common symbols used in the bss, after its sections: offset
/// in the bss and size of each.
fn place_commons(
    syms: &Symbols<'_>,
    used: &BTreeSet<String>,
    parts: &mut Parts,
) -> Result<HashMap<String, (u64, u64)>, LinkError> {
    let mut at = HashMap::new();
    for name in used {
        if let Some(Def::Common { size, align, .. }) = syms.globals.get(name) {
            if !align.is_power_of_two() || *align > 1 << 16 {
                fail!("common symbol {name}: alignment {align} not supported");
            }
            parts.sizes[2] = round(parts.sizes[2], *align)?;
            at.insert(name.clone(), (parts.sizes[2], *size));
            parts.sizes[2] = grow(parts.sizes[2], *size)?;
            parts.align[2] = parts.align[2].max(*align);
        }
    }
    Ok(at)
}
