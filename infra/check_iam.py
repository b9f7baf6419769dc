"""The IAM checks of infra/check_template.py (part of check 4), and the sample configurations its checks share.

- check_reconciler_iam: ReconcilerRole for sample targets (exact SSM parameter ARNs, the describe resource, no
  wildcard action), KMS only with SecureStringKmsKeyArn (and then every action SSM needs to read and write a
  SecureString of either tier, through SSM only), ReadAuthToken only with RedisAuthTokenParameterName, and the
  ElastiCache notification topic's policy.
- check_rollback_iam: RollbackRole may change only the one pair, with DELETE and CREATE only (never UPSERT), named
  as Route 53 compares it (a wildcard's * as \\052).
- alarms_allowed_to_invoke: the alarms a function's Lambda permissions admit.

`r` is check_template's Report (r.problem(msg)).
"""

from __future__ import annotations

import json
import re

from cfn import PSEUDO, EvalError, Evaluator, as_list, statements

ARN_SSM = "arn:aws:ssm:us-east-1:123456789012:parameter"
ARN_GROUP = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:"
SINGLE = {"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/app/orders/redis"}
AUTH_CASE = {
    **SINGLE,
    "VerifyRole": "true",
    "RedisTls": "true",
    "ReconcilerSubnetIds": "subnet-0123456789abcdef0",
    "ReconcilerSecurityGroupIds": "sg-0123456789abcdef0",
    "RedisAuthTokenParameterName": "/app/orders/redis-auth",
}
ROLLBACK_CASE = {"HostedZoneId": "Z0123456789ABCDEFGHIJ", "RecordName": "app.example.com"}
GREEN_5XX = {
    "GreenTargetGroupFullName": "targetgroup/app-green/0f3c6a1b2d4e5f67",
    "GreenLoadBalancerFullName": "app/app-prod/50dc6c495c0c9188",
}
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
# Granted only when the parameter named is set.
OPTIONAL_GRANTS = {"SecureStringKey": "SecureStringKmsKeyArn", "ReadAuthToken": "RedisAuthTokenParameterName"}


def admitted(r, template: dict, params: dict) -> Evaluator | None:
    """An Evaluator for `params`, which the template must accept; None (and a problem) if it does not."""
    try:
        ev = Evaluator(template, params)
        bad = ev.check_allowed() + ev.rule_failures()
    except EvalError as e:
        bad = [str(e)]
    for b in bad:
        r.problem(f"case {params}: {b}")
    return None if bad else ev


