//! The module graph of a crate read from its source files: which module refers to which, through
//! `use` trees and `crate::` / `super::` / `self::` paths. Enough to find import cycles between
//! sibling modules, the way a reviewer reads them; not a Rust parser (macros and `#[path]` are not
//! followed, and test code — `tests.rs`, `tests/` folders, and what follows `#[cfg(test)]` — is left
//! out, since tests may look anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root (`["service", "call"]`); the root is empty.
pub type ModPath = Vec<String>;

/// One reference from a module to another, with where it was seen.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The referring module.
    pub from: ModPath,
    /// The module referred to (the longest existing module prefix of the path).
    pub to: ModPath,
    /// File and line of the reference.
    pub at: String,
}

/// The modules of a crate and the references between them.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Every module, with the file that holds it.
    pub modules: BTreeMap<ModPath, PathBuf>,
    /// Every reference between two different modules.
    pub edges: Vec<Edge>,
}

/// A cycle among the children of one module: the children and the references that close it.
#[derive(Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The module whose children form the cycle (`<root>` for the crate root).
    pub parent: String,
    /// The children in the cycle.
    pub members: Vec<String>,
    /// The references between them (file:line).
    pub evidence: Vec<String>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "in {}: {} import each other ({})", self.parent, self.members.join(" <-> "), self.evidence.join("; "))
    }
}

fn is_test_file(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == "tests") || rel.file_stem().is_some_and(|s| s == "tests")
}

