"""The survey web form (/survey): generated from the form definition, used in a real (headless) phone-sized browser.

Saved forms go to a queue in the phone's storage first and are sent when there
is signal; the service worker opens the form offline.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from survey.definition import FORM, Field
from survey.webform import webform_spec

# Screenshots for a look at the page on a phone-sized screen (set SURVEY_SCREENSHOTS=folder).
SHOTS = os.environ.get("SURVEY_SCREENSHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}-screen.png"))


@pytest.fixture(scope="module")
def commune(seeded_url):
    """A 2025 ward of Hà Tĩnh whose name contains "Hồng Lĩnh", with a point inside it (from the data)."""
    from geodata.db import use_database

    with use_database(seeded_url).connect() as conn:
        row = conn.execute(
            text(
                """SELECT code, name, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                   FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND parent_code = '42'
                    AND name_folded LIKE '%hong linh%' AND geom IS NOT NULL ORDER BY code LIMIT 1"""
            )
        ).one()
    return row._asdict()


def records_of(engine, surveyor: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """SELECT instance_id::text, full_name, kind, declared_commune_code, assigned_commune_code, birth_year,
                          answers, consent, gps_accuracy_m FROM survey_record WHERE surveyor = :s ORDER BY full_name"""
            ),
            {"s": surveyor},
        ).all()
    return [r._asdict() for r in rows]


def wait_for_records(engine, surveyor: str, n: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = records_of(engine, surveyor)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


@pytest.fixture
def surveyor(accounts):
    """A surveyor of Hà Tĩnh (2025 province 42), where the test commune is."""
    return accounts.user("surveyor", ("42",))


def sign_in(page, account) -> None:
    page.fill('#signin input[name="username"]', account.name)
    page.fill('#signin input[name="password"]', account.password)
    page.click('#signin button[type="submit"]')
    page.locator("#who", has_text=account.name).wait_for(timeout=20000)


def open_form(page, base: str, commune: dict, path: str = "/survey", account=None) -> list[str]:
    """Open the form (and sign in as ``account`` if given); returns the list page errors are added to."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.context.grant_permissions(["geolocation"], origin=base)
    page.context.set_geolocation({"latitude": commune["lat"], "longitude": commune["lon"], "accuracy": 12})
    page.goto(base + path)
    page.locator("body.ready").wait_for(timeout=20000)
    if account is not None:
        sign_in(page, account)
    return errors


def pick_commune(page, commune: dict, typed: str = "hong linh") -> None:
    page.fill("#f-commune_code-q", typed)
    choice = page.locator(f'#f-commune_code-results button[data-code="{commune["code"]}"]')
    choice.wait_for(timeout=10000)
    assert commune["name"] in choice.inner_text() and "Hà Tĩnh" in choice.inner_text()  # with its province
    choice.click()
    assert page.input_value("#f-commune_code") == commune["code"]


def fill_aspirant(page, commune: dict, *, surveyor: str, name: str, birth_year: str = "1999") -> None:
    page.check('input[name="kind"][value="aspirant"]')
    if page.input_value("#f-surveyor") != surveyor:
        page.fill("#f-surveyor", surveyor)
    page.check("#f-consent")
    if page.input_value("#f-commune_code") != commune["code"]:
        pick_commune(page, commune)
    page.click("#f-location-button")
    page.locator("#f-location-status", has_text="± 12 m").wait_for(timeout=10000)
    page.fill("#f-full_name", name)
    page.fill("#f-birth_year", birth_year)
    page.check('input[name="sex"][value="female"]')
    page.check('input[name="markets_wanted"][value="JP"]')
    page.check('input[name="markets_wanted"][value="KR"]')
    page.select_option("#f-sector", "caregiving")


def unsent(page, n: int) -> None:
    page.locator("#unsent", has_text=f"Chưa gửi: {n}").wait_for(timeout=45000)


# The page keeps its queue and small values in IndexedDB (database labour-atlas-survey: stores queue and kv).
IDB_READ = """([store, key]) => new Promise((resolve, reject) => {
  const open = indexedDB.open('labour-atlas-survey');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result;
    const req = key === null ? db.transaction(store).objectStore(store).getAll() : db.transaction(store).objectStore(store).get(key);
    req.onsuccess = () => { db.close(); resolve(req.result === undefined ? null : req.result); };
    req.onerror = () => { db.close(); reject(req.error); };
  };
})"""
IDB_WRITE = """([key, value]) => new Promise((resolve, reject) => {
  const open = indexedDB.open('labour-atlas-survey');
  open.onsuccess = () => {
    const db = open.result;
    const t = db.transaction('kv', 'readwrite');
    t.objectStore('kv').put(value, key);
    t.oncomplete = () => { db.close(); new BroadcastChannel('labour-atlas-survey').postMessage(key); resolve(true); };
    t.onerror = () => { db.close(); reject(t.error); };
  };
})"""


def queued(page) -> list[dict]:
    """The queue in the order the forms were saved."""
    return sorted(page.evaluate(IDB_READ, ["queue", None]), key=lambda item: item.get("seq") or 0)


