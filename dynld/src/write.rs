//! The module writer (feature `alloc`): the same definitions as the reader.

use crate::arch;
use crate::error::{Error, SymName, Table};
use crate::format::{
    align_up, kind, text_align_ok, Arch, Dynhdr, Exec, ExpEntry, ImpEntry, MetaEntry, Reloc,
    SymEntry, TableEntry, TypeEntry, DYN_MAGIC, META_ABI, META_DEPENDS, META_MODULE, META_SETUP,
    META_TEARDOWN, NO_ENTRY, SYM_EXPORTED, TABLE_REQUIRED, VERSION,
};
use alloc::string::String;
use alloc::vec::Vec;

/// Builds a module file from text, data, symbols and relocations.
///
/// Exports and imports are sorted by name when the module is built, and
/// relocations by offset (import indices in relocations are remapped to the
/// sorted order). Image offsets: text starts at 0, data at
/// [`data_offset`](Self::data_offset) (by default the text size rounded up to
/// [`page_size`](Self::page_size): 4096 on 64-bit architectures, 8
/// otherwise), bss right after data.
#[derive(Clone, Debug)]
pub struct ModuleBuilder {
    arch: Arch,
    text: Vec<u8>,
    data: Vec<u8>,
    bss: u32,
    dataoff: Option<u32>,
    page: u32,
    align: u32,
    init: Vec<u32>,
    fini: Vec<u32>,
    flags: u32,
    exports: Vec<(String, u32, u32)>,
    imports: Vec<(String, u32)>,
    /// The symbols table's entries: name, value, size, exported.
    symbols: Vec<(String, u32, u32, bool)>,
    /// The metadata table's contents, if any.
    metadata: Option<crate::meta::MetaSpec>,
    /// The unwind table's contents: its place and `.eh_frame` bytes.
    unwind: Option<(u32, Vec<u8>)>,
    /// The debug link: the debug file's CRC-32 and path.
    debuglink: Option<(u32, String)>,
    /// Type descriptions of exports and of imports, by name.
    descs: [alloc::collections::BTreeMap<String, String>; 2],
    relocs: Vec<Reloc>,
    keep_order: bool,
    index: bool,
    import_hashes: bool,
    text_align: u32,
}

impl ModuleBuilder {
    /// An empty module for `arch`.
    pub fn new(arch: Arch) -> Self {
        ModuleBuilder {
            arch,
            text: Vec::new(),
            data: Vec::new(),
            bss: 0,
            dataoff: None,
            page: if arch.word_size() == 8 { 4096 } else { 8 },
            align: 16,
            init: Vec::new(),
            fini: Vec::new(),
            flags: 0,
            exports: Vec::new(),
            imports: Vec::new(),
            symbols: Vec::new(),
            metadata: None,
            unwind: None,
            debuglink: None,
            descs: Default::default(),
            relocs: Vec::new(),
            keep_order: false,
            index: false,
            import_hashes: false,
            text_align: 1,
        }
    }

    /// Sets the text bytes.
    pub fn text(&mut self, bytes: &[u8]) -> &mut Self {
        self.text = bytes.to_vec();
        self
    }

    /// Sets the initialised data bytes.
    pub fn data(&mut self, bytes: &[u8]) -> &mut Self {
        self.data = bytes.to_vec();
        self
    }

    /// Sets the bss size.
    pub fn bss(&mut self, n: u32) -> &mut Self {
        self.bss = n;
        self
    }

    /// Places the data at image offset `off` (at least the text size).
    pub fn data_offset(&mut self, off: u32) -> &mut Self {
        self.dataoff = Some(off);
        self
    }

    /// Sets the page size the default data offset is rounded to (a power of two).
    pub fn page_size(&mut self, page: u32) -> &mut Self {
        self.page = page;
        self
    }

    /// Sets the alignment the image base needs (a power of two).
    pub fn align(&mut self, align: u32) -> &mut Self {
        self.align = align;
        self
    }

    /// Adds a constructor: the image offset of a function taking nothing
    /// and returning nothing (on Thumb, with bit 0 set). Constructors run
    /// in the order added.
    pub fn init(&mut self, off: u32) -> &mut Self {
        self.init.push(off);
        self
    }

