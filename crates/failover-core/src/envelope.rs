//! Recognising the envelope an invocation arrived in.
//!
//! Both functions are invoked by several AWS services and by hand. This module turns the raw
//! JSON payload into an [`Envelope`]: which service delivered it and what it says, in our own
//! types. What each function then does with an envelope is that function's decision
//! (each function crate's `trigger` module). Parsing is pure and never guesses: a payload of no
//! known shape is an error that lists the shapes the function accepts.

use aws_lambda_events::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmStateValue};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use serde_json::{Map, Value};
use std::fmt;
use std::time::SystemTime;

mod alarm;
pub use alarm::{AlarmChange, AlarmState};

/// The account of an ARN (`arn:partition:service:region:account:...`): twelve digits, or
/// `None` for anything else (`cargo lambda watch` passes `function-arn` as a function ARN).
pub fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next()? == "arn").then_some(())?;
    parts
        .nth(3)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

/// The accounts named by an explicit account field and by ARNs, sorted, without repeats.
fn accounts<'a>(account: Option<&'a str>, arns: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut found: Vec<String> = account
        .into_iter()
        .chain(arns.into_iter().filter_map(arn_account))
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// An ElastiCache event notification (the SNS message is a JSON object keyed by event name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElastiCacheNotice {
    /// The event, e.g. `ElastiCache:FailoverComplete`.
    pub event: String,
    /// The id the event is about: a cache cluster id (`orders-002`) or a replication group id.
    pub source_id: String,
    /// The replication group, when the message names it.
    pub replication_group_id: Option<String>,
}

/// What one SNS message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A CloudWatch alarm notification.
    Alarm(AlarmChange),
    /// An ElastiCache event notification.
    ElastiCache(ElastiCacheNotice),
    /// Anything else (plain text, other JSON).
    Text {
        /// The SNS subject, if any.
        subject: Option<String>,
    },
}

/// The recognised shape of an invocation payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// An SNS event: one notice per record (SNS delivers one record per invocation).
    Sns(Vec<Notice>),
    /// EventBridge `Scheduled Event`.
    Schedule {
        /// The rule ARN, when present.
        rule: Option<String>,
    },
    /// EventBridge `CloudWatch Alarm State Change`.
    AlarmStateChange(AlarmChange),
    /// The payload CloudWatch sends when an alarm invokes a Lambda function directly.
    AlarmAction(AlarmChange),
    /// Any other JSON object: a direct invocation, which the function validates itself.
    Direct(Map<String, Value>),
}

/// A payload that is not one of the accepted shapes, or is one but is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The payload matches none of the shapes the function accepts.
    #[error("unrecognised event: {found}. Accepted: {accepted}")]
    Unrecognised {
        /// What the payload looked like.
        found: String,
        /// The shapes this function accepts.
        accepted: &'static str,
    },
    /// The payload has a known shape but a required part is missing or wrong.
    #[error("malformed {shape}: {reason}")]
    Malformed {
        /// Which shape it claimed to be.
        shape: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl TriggerError {
    /// Shorthand for [`TriggerError::Unrecognised`]; `found` is [`clip`]ped.
    pub fn unrecognised(found: impl Into<String>, accepted: &'static str) -> Self {
        Self::Unrecognised {
            found: clip(&found.into()),
            accepted,
        }
    }

    /// Shorthand for [`TriggerError::Malformed`]; `reason` is [`clip`]ped.
    pub fn malformed(shape: &'static str, reason: impl fmt::Display) -> Self {
        Self::Malformed {
            shape,
            reason: clip(&reason.to_string()),
        }
    }
}

/// The longest piece of an event an error message quotes.
pub const QUOTE_MAX: usize = 200;

/// `text` cut to [`QUOTE_MAX`] characters, with `...` where it was cut: an error about an
/// event never carries the whole of a large one.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

/// Recognises the envelope of `event`. `accepted` describes the caller's accepted shapes, for
/// the error message.
pub fn parse_envelope(event: &Value, accepted: &'static str) -> Result<Envelope, TriggerError> {
    let Value::Object(obj) = event else {
        return Err(TriggerError::unrecognised(
            format!("a JSON {}, not an object", json_kind(event)),
            accepted,
        ));
    };
    if let Some(records) = obj.get("Records") {
        return parse_sns(event, records, accepted);
    }
    if obj.contains_key("detail-type") {
        return parse_eventbridge(event, accepted);
    }
    if obj.get("source").and_then(Value::as_str) == Some("aws.cloudwatch") && obj.contains_key("alarmData") {
        return parse_alarm_action(event);
    }
    Ok(Envelope::Direct(obj.clone()))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_sns(event: &Value, records: &Value, accepted: &'static str) -> Result<Envelope, TriggerError> {
    let sources: Vec<&str> = records
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    r.get("EventSource")
                        .or_else(|| r.get("eventSource"))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                })
                .collect()
        })
        .unwrap_or_default();
    if sources.is_empty() || sources.iter().any(|s| *s != "aws:sns") {
        return Err(TriggerError::unrecognised(
            format!(
                "a Records event from {} (only SNS records are accepted)",
                sources.join(", ")
            ),
            accepted,
        ));
    }
    let sns: SnsEvent = serde_json::from_value(event.clone()).map_err(|e| TriggerError::malformed("SNS event", e))?;
    let notices = sns
        .records
        .iter()
        .map(|r| parse_sns_message(&r.sns.message, r.sns.subject.clone()))
        .collect::<Result<_, _>>()?;
    Ok(Envelope::Sns(notices))
}

