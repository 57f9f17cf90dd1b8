//! The shape of the code, checked from its text: dependencies point one way, from the commands down to the
//! protocol and the leaves (`LAYERS`); no modules import each other in a cycle; the write path's stages only
//! import later stages, never an earlier one (`STAGES`); no source file has over 400 lines of non-test code.
//!
//! A dependency is any path to another module of the crate in non-test code: `use` trees, `crate::`, `super::`
//! and `self::` paths, and paths through a child module's name. Comments are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules from the commands down; a module may use its own layer's and lower layers' modules.
const LAYERS: &[&[&str]] = &[
    &["main", "check", "discover", "write"],
    &["write::encoded", "format"],
    &["kafka"],
    &["config"],
    &["airbyte", "delivery"],
    &["naming", "number", "digest"],
    &["error", "secret", "stop"],
];

/// The write path's stages in the order data flows through them (stdin → parse → route → encode → produce →
/// acknowledge → state); the protocol vocabulary (`airbyte`), the config, the leaves and the orchestration
/// (`write` itself, `pipeline`, `release`, `transactions`, `progress`) are not stages.
const STAGES: &[&[&str]] = &[
    &["write::input"],
    &["write::parse"],
    &["write::encoded", "format"],
    &["kafka", "write::sink", "write::dead_letter"],
    &["write::acknowledge", "write::checkpoint"],
];

const MAX_LINES: usize = 400;

struct Module {
    path: String,
    /// Non-test code, without comments.
    code: String,
    file: String,
    lines: usize,
}

fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// Modules declared `#[cfg(test)] mod x;`: test code, not checked.
fn test_modules(text: &str, parent: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]" && w[1].starts_with("mod ") && w[1].ends_with(';'))
        .map(|w| {
            let name = w[1].trim_start_matches("mod ").trim_end_matches(';');
            if parent.is_empty() {
                name.to_string()
            } else {
                format!("{parent}::{name}")
            }
        })
        .collect()
}

fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut test_only = BTreeSet::new();
    let mut out = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let path = module_path(relative);
        let text = std::fs::read_to_string(&file).unwrap();
        test_only.extend(test_modules(&text, &path));
        let non_test: Vec<&str> = text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).collect();
        let code = strip(&non_test.join("\n"));
        out.push(Module { path, code, file: relative.display().to_string(), lines: non_test.len() });
    }
    out.retain(|m| !test_only.contains(&m.path));
    out
}