def queue_length(page) -> int:
    return len(queued(page))


def stored(page, key: str):
    return page.evaluate(IDB_READ, ["kv", f"labourAtlas.survey.{key}"])


def store_value(page, key: str, value) -> None:
    """Write a value as another tab of the page would (the page is told through its BroadcastChannel)."""
    page.evaluate(IDB_WRITE, [f"labourAtlas.survey.{key}", value])


# -- the spec -------------------------------------------------------------------------------------


def test_spec_is_generated_from_the_definition():
    spec = webform_spec()
    assert spec["form_id"] == FORM.form_id and spec["version"] == FORM.version and spec["published"] == "2025-01-01"
    assert [f["name"] for f in spec["fields"]] == [f.name for f in FORM.fields]
    by_name = {f["name"]: f for f in spec["fields"]}
    assert by_name["full_name"]["label"] == {"vi": "Họ và tên", "en": "Full name"} and by_name["full_name"]["required"]
    assert {k: by_name["birth_year"][k] for k in ("min", "max", "range_of")} == {"min": 15, "max": 80, "range_of": "age"}
    assert by_name["contract_months"]["range_of"] == "value" and by_name["contract_months"]["kinds"] == ["departure"]
    assert {"value": "JP", "label": {"vi": "Nhật Bản", "en": "Japan"}} in by_name["markets_wanted"]["choices"]
    assert by_name["consent"]["hint"]["vi"].startswith("Không đồng ý")
    assert [k["value"] for k in spec["kinds"]] == ["aspirant", "returnee", "departure"]
    assert {f["name"] for f in spec["fields"] if f["widget"] == "auto"} == {"instance_id", "collected_at", "mock_location"}


def test_a_new_field_in_the_definition_is_in_the_spec():
    defn = FORM.with_field(Field("village", "text", "Thôn", "Village"), after="commune_code")
    spec = webform_spec(defn)
    names = [f["name"] for f in spec["fields"]]
    assert names.index("village") == names.index("commune_code") + 1
    village = spec["fields"][names.index("village")]
    assert village["label"] == {"vi": "Thôn", "en": "Village"} and village["widget"] == "text" and not village["required"]
    assert "village" not in [f["name"] for f in webform_spec()["fields"]]


def test_page_spec_and_service_worker_are_served(client):
    page = client.get("/survey")
    assert page.status_code == 200 and '<html lang="vi">' in page.text and FORM.title_vi in page.text
    assert "Chưa gửi" in page.text and "/static/survey/survey.js?v=" in page.text
    en = client.get("/survey?lang=en")
    assert '<html lang="en">' in en.text and FORM.title_en in en.text and "Unsent" in en.text
    spec = client.get("/survey/form.json").json()
    assert spec["fields"] == webform_spec()["fields"] and spec["rules"]["gps_accuracy_limit_m"] > 0
    sw = client.get("/survey/sw.js")
    assert sw.status_code == 200 and "javascript" in sw.headers["content-type"]
    assert sw.headers["service-worker-allowed"] == "/survey"
    assert '"/survey/form.json"' in sw.text and '"/static/survey/survey.js?v=' in sw.text
    for asset in ("/static/survey/survey.js", "/static/survey/survey.css"):
        assert client.get(asset).status_code == 200


# -- in the browser -------------------------------------------------------------------------------


def test_submit_one_form_with_a_vietnamese_name(live_server, browser_page, commune, seeded, surveyor):
    page = browser_page
    account = surveyor
    surveyor = f"Lê Văn Khảo {uuid.uuid4().hex[:8]}"
    errors = open_form(page, live_server, commune, account=account)
    assert "null" not in page.inner_text("#fields") and "undefined" not in page.inner_text("#fields")
    shot(page, "1-empty")
    fill_aspirant(page, commune, surveyor=surveyor, name="Nguyễn Thị Hồng Nhung")
    assert page.locator("#f-location-status").inner_text().startswith("Vĩ độ")
    shot(page, "2-filled")
    page.click("#save")
    page.locator(".notice.ok", has_text="Đã gửi phiếu của Nguyễn Thị Hồng Nhung").wait_for(timeout=20000)
    unsent(page, 0)
    rows = wait_for_records(seeded, surveyor, 1)
    assert len(rows) == 1
    (row,) = rows
    assert row["full_name"] == "Nguyễn Thị Hồng Nhung" and row["kind"] == "aspirant" and row["birth_year"] == 1999
    assert row["declared_commune_code"] == commune["code"] and row["assigned_commune_code"] == commune["code"]
    assert row["answers"]["markets_wanted"] == ["JP", "KR"] and row["answers"]["sector"] == "caregiving"
    assert row["consent"] is True and row["gps_accuracy_m"] == 12
    # The form is ready for the next person: surveyor and commune kept, the rest cleared.
    assert page.input_value("#f-surveyor") == surveyor and page.input_value("#f-commune_code") == commune["code"]
    assert page.input_value("#f-full_name") == "" and not page.is_checked('input[name="kind"][value="aspirant"]')
    assert page.locator("#f-location-status").inner_text() == "Chưa lấy vị trí GPS"
    shot(page, "3-sent")
    time.sleep(1)
    assert len(records_of(seeded, surveyor)) == 1
    assert errors == []


