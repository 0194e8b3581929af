//! The layering rules of the architecture (README, "Architecture"), checked
//! on the sources: `protocol/` imports only std, `bytes`, `simdutf8` and
//! itself; `deflate/` only those, `flate2`, `protocol/` and itself; the
//! codec nothing above the protocol. A lower layer never imports a higher
//! one.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The crates this package may name: `std`, `core`, `alloc` and its
/// dependencies of every kind, from `Cargo.toml`.
fn known_crates() -> Vec<String> {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut out: Vec<String> = ["std", "core", "alloc"].map(String::from).to_vec();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line.ends_with("dependencies]");
        } else if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                out.push(name.trim().replace('-', "_"));
            }
        }
    }
    out
}

/// The paths a line of code names: the roots of `use` trees that are
/// crates, and every `crate::a` path, as `crate::a`. Comments are skipped.
fn named_paths(line: &str) -> Vec<String> {
    let crates = known_crates();
    named_paths_among(line, &crates)
}

fn named_paths_among(line: &str, crates: &[String]) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let code = code.split(" //").next().unwrap_or(code);
    let mut out = Vec::new();
    let use_tree = code
        .strip_prefix("pub use ")
        .or_else(|| code.strip_prefix("pub(crate) use "))
        .or_else(|| code.strip_prefix("use "));
    if let Some(tree) = use_tree {
        let root = tree.trim_start_matches("::").split(['{', ':', ';', ' ']).next().unwrap_or("");
        if root == "self" || root == "super" || crates.iter().any(|c| c == root) {
            out.push(root.to_string());
        }
        // `use crate::{a::B, C}`: each item's first segment.
        if let Some(group) = tree.strip_prefix("crate::{") {
            for item in group.split(',') {
                let module: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !module.is_empty() {
                    out.push(format!("crate::{module}"));
                }
            }
        }
    }
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let module: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let before = rest[..at].chars().last();
        // `silverback_crate::` and the like are not this crate.
        if !module.is_empty() && !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            out.push(format!("crate::{module}"));
        }
        rest = after;
    }
    // A path used without `use` (`tokio::spawn(..)`).
    for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        if let Some((root, _)) = word.split_once("::") {
            if ["tokio", "tokio_util", "futures_util", "futures_core", "flate2", "http", "hyper", "httparse"]
                .contains(&root)
            {
                out.push(root.to_string());
            }
        }
    }
    out
}

/// Lists every path named in `dir` that is not in `allowed`, as
/// `file:line: path`.
fn violations(dir: &str, allowed: &[&str], test_only: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let crates = known_crates();
    let mut out = Vec::new();
    let files = if root.is_dir() { sources(&root) } else { vec![root.with_extension("rs")] };
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let is_test_file = name == "tests.rs" || name.ends_with("_tests.rs");
        for (n, line) in text.lines().enumerate() {
            for path in named_paths_among(line, &crates) {
                let ok = path == "self"
                    || path == "super"
                    || allowed.contains(&path.as_str())
                    || (is_test_file && test_only.contains(&path.as_str()));
                if !ok {
                    out.push(format!("{}:{}: {path}", file.display(), n + 1));
                }
            }
        }
    }
    out
}

#[test]
fn protocol_imports_only_std_bytes_simdutf8_and_itself() {
    let bad = violations("protocol", &["std", "core", "alloc", "bytes", "simdutf8", "crate::protocol"], &[]);
    assert!(bad.is_empty(), "protocol/ reaches outside its layer:\n{}", bad.join("\n"));
}

#[test]
fn deflate_imports_only_the_protocol_and_flate2() {
    let allowed = ["std", "core", "alloc", "bytes", "flate2", "crate::protocol", "crate::deflate"];
    let bad = violations("deflate", &allowed, &["proptest"]);
    assert!(bad.is_empty(), "deflate/ reaches outside its layer:\n{}", bad.join("\n"));
}

#[test]
fn the_codec_sits_on_the_protocol_alone() {
    let allowed = ["std", "bytes", "tokio_util", "crate::protocol", "crate::error", "crate::config"];
    let bad = violations("codec", &allowed, &[]);
    assert!(bad.is_empty(), "codec.rs reaches above its layer:\n{}", bad.join("\n"));
}

#[test]
fn broadcast_sits_on_the_connection() {
    let allowed = [
        "std",
        "tokio",
        "futures_util",
        "crate::broadcast",
        "crate::error",
        "crate::protocol",
        "crate::Message",
        "crate::PreparedMessage",
        "crate::WriteHalf",
    ];
    let bad = violations("broadcast", &allowed, &[]);
    assert!(bad.is_empty(), "broadcast/ reaches outside its layer:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_sees_what_it_must() {
    assert_eq!(named_paths("use tokio::io::AsyncRead;"), ["tokio", "tokio"]);
    assert_eq!(named_paths("use crate::codec::Event;"), ["crate::codec"]);
    assert_eq!(named_paths("    let x = crate::deflate::Decompressor::new(15, false);"), ["crate::deflate"]);
    assert_eq!(named_paths("/// [`Codec`](crate::Codec)"), Vec::<String>::new());
    assert_eq!(named_paths("pub use super::x;"), ["super"]);
    assert_eq!(named_paths("use crate::{config::Config, Message};"), ["crate::config", "crate::Message"]);
    assert_eq!(named_paths("pub use compress::Compressor;"), Vec::<String>::new());
}