/// The code without comments, string literals and character literals (which may hold words like `use` or
/// `crate::x` that are not code).
fn strip(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !word_before(&chars, i) {
            // A raw string: r"...", r#"..."#.
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let mut j = i + 1 + hashes;
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len()
                && !(chars[j] == '"' && chars[j + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes)
            {
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A character literal ('"', '\n'); a lifetime (`'a`) is left alone.
            let end = chars[i + 1..].iter().position(|c| *c == '\'').map_or(chars.len(), |p| i + 2 + p);
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn word_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The paths a `use` tree names (`a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e`).
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().split("as").next().unwrap().to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Every path in the code that starts at a module: `use` trees and paths written inline.
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            paths.extend(expand(&rest[at + 4..end]));
        }
        rest = &rest[end.min(rest.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b':') {
            j += 1;
        }
        let token = &code[i..j];
        if token.contains("::") {
            paths.push(token.trim_end_matches(':').to_string());
        }
        i = j.max(i + 1);
    }
    paths
}

/// The module a path leads to, seen from module `from`: the longest known module its segments name.
fn resolve(path: &str, from: &str, known: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let here: Vec<&str> = if from.is_empty() { vec![] } else { from.split("::").collect() };
    let (mut base, rest): (Vec<&str>, &[&str]) = match segments.first()? {
        &"crate" | &"destination_kafka" => (vec![], &segments[1..]),
        &"super" => {
            let ups = segments.iter().take_while(|s| **s == "super").count();
            (here[..here.len().checked_sub(ups)?].to_vec(), &segments[ups..])
        }
        &"self" => (here.clone(), &segments[1..]),
        first => {
            // A child module's name (`envelope::Envelope` in `format`).
            let child = if from.is_empty() { first.to_string() } else { format!("{from}::{first}") };
            if !known.contains(&child) || from == "main" {
                return None;
            }
            (here.clone(), &segments[..])
        }
    };
    // A path to an item of a module (`super::RecordIn`) leads to that module.
    let mut found = (!base.is_empty()).then(|| base.join("::"));
    for segment in rest {
        base.push(segment);
        let candidate = base.join("::");
        if known.contains(&candidate) {
            found = Some(candidate);
        }
    }
    found.filter(|m| m != from)
}

fn graph() -> (Vec<Module>, BTreeMap<String, BTreeSet<String>>) {
    let modules = modules();
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &modules {
        let targets = edges.entry(m.path.clone()).or_default();
        for path in paths_in(&m.code) {
            if let Some(target) = resolve(&path, &m.path, &known) {
                targets.insert(target);
            }
        }
    }
    (modules, edges)
}

fn position(table: &[&[&str]], module: &str) -> Option<usize> {
    let best = table
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (i, *n)))
        .filter(|(_, n)| module == *n || module.starts_with(&format!("{n}::")))
        .max_by_key(|(_, n)| n.len());
    best.map(|(i, _)| i)
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn dependencies_point_down_the_layers() {
    let (modules, edges) = graph();
    let mut wrong = Vec::new();
    for m in modules.iter().filter(|m| !m.path.is_empty()) {
        let Some(layer) = position(LAYERS, top(&m.path)) else {
            wrong.push(format!("{} is in no layer", m.path));
            continue;
        };
        for target in &edges[&m.path] {
            if top(target) != top(&m.path) && position(LAYERS, top(target)).is_some_and(|t| t < layer) {
                wrong.push(format!("{} (layer {layer}) uses {target}, a higher layer", m.path));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_stage_imports_an_earlier_one() {
    let (_, edges) = graph();
    let mut wrong = Vec::new();
    for (from, targets) in &edges {
        let Some(stage) = position(STAGES, from) else { continue };
        for target in targets {
            if position(STAGES, target).is_some_and(|t| t < stage) {
                wrong.push(format!("{from} (stage {stage}) uses {target}, an earlier stage"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Tarjan's strongly connected components: any with more than one module is a cycle.
#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let (_, edges) = graph();
    struct Tarjan<'g> {
        edges: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, (usize, usize)>,
        stack: Vec<&'g str>,
        next: usize,
        cycles: Vec<Vec<&'g str>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, (self.next, self.next));
            self.next += 1;
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                match self.index.get(w.as_str()) {
                    None => {
                        self.visit(w);
                        let low = self.index[w.as_str()].1.min(self.index[v].1);
                        self.index.get_mut(v).unwrap().1 = low;
                    }
                    Some(&(i, _)) if self.stack.contains(&w.as_str()) => {
                        let low = i.min(self.index[v].1);
                        self.index.get_mut(v).unwrap().1 = low;
                    }
                    Some(_) => {}
                }
            }
            if self.index[v].0 == self.index[v].1 {
                let at = self.stack.iter().rposition(|s| *s == v).unwrap();
                let component = self.stack.split_off(at);
                if component.len() > 1 {
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut t = Tarjan { edges: &edges, index: BTreeMap::new(), stack: Vec::new(), next: 0, cycles: Vec::new() };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let cycles: Vec<String> = t.cycles.iter().map(|c| c.join(" ↔ ")).collect();
    assert!(cycles.is_empty(), "modules in a cycle:\n{}", cycles.join("\n"));
}

#[test]
fn no_file_has_over_400_lines_of_non_test_code() {
    let long: Vec<String> =
        modules().iter().filter(|m| m.lines > MAX_LINES).map(|m| format!("{}: {} lines", m.file, m.lines)).collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// The check itself: it sees the dependencies it must see.
#[test]
fn the_checker_finds_uses_inline_paths_and_children() {
    assert_eq!(expand("super::{a, b::{c, d as e}}"), vec!["super::a", "super::b::c", "super::b::d"]);
    let known: BTreeSet<String> = ["format", "format::envelope", "kafka::record", "kafka"].map(String::from).into();
    assert_eq!(resolve("crate::kafka::record::OutgoingRecord", "format", &known).as_deref(), Some("kafka::record"));
    assert_eq!(resolve("super::RecordIn", "format::envelope", &known).as_deref(), Some("format"));
    assert_eq!(resolve("envelope::Envelope", "format", &known).as_deref(), Some("format::envelope"));
    assert_eq!(resolve("serde_json::json", "format", &known), None);
    assert_eq!(strip("let a = \"use crate::x;\"; // crate::y\nb('\"'); r#\"crate::z\"#"), "let a = \"\"; \nb(); \"\"");
    let (_, edges) = graph();
    assert!(edges["write::sink"].contains("kafka::producer"), "{:?}", edges["write::sink"]);
    assert!(edges["main"].contains("write"), "{:?}", edges["main"]);
}
