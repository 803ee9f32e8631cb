//! `aout stubs`: a host's stub table for a module, from a description file,
//! as Rust (a `dynld::stubs!` invocation) or as C (a header and a source,
//! the seed's `stub_modmeta.c`).
//!
//! The file, a statement a line (blank lines and `#` comments skipped):
//!
//! ```text
//! module NAME VERSION CLASS
//! stub  FUNC RETFUNC DESC
//! ustub FUNC RETFUNC ARGNWORD DESC
//! wstub FUNC RETFUNC [ARGNWORD] DESC
//! ```
//!
//! `module` comes first and once; VERSION is a version range the module
//! must meet (`1.2` accepts 1.2 and later 1.x, as in `DYNLD_DEPENDS`, `*`
//! any) and CLASS the class it must declare (`*` any). DESC is the
//! function's type description (see `dynld(3)`), which must be a function
//! type. ARGNWORD is the number of stack words a `ustub` or `wstub` copies
//! for each call (an upper bound on what the function takes on the stack).

use crate::desc::{ident, parse_ty, render, Ty};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One autoload statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    /// `stub`, `ustub` or `wstub`.
    pub kind: String,
    /// The function, in the module.
    pub func: String,
    /// What calls go to when it cannot be reached.
    pub retfunc: String,
    /// Stack words forwarded (`ustub`, `wstub`).
    pub argnword: u16,
    /// The function's type, canonical.
    pub desc: String,
    ty: Ty,
}

/// A parsed description file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubFile {
    /// The module's name.
    pub module: String,
    /// The versions accepted ("" for any).
    pub version: String,
    /// The class required ("" for any).
    pub class: String,
    /// The statements, in file order.
    pub stmts: Vec<Stmt>,
}

/// Parses a description file; errors name the line.
pub fn parse(text: &str) -> Result<StubFile, String> {
    let mut file: Option<StubFile> = None;
    let mut seen = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let kw = words.next().unwrap_or("");
        if kw == "module" {
            let w: Vec<&str> = words.collect();
            let [name, version, class] = w[..] else {
                return Err(at("expected: module NAME VERSION CLASS".into()));
            };
            if file.is_some() {
                return Err(at("a second module statement".into()));
            }
            if name.is_empty() || name.len() > 48 || name.contains(['/', '\0']) || !ident(name) {
                return Err(at(format!("bad module name {name:?}")));
            }
            let version = if version == "*" { "" } else { version };
            if !version.is_empty() && dynld::meta::VersionRange::parse(version).is_none() {
                return Err(at(format!("bad version range {version:?}")));
            }
            let class = if class == "*" { "" } else { class };
            if !class.is_empty() && !ident(class) {
                return Err(at(format!("bad class {class:?}")));
            }
            file = Some(StubFile {
                module: name.into(),
                version: version.into(),
                class: class.into(),
                stmts: Vec::new(),
            });
            continue;
        }
        if !matches!(kw, "stub" | "ustub" | "wstub") {
            return Err(at(format!(
                "unknown statement {kw:?} (module, stub, ustub or wstub)"
            )));
        }
        let Some(f) = file.as_mut() else {
            return Err(at("the module statement must come first".into()));
        };
        let rest = line[kw.len()..].trim_start();
        let mut it = rest.splitn(3, char::is_whitespace);
        let (Some(func), Some(retfunc), Some(mut rest)) = (it.next(), it.next(), it.next()) else {
            return Err(at(format!("expected: {kw} FUNC RETFUNC ... DESC")));
        };
        for name in [func, retfunc] {
            if !ident(name) {
                return Err(at(format!("{name:?} is not an identifier")));
            }
        }
        let mut argnword = 0u16;
        let first = rest.split_whitespace().next().unwrap_or("");
        if kw != "stub" && first.bytes().all(|c| c.is_ascii_digit()) && !first.is_empty() {
            argnword = first
                .parse()
                .map_err(|_| at(format!("ARGNWORD {first} is more than 65535")))?;
            rest = rest[first.len()..].trim_start();
        } else if kw == "ustub" {
            return Err(at("expected: ustub FUNC RETFUNC ARGNWORD DESC".into()));
        }
        let ty = parse_ty(rest).map_err(|e| at(format!("{func}: {e} in {rest:?}")))?;
        if !matches!(ty, Ty::Fn(..)) {
            return Err(at(format!("{func}: {rest:?} is not a function type")));
        }
        if !seen.insert(func.to_owned()) {
            return Err(at(format!("{func} has two statements")));
        }
        f.stmts.push(Stmt {
            kind: kw.into(),
            func: func.into(),
            retfunc: retfunc.into(),
            argnword,
            desc: render(&ty),
            ty,
        });
    }
    let f = file.ok_or("no module statement")?;
    if f.stmts.is_empty() {
        return Err("no stub statements".into());
    }
    Ok(f)
}

