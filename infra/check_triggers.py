"""Check 5 of infra/check_template.py: every trigger the template wires has a sample in events/<function>/
shaped like what that trigger delivers (SNS record, EventBridge "Scheduled Event", CloudWatch alarm action,
alarm notifications through the SNS topic, composite alarms), evaluated with everything switched on; and that it
checked at least one trigger.
"""

from __future__ import annotations

import json
from pathlib import Path

from cfn import Evaluator, as_list

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_events(function: str) -> dict[str, object]:
    return {p.name: json.loads(p.read_text()) for p in sorted((EVENTS / function).glob("*.json"))}


def sns_messages(events: dict[str, object]) -> dict[str, object]:
    out = {}
    for name, ev in events.items():
        if (
            isinstance(ev, dict)
            and isinstance(ev.get("Records"), list)
            and ev["Records"]
            and all(rec.get("EventSource") == "aws:sns" for rec in ev["Records"])
        ):
            msg = ev["Records"][0]["Sns"]["Message"]
            try:
                out[name] = json.loads(msg)
            except ValueError:
                out[name] = msg
    return out


def alarm_targets(ev: Evaluator, target: str) -> list[dict]:
    """Active alarms whose actions include `target` (an evaluated value such as '<Topic>')."""
    out = []
    for logical, res in ev.template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm" or not ev.active(logical):
            continue
        props = ev.eval(res["Properties"])
        if target in props.get("AlarmActions", []) + props.get("OKActions", []):
            out.append(props | {"_logical": logical})
    return out


