//! Reading back the CloudWatch Embedded Metric Format documents the functions print, and
//! checking each against the EMF specification
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).

use std::sync::{Arc, Mutex};

use failover_core::metrics::{Emitter, Sink};
use serde_json::{Map, Value};

/// Where a handler under test writes its EMF documents instead of stdout (which a handler writes
/// to directly, bypassing cargo's output capture): a buffer the test reads back.
#[derive(Debug, Default, Clone)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// An emitter for `function`, publishing under `namespace`, that writes into this buffer.
    pub fn emitter(&self, namespace: &str, function: &str) -> Emitter {
        Emitter::new(namespace, function, Sink::Memory(Arc::clone(&self.0)))
    }

    /// The text written since the last call.
    pub fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        String::from_utf8(bytes).expect("EMF documents are UTF-8")
    }

    /// The documents written since the last call: exactly one, checked against the spec.
    pub fn one(&self) -> Document {
        let text = self.take();
        assert_eq!(text.matches('\n').count(), 1, "one line per invocation: {text}");
        let mut docs = documents(&text);
        assert_eq!(docs.len(), 1, "{text}");
        docs.remove(0)
    }
}

/// The units CloudWatch accepts.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One checked document: its namespace, dimension sets, and metrics by name with their unit.
#[derive(Debug, Clone)]
pub struct Document {
    /// The whole JSON object.
    pub json: Map<String, Value>,
    /// `_aws.CloudWatchMetrics[0].Namespace`.
    pub namespace: String,
    /// The dimension sets of the (one) directive.
    pub dimensions: Vec<Vec<String>>,
    /// `(name, unit)` of every declared metric, in order.
    pub metrics: Vec<(String, String)>,
}

impl Document {
    /// The value of metric `name`, if declared.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .any(|(n, _)| n == name)
            .then(|| self.json[name].as_f64().expect("checked: a number"))
    }

    /// The names of the declared metrics.
    pub fn names(&self) -> Vec<&str> {
        self.metrics.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The value of a dimension (a root string member).
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }
}

/// Checks one line against the specification: one JSON object, `_aws.Timestamp` in epoch
/// milliseconds, `CloudWatchMetrics` directives with a namespace, dimension sets of at most 30
/// keys each naming a root string member, at most 100 metrics each with a valid unit and a root
/// member that is a number (or an array of at most 100 numbers), storage resolution 1 or 60.
pub fn check(line: &str) -> Result<Document, String> {
    let json: Map<String, Value> = serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}: {line}"))?;
    let aws = json.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    let ts = aws
        .get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or("_aws.Timestamp is not an integer")?;
    // Milliseconds, not seconds: after 2020 and before 2100.
    if !(1_577_836_800_000..4_102_444_800_000).contains(&ts) {
        return Err(format!(
            "_aws.Timestamp {ts} is not epoch milliseconds of a plausible date"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is not an array")?;
    if directives.len() != 1 {
        return Err(format!("expected one directive, found {}", directives.len()));
    }
    let d = directives[0].as_object().ok_or("a directive is not an object")?;
    let namespace = d
        .get("Namespace")
        .and_then(Value::as_str)
        .ok_or("Namespace missing")?
        .to_owned();
    if namespace.is_empty() || namespace.len() > 255 {
        return Err(format!("Namespace {namespace:?} is not 1 to 255 characters"));
    }
    let sets = d
        .get("Dimensions")
        .and_then(Value::as_array)
        .ok_or("Dimensions is not an array")?;
    let mut dimensions = Vec::new();
    for set in sets {
        let keys = set.as_array().ok_or("a dimension set is not an array")?;
        if keys.len() > 30 {
            return Err(format!("a dimension set has {} keys (max 30)", keys.len()));
        }
        let mut names = Vec::new();
        for k in keys {
            let k = k.as_str().ok_or("a dimension key is not a string")?;
            match json.get(k) {
                Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                other => return Err(format!("dimension {k} is not a root string member: {other:?}")),
            }
            names.push(k.to_owned());
        }
        dimensions.push(names);
    }
    let declared = d
        .get("Metrics")
        .and_then(Value::as_array)
        .ok_or("Metrics is not an array")?;
    if declared.is_empty() || declared.len() > 100 {
        return Err(format!("{} metrics declared (1 to 100)", declared.len()));
    }
    let mut metrics = Vec::new();
    for m in declared {
        let name = m.get("Name").and_then(Value::as_str).ok_or("a metric has no Name")?;
        let unit = m.get("Unit").and_then(Value::as_str).unwrap_or("None");
        if !UNITS.contains(&unit) {
            return Err(format!("metric {name}: unit {unit:?} is not a CloudWatch unit"));
        }
        if let Some(r) = m.get("StorageResolution") {
            if r != 1 && r != 60 {
                return Err(format!("metric {name}: StorageResolution {r} is not 1 or 60"));
            }
        }
        match json.get(name) {
            Some(Value::Number(_)) => {}
            Some(Value::Array(values)) if values.len() <= 100 && values.iter().all(Value::is_number) => {}
            other => return Err(format!("metric {name} is not a root number: {other:?}")),
        }
        metrics.push((name.to_owned(), unit.to_owned()));
    }
    Ok(Document {
        json: json.clone(),
        namespace,
        dimensions,
        metrics,
    })
}

/// Every EMF document in `output` (lines that are JSON objects with an `_aws` member), each
/// checked; panics naming the line that fails.
pub fn documents(output: &str) -> Vec<Document> {
    output
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
        .map(|l| check(l).unwrap_or_else(|e| panic!("invalid EMF document: {e}\n{l}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"_aws":{"Timestamp":1764400000000,"CloudWatchMetrics":[{"Namespace":"Failover","Dimensions":[["FunctionName"]],"Metrics":[{"Name":"Failed","Unit":"Count"}]}]},"FunctionName":"f","Failed":0}"#;

    #[test]
    fn the_checker_accepts_a_valid_document_and_refuses_broken_ones() {
        assert_eq!(check(GOOD).unwrap().metric("Failed"), Some(0.0));
        for (broken, why) in [
            (GOOD.replace("1764400000000", "1764400000"), "seconds"),
            (GOOD.replace(r#","FunctionName":"f""#, ""), "dimension"),
            (GOOD.replace(r#""Failed":0"#, r#""Failed":"0""#), "not a root number"),
            (GOOD.replace(r#""Unit":"Count""#, r#""Unit":"Counts""#), "unit"),
            (GOOD.replace(r#""Namespace":"Failover","#, ""), "Namespace"),
        ] {
            let err = check(&broken).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
