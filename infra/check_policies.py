#!/usr/bin/env python3
"""IAM policy lint of infra/template.yaml with parliament, offline (`make lint-infra`).

Every policy document in the template (any mapping with a `Statement` under a resource's Properties: the roles'
inline policies, the ElastiCache topic's policy, and any added later) is evaluated for CASES, sample configurations
that between them create every resource and every conditional statement (cfn.Evaluator, as check_iam.py does).
Each "<Logical>" / "<Logical.Attr>" placeholder the evaluator leaves for a resource becomes an ARN of that
resource's type (SAMPLE_ARNS). parliament 1.6.4, with its community auditors, then checks each action, resource
ARN format and condition key against its offline copy of AWS's Service Authorization Reference.

Any finding fails, unless ALLOWED explains it; an ALLOWED entry that matches nothing fails too (it would hide a
future finding for no reason). A policy document or statement (Sid) that no case evaluates fails, and so does a
placeholder without a sample ARN. Role trust policies are not linted: parliament requires a Resource element,
which a trust policy never has, and stops there. What parliament cannot see is in infra/README.md.

`check_policies.py --self-test` applies mutations to the template in memory and fails unless each is reported.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import parliament
from cfn import EvalError, Evaluator, load_template, self_test_report
from check_iam import AUTH_CASE, GREEN_5XX, KMS_KEY, ROLLBACK_CASE
from parliament import analyze_policy_string, enhance_finding, override_config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
PARLIAMENT_VERSION = "1.6.4"  # infra/requirements.txt; its reference data is part of the package

# Sample configurations; between them every policy document and every statement of the template is evaluated.
CASES: dict[str, dict[str, str]] = {
    "one target, KMS key, AUTH token, wildcard pair, both green alarms": {
        **AUTH_CASE,
        "SecureStringKmsKeyArn": KMS_KEY,
        **ROLLBACK_CASE,
        "RecordName": "*.app.example.com",
        **GREEN_5XX,
        "ExternalGreenAlarmName": "app-green-health",
    },
    "RedisTargets, existing topic": {
        "RedisTargets": "orders=/app/orders/redis,sessions=sessions.redis",
        "ExistingNotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:elasticache-events",
    },
}

# ARNs for the evaluator's placeholders, by resource type and attribute (None: Ref); {logical} is the logical id.
ACCOUNT = "us-east-1:123456789012"
SAMPLE_ARNS: dict[tuple[str, str | None], str] = {
    ("AWS::Logs::LogGroup", "Arn"): f"arn:aws:logs:{ACCOUNT}:log-group:/aws/lambda/failover-{{logical}}:*",
    ("AWS::SQS::Queue", "Arn"): f"arn:aws:sqs:{ACCOUNT}:failover-{{logical}}",
    ("AWS::SNS::Topic", None): f"arn:aws:sns:{ACCOUNT}:failover-{{logical}}",
    ("AWS::Serverless::Function", "Arn"): f"arn:aws:lambda:{ACCOUNT}:function:failover-{{logical}}",
    ("AWS::CloudWatch::Alarm", "Arn"): f"arn:aws:cloudwatch:{ACCOUNT}:alarm:failover-{{logical}}",
}
TRUST_POLICY = "AssumeRolePolicyDocument"


@dataclass(frozen=True)
class Allowed:
    """A parliament finding that is not a defect: `issue` and a piece of its `detail`, where, and why."""

    issue: str
    detail: str
    where: str
    reason: str


ALLOWED = [
    Allowed(
        issue="UNKNOWN_CONDITION_FOR_ACTION",
        detail="Unknown condition AWS:SourceOwner for action sns:Publish",
        where="ElastiCacheNotificationTopicPolicy.PolicyDocument",
        reason=(
            "ElastiCache publishes only to a topic whose policy allows it under aws:SourceOwner (ElastiCache User "
            'Guide, "Managing ElastiCache Amazon SNS notifications"; it does not support aws:SourceAccount). The key '
            "is one SNS evaluates for AWS services' publishes, but it is missing from parliament's list of global "
            "keys and from the reference's keys for sns:Publish."
        ),
    ),
    Allowed(
        issue="RESOURCE_STAR",
        detail="'elasticache:DescribeReplicationGroups'",
        where="ReconcilerRole.Policies[0].PolicyDocument",
        reason=(
            "Only with RedisTargets: the function then lists the groups with one DescribeReplicationGroups that names "
            "no group. The reference does not say how such a request is authorized, and its ElastiCache page says to "
            'use "*" in ElastiCache policies. Read-only. With one target the statement names the group\'s ARN '
            "(check_iam.py checks both)."
        ),
    ),
]

override_config(str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))


def policy_documents(node, path: str) -> Iterator[tuple[str, dict]]:
    """(path, document) of every mapping with a Statement under `node`; both branches of an Fn::If share a path."""
    if isinstance(node, dict):
        if "Statement" in node:
            yield path, node
        elif list(node) == ["Fn::If"]:
            for branch in node["Fn::If"][1:]:
                yield from policy_documents(branch, path)
        else:
            for key, value in node.items():
                yield from policy_documents(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from policy_documents(value, f"{path}[{i}]")


def sids(node) -> set[str]:
    """Every Sid under `node`, in every branch of its Fn::If."""
    if isinstance(node, dict):
        own = {node["Sid"]} if isinstance(node.get("Sid"), str) else set()
        return own.union(*(sids(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(sids(v) for v in node))
    return set()


def with_sample_arns(template: dict, document, problems: list[str], where: str) -> str:
    """The document as JSON, each resource placeholder replaced by a sample ARN of the resource's type."""

    def arn(m: re.Match) -> str:
        logical, attr = m.group(1), m.group(2)
        rtype = template["Resources"].get(logical, {}).get("Type")
        sample = SAMPLE_ARNS.get((rtype, attr))
        if sample is None:
            problems.append(f"{where}: no sample ARN for {m.group(0)} ({rtype}); add one to SAMPLE_ARNS")
            return f"arn:aws:unknown:{ACCOUNT}:{logical}"
        return sample.format(logical=logical)

    return re.sub(r"<(\w+)(?:\.(\w+))?>", arn, json.dumps(document))


