//! The layers of the library, checked on its source: dependencies run one way,
//! domain <- sources <- use cases <- tools <- server <- transport <- entry, and the imports
//! that must never exist fail this test with the file and the line. It reads `crate::<module>`
//! paths and `use super::...` as text (every cross-module reference in this crate is written
//! that way), so a new forbidden import is caught before review.

use std::path::{Path, PathBuf};

/// The part a source file belongs to (the README's "Layout"), by its path under src/.
fn part(rel: &str) -> &'static str {
    let top = rel.split('/').next().unwrap_or("");
    match top {
        "domain" | "error.rs" => "domain",
        "sources" | "demo_data.rs" | "cur_file.rs" => "sources",
        "config.rs" | "accounts.rs" => "config",
        "usecases" => "usecases",
        "chart.rs" => "charts",
        "tools" => "tools",
        "server.rs" | "prompts.rs" | "resources.rs" => "server",
        "transport" | "auth" => "transport",
        "main.rs" | "curgen.rs" | "cli.rs" | "doctor.rs" | "terminal.rs" | "lib.rs" => "entry",
        other => panic!("src/{other}: no part; add it to tests/it/layers.rs and the README"),
    }
}

/// The part a `crate::<module>` path names.
fn part_of_module(module: &str) -> Option<&'static str> {
    let file = match module {
        "domain" | "sources" | "usecases" | "tools" | "transport" | "auth" => {
            return Some(part(module));
        }
        "error" | "demo_data" | "cur_file" | "config" | "accounts" | "chart" | "server"
        | "prompts" | "resources" | "cli" | "doctor" | "terminal" => format!("{module}.rs"),
        _ => return None,
    };
    Some(part(&file))
}

/// (from, to, why): imports that must never exist.
const NEVER: &[(&str, &str, &str)] = &[
    ("domain", "sources", "the domain does no I/O"),
    ("domain", "config", "the domain knows no flags"),
    ("domain", "usecases", "the domain is the bottom"),
    ("domain", "tools", "the domain is the bottom"),
    ("domain", "server", "the domain is the bottom"),
    ("domain", "transport", "the domain is the bottom"),
    ("domain", "entry", "the domain is the bottom"),
    (
        "sources",
        "usecases",
        "backends answer questions, they know no use case",
    ),
    (
        "sources",
        "tools",
        "backends answer questions, they know no tool",
    ),
    ("sources", "server", "backends know no server"),
    ("sources", "transport", "backends know no transport"),
    ("sources", "entry", "backends know no command line"),
    (
        "sources",
        "config",
        "flags become each backend's settings, not the reverse",
    ),
    ("config", "usecases", "configuration knows no use case"),
    ("config", "tools", "configuration knows no tool"),
    ("config", "server", "configuration knows no server"),
    ("usecases", "tools", "use cases know no tool"),
    ("usecases", "server", "use cases know no server"),
    (
        "usecases",
        "transport",
        "use cases do not know how they were called",
    ),
    ("usecases", "entry", "use cases know no command line"),
    ("charts", "tools", "charts draw typed answers from below"),
    ("charts", "server", "charts draw typed answers from below"),
    (
        "tools",
        "server",
        "a tool knows its context, not the server",
    ),
    (
        "tools",
        "transport",
        "a tool does not know how it was called",
    ),
    ("tools", "entry", "tools know no command line"),
    ("server", "entry", "the server knows no command line"),
    (
        "transport",
        "entry",
        "transports take settings, not CLI types",
    ),
];

