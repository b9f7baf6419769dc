//! Files derived from the code and kept in the repository for readers and tools:
//!
//! - the configuration table in each function crate's README, from its `config::VARIABLES`;
//! - `infra/functions.json`, which `infra/check_template.py` reads to check the deploy template:
//!   every variable each function reads, with its default, those the template must not set, and the timeout rule
//!   (function timeout >= the wait variable + the reserve the handler derives from its steps),
//!   and the metrics it emits (namespace variable, dimension, every metric name), which the
//!   template's alarms and dashboard may name.
//!
//! Each test fails when its file is out of date and says how to regenerate it:
//! `FAILOVER_BLESS=1 cargo test -p failover-tests --test generated` rewrites them.

use std::path::Path;

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
    readme_table("crates/redis-reconciler", redis_reconciler::config::VARIABLES);
    readme_table("crates/bluegreen-rollback", bluegreen_rollback::config::VARIABLES);
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
    let manifest = json!({
        "generated_by": "tests/generated.rs (FAILOVER_BLESS=1 cargo test -p failover-tests --test generated)",
        "functions": {
            "redis-reconciler": {
                "variables": variables(redis_reconciler::config::VARIABLES),
                "not_in_template": redis_reconciler::config::NOT_IN_TEMPLATE.iter().map(|v| v.name).collect::<Vec<_>>(),
                "timeout": {
                    "wait_variable": redis_reconciler::config::SETTLE.name,
                    "reserve_secs": redis_reconciler::handler::TIMEOUT_RESERVE.as_secs(),
                },
                "metrics": metrics(redis_reconciler::metrics::NAMES),
            },
            "bluegreen-rollback": {
                "variables": variables(bluegreen_rollback::config::VARIABLES),
                "not_in_template": bluegreen_rollback::config::NOT_IN_TEMPLATE.iter().map(|v| v.name).collect::<Vec<_>>(),
                "timeout": {
                    "wait_variable": bluegreen_rollback::config::SYNC_TIMEOUT.name,
                    "reserve_secs": bluegreen_rollback::handler::TIMEOUT_RESERVE.as_secs(),
                },
                "metrics": metrics(bluegreen_rollback::metrics::NAMES),
            },
        },
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
