//! Type signatures: Plan 9's `signof`, computed from a canonical type description.
//!
//! A signature is a 32-bit hash of a type's structure. Plan 9's C compiler
//! computed it from its own type graph; here the same walk runs over a small
//! text description of the type, so Rust (at compile time, through
//! [`Signof`]), C (a description string in the object file, hashed by
//! `aout link`) and the tool all arrive at the same value.
//!
//! # The description grammar
//!
//! ```text
//! type    = scalar
//!         | "*" type                          pointer to type
//!         | "[" [digits] "]" type             array of type (length ignored)
//!         | "fn" "(" [params] ")" type        function returning type
//!         | ("struct" | "union") (tag ["{" members "}"] | "{" members "}")
//!         | "enum" [tag]
//! members = [type {"," type}]
//! params  = type {"," type} ["," "..."] | "..."
//! scalar  = "char" | "uchar" | "short" | "ushort" | "int" | "uint"
//!         | "long" | "ulong" | "vlong" | "uvlong" | "float" | "double" | "void"
//! tag     = identifier
//! ```
//!
//! Blanks between tokens are ignored. A struct or union needs a tag, a body
//! or both; the body of a tag already met in the same description is
//! parsed like any other but ignored by the walk (structs in it are not
//! numbered). At most
//! [`MAX_DEPTH`] levels of nesting and [`MAX_STRUCTS`] structs and unions.
//! `long` is Plan 9's 32-bit `long`;
//! a 64-bit integer is `vlong`. C's `int f(void)` is `fn(void) int` and a
//! pointer to it `*fn(void) int`.
//!
//! # The walk
//!
//! With wrapping 32-bit arithmetic and `s = 0` at the start of each type,
//! every node in the chain mixes `s = s*T1 + K[kind]`; then a pointer goes on
//! to its pointee, an array mixes `s = s*T2 + 0` and goes on to its element,
//! a function mixes `s = s*T3 + sig(p)` for each parameter `p` and goes on to
//! its return type, a scalar stops. A struct or union seen for the first
//! time in this walk is numbered (0, 1, ...) and mixes `s*T3 + sig(m)` for
//! each member, then stops; one already seen (same tag) mixes `s*T2 + number`
//! and stops, so recursive types end; one with a tag, never seen and no body
//! (incomplete) stops after its node. Members' names, tags' spelling and
//! qualifiers do not enter the value. A final 0 becomes [`SIGN_INTERN`].
//!
//! ```
//! use dynld::sig::{hash, Signof};
//! assert_eq!(hash("int"), Ok(0x4151d5bd));
//! assert_eq!(hash("*char"), Ok(0xf2611a7a));
//! assert_eq!(<*const i8 as Signof>::SIG, 0xf2611a7a);
//! assert_eq!(dynld::signof!(extern "C" fn(i32) -> i32), hash("*fn(int) int").unwrap());
//! ```

pub use crate::format::SIGN_INTERN;

/// Multiplier for each node of the type chain.
pub const T1: u32 = 0x2eda_b8c9;
/// Multiplier for array nodes and struct back-references.
pub const T2: u32 = 0x1dc7_4fb8;
/// Multiplier for function parameters and struct members.
pub const T3: u32 = 0x1f24_1331;

/// Per-kind constants (Plan 9's `thash`).
pub mod kind {
    /// `char`
    pub const CHAR: u32 = 0x5ced_d32b;
    /// `uchar`
    pub const UCHAR: u32 = 0x552c_4454;
    /// `short`
    pub const SHORT: u32 = 0x6304_0b4b;
    /// `ushort`
    pub const USHORT: u32 = 0x32a4_5878;
    /// `int`
    pub const INT: u32 = 0x4151_d5bd;
    /// `uint`
    pub const UINT: u32 = 0x5ae7_07d6;
    /// `long` (32-bit)
    pub const LONG: u32 = 0x5ef2_0f47;
    /// `ulong` (32-bit)
    pub const ULONG: u32 = 0x36d8_eb8f;
    /// `vlong`
    pub const VLONG: u32 = 0x6e5e_9590;
    /// `uvlong`
    pub const UVLONG: u32 = 0x7591_0105;
    /// `float`
    pub const FLOAT: u32 = 0x25fd_7af1;
    /// `double`
    pub const DOUBLE: u32 = 0x7c40_a1b2;
    /// pointer
    pub const POINTER: u32 = 0x1b83_2357;
    /// function
    pub const FUNCTION: u32 = 0x6bab_c9cb;
    /// array
    pub const ARRAY: u32 = 0x7c50_986d;
    /// `void`
    pub const VOID: u32 = 0x4411_2eff;
    /// struct
    pub const STRUCT: u32 = 0x7c2d_a3bf;
    /// union
    pub const UNION: u32 = 0x3eb2_5e98;
    /// enum
    pub const ENUM: u32 = 0x44b5_4f61;
    /// `...`
    pub const DOTS: u32 = 0x0204_f6b3;
}

