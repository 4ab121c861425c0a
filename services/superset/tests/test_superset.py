"""Superset as the platform runs it: the real Superset (its own environment), signing in through the real
Keycloak in Debian's Chromium, its dashboards over runs made through the platform's API, the roles the
realm's groups give, the OAuth checks, logout, and the dashboards' import."""

from __future__ import annotations

import asyncio
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.support.browser import KEYCLOAK_FORM, keycloak_sign_in_async
from tests.support.common import asyncpg_dsn
from tests.support.executor import Platform
from tests.support.keycloak import LocalKeycloak, keycloak
from tests.support.superset import SupersetServer, artifacts_dir, is_on

__all__ = ["keycloak"]

# The module's first test also waits for Superset's setup (install check, migrate, init, import, start):
# minutes on a loaded two-core machine.
pytestmark = pytest.mark.timeout(1800)

RUNS_DASHBOARD = "nbp-runs"


# --- signing in --------------------------------------------------------------------------------------


async def sign_in(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak, username: str, *, button: bool = False
) -> Any:
    """A browser context signed in as ``username`` through Keycloak's own form: from Superset's login page
    and its Keycloak button (``button``), or from the address that button leads to."""
    context = await new_context(browser, superset)
    page = await context.new_page()
    if button:
        await page.goto("/login/")
        # The button works once the page's scripts have run; a click before that goes nowhere.
        await page.wait_for_load_state("networkidle")
        await page.get_by_text("Sign in with Keycloak").click()
    else:
        await page.goto("/login/keycloak", wait_until="commit")
    await page.wait_for_url(lambda url: url.startswith(keycloak.url), wait_until="commit")
    await finish_sign_in(page, superset, keycloak, username)
    return context


async def finish_sign_in(page: Any, superset: SupersetServer, keycloak: LocalKeycloak, username: str) -> None:
    """Sign in on Keycloak's form, shown or about to be shown in ``page``, and wait to be back in Superset,
    signed in; a sign-in that ends elsewhere (back on the login page: Superset refused it) fails at once,
    saying where and what the page said."""
    await keycloak_sign_in_async(page, username, keycloak.user_password)
    await page.wait_for_url(
        lambda url: is_on(url, superset.url) and "/oauth-authorized" not in url, wait_until="commit"
    )
    if "/login" in page.url:
        await page.wait_for_load_state()
        said = (await page.locator("body").inner_text())[:500]
        raise AssertionError(f"signing in as {username} ended on {page.url}: {said!r}")


async def new_context(browser: Any, superset: SupersetServer) -> Any:
    """A browser context of its own (cookies), patient: two shared cores make Superset's pages slow."""
    context = await browser.new_context(base_url=superset.url)
    context.set_default_timeout(180_000)
    context.set_default_navigation_timeout(180_000)
    return context


async def roles_of(context: Any) -> set[str]:
    """The signed-in user's Superset roles, besides ``Public``: every user holds that one (the
    registration role), and it grants nothing (``PUBLIC_ROLE_LIKE = None``; erin's test shows it)."""
    response = await context.request.get("/api/v1/me/roles/")
    assert response.status == 200, await response.text()
    roles = set((await response.json())["result"]["roles"])
    assert "Public" in roles
    return roles - {"Public"}


async def signed_in(context: Any) -> bool:
    response = await context.request.get("/api/v1/me/")
    return bool(response.status == 200)


async def session_cookie(context: Any, superset: SupersetServer) -> str:
    cookies = {c["name"]: c["value"] for c in await context.cookies(superset.url)}
    return cookies["nbp_superset_session"]


async def csrf_headers(context: Any) -> dict[str, str]:
    response = await context.request.get("/api/v1/security/csrf_token/")
    assert response.status == 200, await response.text()
    return {"X-CSRFToken": (await response.json())["result"]}


# --- runs made through the platform's API ------------------------------------------------------------


