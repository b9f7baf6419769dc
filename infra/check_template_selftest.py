"""`check_template.py --self-test`: shows that the checks catch what they claim.

Each mutation breaks the loaded template (or infra/functions.json) in memory, the way an edit could, and
names what the report must then mention: a list of regular expressions, each of which must match at least
one problem (as whole words). The unmutated template must report no problem at all.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable

Mutation = tuple[str, Callable[[dict, dict], object], list[str]]


def _env(t: dict, logical: str) -> dict:
    return t["Resources"][logical]["Properties"]["Environment"]["Variables"]


def _param(t: dict, name: str) -> dict:
    return t["Parameters"][name]


def _statements(t: dict, role: str) -> list:
    return t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def _sid(t: dict, role: str, sid: str) -> dict:
    """The statement `sid` of `role`, also when it is the true branch of an Fn::If."""
    for st in _statements(t, role):
        st = st["Fn::If"][1] if "Fn::If" in st else st
        if st.get("Sid") == sid:
            return st
    raise KeyError(sid)


def _unconditional(t: dict, role: str, sid: str) -> None:
    sts = _statements(t, role)
    i = next(i for i, st in enumerate(sts) if "Fn::If" in st and st["Fn::If"][1].get("Sid") == sid)
    sts[i] = sts[i]["Fn::If"][1]


def _reconciler(m: dict) -> dict:
    return m["functions"]["redis-reconciler"]


RB, RC = "BluegreenRollbackFunction", "RedisReconcilerFunction"
OLD_ALARM_NAMES = {
    "Fn::Join": [
        ",",
        [
            {"Fn::If": ["CreateGreen5xxAlarm", {"Fn::Sub": "${AWS::StackName}-green-5xx"}, ""]},
            {"Ref": "ExternalGreenAlarmName"},
        ],
    ]
}

MUTATIONS: list[Mutation] = [
    # Environment against infra/functions.json
    ("drop a variable the code reads", lambda t, m: _env(t, RB).pop("BLUE_WEIGHT"), ["BLUE_WEIGHT"]),
    ("set a variable the code never reads", lambda t, m: _env(t, RC).update(REDIS_PORT="6379"), ["REDIS_PORT"]),
    (
        "set REDIS_AUTH_TOKEN (not_in_template)",
        lambda t, m: _env(t, RC).update(REDIS_AUTH_TOKEN={"Ref": "RedisAuthTokenParameterName"}),
        [r"REDIS_AUTH_TOKEN, which must never"],
    ),
    ("set a runtime-reserved name", lambda t, m: _env(t, RB).update(AWS_REGION="eu-west-1"), ["AWS_REGION, a name"]),
    (
        "the code declares a new variable",
        lambda t, m: _reconciler(m)["variables"].append({"name": "NEW_SETTING", "default": None}),
        ["NEW_SETTING"],
    ),
    (
        "a parameter default differs from the code's",
        lambda t, m: _param(t, "BlueWeight").update(Default=50),
        ["BlueWeight"],
    ),
    (
        "a default for a variable without one",
        lambda t, m: _param(t, "RecordName").update(Default="x.example"),
        ["RecordName"],
    ),
    (
        "SettleTimeoutSecs 45, timeout not raised",
        lambda t, m: _param(t, "SettleTimeoutSecs").update(Default=45),
        [r"SettleTimeoutSecs: Default '45'", r"ReconcilerTimeoutSecs default 90 < SettleTimeoutSecs default 45"],
    ),
    # Timeouts
    (
        "ReconcilerTimeoutSecs below wait + reserve",
        lambda t, m: _param(t, "ReconcilerTimeoutSecs").update(Default=84),
        [r"ReconcilerTimeoutSecs default 84 <"],
    ),
    ("a larger reserve in the code", lambda t, m: _reconciler(m)["timeout"].update(reserve_secs=61), ["reserve 61"]),
    (
        "MinValue below the reserve",
        lambda t, m: _param(t, "RollbackTimeoutSecs").update(MinValue=30),
        ["RollbackTimeoutSecs: MinValue"],
    ),
    (
        "the timeout's description quotes a wrong reserve",
        lambda t, m: _param(t, "RollbackTimeoutSecs").update(Description="At least SyncTimeoutSecs + 30."),
        [r"RollbackTimeoutSecs: Description quotes \+ 30"],
    ),
    (
        "the wait's description quotes a wrong reserve",
        lambda t, m: _param(t, "SettleTimeoutSecs").update(Description="Keep ReconcilerTimeoutSecs >= this + 25."),
        [r"SettleTimeoutSecs: Description quotes \+ 25"],
    ),
    # IAM
    (
        "UPSERT back in the rollback's actions",
        lambda t, m: _sid(t, "RollbackRole", "ChangeOnlyThePair")["Condition"]["ForAllValues:StringEquals"][
            "route53:ChangeResourceRecordSetsActions"
        ].append("UPSERT"),
        ["UPSERT"],
    ),
    (
        "the AUTH token readable when not configured",
        lambda t, m: _unconditional(t, "ReconcilerRole", "ReadAuthToken"),
        ["ReadAuthToken although"],
    ),
    (
        "the AUTH token grant on every parameter",
        lambda t, m: _sid(t, "ReconcilerRole", "ReadAuthToken").update(Resource={"Fn::Sub": "arn:aws:ssm:*"}),
        ["ReadAuthToken for"],
    ),
    # Rules and ALARM_NAMES
    (
        "ALARM_NAMES joined as before (empty entries)",
        lambda t, m: _env(t, RB).update(ALARM_NAMES=copy.deepcopy(OLD_ALARM_NAMES)),
        [r"ALARM_NAMES is '[^']*' \(empty, or an empty entry\)"],
    ),
    (
        "no rule that an alarm may roll back",
        lambda t, m: t["Rules"].pop("RollbackAlarm"),
        [r"ALARM_NAMES is '' \(empty", "Rules accept"],
    ),
    (
        "ExternalGreenAlarmName may be blank or list several",
        lambda t, m: _param(t, "ExternalGreenAlarmName").update(AllowedPattern="^$|^[^,]{1,255}$"),
        [r"ALARM_NAMES is ' '", "surrounding spaces"],
    ),
    ("an AUTH token without TLS", lambda t, m: t["Rules"].pop("ReconcilerAuthToken"), ["Rules accept"]),
    # Concurrency
    (
        "reserved concurrency 1 removed from the rollback",
        lambda t, m: t["Resources"][RB]["Properties"].pop("ReservedConcurrentExecutions"),
        [f"{RB}: ReservedConcurrentExecutions"],
    ),
    (
        "reserved concurrency on the reconciler",
        lambda t, m: t["Resources"][RC]["Properties"].update(ReservedConcurrentExecutions=1),
        [f"{RC}: no ReservedConcurrentExecutions"],
    ),
    # Metrics: the names the code emits (functions.json) against the alarms and the dashboard
    (
        "an alarm on a metric the reconciler does not emit",
        lambda t, m: t["Resources"]["ReconcileFailedAlarm"]["Properties"].update(MetricName="FailedTargets"),
        ["ReconcileFailedAlarm: redis-reconciler emits no metric 'FailedTargets'"],
    ),
    (
        "the code renames a metric the dashboard and an alarm use",
        lambda t, m: _rename_metric(m, "bluegreen-rollback", "Failed", "Failures"),
        [
            "RollbackFailedAlarm: bluegreen-rollback emits no metric 'Failed'",
            "dashboard: bluegreen-rollback emits no metric 'Failed'",
            "Failures is not shown",
        ],
    ),
    (
        "no alarm on the rollback's metrics",
        lambda t, m: t["Resources"].pop("RollbackFailedAlarm"),
        ["no alarm watches a metric bluegreen-rollback emits"],
    ),
    (
        "the dashboard drops publish latency",
        lambda t, m: _drop_dashboard_metric(t, "PublishLatency"),
        ["redis-reconciler's metric PublishLatency is not shown"],
    ),
    (
        "the namespace hard-coded in one function",
        lambda t, m: _env(t, RB).update(METRICS_NAMESPACE="Failover"),
        ["METRICS_NAMESPACE must come from a parameter"],
    ),
    # Runbook
    (
        "an alarm the runbook does not cover",
        lambda t, m: t["Resources"]["RollbackFailedAlarm"]["Properties"].update(
            AlarmName={"Fn::Sub": "${AWS::StackName}-bluegreen-rollback-broken"}
        ),
        ["docs/operations.md has no section ### `<stack>-bluegreen-rollback-broken`"],
    ),
]


def _rename_metric(m: dict, function: str, old: str, new: str) -> None:
    names = m["functions"][function]["metrics"]["names"]
    names[names.index(old)] = new


def _drop_dashboard_metric(t: dict, name: str) -> None:
    body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    lines = body[0].splitlines(keepends=True)
    body[0] = "".join(line for line in lines if f'"{name}"' not in line)


def self_test(template: dict, manifest: dict, run_checks: Callable[..., list[str]]) -> int:
    start, failed = time.monotonic(), []
    clean = run_checks(copy.deepcopy(template), copy.deepcopy(manifest), quiet=True)
    if clean:
        failed.append(f"the unmutated template reports problems: {clean}")
    for name, mutate, expected in MUTATIONS:
        t, m = copy.deepcopy(template), copy.deepcopy(manifest)
        mutate(t, m)
        problems = run_checks(t, m, quiet=True)
        missing = [x for x in expected if not any(re.search(rf"(?<!\w){x}(?!\w)", p) for p in problems)]
        if missing:
            failed.append(f"mutation {name!r}: no problem matches {missing}; reported {problems}")
    for f in failed:
        print(f"check_template self-test: {f}")
    if failed:
        return 1
    print(f"check_template self-test: {len(MUTATIONS)} mutations caught ({time.monotonic() - start:.1f} s)")
    return 0
