//! Reading an input file: a regular file whole, anything else (a pipe, a
//! character device such as `/dev/zero`) up to [`MAX_STREAM`] bytes, a
//! directory not at all.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Most bytes read from a file that is not a regular file: its size is not
/// known before it ends, and some never end. Larger than any module or
/// object in practice.
pub const MAX_STREAM: u64 = 256 << 20;

/// An opened input.
pub enum Opened {
    /// A regular file, to be read (or mapped) as it is.
    File(File),
    /// The whole content of a pipe or device, at most [`MAX_STREAM`] bytes.
    Bytes(Vec<u8>),
}

/// Opens `path`: a regular file is left open, a pipe or device is read to
/// its end (refused past [`MAX_STREAM`] bytes), and a directory is refused
/// with the system's message for reading one. Errors name the path.
pub fn open(path: &Path) -> Result<Opened, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if meta.is_dir() {
        return Err(fail(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    if meta.is_file() {
        return Ok(Opened::File(file));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STREAM + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_STREAM {
        return Err(format!(
            "{}: not a regular file and longer than {} MiB, the most aout reads from a pipe or device",
            path.display(),
            MAX_STREAM >> 20
        ));
    }
    Ok(Opened::Bytes(bytes))
}

/// The content of `path`, by the rules of [`open`].
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    match open(path)? {
        Opened::File(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(bytes)
        }
        Opened::Bytes(b) => Ok(b),
    }
}
