//! The registry's messages: what it loaded, what it unloaded and what it
//! refused, told to a caller-supplied [`Log`] ([`Registry::with_log`]); a
//! kernel without an allocator keeps them in a [`Putbuf`], a fixed-size
//! ring of text it can dump (from its console, or a debugger's memory
//! view) when a load fails without saying why, as DLM writes its
//! messages to the kernel's `putbuf`.
//!
//! [`Registry::with_log`]: crate::Registry::with_log

use core::fmt;

use crate::error::Error;
use crate::sync::Spin;

/// What happened, told to a [`Log`]. Its `Display` is the message line
/// (without a newline), e.g. `loaded lib (id 1) at 0x20001000, 4096
/// bytes` or `load app refused: undefined symbol: lib_add`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'e> {
    /// A module was loaded, bound and initialized (its constructors and
    /// setup ran).
    Loaded {
        /// Its registry name.
        name: &'e str,
        /// Its id.
        id: u32,
        /// The address of its text.
        base: usize,
        /// Bytes of image (text, data, bss).
        size: usize,
    },
    /// A module was unloaded: its teardown and destructors ran and its
    /// memory went back.
    Unloaded {
        /// Its registry name.
        name: &'e str,
        /// Its id.
        id: u32,
    },
    /// A load was refused (the registry is as it was, bar the modules the
    /// load's own refused dependencies were).
    LoadRefused {
        /// The name it was to be loaded under.
        name: &'e str,
        /// Why.
        error: &'e Error,
    },
    /// An unload was refused.
    UnloadRefused {
        /// The module named (an id as `id N`).
        name: &'e str,
        /// Why.
        error: &'e Error,
    },
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Loaded {
                name,
                id,
                base,
                size,
            } => write!(f, "loaded {name} (id {id}) at {base:#x}, {size} bytes"),
            Event::Unloaded { name, id } => write!(f, "unloaded {name} (id {id})"),
            Event::LoadRefused { name, error } => write!(f, "load {name} refused: {error}"),
            Event::UnloadRefused { name, error } => write!(f, "unload {name} refused: {error}"),
        }
    }
}

