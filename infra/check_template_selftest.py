"""`check_template.py --self-test`: shows that the checks catch what they claim.

Each mutation breaks the loaded template (or infra/functions.json) in memory, the way an edit could, and names
what the report must then say: phrases, each a piece of the failing check's own message (several words, matched
literally), each of which must appear in one reported problem. A check that raises instead of reporting (a
KeyError, say) is an error, never a catch: any error fails the self-test. The unmutated template must report no
problem and raise no error.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from cfn import self_test_report

Mutation = tuple[str, Callable[[dict, dict], object], list[str]]


def _env(t: dict, logical: str) -> dict:
    return t["Resources"][logical]["Properties"]["Environment"]["Variables"]


def _param(t: dict, name: str) -> dict:
    return t["Parameters"][name]


def _props(t: dict, logical: str) -> dict:
    return t["Resources"][logical]["Properties"]


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


def _checkov_skip(t: dict, logical: str, check: str) -> dict:
    return next(s for s in t["Resources"][logical]["Metadata"]["checkov"]["skip"] if s["id"] == check)


def _own_namespace(t: dict, logical: str) -> None:
    """`logical` reads its namespace from a parameter of its own."""
    t["Parameters"]["RollbackMetricsNamespace"] = copy.deepcopy(t["Parameters"]["MetricsNamespace"])
    _env(t, logical)["METRICS_NAMESPACE"] = {"Ref": "RollbackMetricsNamespace"}


def _plain_lambda_functions(t: dict) -> None:
    """Both functions as AWS::Lambda::Function: nothing is an AWS::Serverless::Function any more."""
    for logical in (RB, RC):
        t["Resources"][logical]["Type"] = "AWS::Lambda::Function"


def _rename_metric(m: dict, function: str, old: str, new: str) -> None:
    names = m["functions"][function]["metrics"]["names"]
    names[names.index(old)] = new


def _drop_dashboard_metric(t: dict, name: str) -> None:
    body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    lines = body[0].splitlines(keepends=True)
    body[0] = "".join(line for line in lines if f'"{name}"' not in line)


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
NS_PATTERN_BEFORE_ISSUE_18 = "^(?!AWS/)[A-Za-z0-9.\\-_/#: ]{1,255}$"  # admitted a leading ":"
CHANGE_CONDITION = ("Condition", "ForAllValues:StringEquals")

MUTATIONS: list[Mutation] = [
    # 1. Functions
    (
        "plain-text logs",
        lambda t, m: _props(t, RC)["LoggingConfig"].update(LogFormat="Text"),
        [f"{RC}: LoggingConfig needs LogFormat JSON"],
    ),
    (
        "no on-failure destination",
        lambda t, m: _props(t, RB)["EventInvokeConfig"].pop("DestinationConfig"),
        [f"{RB}: needs EventInvokeConfig.DestinationConfig.OnFailure of Type SQS"],
    ),
    (
        "built for x86_64",
        lambda t, m: _props(t, RB).update(Architectures=["x86_64"]),
        [f"{RB}: Architectures is ['x86_64'], want ['arm64']"],
    ),
    (
        "the functions as plain AWS::Lambda::Function (no check sees them)",
        lambda t, m: _plain_lambda_functions(t),
        [
            "the template has no AWS::Serverless::Function with CodeUri ../crates/redis-reconciler",
            "triggers: no wired trigger was checked",
            "metrics: no function to check",
        ],
    ),
    # 2. Environment against infra/functions.json
    (
        "drop a variable the code reads",
        lambda t, m: _env(t, RB).pop("BLUE_WEIGHT"),
        ["bluegreen-rollback reads BLUE_WEIGHT (infra/functions.json) but the template does not set it"],
    ),
    (
        "set a variable the code never reads",
        lambda t, m: _env(t, RC).update(REDIS_PORT="6379"),
        ["the template sets REDIS_PORT, which redis-reconciler never reads"],
    ),
    (
        "set REDIS_AUTH_TOKEN (not_in_template)",
        lambda t, m: _env(t, RC).update(REDIS_AUTH_TOKEN={"Ref": "RedisAuthTokenParameterName"}),
        ["the template sets REDIS_AUTH_TOKEN, which must never be set by the template"],
    ),
    (
        "set a runtime-reserved name",
        lambda t, m: _env(t, RB).update(AWS_REGION="eu-west-1"),
        ["sets AWS_REGION, a name reserved for the Lambda runtime"],
    ),
    (
        "the code declares a new variable",
        lambda t, m: _reconciler(m)["variables"].append({"name": "NEW_SETTING", "default": None}),
        ["redis-reconciler reads NEW_SETTING (infra/functions.json) but the template does not set it"],
    ),
    (
        "a parameter default differs from the code's",
        lambda t, m: _param(t, "BlueWeight").update(Default=50),
        ["BlueWeight: Default '50' feeds BLUE_WEIGHT, whose default in bluegreen-rollback is '100'"],
    ),
    (
        "a default for a variable without one",
        lambda t, m: _param(t, "RecordName").update(Default="x.example"),
        ["RecordName: Default 'x.example' feeds RECORD_NAME, want"],
    ),
    (
        "SettleTimeoutSecs 50, timeout not raised",
        lambda t, m: _param(t, "SettleTimeoutSecs").update(Default=50),
        [
            "SettleTimeoutSecs: Default '50' feeds SETTLE_TIMEOUT_SECS",
            "Timeout ReconcilerTimeoutSecs default 120 < SettleTimeoutSecs default 50 + reserve 75",
        ],
    ),
    # 3. Timeouts
    (
        "ReconcilerTimeoutSecs below wait + reserve",
        lambda t, m: _param(t, "ReconcilerTimeoutSecs").update(Default=104),
        ["Timeout ReconcilerTimeoutSecs default 104 < SettleTimeoutSecs default 30 + reserve 75"],
    ),
    (
        "a larger reserve in the code",
        lambda t, m: _reconciler(m)["timeout"].update(reserve_secs=91),
        ["default 120 < SettleTimeoutSecs default 30 + reserve 91"],
    ),
    (
        "MinValue below the reserve",
        lambda t, m: _param(t, "RollbackTimeoutSecs").update(MinValue=30),
        ["RollbackTimeoutSecs: MinValue 30 < 31, bluegreen-rollback's reserve"],
    ),
    (
        "the timeout's description quotes a wrong reserve",
        lambda t, m: _param(t, "RollbackTimeoutSecs").update(Description="At least SyncTimeoutSecs + 30."),
        ["RollbackTimeoutSecs: Description quotes + 30, but bluegreen-rollback's reserve is 31 s"],
    ),
    (
        "the wait's description quotes a wrong reserve",
        lambda t, m: _param(t, "SettleTimeoutSecs").update(Description="Keep ReconcilerTimeoutSecs >= this + 25."),
        ["SettleTimeoutSecs: Description quotes + 25, but redis-reconciler's reserve is 75 s"],
    ),
    # 4. IAM
    (
        "UPSERT back in the rollback's actions",
        lambda t, m: _sid(t, "RollbackRole", "ChangeOnlyThePair")["Condition"]["ForAllValues:StringEquals"][
            "route53:ChangeResourceRecordSetsActions"
        ].append("UPSERT"),
        ["ChangeOnlyThePair must allow exactly DELETE and CREATE (never UPSERT)"],
    ),
    (
        "the record name in the condition as written, not normalized (issue 18, item 15)",
        lambda t, m: _sid(t, "RollbackRole", "ChangeOnlyThePair")["Condition"]["ForAllValues:StringEquals"].update(
            {"route53:ChangeResourceRecordSetsNormalizedRecordNames": [{"Ref": "RecordName"}]}
        ),
        ["for RecordName '*.app.example.com', ChangeOnlyThePair needs ForAllValues:StringEquals on the type and the"],
    ),
    (
        "RecordName refuses a wildcard name",
        lambda t, m: _param(t, "RecordName").update(AllowedPattern="^$|^[a-z0-9_-]+(\\.[a-z0-9_-]+)*$"),
        ["RecordName='*.app.example.com' does not match AllowedPattern"],
    ),
    (
        "no kms:GenerateDataKey: advanced-tier SecureStrings cannot be written (issue 18, item 11)",
        lambda t, m: _sid(t, "ReconcilerRole", "SecureStringKey")["Action"].remove("kms:GenerateDataKey"),
        ["with SecureStringKmsKeyArn set, SecureStringKey must allow exactly"],
    ),
    (
        "the KMS grant without kms:ViaService",
        lambda t, m: _sid(t, "ReconcilerRole", "SecureStringKey").pop("Condition"),
        ["on the key, via SSM only (kms:ViaService)"],
    ),
    (
        "the AUTH token readable when not configured",
        lambda t, m: _unconditional(t, "ReconcilerRole", "ReadAuthToken"),
        ["ReconcilerRole: grants ReadAuthToken although RedisAuthTokenParameterName is empty"],
    ),
    (
        "the AUTH token grant on every parameter",
        lambda t, m: _sid(t, "ReconcilerRole", "ReadAuthToken").update(Resource={"Fn::Sub": "arn:aws:ssm:*"}),
        ["ReconcilerRole: ReadAuthToken for '/app/orders/redis-auth' must allow ssm:GetParameter on"],
    ),
    # 4. Rules and ALARM_NAMES
    (
        "ALARM_NAMES joined as before (empty entries)",
        lambda t, m: _env(t, RB).update(ALARM_NAMES=copy.deepcopy(OLD_ALARM_NAMES)),
        [f"{RB}: ALARM_NAMES is ',app-green-health' (empty, or an empty entry)"],
    ),
    (
        "no rule that an alarm may roll back",
        lambda t, m: t["Rules"].pop("RollbackAlarm"),
        [
            f"{RB}: ALARM_NAMES is '' (empty, or an empty entry)",
            "Rules accept {'HostedZoneId': 'Z0123456789ABCDEFGHIJ', 'RecordName': 'app.example.com'}, "
            "which cannot work",
        ],
    ),
    (
        "ExternalGreenAlarmName may be blank or list several",
        lambda t, m: _param(t, "ExternalGreenAlarmName").update(AllowedPattern="^$|^[^,]{1,255}$"),
        [f"{RB}: ALARM_NAMES is ' ' (empty, or an empty entry)", "has an entry with surrounding spaces"],
    ),
    (
        "an AUTH token without TLS",
        lambda t, m: t["Rules"].pop("ReconcilerAuthToken"),
        [
            "Rules accept {'RedisReplicationGroupId': 'orders', 'RedisEndpointParameterName': '/app/orders/redis', "
            "'VerifyRole': 'true', 'RedisTls': 'false'"
        ],
    ),
    # 4. Resources: concurrency, dead-letter queues, logs, checkov skips, alarm limits
    (
        "reserved concurrency 1 removed from the rollback",
        lambda t, m: _props(t, RB).pop("ReservedConcurrentExecutions"),
        [f"{RB}: ReservedConcurrentExecutions must be 1"],
    ),
    (
        "reserved concurrency on the reconciler",
        lambda t, m: _props(t, RC).update(ReservedConcurrentExecutions=1),
        [f"{RC}: no ReservedConcurrentExecutions"],
    ),
    (
        "an unencrypted dead-letter queue",
        lambda t, m: _props(t, "RollbackDeadLetterQueue").update(SqsManagedSseEnabled=False),
        ["RollbackDeadLetterQueue: dead-letter queue must be encrypted"],
    ),
    (
        "a log group kept forever",
        lambda t, m: _props(t, "ReconcilerLogGroup").pop("RetentionInDays"),
        ["ReconcilerLogGroup: log group needs RetentionInDays"],
    ),
    (
        "a checkov skip without its reason",
        lambda t, m: _checkov_skip(t, RB, "CKV_AWS_117").update(comment="not needed"),
        [f"{RB}: checkov skip CKV_AWS_117 needs a comment that justifies it"],
    ),
    (
        "evaluation periods unbounded (issue 18, item 12)",
        lambda t, m: _param(t, "Green5xxEvaluationPeriods").pop("MaxValue"),
        ["Green5xxAlarm: EvaluationPeriods comes from Green5xxEvaluationPeriods, which has no MaxValue"],
    ),
    (
        "evaluation periods beyond a day",
        lambda t, m: _param(t, "Green5xxEvaluationPeriods").update(MaxValue=1441),
        ["Green5xxAlarm: up to 1441 evaluation periods of 60 s exceed CloudWatch's 86400 s"],
    ),
    (
        "datapoints bounded above the periods",
        lambda t, m: _param(t, "Green5xxDatapointsToAlarm").update(MaxValue=2000),
        ["Green5xxAlarm: DatapointsToAlarm can be 2000, above EvaluationPeriods' 1440"],
    ),
    (
        "the datapoints parameter silent on M <= N",
        lambda t, m: _param(t, "Green5xxDatapointsToAlarm").update(Description="M of M out of N."),
        ['Green5xxDatapointsToAlarm: Description must say "At most Green5xxEvaluationPeriods"'],
    ),
    (
        "a literal DatapointsToAlarm above EvaluationPeriods",
        lambda t, m: _props(t, "ReplicaLagAlarm").update(DatapointsToAlarm=4),
        ["ReplicaLagAlarm: DatapointsToAlarm can be 4, above EvaluationPeriods' 3"],
    ),
    # 5. Triggers against the sample events
    (
        "an alarm on the topic with no matching notification sample",
        lambda t, m: _props(t, "ReplicaLagAlarm").update(Period=300),
        ["alarm ReplicaLagAlarm (AWS/ElastiCache ['CacheClusterId'], 300 s) notifies the topic, but no SNS"],
    ),
    (
        "an alarm action whose metric no sample carries",
        lambda t, m: _props(t, "Green5xxAlarm").update(Statistic="Average"),
        ["alarm Green5xxAlarm invokes it directly, but no events/bluegreen-rollback/alarm-action-*.json carries"],
    ),
    (
        "a trigger kind the check does not know",
        lambda t, m: _props(t, RC)["Events"].update(Queue={"Type": "SQS", "Properties": {"Queue": "arn:q"}}),
        [f"{RC} event Queue (SQS): check_template.py does not know what a SQS trigger delivers"],
    ),
    (
        "an EventBridge rule without a sample",
        lambda t, m: _props(t, RC)["Events"].update(
            Changes={
                "Type": "EventBridgeRule",
                "Properties": {"Pattern": {"source": ["aws.elasticache"], "detail-type": ["ElastiCache Event"]}},
            }
        ),
        [f"{RC} event Changes (EventBridgeRule): no sample with source in ['aws.elasticache']"],
    ),
    # 6. Metrics: the names the code emits (functions.json) against the alarms and the dashboard
    (
        "an alarm on a metric the reconciler does not emit",
        lambda t, m: _props(t, "ReconcileFailedAlarm").update(MetricName="FailedTargets"),
        ["ReconcileFailedAlarm: redis-reconciler emits no metric 'FailedTargets'"],
    ),
    (
        "the code renames a metric the dashboard and an alarm use",
        lambda t, m: _rename_metric(m, "bluegreen-rollback", "Failed", "Failures"),
        [
            "RollbackFailedAlarm: bluegreen-rollback emits no metric 'Failed'",
            "dashboard: bluegreen-rollback emits no metric 'Failed'",
            "dashboard: bluegreen-rollback's metric Failures is not shown",
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
        ["dashboard: redis-reconciler's metric PublishLatency is not shown"],
    ),
    (
        "the namespace hard-coded in one function",
        lambda t, m: _env(t, RB).update(METRICS_NAMESPACE="Failover"),
        [f"{RB}: METRICS_NAMESPACE must come from a parameter"],
    ),
    (
        "the functions' namespaces from two parameters",
        lambda t, m: _own_namespace(t, RB),
        ["metrics: the functions take their namespace from different parameters"],
    ),
    (
        "a namespace starting with ':' admitted (issue 18, item 13)",
        lambda t, m: _param(t, "MetricsNamespace").update(AllowedPattern=NS_PATTERN_BEFORE_ISSUE_18),
        ["MetricsNamespace: AllowedPattern admits ':Failover', a namespace CloudWatch rejects"],
    ),
    # 7. Runbook
    (
        "an alarm the runbook does not cover",
        lambda t, m: _props(t, "RollbackFailedAlarm").update(
            AlarmName={"Fn::Sub": "${AWS::StackName}-bluegreen-rollback-broken"}
        ),
        ["docs/operations.md has no section ### `<stack>-bluegreen-rollback-broken`"],
    ),
]


def self_test(template: dict, manifest: dict, run_checks: Callable[..., object]) -> int:
    """`run_checks(template, manifest, quiet=True)` returns check_template's Report (.problems, .errors)."""
    start, failed = time.monotonic(), []
    clean = run_checks(copy.deepcopy(template), copy.deepcopy(manifest), quiet=True)
    if clean.problems or clean.errors:
        failed.append(f"the unmutated template reports {clean.problems} and errors {clean.errors}")
    for name, mutate, expected in MUTATIONS:
        vague = [x for x in expected if len(x.split()) < 3]
        if vague:
            failed.append(f"mutation {name!r}: expect a phrase of the check's message, not {vague}")
        t, m = copy.deepcopy(template), copy.deepcopy(manifest)
        mutate(t, m)
        report = run_checks(t, m, quiet=True)
        if report.errors:
            failed.append(f"mutation {name!r}: a check raised instead of reporting: {report.errors}")
        missing = [x for x in expected if not any(x in p for p in report.problems)]
        if missing:
            failed.append(f"mutation {name!r}: no problem says {missing}; reported {report.problems}")
    return self_test_report("check_template", failed, len(MUTATIONS), start)