    /// Adds a destructor, as [`Self::init`]; destructors run last to first.
    pub fn fini(&mut self, off: u32) -> &mut Self {
        self.fini.push(off);
        self
    }

    /// States the type description (see [`crate::sig`]) of the export
    /// called `name`; a module with any description gets a type table,
    /// which loaders show in messages about signatures.
    pub fn describe_export(&mut self, name: &str, desc: &str) -> &mut Self {
        self.descs[0].insert(name.into(), desc.into());
        self
    }

    /// States the type description of the import called `name`, as
    /// [`Self::describe_export`] does for an export.
    pub fn describe_import(&mut self, name: &str, desc: &str) -> &mut Self {
        self.descs[1].insert(name.into(), desc.into());
        self
    }

    /// Sets `Dynhdr.flags` (for example `format::FLAG_LOW2G`).
    pub fn flags(&mut self, flags: u32) -> &mut Self {
        self.flags = flags;
        self
    }

    /// The image offset where data will start.
    pub fn data_start(&self) -> u32 {
        self.dataoff.unwrap_or_else(|| {
            align_up(self.text.len() as u64, u64::from(self.page.max(1)))
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(u32::MAX)
        })
    }

    /// Exports `name` at image offset `value` with signature `sig`.
    pub fn export(&mut self, name: &str, sig: u32, value: u32) -> &mut Self {
        self.exports.push((name.into(), sig, value));
        self
    }

    /// Adds an import and returns its index for [`Self::reloc`].
    pub fn import(&mut self, name: &str, sig: u32) -> u32 {
        self.imports.push((name.into(), sig));
        (self.imports.len() - 1) as u32
    }

    /// Adds `name` to the symbols table ([`kind::SYMBOLS`]): a function
    /// or data object of `size` bytes (not 0) at image offset `value` (on
    /// ARM, without the Thumb bit), `exported` or local. Names may repeat
    /// (two objects' `static` functions); the entries are sorted by value
    /// when the module is built, an exported one last among those at one
    /// value (the one [`Module::symbol_at`](crate::Module::symbol_at)
    /// names). A module with any symbol gets the table.
    pub fn symbol(&mut self, name: &str, value: u32, size: u32, exported: bool) -> &mut Self {
        self.symbols.push((name.into(), value, size, exported));
        self
    }

    /// Gives the module metadata ([`kind::METADATA`]): its setup and
    /// teardown functions are named, and must be among its exports when
    /// the module is built.
    pub fn metadata(&mut self, spec: crate::meta::MetaSpec) -> &mut Self {
        self.metadata = Some(spec);
        self
    }

    /// Gives the module unwind information for debuggers
    /// ([`kind::UNWIND`]): `eh_frame`, an `.eh_frame` whose PC-relative
    /// references were resolved for it to lie at image offset `at` (at or
    /// past the image's end).
    pub fn unwind(&mut self, at: u32, eh_frame: &[u8]) -> &mut Self {
        self.unwind = Some((at, eh_frame.to_vec()));
        self
    }

    /// Names the module's debug file ([`kind::DEBUGLINK`]): its `path`
    /// and the CRC-32 of its bytes.
    pub fn debuglink(&mut self, path: &str, crc: u32) -> &mut Self {
        self.debuglink = Some((crc, path.into()));
        self
    }

    /// Adds a relocation at image offset `offset`.
    pub fn reloc(&mut self, offset: u32, mode: u8, import: Option<u32>) -> &mut Self {
        self.relocs.push(Reloc {
            offset,
            mode,
            import,
        });
        self
    }

    /// Writes tables and relocations in the order given, unsorted and
    /// unchecked: for making malformed modules to test loaders with.
    pub fn keep_order(&mut self) -> &mut Self {
        self.keep_order = true;
        self
    }

    /// Whether to store a hash index over the exports (see
    /// [`crate::index`]): 16 to 32 bytes per export that make
    /// [`Module::find`](crate::Module::find) one probe. Off by default.
    pub fn index(&mut self, on: bool) -> &mut Self {
        self.index = on;
        self
    }

    /// Whether to store each import's name hash (the
    /// [`kind::IMPORT_HASHES`] table): 8 bytes per import that spare a
    /// loader binding through a host's hash index from hashing the names.
    /// Off by default.
    pub fn import_hashes(&mut self, on: bool) -> &mut Self {
        self.import_hashes = on;
        self
    }