def allowed(finding, where: str) -> Allowed | None:
    return next(
        (a for a in ALLOWED if a.issue == finding.issue and a.detail in str(finding.detail) and a.where == where),
        None,
    )


def run_checks(template: dict, quiet: bool = False) -> tuple[list[str], list[str]]:
    """(problems, notes): parliament's findings outside ALLOWED, and what was linted."""
    problems: list[str] = []
    used: set[Allowed] = set()
    linted_docs: set[str] = set()
    linted_sids: set[str] = set()
    statements = 0
    raw_docs = {
        where: doc
        for logical, res in template["Resources"].items()
        for where, doc in policy_documents(res.get("Properties", {}), logical)
    }
    for case, params in CASES.items():
        try:
            ev = Evaluator(template, params)
            bad = ev.check_allowed() + ev.rule_failures()
        except EvalError as e:
            bad = [str(e)]
        if bad:
            problems.append(f"case {case!r}: the template rejects it: {bad}")
            continue
        for logical, res in template["Resources"].items():
            if not ev.active(logical):
                continue
            for where, doc in policy_documents(ev.eval(res.get("Properties", {})), logical):
                linted_docs.add(where)
                if where.endswith(TRUST_POLICY):
                    continue
                linted_sids.update(sids(doc))
                statements += len(doc["Statement"]) if isinstance(doc["Statement"], list) else 1
                policy = analyze_policy_string(
                    with_sample_arns(template, doc, problems, where),
                    include_community_auditors=True,
                    ignore_private_auditors=True,
                )
                for finding in map(enhance_finding, policy.findings):
                    if entry := allowed(finding, where):
                        used.add(entry)
                        continue
                    # Line and column are positions in the evaluated JSON, which is nowhere on disk.
                    noise = {"filepath", "line", "lineno", "column"}
                    location = {k: v for k, v in (finding.location or {}).items() if k not in noise}
                    problems.append(
                        f"{where} (case {case!r}): parliament {finding.issue} ({finding.severity}): "
                        f"{finding.detail} {location or ''}".rstrip()
                    )
    for where in sorted(set(raw_docs) - linted_docs):
        problems.append(f"{where}: no case creates this policy document, so parliament never saw it; extend CASES")
    trust = {w for w in raw_docs if w.endswith(TRUST_POLICY)}
    never = sids({w: d for w, d in raw_docs.items() if w not in trust}) - linted_sids
    for sid in sorted(never):
        problems.append(f"statement {sid}: no case grants it, so parliament never saw it; extend CASES")
    for entry in ALLOWED:
        if entry not in used:
            problems.append(f"ALLOWED entry {entry.issue} at {entry.where} matched no finding; remove it")
    notes = [
        f"{len(linted_docs - trust)} policy documents, {statements} statements in {len(CASES)} configurations: "
        f"{len(used)} allowed finding(s), {len(problems)} problem(s)",
        f"not linted (trust policies, which have no Resource): {', '.join(sorted(trust)) or 'none'}",
    ]
    if not quiet:
        for n in notes:
            print(f"check_policies: {n}")
    return problems, notes