def test_client_side_validation_shows_messages_and_sends_nothing(live_server, browser_page, commune, seeded):
    page = browser_page
    surveyor = f"Trần Văn Kiểm {uuid.uuid4().hex[:8]}"
    errors = open_form(page, live_server, commune)
    # Without consent nothing can be sent, and personal questions wait for it.
    page.check('input[name="kind"][value="aspirant"]')
    assert page.is_disabled("#f-full_name")
    page.click("#save")
    assert "đồng ý" in page.inner_text("#err-consent")
    fill_aspirant(page, commune, surveyor=surveyor, name="Phạm Văn Đức", birth_year="1900")
    page.fill("#f-full_name", "")
    page.uncheck('input[name="markets_wanted"][value="JP"]')
    page.uncheck('input[name="markets_wanted"][value="KR"]')
    page.click("#save")
    assert page.inner_text("#err-full_name") == "Phải trả lời câu này"
    assert page.inner_text("#err-markets_wanted") == "Phải chọn ít nhất một mục"
    birth = page.inner_text("#err-birth_year")
    assert "Năm sinh phải từ" in birth and "tuổi từ 15 đến 80" in birth
    assert page.inner_text("#err-consent") == "" and page.inner_text("#err-sex") == ""
    assert "Còn 3 câu cần sửa" in page.inner_text("#summary")
    assert page.get_attribute("#f-full_name", "aria-invalid") == "true"
    shot(page, "4-invalid")
    assert queue_length(page) == 0 and "Chưa gửi: 0" in page.inner_text("#unsent")
    time.sleep(1)
    assert records_of(seeded, surveyor) == []
    # A returnee's date of return cannot be in the future.
    page.check('input[name="kind"][value="returnee"]')
    page.fill("#f-return_date", "2999-01-01")
    page.click("#save")
    assert page.inner_text("#err-return_date") == "Ngày này ở sau hôm nay"
    assert queue_length(page) == 0
    assert errors == []


def test_offline_forms_wait_in_the_queue_and_arrive_once(live_server, browser_page, commune, seeded, surveyor):
    page = browser_page
    account = surveyor
    surveyor = f"Hoàng Thị Mạng {uuid.uuid4().hex[:8]}"
    # A phone whose browser has no crypto.randomUUID (old, or not a secure context): the fallback makes the ids.
    page.add_init_script("Object.defineProperty(Crypto.prototype, 'randomUUID', {value: undefined})")
    errors = open_form(page, live_server, commune, account=account)
    unsent(page, 0)
    page.fill("#f-surveyor", surveyor)
    pick_commune(page, commune)  # online: the communes seen are kept for offline use
    page.context.set_offline(True)
    fill_aspirant(page, commune, surveyor=surveyor, name="Nguyễn Thị Hồng Nhung")
    page.click("#save")
    unsent(page, 1)
    # The next person: surveyor and commune are kept.
    assert page.input_value("#f-surveyor") == surveyor and page.input_value("#f-commune_code") == commune["code"]
    # The commune picker still finds communes seen before, from the phone's storage.
    page.fill("#f-commune_code-q", "hong linh")
    page.locator(f'#f-commune_code-results button[data-code="{commune["code"]}"]').wait_for(timeout=10000)
    assert "Không có mạng" in page.inner_text("#f-commune_code-status")
    page.fill("#f-commune_code-q", "")
    fill_aspirant(page, commune, surveyor=surveyor, name="Đặng Văn Hải", birth_year="1988")
    page.click("#save")
    unsent(page, 2)
    shot(page, "5-offline-2-unsent")
    payloads = [i["payload"] for i in queued(page)]
    assert len(payloads) == 2
    for p in payloads:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", p["instance_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", p["collected_at"])  # local time with its offset
        assert p["form_id"] == FORM.form_id and p["form_version"] == FORM.version and p["consent"] is True
        assert p["location"]["accuracy"] == 12 and "mock_location" not in p and "return_date" not in p
    time.sleep(2)
    assert records_of(seeded, surveyor) == []
    # Days pass offline: the access token expires; the refresh token renews it when the signal returns.
    before = stored(page, "session")
    store_value(page, "session", before | {"access_until": 0})
    page.context.set_offline(False)
    rows = wait_for_records(seeded, surveyor, 2)
    after = stored(page, "session")
    assert after["refresh"] != before["refresh"] and after["access"] != before["access"]  # renewed, rotated
    assert sorted(r["full_name"] for r in rows) == ["Nguyễn Thị Hồng Nhung", "Đặng Văn Hải"]
    unsent(page, 0)
    time.sleep(1.5)
    rows = records_of(seeded, surveyor)
    assert len(rows) == 2 and len({r["instance_id"] for r in rows}) == 2
    assert all(r["assigned_commune_code"] == commune["code"] for r in rows)
    assert errors == []


