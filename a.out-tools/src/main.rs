//! `aout`: inspect dynld modules.

use clap::{Parser, Subcommand};
use dynld::{arch, Limits, ModuleView};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "aout", version, about = "Inspect dynld modules")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a module's headers, sizes, tables and relocation counts per mode.
    Dump {
        /// List every relocation.
        #[arg(long)]
        relocs: bool,
        /// The module file.
        module: PathBuf,
    },
    /// List a module's exports and imports, nm-style.
    Nm {
        /// The module file.
        module: PathBuf,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn view<'a>(path: &Path, bytes: &'a [u8]) -> Result<ModuleView<'a>, String> {
    ModuleView::parse(bytes, &Limits::DEFAULT).map_err(|e| format!("{}: {e}", path.display()))
}

/// `T` for text, `D` for data, `B` for bss.
fn kind(v: &ModuleView<'_>, value: u32) -> char {
    let value = value as usize;
    let dataoff = v.header().dataoff as usize;
    if value < v.exec().text as usize {
        'T'
    } else if value < dataoff + v.exec().data as usize {
        'D'
    } else {
        'B'
    }
}

fn dump(path: &Path, relocs: bool) -> Result<(), String> {
    let bytes = read(path)?;
    let v = view(path, &bytes)?;
    let (e, h) = (v.exec(), v.header());
    println!(
        "{}: dynld module, format version {}, {}",
        path.display(),
        h.version,
        v.arch()
    );
    println!("magic   {:#010x}", e.magic);
    println!("text    {:#x} ({} bytes) at 0", e.text, e.text);
    println!(
        "data    {:#x} ({} bytes) at {:#x}",
        e.data, e.data, h.dataoff
    );
    println!("bss     {:#x} ({} bytes)", e.bss, e.bss);
    println!("image   {} bytes, align {}", v.image_size(), h.align);
    match v.entry() {
        Some(x) => println!("entry   {x:#x}"),
        None => println!("entry   none"),
    }
    println!("exports {} (table at {:#x})", h.nexport, h.expoff);
    println!("imports {} (table at {:#x})", h.nimport, h.impoff);
    println!("strings {} bytes at {:#x}", h.strsize, h.stroff);
    println!(
        "relocs  {} in {} bytes at {:#x}",
        h.nreloc, h.relsize, h.reloff
    );
    let modes = arch::modes(v.arch());
    let mut counts = vec![0usize; modes.len()];
    for r in v.relocs() {
        if let Some(i) = modes.iter().position(|m| m.number == r.mode) {
            counts[i] += 1;
        }
    }
    for (m, n) in modes.iter().zip(&counts) {
        if *n > 0 {
            println!("  {:<12} {n}", m.name);
        }
    }
    if relocs {
        let imports: Vec<_> = v.imports().collect();
        for r in v.relocs() {
            let name = arch::mode(v.arch(), r.mode).map_or("?", |m| m.name);
            match r.import {
                Some(i) => println!(
                    "{:08x} {name:<12} {}",
                    r.offset,
                    imports.get(i as usize).map_or("?", |s| s.name)
                ),
                None => println!("{:08x} {name}", r.offset),
            }
        }
    }
    Ok(())
}

fn nm(path: &Path) -> Result<(), String> {
    let bytes = read(path)?;
    let v = view(path, &bytes)?;
    for s in v.exports() {
        println!(
            "{:016x} {} {} sig={:#010x}",
            s.value,
            kind(&v, s.value),
            s.name,
            s.sig
        );
    }
    for s in v.imports() {
        println!("{:16} U {} sig={:#010x}", "", s.name, s.sig);
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Dump { relocs, module } => dump(module, *relocs),
        Cmd::Nm { module } => nm(module),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aout: {e}");
            ExitCode::FAILURE
        }
    }
}
