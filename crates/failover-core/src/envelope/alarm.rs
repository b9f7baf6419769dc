//! A CloudWatch alarm state change, in our own types, whichever way it was delivered.

use std::fmt;

/// The state of a CloudWatch alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// `OK`
    Ok,
    /// `ALARM`
    Alarm,
    /// `INSUFFICIENT_DATA`
    InsufficientData,
}

impl AlarmState {
    /// Parses the spelling CloudWatch uses in every payload (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OK" => Some(Self::Ok),
            "ALARM" => Some(Self::Alarm),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

/// A CloudWatch alarm state change, whichever way it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    /// The alarm's name.
    pub alarm: String,
    /// The state it moved into.
    pub state: AlarmState,
    /// The state it left, when the payload says.
    pub previous: Option<AlarmState>,
    /// Metric dimensions of the alarm's metrics, `(name, value)`, in payload order. Empty for
    /// composite alarms.
    pub dimensions: Vec<(String, String)>,
    /// Every AWS account the payload names for the alarm (its account field and its ARN),
    /// sorted and without repeats: one entry when the payload is consistent, none when it
    /// names no account.
    pub accounts: Vec<String>,
    /// Why CloudWatch suppressed the alarm's actions for this change (`Alarm`, `WaitPeriod`,
    /// `ExtensionPeriod`), as EventBridge reports it for a composite alarm held by its
    /// actions suppressor. CloudWatch did not run the alarm's actions.
    pub actions_suppressed_by: Option<String>,
}