@pytest.fixture(scope="module")
async def runs(platform: Platform) -> dict[str, Any]:
    """Runs through the API: two of a registered notebook that record a result and complete, one of an
    unregistered one that fails in cell 2; and the ended run of a user in two groups, as the executor
    reports it to the history (a run submitted with a token names its owner's groups; these tests' platform
    runs without sign-in)."""
    from tests.support.executor import write_notebook

    folder = platform.user("dashboards")
    write_notebook(
        folder / "train.ipynb",
        "import nbp\nnbp.record('accuracy', 0.5 + learning_rate)",
        parameters="learning_rate = 0.1",
    )
    write_notebook(folder / "broken.ipynb", "x = 1", "1 / 0")
    registered = await platform.client.post(
        "/db/notebooks", json={"name": "train", "file_path": "train.ipynb", "username": "dashboards"}
    )
    assert registered.status_code == 201, registered.text
    defined = await platform.client.post(
        f"/db/parameters/bulk/{registered.json()['id']}",
        json=[{"param_name": "learning_rate", "param_type": "float", "default_value": 0.1}],
    )
    assert defined.status_code == 201, defined.text
    made = []
    for body in (
        {"username": "dashboards", "notebook_path": "train.ipynb", "parameters": {"learning_rate": 0.25}},
        {"username": "dashboards", "notebook_path": "train.ipynb", "parameters": {"learning_rate": 0.125}},
        {"username": "dashboards", "notebook_path": "broken.ipynb"},
    ):
        response = await platform.client.post("/execute", json=body)
        assert response.status_code == 200, response.text
        made.append(response.json())
    assert [r["status"] for r in made] == ["completed", "completed", "failed"]
    records = [await platform.history(run["id"], run["status"]) for run in made]

    grouped_id = max(r["id"] for r in made) + 1000
    queued = datetime.now(UTC) - timedelta(seconds=10)
    event = {
        "event_id": str(uuid.uuid4()),
        "execution_id": grouped_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "status": "completed",
        "attempt": 1,
        "username": "grouped",
        "input_path": "report.ipynb",
        "owner_groups": ["analysts", "data-scientists"],
        "queued_at": queued.isoformat(),
        "started_at": (queued + timedelta(seconds=1)).isoformat(),
        "completed_at": (queued + timedelta(seconds=3)).isoformat(),
        "execution_time_seconds": 2.0,
    }
    delivered = await platform.client.post("/internal/events", json=event)
    assert delivered.status_code == 200, delivered.text
    await platform.history(grouped_id, "completed")
    return {"runs": made, "records": records}


async def dashboard_charts(context: Any, slug: str) -> dict[str, int]:
    response = await context.request.get(f"/api/v1/dashboard/{slug}/charts")
    assert response.status == 200, await response.text()
    return {chart["slice_name"]: chart["id"] for chart in (await response.json())["result"]}


async def chart_rows(context: Any, chart_id: int) -> list[dict[str, Any]]:
    response = await context.request.get(f"/api/v1/chart/{chart_id}/data/")
    assert response.status == 200, await response.text()
    rows: list[dict[str, Any]] = (await response.json())["result"][0]["data"]
    return rows


# --- the tests ---------------------------------------------------------------------------------------


async def test_alice_signs_in_through_keycloak_and_is_alpha(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak
) -> None:
    context = await sign_in(browser, superset, keycloak, "alice", button=True)
    try:
        assert await roles_of(context) == {"Alpha"}
        cookies = {c["name"]: c for c in await context.cookies(superset.url)}
        session = cookies["nbp_superset_session"]
        assert session["httpOnly"] is True
        assert "session" not in cookies  # Superset's default name is not used
    finally:
        await context.close()


async def test_an_anonymous_event_beacon_leaves_the_sign_in_state_alone(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak
) -> None:
    """The login page sends its usage events as it navigates to Keycloak. Flask-AppBuilder's refusal of
    that beacon rewrote the session cookie, and when it came back after the redirect to Keycloak it erased
    the sign-in's OAuth state: the sign-in failed at random. Here the beacon comes back last, always."""
    context = await new_context(browser, superset)
    try:
        page = await context.new_page()
        await page.goto("/login/keycloak", wait_until="commit")
        await page.wait_for_url(lambda url: url.startswith(keycloak.url), wait_until="commit")
        pending = await session_cookie(context, superset)

        beacon = await context.request.post(
            "/superset/log/?explode=events", form={"events": "[]"}, max_redirects=0
        )
        assert beacon.status == 401
        assert "set-cookie" not in beacon.headers
        assert await session_cookie(context, superset) == pending

        await finish_sign_in(page, superset, keycloak, "alice")
        assert await signed_in(context)
    finally:
        await context.close()


