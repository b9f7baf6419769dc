#!/usr/bin/env python3
"""Consistency checks of infra/template.yaml against the code and the sample events (`make lint-infra`).

The code's side comes from infra/functions.json, which a Rust test writes from each function's declarations
(tests/generated.rs): the variables it reads with their defaults, those the template must not set, and the
timeout rule. This file holds the checks and main. Beside it: cfn.py, the CloudFormation machinery (YAML loader,
intrinsic-function evaluator); check_iam.py, the IAM checks; check_triggers.py, check 5; check_template_selftest.py.

1. Functions: build settings, logging and on-failure destinations of each AWS::Serverless::Function, and
   that each is declared in functions.json.
2. Environment: the template sets exactly the declared variables minus not_in_template, nothing reserved
   for the runtime, and a parameter feeding a variable defaults to "" or to the code's default.
3. Timeouts: Timeout >= the wait variable's value + reserve_secs, MinValue >= reserve_secs, and every
   description quoting the rule ("+ N") quotes reserve_secs.
4. IAM, Rules, ALARM_NAMES and resources: least-privilege policies, the deploy-time Rules, ALARM_NAMES for
   every configuration the Rules admit, concurrency, encrypted dead-letter queues, log retention, checkov skips,
   alarm parameters within CloudWatch's limits, evaluated for sample parameter values.
5. Triggers: every wired trigger has a sample in events/<function>/ shaped like what it delivers, and at least one
   trigger was checked.
6. Metrics: both functions take their namespace from one parameter whose AllowedPattern CloudWatch accepts; every
   alarm and dashboard metric in it is one the function it names emits (functions.json "metrics", from each crate's
   metrics::NAMES), each function has an alarm on its own metrics, and the dashboard shows every emitted metric but
   ColdStart.
7. Runbook: every alarm the template creates has its own section in docs/operations.md.

`check_template.py` exits 1 with one line per problem, and with a traceback's last line for a check that raised (an
error in the check, never a finding). `check_template.py --self-test` applies mutations to the template and
functions.json in memory and fails unless the checks report each one with the expected message and none raises.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

from cfn import Evaluator, load_template, ref_parameter, serverless_functions
from check_iam import (
    AUTH_CASE,
    GREEN_5XX,
    ROLLBACK_CASE,
    admitted,
    alarms_allowed_to_invoke,
    check_reconciler_iam,
    check_rollback_iam,
)
from check_template_selftest import self_test
from check_triggers import check_triggers

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
FUNCTIONS_JSON = ROOT / "infra" / "functions.json"
RUNBOOK = ROOT / "docs" / "operations.md"

# Set by the Lambda runtime, never by the template (Lambda rejects reserved keys; the log settings come
# from LoggingConfig).
RUNTIME_PROVIDED = re.compile(r"^(AWS_|_HANDLER$|_X_AMZN_TRACE_ID$|LAMBDA_)")
ROLLBACK = "BluegreenRollbackFunction"


class Report:
    """Problems found by the checks, checks that raised (errors), and summary lines (printed unless quiet)."""

    def __init__(self, quiet: bool = False):
        self.problems: list[str] = []
        self.errors: list[str] = []
        self.quiet = quiet

    def problem(self, msg: str) -> None:
        self.problems.append(msg)

    def info(self, msg: str) -> None:
        if not self.quiet:
            print(msg)


def as_text(value) -> str:
    """A parameter Default as CloudFormation passes it on: a string, numbers as their decimal text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def declared(manifest: dict, function: str) -> dict[str, str | None]:
    return {v["name"]: v["default"] for v in manifest["functions"][function]["variables"]}


