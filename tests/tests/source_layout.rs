//! The layout rules ARCHITECTURE.md promises, checked on the sources:
//! no two modules of a crate import each other through any chain, and no
//! non-test source file is over 600 lines. Plain text reading (no parser):
//! comments and the trailing `#[cfg(test)]` block are left out; the crate
//! root (lib.rs, main.rs, a bin) only wires modules together and
//! re-exports, so edges into and out of it do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("read_dir entry").path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source before its `#[cfg(test)] mod` block (test modules come
/// last in this code base).
fn without_tests(src: &str) -> &str {
    match src.find("#[cfg(test)]\nmod ") {
        Some(i) => &src[..i],
        None => src,
    }
}

/// The source without comments and without its tests.
fn production_text(src: &str) -> String {
    let src = without_tests(src);
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            // Skip string literals (SQL and messages name no modules).
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            let ch = src[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Module path ("" for the root) of a file under `src`, and which crate
/// root it belongs to (bins are crates of their own).
fn module_of(src: &Path, file: &Path) -> (String, String) {
    let rel = file.strip_prefix(src).expect("under src");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts[0] == "bin" {
        let bin = parts[1].trim_end_matches(".rs").to_owned();
        let inner: Vec<&str> = parts[2..]
            .iter()
            .map(|s| s.trim_end_matches(".rs"))
            .filter(|s| *s != "main" && *s != "mod")
            .collect();
        return (format!("bin/{bin}"), inner.join("::"));
    }
    let last = parts.last().expect("file name").trim_end_matches(".rs");
    let mut segs: Vec<&str> = parts[..parts.len() - 1]
        .iter()
        .map(|s| s.as_str())
        .collect();
    if parts.len() == 1 && (last == "lib" || last == "main") {
        return (String::new(), String::new());
    }
    if last != "mod" {
        segs.push(last);
    }
    (String::new(), segs.join("::"))
}

/// Paths as written after `crate::`, `super::`, `self::` or a child
/// module's name, with `{a, b::c}` groups expanded.
fn paths_from(text: &str, start: usize) -> Vec<Vec<String>> {
    let b = text.as_bytes();
    let mut i = start;
    let mut prefix: Vec<String> = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            return group(text, i)
                .into_iter()
                .map(|tail| prefix.iter().cloned().chain(tail).collect())
                .collect();
        }
        let seg_start = i;
        while i < b.len() && is_ident_byte(b[i]) {
            i += 1;
        }
        if i > seg_start {
            prefix.push(text[seg_start..i].to_owned());
        }
        if i > seg_start && b[i..].starts_with(b"::") {
            i += 2;
            continue;
        }
        return vec![prefix];
    }
}

