//! The core's layers point down only (ARCHITECTURE.md). The compiler enforces the
//! crate boundaries (vocabulary ← rules ← core); inside a crate, this test reads
//! every `crate::…` path of its sources, draws the graph of its top-level modules,
//! and fails on an edge that points up a layer or on an import cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The core crate's modules, lowest layer first. A module that is not listed fails
/// the test: every new module has to say where it sits.
const CORE_LAYERS: &[&[&str]] = &[
    &["database"],
    &["changelog"],
    &["repositories"],
    &["sync"],
    // Services bound to a session: `store` (the unlocked store, cases, users, the
    // audit trail, sync and the directory for the person working) and the services
    // built on it.
    &["store"],
    &["referral", "report", "htcds"],
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Tests may reach anywhere; the layers are about what ships.
fn is_test_file(path: &Path) -> bool {
    let name = path.file_stem().unwrap().to_string_lossy();
    name == "tests" || name.ends_with("_tests")
}

/// The code of a file without comments and without its inline test module.
fn shipped_code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or_default();
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The first segment of every `crate::` path: `crate::a::b` and `crate::{a, b::c}`.
fn crate_references(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Top-level module → the crate's other top-level modules its shipped code names.
fn module_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |f: &Path| {
        let rel = f.strip_prefix(src).unwrap();
        rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).filter(|m| m != "lib" && m != "main").collect();
    let mut graph: Graph = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let from = module_of(f);
        let Some(edges) = graph.get_mut(&from) else { continue };
        let code = shipped_code(&std::fs::read_to_string(f).unwrap());
        edges.extend(crate_references(&code).into_iter().filter(|m| modules.contains(m) && *m != from));
    }
    graph
}

/// The strongly connected groups of more than one module, each sorted.
fn cycles(graph: &Graph) -> BTreeSet<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for n in &graph[&m] {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    graph
        .keys()
        .map(|m| {
            let mut group: Vec<String> = graph
                .keys()
                .filter(|n| *n == m || (reachable[m].contains(*n) && reachable[n].contains(m)))
                .cloned()
                .collect();
            group.sort();
            group
        })
        .filter(|g| g.len() > 1)
        .collect()
}

fn crate_src(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_cores_modules_point_down_only() {
    let graph = module_graph(&crate_src("src"));
    let layer_of = |m: &str| CORE_LAYERS.iter().position(|l| l.contains(&m));
    let unplaced: Vec<&String> = graph.keys().filter(|m| layer_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules not in CORE_LAYERS: {unplaced:?}");
    let mut upward = Vec::new();
    for (from, tos) in &graph {
        for to in tos {
            if layer_of(to) > layer_of(from) {
                upward.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(upward.is_empty(), "a lower layer uses a higher one: {upward:?}");
    // Within a layer, modules may use each other, but never round in a circle.
    assert_eq!(cycles(&graph), BTreeSet::new(), "import cycles among the core's modules (graph: {graph:?})");
}

/// SQL lives in the layers that own the tables (database, change log,
/// repositories, sync); the services above them call those, so a table's SQL is
/// written once and found by its entity's name.
#[test]
fn the_services_hold_no_sql() {
    let services = ["store", "referral", "report", "htcds"];
    let sql = [
        ".execute(",
        ".prepare(",
        ".prepare_cached(",
        ".query_row(",
        ".query_map(",
        "pragma_",
        "\"SELECT ",
        "\"INSERT ",
        "\"UPDATE ",
        "\"DELETE ",
    ];
    let mut files = Vec::new();
    for m in services {
        rust_files(&crate_src("src").join(m), &mut files);
    }
    assert!(files.len() >= 10, "{files:?}");
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let code = shipped_code(&std::fs::read_to_string(f).unwrap());
        for (n, line) in code.lines().enumerate() {
            if let Some(s) = sql.iter().find(|s| line.contains(*s)) {
                found.push(format!("{}:{}: {s}", f.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "SQL in the services: {found:#?}");
}

#[test]
fn the_pure_crates_have_no_cycles() {
    for src in ["crates/vocabulary/src", "crates/rules/src"] {
        let graph = module_graph(&crate_src(src));
        assert!(graph.len() >= 2, "{src}: found only {graph:?}");
        assert_eq!(cycles(&graph), BTreeSet::new(), "{src}: {graph:?}");
    }
}

/// The window's scripts: `app.js` says which screen is which; screens reach each
/// other by name through `screen.js`, so no two scripts import each other in a
/// circle.
#[test]
fn the_ui_scripts_import_each_other_in_no_circle() {
    let root = crate_src("ui/js");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("screens")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "js") {
                files.push(path);
            }
        }
    }
    let name = |p: &Path| p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
    let mut graph = Graph::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut edges = BTreeSet::new();
        for line in text.lines().filter(|l| l.starts_with("import ")) {
            let Some(target) = line.rsplit_once(" from \"").and_then(|(_, t)| t.split('"').next()) else { continue };
            let mut path = f.parent().unwrap().to_path_buf();
            for part in target.split('/') {
                match part {
                    "." => {}
                    ".." => {
                        path.pop();
                    }
                    p => path.push(p),
                }
            }
            assert!(path.is_file(), "{}: imports {target}, which is not there", name(f));
            edges.insert(name(&path));
        }
        graph.insert(name(f), edges);
    }
    assert!(graph.contains_key("app.js") && graph.contains_key("screens/case.js"), "{graph:?}");
    assert_eq!(cycles(&graph), BTreeSet::new(), "{graph:?}");
}

/// The check itself: it sees grouped imports and finds a cycle it is shown.
#[test]
fn the_check_sees_grouped_imports_and_cycles() {
    let refs = crate_references("use crate::{a::B, c, d::{e, f}};\nlet x = crate::g::h();");
    assert_eq!(refs, ["a", "c", "d", "g"].iter().map(|s| s.to_string()).collect());
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")] {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    }
    let abc: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(cycles(&graph), BTreeSet::from([abc]));
}