async def test_superset_pages_load_nothing_from_outside_the_platform(
    browser: Any, superset: SupersetServer
) -> None:
    """Superset's default policy lets its pages fetch a telemetry pixel and map tiles from third parties;
    the platform's pages reach only the platform."""
    context = await new_context(browser, superset)
    try:
        page = await context.new_page()
        requests: list[Any] = []
        page.on("request", lambda request: requests.append(request))
        response = await page.goto("/login/")
        await page.get_by_text("Sign in with Keycloak").wait_for()
        await page.wait_for_load_state("networkidle")
        # What the policy blocked never left the browser.
        sent = {urlparse(request.url).hostname for request in requests if request.failure != "csp"}
        assert sent == {urlparse(superset.url).hostname}
        assert "access-control-allow-origin" not in response.headers
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in response.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'self'"
        assert policy["img-src"] == "'self' blob: data:"
        assert policy["connect-src"] == "'self'"
    finally:
        await context.close()


async def test_the_runs_dashboard_shows_the_runs_made_through_the_api(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak, runs: dict[str, Any]
) -> None:
    context = await sign_in(browser, superset, keycloak, "alice")
    try:
        charts = await dashboard_charts(context, RUNS_DASHBOARD)
        per_day = await chart_rows(context, charts["Runs per day by status"])
        by_status: dict[str, int] = {}
        for row in per_day:
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["runs"]
        assert by_status == {"completed": 3, "failed": 1}

        (rate,) = await chart_rows(context, charts["Success rate"])
        assert rate["success_rate"] == pytest.approx(3 / 4)

        failures = await chart_rows(context, charts["Recent failures"])
        failed = next(r for r in runs["runs"] if r["status"] == "failed")
        assert len(failures) == 1
        assert failures[0]["error_ename"] == "ZeroDivisionError"
        assert failures[0]["error_cell_index"] == failed["error"]["cell_index"]
        assert "1 / 0" in failures[0]["error_cell_source"]

        # p50/p95 from the rollups' histograms: within 4.4% of the nearest-rank value of the runs' own.
        durations = {
            r["notebook"]: r
            for r in await chart_rows(context, charts["Duration by notebook (p50, p95) — slowest first"])
        }
        assert {name: r["timed_runs"] for name, r in durations.items()} == {"train": 2, "(not registered)": 2}
        train = sorted(r["execution_time_seconds"] for r in runs["records"][:2])
        assert durations["train"]["p50_seconds"] == pytest.approx(train[0], rel=0.045)
        assert durations["train"]["p95_seconds"] == pytest.approx(train[1], rel=0.045)

        failing = await chart_rows(context, charts["Most failing notebooks"])
        assert failing[0]["notebook"] == "(not registered)"
        assert (failing[0]["failures"], failing[0]["runs"]) == (1, 2)
        assert {r["notebook"]: r["failure_rate"] for r in failing} == {"(not registered)": 0.5, "train": 0.0}

        experiments = await dashboard_charts(context, "nbp-experiments")
        results = await chart_rows(context, experiments["Results against the run's parameters"])
        assert {r["notebook"] for r in results} == {"train"}
        recorded = sorted((r["value"], json.loads(r["parameters"])["learning_rate"]) for r in results)
        assert recorded == [pytest.approx((0.625, 0.125)), pytest.approx((0.75, 0.25))]
        over_time = await chart_rows(context, experiments["Recorded results over time"])
        assert {(r["notebook"], r["result"]) for r in over_time} == {("train", "accuracy")}
        assert all(0.625 <= r["mean_value"] <= 0.75 for r in over_time)

        usage = await dashboard_charts(context, "nbp-usage")
        by_user = await chart_rows(context, usage["Runs and run time by user"])
        assert {r["username"]: r["runs"] for r in by_user} == {"dashboards": 3, "grouped": 1}
        by_group = await chart_rows(context, usage["Runs and run time by group"])
        assert {r["group_name"]: r["runs"] for r in by_group} == {
            "(no group)": 3,
            "analysts": 1,
            "data-scientists": 1,
        }
        grouped_hours = {r["group_name"]: r["run_time_hours"] for r in by_group}
        assert grouped_hours["analysts"] == pytest.approx(2.0 / 3600)

        # And in the browser: the dashboard renders them; its screenshot is the README's.
        page = await context.new_page()
        await page.set_viewport_size({"width": 1400, "height": 1200})
        await page.goto(f"/superset/dashboard/{RUNS_DASHBOARD}/")
        await page.get_by_text("ZeroDivisionError").filter(visible=True).first.wait_for(timeout=120_000)
        await page.wait_for_load_state("networkidle", timeout=120_000)
        # ECharts animates its bars in: the picture is taken once two in a row are the same.
        shots = [b"", await page.screenshot(full_page=True)]
        while shots[-1] != shots[-2] and len(shots) < 60:
            shots.append(await page.screenshot(full_page=True))
        assert shots[-1] == shots[-2], "the dashboard never stopped changing"
        (artifacts_dir() / "superset-runs-dashboard.png").write_bytes(shots[-1])
    finally:
        await context.close()


