"""Regression tests of the intake defects found by testing as an outside user (issue 10).

Each is written from the user's side: the file or request that failed, through the CLI or HTTP,
with the database counted before and after. The hostile payloads themselves are in the catalogue
(tests/bad_inputs/).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import unicodedata
import uuid

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from etl.surveys import import_surveys
from survey.definition import FORM
from survey.webform import webform_spec
from survey.xlsform import xlsform_sheets
from tests.payloads import NOW, answers, aspirant, basic, instance_xml

NFD = "Nguyễn Thị Hồng Nhung"
assert len(unicodedata.normalize("NFD", NFD)) > len(NFD)


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def record(engine, instance_id: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM survey_record WHERE instance_id = CAST(:i AS uuid)"), {"i": instance_id}).mappings().first()


def kobo_csv(path, rows: list[dict], *, separator=";", labels=False) -> None:
    """A CSV as KoboToolbox (formpack) writes it: every field quoted, CRLF, UTF-8 with BOM."""
    headers = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, delimiter=separator, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(headers)
        for r in rows:
            w.writerow([r.get(h, "") for h in headers])


def csv_row(p: dict, commune: dict) -> dict:
    """A payload as a row of Labour Atlas's own CSV (multiple choices space-separated)."""
    row = {k: (" ".join(v) if isinstance(v, list) else v) for k, v in p.items() if k != "location" and v is not None}
    return row | {"location_lat": commune["lat"], "location_lon": commune["lon"], "consent": "yes"}


def kobo_row_xml_names(p: dict, decimal_comma: bool) -> dict:
    lat, lon = f"{p['location']['lat']:.6f}", f"{p['location']['lon']:.6f}"
    if decimal_comma:
        lat, lon = lat.replace(".", ","), lon.replace(".", ",")
    return {
        "start": p["collected_at"], "end": p["collected_at"], "kind": p["kind"], "surveyor": p["surveyor"], "consent": "yes",
        "commune_code": p["commune_code"], "location": f"{lat} {lon} 12 4{',' if decimal_comma else '.'}5",
        "_location_latitude": lat, "_location_longitude": lon, "_location_altitude": "12",
        "_location_precision": "4,5" if decimal_comma else "4.5",
        "nguoi/full_name": p["full_name"], "nguoi/national_id": p["national_id"], "nguoi/birth_year": str(p["birth_year"]),
        "nguoi/sex": p["sex"], "nguoi/skills": "caregiving sewing", "nguoi/skills/caregiving": "1", "nguoi/skills/sewing": "1",
        "nguoi/skills/it": "0", "di_lam/markets_wanted": " ".join(p["markets_wanted"]), "di_lam/sector": p["sector"],
        "meta/instanceID": f"uuid:{p['instance_id']}", "_id": "4711", "_uuid": p["instance_id"],
        "_submission_time": "2026-11-21T01:00:00", "_validation_status": "", "_notes": "", "_status": "submitted_via_web",
        "_submitted_by": "khaosat01", "__version__": "vUq8x", "_tags": "", "_index": "1",
    }


@pytest.mark.parametrize("decimal_comma", [True, False], ids=["excel-decimal-commas", "kobo-default"])
def test_kobo_default_csv_export_with_semicolons_is_imported(seeded, commune, tmp_path, decimal_comma):
    ps = [aspirant(commune, full_name="Hà Thị Mỷ", markets_wanted=["KR", "JP"]), aspirant(commune, full_name="Vàng A Chứ")]
    path = tmp_path / "labour_survey_-_all_versions_-_False_-_2026-11-30-10-11-12.csv"
    kobo_csv(path, [kobo_row_xml_names(p, decimal_comma) for p in ps])
    assert path.read_bytes().count(b"\r\n") == 3 and path.read_bytes()[3:4] == b'"'
    r = import_surveys(path)
    assert dict(r.counts) == {"created": 2}, r.rejected
    assert "semicolon" in r.dialect
    stored = record(seeded, ps[0]["instance_id"])
    assert stored["full_name"] == "Hà Thị Mỷ" and stored["answers"]["skills"] == ["caregiving", "sewing"]
    assert abs(stored["gps_accuracy_m"] - 4.5) < 1e-6 and stored["assigned_commune_code"] == commune["code"]


