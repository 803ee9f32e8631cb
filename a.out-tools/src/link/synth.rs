//! What the linker writes itself, before any section: the GOT, the stubs,
//! the veneer islands and the functions it supplies (`atexit`).

use super::image::{Image, Target};
use super::layout::{IslandEntry, Layout};
use super::machine::Machine;
use super::resolve::{Resolved, SynthFn, CXA_ATEXIT, DSO_HANDLE};
use super::{fail, LinkError};

/// An image of `lay`'s size holding the GOT, stubs, islands and written
/// functions, as backend `m` writes them.
pub(super) fn synthesize(lay: &Layout, m: &dyn Machine) -> Result<Image, LinkError> {
    let mut img = Image::new(lay.text_end as usize, lay.data_len as usize, lay.dataoff);
    for (slot, k) in &lay.got {
        let t = lay
            .addr(k)
            .ok_or_else(|| LinkError(format!("GOT entry for a dropped symbol: {k:?}")))?;
        m.write_word(&mut img, *slot, &t)?;
        img.got.insert(t, *slot);
    }
    for (n, at) in &lay.stubs {
        let slot = slot(&img, n)?;
        m.write_stub(&mut img, *at, slot)?;
    }
    for (v, at) in &lay.abs_stubs {
        m.write_abs_stub(&mut img, *at, *v)?;
    }
    for (at, entry) in &lay.islands {
        match entry {
            IslandEntry::Veneer { target, addend } => {
                let Some(Target::Local(v)) = lay.addr(target) else {
                    fail!("call to a dropped section");
                };
                let to = v
                    .checked_add_signed(*addend)
                    .ok_or_else(|| LinkError("call target outside the module".into()))?;
                m.write_veneer(&mut img, *at, to)?;
                img.veneers.entry(to).or_default().push(*at);
            }
            IslandEntry::Stub(n) => {
                let slot = slot(&img, n)?;
                m.write_stub(&mut img, *at, slot)?;
                img.stub_copies.entry(n.clone()).or_default().push(*at);
            }
        }
    }
    for (&f, &at) in &lay.synth {
        match f {
            SynthFn::AtExit => {
                let dso = lay.addr(&Resolved::Common(DSO_HANDLE.to_owned()));
                let Some(Target::Local(dso)) = dso else {
                    fail!("atexit: no {DSO_HANDLE} in the module");
                };
                let stub = lay
                    .stubs
                    .get(CXA_ATEXIT)
                    .copied()
                    .ok_or_else(|| LinkError(format!("atexit: no stub for {CXA_ATEXIT}")))?;
                m.write_atexit(&mut img, at, dso, stub)?;
            }
        }
    }
    Ok(img)
}

/// The GOT slot of import `name`, which every import called has.
fn slot(img: &Image, name: &str) -> Result<u64, LinkError> {
    img.got
        .get(&Target::Import(name.to_owned()))
        .copied()
        .ok_or_else(|| LinkError(format!("no GOT slot for the stub of {name}")))
}
