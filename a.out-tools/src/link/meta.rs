//! The module's metadata: the `.dynld.module` sections of the objects
//! linked, gathered by [`crate::modsec`], with the setup and teardown
//! functions checked against the symbols and the signatures stated.

use super::obj::{is_global, sym_type};
use super::resolve::{Def, Symbols};
use super::{fail, LinkError};
use crate::modsec::{self, MetaTable};
use crate::sigsec::SigTable;
use dynld::meta::{MetaSpec, SETUP_DESC, SETUP_SIG, TEARDOWN_DESC, TEARDOWN_SIG};
use object::{Object, ObjectSection, ObjectSymbol, SymbolSection};

/// The metadata the objects state, if any. Its setup and teardown
/// functions must be global functions the link defines, stated (if at
/// all) with their type; they become exports, and those stated without
/// a signature get theirs in `sigs`, since the metadata gives their type.
pub(super) fn metadata(
    syms: &Symbols<'_>,
    sigs: &mut SigTable,
) -> Result<Option<MetaSpec>, LinkError> {
    let mut table = MetaTable::default();
    for o in &syms.objs {
        for s in o.file.sections() {
            if s.name() == Ok(modsec::SECTION) {
                let data = s
                    .data()
                    .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
                table.add(&o.name, data)?;
            }
        }
    }
    let Some(c) = table.finish()? else {
        return Ok(None);
    };
    let functions = [
        (
            "setup",
            &c.spec.setup,
            &c.setup_origin,
            SETUP_SIG,
            SETUP_DESC,
        ),
        (
            "teardown",
            &c.spec.teardown,
            &c.teardown_origin,
            TEARDOWN_SIG,
            TEARDOWN_DESC,
        ),
    ];
    for (what, f, origin, sig, desc) in functions {
        let Some(f) = f else { continue };
        let origin = origin.as_deref().unwrap_or(&c.origin);
        check_function(syms, origin, what, f)?;
        match sigs.desc(f) {
            Some(stated) if sigs.is_stated(f) && sigs.get(f) != sig => fail!(
                "{origin}: {what} function {f} is stated with type {stated:?} (in {}), but a {what} function's type is {desc:?}",
                sigs.origin(f).unwrap_or("?")
            ),
            Some(_) if sigs.is_stated(f) => {}
            _ => sigs.state_export(origin, f, sig, desc),
        }
    }
    Ok(Some(c.spec))
}

/// Refuses `name`, named as the module's `what` (setup or teardown)
/// function in `origin`, unless the link defines it as a global function.
fn check_function(
    syms: &Symbols<'_>,
    origin: &str,
    what: &str,
    name: &str,
) -> Result<(), LinkError> {
    match syms.globals.get(name) {
        Some(Def::Sym { obj, sym, .. }) => {
            let o = &syms.objs[*obj];
            let s = o
                .file
                .symbol_by_index(*sym)
                .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
            if sym_type(&s) != object::elf::STT_FUNC {
                fail!(
                    "{origin}: {what} function {name} is not a function: {} defines it as data",
                    o.name
                );
            }
            Ok(())
        }
        Some(Def::Common { .. }) => fail!(
            "{origin}: {what} function {name} is not a function: it is a common (uninitialised data) symbol"
        ),
        None => {
            // A local definition of that name: a C `static` function.
            let local = syms.objs.iter().find(|o| {
                o.file.symbols().any(|s| {
                    !is_global(&s)
                        && matches!(s.section(), SymbolSection::Section(_))
                        && s.name_bytes() == Ok(name.as_bytes())
                })
            });
            match local {
                Some(o) => fail!(
                    "{origin}: {what} function {name} is static (local to {}): the module must export it (in C, not static)",
                    o.name
                ),
                None => fail!(
                    "{origin}: {what} function {name} is not defined: no object linked defines a global function of that name (in C, not static; in Rust, #[unsafe(no_mangle)] pub extern \"C\" fn)"
                ),
            }
        }
    }
}
