//! Every sample event in `events/bluegreen-rollback/` classifies as its README row says.

use bluegreen_rollback::trigger::{classify, Command, RollbackTrigger};
use failover_core::envelope::{AlarmState, TriggerError};
use serde_json::Value;

macro_rules! event {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("../../../events/bluegreen-rollback/", $name)))
            .expect(concat!($name, " is valid JSON"))
    };
}

/// `(alarm, state, previous)` of an alarm trigger.
fn alarm(t: RollbackTrigger) -> (String, AlarmState, Option<AlarmState>) {
    match t {
        RollbackTrigger::Alarm(c) => (c.alarm, c.state, c.previous),
        other => panic!("not an alarm: {other:?}"),
    }
}

#[test]
fn every_alarm_shape_yields_the_alarm_and_its_transition() {
    use AlarmState::*;
    let cases = [
        (
            event!("alarm-action-metric-alarm.json"),
            "app-green-5xx",
            Alarm,
            Some(Ok),
        ),
        (
            event!("alarm-action-composite-alarm.json"),
            "app-green-health",
            Alarm,
            Some(Ok),
        ),
        (event!("alarm-action-ok.json"), "app-green-5xx", Ok, Some(Alarm)),
        (
            event!("alarm-action-insufficient-data.json"),
            "app-green-5xx",
            InsufficientData,
            Some(Ok),
        ),
        (
            event!("alarm-action-other-alarm.json"),
            "billing-cpu-high",
            Alarm,
            Some(Ok),
        ),
        (event!("sns-alarm.json"), "app-green-5xx", Alarm, Some(Ok)),
        (
            event!("eventbridge-alarm-state-change.json"),
            "app-green-5xx",
            Alarm,
            Some(Ok),
        ),
    ];
    for (event, name, state, previous) in cases {
        assert_eq!(
            alarm(classify(&event).unwrap()),
            (name.to_string(), state, previous),
            "{name}"
        );
    }
}

#[test]
fn commands() {
    let shift = |n| RollbackTrigger::Command(Command::Shift { green_percent: n });
    assert_eq!(classify(&event!("command-shift-25.json")).unwrap(), shift(25));
    assert_eq!(classify(&event!("command-shift-0.json")).unwrap(), shift(0));
    assert_eq!(classify(&event!("command-shift-100.json")).unwrap(), shift(100));
    assert_eq!(
        classify(&event!("command-rollback.json")).unwrap(),
        RollbackTrigger::Command(Command::Rollback)
    );
    assert_eq!(
        classify(&event!("command-status.json")).unwrap(),
        RollbackTrigger::Command(Command::Status)
    );
}

#[test]
fn invalid_commands_and_envelopes_are_errors() {
    for (name, event) in [
        ("command-shift-150.json", event!("command-shift-150.json")),
        (
            "command-shift-missing-percent.json",
            event!("command-shift-missing-percent.json"),
        ),
        ("command-unknown-action.json", event!("command-unknown-action.json")),
    ] {
        assert!(
            matches!(classify(&event), Err(TriggerError::Malformed { shape: "command", .. })),
            "{name}"
        );
    }
    for (name, event) in [
        ("invalid-string.json", event!("invalid-string.json")),
        ("invalid-object.json", event!("invalid-object.json")),
    ] {
        let err = classify(&event).unwrap_err();
        assert!(
            matches!(err, TriggerError::Unrecognised { .. }) && err.to_string().contains("green_percent"),
            "{name}: {err}"
        );
    }
}
