"""The OpenAPI document: valid against the 3.1 meta-schema, complete for the catalog and the route tables, no secret."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.api import FAMILIES, openapi, page
from gateway.catalog import APIS, ArgType
from gateway.config import parse_settings
from gateway.job_table import DEFAULT_LIMIT, MAX_LIMIT
from gateway.openapi import DATE_PATTERN, ID_PATTERN, RUN_ID_NOT_DATE_PATTERN, document
from gateway.protocol import answer_protocol_errors_as_json

from ..support import AUTH, TOKEN, settings_dict

#: Routes that are pages or their assets, not API operations.
PAGES = {page.routes, openapi.routes}


async def test_the_served_document_is_valid_openapi_3_1_with_no_secret(make: Any) -> None:
    client = await make()
    resp = await client.get("/openapi.json")  # no token
    assert resp.status == 200
    doc = await resp.json()
    OpenAPIV31SpecValidator(doc).validate()
    assert doc["openapi"].startswith("3.1")
    assert TOKEN not in await resp.text()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["token"] == {"type": "apiKey", "in": "header", "name": next(iter(AUTH))}
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}


async def test_under_base_path(make: Any) -> None:
    client = await make(server={"base_path": "/airflow-gw"})
    resp = await client.get("/airflow-gw/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["servers"] == [{"url": "/airflow-gw"}]
    proxied = await make(server={"trusted_proxies": ["127.0.0.1"]})
    resp = await proxied.get("/openapi.json", headers={"X-Forwarded-Prefix": "/gw"})
    assert (await resp.json())["servers"] == [{"url": "/gw"}]  # where the client reached it


def test_every_api_has_its_operations_with_its_accepted_arguments() -> None:
    doc = document(parse_settings(settings_dict()))
    dispatcher = doc["paths"]["/admin/rest_api/api"]
    with_get = [api.name for api in APIS if "GET" in api.methods and not any(a.type is ArgType.FILE for a in api.args)]
    assert dispatcher["get"]["parameters"][0]["schema"]["enum"] == with_get
    branches = {
        b["properties"]["api"]["const"]
        for b in dispatcher["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    }
    assert branches == {api.name for api in APIS if not any(a.type is ArgType.FILE for a in api.args)}
    for api in APIS:
        item = doc["paths"][f"/admin/rest_api/api/{api.name}"]
        assert {method.upper() for method in item} == set(api.methods) - (
            {"GET"} if api.name == "deploy_dag" else set()
        )
        accepted = {arg.name: arg for arg in api.args if arg.accepted}
        body = next(iter(item["post"]["requestBody"]["content"].values()))["schema"]
        assert set(body["properties"]) == set(accepted)
        assert set(body.get("required", [])) == {name for name, arg in accepted.items() if arg.required}
        if "get" in item:
            query = {p["name"]: p for p in item["get"]["parameters"]}
            assert set(query) == set(accepted)
            assert {name for name, p in query.items() if p["required"]} == set(body.get("required", []))
            for name, arg in accepted.items():
                if arg.type is ArgType.CHOICE:
                    assert query[name]["schema"]["anyOf"][0]["enum"] == list(arg.choices)


def test_every_route_is_described() -> None:
    """The route tables and the document cannot drift apart: every API route is an operation."""
    doc = document(parse_settings(settings_dict()))
    for family in FAMILIES:
        for table in family.routes:
            if table in PAGES:
                continue
            for route in table:
                assert isinstance(route, web.RouteDef)
                path = (family.prefix + route.path).rstrip("/") or "/"
                methods = ("get", "post") if route.method == "*" else (route.method.lower(),)
                for method in methods:
                    if route.path == "/api/{api}" and family.name == "plugin":
                        continue  # one concrete path per API, checked above
                    assert method in doc["paths"].get(path, {}), f"{route.method} {path} is not in the document"


def test_patterns_agree_with_the_validation() -> None:
    for good in ("gw_probe", "a.b-c", "X9"):
        assert re.fullmatch(ID_PATTERN.strip("^$"), good)
    for bad in ("-x", "a b", "a/b"):
        assert not re.fullmatch(ID_PATTERN.strip("^$"), bad)
    for date in ("2024-01-01", "2024-06-01T00:00:00+00:00", "2017-01-02T03:04:05.123456Z"):
        assert re.fullmatch(DATE_PATTERN.strip("^$"), date)
    for not_date in ("0999-01-01", "9999-12-31", "2024-13-01"):
        assert not re.fullmatch(DATE_PATTERN.strip("^$"), not_date)
    assert re.fullmatch(RUN_ID_NOT_DATE_PATTERN.strip("^$"), "manual__x")
    assert not re.fullmatch(RUN_ID_NOT_DATE_PATTERN.strip("^$"), "2024-01-01_x")


async def test_the_docs_page_is_served_without_a_cdn(make: Any) -> None:
    client = await make()
    resp = await client.get("/docs/")
    assert resp.status == 200
    html = await resp.text()
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", html)
    assert len(assets) == 4  # the inline empty icon, the style, two scripts
    for url in assets:
        if url.startswith("data:"):
            continue
        asset = await client.get(url)
        assert asset.status == 200 and len(await asset.read()) > 100
    assert 'data-spec-url="/openapi.json"' in html
    assert (await client.get("/docs/static/..%2Fconfig.py")).status == 404
    assert json.loads(await (await client.get("/openapi.json")).text())["info"]["title"] == "airflow-rest-gateway"


def resolved(schema: Any, doc: dict[str, Any]) -> Any:
    """``schema`` with its ``#/components/schemas/...`` references replaced by what they name."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return resolved(doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], doc)
        return {key: resolved(value, doc) for key, value in schema.items()}
    return [resolved(item, doc) for item in schema] if isinstance(schema, list) else schema


