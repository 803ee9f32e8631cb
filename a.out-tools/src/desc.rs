//! Type descriptions (the grammar of `dynld(3)`) as trees: read once
//! `dynld::sig::hash` has accepted them, and written back in one canonical
//! spelling. `aout exports` writes descriptions this way, `aout stubs`
//! also turns them into Rust and C types.

use std::fmt::Write as _;

/// A type of the description grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Scalar(String),
    Ptr(Box<Ty>),
    Arr(Option<u64>, Box<Ty>),
    Fn(Vec<Ty>, bool, Box<Ty>),
    /// struct or union: union?, tag, body.
    Su(bool, Option<String>, Option<Vec<Ty>>),
    Enum(Option<String>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.ws();
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i] == b'_' || self.s[self.i].is_ascii_alphanumeric())
        {
            self.i += 1;
        }
        (self.i > st).then(|| String::from_utf8_lossy(&self.s[st..self.i]).into_owned())
    }
    fn ty(&mut self, depth: usize) -> Result<Ty, String> {
        if depth > dynld::sig::MAX_DEPTH * 4 {
            return Err("type nested too deeply".into());
        }
        if self.eat(b'*') {
            return Ok(Ty::Ptr(Box::new(self.ty(depth + 1)?)));
        }
        if self.eat(b'[') {
            self.ws();
            let st = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let n = std::str::from_utf8(&self.s[st..self.i])
                .ok()
                .and_then(|d| d.parse().ok());
            if !self.eat(b']') {
                return Err("expected ]".into());
            }
            return Ok(Ty::Arr(n, Box::new(self.ty(depth + 1)?)));
        }
        let w = self.ident().ok_or("expected a type")?;
        match w.as_str() {
            "fn" => {
                if !self.eat(b'(') {
                    return Err("expected (".into());
                }
                let mut ps = Vec::new();
                let mut dots = false;
                if !self.eat(b')') {
                    loop {
                        self.ws();
                        if self.s[self.i..].starts_with(b"...") {
                            self.i += 3;
                            dots = true;
                        } else {
                            ps.push(self.ty(depth + 1)?);
                        }
                        if self.eat(b',') {
                            continue;
                        }
                        if !self.eat(b')') {
                            return Err("expected )".into());
                        }
                        break;
                    }
                }
                Ok(Ty::Fn(ps, dots, Box::new(self.ty(depth + 1)?)))
            }
            "struct" | "union" => {
                let tag = self.ident();
                let body = if self.eat(b'{') {
                    let mut ms = Vec::new();
                    if !self.eat(b'}') {
                        loop {
                            ms.push(self.ty(depth + 1)?);
                            if self.eat(b',') {
                                continue;
                            }
                            if !self.eat(b'}') {
                                return Err("expected }".into());
                            }
                            break;
                        }
                    }
                    Some(ms)
                } else {
                    None
                };
                Ok(Ty::Su(w == "union", tag, body))
            }
            "enum" => Ok(Ty::Enum(self.ident())),
            _ => Ok(Ty::Scalar(w)),
        }
    }
}

pub(crate) fn parse_ty(desc: &str) -> Result<Ty, String> {
    dynld::sig::hash(desc).map_err(|e| e.to_string())?;
    let mut p = P {
        s: desc.as_bytes(),
        i: 0,
    };
    p.ty(0)
}

pub(crate) fn ident(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// The canonical description of a type.
pub(crate) fn render(t: &Ty) -> String {
    match t {
        Ty::Scalar(s) => s.clone(),
        Ty::Ptr(x) => format!("*{}", render(x)),
        Ty::Arr(n, x) => format!(
            "[{}]{}",
            n.map(|n| n.to_string()).unwrap_or_default(),
            render(x)
        ),
        Ty::Fn(ps, dots, r) => {
            let mut v: Vec<String> = ps.iter().map(render).collect();
            if *dots {
                v.push("...".into());
            }
            format!("fn({}) {}", v.join(", "), render(r))
        }
        Ty::Su(u, tag, body) => {
            let mut s = String::from(if *u { "union" } else { "struct" });
            if let Some(t) = tag {
                s += " ";
                s += t;
            }
            if let Some(ms) = body {
                let v: Vec<String> = ms.iter().map(render).collect();
                if v.is_empty() {
                    s += " {}";
                } else {
                    let _ = write!(s, " {{ {} }}", v.join(", "));
                }
            }
            s
        }
        Ty::Enum(tag) => match tag {
            Some(t) => format!("enum {t}"),
            None => "enum".into(),
        },
    }
}

/// A description that [`dynld::sig::hash`] accepts, rebuilt from its tree
/// (`fn(*char, ...) int`): only identifiers, digits and `*[](){},.` reach
/// the output, which can end neither a comment nor a string.
pub(crate) fn canonical(desc: &str) -> Result<String, String> {
    parse_ty(desc).map(|t| render(&t))
}
