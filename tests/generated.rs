//! Files derived from the code and kept in the repository for readers and tools:
//!
//! - the configuration table in each function crate's README, from its `config::VARIABLES`;
//! - every figure of the timeout reserve the docs give (`handler::TIMEOUT_RESERVE` of each function:
//!   the wait variable plus this is the least function timeout), between
//!   `<!-- BEGIN generated KEY -->` and `<!-- END generated -->` in [`RESERVE_DOCS`], and the
//!   table of the steps it is made of in RELIABILITY.md;
//! - `infra/functions.json`, which `infra/check_template.py` reads to check the deploy template:
//!   every variable each function reads, with its default, those the template must not set, and the timeout rule
//!   (function timeout >= the wait variable + the reserve the handler derives from its steps),
//!   and the metrics it emits (namespace variable, dimension, every metric name), which the
//!   template's alarms and dashboard may name.
//!
//! Each test fails when its file is out of date and says how to regenerate it:
//! `FAILOVER_BLESS=1 cargo test -p failover-tests --test generated` rewrites them.

use std::path::Path;

use std::time::Duration;

use failover_core::deadline::{self, seconds, Step};
use failover_core::env::{markdown_table, Var};
use failover_tests::workspace_root;
use serde_json::{json, Value};

const BEGIN: &str = "<!-- BEGIN variables: generated from config::VARIABLES by tests/generated.rs -->";
const END: &str = "<!-- END variables -->";

/// Compares `path` with `wanted`, or rewrites it under `FAILOVER_BLESS=1`.
fn check_or_bless(path: &Path, current: &str, wanted: &str) {
    if current == wanted {
        return;
    }
    if std::env::var("FAILOVER_BLESS").as_deref() == Ok("1") {
        std::fs::write(path, wanted).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    panic!(
        "{} is out of date with the code; regenerate it with `FAILOVER_BLESS=1 cargo test -p failover-tests --test generated`",
        path.display()
    );
}

fn readme_table(crate_dir: &str, vars: &[Var]) {
    let path = workspace_root().join(crate_dir).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("{} has no {BEGIN} ... {END} block", path.display());
    };
    let wanted = format!("{}{BEGIN}\n{}{}", &text[..start], markdown_table(vars), &text[end..]);
    check_or_bless(&path, &text, &wanted);
}

#[test]
fn crate_readmes_quote_the_configuration() {
    for f in functions() {
        readme_table(f.crate_dir, f.variables);
    }
}

fn variables(vars: &[Var]) -> Value {
    vars.iter()
        .map(|v| json!({"name": v.name, "default": v.default}))
        .collect()
}

fn metrics(names: &[&str]) -> Value {
    json!({
        "namespace_variable": failover_core::metrics::NAMESPACE.name,
        "dimension": failover_core::metrics::FUNCTION_DIMENSION,
        "names": names,
    })
}

#[test]
fn the_template_check_reads_the_functions_as_the_code_declares_them() {
    let functions: serde_json::Map<String, Value> = functions()
        .iter()
        .map(|f| {
            let entry = json!({
                "variables": variables(f.variables),
                "not_in_template": f.not_in_template.iter().map(|v| v.name).collect::<Vec<_>>(),
                "timeout": {
                    "wait_variable": f.wait_variable,
                    "reserve_secs": f.total.as_secs(),
                },
                "metrics": metrics(f.metrics),
            });
            (f.function.to_owned(), entry)
        })
        .collect();
    let manifest = json!({
        "generated_by": "tests/generated.rs (FAILOVER_BLESS=1 cargo test -p failover-tests --test generated)",
        "functions": functions,
    });
    let path = workspace_root().join("infra/functions.json");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    // Compared as JSON, not as text: key order depends on serde_json's features in the build.
    let same = serde_json::from_str::<Value>(&current).is_ok_and(|v| v == manifest);
    let wanted = if same {
        current.clone()
    } else {
        serde_json::to_string_pretty(&manifest).unwrap() + "\n"
    };
    check_or_bless(&path, &current, &wanted);
}