async def test_carol_an_analyst_views_but_cannot_edit(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak, runs: dict[str, Any]
) -> None:
    context = await sign_in(browser, superset, keycloak, "carol")
    try:
        assert await roles_of(context) == {"Platform Viewer"}
        charts = await dashboard_charts(context, RUNS_DASHBOARD)
        assert await chart_rows(context, charts["Success rate"])
        headers = await csrf_headers(context)
        chart_id = charts["Success rate"]
        edit = await context.request.put(
            f"/api/v1/chart/{chart_id}", data={"slice_name": "carol was here"}, headers=headers
        )
        assert edit.status == 403, await edit.text()
        shown = await context.request.get(f"/api/v1/dashboard/{RUNS_DASHBOARD}")
        assert shown.status == 200, await shown.text()
        dashboard_id = (await shown.json())["result"]["id"]
        dashboard = await context.request.put(
            f"/api/v1/dashboard/{dashboard_id}", data={"dashboard_title": "carol"}, headers=headers
        )
        assert dashboard.status == 403, await dashboard.text()
        datasets = await context.request.get("/api/v1/dataset/")
        assert datasets.status == 200, await datasets.text()
        dataset_id = (await datasets.json())["result"][0]["id"]
        dataset = await context.request.put(
            f"/api/v1/dataset/{dataset_id}", data={"description": "carol"}, headers=headers
        )
        assert dataset.status == 403, await dataset.text()
        created = await context.request.post(
            "/api/v1/chart/",
            data={"slice_name": "new", "viz_type": "table", "datasource_id": 1, "datasource_type": "table"},
            headers=headers,
        )
        assert created.status == 403, await created.text()
    finally:
        await context.close()


async def test_erin_in_no_group_gets_no_access(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak
) -> None:
    context = await sign_in(browser, superset, keycloak, "erin")
    try:
        # Signed in (an anonymous caller gets 401), and allowed nothing, not even to read her own roles.
        assert (await context.request.get("/api/v1/me/")).status == 403
        assert (await context.request.get("/api/v1/me/roles/")).status == 403
        dashboards = await context.request.get("/api/v1/dashboard/")
        assert dashboards.status == 403 or (await dashboards.json())["count"] == 0
        charts = await context.request.get("/api/v1/chart/")
        assert charts.status == 403 or (await charts.json())["count"] == 0
        dataset = await context.request.get("/api/v1/dataset/")
        assert dataset.status == 403 or (await dataset.json())["count"] == 0
    finally:
        await context.close()


async def test_dana_is_admin(browser: Any, superset: SupersetServer, keycloak: LocalKeycloak) -> None:
    context = await sign_in(browser, superset, keycloak, "dana")
    try:
        assert await roles_of(context) == {"Admin"}
    finally:
        await context.close()


async def held_callback(context: Any, keycloak: LocalKeycloak, username: str) -> tuple[str, str]:
    """Sign in at Keycloak's form in the browser's session, but take its answer (the redirect to Superset's
    callback) instead of following it: (code, state). A browser cannot be stopped mid-redirect."""
    page = await context.new_page()
    await page.goto("/login/keycloak")
    await page.wait_for_selector("#kc-form-login")
    action = await page.get_attribute("#kc-form-login", "action")
    answer = await context.request.post(
        action,
        form={"username": username, "password": keycloak.user_password, "credentialId": ""},
        max_redirects=0,
    )
    assert answer.status == 302, await answer.text()
    query = parse_qs(urlparse(answer.headers["location"]).query)
    await page.close()
    return query["code"][0], query["state"][0]


async def test_a_forged_or_missing_state_and_a_replayed_code_are_refused(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak
) -> None:
    context = await new_context(browser, superset)
    other = await new_context(browser, superset)
    try:
        code, state = await held_callback(context, keycloak, "alice")
        # Keycloak's codes live a minute: the refusals are asked for without loading any page.
        for query in (f"code={code}&state=forged{state[6:]}", f"code={code}"):
            refused = await context.request.get(f"/oauth-authorized/keycloak?{query}", max_redirects=0)
            assert refused.status == 302, await refused.text()
            assert urlparse(refused.headers["location"]).path.startswith("/login"), refused.headers
            assert not await signed_in(context), query
        # The same code with its own state signs in: the refusals above were the state's.
        page = await context.new_page()
        await page.goto(f"/oauth-authorized/keycloak?code={code}&state={state}", wait_until="commit")
        assert await signed_in(context)

        # Replayed: another browser with a login of its own under way (a valid state) brings the used code.
        intruder = await other.new_page()
        await intruder.goto("/login/keycloak")
        await intruder.wait_for_selector(KEYCLOAK_FORM)
        own_state = parse_qs(urlparse(intruder.url).query)["state"][0]
        await intruder.goto(f"/oauth-authorized/keycloak?code={code}&state={own_state}")
        assert "/login" in intruder.url, intruder.url
        assert not await signed_in(other)
    finally:
        await context.close()
        await other.close()