def plugin_operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, operation)
        for path, item in doc["paths"].items()
        if path.startswith("/admin/rest_api/api")
        for operation in item.values()
    ]


def test_a_plugin_operations_400_is_the_envelope_or_the_protocol_error() -> None:
    """What aiohttp's parser refuses is answered before any route (gateway/protocol.py): {"error"}, not the envelope."""
    doc = document(parse_settings(settings_dict()))
    operations = plugin_operations(doc)
    assert len(operations) > len(APIS)  # every API's operations and the dispatcher's
    for path, operation in operations:
        bad_request = operation["responses"]["400"]
        assert "not valid HTTP" in bad_request["description"], path
        schema = bad_request["content"]["application/json"]["schema"]
        assert {"$ref": "#/components/schemas/Envelope"} in schema["anyOf"], path
        assert {"$ref": "#/components/schemas/Error"} in schema["anyOf"], path


async def test_both_400s_on_a_plugin_path_are_what_the_document_says(make: Any, monkeypatch: Any) -> None:
    """A real parser refusal (a request line past aiohttp's limit) and a real refusal in the envelope."""
    monkeypatch.setattr(RequestHandler, "handle_error", RequestHandler.handle_error)  # put back after the test
    answer_protocol_errors_as_json()
    client = await make()
    doc = await (await client.get("/openapi.json")).json()
    schema = resolved(doc["paths"]["/admin/rest_api/api/version"]["get"]["responses"]["400"], doc)
    validator = Draft202012Validator(schema["content"]["application/json"]["schema"])

    too_long = "a" * 20_000  # past aiohttp's 8,190 bytes for a line or a header
    for request in (
        f"GET /admin/rest_api/api/version?x={too_long} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /admin/rest_api/api/version HTTP/1.1\r\nHost: x\r\nX-Big: {too_long}\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(request.encode())
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()
        assert head.split(b" ")[1] == b"400", head
        malformed = json.loads(body)
        assert set(malformed) == {"error"} and malformed["error"].startswith("400 Bad Request")
        validator.validate(malformed)

    resp = await client.get("/admin/rest_api/api/version", params={"bogus": "1"}, headers=AUTH)
    assert resp.status == 400
    refusal = await resp.json()
    assert refusal["status"] == "ERROR"
    validator.validate(refusal)


def test_the_job_list_documents_its_pages() -> None:
    doc = document(parse_settings(settings_dict()))
    listing = doc["paths"]["/api/jobs"]["get"]
    parameters = {parameter["name"]: parameter["schema"] for parameter in listing["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    assert parameters["before"]["type"] == "string"
    assert "next" in doc["components"]["schemas"]["JobList"]["properties"]