    /// Pads the extension header so that the text starts at a multiple of
    /// `align` bytes in the file (a power of two, at most
    /// [`crate::format::MAX_TEXT_ALIGN`]): with a page size, a loader can map the text
    /// from the file instead of copying it ([`crate::FileSource`]). 1 (the
    /// default) adds no padding.
    pub fn text_file_align(&mut self, align: u32) -> &mut Self {
        self.text_align = align;
        self
    }

    /// Encodes the module.
    pub fn build(&self) -> Result<Vec<u8>, Error> {
        let mut exports: Vec<_> = self.exports.iter().collect();
        let mut order: Vec<u32> = (0..self.imports.len() as u32).collect();
        let mut relocs = self.relocs.clone();
        if !self.keep_order {
            exports.sort_by(|a, b| a.0.cmp(&b.0));
            order.sort_by(|&a, &b| self.imports[a as usize].0.cmp(&self.imports[b as usize].0));
            for w in exports.windows(2) {
                if w[0].0 == w[1].0 {
                    return Err(Error::Duplicate {
                        table: Table::Export,
                        name: SymName::new(&w[0].0),
                    });
                }
            }
            for w in order.windows(2) {
                let n = &self.imports[w[0] as usize].0;
                if *n == self.imports[w[1] as usize].0 {
                    return Err(Error::Duplicate {
                        table: Table::Import,
                        name: SymName::new(n),
                    });
                }
            }
            // Old index -> new index.
            let mut new_index = alloc::vec![0u32; order.len()];
            for (new, &old) in order.iter().enumerate() {
                new_index[old as usize] = new as u32;
            }
            for r in &mut relocs {
                if let Some(i) = r.import.as_mut() {
                    *i = *new_index.get(*i as usize).ok_or(Error::BadImportIndex {
                        index: 0,
                        import: *i,
                        nimport: order.len() as u32,
                    })?;
                }
                if arch::mode(self.arch, r.mode).is_none() {
                    return Err(Error::BadRelocMode {
                        index: 0,
                        mode: r.mode,
                        arch: self.arch,
                    });
                }
            }
            relocs.sort_by_key(|r| r.offset);
        }

        let too_big = |what| Error::BadHeader { what };
        let u32of = |v: usize| u32::try_from(v).map_err(|_| too_big("module too large"));
        let text = u32of(self.text.len())?;
        let data = u32of(self.data.len())?;
        let dataoff = self.data_start();
        if !self.keep_order && dataoff < text {
            return Err(too_big("data overlaps text"));
        }

        let mut strings = Vec::new();
        let mut exptab = Vec::new();
        for (name, sig, value) in &exports {
            let e = ExpEntry {
                name: u32of(strings.len())?,
                namelen: u32of(name.len())?,
                sig: *sig,
                value: *value,
            };
            strings.extend_from_slice(name.as_bytes());
            let at = exptab.len();
            exptab.resize(at + ExpEntry::SIZE, 0);
            e.write(&mut exptab[at..]).ok_or(too_big("export"))?;
        }
        let mut imptab = Vec::new();
        for &i in &order {
            let (name, sig) = &self.imports[i as usize];
            let e = ImpEntry {
                name: u32of(strings.len())?,
                namelen: u32of(name.len())?,
                sig: *sig,
            };
            strings.extend_from_slice(name.as_bytes());
            let at = imptab.len();
            imptab.resize(at + ImpEntry::SIZE, 0);
            e.write(&mut imptab[at..]).ok_or(too_big("import"))?;
        }
        // The symbols: an exported one's name is the export's bytes, and a
        // local name repeated is stored once.
        let mut symbols: Vec<_> = self.symbols.iter().collect();
        if !self.keep_order {
            symbols.sort_by_key(|s| (s.1, s.3));
        }
        let mut symtab = Vec::new();
        if !symbols.is_empty() {
            let mut names: alloc::collections::BTreeMap<&str, u32> = Default::default();
            let mut at = 0u32;
            for (name, ..) in &exports {
                names.insert(name, at);
                at += u32of(name.len())?;
            }
            for (name, value, size, exported) in &symbols {
                let off = match names.get(name.as_str()) {
                    Some(&off) => off,
                    None => {
                        let off = u32of(strings.len())?;
                        strings.extend_from_slice(name.as_bytes());
                        names.insert(name, off);
                        off
                    }
                };
                let e = SymEntry {
                    value: *value,
                    size: *size,
                    name: off,
                    namelen: u32of(name.len())?,
                    flags: if *exported { SYM_EXPORTED } else { 0 },
                };
                let at = symtab.len();
                symtab.resize(at + SymEntry::SIZE, 0);
                e.write(&mut symtab[at..]).ok_or(too_big("symbol"))?;
            }
        }
        let mut metatab = Vec::new();
        if let Some(m) = &self.metadata {
            let mut string = |s: &str| -> Result<(u32, u32), Error> {
                let at = u32of(strings.len())?;
                strings.extend_from_slice(s.as_bytes());
                Ok((at, u32of(s.len())?))
            };
            let mut recs = Vec::new();
            let (n, nl) = string(&m.name)?;
            let (c, cl) = string(&m.class)?;
            let v = m.version;
            recs.push(MetaEntry {
                tag: META_MODULE,
                str: n,
                len: nl,
                a: v.major,
                b: v.minor,
                c: v.patch,
                d: c,
                e: cl,
                f: 0,
            });
            for (class, major, minor) in &m.abis {
                let (s, l) = string(class)?;
                recs.push(MetaEntry {
                    tag: META_ABI,
                    str: s,
                    len: l,
                    a: *major,
                    b: *minor,
                    ..MetaEntry::default()
                });
            }
            for (name, r) in &m.dependencies {
                let (s, l) = string(name)?;
                recs.push(MetaEntry {
                    tag: META_DEPENDS,
                    str: s,
                    len: l,
                    a: r.min.major,
                    b: r.min.minor,
                    c: r.min.patch,
                    d: r.max.major,
                    e: r.max.minor,
                    f: r.max.patch,
                });
            }
            for (tag, f) in [(META_SETUP, &m.setup), (META_TEARDOWN, &m.teardown)] {
                let Some(f) = f else { continue };
                let i = exports
                    .iter()
                    .position(|e| e.0 == *f)
                    .ok_or(Error::BadTable {
                        kind: kind::METADATA,
                        what: "setup or teardown function not exported",
                    })?;
                recs.push(MetaEntry {
                    tag,
                    a: u32of(i)?,
                    ..MetaEntry::default()
                });
            }
            for r in &recs {
                let at = metatab.len();
                metatab.resize(at + MetaEntry::SIZE, 0);
                r.write(&mut metatab[at..]).ok_or(too_big("metadata"))?;
            }
        }
        let mut hashes = Vec::new();
        if self.import_hashes {
            for &i in &order {
                let h = crate::index::hash(self.imports[i as usize].0.as_bytes());
                hashes.extend_from_slice(&h.to_be_bytes());
            }
        }
        let encode = |import: bool| {
            let mut bytes = Vec::new();
            let mut prev = 0;
            let mut n = 0u32;
            for r in relocs.iter().filter(|r| r.import.is_some() == import) {
                let mut rec = [0; crate::format::RELOC_MAX_BYTES];
                let len = r.encode(prev, &mut rec);
                bytes.extend_from_slice(&rec[..len]);
                prev = r.offset;
                n += 1;
            }
            (n, bytes)
        };
        let (nbase, base_relocs) = encode(false);
        let (nimp, import_relocs) = encode(true);

        let mut idxbytes = Vec::new();
        if self.index {
            let slots = crate::index::build_vec(exports.len(), |i| exports[i].0.as_bytes())
                .map_err(|e| e.at(Table::Export))?;
            idxbytes = slots.iter().flat_map(|s| s.to_be_bytes()).collect();
        }
        let funcs = |v: &[u32]| -> Vec<u8> { v.iter().flat_map(|o| o.to_be_bytes()).collect() };
        let mut types = Vec::new();
        if self.descs.iter().any(|d| !d.is_empty()) {
            let names = exports
                .iter()
                .map(|e| (0, &e.0))
                .chain(order.iter().map(|&i| (1, &self.imports[i as usize].0)));
            for (table, name) in names {
                let e = match self.descs[table].get(name) {
                    Some(d) => {
                        let at = u32of(strings.len())?;
                        strings.extend_from_slice(d.as_bytes());
                        TypeEntry {
                            name: at,
                            len: u32of(d.len())?,
                        }
                    }
                    None => TypeEntry::default(),
                };
                let at = types.len();
                types.resize(at + TypeEntry::SIZE, 0);
                e.write(&mut types[at..]).ok_or(too_big("type"))?;
            }
        }

        if !text_align_ok(self.text_align) {
            return Err(too_big("text alignment not a power of two up to 64 KiB"));
        }
        // The tables, in the order they are written; empty ones are left out.
        let unwtab = match &self.unwind {
            Some((at, bytes)) => {
                let mut t = Vec::with_capacity(8 + bytes.len());
                t.extend_from_slice(&at.to_be_bytes());
                t.extend_from_slice(&0u32.to_be_bytes());
                t.extend_from_slice(bytes);
                t
            }
            None => Vec::new(),
        };
        let linktab = match &self.debuglink {
            Some((crc, path)) => {
                let mut t = crc.to_be_bytes().to_vec();
                t.extend_from_slice(path.as_bytes());
                t
            }
            None => Vec::new(),
        };
        let tables: [(u16, u32, &[u8]); 14] = [
            (kind::STRINGS, 0, &strings),
            (kind::EXPORTS, u32of(exports.len())?, &exptab),
            (kind::INDEX, u32of(idxbytes.len() / 8)?, &idxbytes),
            (kind::TYPES, u32of(types.len() / TypeEntry::SIZE)?, &types),
            (kind::INIT, u32of(self.init.len())?, &funcs(&self.init)),
            (kind::FINI, u32of(self.fini.len())?, &funcs(&self.fini)),
            (kind::SYMBOLS, u32of(symbols.len())?, &symtab),
            (
                kind::METADATA,
                u32of(metatab.len() / MetaEntry::SIZE)?,
                &metatab,
            ),
            (kind::UNWIND, 0, &unwtab),
            (kind::DEBUGLINK, 0, &linktab),
            (kind::IMPORTS, u32of(order.len())?, &imptab),
            (kind::IMPORT_HASHES, u32of(hashes.len() / 8)?, &hashes),
            (kind::IMPORT_RELOCS, nimp, &import_relocs),
            (kind::RELOCS, nbase, &base_relocs),
        ];
        let present = || tables.iter().filter(|t| !t.2.is_empty());
        let ntable = present().count();
        let plain = self.arch.exec_size() + Dynhdr::SIZE + ntable * TableEntry::SIZE;
        let textoff = plain.next_multiple_of(self.text_align as usize);
        let mut at = textoff + self.text.len() + self.data.len();
        let mut dir = Vec::new();
        for &(k, count, bytes) in present() {
            let e = TableEntry {
                kind: k,
                flags: if kind::required(k) { TABLE_REQUIRED } else { 0 },
                count,
                offset: u32of(at)?,
                size: u32of(bytes.len())?,
            };
            let p = dir.len();
            dir.resize(p + TableEntry::SIZE, 0);
            e.write(&mut dir[p..]).ok_or(too_big("directory"))?;
            at += bytes.len();
        }
        u32of(at)?;
        let exec = Exec {
            magic: DYN_MAGIC | self.arch.magic(),
            text,
            data,
            bss: self.bss,
            syms: 0,
            entry: NO_ENTRY,
            spsz: 0,
            pcsz: 0,
        };
        let hdr = Dynhdr {
            version: VERSION,
            hdrsize: u32of(textoff - self.arch.exec_size())?,
            flags: self.flags,
            align: self.align,
            dataoff,
            ntable: u32of(ntable)?,
        };
        let mut out = alloc::vec![0u8; textoff];
        exec.write(&mut out).ok_or(too_big("header"))?;
        let mut at = Exec::SIZE;
        if self.arch.fat_header() {
            out[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
            at += 8;
        }
        hdr.write(&mut out[at..]).ok_or(too_big("header"))?;
        at += Dynhdr::SIZE;
        out[at..at + dir.len()].copy_from_slice(&dir);
        out.extend_from_slice(&self.text);
        out.extend_from_slice(&self.data);
        for (_, _, bytes) in present() {
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }
}