def check_reconciler_iam(r, template: dict) -> None:
    slot_count = None
    cases = [  # parameters, the SSM parameter ARNs, the DescribeReplicationGroups resource
        (SINGLE, {f"{ARN_SSM}/app/orders/redis"}, f"{ARN_GROUP}orders"),
        ({**SINGLE, "RedisEndpointParameterName": "orders.redis"}, {f"{ARN_SSM}/orders.redis"}, f"{ARN_GROUP}orders"),
        (
            {"RedisTargets": "orders=/app/orders/redis,sessions=sessions.redis.endpoint"},
            {f"{ARN_SSM}/app/orders/redis", f"{ARN_SSM}/sessions.redis.endpoint"},
            "*",
        ),
        (
            {"RedisTargets": ",".join(f"g{i}=/app/g{i}/redis" for i in range(10))},
            {f"{ARN_SSM}/app/g{i}/redis" for i in range(10)},
            "*",
        ),
    ]
    for params, want_ssm, want_describe in cases:
        if not (ev := admitted(r, template, params)):
            continue
        st = statements(ev, "ReconcilerRole")
        ssm = as_list(st["ReadWriteEndpointParameters"]["Resource"])
        if sorted(st["ReadWriteEndpointParameters"]["Action"]) != ["ssm:GetParameters", "ssm:PutParameter"]:
            r.problem("ReconcilerRole: ReadWriteEndpointParameters must allow exactly GetParameters and PutParameter")
        if set(ssm) - {f"{ARN_SSM}/"} != want_ssm:  # an unused slot names no parameter
            r.problem(f"ReconcilerRole: SSM resources for {params} are {sorted(set(ssm))}, want {sorted(want_ssm)}")
        if "RedisTargets" in params:
            slot_count = len(ssm)
        if st["DescribeManagedGroups"]["Resource"] != want_describe:
            r.problem(f"ReconcilerRole: DescribeReplicationGroups for {params} is not on {want_describe!r}")
        for sid in sorted(OPTIONAL_GRANTS.keys() & st.keys()):
            r.problem(f"ReconcilerRole: grants {sid} although {OPTIONAL_GRANTS[sid]} is empty")
        text = json.dumps(st)
        if '"*"' in text.replace('"Resource": "*"', "") or re.search(r'"[a-z0-9]+:\*"', text):
            r.problem(f"ReconcilerRole: wildcard action in {text}")
    if slot_count:  # RedisTargets must not allow more entries than the policy has slots
        pattern = template["Parameters"]["RedisTargets"]["AllowedPattern"]
        entries = [f"g{i}=/p{i}" for i in range(slot_count + 1)]
        if re.fullmatch(pattern, ",".join(entries)) or not re.fullmatch(pattern, ",".join(entries[:-1])):
            r.problem(f"RedisTargets' AllowedPattern must admit at most {slot_count} targets, the SSM policy's slots")
    # KMS only when asked for, and only through SSM: Decrypt to read, Encrypt to write a standard-tier SecureString,
    # GenerateDataKey to write an advanced-tier one (SSM envelope-encrypts those).
    if ev := admitted(r, template, {**SINGLE, "SecureStringKmsKeyArn": KMS_KEY}):
        kms = statements(ev, "ReconcilerRole").get("SecureStringKey") or {}
        want = {
            "Effect": "Allow",
            "Action": KMS_ACTIONS,
            "Resource": KMS_KEY,
            "Condition": {"StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}},
        }
        if {k: sorted(v) if k == "Action" else v for k, v in kms.items() if k != "Sid"} != want:
            r.problem(
                f"ReconcilerRole: with SecureStringKmsKeyArn set, SecureStringKey must allow exactly {KMS_ACTIONS} "
                f"on the key, via SSM only (kms:ViaService); got {kms}"
            )
    # The AUTH token: GetParameter on exactly its parameter, named with or without a leading "/".
    for name in ["/app/orders/redis-auth", "redis-auth"]:
        arn = f"{ARN_SSM}/{name.lstrip('/')}"
        if ev := admitted(r, template, {**AUTH_CASE, "RedisAuthTokenParameterName": name}):
            st = statements(ev, "ReconcilerRole").get("ReadAuthToken") or {}
            if (st.get("Effect"), as_list(st.get("Action")), st.get("Resource")) != (
                "Allow",
                ["ssm:GetParameter"],
                arn,
            ):
                r.problem(f"ReconcilerRole: ReadAuthToken for {name!r} must allow ssm:GetParameter on {arn}, got {st}")
    # The ElastiCache notification topic: unencrypted, SourceOwner (not SourceAccount) for ElastiCache.
    res = template["Resources"]
    if "KmsMasterKeyId" in res["ElastiCacheNotificationTopic"]["Properties"]:
        r.problem("ElastiCacheNotificationTopic: must not be encrypted (ElastiCache cannot publish to it)")
    policy = Evaluator(template, SINGLE).eval(res["ElastiCacheNotificationTopicPolicy"]["Properties"]["PolicyDocument"])
    ec = [s for s in policy["Statement"] if s.get("Sid") == "AllowElastiCachePublish"]
    if not ec or "AWS:SourceOwner" not in json.dumps(ec[0]) or "SourceAccount" in json.dumps(ec[0]):
        r.problem("ElastiCacheNotificationTopicPolicy: ElastiCache's statement must use AWS:SourceOwner only")


def check_rollback_iam(r, template: dict) -> None:
    # The record name as Route 53's condition key compares it: lower case, no trailing dot, * as \052.
    for name, normalized in [("app.example.com", "app.example.com"), ("*.app.example.com", "\\052.app.example.com")]:
        params = {**ROLLBACK_CASE, **GREEN_5XX, "HostedZoneId": "/hostedzone/Z0123456789ABCDEFGHIJ", "RecordName": name}
        if ev := admitted(r, template, params):
            check_rollback_role(r, statements(ev, "RollbackRole"), name, normalized)
    # The record name in the IAM condition is compared normalized: lower case, no trailing dot.
    for bad in ["App.example.com", "app.example.com."]:
        if re.fullmatch(template["Parameters"]["RecordName"]["AllowedPattern"], bad):
            r.problem(f"RecordName's AllowedPattern admits {bad!r}, which the IAM condition would never match")


def check_rollback_role(r, st: dict[str, dict], name: str, normalized: str) -> None:
    zone = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
    if st.get("ReadThePair", {}).get("Resource") != zone:
        r.problem(f"RollbackRole: ListResourceRecordSets must be on {zone}")
    grants_change = {"route53:ChangeResourceRecordSets", "route53:*", "*"}
    changers = sorted(sid for sid, x in st.items() if grants_change & {*as_list(x.get("Action"))})
    if changers != ["ChangeOnlyThePair"]:
        r.problem(f"RollbackRole: ChangeResourceRecordSets must be granted by ChangeOnlyThePair alone, not {changers}")
    change = st.get("ChangeOnlyThePair", {})
    cond = change.get("Condition", {}).get("ForAllValues:StringEquals", {})
    actions = as_list(cond.get("route53:ChangeResourceRecordSetsActions", []))
    if change.get("Action") != "route53:ChangeResourceRecordSets" or change.get("Resource") != zone:
        r.problem(f"RollbackRole: ChangeResourceRecordSets must be on {zone} only")
    if "UPSERT" in actions or sorted(actions) != ["CREATE", "DELETE"] or len(change.get("Condition", {})) != 1:
        r.problem(f"RollbackRole: ChangeOnlyThePair must allow exactly DELETE and CREATE (never UPSERT), got {actions}")
    names = cond.get("route53:ChangeResourceRecordSetsNormalizedRecordNames")
    if names != [normalized] or cond.get("route53:ChangeResourceRecordSetsRecordTypes") != ["A"]:
        r.problem(
            f"RollbackRole: for RecordName {name!r}, ChangeOnlyThePair needs ForAllValues:StringEquals on the type and "
            f"the normalized name [{normalized!r}], got {cond}"
        )
    if st.get("WaitForInsync", {}).get("Resource") != "arn:aws:route53:::change/*":
        r.problem("RollbackRole: GetChange must be on arn:aws:route53:::change/*")


def alarms_allowed_to_invoke(r, ev: Evaluator, function: str) -> set[str]:
    """Names of the alarms whose Lambda permissions let them invoke `function` (one alarm each, this account)."""
    names = set()
    for logical, res in ev.template["Resources"].items():
        if res["Type"] != "AWS::Lambda::Permission" or not ev.active(logical):
            continue
        perm = ev.eval(res["Properties"])
        if perm["FunctionName"] != f"<{function}.Arn>" or perm["Principal"] != "lambda.alarms.cloudwatch.amazonaws.com":
            continue
        arn = perm.get("SourceArn", "")
        if perm.get("SourceAccount") != PSEUDO["AWS::AccountId"] or not arn:
            r.problem(f"{logical}: needs SourceAccount and the alarm's SourceArn")
        elif m := re.fullmatch(r"<(\w+)\.Arn>", arn):
            names.add(ev.eval(ev.template["Resources"][m.group(1)]["Properties"]["AlarmName"]))
        elif arn.startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:") and not re.search(r"[*?]", arn):
            names.add(arn.rsplit(":alarm:", 1)[1])
        else:
            r.problem(f"{logical}: SourceArn {arn} is not one alarm (wildcards match many)")
    return names
