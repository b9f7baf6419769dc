//! What an invocation of bluegreen-rollback asks for: an alarm state change, or a command.

use serde_json::{Map, Value};

use failover_core::envelope::{parse_envelope, AlarmChange, Envelope, Notice, TriggerError};

/// The shapes bluegreen-rollback accepts, quoted in every "unrecognised event" error.
pub const ACCEPTED: &str = "a CloudWatch alarm action payload, an SNS-wrapped CloudWatch alarm notification, \
an EventBridge \"CloudWatch Alarm State Change\", or a command {\"action\":\"rollback\"}, {\"action\":\"status\"} \
or {\"action\":\"shift\",\"green_percent\":0..100}";

/// A command sent by direct invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Put `green_percent` of the traffic on green and the rest on blue.
    Shift {
        /// 0..=100.
        green_percent: u8,
    },
    /// Send all traffic back to blue.
    Rollback,
    /// Report the current weights.
    Status,
}

/// A classified invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTrigger {
    /// A CloudWatch alarm changed state (alarm action, SNS or EventBridge).
    Alarm(AlarmChange),
    /// An operator's command.
    Command(Command),
}

/// Classifies a raw invocation payload. Errors say which shapes are accepted.
pub fn classify(event: &Value) -> Result<RollbackTrigger, TriggerError> {
    match parse_envelope(event, ACCEPTED)? {
        Envelope::AlarmAction(change) | Envelope::AlarmStateChange(change) => Ok(RollbackTrigger::Alarm(change)),
        Envelope::Sns(notices) => match notices.into_iter().next() {
            Some(Notice::Alarm(change)) => Ok(RollbackTrigger::Alarm(change)),
            _ => Err(TriggerError::unrecognised(
                "an SNS message that is not a CloudWatch alarm notification",
                ACCEPTED,
            )),
        },
        Envelope::Schedule { .. } => Err(TriggerError::unrecognised("an EventBridge Scheduled Event", ACCEPTED)),
        Envelope::Direct(obj) => parse_command(&obj).map(RollbackTrigger::Command),
    }
}

fn parse_command(obj: &Map<String, Value>) -> Result<Command, TriggerError> {
    let malformed = |reason: String| TriggerError::malformed("command", reason);
    let Some(action) = obj.get("action") else {
        let keys: Vec<&String> = obj.keys().collect();
        return Err(TriggerError::unrecognised(
            format!("an object with keys {keys:?} and no \"action\""),
            ACCEPTED,
        ));
    };
    let allowed: &[&str] = match action.as_str() {
        Some("shift") => &["action", "green_percent"],
        Some("rollback" | "status") => &["action"],
        _ => {
            return Err(malformed(format!(
                "unknown action {action}; expected \"shift\", \"rollback\" or \"status\""
            )))
        }
    };
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(malformed(format!("unexpected field {extra:?} for action {action}")));
    }
    Ok(match action.as_str() {
        Some("shift") => {
            let n = obj
                .get("green_percent")
                .ok_or_else(|| malformed("shift needs \"green_percent\": 0..100".into()))?;
            let percent = n
                .as_u64()
                .filter(|p| *p <= 100)
                .ok_or_else(|| malformed(format!("green_percent must be a whole number from 0 to 100, got {n}")))?;
            Command::Shift {
                green_percent: percent as u8,
            }
        }
        Some("rollback") => Command::Rollback,
        _ => Command::Status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands() {
        assert_eq!(
            classify(&json!({"action": "rollback"})).unwrap(),
            RollbackTrigger::Command(Command::Rollback)
        );
        assert_eq!(
            classify(&json!({"action": "status"})).unwrap(),
            RollbackTrigger::Command(Command::Status)
        );
        for n in [0, 25, 100] {
            assert_eq!(
                classify(&json!({"action": "shift", "green_percent": n})).unwrap(),
                RollbackTrigger::Command(Command::Shift { green_percent: n })
            );
        }
    }

    #[test]
    fn invalid_commands_are_errors() {
        for bad in [
            json!({"action": "shift", "green_percent": 150}),
            json!({"action": "shift", "green_percent": -1}),
            json!({"action": "shift", "green_percent": 2.5}),
            json!({"action": "shift", "green_percent": "25"}),
            json!({"action": "shift"}),
            json!({"action": "explode"}),
            json!({"action": 7}),
            json!({"action": "rollback", "force": true}),
        ] {
            assert!(matches!(classify(&bad), Err(TriggerError::Malformed { .. })), "{bad}");
        }
        assert!(matches!(
            classify(&json!({"foo": "bar"})),
            Err(TriggerError::Unrecognised { .. })
        ));
        assert!(matches!(classify(&json!({})), Err(TriggerError::Unrecognised { .. })));
    }
}
