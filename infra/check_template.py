#!/usr/bin/env python3
"""Consistency checks of infra/template.yaml against the code and the sample events (`make lint-infra`).

1. Environment: every variable the Rust code reads is set on the right function by the template, and the
   template sets nothing else. The list is derived from the source of each function's crate and the
   workspace crates it depends on, not written here.
2. Triggers: every trigger the template wires has a sample in events/<function>/ shaped like what that
   trigger delivers (SNS record, EventBridge "Scheduled Event", CloudWatch alarm action, ...).
3. The template's own invariants: SAM build settings, logging, on-failure destinations, timeouts,
   reserved concurrency, the SNS topic policy, and the least-privilege IAM policies, evaluated for sample
   parameter values with a small evaluator of the intrinsic functions the template uses.

Exits 1 with one line per problem. Needs PyYAML (installed with checkov in infra/.venv).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
EVENTS = ROOT / "events"

FUNCTIONS = {"redis-reconciler", "bluegreen-rollback"}
# A function is built from its crate and the workspace crates it depends on (failover-core). Within those,
# these paths belong to one function only; everything else (the shared parts of failover-core) to each.
OWNERS = {
    "crates/failover-core/src/redis/": "redis-reconciler",
    "crates/failover-core/src/bluegreen/": "bluegreen-rollback",
}
# Set by the Lambda runtime, never by the template (Lambda rejects reserved keys; the log settings come
# from LoggingConfig). A read of one of these in the code needs nothing in the template.
RUNTIME_PROVIDED = re.compile(r"^(AWS_|_HANDLER$|_X_AMZN_TRACE_ID$|LAMBDA_)")

# The Env helpers of failover-core (env.rs) and std::env.
ENV_METHOD_READ = re.compile(r"\.\s*(?:get|required|flag|integer|seconds)\s*\(\s*([A-Z][A-Z0-9_]*|\"[A-Z][A-Z0-9_]*\")\s*[,)]")
STD_ENV_READ = re.compile(r"\benv::var(?:_os)?\s*\(\s*\"([A-Z][A-Z0-9_]*)\"\s*\)")
ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{2,}[0-9]*")
STR_CONST = re.compile(r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"([^\"]*)\"\s*;")
# Comments, string and char literals (blanked out before looking for test-only items and their braces).
LITERALS = re.compile(r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?\'(?:\\.|[^\\\'])\'', re.S)
CFG_TEST = re.compile(r"#\[cfg\(test\)\]")

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "failover",
    "AWS::URLSuffix": "amazonaws.com",
}

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


# ---------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, ...) turned into their long forms."""


def _construct(loader: CfnLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct)


def load_template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)


def load_events(function: str) -> dict[str, object]:
    return {p.name: json.loads(p.read_text()) for p in sorted((EVENTS / function).glob("*.json"))}


# ---------------------------------------------------------------------------------------------------
# 1. Environment variables read by the Rust code
# ---------------------------------------------------------------------------------------------------
def crate_closure(function: str) -> list[str]:
    """The workspace crates (directories under crates/) that `function`'s binary is built from."""
    local = {p.parent.name for p in ROOT.glob("crates/*/Cargo.toml")}
    seen, todo = [], [function]
    while todo:
        crate = todo.pop()
        if crate in seen or crate not in local:
            continue
        seen.append(crate)
        manifest = (ROOT / "crates" / crate / "Cargo.toml").read_text()
        deps = re.search(r"^\[dependencies\]\n(.*?)(?=^\[|\Z)", manifest, re.S | re.M)
        todo += re.findall(r"^([A-Za-z0-9_-]+)\s*=", deps.group(1) if deps else "", re.M)
    return sorted(seen)


def belongs_to(rel: str, function: str) -> bool:
    owner = next((f for prefix, f in OWNERS.items() if rel.startswith(prefix)), None)
    return owner in (None, function)