/// Most distinct structs and unions in one description.
pub const MAX_STRUCTS: usize = 64;
/// Deepest nesting of functions and structs in one description.
pub const MAX_DEPTH: usize = 32;

/// Why a description could not be hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigError {
    /// Unexpected text at this byte offset.
    Syntax(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_STRUCTS`] structs and unions.
    TooManyStructs,
}

impl core::fmt::Display for SigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SigError::Syntax(at) => write!(f, "bad type description at byte {at}"),
            SigError::TooDeep => f.write_str("type description nested too deeply"),
            SigError::TooManyStructs => f.write_str("too many structs in type description"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    tags: [(usize, usize); MAX_STRUCTS],
    ntags: usize,
    depth: usize,
    /// Inside the body of a repeated tag: parsed, not walked.
    ignoring: usize,
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(e),
        }
    };
}

const fn mix(s: u32, mul: u32, add: u32) -> u32 {
    s.wrapping_mul(mul).wrapping_add(add)
}

const fn is_ident(c: u8, first: bool) -> bool {
    c == b'_' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

impl<'a> Parser<'a> {
    const fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    const fn peek(&mut self) -> u8 {
        self.skip_ws();
        if self.i < self.s.len() {
            self.s[self.i]
        } else {
            0
        }
    }

    const fn eat(&mut self, c: u8) -> bool {
        if self.peek() == c {
            self.i += 1;
            true
        } else {
            false
        }
    }

    const fn expect(&mut self, c: u8) -> Result<(), SigError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(SigError::Syntax(self.i))
        }
    }

    /// Returns the (start, len) of an identifier, len 0 if none.
    const fn ident(&mut self) -> (usize, usize) {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() && is_ident(self.s[self.i], self.i == start) {
            self.i += 1;
        }
        (start, self.i - start)
    }

    const fn word_is(&self, w: (usize, usize), lit: &[u8]) -> bool {
        if w.1 != lit.len() {
            return false;
        }
        let mut k = 0;
        while k < lit.len() {
            if self.s[w.0 + k] != lit[k] {
                return false;
            }
            k += 1;
        }
        true
    }

    const fn same_words(&self, a: (usize, usize), b: (usize, usize)) -> bool {
        if a.1 != b.1 {
            return false;
        }
        let mut k = 0;
        while k < a.1 {
            if self.s[a.0 + k] != self.s[b.0 + k] {
                return false;
            }
            k += 1;
        }
        true
    }

    const fn find_tag(&self, tag: (usize, usize)) -> Option<u32> {
        let mut k = 0;
        while k < self.ntags {
            if self.tags[k].1 != 0 && self.same_words(self.tags[k], tag) {
                return Some(k as u32);
            }
            k += 1;
        }
        None
    }

    /// The members of a struct or union after its `{`, through its `}`,
    /// each mixed into `s`.
    const fn members(&mut self, mut s: u32) -> Result<u32, SigError> {
        if self.eat(b'}') {
            return Ok(s);
        }
        loop {
            s = mix(s, T3, tri!(self.signat()));
            if self.eat(b',') {
                continue;
            }
            tri!(self.expect(b'}'));
            return Ok(s);
        }
    }

    const fn scalar(&self, w: (usize, usize)) -> Option<u32> {
        let table: [(&[u8], u32); 13] = [
            (b"char", kind::CHAR),
            (b"uchar", kind::UCHAR),
            (b"short", kind::SHORT),
            (b"ushort", kind::USHORT),
            (b"int", kind::INT),
            (b"uint", kind::UINT),
            (b"long", kind::LONG),
            (b"ulong", kind::ULONG),
            (b"vlong", kind::VLONG),
            (b"uvlong", kind::UVLONG),
            (b"float", kind::FLOAT),
            (b"double", kind::DOUBLE),
            (b"void", kind::VOID),
        ];
        let mut k = 0;
        while k < table.len() {
            if self.word_is(w, table[k].0) {
                return Some(table[k].1);
            }
            k += 1;
        }
        None
    }

    /// Plan 9's `signat`: the signature of the type starting here.
    const fn signat(&mut self) -> Result<u32, SigError> {
        if self.depth >= MAX_DEPTH {
            return Err(SigError::TooDeep);
        }
        self.depth += 1;
        let mut s = 0u32;
        loop {
            if self.eat(b'*') {
                s = mix(s, T1, kind::POINTER);
                continue;
            }
            if self.eat(b'[') {
                self.skip_ws();
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                tri!(self.expect(b']'));
                s = mix(mix(s, T1, kind::ARRAY), T2, 0);
                continue;
            }
            let w = self.ident();
            if w.1 == 0 {
                return Err(SigError::Syntax(self.i));
            }
            if self.word_is(w, b"fn") {
                s = mix(s, T1, kind::FUNCTION);
                tri!(self.expect(b'('));
                if !self.eat(b')') {
                    loop {
                        let p = if self.peek() == b'.' {
                            tri!(self.dots())
                        } else {
                            tri!(self.signat())
                        };
                        s = mix(s, T3, p);
                        if self.eat(b',') {
                            continue;
                        }
                        tri!(self.expect(b')'));
                        break;
                    }
                }
                continue;
            }
            let su = if self.word_is(w, b"struct") {
                kind::STRUCT
            } else if self.word_is(w, b"union") {
                kind::UNION
            } else {
                0
            };
            if su != 0 {
                s = mix(s, T1, su);
                let tag = self.ident();
                let seen = if tag.1 != 0 { self.find_tag(tag) } else { None };
                if seen.is_some() || self.ignoring > 0 {
                    // The walk stops at a tag already met, but its body, if
                    // given, must be well-formed like any other. Nothing in
                    // it is numbered or remembered, as the walk never sees
                    // it.
                    if self.eat(b'{') {
                        self.ignoring += 1;
                        let r = self.members(0);
                        self.ignoring -= 1;
                        tri!(r);
                    } else if tag.1 == 0 {
                        return Err(SigError::Syntax(self.i));
                    }
                    self.depth -= 1;
                    return Ok(match seen {
                        Some(n) => mix(s, T2, n),
                        None => s,
                    });
                }
                if self.eat(b'{') {
                    if self.ntags == MAX_STRUCTS {
                        return Err(SigError::TooManyStructs);
                    }
                    self.tags[self.ntags] = tag;
                    self.ntags += 1;
                    s = tri!(self.members(s));
                } else if tag.1 == 0 {
                    return Err(SigError::Syntax(self.i));
                }
                self.depth -= 1;
                return Ok(s);
            }
            if self.word_is(w, b"enum") {
                self.ident();
                self.depth -= 1;
                return Ok(mix(s, T1, kind::ENUM));
            }
            return match self.scalar(w) {
                Some(k) => {
                    self.depth -= 1;
                    Ok(mix(s, T1, k))
                }
                None => Err(SigError::Syntax(w.0)),
            };
        }
    }

    /// `...` as the last parameter.
    const fn dots(&mut self) -> Result<u32, SigError> {
        let mut k = 0;
        while k < 3 {
            if self.i >= self.s.len() || self.s[self.i] != b'.' {
                return Err(SigError::Syntax(self.i));
            }
            self.i += 1;
            k += 1;
        }
        if self.peek() != b')' {
            return Err(SigError::Syntax(self.i));
        }
        Ok(mix(0, T1, kind::DOTS))
    }
}

/// The signature of the type described by `desc` (see the module docs).
pub const fn hash(desc: &str) -> Result<u32, SigError> {
    let mut p = Parser {
        s: desc.as_bytes(),
        i: 0,
        tags: [(0, 0); MAX_STRUCTS],
        ntags: 0,
        depth: 0,
        ignoring: 0,
    };
    let s = tri!(p.signat());
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(SigError::Syntax(p.i));
    }
    Ok(if s == 0 { SIGN_INTERN } else { s })
}

/// Like [`hash`], but panics on a bad description: in a constant, that is a
/// compile-time error.
pub const fn hash_or_panic(desc: &str) -> u32 {
    match hash(desc) {
        Ok(s) => s,
        Err(_) => panic!("bad type description"),
    }
}

/// Capacity of a [`Desc`].
pub const DESC_MAX: usize = 512;

/// A type description built at compile time.
#[derive(Clone, Copy)]
pub struct Desc {
    buf: [u8; DESC_MAX],
    len: usize,
}

impl Desc {
    /// A description holding `s`.
    pub const fn new(s: &str) -> Desc {
        Desc {
            buf: [0; DESC_MAX],
            len: 0,
        }
        .push(s)
    }

    /// Appends text; panics (a compile-time error in constants) past [`DESC_MAX`].
    pub const fn push(mut self, s: &str) -> Desc {
        let b = s.as_bytes();
        assert!(self.len + b.len() <= DESC_MAX, "type description too long");
        let mut k = 0;
        while k < b.len() {
            self.buf[self.len + k] = b[k];
            k += 1;
        }
        self.len += b.len();
        self
    }

    /// Appends another description.
    pub const fn push_desc(self, d: &Desc) -> Desc {
        self.push(d.as_str())
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the description is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The description of what a pointer type points to (`*fn(int) int`
    /// gives `fn(int) int`); panics if this is not a pointer.
    pub const fn pointee(&self) -> Desc {
        assert!(self.len > 0 && self.buf[0] == b'*', "not a pointer type");
        let mut d = Desc {
            buf: [0; DESC_MAX],
            len: self.len - 1,
        };
        let mut k = 1;
        while k < self.len {
            d.buf[k - 1] = self.buf[k];
            k += 1;
        }
        d
    }

    /// The text followed by NUL, as an array of exactly `N = len() + 1` bytes.
    pub const fn to_bytes<const N: usize>(&self) -> [u8; N] {
        assert!(N == self.len + 1, "wrong record length");
        let mut out = [0u8; N];
        let mut k = 0;
        while k < self.len {
            out[k] = self.buf[k];
            k += 1;
        }
        out
    }

    /// The description text.
    pub const fn as_str(&self) -> &str {
        let (b, _) = self.buf.split_at(self.len);
        match core::str::from_utf8(b) {
            Ok(s) => s,
            Err(_) => panic!("type description is not UTF-8"),
        }
    }
}

impl core::fmt::Debug for Desc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Rust type with a Plan 9 signature.
///
/// Implemented for the scalar types, raw pointers and references, arrays,
/// `extern "C"` function pointers of up to twenty parameters, and `()` (void).
/// Mapping: `i8`→`char`, `u8`/`bool`→`uchar`, `i16`→`short`, `u16`→`ushort`,
/// `i32`→`int`, `u32`/`char`→`uint`, `i64`→`vlong`, `u64`→`uvlong`,
/// `isize`/`usize`→`long`/`ulong` on 32-bit targets and `vlong`/`uvlong` on
/// 64-bit targets, `f32`→`float`, `f64`→`double`, `*const T`/`*mut T`/`&T`/
/// `&mut T`→`*T`, `[T; N]`→`[]T`, `extern "C" fn(A) -> R`→`*fn(A) R`
/// (a function pointer; `fn(void) R` when there are no parameters).
/// `#[repr(C)]` structs get one through [`impl_signof!`](crate::impl_signof).
pub trait Signof {
    /// The type's description.
    const DESC: Desc;
    /// The type's signature.
    const SIG: u32 = hash_or_panic(Self::DESC.as_str());
}

/// The signature of `T`.
pub const fn of<T: Signof + ?Sized>() -> u32 {
    T::SIG
}

/// The signature of the function a function-pointer type `F` points to:
/// what a module exporting that function records for it.
pub const fn of_fn<F: Signof + ?Sized>() -> u32 {
    hash_or_panic(F::DESC.pointee().as_str())
}

/// Name of the object-file section that signature statements go to.
pub const SECTION: &str = ".dynld.sig";

macro_rules! scalar {
    ($($t:ty => $d:expr),* $(,)?) => {
        $(impl Signof for $t { const DESC: Desc = Desc::new($d); })*
    };
}

scalar! {
    i8 => "char", u8 => "uchar", bool => "uchar", i16 => "short", u16 => "ushort",
    i32 => "int", u32 => "uint", char => "uint", i64 => "vlong", u64 => "uvlong",
    f32 => "float", f64 => "double", () => "void",
}

#[cfg(target_pointer_width = "64")]
scalar! { isize => "vlong", usize => "uvlong" }
#[cfg(not(target_pointer_width = "64"))]
scalar! { isize => "long", usize => "ulong" }

impl<T: Signof + ?Sized> Signof for *const T {
    const DESC: Desc = Desc::new("*").push_desc(&T::DESC);
}
impl<T: Signof + ?Sized> Signof for *mut T {
    const DESC: Desc = Desc::new("*").push_desc(&T::DESC);
}
impl<T: Signof + ?Sized> Signof for &T {
    const DESC: Desc = Desc::new("*").push_desc(&T::DESC);
}
impl<T: Signof + ?Sized> Signof for &mut T {
    const DESC: Desc = Desc::new("*").push_desc(&T::DESC);
}
impl<T: Signof, const N: usize> Signof for [T; N] {
    const DESC: Desc = Desc::new("[]").push_desc(&T::DESC);
}

macro_rules! fnptr {
    ($($a:ident),*) => {
        impl<R: Signof $(, $a: Signof)*> Signof for extern "C" fn($($a),*) -> R {
            const DESC: Desc = fnptr!(@desc R $(, $a)*);
        }
        impl<R: Signof $(, $a: Signof)*> Signof for unsafe extern "C" fn($($a),*) -> R {
            const DESC: Desc = fnptr!(@desc R $(, $a)*);
        }
    };
    (@desc $r:ident) => { Desc::new("*fn(void) ").push_desc(&$r::DESC) };
    (@desc $r:ident, $first:ident $(, $a:ident)*) => {
        Desc::new("*fn(").push_desc(&$first::DESC)
            $(.push(", ").push_desc(&$a::DESC))*
            .push(") ").push_desc(&$r::DESC)
    };
}

fnptr!();
fnptr!(A);
fnptr!(A, B);
fnptr!(A, B, C);
fnptr!(A, B, C, D);
fnptr!(A, B, C, D, E);
fnptr!(A, B, C, D, E, G);
fnptr!(A, B, C, D, E, G, H);
fnptr!(A, B, C, D, E, G, H, I);
fnptr!(A, B, C, D, E, G, H, I, J);
fnptr!(A, B, C, D, E, G, H, I, J, K);
fnptr!(A, B, C, D, E, G, H, I, J, K, L);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O, P);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O, P, Q);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O, P, Q, S);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O, P, Q, S, T);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O, P, Q, S, T, U);
fnptr!(A, B, C, D, E, G, H, I, J, K, L, M, N, O, P, Q, S, T, U, V);