def check_triggers(r, template: dict, functions: dict[str, tuple[str, dict]]) -> None:
    """`r` is check_template's Report: r.problem(msg), r.info(msg)."""
    # Everything switched on, so every trigger the template can wire is checked.
    ev = Evaluator(
        template,
        {
            "RedisReplicationGroupId": "orders",
            "RedisEndpointParameterName": "/app/orders/redis",
            "WatchedPrimaryCacheClusterId": "orders-001",
            "WatchedReplicaCacheClusterId": "orders-002",
            "HostedZoneId": "Z0123456789ABCDEFGHIJ",
            "RecordName": "app.example.com",
            "GreenTargetGroupFullName": "targetgroup/app-green/0f3c6a1b2d4e5f67",
            "GreenLoadBalancerFullName": "app/app-prod/50dc6c495c0c9188",
            "ExternalGreenAlarmName": "app-green-health",
        },
    )
    for bad in ev.check_allowed() + ev.rule_failures():
        r.problem(f"all-on case: {bad}")
    wired = 0
    for function, (logical, _) in sorted(functions.items()):
        props = ev.eval(template["Resources"][logical]["Properties"])
        events = load_events(function)
        if not events:
            r.problem(f"{logical}: no sample events in events/{function}/")
            continue
        sns = sns_messages(events)
        for name, trig in (props.get("Events") or {}).items():
            wired += 1
            kind, tprops = trig["Type"], trig.get("Properties", {})
            where = f"{logical} event {name} ({kind})"
            if kind == "SNS":
                if not sns:
                    r.problem(f"{where}: no SNS record sample (Records[].EventSource aws:sns) in events/{function}/")
                topic = tprops["Topic"]
                if topic == "<ElastiCacheNotificationTopic>" and not any(
                    isinstance(m, dict) and any(k.startswith("ElastiCache:") for k in m) for m in sns.values()
                ):
                    r.problem(
                        f"{where}: the ElastiCache notification topic is wired, but no sample SNS message has an "
                        "ElastiCache:* key"
                    )
                # Alarms notifying the same topic deliver CloudWatch alarm notifications through it. The
                # reconciler uses their dimensions, so match namespace, dimension names and period.
                notes = [m for m in sns.values() if isinstance(m, dict) and "AlarmName" in m and "Trigger" in m]
                for alarm in alarm_targets(ev, topic):
                    dims = sorted(d["Name"] for d in alarm.get("Dimensions", []))
                    match = [
                        m
                        for m in notes
                        if m["Trigger"].get("Namespace") == alarm["Namespace"]
                        and sorted(d["name"] for d in m["Trigger"].get("Dimensions", [])) == dims
                        and int(m["Trigger"].get("Period", 0)) == int(alarm["Period"])
                    ]
                    if not match:
                        r.problem(
                            f"{where}: alarm {alarm['_logical']} ({alarm['Namespace']} {dims}, {alarm['Period']} s) "
                            "notifies the topic, but no SNS alarm-notification sample has that namespace, those "
                            "dimensions and that period"
                        )
            elif kind == "Schedule":
                if not any(
                    isinstance(e, dict)
                    and e.get("source") == "aws.events"
                    and e.get("detail-type") == "Scheduled Event"
                    for e in events.values()
                ):
                    r.problem(
                        f"{where}: wired as an EventBridge rule, which delivers source aws.events / detail-type "
                        f'"Scheduled Event"; no such sample in events/{function}/'
                    )
            elif kind in ("CloudWatchEvent", "EventBridgeRule"):
                pattern = tprops.get("Pattern", {})
                sources, types = as_list(pattern.get("source", [])), as_list(pattern.get("detail-type", []))
                if not any(
                    isinstance(e, dict) and e.get("source") in sources and e.get("detail-type") in types
                    for e in events.values()
                ):
                    r.problem(f"{where}: no sample with source in {sources} and detail-type in {types}")
            else:
                r.problem(
                    f"{where}: check_template.py does not know what a {kind} trigger delivers; add a check and a sample"
                )
        # Alarm actions that invoke this function directly deliver the alarm-action payload.
        actions = [
            e
            for n, e in events.items()
            if n.startswith("alarm-action-")
            and isinstance(e, dict)
            and e.get("source") == "aws.cloudwatch"
            and "alarmData" in e
        ]
        for alarm in alarm_targets(ev, f"<{logical}.Arn>"):
            wired += 1
            dims = sorted(d["Name"] for d in alarm.get("Dimensions", []))
            match = [
                a
                for a in actions
                for m in a["alarmData"]["configuration"].get("metrics", [])
                if (s := m.get("metricStat"))
                and s["metric"]["namespace"] == alarm["Namespace"]
                and s["metric"]["name"] == alarm["MetricName"]
                and sorted(s["metric"].get("dimensions", {})) == dims
                and int(s["period"]) == int(alarm["Period"])
                and s["stat"] == alarm["Statistic"]
            ]
            if not match:
                r.problem(
                    f"{logical}: alarm {alarm['_logical']} invokes it directly, but no "
                    f"events/{function}/alarm-action-*.json carries that metric ({alarm['Namespace']} "
                    f"{alarm['MetricName']} {dims}, {alarm['Period']} s {alarm['Statistic']})"
                )
        for perm_logical, res in template["Resources"].items():
            if res["Type"] == "AWS::Lambda::Permission" and ev.active(perm_logical):
                perm = ev.eval(res["Properties"])
                if (
                    perm["FunctionName"] == f"<{logical}.Arn>"
                    and perm["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
                ):
                    wired += 1
                    if not actions:
                        r.problem(
                            f"{perm_logical}: alarms may invoke {logical}, but events/{function}/ has no "
                            "alarm-action-*.json sample"
                        )
                    if perm_logical.startswith("External") and not any(
                        "alarmRule" in a["alarmData"]["configuration"] for a in actions
                    ):
                        r.problem(
                            f"{perm_logical}: an external alarm may be composite, but no composite alarm-action "
                            "sample exists"
                        )
    if not wired:
        r.problem(
            "triggers: no wired trigger was checked (no function found, or none wired to an event source, an alarm "
            "action or a Lambda permission for alarms)"
        )
    r.info(f"triggers: {wired} wired triggers checked against events/")