def test_kobo_labels_export_is_imported(seeded, commune, tmp_path):
    """Headers and answers as Vietnamese labels, groups joined by '/', multiple choices as labels and as 1/0 columns."""
    p = aspirant(commune, full_name="Lò Thị Xuân", markets_wanted=["KR", "TW"], sector="food_processing", ethnicity="02")
    f = {x.name: x for x in FORM.fields}
    label = {c.value: c.vi for c in FORM.choices["market"]}
    row = {
        "start": p["collected_at"], f["kind"].vi: "Người có nhu cầu đi làm việc ở nước ngoài",
        f["surveyor"].vi: p["surveyor"], f["consent"].vi: "Có", f["commune_code"].vi: p["commune_code"],
        f["location"].vi: f"{p['location']['lat']} {p['location']['lon']} 0 6",
        f"_{f['location'].vi}_latitude": str(p["location"]["lat"]), f"_{f['location'].vi}_longitude": str(p["location"]["lon"]),
        f"_{f['location'].vi}_precision": "6",
        f"Thông tin người lao động/{f['full_name'].vi}": p["full_name"],
        f"Thông tin người lao động/{f['national_id'].vi}": p["national_id"],
        f"Thông tin người lao động/{f['birth_year'].vi}": str(p["birth_year"]),
        f"Thông tin người lao động/{f['sex'].vi}": "Nữ", f"Thông tin người lao động/{f['ethnicity'].vi}": "Tày",
        f"Nhu cầu/{f['markets_wanted'].vi}": f"{label['KR']} {label['TW']}",  # "Hàn Quốc Đài Loan": labels of two words
        **{f"Nhu cầu/{f['markets_wanted'].vi}/{label[m]}": "1" if m in ("KR", "TW") else "0" for m in ("JP", "KR", "TW")},
        f"Nhu cầu/{f['sector'].vi}": "Chế biến thực phẩm",
        "instanceID": f"uuid:{p['instance_id']}", "_uuid": p["instance_id"],
    }
    path = tmp_path / "kobo_labels.csv"
    kobo_csv(path, [row])
    r = import_surveys(path)
    assert dict(r.counts) == {"created": 1}, r.rejected
    stored = record(seeded, p["instance_id"])
    assert stored["sex"] == "female" and stored["answers"]["markets_wanted"] == ["KR", "TW"]
    assert stored["answers"]["sector"] == "food_processing" and stored["answers"]["ethnicity"] == "02"
    assert stored["full_name"] == "Lò Thị Xuân"


