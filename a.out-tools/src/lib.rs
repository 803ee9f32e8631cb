//! The library behind the `aout` tool: the linker that turns ELF objects
//! into dynld modules, the readers of signature and metadata statements, and the host
//! export-table generator. `aout(1)` documents the behaviour.

mod desc;
pub mod dwarfsig;
pub mod exports;
pub mod input;
pub mod link;
pub mod modsec;
pub mod sigsec;
pub mod stubs;
