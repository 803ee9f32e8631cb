//! Names from a file, made safe to print.
//!
//! A module's names are checked to be UTF-8 without NUL, nothing more: a
//! name may hold a newline, which would forge a line of a listing, or a
//! terminal's escape sequence. [`Escaped`] prints a name with such
//! characters written as Rust writes them in a string literal, and every
//! printable character, ASCII or not, as it is.

use core::fmt::{self, Write};

/// Text shown with its control characters, the invisible characters that
/// could disguise it, and invalid UTF-8 escaped: `\n`, `\r`, `\t`, `\0`
/// and `\\` as in Rust, other ASCII control characters as `\x1b`, C1
/// controls, bidirectional overrides, zero-width characters and line
/// separators as `\u{202e}`, and each byte of invalid UTF-8 as `\xff`.
///
/// ```
/// use dynld::Escaped;
/// assert_eq!(Escaped::new("a\nT b\x1b[2J").to_string(), "a\\nT b\\x1b[2J");
/// assert_eq!(Escaped::new("größe_日本").to_string(), "größe_日本");
/// assert_eq!(Escaped::bytes(b"ab\xff").to_string(), "ab\\xff");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a>(&'a [u8]);

impl<'a> Escaped<'a> {
    /// Text to show.
    pub const fn new(s: &'a str) -> Self {
        Escaped(s.as_bytes())
    }

    /// Bytes to show as text, whether they are UTF-8 or not.
    pub const fn bytes(b: &'a [u8]) -> Self {
        Escaped(b)
    }
}

/// Whether `c`, past ASCII, is escaped: the C1 controls (U+0080 to
/// U+009F; U+009B starts a terminal's control sequence), and the
/// invisible characters that reorder or hide text (bidirectional
/// overrides and isolates, zero-width characters, line and paragraph
/// separators, the byte-order mark). A short list rather than the whole
/// Unicode table of non-printing characters, so that a kernel's messages
/// do not carry it.
fn hidden(c: char) -> bool {
    matches!(c as u32, 0x80..=0x9f | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

/// Writes `s`, escaping what [`Escaped`] says.
pub(crate) fn write_text(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        let short = match c {
            '\\' => '\\',
            '\n' => 'n',
            '\r' => 'r',
            '\t' => 't',
            '\0' => '0',
            _ => ' ',
        };
        if short != ' ' {
            f.write_char('\\')?;
            f.write_char(short)?;
        } else if c.is_ascii_control() {
            write!(f, "\\x{:02x}", c as u32)?;
        } else if hidden(c) {
            write!(f, "\\u{{{:x}}}", c as u32)?;
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while !rest.is_empty() {
            match core::str::from_utf8(rest) {
                Ok(s) => return write_text(f, s),
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    if let Ok(s) = core::str::from_utf8(good) {
                        write_text(f, s)?;
                    }
                    let n = e.error_len().unwrap_or(bad.len());
                    for b in &bad[..n] {
                        write!(f, "\\x{b:02x}")?;
                    }
                    rest = &bad[n..];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn esc(s: &str) -> std::string::String {
        Escaped::new(s).to_string()
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            esc("x\n0000000000000000 T innocent"),
            "x\\n0000000000000000 T innocent"
        );
        assert_eq!(esc("\x1b]0;title\x07\x7f"), "\\x1b]0;title\\x07\\x7f");
        assert_eq!(esc("a\\n"), "a\\\\n");
        assert_eq!(esc("\t\r\0"), "\\t\\r\\0");
        assert_eq!(
            esc("\u{9b}31m\u{202e}\u{2028}"),
            "\\u{9b}31m\\u{202e}\\u{2028}"
        );
    }

    #[test]
    fn printable_text_is_unchanged() {
        for s in ["plain_name", "größe", "日本語", "e\u{301}", "a b\"'", "😀"] {
            assert_eq!(esc(s), s);
        }
    }

    #[test]
    fn symbol_names_in_errors_are_escaped() {
        let e = crate::Error::Undefined {
            name: crate::SymName::new("x\n0000000000000000 T innocent\x1b[2J"),
        };
        assert_eq!(
            e.to_string(),
            "undefined symbol: x\\n0000000000000000 T innocent\\x1b[2J"
        );
        assert_eq!(crate::SymName::new("größe").to_string(), "größe");
    }

    #[test]
    fn invalid_utf8_is_escaped_byte_by_byte() {
        assert_eq!(
            Escaped::bytes(b"a\xffb\xe6\x97").to_string(),
            "a\\xffb\\xe6\\x97"
        );
        assert_eq!(Escaped::bytes(b"\xe6\x97\xa5\n").to_string(), "日\\n");
    }
}