def test_the_form_opens_offline_from_the_service_worker(live_server, browser_page, commune):
    page = browser_page
    errors = open_form(page, live_server, commune)
    scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == live_server + "/survey"
    cached = page.evaluate(
        """async () => { const keys = await caches.keys(); const c = await caches.open(keys.find(k => k.startsWith('labour-survey-')));
                         return (await c.keys()).map(r => new URL(r.url).pathname + new URL(r.url).search); }"""
    )
    assert {"/survey", "/survey?lang=en", "/survey/form.json"} <= set(cached)
    assert any(u.startswith("/static/survey/survey.js?v=") for u in cached)
    page.context.set_offline(True)
    assert page.evaluate("() => fetch('/health').then(() => 'up', () => 'down')") == "down"
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.locator("body.ready").wait_for(timeout=20000)
    assert page.locator('input[name="kind"][value="aspirant"]').is_visible()
    assert page.locator("#f-location-button").inner_text() == "Lấy vị trí GPS"
    shot(page, "6-offline-reload")
    page.goto(live_server + "/survey?lang=en")
    page.locator("body.ready").wait_for(timeout=20000)
    assert page.locator("#f-location-button").inner_text() == "Get GPS location"
    page.context.set_offline(False)
    assert errors == []


def test_the_page_renders_every_field_of_the_spec(live_server, browser_page, commune):
    """A field added to the definition appears in the page with no other change."""
    page = browser_page
    spec = webform_spec(FORM.with_field(Field("village", "text", "Thôn", "Village", required=True), after="commune_code"))
    page.route(live_server + "/survey/form.json", lambda route: route.fulfill(json=spec))
    errors = open_form(page, live_server, commune)
    village = page.locator("#f-village")
    assert village.is_visible() and page.inner_text('label[for="f-village"]') == "Thôn"
    # After the commune, as in the definition.
    order = page.eval_on_selector_all("#fields .field", "els => els.map(e => e.dataset.name)")
    assert order.index("village") == order.index("commune_code") + 1
    for kind in ("aspirant", "returnee", "departure"):
        page.check(f'input[name="kind"][value="{kind}"]')
        page.check("#f-consent")
        for f in spec["fields"]:
            inputs = page.locator(f'#survey [name="{f["name"]}"]')
            assert inputs.count() >= 1, f["name"]
            wrap = page.locator(f'#fields .field[data-name="{f["name"]}"]')
            shown = f["widget"] != "auto" and kind in f["kinds"]
            assert wrap.is_visible() == shown, (kind, f["name"])
        if kind == "departure":
            shot(page, "7-departure")
    # The new field is validated like the others (required).
    page.click("#save")
    assert page.inner_text("#err-village") == "Phải trả lời câu này"
    assert errors == []


def test_english_labels(live_server, browser_page, commune):
    page = browser_page
    errors = open_form(page, live_server, commune, "/survey?lang=en")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.inner_text('label[for="f-full_name"]') == "Full name"
    assert "Unsent: 0" in page.inner_text("#unsent")
    page.click("#save")
    assert page.inner_text("#err-kind") == "Choose one"
    assert errors == []


def test_server_answers_conflict_and_rejection_are_shown_and_a_rejected_form_can_be_corrected(
    live_server, browser_page, commune, seeded, surveyor, accounts
):
    import httpx

    page = browser_page
    account = surveyor
    surveyor = f"Vũ Văn Sửa {uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0)

    def payload(**over):
        return {"form_id": FORM.form_id, "form_version": FORM.version, "instance_id": str(uuid.uuid4()), "kind": "aspirant",
                "collected_at": (now - dt.timedelta(minutes=5)).isoformat(), "surveyor": surveyor, "consent": True,
                "commune_code": commune["code"], "location": {"lat": commune["lat"], "lon": commune["lon"], "accuracy": 9},
                "full_name": "Lò Thị Xuân", "birth_year": 2000, "sex": "female", "markets_wanted": ["TW"],
                "sector": "manufacturing"} | over

    stored = payload()
    auth = accounts.headers("surveyor", ("42",))
    assert httpx.post(live_server + "/api/v1/submissions", json=stored, headers=auth).status_code == 201
    conflicting = dict(stored, birth_year=2001)  # same instance_id, another answer
    unknown_commune = payload(full_name="Mùa A Dính", commune_code="99999")  # only the server can tell
    errors = open_form(page, live_server, commune, account=account)
    page.evaluate(
        "q => localStorage.setItem('labourAtlas.survey.queue', JSON.stringify(q))",
        [{"id": p["instance_id"], "url": "/api/v1/submissions", "payload": p, "who": p["full_name"]} for p in (conflicting, unknown_commune)],
    )
    page.reload()
    page.locator("body.ready").wait_for(timeout=20000)
    conflict = page.locator(".notice.error", has_text="Lỗi: mã phiếu của Lò Thị Xuân đã được dùng cho một phiếu khác")
    conflict.wait_for(timeout=20000)
    rejected = page.locator(".notice.error", has_text="Máy chủ từ chối phiếu của Mùa A Dính")
    rejected.wait_for(timeout=20000)
    # In the form's language, from the server's message catalogue (not the API's English).
    assert "Xã/phường nơi khảo sát: Không có xã/phường mã 99999" in rejected.inner_text()
    unsent(page, 0)
    shot(page, "8-server-errors")
    assert [r["birth_year"] for r in records_of(seeded, surveyor)] == [2000]
    # The rejected form comes back into the form; corrected and saved, it resubmits its quarantine entry.
    rejected.get_by_role("button", name="Sửa lại phiếu này").click()
    assert page.input_value("#f-full_name") == "Mùa A Dính" and page.is_checked('input[name="kind"][value="aspirant"]')
    page.fill("#f-commune_code-q", "hong linh")
    page.click(f'#f-commune_code-results button[data-code="{commune["code"]}"]')
    page.click("#save")
    page.locator(".notice.ok", has_text="Đã gửi phiếu của Mùa A Dính").wait_for(timeout=20000)
    rows = wait_for_records(seeded, surveyor, 2)
    fixed = next(r for r in rows if r["full_name"] == "Mùa A Dính")
    assert fixed["instance_id"] == unknown_commune["instance_id"] and fixed["declared_commune_code"] == commune["code"]
    with seeded.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM submission_quarantine WHERE resolved_instance_id = CAST(:i AS uuid)"),
            {"i": unknown_commune["instance_id"]},
        ).scalar()
    assert status == "resubmitted"
    page.get_by_role("button", name="Đóng").first.click()
    assert page.locator(".notice.error").count() == 0
    assert errors == []


