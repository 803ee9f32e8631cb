//! File and line of module addresses, from the debug file `aout link
//! --debug` writes (for `aout addr2line --debug`): its DWARF line tables,
//! whose addresses are image offsets.

use gimli::{EndianSlice, LittleEndian};
use object::{Object, ObjectSection};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// A debug file's line tables: each row that starts a range of code, as
/// (image offset, end of its sequence, file, line), sorted by offset.
pub struct Lines {
    rows: Vec<(u64, u64, String, u64)>,
}

impl Lines {
    /// Reads the line tables of the debug file `bytes`.
    pub fn read(bytes: &[u8]) -> Result<Lines, String> {
        let file = object::File::parse(bytes).map_err(|e| e.to_string())?;
        if !file.is_little_endian() {
            return Err("big-endian debug files are not supported".into());
        }
        let load = |id: gimli::SectionId| -> Result<Slice<'_>, gimli::Error> {
            let data = file
                .section_by_name(id.name())
                .and_then(|s| s.data().ok())
                .unwrap_or(&[]);
            Ok(EndianSlice::new(data, LittleEndian))
        };
        let dwarf = gimli::Dwarf::load(load).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        let mut units = dwarf.units();
        while let Some(header) = units.next().map_err(|e| e.to_string())? {
            let unit = dwarf.unit(header).map_err(|e| e.to_string())?;
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            let mut it = program.rows();
            // Rows of the sequence under way; its end closes them.
            let mut seq: Vec<(u64, String, u64)> = Vec::new();
            while let Some((header, row)) = it.next_row().map_err(|e| e.to_string())? {
                if row.end_sequence() {
                    let end = row.address();
                    rows.extend(seq.drain(..).map(|(a, f, l)| (a, end, f, l)));
                    continue;
                }
                let name = row
                    .file(header)
                    .map(|f| {
                        let mut path = String::new();
                        if let Some(dir) = f.directory(header) {
                            if let Ok(d) = dwarf.attr_string(&unit, dir) {
                                path.push_str(&d.to_string_lossy());
                            }
                        }
                        if let Ok(n) = dwarf.attr_string(&unit, f.path_name()) {
                            let n = n.to_string_lossy();
                            if n.starts_with('/') || path.is_empty() {
                                path = n.into_owned();
                            } else {
                                path.push('/');
                                path.push_str(&n);
                            }
                        }
                        path
                    })
                    .unwrap_or_else(|| "??".into());
                let line = row.line().map_or(0, |l| l.get());
                seq.push((row.address(), name, line));
            }
        }
        // Stable: among rows at one address, the last one of its sequence
        // wins below, as the line program's last row for an address is
        // the one that describes it.
        rows.sort_by_key(|r| r.0);
        Ok(Lines { rows })
    }

    /// The file and line of image offset `off`, if a line table covers it.
    pub fn at(&self, off: u64) -> Option<(&str, u64)> {
        let n = self.rows.partition_point(|r| r.0 <= off);
        let r = self.rows.get(n.checked_sub(1)?)?;
        (off < r.1).then_some((r.2.as_str(), r.3))
    }
}