def without_test_items(text: str) -> str:
    """`text` with every `#[cfg(test)]` item (a test module, a test-only function, ...) removed."""
    masked = LITERALS.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    cut: list[tuple[int, int]] = []
    for m in CFG_TEST.finditer(masked):
        i = m.end()
        while i < len(masked) and masked[i] not in "{;":
            i += 1
        if i < len(masked) and masked[i] == "{":
            depth = 0
            while i < len(masked):
                depth += {"{": 1, "}": -1}.get(masked[i], 0)
                if depth == 0:
                    break
                i += 1
        cut.append((m.start(), i + 1))
    out, pos = [], 0
    for start, end in cut:
        if start >= pos:
            out.append(text[pos:start])
            pos = end
    out.append(text[pos:])
    return "".join(out)


def env_reads() -> dict[str, dict[str, list[str]]]:
    """{function: {VAR: [where, ...]}} for every environment read, outside test code, in the crates of each function."""
    reads: dict[str, dict[str, list[str]]] = {f: {} for f in FUNCTIONS}
    crates = {f: crate_closure(f) for f in sorted(FUNCTIONS)}
    print(f"environment: scanning {crates}")
    files = sorted({p for cs in crates.values() for c in cs for p in (ROOT / "crates" / c / "src").glob("**/*.rs")})
    if not files:
        problem("found no Rust source of the functions under crates/")
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        text = without_test_items(text)  # unit tests read made-up variables
        consts = dict(STR_CONST.findall(text))
        found: set[str] = set()
        for arg in ENV_METHOD_READ.findall(text):
            # A literal, or a string constant of this file whose value looks like a variable name. Other
            # `.get(CONST)` calls (maps, headers) are not environment reads.
            value = arg.strip('"') if arg.startswith('"') else consts.get(arg, "")
            if ENV_NAME.fullmatch(value):
                found.add(value)
        found.update(STD_ENV_READ.findall(text))
        # Every name-like string constant of a config module must be a variable we saw being read;
        # otherwise the code reads it in a way this scanner does not recognize.
        if path.name == "config.rs":
            for name, value in consts.items():
                if ENV_NAME.fullmatch(value) and value not in found:
                    problem(f"{rel}: const {name} = {value!r} looks like an environment variable, but no read of it was found; teach check_template.py how it is read")
        for var in found:
            line = text[: text.find(f'"{var}"')].count("\n") + 1
            for function in FUNCTIONS:
                if path.parent.relative_to(ROOT).parts[1] in crates[function] and belongs_to(rel, function):
                    reads[function].setdefault(var, []).append(f"{rel}:{line}")
    return reads


def check_environment(template: dict, functions: dict[str, tuple[str, dict]]) -> None:
    reads = env_reads()
    for function in sorted(FUNCTIONS):
        if function not in functions:
            problem(f"the template has no AWS::Serverless::Function with CodeUri ../crates/{function}")
            continue
        logical, props = functions[function]
        wanted = {v for v in reads[function] if not RUNTIME_PROVIDED.match(v)}
        if not wanted:
            problem(f"{function}: found no environment read in its code; the scanner is broken")
        env = (props.get("Environment") or {}).get("Variables") or {}
        for var in sorted(wanted - set(env)):
            problem(f"{logical}: the code reads {var} ({', '.join(reads[function][var])}) but the template does not set it")
        for var in sorted(set(env) - wanted):
            problem(f"{logical}: the template sets {var}, which {function} never reads")
        for var in env:
            if RUNTIME_PROVIDED.match(var):
                problem(f"{logical}: sets {var}, a name reserved for the Lambda runtime (use LoggingConfig for log settings)")
    print(f"environment: redis-reconciler reads {sorted(reads['redis-reconciler'])}")
    print(f"environment: bluegreen-rollback reads {sorted(reads['bluegreen-rollback'])}")


# ---------------------------------------------------------------------------------------------------
# A small evaluator of the intrinsic functions the template uses
# ---------------------------------------------------------------------------------------------------
NO_VALUE = object()


