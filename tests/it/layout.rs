//! The source tree's shape: no module imports a module that imports it, and no function of
//! non-test code runs over [`MAX_LINES`] lines without a reason written above it.
//!
//! Read from `src/` as text (no compiler): comments and string contents are blanked, test code
//! (`#[cfg(test)]` items and the files of `#[cfg(test)] mod x;`) left out. A module is a file;
//! a reference is a `use` or a path starting with `crate::`, `super::` or `self::`, resolved to
//! the deepest module it names. A module and its ancestors count as one: a child may use what
//! its parent holds (Rust's privacy gives it that) and a parent names its children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest function body (non-blank, non-comment lines from its signature to its closing brace).
const MAX_LINES: usize = 80;
/// What a longer function's doc comment says, followed by why.
const REASON: &str = "Long on purpose";

type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    /// The original text.
    text: String,
    /// The text with comments, string and char contents blanked and test code removed (same
    /// lines and columns).
    code: String,
}

/// Blanks comments and the contents of strings and chars, keeping newlines and lengths.
fn blank(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = b.clone();
    let mut i = 0;
    let blank_to = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    while i < b.len() {
        match b[i] {
            '/' if b.get(i + 1) == Some(&'/') => {
                let end = (i..b.len()).find(|&j| b[j] == '\n').unwrap_or(b.len());
                blank_to(&mut out, i, end);
                i = end;
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                let mut j = i;
                while j < b.len() {
                    if b[j] == '/' && b.get(j + 1) == Some(&'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == '*' && b.get(j + 1) == Some(&'/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank_to(&mut out, i, j);
                i = j;
            }
            'r' if (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#'))
                && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|c| **c == '#').count();
                if b.get(i + 1 + hashes) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = i + 2 + hashes;
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = b[start..].iter().collect();
                let end = rest
                    .find(&close)
                    .map_or(b.len(), |k| start + rest[..k].chars().count());
                blank_to(&mut out, start, end);
                i = end + 1 + hashes;
            }
            '"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != '"' {
                    j += if b[j] == '\\' { 2 } else { 1 };
                }
                blank_to(&mut out, i + 1, j);
                i = j + 1;
            }
            '\'' => {
                // A char literal ('x', '\n', '\u{7f}'), not a lifetime ('a).
                let end = if b.get(i + 1) == Some(&'\\') {
                    (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')
                } else {
                    (b.get(i + 2) == Some(&'\'')).then_some(i + 2)
                };
                match end {
                    Some(end) => {
                        blank_to(&mut out, i + 1, end);
                        i = end + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out.into_iter().collect()
}

/// Where the item starting at byte `from` of `code` ends (after its `;` or its closing brace).
fn item_end(code: &str, from: usize) -> usize {
    let mut depth = 0usize;
    for (k, c) in code[from..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return from + k + 1;
                }
            }
            ';' if depth == 0 => return from + k + 1,
            _ => {}
        }
    }
    code.len()
}

/// `code` without its `#[cfg(test)]` items (blanked), and the names of the test modules it
/// declares in files of their own (`#[cfg(test)] mod x;`).
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut out = code.to_string();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(k) = out[from..].find("#[cfg(test)]") {
        let at = from + k;
        let end = item_end(&out, at);
        let item = out[at..end].to_string();
        let decl: Vec<&str> = item.split_whitespace().collect();
        if let [.., "mod", name] = decl.as_slice()
            && let Some(name) = name.strip_suffix(';')
        {
            test_files.push(name.to_string());
        }
        let blanked: String = item
            .chars()
            .map(|c| if c == '\n' { c } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = at + blanked.len();
    }
    (out, test_files)
}

/// Every non-test module of the library under `src/`, by module path.
fn modules() -> BTreeMap<ModPath, Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<PathBuf> = super::common::files_under(&src)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let mut all = BTreeMap::new();
    let mut tests: Vec<ModPath> = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut path: ModPath = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if path.last().is_some_and(|l| l == "mod" || l == "lib") {
            path.pop();
        }
        if path == ["main"] {
            continue; // the binary: it uses the library as `macrolake::`.
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let (code, test_files) = without_tests(&blank(&text));
        tests.extend(
            test_files
                .into_iter()
                .map(|t| [path.clone(), vec![t]].concat()),
        );
        all.insert(path, Module { file, text, code });
    }
    all.retain(|p, _| !tests.iter().any(|t| p.starts_with(t)));
    all
}

/// The paths a `use` tree names, expanded (`a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`).
fn use_paths(tree: &str, prefix: &[String], out: &mut Vec<ModPath>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let mut path = prefix.to_vec();
        path.extend(segments(&tree[..open]));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_paths(&inner[start..k], &path, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        use_paths(&inner[start..], &path, out);
    } else {
        let name = tree.split(" as ").next().unwrap_or_default();
        let mut path = prefix.to_vec();
        path.extend(segments(name));
        out.push(path);
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(String::from)
        .collect()
}

/// `path` as written in module `at`, made absolute (`None`: not a path into this crate).
fn absolute(at: &[String], path: &[String]) -> Option<ModPath> {
    let mut segs = path.iter().peekable();
    let mut out: ModPath = match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.next();
            Vec::new()
        }
        Some("super" | "self") => at.to_vec(),
        _ => return None,
    };
    while let Some(s) = segs.peek() {
        match s.as_str() {
            "super" => {
                out.pop()?;
            }
            "self" => {}
            _ => break,
        }
        segs.next();
    }
    out.extend(segs.cloned());
    Some(out)
}