def test_a_header_that_cannot_be_matched_says_what_was_expected_found_and_used(seeded, tmp_path):
    path = tmp_path / "khac.csv"
    path.write_text('"ho_ten","nam_sinh"\r\n"Lê Văn A","1990"\r\n', encoding="utf-8")
    before = count(seeded, "SELECT count(*) FROM submission_quarantine")
    result = CliRunner().invoke(cli_app, ["import", "surveys", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    out = result.output
    assert "no column for instance_id" in out and "and kind" in out and "meta/instanceID" in out
    assert "found 2 columns: 'ho_ten', 'nam_sinh'" in out and "separator comma (,)" in out and "Nothing was imported" in out
    assert count(seeded, "SELECT count(*) FROM submission_quarantine") == before


def test_one_hostile_item_does_not_fail_its_batch(client, commune, seeded):
    good = [aspirant(commune, full_name=f"Tốt {i}") for i in range(2)]
    hostile = [
        aspirant(commune, location={"lat": commune["lat"], "lon": commune["lon"], "accuracy": 1e39}),
        aspirant(commune, full_name="Nul\u0000Byte"),
    ]
    body = json.dumps([good[0], *hostile, good[1]], ensure_ascii=False)
    body = body[:-1] + ', {"instance_id": "' + str(uuid.uuid4()) + '", "kind": "aspirant", "full_name": "x\\udc80"}]'
    before = count(seeded, "SELECT count(*) FROM submission_quarantine")
    r = client.post("/api/v1/submissions/batch", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["created", "rejected", "rejected", "created", "rejected"]
    assert r.json()["counts"]["created"] == 2 and r.json()["counts"]["rejected"] == 3
    assert all(record(seeded, p["instance_id"]) for p in good)
    assert count(seeded, "SELECT count(*) FROM submission_quarantine") == before + 3
    with seeded.connect() as conn:
        kept = conn.execute(text("SELECT payload_text FROM submission_quarantine WHERE id = :i"),
                            {"i": results[2]["quarantine_id"]}).scalar()
    assert "Nul\\u0000Byte" in kept  # kept, escaped


def test_a_batch_of_large_bad_items_keeps_a_bounded_quarantine(client, commune, seeded):
    items = [aspirant(commune, surveyor="x" * 600, full_name=f"Bad {i} " + "đ" * 2000) for i in range(400)]
    r = client.post("/api/v1/submissions/batch", json=items)
    assert r.status_code == 200 and r.json()["counts"]["rejected"] == 400
    ids = [x["quarantine_id"] for x in r.json()["results"]]
    assert len(set(ids)) == 400  # every rejected form has its entry and its reasons
    with seeded.connect() as conn:
        kept, with_reasons = conn.execute(
            text("SELECT sum(octet_length(payload_text)), count(*) FILTER (WHERE jsonb_array_length(reasons) > 0) "
                 "FROM submission_quarantine WHERE id = ANY(:ids)"), {"ids": ids}).one()
    sent = len(json.dumps(items, ensure_ascii=False).encode())
    assert sent > 2_000_000 and with_reasons == 400
    # At most the request's budget, then a kilobyte (and a note) per payload.
    assert kept <= 1024 * 1024 + 64 * 1024 + 400 * 1100


def test_resubmitting_cannot_take_over_another_record(client, commune, seeded):
    other = aspirant(commune, full_name="Người Khác Đã Lưu")
    assert client.post("/api/v1/submissions", json=other).status_code == 201
    bad = aspirant(commune, birth_year=1901, full_name="Phiếu Bị Từ Chối")
    qid = client.post("/api/v1/submissions", json=bad).json()["quarantine_id"]
    # Another person's existing record sent as the "correction": refused, nothing closed, nothing changed.
    takeover = client.post(f"/api/v1/quarantine/{qid}/resubmit", json=other)
    assert takeover.status_code == 409 and "stays open" in takeover.json()["detail"]
    status, resolved = count(seeded, "SELECT status FROM submission_quarantine WHERE id = :i", i=qid), \
        count(seeded, "SELECT resolved_instance_id FROM submission_quarantine WHERE id = :i", i=qid)
    assert status == "open" and resolved is None
    assert record(seeded, other["instance_id"])["full_name"] == "Người Khác Đã Lưu"
    # An invalid correction is rejected and the entry stays open.
    assert client.post(f"/api/v1/quarantine/{qid}/resubmit", json=dict(bad, birth_year=1902)).status_code == 422
    # The real correction (same instance id) is stored and closes the entry, pointing at it.
    fixed = client.post(f"/api/v1/quarantine/{qid}/resubmit", json=dict(bad, birth_year=1991))
    assert fixed.status_code == 201, fixed.text
    assert count(seeded, "SELECT resolved_instance_id::text FROM submission_quarantine WHERE id = :i", i=qid) == bad["instance_id"]
    again = client.post(f"/api/v1/quarantine/{qid}/resubmit", json=dict(bad, birth_year=1991))
    assert again.status_code == 409 and bad["instance_id"] in again.json()["detail"]


def test_a_correction_with_a_new_id_is_recorded_as_the_successor(client, commune, seeded):
    bad = aspirant(commune, sex="nam")
    qid = client.post("/api/v1/submissions", json=bad).json()["quarantine_id"]
    new = dict(bad, sex="male", instance_id=str(uuid.uuid4()))
    assert client.post(f"/api/v1/quarantine/{qid}/resubmit", json=new).status_code == 201
    assert count(seeded, "SELECT resolved_instance_id::text FROM submission_quarantine WHERE id = :i", i=qid) == new["instance_id"]


def test_text_is_stored_in_nfc_from_every_intake(client, commune, seeded, accounts, tmp_path):
    decomposed = unicodedata.normalize("NFD", NFD)
    api = aspirant(commune, full_name=decomposed, surveyor=unicodedata.normalize("NFD", "Lê Văn Khảo"))
    assert client.post("/api/v1/submissions", json=api).status_code == 201
    assert record(seeded, api["instance_id"])["full_name"] == NFD
    assert record(seeded, api["instance_id"])["surveyor"] == "Lê Văn Khảo"
    u = accounts.user("surveyor", ("42",))
    values = answers(commune, full_name=decomposed)
    odk = client.post("/openrosa/submission", files={"xml_submission_file": ("s.xml", instance_xml(values), "text/xml")},
                      headers={**basic(u.name, u.password), "X-OpenRosa-Version": "1.0"})
    assert odk.status_code == 201, odk.text
    assert record(seeded, values["instanceID"].removeprefix("uuid:"))["full_name"] == NFD
    row = aspirant(commune, full_name=decomposed)
    path = tmp_path / "nfd.csv"
    kobo_csv(path, [csv_row(row, commune)], separator=",")
    r = import_surveys(path)
    assert dict(r.counts) == {"created": 1}, r.rejected
    assert record(seeded, row["instance_id"])["full_name"] == NFD
    with seeded.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM survey_record WHERE full_name = :n AND instance_id = ANY(CAST(:ids AS uuid[]))"),
                             {"n": NFD, "ids": [api["instance_id"], row["instance_id"]]}).scalar()
    assert found == 2


def test_csv_messages_show_the_offending_value_and_say_which_date_bound(seeded, commune, tmp_path):
    rows = [aspirant(commune, sector="pilot"),
            aspirant(commune, kind="returnee", markets_wanted=None, sector=None, return_country="KR", return_date="1975-05-01",
                     contract_outcome="completed", job_status="employed"),
            aspirant(commune, kind="returnee", markets_wanted=None, sector=None, return_country="KR",
                     return_date=(NOW + dt.timedelta(days=3)).date().isoformat(), contract_outcome="completed", job_status="employed")]
    path = tmp_path / "messages.csv"
    kobo_csv(path, [csv_row(p, commune) for p in rows], separator=",")
    r = import_surveys(path)
    messages = {(row, field): message for row, field, message in r.rejected}
    assert "(got 'pilot')" in messages[2, "sector"]
    assert messages[3, "return_date"] == "is before 1980-01-01"
    assert messages[4, "return_date"] == "is after the survey date"


def test_the_national_id_format_is_checked_in_all_four_places(client, commune):
    assert client.post("/api/v1/submissions", json=aspirant(commune, national_id="042 199 012 345")).status_code == 201
    assert client.post("/api/v1/submissions", json=aspirant(commune, national_id="186.543.210")).status_code == 201  # old card
    r = client.post("/api/v1/submissions", json=aspirant(commune, national_id="04219901234"))  # 11 digits
    assert r.status_code == 422 and {k: r.json()["errors"][0][k] for k in ("field", "message")} == {
        "field": "national_id", "message": "A citizen identity number has 12 digits (an old identity card number: 9)"}
    assert "04219901234" not in r.text  # never repeated: it is kept only as a keyed hash
    row = next(x for x in xlsform_sheets()["survey"] if x["name"] == "national_id")
    assert row["constraint"] == "regex(translate(., ' .-', ''), '^([0-9]{9}|[0-9]{12})$')"
    assert "12 chữ số" in row[next(k for k in row if k.startswith("constraint_message::Tiếng Việt"))]
    spec = next(x for x in webform_spec()["fields"] if x["name"] == "national_id")
    assert spec["format"]["pattern"] == "^([0-9]{9}|[0-9]{12})$" and spec["format"]["ignore"] == " .-"


def test_openrosa_errors_are_openrosa_documents(client):
    """ODK Collect shows the server's message only from an OpenRosa response document."""
    anonymous = client.post("/openrosa/submission", files={"xml_submission_file": ("s.xml", b"<x/>", "text/xml")},
                            headers={"Authorization": "", "X-OpenRosa-Version": "1.0"})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    assert anonymous.headers["content-type"].startswith("text/xml") and "<OpenRosaResponse" in anonymous.text
    assert anonymous.headers["x-openrosa-version"] == "1.0"
    not_multipart = client.post("/openrosa/submission", content=b"hello", headers={"content-type": "text/plain"})
    assert not_multipart.headers["content-type"].startswith("text/xml")


def test_a_re_downloaded_export_does_not_quarantine_the_same_rows_again(seeded, commune, tmp_path):
    bad = [aspirant(commune, birth_year=1900), aspirant(commune, sector="pilot")]
    first = tmp_path / "export_2026-11-29.csv"
    kobo_csv(first, [kobo_row_xml_names(p, False) for p in bad])
    assert dict(import_surveys(first).counts) == {"rejected": 2}
    before = count(seeded, "SELECT count(*) FROM submission_quarantine")
    # The same submissions downloaded a day later: another file name, other row order, other _index values.
    second = tmp_path / "export_2026-11-30.csv"
    kobo_csv(second, [dict(kobo_row_xml_names(p, False), _index=str(9 - i), _id=str(100 + i)) for i, p in enumerate(reversed(bad))])
    assert dict(import_surveys(second).counts) == {"rejected": 2}
    assert count(seeded, "SELECT count(*) FROM submission_quarantine") == before


def test_excel_stripped_leading_zeros_of_commune_codes_are_restored(seeded, commune, tmp_path):
    p = aspirant(commune, commune_code="4")  # Excel's "00004" (Phường Ba Đình, Hà Nội) kept as a number
    path = tmp_path / "excel.csv"
    kobo_csv(path, [csv_row(p, commune)], separator=",")
    r = import_surveys(path)
    assert dict(r.counts) == {"created": 1}, r.rejected
    assert record(seeded, p["instance_id"])["declared_commune_code"] == "00004"


@pytest.mark.parametrize("path", ["/api/v1/quarantine/99999999999999999999/resubmit", "/api/v1/quarantine/0/resubmit"])
def test_ids_past_the_database_range_are_validation_errors(client, commune, path):
    r = client.post(path, json=aspirant(commune))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "quarantine_id"]