/// The docs that state the timeout reserve; each figure sits between generated markers.
const RESERVE_DOCS: [&str; 5] = [
    "RELIABILITY.md",
    "crates/redis-reconciler/README.md",
    "crates/bluegreen-rollback/README.md",
    "infra/README.md",
    "docs/operations.md",
];
const GENERATED_BEGIN: &str = "<!-- BEGIN generated ";
const GENERATED_END: &str = "<!-- END generated -->";

/// One function, as the generated files need it: the one list of functions is [`functions`]
/// (with the Makefile's `FUNCTIONS`; CONTRIBUTING.md, "Adding a function"). Its reserve is the
/// steps its handler keeps time for around its wait, as in its `handler::TIMEOUT_RESERVE`.
struct Function {
    function: &'static str,
    crate_dir: &'static str,
    variables: &'static [Var],
    not_in_template: &'static [Var],
    metrics: &'static [&'static str],
    wait_variable: &'static str,
    before_wait: &'static [Step],
    after_wait: &'static [Step],
    total: Duration,
}

impl Function {
    /// Panics when the steps listed here no longer add up to the handler's reserve.
    fn checked(self) -> Self {
        let sum =
            deadline::worst_case(self.before_wait) + deadline::worst_case(self.after_wait) + deadline::RESPONSE_MARGIN;
        assert_eq!(
            sum, self.total,
            "{}: the steps listed in tests/generated.rs add up to {}, but handler::TIMEOUT_RESERVE is {}: list the steps the handler now reserves time for",
            self.function, seconds(sum), seconds(self.total)
        );
        self
    }

