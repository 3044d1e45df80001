"""Connections: list, add (checked as Airflow's CLI would check them), delete."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from .. import airflow_release
from ..masking import uri_password
from ..runner import Command
from .common import DATA_ENV, airflow, name_arg, one_action, opt
from .model import Api, ApiError, Arg, ArgType, Values

CONNECTION_FIELD_CHARS = 500


#: ``airflow connections add`` validates the id with max_length=200.
CONN_ID_CHARS = 200


#: What Connection(...) takes from --conn-json (anything else is a TypeError in Airflow).
CONN_JSON_KEYS = frozenset({"conn_type", "description", "host", "login", "password", "schema", "port", "extra", "uri"})


#: The CLI refuses these beside --conn-uri or --conn-json.
_CONN_FIELDS = ("conn_type", "conn_host", "conn_login", "conn_password", "conn_port", "conn_schema")


def _check_uri(uri: str) -> None:
    """What Airflow's Connection(uri=...) needs: a scheme, a host part that parses, a whole-number port."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ApiError(400, f"'conn_uri' is not a valid URI: {exc}") from None
    if not parts.scheme or not parts.netloc:
        raise ApiError(400, "'conn_uri' must look like scheme://[login[:password]@]host[:port][/schema]")


def _check_conn_json(document: dict[str, Any]) -> None:
    """What Airflow's Connection.from_json needs: known keys, a whole-number port, ``extra`` as an object,
    a valid ``uri`` (alone), and a ``conn_type`` unless the uri carries one."""
    unknown = sorted(set(document) - CONN_JSON_KEYS)
    if unknown:
        raise ApiError(400, f"'conn_json' has unknown key(s) {unknown}; known: {', '.join(sorted(CONN_JSON_KEYS))}")
    if "uri" in document and set(document) - {"uri", "description", "extra"}:
        raise ApiError(400, "'conn_json' gives either a uri or the separate fields, not both")
    if "uri" not in document and not document.get("conn_type"):
        raise ApiError(400, "'conn_json' needs a conn_type")
    for key in ("conn_type", "description", "host", "login", "password", "schema"):
        if document.get(key) is not None and not isinstance(document[key], str):
            raise ApiError(400, f"'conn_json' {key} must be a string")
    port = document.get("port")
    if port is not None and not re.fullmatch(r"[0-9]{1,5}", str(port) if not isinstance(port, bool) else ""):
        raise ApiError(400, "'conn_json' port must be a whole number from 0 to 65535")
    extra = document.get("extra")
    if isinstance(extra, str) and extra.strip():
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = None
        if not isinstance(extra, dict):
            raise ApiError(400, "'conn_json' extra must be a JSON object (or a string holding one)")
    elif extra is not None and not isinstance(extra, dict | str):
        raise ApiError(400, "'conn_json' extra must be a JSON object (or a string holding one)")
    if "uri" in document:
        if not isinstance(document["uri"], str):
            raise ApiError(400, "'conn_json' uri must be a string")
        _check_uri(document["uri"])


def build_connections(v: Values) -> Command:
    action = one_action("connections", v, ("list", "add", "delete"))
    if action in ("add", "delete") and "conn_id" not in v:
        raise ApiError(400, f"connections {action} needs 'conn_id'")
    if action == "delete":
        return airflow("connections", "delete", "--", v["conn_id"])
    if action == "add":
        if not any(k in v for k in ("conn_uri", "conn_type", "conn_json")):
            raise ApiError(400, "connections add needs 'conn_uri', 'conn_type' or 'conn_json'")
        whole = [k for k in ("conn_uri", "conn_json") if k in v]
        others = [k for k in (*_CONN_FIELDS, *(("conn_extra",) if "conn_json" in v else ())) if k in v]
        if len(whole) > 1 or (whole and others):
            raise ApiError(
                400, f"'{whole[0]}' gives the whole connection; it cannot go with {', '.join(whole[1:] + others)}"
            )
        if "conn_uri" in v:
            _check_uri(v["conn_uri"])
        if "conn_json" in v:
            _check_conn_json(v["conn_json"])
        secrets = tuple(s for s in (uri_password(v.get("conn_uri", "")), v.get("conn_password")) if s)
        if "conn_json" in v and v["conn_json"].get("password"):
            secrets += (str(v["conn_json"]["password"]),)
        flags = [
            *opt("--conn-uri", v.get("conn_uri")),
            *opt("--conn-json", v.get("conn_json")),
            *opt("--conn-type", v.get("conn_type")),
            *opt("--conn-host", v.get("conn_host")),
            *opt("--conn-login", v.get("conn_login")),
            *opt("--conn-password", v.get("conn_password")),
            *opt("--conn-port", v.get("conn_port")),
            *opt("--conn-schema", v.get("conn_schema")),
            *opt("--conn-extra", v.get("conn_extra")),
            *opt("--conn-description", v.get("conn_description")),
        ]
        return airflow("connections", "add", *flags, "--", v["conn_id"], secrets=secrets)
    if airflow_release.series() < (3, 2):  # 3.1's list prints passwords and URIs, with no option to leave them out
        return Command(argv=("connections-list",), helper=True, env=DATA_ENV)
    return airflow("connections", "list", "-o", "json")


APIS: tuple[Api, ...] = (
    Api(
        name="connections",
        summary="List/Add/Delete connections",
        runs="airflow connections list|add|delete",
        notes="On Airflow 3.1 the list is a gateway helper: 3.1's `connections list` prints every password.",
        args=(
            Arg("list", ArgType.BOOL, "List all connections (ids and types; no secrets)"),
            Arg("add", ArgType.BOOL, "Add a connection"),
            Arg("delete", ArgType.BOOL, "Delete a connection"),
            Arg("conn_id", ArgType.ID, "Connection id, required to add/delete a connection", max_chars=CONN_ID_CHARS),
            Arg("conn_uri", ArgType.TEXT, "Connection URI, to add a connection", secret=True),
            name_arg("conn_type", "Connection type, to add a connection without a URI", CONNECTION_FIELD_CHARS),
            Arg("conn_json", ArgType.JSON_OBJECT, "The whole connection as JSON, to add a connection", secret=True),
            Arg("conn_extra", ArgType.JSON_OBJECT, "Connection 'Extra' field (JSON object)"),
            name_arg("conn_host", "Host", CONNECTION_FIELD_CHARS),
            name_arg("conn_login", "Login", CONNECTION_FIELD_CHARS),
            Arg("conn_password", ArgType.TEXT, "Password", secret=True),
            Arg("conn_port", ArgType.INT, "Port", max_value=65535),
            name_arg("conn_schema", "Schema", CONNECTION_FIELD_CHARS),
            Arg("conn_description", ArgType.TEXT, "Description"),
        ),
        build=build_connections,
        fast_path=True,
        since="1.8.0 or greater",
    ),
)
