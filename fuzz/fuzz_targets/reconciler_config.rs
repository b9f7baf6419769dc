//! Any environment (lines of NAME=value) for redis-reconciler: the configuration is accepted
//! or refused with an error naming a variable it reads, never a panic.
#![no_main]

use failover_core::env::Env;
use libfuzzer_sys::fuzz_target;
use redis_reconciler::config::{ReconcilerConfig, VARIABLES};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let env = Env::from_pairs(&pairs);
    if let Err(e) = ReconcilerConfig::from(&env) {
        assert!(VARIABLES.iter().any(|v| v.name == e.var()), "{e}");
    };
});