# ---------------------------------------------------------------------------------------------------
# 1-3. Functions, environment and timeouts, against infra/functions.json
# ---------------------------------------------------------------------------------------------------
def check_functions(r: Report, template: dict, manifest: dict) -> dict[str, tuple[str, dict]]:
    functions = serverless_functions(template)
    for name in sorted(set(manifest["functions"]) - set(functions)):
        r.problem(f"the template has no AWS::Serverless::Function with CodeUri ../crates/{name}")
    for crate, (logical, p) in sorted(functions.items()):
        if crate not in manifest["functions"]:
            r.problem(f"{logical}: infra/functions.json does not declare {crate}")
        uri = p.get("CodeUri", "")
        cargo = (TEMPLATE.parent / str(uri)).resolve() / "Cargo.toml"
        if not cargo.is_file():
            r.problem(f"{logical}: CodeUri {uri} is not a Cargo package (no {cargo})")
        elif f'name = "{crate}"' not in cargo.read_text():
            r.problem(f"{logical}: CodeUri {uri} does not hold package {crate}")
        if template["Resources"][logical].get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            r.problem(f"{logical}: Metadata.BuildMethod must be rust-cargolambda")
        for key, want in [("Runtime", "provided.al2023"), ("Handler", "bootstrap"), ("Architectures", ["arm64"])]:
            if p.get(key) != want:
                r.problem(f"{logical}: {key} is {p.get(key)!r}, want {want!r}")
        logging = p.get("LoggingConfig") or {}
        if logging.get("LogFormat") != "JSON" or "LogGroup" not in logging:
            r.problem(f"{logical}: LoggingConfig needs LogFormat JSON and the stack's LogGroup")
        on_failure = ((p.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
        if on_failure.get("Type") != "SQS":
            r.problem(f"{logical}: needs EventInvokeConfig.DestinationConfig.OnFailure of Type SQS")
    return {name: functions[name] for name in manifest["functions"] if name in functions}


def check_environment(r: Report, template: dict, manifest: dict, functions: dict[str, tuple[str, dict]]) -> None:
    for name, (logical, props) in sorted(functions.items()):
        code = declared(manifest, name)
        forbidden = set(manifest["functions"][name]["not_in_template"])
        for var in sorted(forbidden - set(code)):
            r.problem(f"infra/functions.json: {name} lists {var} in not_in_template but does not declare it")
        wanted = {v for v in code if v not in forbidden and not RUNTIME_PROVIDED.match(v)}
        env = (props.get("Environment") or {}).get("Variables") or {}
        for var in sorted(wanted - set(env)):
            r.problem(f"{logical}: {name} reads {var} (infra/functions.json) but the template does not set it")
        for var in sorted(set(env) - wanted - forbidden):
            if not RUNTIME_PROVIDED.match(var):
                r.problem(f"{logical}: the template sets {var}, which {name} never reads")
        for var in sorted(set(env) & forbidden):
            r.problem(f"{logical}: the template sets {var}, which must never be set by the template (not_in_template)")
        for var in sorted(v for v in env if RUNTIME_PROVIDED.match(v)):
            r.problem(f"{logical}: sets {var}, a name reserved for the Lambda runtime (use LoggingConfig for logs)")
        for var, node in sorted(env.items()):
            param = ref_parameter(template, node)
            if param is None or var not in code or "Default" not in template["Parameters"][param]:
                continue
            default = as_text(template["Parameters"][param]["Default"])
            if default not in ("", code[var]):
                want = f"whose default in {name} is {code[var]!r}; want that or" if code[var] else "want"
                r.problem(f'{param}: Default {default!r} feeds {var}, {want} "" (the function applies its default)')
        never = f"; never {sorted(forbidden)}" if forbidden else ""
        r.info(
            f"environment: {name} ({logical}) sets {len(set(env) & wanted)} of {len(wanted)}{never}: {sorted(wanted)}"
        )


def check_timeouts(r: Report, template: dict, manifest: dict, functions: dict[str, tuple[str, dict]]) -> None:
    """Timeout >= the wait variable + reserve_secs, for the defaults; MinValue >= reserve_secs; quotes of "+ N"."""
    params, defaults = template["Parameters"], Evaluator(template, {})
    for name, (logical, props) in sorted(functions.items()):
        rule = manifest["functions"][name]["timeout"]
        wait_var, reserve = rule["wait_variable"], int(rule["reserve_secs"])
        if "Timeout" not in props:
            r.problem(f"{logical}: no Timeout (Lambda's default is 3 s); needs {wait_var} + {reserve}")
            continue
        t_param = ref_parameter(template, props["Timeout"])
        timeout = int(as_text(defaults.eval(props["Timeout"])))
        node = ((props.get("Environment") or {}).get("Variables") or {}).get(wait_var)
        w_param = ref_parameter(template, node)
        # An empty (or unset) variable: the function applies its own default.
        wait = (as_text(defaults.eval(node)) if node is not None else "") or declared(manifest, name).get(wait_var)
        if wait is None:
            r.problem(f"{logical}: {wait_var} has no value in the template and no default in {name}")
            continue
        label = w_param or wait_var
        if timeout < int(wait) + reserve:
            r.problem(
                f"{logical}: Timeout {t_param or ''} default {timeout} < {label} default {wait} + reserve {reserve} "
                f"({name}'s reserve_secs, infra/functions.json)"
            )
        if not t_param:
            continue
        low = params[t_param].get("MinValue")
        if low is None or int(low) < reserve:
            r.problem(f"{t_param}: MinValue {low} < {reserve}, {name}'s reserve: even {wait_var}=0 needs that")
        if not re.search(r"\+\s*\d+", str(params[t_param].get("Description", ""))):
            r.problem(f"{t_param}: Description must quote the rule ({label} + {reserve})")
        # Every description that states the rule (the timeout's own, and any that names it) quotes this reserve.
        for p, spec in params.items():
            text = str(spec.get("Description", ""))
            if p == t_param or t_param in text:
                for n in re.findall(r"\+\s*(\d+)", text):
                    if int(n) != reserve:
                        r.problem(f"{p}: Description quotes + {n}, but {name}'s reserve is {reserve} s")
        r.info(f"timeout: {name}: {t_param} {timeout} (MinValue {low}) >= {label} {wait} + {reserve}")


# ---------------------------------------------------------------------------------------------------
# 4. Rules, ALARM_NAMES, resources (the IAM checks are in check_iam.py)
# ---------------------------------------------------------------------------------------------------
def check_alarm_names(r: Report, template: dict) -> None:
    """For every configuration the Rules admit: ALARM_NAMES non-empty, no empty entry, = alarms allowed to invoke."""
    samples = {
        "HostedZoneId": ["", ROLLBACK_CASE["HostedZoneId"]],
        **{k: ["", v] for k, v in GREEN_5XX.items()},
        "ExternalGreenAlarmName": ["", "app-green-health", " ", " app-green-health", "x,", "a,b", "*", "app-?"],
    }
    count = 0
    for combo in itertools.product(*samples.values()):
        params = {"RecordName": ROLLBACK_CASE["RecordName"], **dict(zip(samples, combo, strict=True))}
        ev = Evaluator(template, params)
        if ev.check_allowed() or ev.rule_failures() or not ev.active(ROLLBACK):
            continue
        count += 1
        case = {k: v for k, v in params.items() if v and k in ("ExternalGreenAlarmName", *GREEN_5XX)}
        value = ev.eval(template["Resources"][ROLLBACK]["Properties"]).get("Environment", {}).get("Variables", {})
        value = str(value.get("ALARM_NAMES", "")).split(",")
        if value == [""] or any(not e.strip() for e in value):
            r.problem(f"{ROLLBACK}: ALARM_NAMES is {','.join(value)!r} (empty, or an empty entry) for {case}")
        elif any(e != e.strip() for e in value):
            r.problem(f"{ROLLBACK}: ALARM_NAMES {value} has an entry with surrounding spaces for {case}")
        elif set(value) != (allowed := alarms_allowed_to_invoke(r, ev, ROLLBACK)):
            r.problem(f"{ROLLBACK}: ALARM_NAMES {value} differs from the alarms allowed to invoke it {sorted(allowed)}")
    if not count:
        r.problem(f"no sample configuration of {ROLLBACK} passes the Rules")
    r.info(f"alarm names: ALARM_NAMES checked in the {count} rollback configurations the Rules admit")


def check_rules(r: Report, template: dict) -> None:
    """The deploy-time Rules reject the configurations the functions would reject at init, and only those."""
    single = {"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/p"}
    subnet = {"ReconcilerSubnetIds": "subnet-0123456789abcdef0"}
    wrong = [
        {},  # nothing to deploy
        {"RedisTargets": "orders=/app/orders/redis", **single},
        {"RedisReplicationGroupId": "orders"},
        {"RedisEndpointParameterName": "/p"},
        {"HostedZoneId": "Z0123456789ABCDEFGHIJ"},
        {**single, "VerifyRole": "true"},
        {**single, **subnet},
        {**ROLLBACK_CASE, "GreenTargetGroupFullName": GREEN_5XX["GreenTargetGroupFullName"]},
        ROLLBACK_CASE,  # no alarm may roll back: ALARM_NAMES would be empty
        {**AUTH_CASE, "RedisTls": "false"},  # the token only over TLS
        {**AUTH_CASE, "VerifyRole": "false", "ReconcilerSubnetIds": "", "ReconcilerSecurityGroupIds": ""},
    ]
    for params in wrong:
        if not Evaluator(template, params).rule_failures():
            r.problem(f"Rules accept {params or 'no configuration'}, which cannot work")
    right = [AUTH_CASE, {**ROLLBACK_CASE, **GREEN_5XX}, {**ROLLBACK_CASE, "ExternalGreenAlarmName": "app-green-health"}]
    for params in right:
        admitted(r, template, params)


def check_resources(r: Report, template: dict) -> None:
    """Concurrency; and what checkov is told to skip must still hold, and every skip says why."""
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::SQS::Queue" and props.get("SqsManagedSseEnabled") is not True:
            r.problem(f"{logical}: dead-letter queue must be encrypted (SqsManagedSseEnabled: true)")
        if res["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in props:
            r.problem(f"{logical}: log group needs RetentionInDays")
        for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            if len(str(skip.get("comment", "")).strip()) < 20:
                r.problem(f"{logical}: checkov skip {skip.get('id')} needs a comment that justifies it")
    if template["Resources"][ROLLBACK]["Properties"].get("ReservedConcurrentExecutions") != 1:
        r.problem(f"{ROLLBACK}: ReservedConcurrentExecutions must be 1 (one rollback at a time)")
    if "ReservedConcurrentExecutions" in template["Resources"]["RedisReconcilerFunction"]["Properties"]:
        r.problem("RedisReconcilerFunction: no ReservedConcurrentExecutions (a FailoverComplete must not queue)")
    check_alarm_bounds(r, template)


def check_alarm_bounds(r: Report, template: dict) -> None:
    """Every value an alarm's EvaluationPeriods and DatapointsToAlarm can take is one CloudWatch accepts.

    CloudWatch (PutMetricAlarm, Period): Period x EvaluationPeriods is at most 86,400 s for a period under an hour,
    else 604,800 s; DatapointsToAlarm is at most EvaluationPeriods. CloudFormation cannot compare two parameters
    before it deploys, so when both come from parameters the datapoints parameter's Description must state it.
    """
    params = template["Parameters"]

    def bound(logical: str, node, key: str) -> int | None:
        if (name := ref_parameter(template, node)) is None:
            return int(node) if isinstance(node, int | str) and str(node).isdigit() else None
        if "MaxValue" not in params[name]:
            r.problem(f"{logical}: {key} comes from {name}, which has no MaxValue (CloudWatch's limit)")
            return None
        return int(params[name]["MaxValue"])

    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] != "AWS::CloudWatch::Alarm" or not isinstance(props.get("Period"), int):
            continue
        period, limit = props["Period"], 86_400 if props["Period"] < 3600 else 604_800
        periods = bound(logical, props.get("EvaluationPeriods"), "EvaluationPeriods")
        if periods is not None and period * periods > limit:
            r.problem(f"{logical}: up to {periods} evaluation periods of {period} s exceed CloudWatch's {limit} s")
        if "DatapointsToAlarm" not in props:
            continue
        datapoints = bound(logical, props["DatapointsToAlarm"], "DatapointsToAlarm")
        if datapoints is not None and periods is not None and datapoints > periods:
            r.problem(f"{logical}: DatapointsToAlarm can be {datapoints}, above EvaluationPeriods' {periods}")
        m_param = ref_parameter(template, props["DatapointsToAlarm"])
        n_param = ref_parameter(template, props.get("EvaluationPeriods"))
        if m_param and n_param and f"At most {n_param}" not in str(params[m_param].get("Description", "")):
            r.problem(f'{m_param}: Description must say "At most {n_param}" (no Rule can compare two parameters)')


# ---------------------------------------------------------------------------------------------------
# 6. Metrics: the names the code emits (functions.json) are the names the alarms and dashboard use
# ---------------------------------------------------------------------------------------------------
def check_metrics(r: Report, template: dict, manifest: dict, functions: dict[str, tuple[str, dict]]) -> None:
    """Alarms and dashboard widgets on the functions' own metrics name metrics that function emits."""
    emitted = {name: set(manifest["functions"][name]["metrics"]["names"]) for name in functions}
    by_logical = {logical: name for name, (logical, _) in functions.items()}
    namespaces = set()
    for name, (logical, props) in functions.items():
        var = manifest["functions"][name]["metrics"]["namespace_variable"]
        param = ref_parameter(template, ((props.get("Environment") or {}).get("Variables") or {}).get(var))
        if param is None:
            r.problem(f"{logical}: {var} must come from a parameter (the alarms and dashboard use the same namespace)")
        namespaces.add(param)
    if not functions:
        r.problem("metrics: no function to check (infra/functions.json and the template share none)")
    if None in namespaces or not namespaces:
        return
    if len(namespaces) != 1:
        r.problem(
            f"metrics: the functions take their namespace from different parameters {sorted(namespaces)}; the alarms "
            "and the dashboard read one"
        )
        return
    (ns_param,) = namespaces
    check_namespace_pattern(r, ns_param, template["Parameters"][ns_param])
    dimension = {manifest["functions"][n]["metrics"]["dimension"] for n in functions}.pop()
    alarmed: set[str] = set()
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] != "AWS::CloudWatch::Alarm" or props.get("Namespace") != {"Ref": ns_param}:
            continue
        dims = {d.get("Name"): d.get("Value") for d in props.get("Dimensions", [])}
        owner = by_logical.get((dims.get(dimension) or {}).get("Ref"))
        if owner is None:
            r.problem(f"{logical}: an alarm on {ns_param} needs Dimensions {dimension}: !Ref <one of the functions>")
        elif props.get("MetricName") not in emitted[owner]:
            metric = props.get("MetricName")
            r.problem(f"{logical}: {owner} emits no metric {metric!r} (its metrics: {sorted(emitted[owner])})")
        else:
            alarmed.add(owner)
    for name in sorted(set(functions) - alarmed):
        r.problem(f"no alarm watches a metric {name} emits")
    # The dashboard, evaluated with both functions deployed.
    ev = Evaluator(template, {**AUTH_CASE, **ROLLBACK_CASE, **GREEN_5XX})
    dashboards = [res for res in template["Resources"].values() if res["Type"] == "AWS::CloudWatch::Dashboard"]
    if len(dashboards) != 1:
        r.problem(f"want one AWS::CloudWatch::Dashboard, found {len(dashboards)}")
        return
    body = json.loads(ev.eval(dashboards[0]["Properties"]["DashboardBody"]))
    namespace = ev.eval({"Ref": ns_param})
    shown: dict[str, set[str]] = {name: set() for name in functions}
    for widget in body.get("widgets", []):
        for metric in (widget.get("properties") or {}).get("metrics", []):
            if not metric or metric[0] != namespace:
                continue
            pairs = dict(zip(metric[2::2], metric[3::2], strict=False))
            owner = by_logical.get(str(pairs.get(dimension, "")).strip("<>"))
            if owner is None:
                r.problem(f"dashboard: {metric[1]} is not shown for one of the functions ({dimension})")
            elif metric[1] not in emitted[owner]:
                r.problem(f"dashboard: {owner} emits no metric {metric[1]!r}")
            else:
                shown[owner].add(metric[1])
    for name in sorted(functions):
        for missing in sorted(emitted[name] - shown[name] - {"ColdStart"}):
            r.problem(f"dashboard: {name}'s metric {missing} is not shown")
    r.info(f"metrics: alarms and dashboard use only emitted names, in namespace {namespace} ({ns_param})")


def check_namespace_pattern(r: Report, name: str, spec: dict) -> None:
    """The namespace parameter admits what CloudWatch accepts and rejects what it refuses (API model: 1 to 255
    characters, pattern [^:].*; the user guide: ASCII letters, digits and . - _ / # : and space; AWS/ is reserved)."""
    pattern = spec.get("AllowedPattern", ".*")
    good = ["Failover", "my-app/prod", "Team #1: orders", "x" * 255]
    bad = [":Failover", "AWS/Failover", "", "x" * 256, "Fail\tover"]
    for ns in good:
        if not re.fullmatch(pattern, ns):
            r.problem(f"{name}: AllowedPattern rejects {ns[:40]!r}, a namespace CloudWatch accepts")
    for ns in bad:
        if re.fullmatch(pattern, ns):
            r.problem(f"{name}: AllowedPattern admits {ns[:40]!r}, a namespace CloudWatch rejects")


# ---------------------------------------------------------------------------------------------------
# 7. Runbook: every alarm in the stack has a section in docs/operations.md
# ---------------------------------------------------------------------------------------------------
def runbook_name(alarm_name) -> str | None:
    """The name the runbook uses for an AlarmName: ${AWS::StackName} is <stack>, any other parameter <member>."""
    text = alarm_name.get("Fn::Sub") if isinstance(alarm_name, dict) else alarm_name
    if not isinstance(text, str):
        return None
    return re.sub(r"\$\{[^}]+\}", "<member>", text.replace("${AWS::StackName}", "<stack>"))


def check_runbook(r: Report, template: dict, runbook: str) -> None:
    headings = set(re.findall(r"^### `([^`]+)`", runbook, flags=re.M))
    count = 0
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        name = runbook_name(res.get("Properties", {}).get("AlarmName"))
        if name is None:
            r.problem(f"{logical}: AlarmName must be a name or an Fn::Sub (the runbook names alarms by it)")
        elif name not in headings:
            r.problem(f"{logical}: docs/operations.md has no section ### `{name}` (what it means, what to do)")
        count += 1
    r.info(f"runbook: docs/operations.md has a section for each of the {count} alarms")


# ---------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------
def run_checks(template: dict, manifest: dict, quiet: bool = False, runbook: str | None = None) -> Report:
    r = Report(quiet)
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        if section not in template:
            r.problem(f"template has no {section}")
    functions: dict[str, tuple[str, dict]] = {}

    def functions_check() -> None:
        functions.update(check_functions(r, template, manifest))

    checks = {
        "1 functions": functions_check,
        "2 environment": lambda: check_environment(r, template, manifest, functions),
        "3 timeouts": lambda: check_timeouts(r, template, manifest, functions),
        "4 reconciler IAM": lambda: check_reconciler_iam(r, template),
        "4 rollback IAM": lambda: check_rollback_iam(r, template),
        "4 ALARM_NAMES": lambda: check_alarm_names(r, template),
        "4 Rules": lambda: check_rules(r, template),
        "4 resources": lambda: check_resources(r, template),
        "5 triggers": lambda: check_triggers(r, template, functions),
        "6 metrics": lambda: check_metrics(r, template, manifest, functions),
        "7 runbook": lambda: check_runbook(r, template, RUNBOOK.read_text() if runbook is None else runbook),
    }
    for name, check in checks.items():
        try:
            check()
        except Exception as e:  # a bug in the check, or a template it cannot read: an error, never a finding
            r.errors.append(f"check {name} raised {type(e).__name__}: {e}")
    return r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="show that the checks catch broken templates")
    args = parser.parse_args()
    template, manifest = load_template(TEMPLATE), json.loads(FUNCTIONS_JSON.read_text())
    if args.self_test:
        return self_test(template, manifest, run_checks)
    report = run_checks(template, manifest)
    for p in report.problems:
        print(f"check_template: {p}", file=sys.stderr)
    for e in report.errors:
        print(f"check_template: error: {e}", file=sys.stderr)
    if report.problems or report.errors:
        print(
            f"check_template: {len(report.problems)} problem(s) and {len(report.errors)} error(s) in the checks, "
            f"{TEMPLATE.relative_to(ROOT)}",
            file=sys.stderr,
        )
        return 1
    print(f"check_template: {TEMPLATE.relative_to(ROOT)} is consistent with infra/functions.json and events/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
