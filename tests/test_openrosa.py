"""ODK Collect / KoboCollect (OpenRosa 1.0): XLSForm, XForm, form list and submissions."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import text

from survey.definition import FORM, Field
from survey.identity import national_id_hash
from survey.openrosa import parse_submission_xml
from survey.xlsform import VI, validate_xform, xform_xml, xlsform_bytes, xlsform_sheets
from tests.payloads import NOW, XF, answers, basic, instance_xml, primary_instance

XFORMS_LIST = "{http://openrosa.org/xforms/xformsList}"
RESPONSE = "{http://openrosa.org/http/response}"
ODK_HEADERS = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/v2024.3.1"}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


COLLECT_AUTH: dict[str, str] = {}


@pytest.fixture(autouse=True)
def collect_account(accounts):
    """ODK Collect signs in with HTTP Basic as a surveyor (of the whole country, for these tests)."""
    u = accounts.user("surveyor")
    COLLECT_AUTH.update(basic(u.name, u.password))
    return u


def post_odk(client, xml: bytes, *, attachment: bool = True, auth: dict[str, str] | None = None):
    files = [("xml_submission_file", ("submission.xml", xml, "text/xml"))]
    if attachment:
        files.append(("1718000000000.jpg", ("1718000000000.jpg", JPEG, "image/jpeg")))
    return client.post("/openrosa/submission", files=files, headers=ODK_HEADERS | (COLLECT_AUTH if auth is None else auth))


def message(response) -> tuple[str | None, str]:
    root = ET.fromstring(response.content)
    assert root.tag == f"{RESPONSE}OpenRosaResponse"
    msg = root.find(f"{RESPONSE}message")
    return msg.get("nature"), msg.text or ""


def count(seeded, instance_id: str) -> int:
    with seeded.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM survey_record WHERE instance_id = CAST(:i AS uuid)"), {"i": instance_id}).scalar()


# -- the form -------------------------------------------------------------------


def test_the_generated_xform_passes_odk_validate():
    xform = xform_xml()
    validate_xform(xform)  # raises ODKValidateError if ODK Validate rejects it
    template = primary_instance(xform)
    assert template.tag == f"{XF}{FORM.form_id}"
    assert template.get("id") == FORM.form_id and template.get("version") == FORM.version
    names = [el.tag.split("}")[-1] for el in template.iter()]
    assert "instanceID" in names and "instance_id" not in names
    assert {f.name for f in FORM.fields} - set(names) == {"instance_id"}


def test_the_xlsform_follows_the_definition():
    sheets = xlsform_sheets()
    rows = {r["name"]: r for r in sheets["survey"]}
    assert list(rows) == [f.name for f in FORM.fields if f.name != "instance_id"]
    assert rows["collected_at"]["type"] == "start"
    assert rows["consent"]["type"] == "select_one yes_no" and rows["consent"]["constraint"] == ". = 'yes'"
    assert rows["commune_code"]["type"] == "text" and "[0-9]{5}" in rows["commune_code"]["constraint"]
    # No GPS, no record? No: the point may be blank when the reason for it is given (required, asked only then).
    assert rows["location"]["type"] == "geopoint" and "required" not in rows["location"]
    reason = rows["location_missing_reason"]
    assert reason["type"] == "select_one location_missing_reason" and reason["required"] == "yes"
    assert reason["relevant"] == "string-length(${location}) = 0"
    assert rows["markets_wanted"]["type"] == "select_multiple market"
    assert rows["markets_wanted"]["relevant"] == "${kind} = 'aspirant'"
    assert rows["contract_months"]["constraint"] == ". >= 1 and . <= 120"
    assert "- 80" in rows["birth_year"]["constraint"] and "- 15" in rows["birth_year"]["constraint"]
    assert rows["full_name"][f"label::{VI}"] == "Họ và tên" and rows["full_name"]["label::English (en)"] == "Full name"
    assert "relevant" not in rows["full_name"]
    settings = sheets["settings"][0]
    assert settings == settings | {"form_id": FORM.form_id, "version": FORM.version, "form_title": FORM.title_vi,
                                   "default_language": VI}
    lists = {c["list_name"] for c in sheets["choices"]}
    assert {"yes_no", "kind", "market", "skills", "ethnicity"} <= lists


def test_a_change_to_the_definition_changes_the_xform_and_the_xlsform():
    changed = FORM.with_field(Field("village", "text", "Thôn", "Village"), after="commune_code")
    xform = xform_xml(changed)
    assert "village" not in xform_xml()
    validate_xform(xform)
    template = primary_instance(xform)
    names = [el.tag.split("}")[-1] for el in template]
    assert names[names.index("commune_code") + 1] == "village"
    assert "<value>Thôn</value>" in xform
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(xlsform_bytes(changed)))["survey"]
    assert ["village", "Thôn", "Village"] in [[c.value for c in row][1:4] for row in ws.iter_rows()]
    # and a submission of the changed form maps back
    assert parse_submission_xml("<x id='labour_survey'><village>Thôn 3</village></x>", changed)["village"] == "Thôn 3"
    assert "village" not in parse_submission_xml("<x id='labour_survey'><village>Thôn 3</village></x>")


def test_an_instance_maps_to_the_api_payload():
    xml = """<?xml version='1.0' ?>
    <labour_survey xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" id="labour_survey" version="7">
      <kind>returnee</kind><grp><consent>yes</consent><sub><birth_year>1990</birth_year></sub></grp>
      <location>18.34 105.9 10 4.5</location><phone/><skills_gained> welding  it </skills_gained>
      <mock_location>no</mock_location><return_date>2024-03-01</return_date><full_name>Trần Văn Ất</full_name>
      <unknown>x</unknown>
      <orx:meta><orx:instanceID>uuid:0b0e7a52-7f1c-4a5e-9a34-2f1f3c1c9b11</orx:instanceID><orx:instanceName>n</orx:instanceName></orx:meta>
    </labour_survey>""".encode()
    assert parse_submission_xml(xml) == {
        "form_id": "labour_survey", "form_version": "7", "kind": "returnee", "consent": True, "birth_year": 1990,
        "location": "18.34 105.9 10 4.5", "skills_gained": ["welding", "it"], "mock_location": False,
        "return_date": "2024-03-01", "full_name": "Trần Văn Ất", "instance_id": "0b0e7a52-7f1c-4a5e-9a34-2f1f3c1c9b11",
    }


# -- the OpenRosa server --------------------------------------------------------


def test_form_list_lists_the_form_with_its_hash_and_download_url(client):
    r = client.get("/openrosa/formList", headers=ODK_HEADERS)
    assert r.status_code == 200 and r.headers["X-OpenRosa-Version"] == "1.0"
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{XFORMS_LIST}xforms"
    (form,) = root.findall(f"{XFORMS_LIST}xform")
    get = lambda tag: form.find(f"{XFORMS_LIST}{tag}").text  # noqa: E731
    assert get("formID") == FORM.form_id and get("version") == FORM.version and get("name") == FORM.title_vi
    url = get("downloadUrl")
    assert url.endswith(f"/openrosa/forms/{FORM.form_id}.xml")
    xform = client.get(url)
    assert xform.status_code == 200 and xform.headers["X-OpenRosa-Version"] == "1.0"
    assert get("hash") == "md5:" + hashlib.md5(xform.content).hexdigest()
    assert xform.content.decode("utf-8") == xform_xml()
    assert "Khảo sát lao động" in xform.text
    assert client.get("/openrosa/formList", params={"formID": "nope"}).text.count("<xform>") == 0


def test_unknown_form_is_404(client):
    r = client.get("/openrosa/forms/nope.xml")
    assert r.status_code == 404 and r.headers["X-OpenRosa-Version"] == "1.0"


def test_the_xlsform_downloads_with_vietnamese_labels(client):
    from openpyxl import load_workbook

    r = client.get(f"/openrosa/forms/{FORM.form_id}.xlsx")
    assert r.status_code == 200 and r.headers["X-OpenRosa-Version"] == "1.0"
    assert "spreadsheetml" in r.headers["content-type"]
    wb = load_workbook(io.BytesIO(r.content))
    assert {"survey", "choices", "settings"} <= set(wb.sheetnames)
    survey = [[c.value for c in row] for row in wb["survey"].iter_rows()]
    header = survey[0]
    vi, name = header.index(f"label::{VI}"), header.index("name")
    labels = {row[name]: row[vi] for row in survey[1:]}
    assert labels["full_name"] == "Họ và tên" and labels["commune_code"] == "Xã/phường nơi khảo sát"
    choices = [[c.value for c in row] for row in wb["choices"].iter_rows()]
    assert ["sex", "female", "Nữ", "Female"] in choices and ["ethnicity", "54", "Rơ-măm", "Rơ-măm"] in choices
    settings = [[c.value for c in row] for row in wb["settings"].iter_rows()]
    assert dict(zip(settings[0], settings[1], strict=True))["default_language"] == VI


def test_head_submission(anonymous_client):
    challenge = anonymous_client.head("/openrosa/submission", headers=ODK_HEADERS)
    assert challenge.status_code == 401 and challenge.headers["www-authenticate"].startswith("Basic ")
    r = anonymous_client.head("/openrosa/submission", headers=ODK_HEADERS | COLLECT_AUTH)
    assert r.status_code == 204
    assert r.headers["X-OpenRosa-Version"] == "1.0"
    assert int(r.headers["X-OpenRosa-Accept-Content-Length"]) > 1_000_000


def test_a_collect_submission_is_stored_once_however_often_it_is_sent(client, commune, seeded):
    values = answers(commune)
    iid = values["instanceID"].removeprefix("uuid:")
    xml = instance_xml(values)
    r = post_odk(client, xml)
    assert r.status_code == 201, r.text
    assert r.headers["X-OpenRosa-Version"] == "1.0"
    assert message(r)[0] == "submit_success"
    record = client.get(f"/api/v1/submissions/{iid}").json()
    assert record["full_name"] == "Nguyễn Thị Hồng Nhung" and record["surveyor"] == "Lê Văn Khảo"
    assert record["source"] == "openrosa" and record["kind"] == "aspirant" and record["birth_year"] == 1999
    assert record["assigned_commune_code"] == commune["code"] and record["gps_accuracy_m"] == 8.5
    assert record["answers"]["markets_wanted"] == ["JP", "KR"] and record["answers"]["skills"] == ["caregiving", "sewing"]
    assert "phone" not in record["answers"] and record["has_national_id"] is True
    assert dt.datetime.fromisoformat(record["collected_at"]) == NOW - dt.timedelta(hours=1) + dt.timedelta(milliseconds=123)

    again = post_odk(client, xml)  # Collect retries when it did not see the answer
    assert again.status_code == 201 and message(again)[0] == "submit_success"
    assert count(seeded, iid) == 1

    changed = post_odk(client, instance_xml(dict(values, birth_year="1998")))
    assert changed.status_code == 409 and iid in message(changed)[1]
    assert count(seeded, iid) == 1


def test_a_submission_without_consent_keeps_nothing_personal(client, commune, seeded):
    values = answers(commune, consent="no", full_name="Phạm Thị Riêng Tư", national_id="001099000777")
    iid = values["instanceID"].removeprefix("uuid:")
    r = post_odk(client, instance_xml(values))
    assert r.status_code == 422
    nature, text_ = message(r)
    assert nature == "error" and "consent" in text_
    assert count(seeded, iid) == 0
    with seeded.connect() as conn:
        rows = conn.execute(
            text("SELECT payload_text, personal_removed FROM submission_quarantine WHERE instance_id = :i"), {"i": iid}
        ).all()
    assert len(rows) == 1 and rows[0].personal_removed is True
    kept = rows[0].payload_text
    for secret in ("Phạm Thị Riêng Tư", "001099000777", "birth_year", str(commune["lat"])[:6], "near_poor", "sewing"):
        assert secret not in kept
    assert '"consent":false' in kept


def test_an_invalid_submission_is_quarantined_verbatim(client, commune, seeded):
    values = answers(commune, birth_year="1920", markets_wanted="JP XX", commune_code="99999")
    iid = values["instanceID"].removeprefix("uuid:")
    xml = instance_xml(values)
    r = post_odk(client, xml)
    assert r.status_code == 422 and r.headers["X-OpenRosa-Version"] == "1.0"
    nature, text_ = message(r)
    # Every failing field at once: the commune, checked in the database, with the others.
    assert nature == "error" and "birth_year" in text_ and "markets_wanted" in text_ and "unknown commune code 99999" in text_
    entry = next(e for e in client.get("/api/v1/quarantine").json() if e["instance_id"] == iid)
    # Verbatim, except that the national ID number is kept only as its keyed hash.
    masked = xml.decode("utf-8").replace(values["national_id"], "hmac:" + national_id_hash(values["national_id"]))
    assert entry["payload_text"] == masked and entry["source"] == "openrosa"
    assert values["national_id"] not in entry["payload_text"]
    assert {e["field"] for e in entry["reasons"]} == {"birth_year", "markets_wanted", "commune_code"}
    assert count(seeded, iid) == 0
    fixed = dict(values, birth_year="1999", markets_wanted="JP")
    r2 = post_odk(client, instance_xml(fixed))
    assert r2.status_code == 422 and "unknown commune code 99999" in message(r2)[1]


def test_malformed_and_foreign_documents_are_quarantined(client, seeded):
    broken = b"<labour_survey id='labour_survey'><kind>aspirant</kind>"
    r = post_odk(client, broken, attachment=False)
    assert r.status_code == 422 and "xml_submission_file" in message(r)[1]
    other = b"<data id='another_form'><consent>yes</consent><meta><instanceID>uuid:1</instanceID></meta></data>"
    r = post_odk(client, other, attachment=False)
    assert r.status_code == 422 and "another_form" in message(r)[1]
    q = client.get("/api/v1/quarantine").json()
    assert any(e["payload_text"] == broken.decode() for e in q)


def test_a_post_without_the_instance_is_400(client):
    r = client.post("/openrosa/submission", files={"photo.jpg": ("photo.jpg", JPEG, "image/jpeg")}, headers=ODK_HEADERS | COLLECT_AUTH)
    assert r.status_code == 400 and r.headers["X-OpenRosa-Version"] == "1.0"
    assert message(r)[0] == "error" and "xml_submission_file" in message(r)[1]
    r = client.post("/openrosa/submission", content=b"<x/>", headers=ODK_HEADERS | COLLECT_AUTH | {"content-type": "text/xml"})
    assert r.status_code == 400 and r.headers["X-OpenRosa-Version"] == "1.0"


def test_collect_must_sign_in_and_stays_inside_its_area(anonymous_client, accounts, commune, seeded):
    values = answers(commune)
    xml = instance_xml(values)
    iid = values["instanceID"].removeprefix("uuid:")
    unsigned = post_odk(anonymous_client, xml, auth={})
    assert unsigned.status_code == 401 and unsigned.headers["www-authenticate"].startswith("Basic ")
    surveyor = accounts.user("surveyor", (commune["code"],))
    wrong = post_odk(anonymous_client, xml, auth=basic(surveyor.name, "not the password"))
    assert wrong.status_code == 401 and count(seeded, iid) == 0
    police = accounts.user("police_analyst")
    assert post_odk(anonymous_client, xml, auth=basic(police.name, police.password)).status_code == 403
    # A surveyor of one commune cannot store a record of another: kept in quarantine instead.
    elsewhere = accounts.user("surveyor", (commune["other"]["code"],))
    refused = post_odk(anonymous_client, xml, auth=basic(elsewhere.name, elsewhere.password))
    assert refused.status_code == 403 and "outside the area" in message(refused)[1]
    assert count(seeded, iid) == 0
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT submitted_by FROM submission_quarantine WHERE instance_id = :i"), {"i": iid}).scalar() == elsewhere.name
    stored = post_odk(anonymous_client, xml, auth=basic(surveyor.name, surveyor.password))
    assert stored.status_code == 201 and count(seeded, iid) == 1
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT submitted_by FROM survey_record WHERE instance_id = :i"), {"i": iid}).scalar() == surveyor.name