def test_a_half_filled_form_survives_a_reload(live_server, browser_page, commune):
    page = browser_page
    errors = open_form(page, live_server, commune)
    page.check('input[name="kind"][value="returnee"]')
    page.check("#f-consent")
    page.fill("#f-full_name", "Hà Văn Thắng")
    page.check('input[name="skills_gained"][value="welding"]')
    instance_id = page.input_value("#f-instance_id")
    page.reload()
    page.locator("body.ready").wait_for(timeout=20000)
    assert page.input_value("#f-full_name") == "Hà Văn Thắng" and page.is_checked('input[name="skills_gained"][value="welding"]')
    assert page.locator("#f-return_date").is_visible() and not page.locator("#f-sector").is_visible()
    assert page.input_value("#f-instance_id") == instance_id  # the same form, the same id
    assert errors == []


def test_forms_wait_for_a_sign_in_and_a_wrong_role_sends_nothing(live_server, browser_page, commune, seeded, surveyor, accounts):
    page = browser_page
    name = f"Trần Văn Chờ {uuid.uuid4().hex[:8]}"
    errors = open_form(page, live_server, commune)
    assert "Hãy đăng nhập để gửi phiếu" in page.inner_text("#signin-error")
    fill_aspirant(page, commune, surveyor=name, name="Phạm Thị Đợi")
    page.click("#save")
    unsent(page, 1)  # saved on the phone, not sent
    time.sleep(1.5)
    assert records_of(seeded, name) == []
    # Someone who may not send survey forms signs in: nothing is sent, the forms stay.
    police = accounts.user("police_analyst")
    page.fill('#signin input[name="username"]', police.name)
    page.fill('#signin input[name="password"]', police.password)
    page.click('#signin button[type="submit"]')
    page.locator("#signin-error", has_text="Tài khoản này không được gửi phiếu").wait_for(timeout=20000)
    unsent(page, 1)
    assert records_of(seeded, name) == []
    page.fill('#signin input[name="username"]', surveyor.name)
    page.fill('#signin input[name="password"]', "wrong password here")
    page.click('#signin button[type="submit"]')
    page.locator("#signin-error", has_text="Sai tên đăng nhập hoặc mật khẩu").wait_for(timeout=20000)
    sign_in(page, surveyor)
    rows = wait_for_records(seeded, name, 1)
    assert [r["full_name"] for r in rows] == ["Phạm Thị Đợi"]
    unsent(page, 0)
    with seeded.connect() as conn:
        sent_by = conn.execute(text("SELECT submitted_by FROM survey_record WHERE surveyor = :s"), {"s": name}).scalar()
    assert sent_by == surveyor.name
    page.click("#signout")
    assert page.locator("#signin").is_visible()
    assert errors == []


# -- in the field: issue 11 -------------------------------------------------------------------------

PHONE = {"width": 360, "height": 740}