# ---------------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------------
def _statement(t: dict, role: str, sid: str) -> dict:
    for st in t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
        st = st["Fn::If"][1] if "Fn::If" in st else st
        if st.get("Sid") == sid:
            return st
    raise KeyError(sid)


def _add_statement_under_false_condition(t: dict) -> None:
    t["Conditions"]["NeverInCases"] = {"Fn::Equals": ["a", "b"]}
    t["Resources"]["RollbackRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {
            "Fn::If": [
                "NeverInCases",
                {"Sid": "Hidden", "Effect": "Allow", "Action": "s3:GetObjct", "Resource": "*"},
                {"Ref": "AWS::NoValue"},
            ]
        }
    )


def _source_account_only(t: dict) -> None:
    st = t["Resources"]["ElastiCacheNotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    st["Condition"] = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


MUTATIONS: list[tuple[str, Callable[[dict], object], list[str]]] = [
    (
        "a misspelled action",
        lambda t: _statement(t, "ReconcilerRole", "ReadWriteEndpointParameters").update(
            Action=["ssm:GetParameters", "ssm:PutParameters"]
        ),
        ["parliament UNKNOWN_ACTION (LOW): Unknown action ssm:PutParameters"],
    ),
    (
        "a misspelled service prefix",
        lambda t: _statement(t, "ReconcilerRole", "DescribeManagedGroups").update(
            Action="elasticcache:DescribeReplicationGroups"
        ),
        ["parliament UNKNOWN_PREFIX (LOW): Unknown prefix elasticcache"],
    ),
    (
        "a wrong condition key",
        lambda t: _statement(t, "ReconcilerRole", "SecureStringKey").update(
            Condition={"StringEquals": {"kms:ViaServices": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}}}
        ),
        ["parliament UNKNOWN_CONDITION_FOR_ACTION (MEDIUM): Unknown condition kms:ViaServices for action kms:Decrypt"],
    ),
    (
        "a resource of the wrong type",
        lambda t: _statement(t, "RollbackRole", "WaitForInsync").update(
            Resource={"Fn::Sub": "arn:${AWS::Partition}:route53:::hostedzone/*"}
        ),
        ["parliament RESOURCE_MISMATCH (MEDIUM): [{'action': 'route53:GetChange'"],
    ),
    (
        "a statement no case grants",
        _add_statement_under_false_condition,
        ["statement Hidden: no case grants it, so parliament never saw it"],
    ),
    (
        "the allowed finding gone",
        _source_account_only,
        ["ALLOWED entry UNKNOWN_CONDITION_FOR_ACTION at ElastiCacheNotificationTopicPolicy.PolicyDocument matched"],
    ),
    (
        "a resource type without a sample ARN",
        lambda t: _statement(t, "RollbackRole", "OnFailureDestination").update(
            Resource={"Fn::GetAtt": ["RollbackRole", "Arn"]}
        ),
        ["no sample ARN for <RollbackRole.Arn> (AWS::IAM::Role)"],
    ),
]


def self_test(template: dict) -> int:
    start, failed = time.monotonic(), []
    clean, _ = run_checks(copy.deepcopy(template), quiet=True)
    if clean:
        failed.append(f"the unmutated template reports {clean}")
    for name, mutate, expected in MUTATIONS:
        t = copy.deepcopy(template)
        mutate(t)
        try:
            problems, _ = run_checks(t, quiet=True)
        except Exception as e:  # a crash is an error of the check, never a catch
            failed.append(f"mutation {name!r}: the check raised {type(e).__name__}: {e}")
            continue
        missing = [x for x in expected if not any(x in p for p in problems)]
        if missing:
            failed.append(f"mutation {name!r}: no problem says {missing}; reported {problems}")
    return self_test_report("check_policies", failed, len(MUTATIONS), start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="show that broken policies are reported")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="the SAM template (default: %(default)s)")
    args = parser.parse_args()
    if parliament.__version__ != PARLIAMENT_VERSION:
        print(f"check_policies: parliament {parliament.__version__}, want {PARLIAMENT_VERSION}", file=sys.stderr)
        return 1
    template = load_template(args.template)
    if args.self_test:
        return self_test(template)
    problems, _ = run_checks(template)
    for p in problems:
        print(f"check_policies: {p}", file=sys.stderr)
    if problems:
        return 1
    for entry in ALLOWED:
        print(f"check_policies: allowed {entry.issue} at {entry.where}: {entry.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
