//! The tidy test: what Cargo cannot say of ARCHITECTURE.md's invariants, checked on the source
//! text of the library crates (`model/src`, `harness/src`) and the CLI (`cli/src`); no Docker,
//! nothing built. That the model has no runtime and no engine (no tokio, no bollard, no reqwest)
//! and that the library pulls in no CLI crate is Cargo's to say: their manifests don't name them. A rule is one function from the source files to its violations,
//! each naming file, line and the offending item; the rules see code only (comments and the
//! insides of literals are blanked), and every violation is printed before the test fails.
//!
//! `KNOWN_OFFENDERS` lists violations that exist today and are being fixed elsewhere; an entry
//! that no longer matches fails the test too, so the list can only shrink.

use std::path::Path;

/// Violations tolerated for now, one per occurrence: `"rule: file: item"` (no line numbers, so
/// edits elsewhere in a file leave them valid). Empty it as the offenders are fixed.
const KNOWN_OFFENDERS: &[&str] = &[];

/// The crates whose sources are read, by directory.
const CRATES: &[&str] = &["model", "harness", "cli"];

/// (a) In the runtime, only `engine/` talks to Docker (the other crates have no bollard).
const RUNTIME_DIR: &str = "harness/";
const ENGINE_DIR: &str = "harness/engine/";
const ENGINE_CLIENT: &[&str] = &["bollard"];

/// (b) Checkers are pure functions of the timeline: no I/O, no sleeping — test code included.
const CHECK_DIR: &str = "model/check/";
const IO: &[&str] = &["std::fs", "std::net", "std::process", "sleep"];

/// (c) Describing executes nothing; reading the scenario file is the one exception.
const SCENARIO_DIR: &str = "model/scenario/";
const EXECUTES: &[&str] = &["std::process", "std::net", "std::fs"];
/// The loader's read of the scenario file (an open, then a bounded read), allowed once in
/// `scenario/`.
const LOADER_READ: &str = "std::fs::OpenOptions";

/// (d) The library does not print; the CLI does.
const PRINTS: &[&str] = &["println", "eprintln", "print", "eprint", "dbg"];
const CLI: &[&str] = &["cli/"];

/// (e) No function over this many lines (as `/work/shared/hooks/longest-fns.py` counts them).
const MAX_FN_LINES: usize = 80;

/// One source file of a crate.
struct Source {
    /// The crate's directory, then the path relative to its `src`, with `/` separators:
    /// `harness/engine/mod.rs`.
    path: String,
    /// The file's lines with comments and the insides of string and char literals blanked.
    code: Vec<String>,
    /// Per line: inside test code (a `#[cfg(test)]` item, a file named `tests.rs`, or a file
    /// that is test code as a whole: `#![cfg(test)]`).
    test: Vec<bool>,
}

impl Source {
    fn new(path: String, text: &str) -> Self {
        let code: Vec<String> = code_only(text).lines().map(String::from).collect();
        let whole = code.iter().any(|l| l.trim() == "#![cfg(test)]");
        let test = if whole || path == "tests.rs" || path.ends_with("/tests.rs") {
            vec![true; code.len()]
        } else {
            test_lines(&code)
        };
        Source { path, code, test }
    }

    fn under(&self, dir: &str) -> bool {
        self.path.starts_with(dir)
    }

    /// `(line index, code)` of the lines outside test code.
    fn non_test_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.code
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.test[*i])
            .map(|(i, l)| (i, l.as_str()))
    }
}

/// A broken rule: `item` identifies it for `KNOWN_OFFENDERS`, `line` is 1-based.
#[derive(Debug, Clone)]
struct Violation {
    file: String,
    line: usize,
    item: String,
    /// Said when printed, not part of the key (`464 lines`).
    note: String,
}

impl Violation {
    fn key(&self, rule: &str) -> String {
        format!("{rule}: {}: {}", self.file, self.item)
    }
}

/// A rule: its name (as `KNOWN_OFFENDERS` and the failure messages spell it) and its check.
type Rule = (&'static str, fn(&[Source]) -> Vec<Violation>);

const RULES: [Rule; 5] = [
    ("bollard-only-in-engine", bollard_only_in_engine),
    ("check-does-no-io", check_does_no_io),
    ("scenario-executes-nothing", scenario_executes_nothing),
    ("library-does-not-print", library_does_not_print),
    ("functions-fit-a-screen", functions_fit_a_screen),
];

fn sources() -> Vec<Source> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = harness.parent().expect("the workspace");
    CRATES
        .iter()
        .flat_map(|c| crate_sources(workspace, c))
        .collect()
}

