//! Where module bytes come from: read and seek, supplied by the caller.

use crate::error::Error;

/// A readable, seekable byte source: a file, flash, a buffer.
///
/// The loader reads the module starting at the source's current position,
/// seeks only forward while loading, and on any error seeks back to where it
/// started.
pub trait Source {
    /// Reads up to `buf.len()` bytes, returning how many were read; 0 means
    /// the end of the source.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error>;
    /// Moves to the absolute position `pos`.
    fn seek(&mut self, pos: u64) -> Result<(), Error>;
    /// The current absolute position.
    fn position(&mut self) -> Result<u64, Error>;

    /// Fills `buf` completely, or fails with [`Error::Truncated`] naming `what`.
    fn read_exact_or(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), Error> {
        let mut done = 0;
        while done < buf.len() {
            match self.read(&mut buf[done..])? {
                0 => return Err(Error::Truncated { what }),
                n if n <= buf.len() - done => done += n,
                _ => return Err(Error::Read),
            }
        }
        Ok(())
    }

    /// The source's length (one past its last position), if it knows it
    /// cheaply. The loader refuses a module longer than what remains
    /// before allocating anything. `None` by default.
    fn length(&mut self) -> Option<u64> {
        None
    }

    /// The file this source reads, if the loader may map the module's text
    /// from it ([`crate::Memory::map_file`]) instead of reading it. The
    /// source's positions must be offsets in that file. `None` by default.
    #[cfg(all(feature = "std", unix))]
    fn file(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
}

impl<S: Source + ?Sized> Source for &mut S {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        (**self).read(buf)
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        (**self).seek(pos)
    }
    fn position(&mut self) -> Result<u64, Error> {
        (**self).position()
    }
    fn length(&mut self) -> Option<u64> {
        (**self).length()
    }
    #[cfg(all(feature = "std", unix))]
    fn file(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        (**self).file()
    }
}

/// A [`Source`] over bytes in memory (an image in flash or in a static array).
#[derive(Clone, Debug)]
pub struct SliceSource<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    /// A source positioned at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        SliceSource { bytes, pos: 0 }
    }
}

impl Source for SliceSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        self.pos = usize::try_from(pos).map_err(|_| Error::Seek)?;
        Ok(())
    }
    fn position(&mut self) -> Result<u64, Error> {
        Ok(self.pos as u64)
    }
    fn length(&mut self) -> Option<u64> {
        Some(self.bytes.len() as u64)
    }
}

/// `whence` for [`FnSource`]'s seek callback: from the start.
pub const SEEK_SET: i32 = 0;
/// `whence` for [`FnSource`]'s seek callback: from the current position.
pub const SEEK_CUR: i32 = 1;

/// A [`Source`] in Plan 9's shape: a file handle and two callbacks.
///
/// `read(file, buf)` returns the bytes transferred or -1 on error;
/// `seek(file, n, whence)` returns the new offset or -1 on error, with
/// `whence` one of [`SEEK_SET`] or [`SEEK_CUR`] as in `seek(2)`.
pub struct FnSource<'f, F: ?Sized, R, S> {
    /// The caller's file.
    pub file: &'f mut F,
    /// The read callback.
    pub read: R,
    /// The seek callback.
    pub seek: S,
}

impl<F: ?Sized, R, S> Source for FnSource<'_, F, R, S>
where
    R: FnMut(&mut F, &mut [u8]) -> isize,
    S: FnMut(&mut F, i64, i32) -> i64,
{
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = (self.read)(self.file, buf);
        usize::try_from(n).map_err(|_| Error::Read)
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        let p = i64::try_from(pos).map_err(|_| Error::Seek)?;
        match (self.seek)(self.file, p, SEEK_SET) {
            r if r == p => Ok(()),
            _ => Err(Error::Seek),
        }
    }
    fn position(&mut self) -> Result<u64, Error> {
        u64::try_from((self.seek)(self.file, 0, SEEK_CUR)).map_err(|_| Error::Seek)
    }
}

/// A [`Source`] over any `std::io::Read + Seek` (a `File`, a `Cursor`).
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct IoSource<T>(pub T);

#[cfg(feature = "std")]
impl<T: std::io::Read + std::io::Seek> Source for IoSource<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            match self.0.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Error::Read),
            }
        }
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        self.0
            .seek(std::io::SeekFrom::Start(pos))
            .map(drop)
            .map_err(|_| Error::Seek)
    }
    fn position(&mut self) -> Result<u64, Error> {
        self.0.stream_position().map_err(|_| Error::Seek)
    }
    fn length(&mut self) -> Option<u64> {
        let here = self.0.stream_position().ok()?;
        let end = self.0.seek(std::io::SeekFrom::End(0));
        // Back where it was, or the length is not worth having.
        self.0.seek(std::io::SeekFrom::Start(here)).ok()?;
        end.ok()
    }
}

/// A [`Source`] over a file, buffered, that lets the loader map a large
/// module text from the file instead of copying it.
///
/// The text is mapped (copy-on-write, so relocation never writes the file)
/// when the module was linked with its text on a page boundary in the file
/// (`aout link --text-align`), the text is at least 64 KiB with fewer than
/// one relocation per 32 bytes of it, the file is a regular file on a
/// mount that allows execution, and the memory provider maps files
/// ([`crate::MMAP`] does). Otherwise it is read, as from [`IoSource`].
/// Text pages that are mapped and not patched stay shared with the page
/// cache: while the module is loaded, the file must not be truncated or
/// rewritten in place (replacing it with a new file is fine).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dynld::{ExportTable, FileSource, Loader, MMAP};
/// let mut src = FileSource::open("big.dl")?;
/// let module = Loader::new(ExportTable::EMPTY, &MMAP).load(&mut src)?;
/// # Ok(()) }
/// ```
#[cfg(all(feature = "std", unix))]
#[derive(Debug)]
pub struct FileSource<F: std::io::Read> {
    inner: std::io::BufReader<F>,
    pos: u64,
    /// The file's length, once known (see [`Source::length`]).
    len: Option<u64>,
}