/// The paths of a `{a, b::c}` group starting at `open`.
fn group(text: &str, open: usize) -> Vec<Vec<String>> {
    let b = text.as_bytes();
    let mut depth = 0;
    let mut items = Vec::new();
    let mut item_start = open + 1;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => {
                items.push(item_start..i);
                item_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    items.push(item_start..i.min(b.len()));
    let mut all = Vec::new();
    for r in items {
        let item = text[r].trim();
        if !item.is_empty() {
            all.extend(paths_from(&format!("{item} "), 0));
        }
    }
    all
}

/// The module a path names: its longest prefix that is a module.
fn resolve(modules: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn parent(m: &str) -> String {
    m.rsplit_once("::")
        .map(|(p, _)| p.to_owned())
        .unwrap_or_default()
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Edges between the modules of one crate root.
fn edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in files {
        if m.is_empty() {
            continue;
        }
        let children: BTreeSet<&str> = modules
            .iter()
            .filter(|c| parent(c) == *m)
            .map(|c| c.rsplit("::").next().unwrap_or(c))
            .collect();
        let b = text.as_bytes();
        let mut targets = BTreeSet::new();
        let mut i = 0;
        while i < b.len() {
            // Not an import: after another path segment, or a visibility
            // such as `pub(in crate::web)`.
            if i > 0 && (is_ident_byte(b[i - 1]) || b[i - 1] == b':') || b[..i].ends_with(b"(in ") {
                i += 1;
                continue;
            }
            let word_end = (i..b.len())
                .find(|&j| !is_ident_byte(b[j]))
                .unwrap_or(b.len());
            if word_end == i || !b[word_end..].starts_with(b"::") {
                i = word_end.max(i + 1);
                continue;
            }
            let word = &text[i..word_end];
            let base: Option<Vec<String>> = match word {
                "crate" => Some(Vec::new()),
                "super" => {
                    let mut p = parent(m);
                    let mut j = word_end + 2;
                    while b[j..].starts_with(b"super::") {
                        p = parent(&p);
                        j += 7;
                    }
                    Some(
                        p.split("::")
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect(),
                    )
                }
                "self" => Some(m.split("::").map(String::from).collect()),
                w if children.contains(w) => {
                    let mut p: Vec<String> = m.split("::").map(String::from).collect();
                    p.push(w.to_owned());
                    targets.insert(p.join("::"));
                    None
                }
                _ => None,
            };
            if let Some(base) = base {
                let mut start = word_end + 2;
                while b[start..].starts_with(b"super::") {
                    start += 7;
                }
                for tail in paths_from(text, start) {
                    let mut p = base.clone();
                    p.extend(tail);
                    if let Some(t) = resolve(&modules, &p) {
                        targets.insert(t);
                    }
                }
            }
            i = word_end;
        }
        targets.remove(m);
        targets.remove("");
        out.insert(m.clone(), targets);
    }
    out
}

/// Strongly connected components of more than one module.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: Vec<&String> = g.keys().collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for t in g.get(&n).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) {
            continue;
        }
        let mut scc: Vec<String> = reachable[n]
            .iter()
            .filter(|t| reachable.get(t).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        if scc.len() > 1 {
            scc.sort();
            done.extend(scc.iter().cloned());
            out.push(scc);
        }
    }
    out
}

fn crate_sources() -> Vec<(PathBuf, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(workspace().join("crates")).expect("crates/") {
        let src = e.expect("entry").path().join("src");
        let mut files = Vec::new();
        rs_files(&src, &mut files);
        files.sort();
        out.push((src, files));
    }
    assert!(out.len() >= 5, "found only {} crates", out.len());
    out
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut found = Vec::new();
    let mut modules_seen = 0;
    for (src, files) in crate_sources() {
        let mut roots: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for f in files {
            let (root, module) = module_of(&src, &f);
            let text = production_text(&fs::read_to_string(&f).expect("read source"));
            roots.entry(root).or_default().insert(module, text);
        }
        for (root, files) in &roots {
            modules_seen += files.len();
            let g = edges(files);
            if std::env::var_os("SHOW_MODULE_EDGES").is_some() {
                for (m, ts) in &g {
                    eprintln!("{} {m} -> {ts:?}", src.display());
                }
            }
            for scc in cycles(&g) {
                found.push(format!("{} ({root}): {}", src.display(), scc.join(" <-> ")));
            }
        }
    }
    assert!(modules_seen > 100, "read only {modules_seen} modules");
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle_through_a_parent() {
    let files: BTreeMap<String, String> = [
        ("", ""),
        ("web", "use self::auth::Gate; pub struct AppState;"),
        ("web::auth", "use super::AppState; pub struct Gate;"),
        ("web::page", "use crate::web::auth::Gate;"),
        ("db", "use crate::{web::page, other};"),
        ("other", ""),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_owned(), production_text(t)))
    .collect();
    let g = edges(&files);
    assert_eq!(
        g["db"],
        BTreeSet::from(["web::page".to_owned(), "other".to_owned()])
    );
    assert_eq!(
        cycles(&g),
        vec![vec!["web".to_owned(), "web::auth".to_owned()]]
    );
    // Comments and strings name nothing.
    let quiet = production_text("// use super::x;\nlet s = \"crate::web\";");
    assert!(
        !quiet.contains("super") && !quiet.contains("crate"),
        "{quiet}"
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut long = Vec::new();
    let mut seen = 0;
    for (_, files) in crate_sources() {
        for f in files {
            let text = fs::read_to_string(&f).expect("read source");
            let code = without_tests(&text);
            seen += 1;
            let n = code.lines().count();
            if n > MAX_LINES {
                long.push(format!("{}: {n} lines", f.display()));
            }
        }
    }
    assert!(seen > 100, "read only {seen} files");
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (tests excluded):\n{}",
        long.join("\n")
    );
}