/// Reads an SNS message body: a CloudWatch alarm notification, an ElastiCache notification, or
/// anything else.
fn parse_sns_message(message: &str, subject: Option<String>) -> Result<Notice, TriggerError> {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(message) else {
        return Ok(Notice::Text { subject });
    };
    if msg.contains_key("AlarmName") && msg.contains_key("NewStateValue") {
        return parse_alarm_notification(&msg).map(Notice::Alarm);
    }
    if let Some((event, id)) = msg.iter().find(|(k, _)| k.starts_with("ElastiCache:")) {
        let source_id = id.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
            TriggerError::malformed(
                "ElastiCache notification",
                format!("{event} does not name a cluster or group"),
            )
        })?;
        let replication_group_id = msg
            .iter()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case("Replication Group ID") || k.eq_ignore_ascii_case("ReplicationGroupId")
            })
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned);
        return Ok(Notice::ElastiCache(ElastiCacheNotice {
            event: event.clone(),
            source_id: source_id.to_owned(),
            replication_group_id,
        }));
    }
    Ok(Notice::Text { subject })
}

fn parse_alarm_notification(msg: &Map<String, Value>) -> Result<AlarmChange, TriggerError> {
    const SHAPE: &str = "CloudWatch alarm notification";
    let text = |key: &str| msg.get(key).and_then(Value::as_str);
    let alarm = text("AlarmName")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TriggerError::malformed(SHAPE, "AlarmName is empty"))?;
    let state = state_of(text("NewStateValue"), SHAPE, "NewStateValue")?;
    let previous = text("OldStateValue").and_then(AlarmState::parse);
    // SNS alarm notifications list dimensions as [{"value": .., "name": ..}], either directly on
    // the trigger or inside each metric of a metric-math alarm.
    let trigger = msg.get("Trigger");
    let mut lists: Vec<&Value> = trigger.and_then(|t| t.get("Dimensions")).into_iter().collect();
    if let Some(metrics) = trigger.and_then(|t| t.get("Metrics")).and_then(Value::as_array) {
        lists.extend(
            metrics
                .iter()
                .filter_map(|m| m.pointer("/MetricStat/Metric/Dimensions")),
        );
    }
    let dimensions = lists
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|d| {
            let get = |k: &str, alt: &str| {
                d.get(k)
                    .or_else(|| d.get(alt))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            Some((get("name", "Name")?, get("value", "Value")?))
        })
        .collect();
    Ok(AlarmChange {
        alarm: alarm.to_owned(),
        state,
        previous,
        dimensions,
        accounts: accounts(text("AWSAccountId"), text("AlarmArn")),
        actions_suppressed_by: None,
    })
}

