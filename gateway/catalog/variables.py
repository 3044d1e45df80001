"""Variables: list, get, set, delete, import, export."""

from __future__ import annotations

import json

from ..masking import SENSITIVE_KEY
from ..output import parse_json
from ..runner import Command
from .common import DATA_ENV, airflow, name_arg, one_action, opt
from .model import Api, ApiError, Arg, ArgType, Outcome, Values

#: Airflow's column sizes: longer values fail in the database (PostgreSQL) or are cut.
VARIABLE_KEY_CHARS = 250


def is_sensitive(key: str | None) -> bool:
    """Airflow's rule: a variable whose name says it holds a secret (``db_password``, ``api_key``) is redacted
    in its REST API's answers; the gateway answers the same way."""
    return bool(key) and SENSITIVE_KEY.search(key) is not None


def secret_values(values: Values) -> tuple[str, ...]:
    if is_sensitive(values.get("set") or values.get("key")):
        return tuple(v for v in (values.get("set_value"), values.get("value")) if v)
    return ()


def read_variable(values: Values, stdout: str) -> Outcome:
    if "get" not in values:
        return Outcome(data=parse_json(stdout))  # an export's password-like keys are masked by the gateway
    value = stdout[:-1] if stdout.endswith("\n") else stdout
    secrets = (value,) if is_sensitive(values["get"]) and value else ()
    if not values.get("json"):
        return Outcome(data=value, secrets=secrets)
    try:
        return Outcome(data=json.loads(value), secrets=secrets)
    except ValueError:
        warning = f"Variable {values['get']!r} does not hold valid JSON; returned as text"
        return Outcome(data=value, warning=warning, secrets=secrets)


def build_variables(v: Values) -> Command:
    if v.get("cmd") == "set" or "key" in v or "value" in v:
        if "set" in v:
            raise ApiError(
                400, "Give the variable either as set=KEY&set_value=VALUE or as cmd=set&key=KEY&value=VALUE, not both"
            )
        if v.get("cmd") != "set":
            raise ApiError(400, "'key' and 'value' go with cmd=set")
        v = {**v, "set": v.get("key"), "set_value": v.get("value")}
        if v["set"] is None:
            raise ApiError(400, "cmd=set needs 'key'")
    action = one_action("variables", v, ("set", "get", "delete", "import", "export"))
    if action == "set":
        if v.get("set_value") is None:
            raise ApiError(400, "Setting a variable needs 'set_value' (or cmd=set&key=..&value=..)")
        return airflow("variables", "set", *opt("--description", v.get("description")), "--", v["set"], v["set_value"])
    if action == "get":
        # Not `--json`: Airflow then prints a Python repr. The value is fetched raw and decoded in variable_get.
        return airflow("variables", "get", *opt("--default", v.get("default")), "--", v["get"])
    if action == "delete":
        return airflow("variables", "delete", "--", v["delete"])
    if action == "import":
        return Command(
            argv=(
                "variables",
                "import",
                *opt("--action-on-existing-key", v.get("action_on_existing_key")),
                "--",
                "{file:variables.json}",
            ),
            env=DATA_ENV,
            files={"variables.json": v["import"].content},
        )
    if action == "export":
        return airflow("variables", "export", "-")
    return airflow("variables", "list", "-o", "json")


APIS: tuple[Api, ...] = (
    Api(
        name="variables",
        summary="CRUD operations on variables",
        runs="airflow variables list|set|get|delete|import|export",
        args=(
            name_arg("set", "Sets a variable: the key. Needs set_value", VARIABLE_KEY_CHARS),
            Arg("set_value", ArgType.TEXT, "The value of the variable (with set)"),
            Arg("cmd", ArgType.CHOICE, "cmd=set with key and value: the plugin form's way to set", choices=("set",)),
            name_arg("key", "Variable key (with cmd=set)", VARIABLE_KEY_CHARS),
            Arg("value", ArgType.TEXT, "Variable value (with cmd=set)"),
            Arg("description", ArgType.TEXT, "Description stored with a variable being set"),
            name_arg("get", "Get the value of a variable", VARIABLE_KEY_CHARS),
            Arg("json", ArgType.BOOL, "Deserialize the JSON value of the variable (with get)"),
            Arg("default", ArgType.TEXT, "Value returned if the variable does not exist (with get)"),
            Arg("import", ArgType.JSON_DOCUMENT, "Import variables: an uploaded .json file or a JSON object"),
            Arg(
                "action_on_existing_key",
                ArgType.CHOICE,
                "On import, what to do with keys that exist",
                choices=("overwrite", "fail", "skip"),
            ),
            Arg("export", ArgType.BOOL, "Export all variables; the JSON is returned in the response"),
            name_arg("delete", "Delete a variable", VARIABLE_KEY_CHARS),
        ),
        build=build_variables,
        parse=read_variable,
        secrets=secret_values,
        fast_path=True,
        since="1.7.1 or greater",
        notes="With no action it lists variable keys. import/export never touch server paths.",
    ),
)
