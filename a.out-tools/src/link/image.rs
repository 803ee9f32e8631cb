//! The module image as the linker writes it: text and data bytes, the
//! GOT, and the relocations left for the loader.

use super::LinkError;
use std::collections::{BTreeMap, HashMap};

/// What a relocation refers to, after resolution.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// An image offset inside the module.
    Local(u64),
    /// An absolute value.
    Abs(u64),
    /// An import, by name.
    Import(String),
}

/// A relocation left for the loader: it adds the load base or an
/// import's address to the field at `offset`, as `mode` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadReloc {
    /// Image offset of the field.
    pub offset: u64,
    /// The mode number (`dynld::arch`) for the module's architecture.
    pub mode: u8,
    /// The import whose address is added; `None` adds the load base.
    pub import: Option<String>,
}

impl LoadReloc {
    /// Adds the load base to the field at `offset`.
    pub fn base(offset: u64, mode: u8) -> LoadReloc {
        LoadReloc {
            offset,
            mode,
            import: None,
        }
    }

    /// Adds the address of import `name` to the field at `offset`.
    pub fn import(offset: u64, mode: u8, name: &str) -> LoadReloc {
        LoadReloc {
            offset,
            mode,
            import: Some(name.to_owned()),
        }
    }
}

/// The module image being written: the text (sections, stubs, veneers,
/// the functions the linker writes), the data (sections, the GOT), and what the backends
/// record as they patch it. Image offsets count from the start of the
/// text; the data starts at `dataoff`.
pub(crate) struct Image {
    /// The text part's bytes.
    pub text: Vec<u8>,
    /// The data part's bytes (bss is not stored).
    pub data: Vec<u8>,
    /// Image offset of the data.
    pub dataoff: u64,
    /// GOT slot of each target.
    pub got: BTreeMap<Target, u64>,
    /// Load-time relocations, in the order they were made.
    pub relocs: Vec<LoadReloc>,
    /// Values of PC-relative high parts (`S + A - P`) by their place, for
    /// the low parts that name them (RISC-V `%pcrel_lo`).
    pub pcrel_hi: HashMap<u64, i128>,
    /// Veneers by the image offset they jump to (`S + A` of the calls
    /// using them, with the addend as
    /// [`Machine::call_addend`](super::machine::Machine::call_addend) gives it).
    pub veneers: BTreeMap<u64, Vec<u64>>,
    /// Copies of import stubs in veneer islands, by import.
    pub stub_copies: BTreeMap<String, Vec<u64>>,
}

impl Image {
    /// An image of zeros: `text` bytes of text, `data` bytes of data at
    /// image offset `dataoff`.
    pub fn new(text: usize, data: usize, dataoff: u64) -> Image {
        Image {
            text: vec![0; text],
            data: vec![0; data],
            dataoff,
            got: BTreeMap::new(),
            relocs: Vec::new(),
            pcrel_hi: HashMap::new(),
            veneers: BTreeMap::new(),
            stub_copies: BTreeMap::new(),
        }
    }

    /// The stub for import `name` nearest to `p`: the one after the text
    /// (`main`) or a copy in an island.
    pub fn stub(&self, name: &str, main: u64, p: u64) -> u64 {
        self.stub_copies
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .chain([main])
            .min_by_key(|s| s.abs_diff(p))
            .unwrap_or(main)
    }

    /// The veneer jumping to `to` nearest to `p`.
    pub fn veneer(&self, to: u64, p: u64) -> Option<u64> {
        self.veneers
            .get(&to)?
            .iter()
            .copied()
            .min_by_key(|v| v.abs_diff(p))
    }

    /// The `n` bytes at image offset `at`, which must lie inside the text
    /// or inside the data.
    pub fn get(&self, at: u64, n: usize) -> Result<&[u8], LinkError> {
        let (part, at) = match at.checked_sub(self.dataoff) {
            Some(d) => (&self.data, d),
            None => (&self.text, at),
        };
        usize::try_from(at)
            .ok()
            .and_then(|a| part.get(a..a.checked_add(n)?))
            .ok_or_else(|| LinkError(format!("read outside the image at {at:#x}")))
    }

    /// The little-endian 32-bit word at `at` (an instruction).
    pub fn get32(&self, at: u64) -> Result<u32, LinkError> {
        let b = self.get(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Writes `bytes` at image offset `at`, which must lie inside the text
    /// or inside the data.
    pub fn put(&mut self, at: u64, bytes: &[u8]) -> Result<(), LinkError> {
        let (part, at) = match at.checked_sub(self.dataoff) {
            Some(d) => (&mut self.data, d),
            None => (&mut self.text, at),
        };
        usize::try_from(at)
            .ok()
            .and_then(|a| part.get_mut(a..a.checked_add(bytes.len())?))
            .ok_or_else(|| LinkError(format!("write outside the image at {at:#x}")))?
            .copy_from_slice(bytes);
        Ok(())
    }
}
