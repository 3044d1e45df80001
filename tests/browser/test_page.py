"""The test page in a real headless Chromium (Debian's), driven by playwright.

Needs /usr/bin/chromium (./run.sh test installs it); without it these tests are skipped, loudly.
Screenshots go to test-artifacts/ (not committed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.runner import WarmRunner

from ..support import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, TOKEN, assert_nothing_left, dag_source, settings_dict

pytestmark = pytest.mark.integration

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the test extra installs it
    async_playwright = None  # type: ignore[assignment]

if CHROMIUM is None or async_playwright is None:
    pytest.skip(
        "\n\n*** Chromium or playwright is missing: the browser tests are SKIPPED (./run.sh test installs them) ***\n",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        await browser.close()


@pytest.fixture
async def open_page(aiohttp_client: Any, airflow_home: Path, warm_backend: WarmRunner, browser: Browser) -> Any:
    pages: list[Page] = []

    async def open_page(**sections: Any) -> tuple[Page, TestClient]:
        for _ in range(1200):  # the session's fork server may still be warming up
            if warm_backend.ready:
                break
            await asyncio.sleep(0.1)
        settings = parse_settings(settings_dict(airflow_home, runner={"mode": "warm"}, **sections))
        client = await aiohttp_client(create_app(settings, backend=warm_backend))
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        pages.append(page)
        base = settings.server.base_path
        await page.goto(f"http://127.0.0.1:{client.server.port}{base}/admin/rest_api/")
        return page, client

    yield open_page
    for page in pages:
        await page.close()


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


async def enter_token(page: Page, token: str = TOKEN) -> None:
    await page.fill("#token", token)


async def test_version_with_a_token_and_the_security_headers(open_page: Any) -> None:
    page, _ = await open_page()
    response = await page.request.get(page.url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    await enter_token(page)
    form = page.locator('form[data-api="version"]')
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output .status")).to_contain_text("OK · HTTP 200")
    await expect(form.locator(".output pre.stdout")).to_contain_text("3.3.2")
    assert await page.evaluate("sessionStorage.getItem('airflow-rest-gateway-token')") == TOKEN
    assert TOKEN not in page.url


async def test_a_wrong_token_is_shown_clearly(open_page: Any) -> None:
    page, _ = await open_page()
    await enter_token(page, "not-the-token")
    form = page.locator('form[data-api="version"]')
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output .hint")).to_contain_text("403: the token was refused")
    await screenshot(page, "wrong-token")


async def test_a_streamed_task_shows_lines_before_the_end(open_page: Any) -> None:
    page, _ = await open_page()
    await enter_token(page)
    form = page.locator('form[data-api="test"]')
    await form.locator('input[name="dag_id"]').fill("gw_probe")
    await form.locator('input[name="task_id"]').fill("slow")
    await form.locator('input[name="execution_date"]').fill("2024-12-12")
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output pre.live")).to_contain_text("tick 1")
    # The first line is on screen while the command still runs: the result is not there yet.
    assert await form.locator(".output .status").first.inner_text() == "running…"
    await form.scroll_into_view_if_needed()
    await screenshot(page, "streaming-in-progress")
    await expect(form.locator(".output .status").first).to_contain_text("OK · HTTP 200", timeout=30_000)
    await expect(form.locator(".output pre.live")).to_contain_text("tick 3")


async def test_cancel_stops_the_run(open_page: Any) -> None:
    page, _ = await open_page()
    await enter_token(page)
    form = page.locator('form[data-api="test"]')
    await form.locator('input[name="dag_id"]').fill("gw_probe")
    await form.locator('input[name="task_id"]').fill("slow")
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output pre.live")).to_contain_text("tick 1")
    await form.locator("button.cancel").click()
    await expect(form.locator(".output .status").first).to_contain_text("cancelled")
    await asyncio.to_thread(assert_nothing_left, 2.0)


async def test_upload_a_dag_file(open_page: Any, tmp_path: Path, airflow_home: Path) -> None:
    page, _ = await open_page()
    await enter_token(page)
    dag_id = f"from_the_page_{tmp_path.name[-8:].replace('-', '_')}"
    dag_file = tmp_path / f"{dag_id}.py"
    dag_file.write_text(dag_source(dag_id))
    form = page.locator('form[data-api="deploy_dag"]')
    await form.locator('input[name="dag_file"]').set_input_files(str(dag_file))
    await form.locator('input[name="unpause"]').check()
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output .status")).to_contain_text("OK · HTTP 200", timeout=30_000)
    await expect(form.locator(".output pre.data")).to_contain_text(dag_id)
    assert (airflow_home / "dags" / dag_file.name).exists()


async def test_a_background_job_is_listed_and_followed(open_page: Any) -> None:
    page, _ = await open_page()
    await enter_token(page)
    form = page.locator('form[data-api="list_tasks"]')
    await form.locator('input[name="dag_id"]').fill("gw_probe")
    await form.locator("input.async").check()
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output .job")).to_contain_text("started")
    row = page.locator("#jobs-table tbody tr").first
    await expect(row).to_contain_text("list_tasks")
    await row.locator("button", has_text="Follow").click()
    await expect(page.locator("#jobs-log")).to_contain_text("hello")
    await expect(page.locator("#jobs-log")).to_contain_text("[succeeded]")


async def test_text_from_airflow_is_escaped(open_page: Any) -> None:
    page, _ = await open_page()
    await enter_token(page)
    form = page.locator('form[data-api="variables"]')
    await form.locator('input[name="set"]').fill("xss_probe")
    await form.locator('input[name="set_value"]').fill('<img src=x id="injected">')
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output .status")).to_contain_text("OK")
    await form.locator('input[name="set"]').fill("")
    await form.locator('input[name="set_value"]').fill("")
    await form.locator('input[name="get"]').fill("xss_probe")
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output pre.data")).to_contain_text('<img src=x id=\\"injected\\">')
    assert await page.locator("#injected").count() == 0


async def test_the_page_under_a_base_path_and_the_filter(open_page: Any) -> None:
    page, _ = await open_page(server={"base_path": "/airflow-gw"})
    await enter_token(page)
    await page.fill("#filter", "pool")
    assert await page.locator('section.api[data-name="pool"]').is_visible()
    assert not await page.locator('section.api[data-name="version"]').is_visible()
    await page.fill("#filter", "")
    form = page.locator('form[data-api="version"]')
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".output .status")).to_contain_text("OK · HTTP 200")
    assert await form.get_attribute("action") == "/airflow-gw/admin/rest_api/api?api=version"
    await screenshot(page, "page-under-base-path")


async def test_the_openapi_page_renders_every_operation_without_a_cdn(
    aiohttp_client: Any, airflow_home: Path, browser: Browser
) -> None:
    settings = parse_settings(settings_dict(airflow_home, runner={"mode": "exec"}))
    client = await aiohttp_client(create_app(settings))
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: None if "127.0.0.1" in request.url else problems.append(request.url))
    try:
        await page.goto(f"http://127.0.0.1:{client.server.port}/docs/")
        await expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
        document = await (await client.get("/openapi.json")).json()
        operations = sum(len(item) for item in document["paths"].values())
        assert await page.locator(".opblock").count() == operations
        await screenshot(page, "openapi-docs")
    finally:
        await page.close()
    assert problems == []  # no CSP violation, nothing fetched from elsewhere