    fn steps(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|s| format!("{} ({})", s.name, seconds(s.worst)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn table_row(&self) -> String {
        format!(
            "| {} | `{}` + {} | {}; after the wait: {}; answering ({}) |\n",
            self.function,
            self.wait_variable,
            seconds(self.total),
            Self::steps(self.before_wait),
            Self::steps(self.after_wait),
            seconds(deadline::RESPONSE_MARGIN),
        )
    }
}

/// Every function of the workspace.
fn functions() -> [Function; 2] {
    use bluegreen_rollback::handler as rollback;
    use redis_reconciler::handler as reconciler;
    [
        Function {
            function: "redis-reconciler",
            crate_dir: "crates/redis-reconciler",
            variables: redis_reconciler::config::VARIABLES,
            not_in_template: redis_reconciler::config::NOT_IN_TEMPLATE,
            metrics: redis_reconciler::metrics::NAMES,
            wait_variable: redis_reconciler::config::SETTLE.name,
            before_wait: &reconciler::FIRST_LOOK,
            after_wait: &reconciler::AFTER_SETTLE,
            total: reconciler::TIMEOUT_RESERVE,
        }
        .checked(),
        Function {
            function: "bluegreen-rollback",
            crate_dir: "crates/bluegreen-rollback",
            variables: bluegreen_rollback::config::VARIABLES,
            not_in_template: bluegreen_rollback::config::NOT_IN_TEMPLATE,
            metrics: bluegreen_rollback::metrics::NAMES,
            wait_variable: bluegreen_rollback::config::SYNC_TIMEOUT.name,
            before_wait: &[rollback::READ_PAIR, rollback::CHANGE],
            after_wait: &[rollback::GET_CHANGE],
            total: rollback::TIMEOUT_RESERVE,
        }
        .checked(),
    ]
}

/// What each generated key stands for.
fn reserve_value(key: &str, reserves: &[Function]) -> Option<String> {
    if key == "timeout-reserves" {
        let mut table =
            String::from("\n| Function | Timeout at least | The reserve: each step at its worst |\n|---|---|---|\n");
        reserves.iter().for_each(|r| table.push_str(&r.table_row()));
        return Some(table);
    }
    let (what, function) = key.split_once(' ')?;
    let r = reserves.iter().find(|r| r.function == function)?;
    match what {
        "reserve" => Some(seconds(r.total)),
        "reserve-secs" => Some(r.total.as_secs().to_string()),
        "after-wait" => Some(seconds(deadline::worst_case(r.after_wait))),
        _ => None,
    }
}

/// `text` with every generated span rewritten, or a description of what is wrong with it.
fn fill_generated(text: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut count = 0;
    while let Some(start) = rest.find(GENERATED_BEGIN) {
        let after_begin = &rest[start + GENERATED_BEGIN.len()..];
        let close = after_begin.find("-->").ok_or("a BEGIN marker is not closed with -->")?;
        // `KEY` or `KEY: a note for the reader`.
        let key = after_begin[..close].split(':').next().unwrap_or_default().trim();
        let body_start = start + GENERATED_BEGIN.len() + close + 3;
        let end = rest[body_start..]
            .find(GENERATED_END)
            .ok_or_else(|| format!("`{key}` has no {GENERATED_END}"))?;
        let wanted = value(key).ok_or_else(|| format!("unknown generated key `{key}`"))?;
        out.push_str(&rest[..body_start]);
        out.push_str(&wanted);
        out.push_str(GENERATED_END);
        rest = &rest[body_start + end + GENERATED_END.len()..];
        count += 1;
    }
    out.push_str(rest);
    if count == 0 {
        return Err(
            "no generated figure: state the reserve between markers, or drop the file from RESERVE_DOCS".into(),
        );
    }
    Ok(out)
}

/// A reserve typed by hand outside the markers: `SETTLE_TIMEOUT_SECS + 55`, `SyncTimeoutSecs` + 31`.
fn hand_typed_reserve(text: &str) -> Option<String> {
    let mut outside = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(GENERATED_BEGIN) {
        outside.push_str(&rest[..start]);
        match rest[start..].find(GENERATED_END) {
            Some(end) => rest = &rest[start + end + GENERATED_END.len()..],
            None => return None, // fill_generated reports it
        }
    }
    outside.push_str(rest);
    let names = ["TIMEOUT_SECS", "TimeoutSecs"];
    outside.lines().find_map(|line| {
        names.iter().find_map(|name| {
            line.match_indices(name).find_map(|(i, _)| {
                let after = line[i + name.len()..].trim_start_matches('`').trim_start();
                let figure = after.strip_prefix('+')?.trim_start();
                figure
                    .starts_with(|c: char| c.is_ascii_digit())
                    .then(|| line.trim().to_string())
            })
        })
    })
}

#[test]
fn the_docs_quote_the_timeout_reserve_from_the_code() {
    let reserves = functions();
    for doc in RESERVE_DOCS {
        let path = workspace_root().join(doc);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if let Some(line) = hand_typed_reserve(&text) {
            panic!("{doc} states a timeout reserve by hand; put the figure between `{GENERATED_BEGIN}reserve FUNCTION -->` and `{GENERATED_END}` (tests/generated.rs fills it): {line}");
        }
        let wanted =
            fill_generated(&text, |key| reserve_value(key, &reserves)).unwrap_or_else(|e| panic!("{doc}: {e}"));
        check_or_bless(&path, &text, &wanted);
    }
}

#[test]
fn generated_spans_are_found_filled_and_checked() {
    let fill = |text: &str| fill_generated(text, |key| (key == "k").then(|| "new".to_string()));
    assert_eq!(
        fill("a <!-- BEGIN generated k -->old<!-- END generated --> b <!-- BEGIN generated k: note -->\nx\n<!-- END generated -->").unwrap(),
        "a <!-- BEGIN generated k -->new<!-- END generated --> b <!-- BEGIN generated k: note -->new<!-- END generated -->"
    );
    assert!(fill("no marker").unwrap_err().contains("no generated figure"));
    assert!(fill("<!-- BEGIN generated x -->1<!-- END generated -->")
        .unwrap_err()
        .contains("unknown generated key `x`"));
    assert!(fill("<!-- BEGIN generated k -->1").unwrap_err().contains("has no"));
    assert_eq!(
        hand_typed_reserve("at least `SETTLE_TIMEOUT_SECS` + 55 s").as_deref(),
        Some("at least `SETTLE_TIMEOUT_SECS` + 55 s")
    );
    assert_eq!(
        hand_typed_reserve("keep it >= SyncTimeoutSecs + 31.").as_deref(),
        Some("keep it >= SyncTimeoutSecs + 31.")
    );
    assert_eq!(
        hand_typed_reserve("`SETTLE_TIMEOUT_SECS` + <!-- BEGIN generated reserve x -->55 s<!-- END generated -->"),
        None
    );
    assert_eq!(hand_typed_reserve("SETTLE_TIMEOUT_SECS + <reserve>"), None);
}