/// The structs and enums the statements' types name, by Rust type name,
/// with their full descriptions (a struct's body given where it is first
/// met).
fn named_types(f: &StubFile) -> Result<BTreeMap<String, String>, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    fn walk(t: &Ty, out: &mut BTreeMap<String, String>) -> Result<(), String> {
        match t {
            Ty::Scalar(_) => Ok(()),
            Ty::Ptr(x) | Ty::Arr(_, x) => walk(x, out),
            Ty::Fn(ps, _, r) => {
                for p in ps {
                    walk(p, out)?;
                }
                walk(r, out)
            }
            Ty::Enum(tag) => {
                let name = format!("Enum_{}", tag.as_deref().unwrap_or("anon"));
                out.entry(name).or_insert_with(|| render(t));
                Ok(())
            }
            Ty::Su(_, tag, body) => {
                let Some(tag) = tag else {
                    return Err(format!(
                        "an untagged struct ({}) cannot be named in Rust or C",
                        render(t)
                    ));
                };
                if let Some(ms) = body {
                    match out.get(tag) {
                        Some(d) if d.contains('{') && *d != render(t) => {
                            return Err(format!(
                                "struct {tag} is given two bodies: {d:?} and {:?}",
                                render(t)
                            ))
                        }
                        _ => {
                            out.insert(tag.clone(), render(t));
                        }
                    }
                    for m in ms {
                        walk(m, out)?;
                    }
                } else {
                    out.entry(tag.clone()).or_insert_with(|| render(t));
                }
                Ok(())
            }
        }
    }
    for s in &f.stmts {
        walk(&s.ty, &mut out)?;
    }
    Ok(out)
}

fn rust_ty(t: &Ty) -> Result<String, String> {
    Ok(match t {
        Ty::Scalar(s) => match s.as_str() {
            "char" => "i8",
            "uchar" => "u8",
            "short" => "i16",
            "ushort" => "u16",
            "int" => "i32",
            "uint" => "u32",
            // Plan 9's 32-bit long: isize is `long` on 32-bit targets only,
            // which the table's signature check enforces.
            "long" => "isize",
            "ulong" => "usize",
            "vlong" => "i64",
            "uvlong" => "u64",
            "float" => "f32",
            "double" => "f64",
            "void" => "()",
            _ => return Err(format!("unknown scalar {s}")),
        }
        .into(),
        Ty::Ptr(x) => match &**x {
            Ty::Fn(..) => rust_fn(x)?,
            _ => format!("*mut {}", rust_ty(x)?),
        },
        Ty::Arr(n, x) => format!("[{}; {}]", rust_ty(x)?, n.unwrap_or(0)),
        Ty::Fn(..) => return Err("a function type where a value is needed".into()),
        Ty::Su(_, Some(tag), _) => tag.clone(),
        Ty::Su(_, None, _) => return Err("an untagged struct".into()),
        Ty::Enum(tag) => format!("Enum_{}", tag.as_deref().unwrap_or("anon")),
    })
}

fn rust_fn(t: &Ty) -> Result<String, String> {
    let Ty::Fn(ps, dots, r) = t else {
        return Err("not a function".into());
    };
    if *dots {
        return Err("a variadic function has no Rust signature (Signof)".into());
    }
    let mut v = Vec::new();
    for p in ps {
        if *p == Ty::Scalar("void".into()) && ps.len() == 1 {
            continue;
        }
        v.push(rust_ty(p)?);
    }
    let ret = match &**r {
        Ty::Scalar(s) if s == "void" => String::new(),
        r => format!(" -> {}", rust_ty(r)?),
    };
    Ok(format!("extern \"C\" fn({}){ret}", v.join(", ")))
}

fn c_scalar(s: &str) -> &'static str {
    match s {
        "char" => "signed char",
        "uchar" => "unsigned char",
        "short" => "short",
        "ushort" => "unsigned short",
        "int" => "int",
        "uint" => "unsigned int",
        "long" => "long",
        "ulong" => "unsigned long",
        "vlong" => "long long",
        "uvlong" => "unsigned long long",
        "float" => "float",
        "double" => "double",
        _ => "void",
    }
}