fn module_of(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel.with_extension("").iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// Source without comments, string literals, and everything from the first `#[cfg(test)]` on.
fn code_of(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = 0usize;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let mut kept = String::new();
        let mut chars = line.chars().peekable();
        let mut in_str = false;
        while let Some(c) = chars.next() {
            if in_block > 0 {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    in_block -= 1;
                } else if c == '/' && chars.peek() == Some(&'*') {
                    chars.next();
                    in_block += 1;
                }
                continue;
            }
            if in_str {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    in_str = false;
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '/' if chars.peek() == Some(&'/') => break,
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    in_block += 1;
                }
                _ => kept.push(c),
            }
        }
        out.push((n + 1, kept));
    }
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts
    }
    let tree = tree.trim();
    let mut out = Vec::new();
    let segments =
        |s: &str| -> Vec<String> { s.split("::").map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect() };
    if let Some(open) = tree.find('{') {
        let prefix = segments(&tree[..open]);
        let inner = tree[open + 1..].trim_end().strip_suffix('}').unwrap_or(&tree[open + 1..]);
        for part in split_top(inner) {
            if part.trim().is_empty() {
                continue;
            }
            for rest in expand_use(part) {
                let mut p = prefix.clone();
                p.extend(rest);
                out.push(p);
            }
        }
    } else {
        // `a::b as c`: the path is the first word.
        out.push(segments(tree.split_whitespace().next().unwrap_or("")));
    }
    out
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Paths starting with `crate`, `super` or `self` anywhere in `code` (outside `use` trees too).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !ident_char(bytes[i - 1]) && bytes[i - 1] != ':';
        if boundary && ident_char(bytes[i]) {
            let mut j = i;
            let mut segs = Vec::new();
            loop {
                let s = j;
                while j < bytes.len() && ident_char(bytes[j]) {
                    j += 1;
                }
                segs.push(bytes[s..j].iter().collect::<String>());
                if j + 2 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':' && ident_char(bytes[j + 2]) {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 && matches!(segs[0].as_str(), "crate" | "super" | "self") {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Resolves `path` as written in module `from` to a module path below the crate root.
fn resolve(from: &ModPath, path: &[String]) -> Option<ModPath> {
    let mut base: ModPath;
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &path[1..];
        }
        Some("self") => {
            base = from.clone();
            rest = &path[1..];
        }
        Some("super") => {
            base = from.clone();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

impl ModuleGraph {
    /// Reads every `.rs` file under `src` (a crate's `src/` folder).
    pub fn read(src: &Path) -> std::io::Result<ModuleGraph> {
        let mut files = Vec::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut graph = ModuleGraph::default();
        for f in &files {
            let rel = f.strip_prefix(src).unwrap_or(f);
            if !is_test_file(rel) && !rel.starts_with("bin") {
                graph.modules.insert(module_of(rel), f.clone());
            }
        }
        let modules: Vec<(ModPath, PathBuf)> = graph.modules.iter().map(|(m, f)| (m.clone(), f.clone())).collect();
        for (module, file) in modules {
            let text = std::fs::read_to_string(&file)?;
            let code = code_of(&text);
            let mut paths: Vec<(usize, Vec<String>)> = Vec::new();
            let mut pending_use: Option<(usize, String)> = None;
            for (n, line) in &code {
                let trimmed = line.trim_start();
                let after_vis = trimmed
                    .strip_prefix("pub(crate) ")
                    .or_else(|| trimmed.strip_prefix("pub(super) "))
                    .or_else(|| trimmed.strip_prefix("pub "))
                    .unwrap_or(trimmed);
                if pending_use.is_none() {
                    if let Some(tree) = after_vis.strip_prefix("use ") {
                        pending_use = Some((*n, String::new()));
                        pending_use.as_mut().expect("just set").1.push_str(tree);
                    } else {
                        paths.extend(inline_paths(line).into_iter().map(|p| (*n, p)));
                        continue;
                    }
                } else if let Some((_, acc)) = pending_use.as_mut() {
                    acc.push(' ');
                    acc.push_str(line);
                }
                if let Some((start, acc)) = pending_use.take() {
                    if let Some(end) = acc.find(';') {
                        paths.extend(expand_use(&acc[..end]).into_iter().map(|p| (start, p)));
                    } else {
                        pending_use = Some((start, acc));
                    }
                }
            }
            for (line, path) in paths {
                let Some(mut target) = resolve(&module, &path) else { continue };
                while !target.is_empty() && !graph.modules.contains_key(&target) {
                    target.pop();
                }
                if target != module {
                    let at = format!("{}:{line}", file.display());
                    graph.edges.push(Edge { from: module.clone(), to: target, at });
                }
            }
        }
        graph.edges.sort();
        graph.edges.dedup_by(|a, b| a.from == b.from && a.to == b.to);
        Ok(graph)
    }

    /// Cycles among the children of every module: child A refers (from A or below) to child B and
    /// B back to A. A module referring to its own children or its ancestors is not a cycle.
    pub fn sibling_cycles(&self) -> Vec<Cycle> {
        let parents: BTreeSet<ModPath> =
            self.modules.keys().filter(|m| !m.is_empty()).map(|m| m[..m.len() - 1].to_vec()).collect();
        let mut cycles = Vec::new();
        for parent in parents {
            let depth = parent.len();
            let child = |m: &ModPath| (m.len() > depth && m[..depth] == parent[..]).then(|| m[depth].clone());
            let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for e in &self.edges {
                if let (Some(a), Some(b)) = (child(&e.from), child(&e.to)) {
                    if a != b {
                        graph.entry(a).or_default().entry(b).or_insert_with(|| e.at.clone());
                    }
                }
            }
            for members in strongly_connected(&graph) {
                let mut evidence = Vec::new();
                for a in &members {
                    for (b, at) in graph.get(a).into_iter().flatten() {
                        if members.contains(b) {
                            evidence.push(format!("{a} -> {b} at {at}"));
                        }
                    }
                }
                let parent = if parent.is_empty() { "<root>".to_string() } else { parent.join("::") };
                cycles.push(Cycle { parent, members, evidence });
            }
        }
        cycles
    }
}

/// Tarjan's algorithm; returns only components of two or more nodes, each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        w.on_stack.insert(v);
        if let Some(next) = w.graph.get(v) {
            for u in next.keys() {
                let u = u.as_str();
                if !w.index.contains_key(u) {
                    visit(w, u);
                    let l = w.low[v].min(w.low[u]);
                    w.low.insert(v, l);
                } else if w.on_stack.contains(u) {
                    let l = w.low[v].min(w.index[u]);
                    w.low.insert(v, l);
                }
            }
        }
        if w.low[v] == w.index[v] {
            let mut comp = Vec::new();
            while let Some(u) = w.stack.pop() {
                w.on_stack.remove(u);
                comp.push(u.to_string());
                if u == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                w.out.push(comp);
            }
        }
    }
    let mut w = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn a_planted_cycle_is_found_with_its_evidence() {
        let dir = tree(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("a.rs", "use super::{b::Thing, c};\n"),
            ("b.rs", "pub struct Thing;\nfn f() { crate::a::g(); }\n"),
            ("c.rs", "// use crate::a; in a comment is no import\nconst S: &str = \"crate::a::g\";\n"),
        ]);
        let cycles = ModuleGraph::read(dir.path()).unwrap().sibling_cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].parent, "<root>");
        assert_eq!(cycles[0].members, vec!["a", "b"], "c only imports nothing back");
        assert!(cycles[0].evidence.iter().any(|e| e.starts_with("a -> b at ") && e.ends_with("a.rs:1")), "{cycles:?}");
    }

    #[test]
    fn nested_cycles_use_trees_and_super_chains_are_followed() {
        let dir = tree(&[
            ("lib.rs", "pub mod h;\n"),
            ("h/mod.rs", "pub mod x;\npub mod y;\n"),
            ("h/x.rs", "pub use self::inner::*;\nmod inner {}\nuse super::{\n    y::{Y as Why},\n};\n"),
            ("h/y.rs", "fn f() { super::super::h::x::go(); }\n"),
        ]);
        let cycles = ModuleGraph::read(dir.path()).unwrap().sibling_cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!((cycles[0].parent.as_str(), cycles[0].members.clone()), ("h", vec!["x".into(), "y".into()]));
    }

    #[test]
    fn parents_children_and_test_code_are_not_cycles() {
        let dir = tree(&[
            ("lib.rs", "pub mod a;\npub mod b;\nuse a::A;\n"),
            ("a.rs", "pub struct A;\nuse crate::b::B;\n"),
            ("b.rs", "pub struct B;\nfn up() { crate::thing(); }\n#[cfg(test)]\nmod tests { use crate::a::A; }\n"),
            ("a/tests.rs", "use crate::b::B;\n"),
        ]);
        assert_eq!(ModuleGraph::read(dir.path()).unwrap().sibling_cycles(), vec![]);
    }
}