class EvalError(Exception):
    pass


class Evaluator:
    def __init__(self, template: dict, overrides: dict[str, object]):
        self.template = template
        self.params: dict[str, object] = {}
        for name, spec in template["Parameters"].items():
            value = overrides.get(name, spec.get("Default"))
            if value is None:
                raise EvalError(f"parameter {name} has no value")
            if spec["Type"] == "CommaDelimitedList":
                value = value if isinstance(value, list) else str(value).split(",")
            else:
                value = str(value)
            self.params[name] = value
        unknown = set(overrides) - set(self.params)
        if unknown:
            raise EvalError(f"unknown parameters {sorted(unknown)}")
        self._conditions: dict[str, bool] = {}

    def check_allowed(self) -> list[str]:
        """Parameter values the template would reject (AllowedPattern / AllowedValues)."""
        bad = []
        for name, spec in self.template["Parameters"].items():
            value = self.params[name]
            values = value if isinstance(value, list) else [value]
            for v in values:
                if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], v):
                    bad.append(f"{name}={v!r} does not match AllowedPattern")
                if "AllowedValues" in spec and v not in [str(a) for a in spec["AllowedValues"]]:
                    bad.append(f"{name}={v!r} is not in AllowedValues")
        return bad

    def rule_failures(self) -> list[str]:
        """AssertDescriptions of the template's Rules that these parameter values break."""
        failed = []
        for name, rule in (self.template.get("Rules") or {}).items():
            if "RuleCondition" in rule and not self.eval(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.eval(assertion["Assert"]):
                    failed.append(f"{name}: {assertion.get('AssertDescription', '')}")
        return failed

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    def active(self, logical: str) -> bool:
        cond = self.template["Resources"][logical].get("Condition")
        return cond is None or self.condition(cond)

    def eval(self, node):  # noqa: C901 (one branch per intrinsic)
        if isinstance(node, list):
            out = [self.eval(x) for x in node]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in PSEUDO:
                    return PSEUDO[arg]
                if arg in self.params:
                    return self.params[arg]
                if arg in self.template["Resources"]:
                    if not self.active(arg):
                        raise EvalError(f"Ref to {arg}, which is not created")
                    return f"<{arg}>"
                raise EvalError(f"Ref to unknown {arg}")
            if key == "Fn::GetAtt":
                logical, attr = arg
                if not self.active(logical):
                    raise EvalError(f"GetAtt of {logical}, which is not created")
                return f"<{logical}.{attr}>"
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                values = {k: self.eval(v) for k, v in variables.items()}

                def repl(m: re.Match) -> str:
                    name = m.group(1)
                    if name.startswith("!"):
                        return "${" + name[1:] + "}"
                    if name in values:
                        return str(values[name])
                    if "." in name and not name.startswith("AWS::"):
                        return str(self.eval({"Fn::GetAtt": name.split(".", 1)}))
                    return str(self.eval({"Ref": name}))

                return re.sub(r"\$\{([^}]+)\}", repl, text)
            if key == "Fn::Join":
                delimiter, items = arg
                items = self.eval(items)
                return delimiter.join(str(x) for x in items)
            if key == "Fn::Split":
                delimiter, source = arg
                return str(self.eval(source)).split(delimiter)
            if key == "Fn::Select":
                index, items = arg
                items = self.eval(items)
                i = int(self.eval(index))
                if not 0 <= i < len(items):
                    raise EvalError(f"Fn::Select index {i} out of range for {items}")
                return items[i]
            if key == "Fn::If":
                cond, yes, no = arg
                return self.eval(yes if self.condition(cond) else no)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                a, b = (self.eval(x) for x in arg)
                return a == b
            if key == "Fn::EachMemberEquals":
                items, value = self.eval(arg[0]), self.eval(arg[1])
                return all(x == value for x in items)
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::And":
                return all(self.eval(x) for x in arg)
            if key == "Fn::Or":
                return any(self.eval(x) for x in arg)
            if key.startswith("Fn::"):
                raise EvalError(f"{key} is not supported by check_template.py's evaluator")
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


# ---------------------------------------------------------------------------------------------------
# 3. Template invariants
# ---------------------------------------------------------------------------------------------------
def serverless_functions(template: dict) -> dict[str, tuple[str, dict]]:
    out = {}
    for logical, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        uri = res["Properties"].get("CodeUri", "")
        crate = Path(str(uri)).name
        out[crate] = (logical, res["Properties"])
        crate_dir = (TEMPLATE.parent / str(uri)).resolve()
        manifest = crate_dir / "Cargo.toml"
        if not manifest.is_file():
            problem(f"{logical}: CodeUri {uri} is not a Cargo package (no {manifest})")
        elif f'name = "{crate}"' not in manifest.read_text():
            problem(f"{logical}: CodeUri {uri} does not hold package {crate}")
        if res.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            problem(f"{logical}: Metadata.BuildMethod must be rust-cargolambda")
        p = res["Properties"]
        for key, want in [("Runtime", "provided.al2023"), ("Handler", "bootstrap"), ("Architectures", ["arm64"])]:
            if p.get(key) != want:
                problem(f"{logical}: {key} is {p.get(key)!r}, want {want!r}")
        logging = p.get("LoggingConfig") or {}
        if logging.get("LogFormat") != "JSON" or "LogGroup" not in logging:
            problem(f"{logical}: LoggingConfig needs LogFormat JSON and the stack's LogGroup")
        on_failure = ((p.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
        if on_failure.get("Type") != "SQS":
            problem(f"{logical}: needs EventInvokeConfig.DestinationConfig.OnFailure of Type SQS")
    return out


def statements(ev: Evaluator, role: str) -> dict[str, dict]:
    props = ev.eval(ev.template["Resources"][role]["Properties"])
    out = {}
    for policy in props.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            out[st.get("Sid", "?")] = st
    return out


def as_list(x) -> list:
    return x if isinstance(x, list) else [x]


ARN_SSM = "arn:aws:ssm:us-east-1:123456789012:parameter"
ARN_GROUP = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:"


def check_reconciler_iam(template: dict) -> None:
    res = template["Resources"]
    slot_count = None
    cases = [
        ({"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/app/orders/redis"},
         {f"{ARN_SSM}/app/orders/redis"}, f"{ARN_GROUP}orders"),
        ({"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "orders.redis.endpoint"},
         {f"{ARN_SSM}/orders.redis.endpoint"}, f"{ARN_GROUP}orders"),
        ({"RedisTargets": "orders=/app/orders/redis,sessions=sessions.redis.endpoint"},
         {f"{ARN_SSM}/app/orders/redis", f"{ARN_SSM}/sessions.redis.endpoint"}, "*"),
        ({"RedisTargets": ",".join(f"g{i}=/app/g{i}/redis" for i in range(10))},
         {f"{ARN_SSM}/app/g{i}/redis" for i in range(10)}, "*"),
    ]
    for params, want_ssm, want_describe in cases:
        try:
            ev = Evaluator(template, params)
            for bad in ev.check_allowed() + ev.rule_failures():
                problem(f"reconciler IAM case {params}: {bad}")
            st = statements(ev, "ReconcilerRole")
        except EvalError as e:
            problem(f"reconciler IAM case {params}: {e}")
            continue
        ssm = as_list(st["ReadWriteEndpointParameters"]["Resource"])
        if sorted(st["ReadWriteEndpointParameters"]["Action"]) != ["ssm:GetParameters", "ssm:PutParameter"]:
            problem("ReconcilerRole: ReadWriteEndpointParameters must allow exactly ssm:GetParameters and ssm:PutParameter")
        inert = {f"{ARN_SSM}/"}  # an unused slot: names no parameter
        if set(ssm) - inert != want_ssm:
            problem(f"ReconcilerRole: SSM resources for {params} are {sorted(set(ssm))}, want {sorted(want_ssm)}")
        if "RedisTargets" in params:
            slot_count = len(ssm)
        if st["DescribeManagedGroups"]["Resource"] != want_describe:
            problem(f"ReconcilerRole: DescribeReplicationGroups resource for {params} is {st['DescribeManagedGroups']['Resource']!r}, want {want_describe!r}")
        if "SecureStringKey" in st:
            problem("ReconcilerRole: grants KMS although SecureStringKmsKeyArn is empty")
        text = json.dumps(st)
        if '"*"' in text.replace('"Resource": "*"', "") or re.search(r'"[a-z0-9]+:\*"', text):
            problem(f"ReconcilerRole: wildcard action in {text}")
    # RedisTargets must not allow more entries than the policy has slots.
    if slot_count:
        pattern = template["Parameters"]["RedisTargets"]["AllowedPattern"]
        too_many = ",".join(f"g{i}=/p{i}" for i in range(slot_count + 1))
        just_enough = ",".join(f"g{i}=/p{i}" for i in range(slot_count))
        if re.fullmatch(pattern, too_many) or not re.fullmatch(pattern, just_enough):
            problem(f"RedisTargets' AllowedPattern must admit at most {slot_count} targets, the slots of the SSM policy")
    # KMS only when asked for, and only through SSM.
    ev = Evaluator(template, {"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/p",
                              "SecureStringKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"})
    kms = statements(ev, "ReconcilerRole").get("SecureStringKey")
    if not kms or sorted(kms["Action"]) != ["kms:Decrypt", "kms:Encrypt"] or "kms:ViaService" not in json.dumps(kms):
        problem("ReconcilerRole: with SecureStringKmsKeyArn set, must allow kms:Decrypt and kms:Encrypt on that key via SSM only")
    # The ElastiCache notification topic: unencrypted, SourceOwner (not SourceAccount) for ElastiCache.
    topic = res["ElastiCacheNotificationTopic"]["Properties"]
    if "KmsMasterKeyId" in topic:
        problem("ElastiCacheNotificationTopic: must not be encrypted (ElastiCache cannot publish to an encrypted topic)")
    policy = Evaluator(template, {"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/p"}).eval(
        res["ElastiCacheNotificationTopicPolicy"]["Properties"]["PolicyDocument"])
    ec = [s for s in policy["Statement"] if s.get("Sid") == "AllowElastiCachePublish"]
    if not ec or "AWS:SourceOwner" not in json.dumps(ec[0]) or "SourceAccount" in json.dumps(ec[0]):
        problem("ElastiCacheNotificationTopicPolicy: ElastiCache's statement must use AWS:SourceOwner, not aws:SourceAccount")


def check_rollback_iam(template: dict) -> None:
    params = {"HostedZoneId": "/hostedzone/Z0123456789ABCDEFGHIJ", "RecordName": "app.example.com",
              "GreenTargetGroupFullName": "targetgroup/app-green/0f3c6a1b2d4e5f67",
              "GreenLoadBalancerFullName": "app/app-prod/50dc6c495c0c9188",
              "ExternalGreenAlarmName": "app-green-health"}
    ev = Evaluator(template, params)
    for bad in ev.check_allowed() + ev.rule_failures():
        problem(f"rollback case: {bad}")
    st = statements(ev, "RollbackRole")
    zone = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
    if st.get("ReadThePair", {}).get("Resource") != zone:
        problem(f"RollbackRole: ListResourceRecordSets must be on {zone}")
    change = st.get("UpsertOnlyThePair", {})
    cond = change.get("Condition", {}).get("ForAllValues:StringEquals", {})
    if change.get("Action") != "route53:ChangeResourceRecordSets" or change.get("Resource") != zone:
        problem(f"RollbackRole: ChangeResourceRecordSets must be on {zone} only")
    if cond.get("route53:ChangeResourceRecordSetsNormalizedRecordNames") != ["app.example.com"] \
            or cond.get("route53:ChangeResourceRecordSetsActions") != ["UPSERT"]:
        problem(f"RollbackRole: ChangeResourceRecordSets needs ForAllValues:StringEquals on the normalized name and UPSERT, got {cond}")
    if st.get("WaitForInsync", {}).get("Resource") != "arn:aws:route53:::change/*":
        problem("RollbackRole: GetChange must be on arn:aws:route53:::change/*")
    # The record name in the IAM condition is compared normalized: lower case, no trailing dot.
    pattern = template["Parameters"]["RecordName"]["AllowedPattern"]
    for bad in ["App.example.com", "app.example.com."]:
        if re.fullmatch(pattern, bad):
            problem(f"RecordName's AllowedPattern admits {bad!r}, which the IAM condition would never match")
    fn = ev.eval(template["Resources"]["BluegreenRollbackFunction"]["Properties"])
    if fn.get("ReservedConcurrentExecutions") != 1:
        problem("BluegreenRollbackFunction: ReservedConcurrentExecutions must be 1")
    # ALARM_NAMES is exactly the set of alarms allowed to invoke the function.
    allowed = {n for n in fn["Environment"]["Variables"]["ALARM_NAMES"].split(",") if n}
    admitted = set()
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::Lambda::Permission" or not ev.active(logical):
            continue
        perm = ev.eval(res["Properties"])
        if perm["Principal"] != "lambda.alarms.cloudwatch.amazonaws.com":
            continue
        if perm.get("SourceAccount") != PSEUDO["AWS::AccountId"] or "SourceArn" not in perm:
            problem(f"{logical}: needs SourceAccount and the alarm's SourceArn")
            continue
        arn = perm["SourceArn"]
        m = re.fullmatch(r"<(\w+)\.Arn>", arn)
        if m:
            admitted.add(ev.eval(template["Resources"][m.group(1)]["Properties"]["AlarmName"]))
        elif arn.startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:") and "*" not in arn:
            admitted.add(arn.rsplit(":alarm:", 1)[1])
        else:
            problem(f"{logical}: SourceArn {arn} is not one alarm")
    if allowed != admitted or len(allowed) != 2:
        problem(f"BluegreenRollbackFunction: ALARM_NAMES {sorted(allowed)} differs from the alarms allowed to invoke it {sorted(admitted)}")


def check_rules(template: dict) -> None:
    """The deploy-time Rules reject the configurations the functions would reject at init."""
    wrong = [
        {},  # nothing to deploy
        {"RedisTargets": "orders=/app/orders/redis", "RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/p"},
        {"RedisReplicationGroupId": "orders"},
        {"RedisEndpointParameterName": "/p"},
        {"HostedZoneId": "Z0123456789ABCDEFGHIJ"},
        {"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/p", "VerifyRole": "true"},
        {"RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/p", "ReconcilerSubnetIds": "subnet-0123456789abcdef0"},
        {"HostedZoneId": "Z0123456789ABCDEFGHIJ", "RecordName": "app.example.com",
         "GreenTargetGroupFullName": "targetgroup/app-green/0f3c6a1b2d4e5f67"},
    ]
    for params in wrong:
        if not Evaluator(template, params).rule_failures():
            problem(f"Rules accept {params or 'no configuration'}, which cannot work")


def check_resources(template: dict) -> None:
    """What checkov is told to skip must still hold, and every skip says why."""
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::SQS::Queue" and props.get("SqsManagedSseEnabled") is not True and "KmsMasterKeyId" not in props:
            problem(f"{logical}: dead-letter queue must be encrypted (SqsManagedSseEnabled: true)")
        if res["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in props:
            problem(f"{logical}: log group needs RetentionInDays")
        for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            if len(str(skip.get("comment", "")).strip()) < 20:
                problem(f"{logical}: checkov skip {skip.get('id')} needs a comment that justifies it")


def check_timeouts(template: dict) -> None:
    p = template["Parameters"]
    settle, timeout = int(p["SettleTimeoutSecs"]["Default"]), int(p["ReconcilerTimeoutSecs"]["Default"])
    if timeout < settle + 25:
        problem(f"ReconcilerTimeoutSecs default {timeout} < SettleTimeoutSecs default {settle} + 25")
    sync, rb = int(p["SyncTimeoutSecs"]["Default"]), int(p["RollbackTimeoutSecs"]["Default"])
    if rb < sync + 20:
        problem(f"RollbackTimeoutSecs default {rb} leaves less than 20 s beyond SyncTimeoutSecs {sync}")


# ---------------------------------------------------------------------------------------------------
# 2. Wired triggers against the sample events
# ---------------------------------------------------------------------------------------------------
def sns_messages(events: dict[str, object]) -> dict[str, object]:
    out = {}
    for name, ev in events.items():
        if isinstance(ev, dict) and isinstance(ev.get("Records"), list) and ev["Records"] \
                and all(r.get("EventSource") == "aws:sns" for r in ev["Records"]):
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


def check_triggers(template: dict, functions: dict[str, tuple[str, dict]]) -> None:
    # Everything switched on, so every trigger the template can wire is checked.
    ev = Evaluator(template, {
        "RedisReplicationGroupId": "orders", "RedisEndpointParameterName": "/app/orders/redis",
        "WatchedPrimaryCacheClusterId": "orders-001", "WatchedReplicaCacheClusterId": "orders-002",
        "HostedZoneId": "Z0123456789ABCDEFGHIJ", "RecordName": "app.example.com",
        "GreenTargetGroupFullName": "targetgroup/app-green/0f3c6a1b2d4e5f67",
        "GreenLoadBalancerFullName": "app/app-prod/50dc6c495c0c9188", "ExternalGreenAlarmName": "app-green-health",
    })
    for bad in ev.check_allowed() + ev.rule_failures():
        problem(f"all-on case: {bad}")
    wired = 0
    for function, (logical, _) in sorted(functions.items()):
        props = ev.eval(template["Resources"][logical]["Properties"])
        events = load_events(function)
        if not events:
            problem(f"{logical}: no sample events in events/{function}/")
            continue
        sns = sns_messages(events)
        for name, trig in (props.get("Events") or {}).items():
            wired += 1
            kind, tprops = trig["Type"], trig.get("Properties", {})
            where = f"{logical} event {name} ({kind})"
            if kind == "SNS":
                if not sns:
                    problem(f"{where}: no SNS record sample (Records[].EventSource aws:sns) in events/{function}/")
                topic = tprops["Topic"]
                if topic == "<ElastiCacheNotificationTopic>" and not any(
                        isinstance(m, dict) and any(k.startswith("ElastiCache:") for k in m) for m in sns.values()):
                    problem(f"{where}: the ElastiCache notification topic is wired, but no sample SNS message has an ElastiCache:* key")
                # Alarms notifying the same topic deliver CloudWatch alarm notifications through it. The
                # reconciler uses their dimensions, so match namespace, dimension names and period.
                notes = [m for m in sns.values() if isinstance(m, dict) and "AlarmName" in m and "Trigger" in m]
                for alarm in alarm_targets(ev, topic):
                    dims = sorted(d["Name"] for d in alarm.get("Dimensions", []))
                    match = [m for m in notes
                             if m["Trigger"].get("Namespace") == alarm["Namespace"]
                             and sorted(d["name"] for d in m["Trigger"].get("Dimensions", [])) == dims
                             and int(m["Trigger"].get("Period", 0)) == int(alarm["Period"])]
                    if not match:
                        problem(f"{where}: alarm {alarm['_logical']} ({alarm['Namespace']} {dims}, {alarm['Period']} s) notifies the topic, "
                                "but no SNS alarm-notification sample has that namespace, those dimensions and that period")
            elif kind == "Schedule":
                if not any(isinstance(e, dict) and e.get("source") == "aws.events" and e.get("detail-type") == "Scheduled Event"
                           for e in events.values()):
                    problem(f"{where}: wired as an EventBridge rule, which delivers source aws.events / detail-type "
                            f"\"Scheduled Event\"; no such sample in events/{function}/")
            elif kind in ("CloudWatchEvent", "EventBridgeRule"):
                pattern = tprops.get("Pattern", {})
                sources, types = as_list(pattern.get("source", [])), as_list(pattern.get("detail-type", []))
                if not any(isinstance(e, dict) and e.get("source") in sources and e.get("detail-type") in types
                           for e in events.values()):
                    problem(f"{where}: no sample with source in {sources} and detail-type in {types}")
            else:
                problem(f"{where}: check_template.py does not know what a {kind} trigger delivers; add a check and a sample")
        # Alarm actions that invoke this function directly deliver the alarm-action payload.
        actions = [e for n, e in events.items() if n.startswith("alarm-action-") and isinstance(e, dict)
                   and e.get("source") == "aws.cloudwatch" and "alarmData" in e]
        for alarm in alarm_targets(ev, f"<{logical}.Arn>"):
            wired += 1
            dims = sorted(d["Name"] for d in alarm.get("Dimensions", []))
            match = [a for a in actions for m in a["alarmData"]["configuration"].get("metrics", [])
                     if (s := m.get("metricStat"))
                     and s["metric"]["namespace"] == alarm["Namespace"] and s["metric"]["name"] == alarm["MetricName"]
                     and sorted(s["metric"].get("dimensions", {})) == dims
                     and int(s["period"]) == int(alarm["Period"]) and s["stat"] == alarm["Statistic"]]
            if not match:
                problem(f"{logical}: alarm {alarm['_logical']} invokes it directly, but no events/{function}/alarm-action-*.json "
                        f"carries that metric ({alarm['Namespace']} {alarm['MetricName']} {dims}, {alarm['Period']} s {alarm['Statistic']})")
        for perm_logical, res in template["Resources"].items():
            if res["Type"] == "AWS::Lambda::Permission" and ev.active(perm_logical):
                perm = ev.eval(res["Properties"])
                if perm["FunctionName"] == f"<{logical}.Arn>" and perm["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com":
                    wired += 1
                    if not actions:
                        problem(f"{perm_logical}: alarms may invoke {logical}, but events/{function}/ has no alarm-action-*.json sample")
                    if perm_logical.startswith("External") and not any("alarmRule" in a["alarmData"]["configuration"] for a in actions):
                        problem(f"{perm_logical}: an external alarm may be composite, but no composite alarm-action sample exists")
    print(f"triggers: {wired} wired triggers checked against events/")


def main() -> int:
    template = load_template()
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        if section not in template:
            problem(f"template has no {section}")
    functions = serverless_functions(template)
    check_environment(template, functions)
    for check in (check_reconciler_iam, check_rollback_iam, check_rules, check_resources, check_timeouts):
        try:
            check(template)
        except (EvalError, KeyError, TypeError) as e:
            problem(f"{check.__name__}: {type(e).__name__}: {e}")
    try:
        check_triggers(template, functions)
    except (EvalError, KeyError, TypeError) as e:
        problem(f"check_triggers: {type(e).__name__}: {e}")
    if problems:
        for p in problems:
            print(f"check_template: {p}", file=sys.stderr)
        print(f"check_template: {len(problems)} problem(s) in {TEMPLATE.relative_to(ROOT)}", file=sys.stderr)
        return 1
    print(f"check_template: {TEMPLATE.relative_to(ROOT)} is consistent with crates/ and events/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