fn state_of(value: Option<&str>, shape: &'static str, field: &str) -> Result<AlarmState, TriggerError> {
    let v = value.ok_or_else(|| TriggerError::malformed(shape, format!("{field} is missing")))?;
    AlarmState::parse(v)
        .ok_or_else(|| TriggerError::malformed(shape, format!("{field} {v:?} is not OK, ALARM or INSUFFICIENT_DATA")))
}

fn parse_eventbridge(event: &Value, accepted: &'static str) -> Result<Envelope, TriggerError> {
    let eb: EventBridgeEvent<Value> =
        serde_json::from_value(event.clone()).map_err(|e| TriggerError::malformed("EventBridge event", e))?;
    match (eb.source.as_str(), eb.detail_type.as_str()) {
        ("aws.events", "Scheduled Event") => Ok(Envelope::Schedule {
            rule: eb.resources.unwrap_or_default().into_iter().next(),
        }),
        ("aws.cloudwatch", "CloudWatch Alarm State Change") => {
            const SHAPE: &str = "CloudWatch Alarm State Change event";
            let d = &eb.detail;
            let alarm = d
                .get("alarmName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| TriggerError::malformed(SHAPE, "detail.alarmName is missing"))?;
            let state = state_of(
                d.pointer("/state/value").and_then(Value::as_str),
                SHAPE,
                "detail.state.value",
            )?;
            let previous = d
                .pointer("/previousState/value")
                .and_then(Value::as_str)
                .and_then(AlarmState::parse);
            let resources = eb.resources.as_deref().unwrap_or_default();
            Ok(Envelope::AlarmStateChange(AlarmChange {
                alarm: alarm.to_owned(),
                state,
                previous,
                dimensions: configuration_dimensions(d.get("configuration")),
                accounts: accounts(eb.account.as_deref(), resources.iter().map(String::as_str)),
                actions_suppressed_by: d
                    .pointer("/state/actionsSuppressedBy")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }))
        }
        (source, detail_type) => Err(TriggerError::unrecognised(
            format!("an EventBridge event of detail-type {detail_type:?} from {source}"),
            accepted,
        )),
    }
}

fn parse_alarm_action(event: &Value) -> Result<Envelope, TriggerError> {
    const SHAPE: &str = "CloudWatch alarm action payload";
    let alarm: CloudWatchAlarm<Value, Value> =
        serde_json::from_value(event.clone()).map_err(|e| TriggerError::malformed(SHAPE, e))?;
    let data = &alarm.alarm_data;
    let convert = |v: &CloudWatchAlarmStateValue| match v {
        CloudWatchAlarmStateValue::Alarm => Some(AlarmState::Alarm),
        CloudWatchAlarmStateValue::Ok => Some(AlarmState::Ok),
        CloudWatchAlarmStateValue::InsufficientData => Some(AlarmState::InsufficientData),
        _ => None,
    };
    let state = data
        .state
        .as_ref()
        .and_then(|s| convert(&s.value))
        .ok_or_else(|| TriggerError::malformed(SHAPE, "alarmData.state.value is missing"))?;
    if data.alarm_name.is_empty() {
        return Err(TriggerError::malformed(SHAPE, "alarmData.alarmName is empty"));
    }
    Ok(Envelope::AlarmAction(AlarmChange {
        alarm: data.alarm_name.clone(),
        state,
        previous: data.previous_state.as_ref().and_then(|s| convert(&s.value)),
        dimensions: configuration_dimensions(Some(&data.configuration)),
        accounts: accounts(alarm.account_id.as_deref(), alarm.alarm_arn.as_deref()),
        actions_suppressed_by: event
            .pointer("/alarmData/state/actionsSuppressedBy")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }))
}

/// Dimensions from an alarm `configuration` as EventBridge and alarm actions send it:
/// `metrics[].metricStat.metric.dimensions` is a `{name: value}` map.
fn configuration_dimensions(configuration: Option<&Value>) -> Vec<(String, String)> {
    configuration
        .and_then(|c| c.get("metrics"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.pointer("/metricStat/metric/dimensions").and_then(Value::as_object))
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// When the event says its news happened, for the time from there to our action (the
/// functions' latency metrics): the alarm's own state change time for an alarm (SNS
/// `StateChangeTime`, EventBridge and alarm action `state.timestamp`), else the EventBridge
/// `time` (a schedule), else the SNS `Timestamp` (an ElastiCache notification). `None` for a
/// direct invocation or a time that does not parse; nothing is decided on it.
pub fn event_time(event: &Value) -> Option<SystemTime> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).and_then(parse_time);
    if let Some(sns) = event.pointer("/Records/0/Sns") {
        let alarm = sns
            .get("Message")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|m| text(m.get("StateChangeTime")));
        return alarm.or_else(|| text(sns.get("Timestamp")));
    }
    text(event.pointer("/detail/state/timestamp"))
        .or_else(|| text(event.pointer("/alarmData/state/timestamp")))
        .or_else(|| text(event.get("time")))
}