async def test_logout_ends_the_keycloak_session(
    browser: Any, superset: SupersetServer, keycloak: LocalKeycloak
) -> None:
    context = await sign_in(browser, superset, keycloak, "bob")
    try:
        page = await context.new_page()
        await page.goto("/logout/", wait_until="commit")
        await page.wait_for_url(
            lambda url: is_on(url, superset.url) and "/login/" in url, wait_until="commit"
        )
        assert not await signed_in(context)
        # Keycloak asks for the password again: its session is gone, not only Superset's.
        await page.goto("/login/keycloak")
        await page.wait_for_selector(KEYCLOAK_FORM)
        assert page.url.startswith(keycloak.url)
    finally:
        await context.close()


# --- the dashboards' import --------------------------------------------------------------------------

SNAPSHOT = {
    "dbs": "SELECT uuid, database_name, sqlalchemy_uri, extra FROM dbs",
    "tables": "SELECT t.uuid, t.table_name, t.schema, t.sql, t.main_dttm_col FROM tables t",
    "table_columns": "SELECT t.uuid, c.column_name, c.type, c.expression, c.is_dttm "
    "FROM table_columns c JOIN tables t ON t.id = c.table_id",
    "sql_metrics": "SELECT t.uuid, m.metric_name, m.expression "
    "FROM sql_metrics m JOIN tables t ON t.id = m.table_id",
    "slices": "SELECT id, uuid, slice_name, viz_type, params, query_context, datasource_id FROM slices",
    "dashboards": "SELECT id, uuid, dashboard_title, slug, position_json, json_metadata, published "
    "FROM dashboards",
    "dashboard_slices": "SELECT dashboard_id, slice_id FROM dashboard_slices",
}


async def snapshot(superset: SupersetServer) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(asyncpg_dsn(superset.databases.metadata))
    try:
        return {
            name: sorted((tuple(str(v) for v in row) for row in await conn.fetch(sql)), key=repr)
            for name, sql in SNAPSHOT.items()
        }
    finally:
        await conn.close()


async def test_importing_twice_changes_and_duplicates_nothing(superset: SupersetServer) -> None:
    before = await snapshot(superset)
    assert len(before["dashboards"]) == 3
    await asyncio.to_thread(superset.import_dashboards)
    assert await snapshot(superset) == before


async def test_an_edited_chart_in_the_bundle_is_applied_on_import(
    superset: SupersetServer, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.zip"
    await asyncio.to_thread(superset.import_dashboards, "--write", str(bundle))
    with zipfile.ZipFile(bundle) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    (chart_file,) = [name for name in files if name.endswith("charts/Success_rate.yaml")]
    chart = yaml.safe_load(files[chart_file])
    chart["slice_name"] = "Success rate (edited)"
    chart["params"]["subheader"] = "edited in the bundle"
    files[chart_file] = yaml.safe_dump(chart)
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(edited, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)

    before = await snapshot(superset)
    await asyncio.to_thread(superset.import_dashboards, "--bundle", str(edited))
    after = await snapshot(superset)
    row = next(r for r in after["slices"] if r[1] == chart["uuid"])
    assert row[2] == "Success rate (edited)"
    assert json.loads(row[4])["subheader"] == "edited in the bundle"
    assert len(after["slices"]) == len(before["slices"])  # overwritten, not added
    assert after["dashboard_slices"] == before["dashboard_slices"]

    await asyncio.to_thread(superset.import_dashboards)  # the code's bundle puts it back
    assert await snapshot(superset) == before


async def test_the_history_connection_is_the_read_only_role(superset: SupersetServer) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(superset.databases.metadata))
    try:
        uri = await conn.fetchval("SELECT sqlalchemy_uri FROM dbs")
    finally:
        await conn.close()
    assert make_url(uri).username == "superset_ro"
