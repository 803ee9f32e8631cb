//! The `aout` command line: help text, arguments, hostile names and files,
//! closed output.

use std::process::{Command, Output};

mod common;
#[allow(unused_imports)]
use common::workdir;

fn aout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aout"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The lines of `help` from the one starting with `opt` to the next option.
fn option_help<'a>(help: &'a str, opt: &str) -> &'a str {
    let start = help
        .find(&format!("      {opt} "))
        .unwrap_or_else(|| panic!("{opt} not in {help}"));
    let rest = &help[start + opt.len() + 6..];
    let end = rest.find("\n      --").unwrap_or(rest.len());
    &help[start..start + opt.len() + 6 + end]
}

#[test]
fn link_help_describes_each_option_in_its_own_words() {
    let o = aout(&["link", "--help"]);
    assert!(o.status.success());
    let help = text(&o.stdout);
    assert!(!help.contains("[`"), "rustdoc link in help:\n{help}");
    let index = option_help(&help, "--index");
    let hashes = option_help(&help, "--import-hashes");
    assert!(index.contains("at least 32 exports"), "{index}");
    assert!(!index.contains("imports"), "{index}");
    assert!(hashes.contains("at least 32 imports"), "{hashes}");
    assert!(!hashes.contains("exports"), "{hashes}");
    for h in [index, hashes] {
        assert!(h.contains("always") && h.contains("never"), "{h}");
    }
}