/// A C declaration of `inner` (a name, or an abstract declarator) of type
/// `t`.
fn c_decl(t: &Ty, inner: &str) -> String {
    let join = |base: &str, inner: &str| {
        if inner.is_empty() {
            base.to_owned()
        } else {
            format!("{base} {inner}")
        }
    };
    match t {
        Ty::Scalar(s) => join(c_scalar(s), inner),
        Ty::Ptr(x) => match &**x {
            Ty::Fn(..) | Ty::Arr(..) => c_decl(x, &format!("(*{inner})")),
            _ => c_decl(x, &format!("*{inner}")),
        },
        Ty::Arr(n, x) => c_decl(
            x,
            &format!("{inner}[{}]", n.map(|n| n.to_string()).unwrap_or_default()),
        ),
        Ty::Fn(ps, dots, r) => {
            let mut v: Vec<String> = ps.iter().map(|p| c_decl(p, "")).collect();
            if *dots {
                v.push("...".into());
            }
            c_decl(r, &format!("{inner}({})", v.join(", ")))
        }
        Ty::Su(u, tag, _) => join(
            &format!(
                "{} {}",
                if *u { "union" } else { "struct" },
                tag.as_deref().unwrap_or("")
            ),
            inner,
        ),
        Ty::Enum(_) => join("int", inner),
    }
}

fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// The Rust form: types for the structs and enums, then a
/// `dynld::stubs!` invocation, to `include!` in the module that defines
/// the RETFUNCs.
pub fn rust(f: &StubFile, source: &str) -> Result<String, String> {
    let mut s = format!(
        "// Generated by `aout stubs` from {source}: autoload stubs for module {}.\n",
        f.module
    );
    for (name, desc) in named_types(f)? {
        let _ = write!(
            s,
            "\n/// `{desc}`, behind pointers only.\n#[allow(non_camel_case_types)]\n#[repr(C)]\npub struct {name} {{\n    _opaque: [u8; 0],\n}}\ndynld::impl_signof!({name} = {desc:?});\n"
        );
    }
    let _ = write!(
        s,
        "\ndynld::stubs! {{\n    /// Module {}.\n    pub module {} = {:?}",
        f.module,
        upper(&f.module),
        f.module
    );
    if !f.version.is_empty() {
        let _ = write!(s, ", version {:?}", f.version);
    }
    if !f.class.is_empty() {
        let _ = write!(s, ", class {:?}", f.class);
    }
    s += ";\n";
    for st in &f.stmts {
        let fty = rust_fn(&st.ty).map_err(|e| format!("{}: {e}", st.func))?;
        let words = match st.kind.as_str() {
            "stub" => String::new(),
            _ => format!(", words {}", st.argnword),
        };
        let _ = writeln!(
            s,
            "    {} {}: {fty} = {:?}, or {}{words};",
            st.kind, st.func, st.desc, st.retfunc
        );
    }
    s += "}\n";
    Ok(s)
}