/// The signature of a Rust type, or of a description string, as a constant.
///
/// ```
/// const A: u32 = dynld::signof!(*const u8);
/// const B: u32 = dynld::signof!("*uchar");
/// assert_eq!(A, B);
/// ```
#[macro_export]
macro_rules! signof {
    ($desc:literal) => {
        const { $crate::sig::hash_or_panic($desc) }
    };
    ($t:ty) => {
        <$t as $crate::sig::Signof>::SIG
    };
}

/// Implements [`Signof`] for a `#[repr(C)]` struct from its member types,
/// or from an explicit description (needed for recursive structs).
///
/// ```
/// #[repr(C)]
/// struct Dev { name: *const u8, init: extern "C" fn() -> i32 }
/// dynld::impl_signof!(struct Dev { *const u8, extern "C" fn() -> i32 });
///
/// #[repr(C)]
/// struct Node { val: i32, next: *mut Node }
/// dynld::impl_signof!(Node = "struct Node { int, *struct Node }");
///
/// use dynld::sig::{hash, Signof};
/// assert_eq!(Dev::SIG, hash("struct Dev { *uchar, *fn(void) int }").unwrap());
/// ```
#[macro_export]
macro_rules! impl_signof {
    ($name:ident = $desc:literal) => {
        impl $crate::sig::Signof for $name {
            const DESC: $crate::sig::Desc = $crate::sig::Desc::new($desc);
        }
    };
    (struct $name:ident { $first:ty $(, $t:ty)* $(,)? }) => {
        impl $crate::sig::Signof for $name {
            const DESC: $crate::sig::Desc =
                $crate::sig::Desc::new(concat!("struct ", stringify!($name), " { "))
                    .push_desc(&<$first as $crate::sig::Signof>::DESC)
                    $(.push(", ").push_desc(&<$t as $crate::sig::Signof>::DESC))*
                    .push(" }");
        }
    };
}