class KillableChromium:
    """Debian's Chromium started by the test itself on a profile folder, so that its process can be killed
    (a dying battery, the OS ending the browser) and started again on the same profile; driven over CDP."""

    def __init__(self, playwright, profile: Path) -> None:
        self.playwright = playwright
        self.profile = profile
        self.process = None
        self.browser = None

    def start(self):
        import subprocess

        from tests.conftest import CHROMIUM

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--lang=vi-VN", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        ws = None
        for line in self.process.stderr:  # Chromium says where its DevTools listen, then goes on
            if "DevTools listening on" in line:
                ws = line.split("DevTools listening on", 1)[1].strip()
                break
        assert ws, "Chromium did not start"
        self.browser = self.playwright.chromium.connect_over_cdp(ws)
        context = self.browser.contexts[0]
        page = context.pages[0] if context.pages else context.new_page()
        page.set_viewport_size(PHONE)
        return page

    def kill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process.stderr.close()
        self.browser = None

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill()


def test_a_saved_form_survives_the_browser_killed_half_a_second_later(live_server, commune, seeded, tmp_path):
    from playwright.sync_api import sync_playwright

    name = f"Pin Hết {uuid.uuid4().hex[:8]}"
    with sync_playwright() as p:
        chromium = KillableChromium(p, tmp_path / "profile")
        try:
            page = chromium.start()
            errors = open_form(page, live_server, commune)  # not signed in: the form waits on the phone
            fill_aspirant(page, commune, surveyor=name, name="Nguyễn Văn Sạc")
            page.click("#save")
            page.locator(".notice", has_text="Đã lưu phiếu của Nguyễn Văn Sạc").wait_for(timeout=20000)
            page.check("#f-consent")
            page.fill("#f-full_name", "Trần Thị Nháp")  # the next person, half typed
            page.wait_for_function("""() => new Promise(resolve => { const o = indexedDB.open('labour-atlas-survey');
                o.onsuccess = () => { const r = o.result.transaction('kv').objectStore('kv').get('labourAtlas.survey.draft');
                r.onsuccess = () => { o.result.close(); resolve(!!r.result && r.result.values.full_name === 'Trần Thị Nháp'); }; }; })""")
            time.sleep(0.5)
            assert errors == []
            chromium.kill()
            page = chromium.start()
            errors = open_form(page, live_server, commune)
            unsent(page, 1)
            (item,) = queued(page)
            assert item["payload"]["full_name"] == "Nguyễn Văn Sạc" and item["payload"]["surveyor"] == name
            assert page.input_value("#f-full_name") == "Trần Thị Nháp"
            assert errors == []
        finally:
            chromium.close()


def test_the_old_local_storage_queue_is_kept_by_the_upgrade(live_server, browser_page, commune):
    page = browser_page
    open_form(page, live_server, commune)
    old = [{"id": str(uuid.uuid4()), "url": "/api/v1/submissions", "payload": {"full_name": f"Người {i}"}, "who": f"Người {i}"}
           for i in range(2)]
    page.evaluate("q => localStorage.setItem('labourAtlas.survey.queue', JSON.stringify(q))", old)
    page.evaluate("d => localStorage.setItem('labourAtlas.survey.draft', JSON.stringify(d))",
                  {"values": {"instance_id": str(uuid.uuid4()), "full_name": "Lê Thị Cũ"}})
    page.reload()
    page.locator("body.ready").wait_for(timeout=20000)
    unsent(page, 2)
    assert [i["id"] for i in queued(page)] == [i["id"] for i in old]
    assert page.input_value("#f-full_name") == "Lê Thị Cũ"
    assert page.evaluate("() => localStorage.getItem('labourAtlas.survey.queue')") is None  # moved, once


def test_a_new_phone_finds_a_commune_offline_on_the_first_day(live_server, browser_page, seeded, accounts):
    """Signed in at the office, then no signal: a commune never looked up is found and the form saved."""
    page = browser_page
    with seeded.connect() as conn:
        target = conn.execute(text(
            """SELECT code, name, ST_Y(ST_PointOnSurface(geom)) AS lat, ST_X(ST_PointOnSurface(geom)) AS lon
               FROM admin_unit WHERE structure = '2025' AND level = 'commune' AND parent_code = '42'
               AND geom IS NOT NULL ORDER BY code DESC LIMIT 1""")).one()._asdict()
    account = accounts.user("surveyor", ("42",))
    surveyor = f"Ngày Đầu {uuid.uuid4().hex[:8]}"
    errors = open_form(page, live_server, target, account=account)
    page.wait_for_function("""() => new Promise(resolve => { const o = indexedDB.open('labour-atlas-survey');
        o.onsuccess = () => { const r = o.result.transaction('kv').objectStore('kv').get('labourAtlas.survey.area');
        r.onsuccess = () => { o.result.close(); resolve(!!r.result && r.result.units.length > 0); }; }; })""")
    page.context.set_offline(True)
    page.fill("#f-surveyor", surveyor)
    # Typed without diacritics, never searched before on this phone.
    typed = "".join(c for c in __import__("unicodedata").normalize("NFD", target["name"].replace("Đ", "D").replace("đ", "d"))
                    if not __import__("unicodedata").combining(c)).lower()
    page.fill("#f-commune_code-q", typed)
    choice = page.locator(f'#f-commune_code-results button[data-code="{target["code"]}"]')
    choice.wait_for(timeout=10000)
    assert "Hà Tĩnh" in choice.inner_text()
    assert "Không có mạng" in page.inner_text("#f-commune_code-status")
    choice.click()
    fill_aspirant(page, target, surveyor=surveyor, name="Lý Thị Bản")
    page.click("#save")
    unsent(page, 1)
    page.context.set_offline(False)
    rows = wait_for_records(seeded, surveyor, 1)
    assert [r["declared_commune_code"] for r in rows] == [target["code"]]
    unsent(page, 0)
    assert errors == []