/// Every source file of the library and of its core crate (core/src, re-exported under the
/// same module paths), as (shown path, path under its src/, file).
fn library_files() -> Vec<(String, String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["src", "core/src"] {
        let src = root.join(dir);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        for file in files {
            let rel = file
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            // The core crate's root only declares its modules.
            if dir == "core/src" && rel == "lib.rs" {
                continue;
            }
            out.push((format!("{dir}/{rel}"), rel, file));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` a line names, outside comments.
fn crate_modules(line: &str) -> Vec<&str> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(i, _)| {
            // Not `bedrock_cost_mcp::...` or another crate's `xcrate::`.
            *i == 0
                || !code.as_bytes()[i - 1].is_ascii_alphanumeric() && code.as_bytes()[i - 1] != b'_'
        })
        .map(|(i, _)| {
            let rest = &code[i + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// One cross-part reference: (file shown, line number, from part, to part, the line).
type Import = (String, usize, &'static str, &'static str, String);

/// Every reference from one part to another in the library's own code (unit tests, which may
/// reach across layers to build their fixtures, are left out).
fn imports() -> Vec<Import> {
    let files = library_files();
    assert!(files.len() > 40, "read {} files", files.len());
    assert!(
        files
            .iter()
            .any(|(shown, ..)| shown == "core/src/domain/period.rs"),
        "the core crate is read too"
    );
    let mut out = Vec::new();
    for (shown, rel, file) in &files {
        let from = part(rel);
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            for module in crate_modules(line) {
                if let Some(to) = part_of_module(module) {
                    out.push((shown.clone(), n + 1, from, to, line.trim().to_string()));
                }
            }
        }
    }
    assert!(
        out.len() > 200,
        "only {} crate:: references read: is the parser broken?",
        out.len()
    );
    out
}

#[test]
fn dependencies_run_one_way() {
    let broken: Vec<String> = imports()
        .into_iter()
        .filter_map(|(shown, n, from, to, line)| {
            NEVER
                .iter()
                .find(|(f, t, _)| *f == from && *t == to)
                .map(|(_, _, why)| format!("{shown}:{n}: {from} -> {to} ({why}): {line}"))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "imports that must never exist:\n{}",
        broken.join("\n")
    );
}

/// The arrows left in a circle: peeling off, again and again, the parts that import no part
/// left; what cannot be peeled imports each other in a circle (empty: there is none).
fn circle<'a>(arrows: &std::collections::BTreeMap<(&'a str, &'a str), String>) -> Vec<String> {
    let mut left: std::collections::BTreeSet<&str> =
        arrows.keys().flat_map(|(f, t)| [*f, *t]).collect();
    loop {
        let ground: Vec<&str> = left
            .iter()
            .copied()
            .filter(|p| !arrows.keys().any(|(f, t)| f == p && left.contains(t)))
            .collect();
        if ground.is_empty() {
            break;
        }
        for p in ground {
            left.remove(p);
        }
    }
    arrows
        .iter()
        .filter(|((f, t), _)| left.contains(f) && left.contains(t))
        .map(|((f, t), at)| format!("{f} -> {t}: {at}"))
        .collect()
}

/// The parts import each other without a circle (one import of each arrow of a circle is
/// shown).
#[test]
fn the_parts_form_no_circle() {
    let mut arrows = std::collections::BTreeMap::new();
    for (shown, n, from, to, line) in imports() {
        if from != to {
            arrows
                .entry((from, to))
                .or_insert_with(|| format!("{shown}:{n}: {line}"));
        }
    }
    let parts: std::collections::BTreeSet<&str> =
        arrows.keys().flat_map(|(f, t)| [*f, *t]).collect();
    assert!(parts.len() >= 8, "parts seen: {parts:?}");
    let left = circle(&arrows);
    assert!(
        left.is_empty(),
        "parts that import each other in a circle:\n{}",
        left.join("\n")
    );
    // The check finds a circle where there is one, however long.
    let mut with_circle = arrows.clone();
    with_circle.insert(("domain", "entry"), "made up".into());
    assert!(
        circle(&with_circle)
            .iter()
            .any(|a| a.starts_with("domain -> entry")),
        "a made-up import from the bottom to the top closes a circle"
    );
}

/// Only `sources/` calls AWS: no other file sends an SDK request (`aws_sdk_<service>::` paths
/// other than types held or matched). Files that still name SDK types are listed, with why.
#[test]
fn only_sources_call_aws() {
    // Doctor's probes call IAM, STS, Budgets and Athena directly (issue #21 moves them).
    const NAMING_SDK_TYPES: &[&str] = &["src/doctor.rs"];
    let mut found = Vec::new();
    for (shown, rel, file) in &library_files() {
        if (shown.starts_with("src/") && rel.starts_with("sources/"))
            || NAMING_SDK_TYPES.contains(&shown.as_str())
        {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("aws_sdk_") {
                found.push(format!("{shown}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "AWS SDK outside sources/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_parser_reads_what_it_should() {
    assert_eq!(crate_modules("use crate::tools::spend::X;"), ["tools"]);
    assert_eq!(
        crate_modules("    let a = crate::domain::x(crate::sources::y);"),
        ["domain", "sources"]
    );
    assert!(crate_modules("use bedrock_cost_mcp::server::Server;").is_empty());
    assert!(crate_modules("// see crate::server").is_empty());
    assert_eq!(part("sources/cur.rs"), "sources");
    assert_eq!(part_of_module("chart"), Some("charts"));
    assert_eq!(part_of_module("clock"), None);
}
