//! No module cycles: for every crate under `crates/`, the graph of its
//! top-level modules (an edge `a → b` when a file of `a` names `crate::b`,
//! or `crate::X` where the crate root's `use b::...` brings `X` in) must
//! have no cycle beyond the ones listed in [`KNOWN`], which are being
//! taken apart (issue 15) and may only shrink. A new cycle, or a module
//! joining a known one, fails with the cycle printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles that exist today, per crate, as the set of modules in one
/// strongly connected component. Remove an entry once it is broken.
const KNOWN: &[(&str, &[&str])] = &[];

/// The top-level module a source file belongs to (`None` for the crate
/// root and binaries).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    if rel.components().count() == 1 {
        let stem = first.strip_suffix(".rs")?;
        return (stem != "lib" && stem != "main").then(|| stem.to_owned());
    }
    (first != "bin").then(|| first.to_owned())
}

/// The modules a source text names through `crate::` paths (grouped
/// imports `crate::{a, b::c}` included), outside comments.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            // `teeheap_kernel::crate::` cannot occur; skip `$crate::` too.
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                let mut depth = 0;
                let mut item = String::new();
                for c in group[..end].chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(ident(&item));
                            item.clear();
                        }
                        _ => item.push(c),
                    }
                }
                out.insert(ident(&item));
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.remove("");
    out
}

fn ident(s: &str) -> String {
    s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names a crate root (`lib.rs`, else `main.rs`) brings in from its
/// own modules with `use` (`pub use m::{A, b::C as D}` maps `A` and `D` to
/// `m`), so that `crate::A` counts as naming `m`. Globs are not resolved.
fn root_uses(src: &Path, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let root = ["lib.rs", "main.rs"].iter().find_map(|f| std::fs::read_to_string(src.join(f)).ok());
    let code: String =
        root.unwrap_or_default().lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(i) = stmt.find("use ") else { continue };
        if stmt[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path = stmt[i + "use ".len()..].trim();
        let path = path.strip_prefix("crate::").or_else(|| path.strip_prefix("self::")).unwrap_or(path);
        let Some((module, rest)) = path.split_once("::") else { continue };
        let module = ident(module);
        if !modules.contains(&module) {
            continue;
        }
        for leaf in rest.split([',', '{', '}']) {
            let leaf = leaf.trim();
            if leaf.is_empty() || leaf.ends_with("::") || leaf.ends_with('*') {
                continue;
            }
            let name = match leaf.split_once(" as ") {
                Some((_, alias)) => ident(alias),
                None => ident(leaf.rsplit("::").next().unwrap_or(leaf)),
            };
            if !name.is_empty() && name != "self" {
                out.insert(name, module.clone());
            }
        }
    }
    out
}

/// The module graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    let uses = root_uses(src, &modules);
    let mut g: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in &files {
        let Some(from) = top_module(src, f) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        for name in named_modules(&text) {
            let to = if modules.contains(&name) { Some(&name) } else { uses.get(&name) };
            if let Some(to) = to.filter(|to| **to != from) {
                g.get_mut(&from).unwrap().insert(to.clone());
            }
        }
    }
    g
}

/// Strongly connected components with more than one module.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for n in &g[&m] {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = g.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for m in g.keys() {
        let scc: BTreeSet<String> =
            g.keys().filter(|n| *n == m || (reaches[m].contains(*n) && reaches[n].contains(m))).cloned().collect();
        if scc.len() > 1 && !out.contains(&scc) {
            out.push(scc);
        }
    }
    out
}

/// One cycle through `scc`, as `a → b → ... → a`.
fn show(g: &BTreeMap<String, BTreeSet<String>>, scc: &BTreeSet<String>) -> String {
    let start = scc.iter().next().unwrap();
    // Breadth-first from `start` back to it, inside the component.
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut todo = std::collections::VecDeque::from([start.clone()]);
    while let Some(m) = todo.pop_front() {
        for n in g[&m].iter().filter(|n| scc.contains(*n)) {
            if n == start {
                let mut path = vec![m.clone()];
                while let Some(p) = prev.get(path.last().unwrap()) {
                    path.push(p.clone());
                }
                path.reverse();
                path.push(start.clone());
                return path.join(" → ");
            }
            if !prev.contains_key(n) && n != start {
                prev.insert(n.clone(), m.clone());
                todo.push_back(n.clone());
            }
        }
    }
    format!("{scc:?}")
}