/// States, in the object file, the signature of something a module
/// exports; `aout link` reads it and records it in the module's export table.
///
/// ```
/// #[unsafe(no_mangle)]
/// pub extern "C" fn twice(x: i32) -> i32 { 2 * x }
/// dynld::export_sig!(fn twice: extern "C" fn(i32) -> i32);  // "fn(int) int"
///
/// #[unsafe(no_mangle)]
/// pub static mut COUNTER: i32 = 0;
/// dynld::export_sig!(COUNTER: i32);                       // "int"
/// dynld::export_sig!(COUNTER = "int");                    // a description
/// ```
///
/// Three forms:
///
/// * `fn NAME: F` takes a function-pointer type and states the function's
///   type. The item `NAME` must coerce to `F`, so a function whose
///   parameters or result differ from `F`'s does not compile. This works
///   for `extern "C" fn` items and for functions declared in `extern "C"`
///   or `unsafe extern "C"` blocks (`safe fn` ones included); a function
///   declared unsafe needs an `unsafe extern "C" fn` type.
/// * `NAME: T` states `T` for a static (`static mut` and statics of
///   `extern` blocks included), which must be of type `T` exactly.
/// * `NAME = "desc"` states a type description (see the [module
///   docs](crate::sig)). It is checked well-formed but cannot be checked
///   against the item: prefer the typed forms where Rust can name the type.
///
/// ```compile_fail
/// #[unsafe(no_mangle)]
/// pub extern "C" fn add(a: i32, b: i32) -> i32 { a + b }
/// dynld::export_sig!(fn add: extern "C" fn(i64) -> i64); // mismatched types
/// ```
///
/// The macro expands to a `static` in the [`SECTION`] section and, for the
/// typed forms, to constant checks that generate no code; it builds on
/// editions 2021 and 2024 alike.
#[macro_export]
macro_rules! export_sig {
    ($($t:tt)*) => { $crate::__sig_statement!("E", $($t)*); };
}

