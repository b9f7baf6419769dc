//! endpoint-client for a fleet: 200 clients (as 200 processes would hold) through one failover,
//! against real `redis-server`s and the emulator's SSM, with the default settings.
//!
//! In a test binary of its own, so that no other test competes for the 2 cores while it
//! measures recovery.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoint_client::{ClientConfig, EndpointClient};
use failover_tests::client_bed::{ClientBed, PARAM};
use failover_tests::redis_server::RedisServer;
use tokio::time::Instant;

fn set(key: &str, value: &str) -> redis::Cmd {
    redis::cmd("SET").arg(key).arg(value).clone()
}

#[tokio::test]
async fn a_fleet_of_200_clients_reads_within_the_documented_bound_and_recovers_within_1s_of_the_change() {
    let Some(mut old) = RedisServer::start().await else {
        return;
    };
    let Some(new) = RedisServer::start().await else { return };
    let Some(bed) = ClientBed::start().await else { return };
    bed.publish(&old.endpoint()).await;
    // GIVEN 200 processes' clients with the default schedule, all writing every 50 ms
    let cfg = ClientConfig::new(PARAM);
    let clients: Vec<EndpointClient> = (0..200).map(|_| bed.client(cfg.clone())).collect();
    for c in &clients {
        c.query::<()>(&set("k", "v")).await.expect("warm-up write");
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recovered_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; clients.len()]));
    // WHEN the primary dies, and the parameter names the new one 2 s later
    bed.emu.clear_operations().await;
    old.kill().await;
    let failed = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        let (stop, recovered_at) = (stop.clone(), recovered_at.clone());
        tasks.push(tokio::spawn(async move {
            let mut failed_once = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.query::<()>(&set("k", "v")).await {
                    Err(_) => failed_once = true,
                    Ok(()) if failed_once => {
                        recovered_at.lock().unwrap()[i].get_or_insert(Instant::now());
                    }
                    Ok(()) => {}
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    tokio::time::sleep_until(failed + Duration::from_secs(2)).await;
    bed.publish(&new.endpoint()).await;
    let changed = Instant::now();
    tokio::time::sleep_until(failed + Duration::from_secs(10)).await;
    let reads = bed.parameter_reads().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    // THEN the fleet read no more than the documented bound
    let bound = clients.len() * cfg.max_reads_after_failure(changed - failed);
    eprintln!(
        "{reads} GetParameter calls in 10 s by {} clients (bound {bound})",
        clients.len()
    );
    assert!(reads <= bound, "{reads} reads, bound {bound}");
    // AND every client wrote to the new primary within 1 s of the change
    let recovered = recovered_at.lock().unwrap().clone();
    let lags: Vec<Duration> = recovered
        .iter()
        .map(|r| r.map_or(Duration::MAX, |at| at.saturating_duration_since(changed)))
        .collect();
    let worst = lags.iter().max().copied().unwrap_or_default();
    eprintln!("slowest recovery: {worst:?} after the change");
    assert!(
        worst <= Duration::from_secs(1),
        "slowest recovery {worst:?} after the change"
    );
}
