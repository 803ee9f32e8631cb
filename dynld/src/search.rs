//! Finding modules by name in directories (feature `std`): the search
//! path of XFree86's `LoadModule`, as a registry [`Finder`].

use std::borrow::ToOwned;
use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

use crate::error::{Error, SymName};
use crate::registry::Finder;
use crate::source::{FileSource, Source};

/// Directories searched for a module by name, with subdirectories and
/// file-name patterns.
///
/// A module called `NAME` is the first regular file found, trying each
/// directory in order, within it each subdirectory in order (by default
/// only the directory itself), and within that each pattern in order,
/// `%s` in a pattern standing for `NAME` (by default `%s.dl`). A name
/// holding `/` (or `\` on Windows), or `..`, is never searched for.
///
/// ```no_run
/// use dynld::{ExportTable, Growable, LoadOptions, Registry, SearchPath, MMAP};
///
/// let path = SearchPath::new()
///     .dir("/usr/lib/app/modules")
///     .subdir("drivers")
///     .subdir("")
///     .pattern("%s.dl")
///     .pattern("lib%s.dl");
/// let reg = Registry::growable(ExportTable::EMPTY, &MMAP).with_finder(&path);
/// let video = reg.load_named("video", &LoadOptions::new()).unwrap();
/// # drop(video);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
    subdirs: Vec<String>,
    patterns: Vec<String>,
}

impl SearchPath {
    /// An empty search path (it finds nothing until given a directory).
    pub fn new() -> Self {
        Self::default()
    }

    /// Searches `dir` after those given before.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// Searches subdirectory `sub` of each directory (`""`: the directory
    /// itself) after those given before.
    pub fn subdir(mut self, sub: impl Into<String>) -> Self {
        self.subdirs.push(sub.into());
        self
    }

    /// Tries file name `pattern` (`%s` for the module's name) after those
    /// given before.
    pub fn pattern(mut self, pattern: impl Into<String>) -> Self {
        self.patterns.push(pattern.into());
        self
    }

    /// The directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The file of the module called `name`, if the path has one.
    pub fn locate(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name.contains(['/', '\\']) || name.contains("..") {
            return None;
        }
        let subdirs: &[String] = match self.subdirs.is_empty() {
            true => &[String::new()],
            false => &self.subdirs,
        };
        let default = ["%s.dl".to_owned()];
        let patterns: &[String] = match self.patterns.is_empty() {
            true => &default,
            false => &self.patterns,
        };
        for dir in &self.dirs {
            for sub in subdirs {
                let at: PathBuf = match sub.is_empty() {
                    true => dir.clone(),
                    false => dir.join(sub),
                };
                for pat in patterns {
                    let file = at.join(pat.replace("%s", name));
                    if Path::new(&file).is_file() {
                        return Some(file);
                    }
                }
            }
        }
        None
    }
}

impl Finder for SearchPath {
    fn find(
        &self,
        name: &str,
        load: &mut dyn FnMut(&mut dyn Source) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let file = self.locate(name).ok_or_else(|| Error::NotFound {
            name: SymName::new(name),
        })?;
        let mut src = FileSource::open(&file).map_err(|_| Error::Read)?;
        load(&mut src)
    }
}