#[test]
fn no_new_module_cycles_in_any_crate() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut srcs = Vec::new();
    for e in std::fs::read_dir(crates).unwrap().flatten() {
        for src in [e.path().join("src")] {
            if src.is_dir() {
                srcs.push(src);
            }
        }
        // Nested crates (crates/test-clients/*).
        if let Ok(inner) = std::fs::read_dir(e.path()) {
            srcs.extend(inner.flatten().map(|i| i.path().join("src")).filter(|p| p.is_dir()));
        }
    }
    assert!(srcs.len() >= 8, "found only {srcs:?}");
    let mut bad = Vec::new();
    for src in &srcs {
        let name = src.parent().unwrap().strip_prefix(crates).unwrap().display().to_string();
        let g = graph(src);
        for scc in cycles(&g) {
            let known = KNOWN.iter().any(|(c, mods)| *c == name && scc.iter().all(|m| mods.contains(&m.as_str())));
            if !known {
                bad.push(format!("{name}: {} (component {scc:?})", show(&g, &scc)));
            }
        }
    }
    assert!(bad.is_empty(), "module cycles:\n{}", bad.join("\n"));
}

#[test]
fn the_check_sees_a_cycle() {
    let dir = std::env::temp_dir().join(format!("teeheap-cycles-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;\nuse crate::a::X;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::{b::Y, c};\n// crate::c in a comment\n").unwrap();
    std::fs::write(src.join("b/mod.rs"), "pub struct Y;\n").unwrap();
    std::fs::write(src.join("b/inner.rs"), "fn f() -> crate::a::X { todo!() }\n").unwrap();
    std::fs::write(src.join("c.rs"), "/// [`crate::a`]\npub struct Z;\n").unwrap();
    let g = graph(&src);
    assert_eq!(g["a"], BTreeSet::from(["b".to_owned(), "c".to_owned()]));
    assert!(g["c"].is_empty(), "comments are not edges");
    let found = cycles(&g);
    assert_eq!(found, [BTreeSet::from(["a".to_owned(), "b".to_owned()])]);
    assert_eq!(show(&g, &found[0]), "a → b → a");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_the_root_brings_in_are_edges_to_their_module() {
    let dir = std::env::temp_dir().join(format!("teeheap-cycles-uses-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let lib = "mod a; mod b; mod c;\n// use c::Hidden;\npub use b::{\n    Y as Z,\n    inner::{W, V},\n};\nuse std::fmt::Debug;\npub use c::*;\n";
    std::fs::write(src.join("lib.rs"), lib).unwrap();
    std::fs::write(src.join("a.rs"), "fn f(_: crate::Z, _: crate::V) {}\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct Y;\nfn g(_: crate::Hidden, _: &dyn crate::Debug) {}\n").unwrap();
    std::fs::write(src.join("c.rs"), "pub struct Hidden;\nfn h(_: crate::W) {}\n").unwrap();
    let modules = BTreeSet::from(["a", "b", "c"].map(String::from));
    let uses = root_uses(&src, &modules);
    let expect = [("V", "b"), ("W", "b"), ("Z", "b")].map(|(n, m)| (n.to_owned(), m.to_owned()));
    assert_eq!(uses, BTreeMap::from(expect), "aliases and nested groups resolve; comments, globs and std do not");
    let g = graph(&src);
    assert_eq!(g["a"], BTreeSet::from(["b".to_owned()]));
    assert!(g["b"].is_empty(), "a glob re-export is not resolved");
    assert_eq!(g["c"], BTreeSet::from(["b".to_owned()]));
    std::fs::remove_dir_all(&dir).unwrap();
}