/// The modules `module` (at `at`) refers to, other than itself, its ancestors and descendants.
fn references(
    at: &[String],
    module: &Module,
    known: &BTreeMap<ModPath, Module>,
) -> BTreeSet<ModPath> {
    let code = &module.code;
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(k) = code[from..].find("use ") {
        let at_use = from + k;
        let before = code[..at_use].chars().next_back();
        let end = code[at_use..].find(';').map_or(code.len(), |e| at_use + e);
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            use_paths(&code[at_use + 4..end], &[], &mut paths);
        }
        from = end.max(at_use + 4);
    }
    let chars: Vec<char> = code.chars().collect();
    let path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| rest.starts_with(p));
        if starts && (i == 0 || !path_char(chars[i - 1])) {
            let end = (i..chars.len())
                .find(|&j| !path_char(chars[j]))
                .unwrap_or(chars.len());
            let text: String = chars[i..end].iter().collect();
            paths.push(segments(&text));
            i = end;
        } else {
            i += 1;
        }
    }
    // A `use` inside a file names paths relative to it; a non-`mod.rs` file's `super` is its
    // folder's module, which `absolute` gets by starting from the file's own path.
    paths
        .iter()
        .filter_map(|p| absolute(at, p))
        .filter_map(|p| {
            (0..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| known.contains_key(m))
        })
        .filter(|m| !m.starts_with(at) && !at.starts_with(m))
        .collect()
}

/// A cycle of modules each referring to the next, if there is one.
fn a_cycle(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn visit<'a>(
        m: &'a ModPath,
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<&'a ModPath, bool>,
        stack: &mut Vec<&'a ModPath>,
    ) -> Option<Vec<ModPath>> {
        state.insert(m, false);
        stack.push(m);
        for next in graph.get(m).into_iter().flatten() {
            match state.get(next) {
                Some(false) => {
                    let from = stack.iter().position(|s| *s == next).unwrap();
                    return Some(
                        stack[from..]
                            .iter()
                            .map(|s| (*s).clone())
                            .chain([next.clone()])
                            .collect(),
                    );
                }
                Some(true) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m, true);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if !state.contains_key(m)
            && let Some(c) = visit(m, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

fn graph_of(known: &BTreeMap<ModPath, Module>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    known
        .iter()
        .map(|(p, m)| (p.clone(), references(p, m, known)))
        .collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let known = modules();
    assert!(
        known.len() > 100,
        "the source tree was not found: {} modules",
        known.len()
    );
    let graph = graph_of(&known);
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    // The reading itself: a known reference in each direction is seen.
    let models = |m: &str| vec!["models".to_string(), m.to_string()];
    assert!(
        graph[&models("job")].contains(&models("incremental")),
        "job → incremental not seen"
    );
    assert!(
        graph[&models("incremental")].contains(&models("step")),
        "incremental → step not seen"
    );
    if let Some(cycle) = a_cycle(&graph) {
        let names: Vec<String> = cycle.iter().map(|m| name(m)).collect();
        panic!(
            "modules import each other in a cycle: {}",
            names.join(" → ")
        );
    }
    println!(
        "{} modules, {edges} references between them, no cycle",
        graph.len()
    );
}

#[test]
fn the_cycle_check_finds_a_cycle_written_into_the_tree() {
    let mut known = modules();
    let incremental = vec!["models".to_string(), "incremental".to_string()];
    let step = vec!["models".to_string(), "step".to_string()];
    assert!(a_cycle(&graph_of(&known)).is_none());
    // step.rs naming the incremental build closes job → incremental → step → incremental.
    let m = known.get_mut(&step).unwrap();
    m.code
        .push_str("\nuse super::incremental::build_incremental;\n");
    let cycle = a_cycle(&graph_of(&known)).expect("a cycle");
    assert!(
        cycle.contains(&incremental) && cycle.contains(&step),
        "{cycle:?}"
    );
}

/// Every non-test function: (lines, file:line, name, whether a reason is written above it).
fn functions(known: &BTreeMap<ModPath, Module>) -> Vec<(usize, String, String, bool)> {
    let mut out = Vec::new();
    for m in known.values() {
        let lines: Vec<&str> = m.text.lines().collect();
        let code = &m.code;
        let mut from = 0;
        while let Some(k) = code[from..].find("fn ") {
            let at = from + k;
            from = at + 3;
            if code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let name: String = code[at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let end = item_end(code, at);
            if name.is_empty() || !code[at..end].ends_with('}') {
                continue; // a declaration without a body, or a fn pointer type
            }
            let first = code[..at].matches('\n').count();
            let last = code[..end].matches('\n').count();
            let counted = code
                .lines()
                .skip(first)
                .take(last - first + 1)
                .filter(|l| !l.trim().is_empty())
                .count();
            let above = lines[..first].iter().rev().take_while(|l| {
                let t = l.trim_start();
                t.starts_with("///") || t.starts_with("#[") || t.starts_with("//")
            });
            let reason = above.into_iter().any(|l| l.contains(REASON));
            let file = m
                .file
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(&m.file);
            out.push((
                counted,
                format!("{}:{}", file.display(), first + 1),
                name,
                reason,
            ));
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.0));
    out
}

#[test]
fn no_function_runs_over_80_lines_without_a_reason_above_it() {
    let fns = functions(&modules());
    assert!(fns.len() > 500, "functions were not found: {}", fns.len());
    let too_long: Vec<String> = fns
        .iter()
        .filter(|(n, _, _, reason)| *n > MAX_LINES && !reason)
        .map(|(n, at, name, _)| format!("{at} {name}: {n} lines"))
        .collect();
    assert!(
        too_long.is_empty(),
        "functions over {MAX_LINES} lines with no \"{REASON}: …\" above them:\n{}",
        too_long.join("\n")
    );
    for (n, at, name, reason) in fns.iter().take(5) {
        println!(
            "{n:4} lines  {at} {name}{}",
            if *reason {
                " (a reason is written above it)"
            } else {
                ""
            }
        );
    }
}
