"""One form definition drives the API model, the batch schema, the XForm and the web form."""

import pandas as pd

from survey.batch import batch_schema, validate_frame
from survey.definition import FORM, Choice, Field
from survey.schemas import submission_model, validate_submission
from survey.webform import webform_spec
from survey.xlsform import xform_xml, xlsform_sheets

VILLAGE = Field("village", "select_one", "Thôn/xóm", "Village", required=True, kinds=("aspirant",), choices="village")
CHANGED = FORM.with_field(VILLAGE, after="commune_code", choices={"village": (Choice("thon_1", "Thôn 1", "Hamlet 1"),)})


def test_a_new_field_reaches_all_four_outputs():
    assert "village" not in submission_model(FORM).model_fields
    assert "village" in submission_model(CHANGED).model_fields
    assert "village" in batch_schema(CHANGED).columns and "village" not in batch_schema(FORM).columns
    xml = xform_xml(CHANGED)
    assert "/village" in xml and "Thôn/xóm" in xml and "thon_1" in xml
    assert "village" not in xform_xml(FORM)
    assert any(row.get("name") == "village" for row in xlsform_sheets(CHANGED)["survey"])
    spec = webform_spec(CHANGED)
    assert "village" in [f["name"] for f in spec["fields"]]
    assert "village" not in [f["name"] for f in webform_spec(FORM)["fields"]]


def test_a_new_required_field_is_enforced_by_both_validators():
    payload = {"kind": "aspirant", "consent": True}
    _, errors = validate_submission(payload, CHANGED)
    assert "village" in {e.field for e in errors}
    _, errors = validate_submission(dict(payload, village="thon_9"), CHANGED)
    assert any(e.field == "village" and "thon_1" in e.message for e in errors)
    _, batch = validate_frame(pd.DataFrame([{"kind": "aspirant", "consent": "yes"}]), CHANGED)
    assert "village" in {e.field for e in batch[0]}
    _, batch = validate_frame(pd.DataFrame([{"kind": "aspirant", "consent": "yes", "village": "thon_9"}]), CHANGED)
    assert "village" in {e.field for e in batch[0]}
