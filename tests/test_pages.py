"""The map pages and the dashboard in a real (headless) browser: they draw, with a legend, and nothing leaves the app."""

from __future__ import annotations

import pytest
from sqlalchemy import text

PROVINCE = "38"  # Thanh Hóa: incidents of its own for the hot-spot page


@pytest.fixture(scope="module")
def thanh_hoa_incidents(seeded_url):
    from geodata.db import use_database

    with use_database(seeded_url).begin() as conn:
        conn.execute(text("""
            INSERT INTO incident (province_code, incident_id, type, occurred_on, geom, structure, commune_code, status, source)
            SELECT '38', 'pages-' || code || '-' || k, 'irregular_departure', DATE '2026-02-10', ST_PointOnSurface(geom), '2025',
                   code, 'reported', 'pages test (synthetic)'
            FROM admin_unit, generate_series(1, CASE WHEN code < '16000' THEN 3 ELSE 1 END) AS k
            WHERE structure = '2025' AND parent_code = :p AND geom IS NOT NULL
            ON CONFLICT DO NOTHING"""), {"p": PROVINCE})


def outside_requests(page, base: str) -> list[str]:
    """Every request the page makes outside the app (aborted, and listed)."""
    leaving: list[str] = []

    def check(route):
        if route.request.url.startswith(base) or route.request.url.startswith(("data:", "about:", "blob:")):
            route.continue_()
        else:
            leaving.append(route.request.url)
            route.abort()

    page.route("**/*", check)
    return leaving


def sign_in(page, user) -> None:
    form = page.locator("#signin")
    form.wait_for(timeout=20000)
    form.locator("input[name=username]").fill(user.name)
    form.locator("input[name=password]").fill(user.password)
    form.locator("button[type=submit]").click()


@pytest.mark.parametrize(("path", "role", "scope", "query", "legend"), [
    ("/maps/coverage", "leader", ("42",), "year=2025&level=province", "Tỷ lệ hoàn thành chỉ tiêu"),
    ("/maps/hotspots", "police_analyst", (PROVINCE,), f"level=commune&parent={PROVINCE}&from=2026-02-01&to=2026-02-28",
     "Điểm nóng 99 %"),
    ("/maps/recruiters", "police_analyst", ("44",), "from=2026-01-01&to=2026-12-31", "Trụ sở doanh nghiệp"),
    ("/maps/coverage?lang=en", "planner", ("42",), "year=2025&level=province&lang=en", "Share of the target reached"),
])
def test_each_map_page_draws_with_its_legend_and_no_request_leaves_the_app(
        live_server, browser_page, accounts, thanh_hoa_incidents, path, role, scope, query, legend):
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    leaving = outside_requests(page, live_server)
    user = accounts.user(role, scope)
    sep = "&" if "?" in path else "?"
    page.goto(f"{live_server}{path}{sep}{query}")
    sign_in(page, user)
    frame = page.frame_locator("#frame")
    frame.locator(".la-legend").wait_for(timeout=60000)
    assert legend in frame.locator(".la-legend").inner_text()
    # Leaflet drew the layer: a map pane with the units (canvas) and a layer control.
    assert frame.locator(".leaflet-container").count() == 1
    assert frame.locator(".leaflet-control-layers").count() == 1
    assert page.locator("#message").inner_text() == ""
    assert leaving == [] and errors == []


def test_the_dashboard_shows_the_headline_numbers_of_the_area(live_server, browser_page, accounts):
    page = browser_page
    leaving = outside_requests(page, live_server)
    user = accounts.user("officer", ("42",))
    page.goto(live_server + "/")
    page.click("#dash summary")
    page.fill("#dash-signin input[name=username]", user.name)
    page.fill("#dash-signin input[name=password]", user.password)
    page.click("#dash-signin button[type=submit]")
    page.locator("#dash-body").wait_for(timeout=30000)
    keys = page.eval_on_selector_all("#dash-numbers dd", "els => els.map(e => e.dataset.key)")
    assert {"records", "rejected_open", "departures", "target", "incidents"} <= set(keys)
    links = page.eval_on_selector_all("#dash-links a", "els => els.map(e => e.getAttribute('href'))")
    assert {"/survey", "/maps/coverage", "/maps/hotspots", "/maps/recruiters"} <= set(links)
    assert "Hà Tĩnh" in page.inner_text("#dash-who")
    assert leaving == []