def test_a_lost_refresh_answer_does_not_end_the_session(live_server, browser_page, commune, seeded, surveyor):
    """The server renews the token but its answer never reaches the phone: the next renewal with the same token
    gets the same pair, the forms are sent, nobody types the password again."""
    page = browser_page
    account = surveyor
    surveyor = f"Sóng Yếu {uuid.uuid4().hex[:8]}"
    errors = open_form(page, live_server, commune, account=account)
    lost = []

    def drop_the_answer(route):
        if not lost:
            response = route.fetch()  # the server did the rotation...
            lost.append(response.json())
            route.abort("connectionreset")  # ...and the phone never heard of it
        else:
            route.continue_()

    page.route("**/api/v1/auth/refresh", drop_the_answer)
    page.context.set_offline(True)
    fill_aspirant(page, commune, surveyor=surveyor, name="Đinh Văn Mạng")
    page.click("#save")
    unsent(page, 1)
    before = stored(page, "session")
    store_value(page, "session", before | {"access_until": 0})  # the access token has expired meanwhile
    page.context.set_offline(False)
    page.click("#send-now")
    page.locator(".notice.ok", has_text="Đã gửi phiếu của Đinh Văn Mạng").wait_for(timeout=30000)
    assert len(lost) == 1
    after = stored(page, "session")
    assert after["refresh"] == lost[0]["refresh_token"] and after["access"] == lost[0]["access_token"]
    assert page.locator("#signin").is_hidden() and "Đang đăng nhập" in page.inner_text("#who")
    assert page.inner_text("#net") == ""  # online, and not told otherwise
    assert len(wait_for_records(seeded, surveyor, 1)) == 1
    assert errors == []


def test_a_session_ended_is_said_and_stays_said(live_server, browser_page, commune, seeded, surveyor):
    page = browser_page
    errors = open_form(page, live_server, commune, account=surveyor)
    session = stored(page, "session")
    store_value(page, "session", session | {"access_until": 0, "refresh": "revoked-or-unknown"})
    fill_aspirant(page, commune, surveyor=f"Hết Phiên {uuid.uuid4().hex[:8]}", name="Ông Hết Phiên")
    page.click("#save")
    page.locator("#signin-error", has_text="Phiên đăng nhập đã hết").wait_for(timeout=20000)
    unsent(page, 1)
    page.click("#send-now")
    page.wait_for_timeout(500)  # another try finds no session: the reason stays on screen
    assert "Phiên đăng nhập đã hết" in page.inner_text("#signin-error") and page.inner_text("#net") == ""
    assert errors == []


def test_no_gps_the_interview_is_still_recorded_and_flagged(live_server, browser_page, commune, seeded, surveyor):
    page = browser_page
    account = surveyor
    surveyor = f"Trong Nhà {uuid.uuid4().hex[:8]}"
    errors = open_form(page, live_server, commune, account=account)
    page.context.clear_permissions()  # location refused
    page.check('input[name="kind"][value="aspirant"]')
    page.fill("#f-surveyor", surveyor)
    page.check("#f-consent")
    pick_commune(page, commune)
    page.click("#save")
    assert "Chưa có vị trí GPS" in page.inner_text("#err-location")  # GPS or a reason
    page.click("#f-location-button")
    page.locator("#f-location-status", has_text="Không được phép dùng vị trí").wait_for(timeout=10000)
    assert page.is_checked('input[name="location_missing_reason"][value="denied"]')  # offered, may be changed
    page.check('input[name="location_missing_reason"][value="indoors"]')
    page.fill("#f-full_name", "Hồ Thị Trong")
    page.fill("#f-birth_year", "1995")
    page.check('input[name="sex"][value="female"]')
    page.check('input[name="markets_wanted"][value="JP"]')
    page.select_option("#f-sector", "sewing")
    page.click("#save")
    notice = page.locator(".notice.warn", has_text="Đã gửi phiếu của Hồ Thị Trong")
    notice.wait_for(timeout=20000)
    assert "Cán bộ sẽ kiểm tra" in notice.inner_text() and "không có vị trí GPS" in notice.inner_text()
    (row,) = wait_for_records(seeded, surveyor, 1)
    assert row["declared_commune_code"] == row["assigned_commune_code"] == commune["code"]
    with seeded.connect() as conn:
        stored_row = conn.execute(text("SELECT geom IS NULL AS no_point, location_missing_reason FROM survey_record "
                                       "WHERE surveyor = :s"), {"s": surveyor}).one()
    assert stored_row.no_point and stored_row.location_missing_reason == "indoors"
    assert errors == []