/// An RFC 3339 time (`2026-03-14T14:03:27.981Z`) or CloudWatch's spelling of one
/// (`2026-03-14T14:03:27.914+0000`).
fn parse_time(s: &str) -> Option<SystemTime> {
    let at = chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    let millis = u64::try_from(at.timestamp_millis()).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCEPTED: &str = "test shapes";

    #[test]
    fn non_objects_are_unrecognised_and_say_what_they_are() {
        for (event, kind) in [
            (json!("hello"), "string"),
            (json!([1, 2]), "array"),
            (json!(null), "null"),
            (json!(7), "number"),
        ] {
            let err = parse_envelope(&event, ACCEPTED).unwrap_err();
            assert!(matches!(err, TriggerError::Unrecognised { .. }), "{err}");
            assert!(
                err.to_string().contains(kind) && err.to_string().contains(ACCEPTED),
                "{err}"
            );
        }
    }

    #[test]
    fn sns_message_kinds() {
        let alarm = r#"{"AlarmName":"a","NewStateValue":"ALARM","OldStateValue":"OK","Trigger":{"Dimensions":[{"value":"orders-001","name":"CacheClusterId"}]}}"#;
        assert_eq!(
            parse_sns_message(alarm, None).unwrap(),
            Notice::Alarm(AlarmChange {
                alarm: "a".into(),
                state: AlarmState::Alarm,
                previous: Some(AlarmState::Ok),
                dimensions: vec![("CacheClusterId".into(), "orders-001".into())],
                accounts: vec![],
                actions_suppressed_by: None,
            })
        );
        let ec = r#"{"ElastiCache:FailoverComplete":"orders-002"}"#;
        assert_eq!(
            parse_sns_message(ec, None).unwrap(),
            Notice::ElastiCache(ElastiCacheNotice {
                event: "ElastiCache:FailoverComplete".into(),
                source_id: "orders-002".into(),
                replication_group_id: None,
            })
        );
        for text in ["please reconcile", r#"{"some":"json"}"#, "[1,2]"] {
            assert_eq!(
                parse_sns_message(text, Some("s".into())).unwrap(),
                Notice::Text {
                    subject: Some("s".into())
                }
            );
        }
    }

    #[test]
    fn metric_math_alarm_dimensions_are_collected() {
        let alarm = r#"{"AlarmName":"a","NewStateValue":"OK","Trigger":{"Metrics":[{"Id":"m1","MetricStat":{"Metric":{"Dimensions":[{"value":"sessions-002","name":"CacheClusterId"}]}}},{"Id":"e1","Expression":"m1*2"}]}}"#;
        let Notice::Alarm(change) = parse_sns_message(alarm, None).unwrap() else {
            panic!()
        };
        assert_eq!(
            change.dimensions,
            vec![("CacheClusterId".to_string(), "sessions-002".to_string())]
        );
    }

    #[test]
    fn malformed_alarm_and_elasticache_messages_are_errors() {
        for msg in [
            r#"{"AlarmName":"a","NewStateValue":"PANIC"}"#,
            r#"{"AlarmName":"","NewStateValue":"ALARM"}"#,
            r#"{"ElastiCache:FailoverComplete":""}"#,
            r#"{"ElastiCache:FailoverComplete":7}"#,
        ] {
            assert!(
                matches!(parse_sns_message(msg, None), Err(TriggerError::Malformed { .. })),
                "{msg}"
            );
        }
    }

    #[test]
    fn records_that_are_not_sns_are_unrecognised() {
        let event = json!({"Records": [{"eventSource": "aws:sqs", "body": "x"}]});
        let err = parse_envelope(&event, ACCEPTED).unwrap_err();
        assert!(err.to_string().contains("aws:sqs"), "{err}");
        assert!(matches!(
            parse_envelope(&json!({"Records": []}), ACCEPTED),
            Err(TriggerError::Unrecognised { .. })
        ));
    }

    #[test]
    fn errors_quote_at_most_a_clip_of_the_event() {
        let huge = "é".repeat(100_000);
        let err = parse_envelope(&json!({"Records": [{"EventSource": huge}]}), ACCEPTED).unwrap_err();
        assert!(err.to_string().len() < 1_000, "{}", err.to_string().len());
        assert_eq!(clip("short"), "short");
        assert_eq!(
            clip(&"x".repeat(QUOTE_MAX + 1)),
            format!("{}...", "x".repeat(QUOTE_MAX))
        );
    }

    #[test]
    fn plain_objects_are_direct_invocations() {
        let env = parse_envelope(&json!({"replication_group_id": "orders"}), ACCEPTED).unwrap();
        assert!(matches!(env, Envelope::Direct(m) if m["replication_group_id"] == "orders"));
    }

    #[test]
    fn an_arn_names_its_account_only_as_twelve_digits() {
        assert_eq!(
            arn_account("arn:aws:lambda:us-east-1:123456789012:function:bluegreen-rollback"),
            Some("123456789012")
        );
        assert_eq!(
            arn_account("arn:aws-cn:lambda:cn-north-1:123456789012:function:f:live"),
            Some("123456789012")
        );
        for not_an_arn in [
            "function-arn",
            "",
            "arn:aws:lambda:us-east-1::function:f",
            "arn:aws:lambda:us-east-1:12345:function:f",
        ] {
            assert_eq!(arn_account(not_an_arn), None, "{not_an_arn}");
        }
    }

    #[test]
    fn the_event_time_is_the_alarm_change_else_the_delivery() {
        let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
        // 2026-03-14T14:03:27.914Z
        const CHANGE: u128 = 1_773_497_007_914;
        let alarm_msg =
            r#"{\"AlarmName\":\"a\",\"NewStateValue\":\"ALARM\",\"StateChangeTime\":\"2026-03-14T14:03:27.914+0000\"}"#;
        let sns = |message: &str| {
            serde_json::from_str::<Value>(&format!(
                r#"{{"Records":[{{"EventSource":"aws:sns","Sns":{{"Timestamp":"2026-03-14T14:03:28.000Z","Message":"{message}"}}}}]}}"#
            ))
            .unwrap()
        };
        assert_eq!(event_time(&sns(alarm_msg)).map(ms), Some(CHANGE));
        assert_eq!(event_time(&sns("failover")).map(ms), Some(CHANGE + 86));
        let eb = serde_json::json!({"time": "2026-03-14T14:03:29Z", "detail": {"state": {"timestamp": "2026-03-14T14:03:27.914+0000"}}});
        assert_eq!(event_time(&eb).map(ms), Some(CHANGE));
        let action = serde_json::json!({"time": "2026-03-14T14:03:29Z", "alarmData": {"state": {"timestamp": "2026-03-14T14:03:27.914+0000"}}});
        assert_eq!(event_time(&action).map(ms), Some(CHANGE));
        let schedule = serde_json::json!({"time": "2026-03-14T14:03:27.914Z", "detail-type": "Scheduled Event"});
        assert_eq!(event_time(&schedule).map(ms), Some(CHANGE));
        assert_eq!(event_time(&serde_json::json!({"time": "yesterday"})), None);
        assert_eq!(event_time(&serde_json::json!({})), None);
    }
}