/// States the signature a module expects of something it imports; the
/// loader refuses to bind it to an export with another signature.
///
/// ```
/// unsafe extern "C" {
///     fn host_log(v: i32) -> i32;
///     static HOST_LEVEL: i32;
/// }
/// dynld::import_sig!(fn host_log: unsafe extern "C" fn(i32) -> i32);
/// dynld::import_sig!(HOST_LEVEL: i32);
/// ```
///
/// The forms, and what they check, are those of [`export_sig!`].
#[macro_export]
macro_rules! import_sig {
    ($($t:tt)*) => { $crate::__sig_statement!("I", $($t)*); };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sig_statement {
    ($kind:literal, fn $name:ident : $t:ty) => {
        // The function must coerce to the pointer type stated.
        const _: $t = $name;
        $crate::__sig_statement!(@emit $kind, $name,
            <$t as $crate::sig::Signof>::DESC.pointee());
    };
    ($kind:literal, $name:ident : $t:ty) => {
        // The static must be of the type stated. The check is compiled,
        // never called, so it takes only the static's address.
        const _: () = {
            #[allow(dead_code)]
            fn check() {
                let _: *const $t = ::core::ptr::addr_of!($name);
            }
        };
        $crate::__sig_statement!(@emit $kind, $name, <$t as $crate::sig::Signof>::DESC);
    };
    ($kind:literal, $name:ident = $desc:literal) => {
        $crate::__sig_statement!(@emit $kind, $name, $crate::sig::Desc::new($desc));
    };
    (@emit $kind:literal, $name:ident, $desc:expr) => {
        const _: () = {
            const REC: $crate::sig::Desc =
                $crate::sig::Desc::new(concat!($kind, " ", stringify!($name), " "))
                    .push_desc(&$desc);
            // Checked here, so a bad description is a compile error.
            const _: u32 = $crate::sig::hash_or_panic($desc.as_str());
            #[used]
            #[unsafe(link_section = ".dynld.sig")]
            static RECORD: [u8; REC.len() + 1] = REC.to_bytes::<{ REC.len() + 1 }>();
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan9_values() {
        assert_eq!(hash("int"), Ok(kind::INT));
        assert_eq!(hash("*char"), Ok(0xf261_1a7a));
        assert_eq!(hash(" * char "), Ok(0xf261_1a7a));
        assert_ne!(hash("int"), hash("long"));
        assert_ne!(hash("fn(int) int"), hash("fn(long) int"));
        // Array length is ignored.
        assert_eq!(hash("[10]int"), hash("[]int"));
        assert_eq!(hash("[ 10 ] int"), hash("[]int"));
        // Tags and member names do not enter; structure does.
        assert_eq!(hash("struct a { int }"), hash("struct b { int }"));
        assert_ne!(hash("struct a { int }"), hash("struct a { uint }"));
    }

    #[test]
    fn walk_by_hand() {
        let m = |s: u32, a: u32, b: u32| s.wrapping_mul(a).wrapping_add(b);
        let int = m(0, T1, kind::INT);
        let f = m(m(m(0, T1, kind::FUNCTION), T3, int), T1, kind::VOID);
        assert_eq!(hash("fn(int) void"), Ok(f));
        let arr = m(m(m(0, T1, kind::ARRAY), T2, 0), T1, kind::CHAR);
        assert_eq!(hash("[4]char"), Ok(arr));
        // struct node { int; struct node *next; }
        let back = m(m(m(0, T1, kind::POINTER), T1, kind::STRUCT), T2, 0);
        let node = m(m(m(0, T1, kind::STRUCT), T3, int), T3, back);
        assert_eq!(hash("struct node { int, *struct node }"), Ok(node));
        let dots = m(0, T1, kind::DOTS);
        let chr = m(m(0, T1, kind::POINTER), T1, kind::CHAR);
        let printf = m(
            m(m(m(0, T1, kind::FUNCTION), T3, chr), T3, dots),
            T1,
            kind::INT,
        );
        assert_eq!(hash("fn(*char, ...) int"), Ok(printf));
    }

    #[test]
    fn errors() {
        assert_eq!(hash(""), Err(SigError::Syntax(0)));
        assert_eq!(hash("integer"), Err(SigError::Syntax(0)));
        assert_eq!(hash("int int"), Err(SigError::Syntax(4)));
        assert!(hash("fn(int").is_err());
        assert!(hash("fn(..., int) int").is_err());
        assert!(hash("struct { int").is_err());
        assert!(hash("struct").is_err());
        let deep = "*fn(".repeat(40);
        assert_eq!(hash(&deep), Err(SigError::TooDeep));
    }

    #[test]
    fn repeated_tag_bodies_follow_the_grammar() {
        // A repeated tag's body is ignored by the walk, so it may be given
        // or not...
        let plain = hash("fn(struct a { int }, *struct a) int");
        assert!(plain.is_ok());
        assert_eq!(hash("fn(struct a { int }, *struct a { int }) int"), plain);
        assert_eq!(hash("fn(struct a { int }, *struct a { }) int"), plain);
        // ...and structs inside it are neither numbered nor remembered.
        assert_eq!(
            hash("fn(struct a { int }, struct a { struct b { int } }, struct b { int }) int"),
            hash("fn(struct a { int }, struct a, struct b { int }) int")
        );
        // But it must be well-formed like any other.
        for bad in [
            "fn(struct a { int }, struct a { */ {0, (void *)system, \"zz\"}, /* }) int",
            "struct a { *struct a { garbage } }",
            "struct a { *struct a { { } } }",
            "struct a { *struct a { int, } }",
            "struct a { *struct a { struct } }",
        ] {
            assert!(matches!(hash(bad), Err(SigError::Syntax(_))), "{bad}");
        }
        // Its nesting counts towards the depth limit.
        let deep = format!(
            "fn(struct a {{ int }}, struct a {{ {} int }}) int",
            "*fn(".repeat(40)
        );
        assert_eq!(hash(&deep), Err(SigError::TooDeep));
    }

    #[test]
    fn statements() {
        let d = <extern "C" fn(i32) -> i32 as Signof>::DESC.pointee();
        assert_eq!(d.as_str(), "fn(int) int");
        assert_eq!(d.to_bytes::<12>(), *b"fn(int) int\0");
    }

    #[test]
    fn rust_types() {
        assert_eq!(of::<i32>(), kind::INT);
        assert_eq!(of::<*const i8>(), 0xf261_1a7a);
        assert_eq!(
            of::<extern "C" fn(i32, *const u8) -> i64>(),
            hash("*fn(int, *uchar) vlong").unwrap()
        );
        assert_eq!(
            of_fn::<extern "C" fn() -> i32>(),
            hash("fn(void) int").unwrap()
        );
        assert_eq!(of::<[u16; 3]>(), hash("[]ushort").unwrap());
    }
}
