//! Any bytes as a bluegreen-rollback invocation payload: classification returns a trigger or an
//! error, never panics, and an error never quotes more than a clip of the event.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Err(e) = bluegreen_rollback::trigger::classify(&event) {
        assert!(e.to_string().len() < 4 * failover_core::envelope::QUOTE_MAX + 1024);
    }
});