FAST_CLOCK = """(() => {
  // The phone's clock is three hours fast.
  const Real = Date, ahead = 3 * 3600 * 1000;
  class PhoneDate extends Real {
    constructor(...a) { if (a.length === 0) super(Real.now() + ahead); else super(...a); }
    static now() { return Real.now() + ahead; }
  }
  PhoneDate.parse = Real.parse; PhoneDate.UTC = Real.UTC;
  globalThis.Date = PhoneDate;
})();"""


def test_a_form_rejected_for_the_phones_clock_is_corrected_and_stored(live_server, browser_page, commune, seeded, surveyor):
    page = browser_page
    account = surveyor
    surveyor = f"Đồng Hồ {uuid.uuid4().hex[:8]}"
    page.add_init_script(FAST_CLOCK)
    errors = open_form(page, live_server, commune, account=account)
    fill_aspirant(page, commune, surveyor=surveyor, name="Vi Văn Giờ")
    page.click("#save")
    rejected = page.locator(".notice.error", has_text="Máy chủ từ chối phiếu của Vi Văn Giờ")
    rejected.wait_for(timeout=20000)
    text_ = rejected.inner_text()
    assert "Thời điểm khảo sát" in text_ and "đồng hồ điện thoại có vẻ sai" in text_  # the server, in Vietnamese
    assert "nhanh hơn giờ chuẩn khoảng 3 giờ" in text_  # by how much, from the server's Date header
    assert records_of(seeded, surveyor) == []
    rejected.get_by_role("button", name="Sửa lại phiếu này").click()
    assert page.input_value("#f-full_name") == "Vi Văn Giờ"
    page.click("#save")
    page.locator(".notice.ok", has_text="Đã gửi phiếu của Vi Văn Giờ").wait_for(timeout=20000)
    assert len(wait_for_records(seeded, surveyor, 1)) == 1
    with seeded.connect() as conn:
        collected, status = conn.execute(text(
            """SELECT r.collected_at, q.status FROM survey_record r
               JOIN submission_quarantine q ON q.resolved_instance_id = r.instance_id WHERE r.surveyor = :s"""),
            {"s": surveyor}).one()
    assert status == "resubmitted"
    # The interview's time, set right: within minutes of now, not three hours ahead.
    assert abs((collected - dt.datetime.now(dt.UTC)).total_seconds()) < 600
    assert errors == []


def test_small_things_on_a_phone(live_server, browser_page, commune, surveyor):
    page = browser_page
    page.set_viewport_size(PHONE)
    errors = open_form(page, live_server, commune, account=surveyor)
    for selector in ("#other-lang", "#signout"):
        box = page.locator(selector).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, selector
    # An empty save puts the surveyor on the first question to answer.
    page.click("#save")
    assert page.evaluate("document.activeElement.name") == "kind"
    # At 130 % text size every country name of the grid is whole, inside the screen.
    page.evaluate("document.body.style.fontSize = '23.4px'")
    page.check('input[name="kind"][value="aspirant"]')
    page.check("#f-consent")
    overflow = page.eval_on_selector_all(
        '#f-markets_wanted label.check',
        """els => els.filter(l => { const s = l.querySelector('span'); const r = l.getBoundingClientRect();
                                    return s.scrollWidth > s.clientWidth + 1 || r.right > document.documentElement.clientWidth; })
                    .map(l => l.textContent)""")
    assert overflow == []
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert errors == []


def test_answers_are_compressed_and_the_form_definition_revalidated(live_server):
    import httpx

    from api.routers.survey_page import asset_version

    with httpx.Client(base_url=live_server, headers={"Accept-Encoding": "gzip"}) as http:
        spec = http.get("/survey/form.json")
        assert spec.status_code == 200 and spec.headers["content-encoding"] == "gzip"
        assert int(spec.headers["content-length"]) < len(spec.content) / 3  # the bytes on the wire
        assert spec.json()["messages"]["required"]["vi"] == "Phải trả lời câu này"
        etag = spec.headers["etag"]
        again = http.get("/survey/form.json", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        page = http.get("/survey")
        assert page.headers["content-encoding"] == "gzip"
        assert http.get("/survey", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
        sw = http.get("/survey/sw.js")
        assert http.get("/survey/sw.js", headers={"If-None-Match": sw.headers["etag"]}).status_code == 304
        script = http.get(f"/static/survey/survey.js?v={asset_version()}")
        assert script.headers["content-encoding"] == "gzip" and "immutable" in script.headers["cache-control"]
        assert http.get("/static/survey/survey.js", headers={"If-None-Match": script.headers["etag"]}).status_code == 304
        assert http.get("/static/survey/survey.js?v=old").headers["cache-control"] == "no-cache"
        api = http.get("/api/v1/units", params={"level": "province", "limit": 1000})
        assert api.headers["content-encoding"] == "gzip"  # the whole app, not only the form
        icon = http.get("/favicon.ico")
        assert icon.status_code == 200 and icon.content.startswith(b"\x89PNG")