/// The C form: `(header, source)`. The header declares each function as
/// a macro over its entry's pointer (so `f(1, 2)` calls through it), the
/// RETFUNCs' prototypes, and the module; the source defines the entries,
/// their stubs and the module.
pub fn c(f: &StubFile, source: &str, header_name: &str) -> Result<(String, String), String> {
    let m = &f.module;
    let guard = format!("{}_STUBS_H", upper(m));
    let mut h = format!(
        "/* Generated by `aout stubs` from {source}: autoload stubs for module {m}. */\n#ifndef {guard}\n#define {guard}\n#include \"dynld.h\"\n\n"
    );
    for (name, _) in named_types(f)? {
        if !name.starts_with("Enum_") {
            let _ = writeln!(h, "struct {name};");
        }
    }
    let _ = writeln!(h, "\nextern struct dynld_stub_module {m}_stubs;\n");
    let mut c = format!(
        "/* Generated by `aout stubs` from {source}: the entries of module {m}. */\n#include \"{header_name}\"\n\n"
    );
    for st in &f.stmts {
        let func = &st.func;
        let entry = format!("{m}_stub_{func}");
        let sym = format!("dynld_stub_{m}_{func}");
        let slot = c_decl(&st.ty, "(*volatile slot)");
        let _ = writeln!(
            h,
            "/* {} {func} {}{}: {} */\nstruct {entry} {{\n\t{slot};\n\tDYNLD_STUB_ENTRY_FIELDS;\n}};\nextern struct {entry} {entry};\n#define {func} ({entry}.slot)\n{};\n",
            st.kind,
            st.retfunc,
            if st.kind == "stub" {
                String::new()
            } else {
                format!(" {}", st.argnword)
            },
            st.desc,
            c_decl(&st.ty, &st.retfunc)
        );
        let kind = match st.kind.as_str() {
            "stub" => 0,
            "ustub" => 1,
            _ => 2,
        };
        let tramp = if kind == 0 {
            "dynld_stub_tail"
        } else {
            "dynld_stub_wrap"
        };
        let cast = c_decl(&st.ty, "(*)");
        let _ = writeln!(
            c,
            "extern void {sym}(void);\nDYNLD_STUB_CODE({sym}, {entry}, {tramp});\nstruct {entry} {entry} = {{\n\t({cast}){sym},\n\t{sym},\n\t(void (*)(void)){},\n\t\"{func}\",\n\t&{m}_stubs,\n\t0,\n\t{:#010x}u,\n\t{},\n\t{kind},\n}};\n",
            st.retfunc,
            dynld::sig::hash(&st.desc).map_err(|e| e.to_string())?,
            st.argnword
        );
    }
    h += "#endif\n";
    let list: Vec<String> = f
        .stmts
        .iter()
        .map(|st| format!("\t(struct dynld_stub_entry *)&{m}_stub_{},\n", st.func))
        .collect();
    let _ = write!(
        c,
        "static struct dynld_stub_entry *const {m}_entries[] = {{\n{}}};\n\nstruct dynld_stub_module {m}_stubs = {{\n\t\"{m}\",\n\t\"{}\",\n\t\"{}\",\n\t{m}_entries,\n\t{},\n\t0,\n\t0,\n}};\n",
        list.concat(),
        f.version,
        f.class,
        f.stmts.len()
    );
    Ok((h, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# cmath's stubs\nmodule cmath 1.0 math\nstub cm_add add_failed fn(int, int) int\nustub cm_node node_failed 2 fn(*struct node { int, *struct node }, *fn(int) int) *void\nwstub cm_log log_absent fn(double) double\n";

    #[test]
    fn parses_and_renders() {
        let f = parse(FILE).unwrap();
        assert_eq!(f.module, "cmath");
        assert_eq!(f.stmts.len(), 3);
        assert_eq!(f.stmts[1].argnword, 2);
        let r = rust(&f, "cmath.stubs").unwrap();
        assert!(r.contains("ustub cm_node: extern \"C\" fn(*mut node, extern \"C\" fn(i32) -> i32) -> *mut () = \"fn(*struct node { int, *struct node }, *fn(int) int) *void\", or node_failed, words 2;"), "{r}");
        assert!(
            r.contains("dynld::impl_signof!(node = \"struct node { int, *struct node }\");"),
            "{r}"
        );
        let (h, c) = c(&f, "cmath.stubs", "cmath_stubs.h").unwrap();
        assert!(
            h.contains("void *node_failed(struct node *, int (*)(int));"),
            "{h}"
        );
        assert!(
            h.contains("\tvoid *(*volatile slot)(struct node *, int (*)(int));"),
            "{h}"
        );
        assert!(
            c.contains(
                "DYNLD_STUB_CODE(dynld_stub_cmath_cm_add, cmath_stub_cm_add, dynld_stub_tail);"
            ),
            "{c}"
        );
    }

    #[test]
    fn refuses_bad_files() {
        for (bad, why) in [
            ("stub f g fn(int) int\n", "must come first"),
            ("module m 1.0 x\nmodule m 1.0 x\n", "second module"),
            ("module m 1.0 x\nustub f g fn(int) int\n", "ARGNWORD"),
            ("module m 1.0 x\nstub f g int\n", "not a function"),
            ("module m 1.0 x\nstub f g fn(int\n", "bad type"),
            (
                "module m 1.0 x\nstub f g fn(int) int\nstub f g fn(int) int\n",
                "two statements",
            ),
            ("module m 1.0 x\nwstub f g 70000 fn(int) int\n", "65535"),
            ("module m x.y x\nstub f g fn(int) int\n", "version"),
            (
                "module m 1.0 x\nload f g fn(int) int\n",
                "unknown statement",
            ),
            ("module m 1.0 x\n", "no stub"),
            ("module m/x 1.0 x\nstub f g fn(int) int\n", "module name"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