/// Where a registry's messages go ([`Registry::with_log`]): a
/// [`Putbuf`], a closure (`Fn(&Event)`), a kernel's console.
///
/// The registry calls it outside its lock, but may call it from any
/// thread that loads or unloads; it must not load or unload itself.
///
/// [`Registry::with_log`]: crate::Registry::with_log
pub trait Log: Sync {
    /// Records `event`.
    fn log(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Sync> Log for F {
    fn log(&self, event: &Event<'_>) {
        self(event)
    }
}

/// The ring itself, behind [`Putbuf`]'s lock.
struct Ring<const N: usize> {
    /// The text, oldest byte at `at` once it has wrapped.
    buf: [u8; N],
    /// Where the next byte goes.
    at: usize,
    /// Bytes held (at most `N`).
    len: usize,
    /// Bytes ever written (wrapping): lets a reader see what it missed.
    total: u64,
}

impl<const N: usize> Ring<N> {
    fn push(&mut self, bytes: &[u8]) {
        if N == 0 {
            return;
        }
        for &b in bytes {
            self.buf[self.at] = b;
            self.at = if self.at + 1 == N { 0 } else { self.at + 1 };
            self.len = (self.len + 1).min(N);
        }
        self.total = self.total.wrapping_add(bytes.len() as u64);
    }

    /// Byte `i` of what is held, oldest first.
    fn get(&self, i: usize) -> u8 {
        let start = (self.at + N - self.len) % N;
        self.buf[(start + i) % N]
    }

    /// Where the held text's first whole line starts: 0 unless the ring
    /// has overwritten the start of the oldest line, then just past the
    /// first newline (or everything, if none is held).
    fn first_line(&self) -> usize {
        if self.total <= N as u64 {
            return 0;
        }
        (0..self.len)
            .find(|&i| self.get(i) == b'\n')
            .map_or(self.len, |i| i + 1)
    }
}

impl<const N: usize> fmt::Write for Ring<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// A fixed-size ring of message text: each [`Event`] one line ending in
/// `\n`, the oldest overwritten when it is full. It needs no allocator and
/// can live in a `static`; a kernel prints it with [`Self::dump`] or
/// copies it out with [`Self::read`], and a debugger shows it as it shows
/// any kernel variable (`p PUTBUF`).
///
/// ```
/// use dynld::{Event, Log, Putbuf};
///
/// static PUTBUF: Putbuf<256> = Putbuf::new();
/// PUTBUF.log(&Event::Unloaded { name: "lp", id: 3 });
/// let mut s = String::new();
/// PUTBUF.dump(&mut s).unwrap();
/// assert_eq!(s, "unloaded lp (id 3)\n");
/// ```
pub struct Putbuf<const N: usize> {
    ring: Spin<Ring<N>>,
}

impl<const N: usize> Default for Putbuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Putbuf<N> {
    /// An empty ring of `N` bytes.
    pub const fn new() -> Self {
        Putbuf {
            ring: Spin::new(Ring {
                buf: [0; N],
                at: 0,
                len: 0,
                total: 0,
            }),
        }
    }

    /// Appends `text` as it is (a caller's own note; no newline added).
    pub fn write(&self, text: &str) {
        self.ring.with(|r| r.push(text.as_bytes()));
    }

    /// Bytes held, at most `N`.
    pub fn len(&self) -> usize {
        self.ring.with(|r| r.len)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes ever written (wrapping at 2^64): more than `N` means the
    /// oldest were overwritten.
    pub fn total(&self) -> u64 {
        self.ring.with(|r| r.total)
    }

    /// Forgets what is held.
    pub fn clear(&self) {
        self.ring.with(|r| {
            r.at = 0;
            r.len = 0;
            r.total = 0;
        });
    }

    /// Copies the held text, oldest first and from the first whole line,
    /// into `out`; the bytes copied. If `out` is shorter, the newest bytes
    /// that fit are copied, from a line's start where one falls in them.
    pub fn read(&self, out: &mut [u8]) -> usize {
        self.ring.with(|r| {
            let mut from = r.first_line();
            if r.len - from > out.len() {
                from = r.len - out.len();
                // From the next line's start, if one is in what fits.
                if let Some(i) = (from..r.len).find(|&i| i > 0 && r.get(i - 1) == b'\n') {
                    from = i;
                }
            }
            let n = r.len - from;
            for (i, o) in out.iter_mut().take(n).enumerate() {
                *o = r.get(from + i);
            }
            n
        })
    }

    /// Writes the held text, oldest first and from the first whole line,
    /// to `w` (a console): bytes that are not UTF-8 (a character cut where
    /// the ring wrapped) as U+FFFD.
    ///
    /// The ring stays locked while `w` writes: `w` must not log to it.
    pub fn dump(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        self.ring.with(|r| {
            let mut chunk = [0u8; 64];
            let mut n = 0;
            let from = r.first_line();
            for i in from..r.len {
                chunk[n] = r.get(i);
                n += 1;
                if n == chunk.len() || i + 1 == r.len {
                    n = flush_utf8(&mut chunk, n, w, i + 1 == r.len)?;
                }
            }
            Ok(())
        })
    }
}

/// Writes the UTF-8 text in `chunk[..n]` to `w`; keeps an incomplete
/// character at its end (unless `last`) at the start of `chunk`, and
/// returns its length.
fn flush_utf8(
    chunk: &mut [u8],
    mut n: usize,
    w: &mut dyn fmt::Write,
    last: bool,
) -> Result<usize, fmt::Error> {
    let mut start = 0;
    while start < n {
        match core::str::from_utf8(&chunk[start..n]) {
            Ok(s) => {
                w.write_str(s)?;
                start = n;
            }
            Err(e) => {
                let good = start + e.valid_up_to();
                // The first `valid_up_to` bytes are UTF-8.
                w.write_str(core::str::from_utf8(&chunk[start..good]).unwrap_or(""))?;
                match e.error_len() {
                    Some(bad) => {
                        w.write_char(char::REPLACEMENT_CHARACTER)?;
                        start = good + bad;
                    }
                    None if last => {
                        w.write_char(char::REPLACEMENT_CHARACTER)?;
                        start = n;
                    }
                    None => {
                        chunk.copy_within(good..n, 0);
                        n -= good;
                        return Ok(n);
                    }
                }
            }
        }
    }
    Ok(0)
}

impl<const N: usize> Log for Putbuf<N> {
    fn log(&self, event: &Event<'_>) {
        use fmt::Write as _;
        self.ring.with(|r| {
            let _ = writeln!(r, "{event}");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn dumped<const N: usize>(p: &Putbuf<N>) -> String {
        let mut s = String::new();
        p.dump(&mut s).unwrap();
        s
    }

    #[test]
    fn lines_in_order() {
        let p = Putbuf::<128>::new();
        assert!(p.is_empty());
        p.log(&Event::Loaded {
            name: "lib",
            id: 1,
            base: 0x2000_1000,
            size: 4096,
        });
        p.log(&Event::Unloaded { name: "lib", id: 1 });
        let want = "loaded lib (id 1) at 0x20001000, 4096 bytes\nunloaded lib (id 1)\n";
        assert_eq!(dumped(&p), want);
        assert_eq!(p.len(), want.len());
        let mut out = [0u8; 128];
        let n = p.read(&mut out);
        assert_eq!(&out[..n], want.as_bytes());
        p.clear();
        assert_eq!((dumped(&p).as_str(), p.total()), ("", 0));
    }

    #[test]
    fn refusals_carry_the_error() {
        let p = Putbuf::<128>::new();
        let e = Error::Undefined {
            name: crate::SymName::new("lib_add"),
        };
        p.log(&Event::LoadRefused {
            name: "app",
            error: &e,
        });
        assert_eq!(dumped(&p), "load app refused: undefined symbol: lib_add\n");
    }

    #[test]
    fn wraps_to_whole_lines() {
        let p = Putbuf::<40>::new();
        for id in 0..10 {
            p.log(&Event::Unloaded { name: "m", id });
        }
        // Each line is "unloaded m (id N)\n", 18 bytes: 40 bytes hold the
        // last two whole and the tail of the one before, which is skipped.
        assert_eq!(p.len(), 40);
        assert_eq!(p.total(), 180);
        assert_eq!(dumped(&p), "unloaded m (id 8)\nunloaded m (id 9)\n");
        let mut out = [0u8; 40];
        let n = p.read(&mut out);
        assert_eq!(&out[..n], b"unloaded m (id 8)\nunloaded m (id 9)\n");
        // A short buffer gets the newest line that fits whole.
        let mut short = [0u8; 20];
        let n = p.read(&mut short);
        assert_eq!(&short[..n], b"unloaded m (id 9)\n");
        // Shorter than any line: its newest bytes.
        let mut tiny = [0u8; 4];
        let n = p.read(&mut tiny);
        assert_eq!(&tiny[..n], b" 9)\n");
    }

    #[test]
    fn a_line_longer_than_the_ring() {
        let p = Putbuf::<8>::new();
        p.write("0123456789abc");
        // No newline held: no whole line to start from.
        assert_eq!(dumped(&p), "");
        p.write("\nxy\n");
        assert_eq!(dumped(&p), "xy\n");
    }

    #[test]
    fn characters_cut_by_the_wrap() {
        let p = Putbuf::<9>::new();
        // "é" is two bytes; the oldest line's start is overwritten.
        p.write("aaaa\nééé\n");
        assert_eq!(p.total(), 12);
        assert_eq!(dumped(&p), "ééé\n");
        let q = Putbuf::<6>::new();
        q.write("ab\né");
        // Not wrapped: all of it, the character whole.
        assert_eq!(dumped(&q), "ab\né");
        // A character cut at the ring's start, after a newline.
        let r = Putbuf::<4>::new();
        r.write("\n\u{20ac}\n");
        // Held: the last 4 of "\n", e2 82 ac, "\n" = e2 82 ac 0a; no
        // newline before them, so no whole line but after the last.
        assert_eq!(dumped(&r), "");
        // Long runs cross the dump's chunks whole.
        let long = Putbuf::<300>::new();
        let text: String = core::iter::repeat_n("é", 100).collect();
        long.write(&text);
        long.write("\n");
        assert_eq!(dumped(&long), std::format!("{text}\n"));
    }

    #[test]
    fn a_zero_sized_ring_holds_nothing() {
        let p = Putbuf::<0>::new();
        p.log(&Event::Unloaded { name: "m", id: 1 });
        assert_eq!((p.len(), dumped(&p).as_str()), (0, ""));
    }

    #[test]
    fn closures_are_logs() {
        let seen = std::sync::Mutex::new(String::new());
        let log = |e: &Event<'_>| {
            use core::fmt::Write as _;
            let _ = writeln!(seen.lock().unwrap(), "{e}");
        };
        log.log(&Event::Unloaded { name: "m", id: 2 });
        assert_eq!(*seen.lock().unwrap(), "unloaded m (id 2)\n");
    }
}
