"""Generic CloudFormation machinery for infra/check_template.py: nothing here knows this project's template.

- CfnLoader / load_template: YAML with CloudFormation's short-form tags (!Ref, !Sub, ...) in their long forms.
- Evaluator: a small evaluator of the intrinsic functions (Ref, Fn::Sub, Fn::If, conditions, Rules, ...) for
  given parameter values, with EvalError, NO_VALUE (AWS::NoValue) and PSEUDO (sample pseudo parameters).
- serverless_functions, statements, ref_parameter, as_list: lookups over a loaded template.

Needs PyYAML (installed with checkov in infra/.venv).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "failover",
    "AWS::URLSuffix": "amazonaws.com",
}

NO_VALUE = object()  # what Ref AWS::NoValue evaluates to; dropped from the lists and mappings around it


class EvalError(Exception):
    pass


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


def load_template(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)  # CfnLoader is a SafeLoader subclass: a safe load


# ---------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------
class Evaluator:
    """The template's intrinsics evaluated for parameter `overrides` (the rest: their Default)."""

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

    def eval(self, node):  # one branch per intrinsic
        if isinstance(node, list):
            out = [self.eval(x) for x in node]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
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
                raise EvalError(f"{key} is not supported by the evaluator in infra/cfn.py")
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


# ---------------------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------------------
def serverless_functions(template: dict) -> dict[str, tuple[str, dict]]:
    """{last path component of CodeUri: (logical id, Properties)} of every AWS::Serverless::Function."""
    out = {}
    for logical, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            out[Path(str(res["Properties"].get("CodeUri", ""))).name] = (logical, res["Properties"])
    return out


def statements(ev: Evaluator, role: str) -> dict[str, dict]:
    """The evaluated policy statements of the AWS::IAM::Role `role`, by Sid ("?" for none)."""
    props = ev.eval(ev.template["Resources"][role]["Properties"])
    out = {}
    for policy in props.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            out[st.get("Sid", "?")] = st
    return out


def ref_parameter(template: dict, node) -> str | None:
    """The parameter `node` is a plain `Ref` to, or None (a literal, another intrinsic, a resource)."""
    if isinstance(node, dict) and list(node) == ["Ref"] and node["Ref"] in template.get("Parameters", {}):
        return node["Ref"]
    return None


def as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def self_test_report(check: str, failed: list[str], mutations: int, started: float) -> int:
    """Print a self-test's outcome, one line per failure or one line that every mutation was
    caught, and return its exit status."""
    for f in failed:
        print(f"{check} self-test: {f}")
    if failed:
        return 1
    print(f"{check} self-test: {mutations} mutations caught ({time.monotonic() - started:.1f} s)")
    return 0