fn crate_sources(workspace: &Path, name: &str) -> Vec<Source> {
    let root = workspace.join(name).join("src");
    let mut paths = vec![];
    collect_rs(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a source file");
            let relative = p.strip_prefix(&root).expect("under src");
            let relative = relative.to_string_lossy().replace('\\', "/");
            Source::new(format!("{name}/{relative}"), &text)
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rules.

/// (a) `bollard` appears only under `engine/`.
fn bollard_only_in_engine(files: &[Source]) -> Vec<Violation> {
    let outside = files
        .iter()
        .filter(|f| f.under(RUNTIME_DIR) && !f.under(ENGINE_DIR));
    outside
        .flat_map(|f| mentions(f, ENGINE_CLIENT, true))
        .collect()
}

/// (b) `check/` does no I/O and never sleeps, tests included.
fn check_does_no_io(files: &[Source]) -> Vec<Violation> {
    let checks = files.iter().filter(|f| f.under(CHECK_DIR));
    checks.flat_map(|f| mentions(f, IO, true)).collect()
}

/// (c) `scenario/` names nothing that executes; `std::fs::read_to_string` once (the loader).
fn scenario_executes_nothing(files: &[Source]) -> Vec<Violation> {
    let scenario: Vec<&Source> = files.iter().filter(|f| f.under(SCENARIO_DIR)).collect();
    let mut found: Vec<Violation> = scenario
        .iter()
        .flat_map(|f| mentions(f, EXECUTES, false))
        .collect();
    let reads = scenario
        .iter()
        .flat_map(|f| mentions(f, &[LOADER_READ], false));
    if let Some(first) = reads.into_iter().next() {
        let is_first_read =
            |v: &Violation| v.item == "std::fs" && v.file == first.file && v.line == first.line;
        if let Some(p) = found.iter().position(is_first_read) {
            found.remove(p);
        }
    }
    found
}

/// (d) No printing macro in the library: only the CLI (`main.rs`, `cli/`) and test code print.
fn library_does_not_print(files: &[Source]) -> Vec<Violation> {
    let library = files.iter().filter(|f| !CLI.iter().any(|c| f.under(c)));
    library
        .flat_map(|f| {
            f.non_test_lines().flat_map(move |(i, line)| {
                macro_calls(line)
                    .filter(|m| PRINTS.contains(m))
                    .map(move |m| Violation {
                        file: f.path.clone(),
                        line: i + 1,
                        item: format!("{m}!"),
                        note: String::new(),
                    })
            })
        })
        .collect()
}

/// (e) No function over `MAX_FN_LINES` lines, outside test code.
fn functions_fit_a_screen(files: &[Source]) -> Vec<Violation> {
    let mut found = vec![];
    for f in files {
        for (i, line) in f.non_test_lines() {
            let Some(name) = fn_name(line) else { continue };
            let Some(lines) = fn_length(&f.code[i..]) else {
                continue;
            };
            if lines > MAX_FN_LINES {
                found.push(Violation {
                    file: f.path.clone(),
                    line: i + 1,
                    item: format!("fn {name}"),
                    note: format!(" ({lines} lines, at most {MAX_FN_LINES})"),
                });
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Finding things in code.

/// Every mention of one of `words` in `f` (in test code too when `in_tests`), including the
/// paths of `use` groups (`use crate::{engine, run}` mentions `crate::engine` and `crate::run`).
fn mentions(f: &Source, words: &[&str], in_tests: bool) -> Vec<Violation> {
    let groups = group_paths(&f.code);
    let lines = f.code.iter().map(String::as_str).enumerate();
    let paths = lines.chain(groups.iter().map(|(i, p)| (*i, p.as_str())));
    let mut found = vec![];
    for (i, text) in paths.filter(|(i, _)| in_tests || !f.test[*i]) {
        for word in words {
            found.extend((0..occurrences(text, word)).map(|_| Violation {
                file: f.path.clone(),
                line: i + 1,
                item: word.to_string(),
                note: String::new(),
            }));
        }
    }
    found.sort_by_key(|v| v.line);
    found
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// How often `word` occurs in `text` as a whole word or path (not in `mycrate::run`, not as
/// `crate::runner`).
fn occurrences(text: &str, word: &str) -> usize {
    let whole = |at: usize| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let ends = !word.ends_with(is_ident) || !after.is_some_and(is_ident);
        !before.is_some_and(is_ident) && ends
    };
    text.match_indices(word)
        .filter(|(at, _)| whole(*at))
        .count()
}

/// The paths `use` groups name, with the line of each: `crate::{engine, run::Report}` →
/// `crate::engine`, `crate::run::Report`; a nested group gives its parent (`crate::run`).
fn group_paths(code: &[String]) -> Vec<(usize, String)> {
    let text = code.join("\n");
    let line_of = |at: usize| text[..at].matches('\n').count();
    let mut out = vec![];
    for (at, _) in text.match_indices("::{") {
        let prefix_start = text[..at]
            .rfind(|c: char| !is_ident(c) && c != ':')
            .map_or(0, |p| p + 1);
        let prefix = &text[prefix_start..at];
        let (mut item, mut item_at, mut depth) = (String::new(), at, 0);
        for (k, c) in text[at + 3..].char_indices() {
            let group_ends = c == '}' && depth == 0;
            let ends_item = match c {
                '{' => {
                    depth += 1;
                    depth == 1
                }
                '}' if depth == 0 => true,
                '}' => {
                    depth -= 1;
                    false
                }
                ',' => depth == 0,
                c if depth == 0 && (is_ident(c) || c == ':') => {
                    if item.is_empty() {
                        item_at = at + 3 + k;
                    }
                    item.push(c);
                    false
                }
                _ => false,
            };
            let path = item.trim_end_matches(':');
            if ends_item && !path.is_empty() {
                out.push((line_of(item_at), format!("{prefix}::{path}")));
            }
            if group_ends {
                break;
            }
            if ends_item {
                item.clear();
            }
        }
    }
    out
}

/// The names of the macros called on a line (`eprintln` for `eprintln!(…)`).
fn macro_calls(line: &str) -> impl Iterator<Item = &str> {
    let mut calls = vec![];
    let mut start = None;
    for (at, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (start, is_ident(c)) {
            (None, true) => start = Some(at),
            (Some(s), false) => {
                let bang = line[at..].starts_with('!') && !line[at..].starts_with("!=");
                if bang {
                    calls.push(&line[s..at]);
                }
                start = None;
            }
            _ => {}
        }
    }
    calls.into_iter()
}

/// The name of the function a line starts (`pub(crate) async fn run(` → `run`), as
/// longest-fns.py matches them: visibility, then `async`, `unsafe`, `const`, then `fn`.
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if let Some(r) = rest.strip_prefix("pub") {
        let r = match r.strip_prefix('(') {
            Some(inner) => &inner[inner.find(')')? + 1..],
            None => r,
        };
        rest = r.strip_prefix(char::is_whitespace)?.trim_start();
    }
    for qualifier in ["async", "unsafe", "const"] {
        if let Some(r) = rest.strip_prefix(qualifier) {
            if let Some(r) = r.strip_prefix(char::is_whitespace) {
                rest = r.trim_start();
            }
        }
    }
    let rest = rest.strip_prefix("fn")?.strip_prefix(char::is_whitespace)?;
    let rest = rest.trim_start();
    let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Lines from a `fn` line to its closing brace, counting braces as longest-fns.py does;
/// None for a declaration without a body.
fn fn_length(lines: &[String]) -> Option<usize> {
    let mut depth: i64 = 0;
    let mut started = false;
    for (j, s) in lines.iter().enumerate() {
        if s.contains(';') && !started && !s.contains('{') {
            return None;
        }
        depth += s.matches('{').count() as i64 - s.matches('}').count() as i64;
        started |= s.contains('{');
        if started && depth <= 0 {
            return Some(j + 1);
        }
    }
    started.then_some(lines.len())
}

/// Marks the lines of every `#[cfg(test)]` item: from the attribute to the item's closing
/// brace, or to its `;` (`mod tests;`).
fn test_lines(code: &[String]) -> Vec<bool> {
    let mut test = vec![false; code.len()];
    let mut i = 0;
    while i < code.len() {
        if !code[i].trim_start().starts_with("#[cfg(test)]") {
            i += 1;
            continue;
        }
        let end = item_end(code, i);
        test[i..=end].iter_mut().for_each(|t| *t = true);
        i = end + 1;
    }
    test
}

/// The last line of the item that starts at (or after the attribute on) line `start`.
fn item_end(code: &[String], start: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    for (j, line) in code.iter().enumerate().skip(start) {
        let line = if j == start {
            line.trim_start().trim_start_matches("#[cfg(test)]")
        } else {
            line
        };
        for c in line.chars() {
            match c {
                '{' => (depth, opened) = (depth + 1, true),
                '}' => depth -= 1,
                ';' if !opened => return j,
                _ => {}
            }
            if opened && depth == 0 {
                return j;
            }
        }
    }
    code.len() - 1
}

/// The text with comments and the insides of string and char literals replaced by spaces
/// (newlines kept, so line numbers stay true). Lifetimes are kept as code.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        let end = if c == '/' && next == Some('/') {
            (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len())
        } else if c == '/' && next == Some('*') {
            block_comment_end(&chars, i)
        } else if c == '"' {
            string_end(&chars, i)
        } else if c == 'r' && !raw_prefix_is_ident(&chars, i) && raw_string_hashes(&chars, i) {
            raw_string_end(&chars, i)
        } else if c == '\'' && (!prev_ident || byte_prefix(&chars, i)) {
            char_literal_end(&chars, i).unwrap_or(i + 1)
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        // Keep a literal's delimiters, blank its inside and every comment.
        let keep_ends = c != '/';
        for (k, &ch) in chars[i..end].iter().enumerate() {
            let edge = k == 0 || k + 1 == end - i;
            out.push(if keep_ends && edge { ch } else { blank(ch) });
        }
        i = end;
    }
    out
}

/// `b'x'`: the quote follows a lone `b`.
fn byte_prefix(chars: &[char], i: usize) -> bool {
    i >= 1 && chars[i - 1] == 'b' && (i < 2 || !is_ident(chars[i - 2]))
}

/// `r` starts a raw string unless it ends an identifier (`br"…"` is a raw byte string).
fn raw_prefix_is_ident(chars: &[char], i: usize) -> bool {
    match i.checked_sub(1).map(|p| chars[p]) {
        Some('b') => i >= 2 && is_ident(chars[i - 2]),
        Some(p) => is_ident(p),
        None => false,
    }
}

fn raw_string_hashes(chars: &[char], i: usize) -> bool {
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    chars.get(i + 1 + hashes) == Some(&'"')
}

/// One past the `"###` that closes the raw string starting at `i` (`r###"`).
fn raw_string_end(chars: &[char], i: usize) -> usize {
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    let mut j = i + hashes + 2;
    while j < chars.len() {
        let closes = chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes;
        if closes {
            return j + 1 + hashes;
        }
        j += 1;
    }
    chars.len()
}

/// One past the closing quote of the string starting at `i`.
fn string_end(chars: &[char], i: usize) -> usize {
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            '"' => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// One past the `*/` that closes the (possibly nested) comment starting at `i`.
fn block_comment_end(chars: &[char], i: usize) -> usize {
    let (mut depth, mut j) = (0, i);
    while j + 1 < chars.len() {
        match (chars[j], chars[j + 1]) {
            ('/', '*') => (depth, j) = (depth + 1, j + 2),
            ('*', '/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j;
                }
            }
            _ => j += 1,
        }
    }
    chars.len()
}

/// One past a char literal starting at `i` (`'x'`, `'\n'`, `'\u{1F600}'`); None for a lifetime.
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1)? {
        '\\' => (i + 2..chars.len().min(i + 12))
            .find(|&j| chars[j] == '\'')
            .map(|j| j + 1),
        _ if chars.get(i + 2) == Some(&'\'') => Some(i + 3),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests: one per rule.

/// Prints what `rule` found against `KNOWN_OFFENDERS`; returns the failures: violations that
/// are not known offenders, and known offenders that are gone (their entry must go too).
fn judge(rule: &str, found: Vec<Violation>) -> Vec<String> {
    let prefix = format!("{rule}: ");
    let mut known: Vec<&str> = KNOWN_OFFENDERS
        .iter()
        .copied()
        .filter(|k| k.starts_with(&prefix))
        .collect();
    let mut failures = vec![];
    for v in &found {
        let key = v.key(rule);
        let at = format!("harness/src/{}:{}: {key}{}", v.file, v.line, v.note);
        match known.iter().position(|k| *k == key) {
            Some(p) => {
                known.remove(p);
                println!("known:  {at}");
            }
            None => failures.push(format!("BROKEN: {at}")),
        }
    }
    failures.extend(known.iter().map(|k| {
        format!("STALE:  KNOWN_OFFENDERS holds {k:?}, which matches no violation now: remove it")
    }));
    failures
}

/// Every rule on the sources of the three crates; every failure is printed before the test fails.
#[test]
fn the_architecture_invariants_hold() {
    let files = sources();
    let mut failures = vec![];
    for (rule, check) in RULES {
        failures.extend(judge(rule, check(&files)));
    }
    for f in &failures {
        println!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} failures of ARCHITECTURE.md's invariants (listed above; KNOWN_OFFENDERS in harness/tests/tidy.rs)",
        failures.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The rules on small made-up files, so a rule that finds nothing is known to look.

fn file(path: &str, text: &str) -> Vec<Source> {
    vec![Source::new(path.into(), text)]
}

fn items(found: Vec<Violation>) -> Vec<String> {
    found
        .iter()
        .map(|v| format!("{}:{} {}", v.file, v.line, v.item))
        .collect()
}

#[test]
fn comments_and_literals_are_not_code() {
    let text = "let a = \"bollard {\"; // bollard\n/* bollard\n */ let b = 'x'; let c: &'a str = r#\"bollard\"#;\n";
    let code = code_only(text);
    assert!(!code.contains("bollard"), "{code}");
    assert_eq!(code.lines().count(), text.lines().count());
    assert!(code.contains("&'a str"), "lifetimes stay: {code}");
    assert!(bollard_only_in_engine(&file("harness/run.rs", text)).is_empty());
}

#[test]
fn each_rule_finds_its_offence() {
    let bollard = "use bollard::Docker;\n";
    assert_eq!(
        items(bollard_only_in_engine(&file("harness/run.rs", bollard))),
        ["harness/run.rs:1 bollard"]
    );
    assert!(bollard_only_in_engine(&file("harness/engine/mod.rs", bollard)).is_empty());
    let sleepy = "fn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { std::thread::sleep(d); }\n}\n";
    assert_eq!(
        items(check_does_no_io(&file("model/check/mod.rs", sleepy))),
        ["model/check/mod.rs:4 sleep"]
    );
    let grouped = "use std::{fs, net::TcpStream};\nuse std::fmt;\nuse std::{\n    io,\n    process::{a, b},\n};\n";
    assert_eq!(
        items(scenario_executes_nothing(&file(
            "model/scenario/mod.rs",
            grouped
        ))),
        [
            "model/scenario/mod.rs:1 std::fs",
            "model/scenario/mod.rs:1 std::net",
            "model/scenario/mod.rs:5 std::process"
        ]
    );
    let prints = "fn f() { eprintln!(\"x\"); let y = a != b; }\n#[cfg(test)]\nmod t { fn g() { println!(); } }\n";
    assert_eq!(
        items(library_does_not_print(&file("harness/run.rs", prints))),
        ["harness/run.rs:1 eprintln!"]
    );
    assert!(library_does_not_print(&file("cli/main.rs", prints)).is_empty());
}

#[test]
fn the_loader_may_read_its_file_once() {
    let one = "fn load() { std::fs::OpenOptions::new().open(p) }\n";
    assert!(scenario_executes_nothing(&file("model/scenario/parse.rs", one)).is_empty());
    let two = format!("{one}fn again() {{ std::fs::read_to_string(q) }}\nuse std::fs;\n");
    assert_eq!(
        items(scenario_executes_nothing(&file(
            "model/scenario/parse.rs",
            &two
        ))),
        [
            "model/scenario/parse.rs:2 std::fs",
            "model/scenario/parse.rs:3 std::fs"
        ]
    );
}

#[test]
fn long_functions_are_counted_as_longest_fns_counts_them() {
    let body = "    x();\n".repeat(MAX_FN_LINES - 2);
    let fits = format!("pub(crate) async fn fits() {{\n{body}}}\n");
    assert!(functions_fit_a_screen(&file("a.rs", &fits)).is_empty());
    let long =
        format!("fn long(\n    s: &str,\n) {{\n{body}    let b = \"}}\";\n}}\nfn declared();\n");
    assert_eq!(
        items(functions_fit_a_screen(&file("a.rs", &long))),
        ["a.rs:1 fn long"]
    );
    let in_test = format!("#[cfg(test)]\nmod tests {{\n{long}}}\n");
    assert!(functions_fit_a_screen(&file("a.rs", &in_test)).is_empty());
}