#[cfg(all(feature = "std", unix))]
impl FileSource<std::fs::File> {
    /// Opens the file at `path` for reading.
    pub fn open<P: AsRef<std::path::Path>>(path: P) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        // One fstat now, rather than asking the file again at each load.
        let len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        Ok(FileSource {
            inner: std::io::BufReader::new(file),
            pos: 0,
            len,
        })
    }
}

#[cfg(all(feature = "std", unix))]
impl<F: std::io::Read + std::io::Seek + std::os::fd::AsFd> FileSource<F> {
    /// A source reading `file` from its current offset on.
    pub fn new(mut file: F) -> std::io::Result<Self> {
        let pos = file.stream_position()?;
        // The end, then back: two seeks, once.
        let len = file.seek(std::io::SeekFrom::End(0)).ok();
        file.seek(std::io::SeekFrom::Start(pos))?;
        Ok(FileSource {
            inner: std::io::BufReader::new(file),
            pos,
            len,
        })
    }

    /// The file back.
    pub fn into_inner(self) -> F {
        self.inner.into_inner()
    }
}

#[cfg(all(feature = "std", unix))]
impl<F: std::io::Read + std::io::Seek + std::os::fd::AsFd> Source for FileSource<F> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        use std::io::Read;
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.pos = self.pos.checked_add(n as u64).ok_or(Error::Read)?;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Error::Read),
            }
        }
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        // Relative, so that a short forward seek stays in the buffer.
        let delta =
            i64::try_from(i128::from(pos) - i128::from(self.pos)).map_err(|_| Error::Seek)?;
        self.inner.seek_relative(delta).map_err(|_| Error::Seek)?;
        self.pos = pos;
        Ok(())
    }
    fn position(&mut self) -> Result<u64, Error> {
        Ok(self.pos)
    }
    fn length(&mut self) -> Option<u64> {
        self.len
    }
    fn file(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.inner.get_ref().as_fd())
    }
}

/// A [`Source`] over any `embedded_io::Read + Seek`.
#[cfg(feature = "embedded-io")]
#[derive(Debug)]
pub struct EmbeddedSource<T>(pub T);

#[cfg(feature = "embedded-io")]
impl<T: embedded_io::Read + embedded_io::Seek> Source for EmbeddedSource<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.0.read(buf).map_err(|_| Error::Read)
    }
    fn seek(&mut self, pos: u64) -> Result<(), Error> {
        self.0
            .seek(embedded_io::SeekFrom::Start(pos))
            .map(drop)
            .map_err(|_| Error::Seek)
    }
    fn position(&mut self) -> Result<u64, Error> {
        self.0.stream_position().map_err(|_| Error::Seek)
    }
    fn length(&mut self) -> Option<u64> {
        let here = self.0.stream_position().ok()?;
        let end = self.0.seek(embedded_io::SeekFrom::End(0));
        // Back where it was, or the length is not worth having.
        self.0.seek(embedded_io::SeekFrom::Start(here)).ok()?;
        end.ok()
    }
}

#[cfg(all(test, feature = "embedded-io", feature = "alloc"))]
mod embedded_tests {
    use super::*;
    use crate::format::Arch;
    use crate::{ExportTable, Loader, ModuleBuilder, HEAP};

    /// Flash as an embedded-io device: a byte slice with a cursor.
    struct Flash<'a> {
        bytes: &'a [u8],
        pos: u64,
    }

    impl embedded_io::ErrorType for Flash<'_> {
        type Error = embedded_io::ErrorKind;
    }

    impl embedded_io::Read for Flash<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let rest = self.bytes.get(self.pos as usize..).unwrap_or(&[]);
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n as u64;
            Ok(n)
        }
    }

    impl embedded_io::Seek for Flash<'_> {
        fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, Self::Error> {
            let to = match pos {
                embedded_io::SeekFrom::Start(p) => Some(p),
                embedded_io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
                embedded_io::SeekFrom::End(d) => (self.bytes.len() as u64).checked_add_signed(d),
            };
            self.pos = to.ok_or(embedded_io::ErrorKind::InvalidInput)?;
            Ok(self.pos)
        }
    }

    #[test]
    fn loads_through_embedded_io() {
        let mut b = ModuleBuilder::new(Arch::Amd64);
        // A data word holding its own offset: relocated, its own address.
        b.text(&[0xc3; 8])
            .data(&8u64.to_le_bytes())
            .data_offset(8)
            .export("x", 0, 8)
            .reloc(8, crate::arch::x86_64::BASE64, None);
        let bytes = b.build().unwrap();
        let mut src = EmbeddedSource(Flash {
            bytes: &bytes,
            pos: 0,
        });
        let m = Loader::new(ExportTable::EMPTY, &HEAP)
            .arch(Arch::Amd64)
            .load(&mut src)
            .unwrap();
        let x = m.find("x").unwrap().addr as *const u64;
        // SAFETY: `x` is the module's 8-byte data word, relocated by the base.
        assert_eq!(unsafe { x.read_unaligned() }, x as u64);
        // A truncated image fails and puts the device back where it was.
        let mut short = EmbeddedSource(Flash {
            bytes: &bytes[..bytes.len() - 1],
            pos: 0,
        });
        assert!(Loader::new(ExportTable::EMPTY, &HEAP)
            .arch(Arch::Amd64)
            .load(&mut short)
            .is_err());
        assert_eq!(short.0.pos, 0);
    }
}
