"""Read template.yaml and resolve its intrinsics against the local resources.

The template is the one source of truth for names, keys, queues and routes: the
local stack and the unit-test fixtures read it here instead of keeping a copy.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfn_flip import load_yaml

log = logging.getLogger("local.template")

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "cohortcast-local"
API_ID = "local"
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
# A Sub of the deployed API URL is rewritten to the local gateway so links in emails open locally.
_DEPLOYED_API_URL = re.compile(rf"https://{API_ID}\.execute-api\.{REGION}\.amazonaws\.com")


def load_template(path: Path | str | None = None) -> dict[str, Any]:
    """The SAM template as plain data; short-form intrinsics become {"Ref": ..} / {"Fn::..": ..}."""
    path = path or os.environ.get("COHORTCAST_LOCAL_TEMPLATE") or TEMPLATE_PATH
    data = load_yaml(Path(path).read_text())
    return _plain(data)


def _plain(value: Any) -> Any:
    # cfn-flip returns ordered-dict subclasses; plain containers are simpler to compare and dump.
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def resources_of(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if not types or resource.get("Type") in types
    }


def function_arn(logical_id: str) -> str:
    """Local functions are named by logical id, so scheduler targets map back to them."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{logical_id}"


@dataclass
class Resources:
    """What each logical id resolves to locally: `Ref` values and `Fn::GetAtt` attributes."""

    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    api_url: str = "http://127.0.0.1:3000"

    # -- convenience accessors for tests and the stack
    def name(self, logical_id: str) -> str:
        return self.attributes.get(logical_id, {}).get("Name") or self.refs[logical_id]

    def arn(self, logical_id: str) -> str:
        return self.attributes[logical_id]["Arn"]

    def url(self, logical_id: str) -> str:
        """A queue's URL (its `Ref`)."""
        return self.refs[logical_id]

    def stream_arn(self, logical_id: str) -> str:
        return self.attributes[logical_id]["StreamArn"]

    def set(self, logical_id: str, ref: str, **attributes: str) -> None:
        self.refs[logical_id] = ref
        self.attributes.setdefault(logical_id, {}).update(attributes)

    # -- intrinsic functions
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(i)) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.conditions.get(condition) else when_false)
            if key == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b"]
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"cannot resolve Ref {name}: not provisioned locally")

    def _get_att(self, arg: Any) -> str:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise KeyError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}") from None

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is an escaped ${Literal}
            if name in resolved:
                return str(resolved[name])
            if "." in name:
                return str(self._get_att(name))
            return str(self._ref(name))

        result = re.sub(r"\$\{([^}]+)\}", substitute, text)
        return _DEPLOYED_API_URL.sub(self.api_url, result)


def parameter_defaults(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Parameters as CloudFormation passes them to Ref: strings (lists joined by commas)."""
    values: dict[str, str] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if "Default" in spec:
            default = spec["Default"]
            values[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
    values.update(overrides or {})
    return values


def evaluate_conditions(template: dict[str, Any], resources: Resources) -> dict[str, bool]:
    """Evaluate the template's Conditions (Fn::Equals/Not/And/Or/Condition) once, in any order."""
    definitions = template.get("Conditions") or {}
    results: dict[str, bool] = {}

    def evaluate(node: Any) -> bool:
        ((key, arg),) = node.items()
        if key == "Condition":
            if arg not in results:
                results[arg] = evaluate(definitions[arg])
            return results[arg]
        if key == "Fn::Equals":
            left, right = (resources.resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not evaluate(arg[0])
        if key == "Fn::And":
            return all(evaluate(a) for a in arg)
        if key == "Fn::Or":
            return any(evaluate(a) for a in arg)
        raise ValueError(f"unsupported condition function {key}")

    for name in definitions:
        evaluate({"Condition": name})
    return results


# ------------------------------------------------------------------ functions


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: str  # folder under functions/, e.g. "ingest"
    handler: str  # "app.lambda_handler"
    memory_mb: int
    timeout_s: int
    events: dict[str, dict[str, Any]]

    @property
    def module(self) -> str:
        return f"functions.{self.code_dir}.{self.handler.rsplit('.', 1)[0]}"

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def arn(self) -> str:
        return function_arn(self.logical_id)

    def events_of(self, *types: str) -> dict[str, dict[str, Any]]:
        return {name: event for name, event in self.events.items() if event.get("Type") in types}


def functions(template: dict[str, Any]) -> list[FunctionSpec]:
    defaults = (template.get("Globals") or {}).get("Function") or {}
    specs = []
    for logical_id, resource in resources_of(template, *FUNCTION_TYPES).items():
        props = resource.get("Properties") or {}
        code_uri = str(props.get("CodeUri") or defaults.get("CodeUri") or "")
        parts = [p for p in code_uri.strip("/").split("/") if p]
        if len(parts) != 2 or parts[0] != "functions":
            log.warning("skipping %s: CodeUri %r is not functions/<dir>/", logical_id, code_uri)
            continue
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_dir=parts[1],
                handler=str(props.get("Handler") or defaults.get("Handler") or "app.lambda_handler"),
                memory_mb=int(props.get("MemorySize") or defaults.get("MemorySize") or 128),
                timeout_s=int(props.get("Timeout") or defaults.get("Timeout") or 3),
                events=props.get("Events") or {},
            )
        )
    return specs


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def function_environment(template: dict[str, Any], logical_id: str, resources: Resources) -> dict[str, str]:
    """Globals.Function.Environment merged with the function's own, resolved to strings."""
    defaults = (template.get("Globals") or {}).get("Function") or {}
    props = template["Resources"][logical_id].get("Properties") or {}
    merged = {
        **((defaults.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }
    resolved = resources.resolve(merged)
    return {name: _env_string(value) for name, value in resolved.items() if value is not None}


def all_function_environments(template: dict[str, Any], resources: Resources) -> dict[str, dict[str, str]]:
    return {
        spec.logical_id: function_environment(template, spec.logical_id, resources)
        for spec in functions(template)
    }


def union_environment(environments: dict[str, dict[str, str]]) -> dict[str, str]:
    """All functions' variables in one dict (one process hosts them all); conflicts are logged."""
    union: dict[str, str] = {}
    for logical_id, env in environments.items():
        for name, value in env.items():
            if name in union and union[name] != value and name != "POWERTOOLS_SERVICE_NAME":
                log.warning(
                    "%s sets %s=%r, another function %r; keeping the last",
                    logical_id,
                    name,
                    value,
                    union[name],
                )
            union[name] = value
    return union
