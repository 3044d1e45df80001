"""The OpenAPI document: valid against the 3.1 meta-schema, complete for the catalog and the route tables, no secret."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.api import FAMILIES, openapi, page
from gateway.catalog import APIS, ArgType
from gateway.config import parse_settings
from gateway.openapi import DATE_PATTERN, ID_PATTERN, RUN_ID_NOT_DATE_PATTERN, document

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
