"""The one catalogue of the form's validation messages, in Vietnamese and English.

The server's checks (:mod:`survey.schemas`, the store statement of
:mod:`survey.store`) name a message by its code with its values
(:class:`~survey.schemas.FieldError`); the web form receives this catalogue
with the form (``/survey/form.json``) and writes its own checks' messages and
the server's rejections from it. So a message is written once, in both
languages, and the phone and the server cannot say different things.

Templates name their values in braces. Besides the values an error carries,
:func:`render` fills ``{label}`` (the field's label), ``{kind_label}`` (the
record kind's label) and ``{kind_article}`` (English: "an aspirant") in the
language asked for.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from survey.definition import FORM, FormDefinition

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")

MESSAGES: dict[str, dict[str, str]] = {
    # -- answers missing -----------------------------------------------------------------------------
    "required": {"vi": "Phải trả lời câu này", "en": "{label} is required"},
    "required_for_kind": {"vi": "Phải trả lời câu này với phiếu {kind_label}",
                          "en": "{label} is required for {kind_article} record"},
    "required_choice": {"vi": "Phải chọn một mục", "en": "Choose one"},
    "required_multi": {"vi": "Phải chọn ít nhất một mục", "en": "Choose at least one"},
    "required_or_reason": {"vi": "Chưa có vị trí GPS: lấy vị trí, hoặc chọn lý do không có vị trí",
                           "en": "{label} is required, or say why there is none ({reason}: {choices})"},
    "consent": {"vi": "Phải có sự đồng ý của người được hỏi thì mới gửi được phiếu",
                "en": "the person did not consent: nothing personal may be recorded"},
    # -- values --------------------------------------------------------------------------------------
    "invalid": {"vi": "Câu trả lời không hợp lệ: {detail}", "en": "{detail}"},
    "invalid_kind": {"vi": "Loại phiếu không hợp lệ ({value})", "en": "{value} is not a record kind: use {kinds}"},
    "not_a_choice": {"vi": "Lựa chọn không hợp lệ", "en": "{detail}"},
    "integer": {"vi": "Phải là số nguyên", "en": "{detail}"},
    "bad_date": {"vi": "Ngày không hợp lệ", "en": "{detail}"},
    "too_long": {"vi": "Tối đa {max} ký tự", "en": "At most {max} characters"},
    "format": {"vi": "{format}", "en": "{format}"},
    "age_range": {"vi": "Năm sinh phải từ {low} đến {high} (tuổi từ {min} đến {max})",
                  "en": "{value} is out of range: the person must be {min} to {max} years old ({low}-{high})"},
    "range": {"vi": "Phải từ {min} đến {max}", "en": "{value} is out of range {min}-{max}"},
    # -- dates and the phone's clock -----------------------------------------------------------------
    "future_date": {"vi": "Ngày này ở sau hôm nay", "en": "This date is after today"},
    "after_survey": {"vi": "Ngày này ({value}) ở sau ngày khảo sát", "en": "{value} is after the survey date"},
    "too_early": {"vi": "Ngày phải từ {earliest} trở đi", "en": "{value} is before {earliest}"},
    "future_collected": {
        "vi": "Thời điểm khảo sát ({value}) ở sau giờ của máy chủ {ahead} phút: đồng hồ điện thoại có vẻ sai",
        "en": "{value} is in the future ({ahead} min ahead of the server's clock: the phone's clock looks wrong)",
    },
    "clock_ahead": {
        "vi": "Đồng hồ điện thoại đang nhanh hơn giờ chuẩn khoảng {amount}: hãy chỉnh lại ngày giờ của điện thoại.",
        "en": "The phone's clock is about {amount} ahead of the right time: set the phone's date and time.",
    },
    "clock_behind": {
        "vi": "Đồng hồ điện thoại đang chậm hơn giờ chuẩn khoảng {amount}: hãy chỉnh lại ngày giờ của điện thoại.",
        "en": "The phone's clock is about {amount} behind the right time: set the phone's date and time.",
    },
    "before_published": {"vi": "Thời điểm khảo sát ({value}) trước ngày ban hành biểu mẫu ({published}): "
                               "đồng hồ điện thoại có vẻ sai",
                         "en": "{value} is before this form existed ({published})"},
    "clock_before_published": {
        "vi": "Đồng hồ điện thoại sai: ngày hôm nay trước ngày ban hành biểu mẫu ({published}). Hãy chỉnh lại ngày giờ.",
        "en": "The phone's clock is wrong: today is before the form was published ({published}). Set the date and time.",
    },
    # -- places --------------------------------------------------------------------------------------
    "outside_vietnam": {"vi": "Vị trí này không ở Việt Nam: hãy lấy lại vị trí", "en": "lat={lat}, lon={lon} is outside Viet Nam"},
    "swapped": {"vi": "Vĩ độ và kinh độ có vẻ bị đảo chỗ cho nhau: hãy lấy lại vị trí",
                "en": "latitude {lat} and longitude {lon} seem swapped: ({lon}, {lat}) would be in Viet Nam"},
    "not_coordinates": {"vi": "Tọa độ không hợp lệ: hãy lấy lại vị trí", "en": "lat={lat}, lon={lon} are not valid coordinates"},
    "unknown_commune": {"vi": "Không có xã/phường mã {code}: hãy chọn lại xã/phường", "en": "unknown commune code {code}"},
    "commune_other_structure": {
        "vi": "Mã xã/phường {code} thuộc danh mục {other}, không phải danh mục {structure} áp dụng ngày {date}: "
              "hãy chọn lại xã/phường",
        "en": "commune code {code} belongs to the {other} structure, not to the {structure} structure in force on {date}",
    },
    "no_structure": {"vi": "Không có danh mục đơn vị hành chính nào áp dụng ngày {date}",
                     "en": "no boundary structure is valid on {date}"},
    "far_outside": {"vi": "Vị trí GPS không thuộc xã/phường nào của Việt Nam và cách xã/phường đã chọn {km} km",
                    "en": "the GPS point is in no commune of Viet Nam and {km} km from the declared commune"},
    "outside_scope": {"vi": "Xã/phường {code} nằm ngoài địa bàn của {user}", "en": "commune {code} is outside the area of {user}"},
    "outside_scope_gps": {"vi": "Xã/phường {code} (vị trí GPS ở xã/phường {assigned}) nằm ngoài địa bàn của {user}",
                          "en": "commune {code} (GPS point in commune {assigned}) is outside the area of {user}"},
    # Not the sender's fault: the server lacks the old -> 2025 province links; the form waits in quarantine.
    "no_province_2025": {"vi": "Xã/phường {code} ({structure}) chưa có tỉnh theo danh mục 2025 trên máy chủ: phiếu được giữ lại "
                               "để gửi lại sau",
                         "en": "commune {code} ({structure}) has no 2025 province in the crosswalk"},
}
"""Code -> {"vi": template, "en": template}."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def with_article(word: str) -> str:
    """English's article: 'an aspirant', 'a returnee'.

    >>> with_article("aspirant"), with_article("returnee")
    ('an aspirant', 'a returnee')
    """
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def render(code: str, field: str | None, params: dict[str, Any] | None, lang: Lang = "en",
           defn: FormDefinition = FORM) -> str:
    """The message ``code`` about ``field`` in ``lang``, with its values.

    >>> render("required", "full_name", {}, "vi"), render("required", "full_name", {}, "en")
    ('Phải trả lời câu này', 'Full name is required')
    >>> render("required_for_kind", "sector", {"kind": "aspirant"}, "en")
    'Sector wanted is required for an aspirant record'
    """
    template = MESSAGES[code][lang]
    values = dict(params or {})
    names = {f.name: f for f in defn.fields}
    if field in names:
        values.setdefault("label", names[field].vi if lang == "vi" else names[field].en)
        fmt = names[field].format
        if fmt is not None:
            values.setdefault("format", fmt.vi if lang == "vi" else fmt.en)
    kind = values.get("kind")
    if isinstance(kind, str) and "kind" in defn.choices:
        label = next((c.vi if lang == "vi" else c.en for c in defn.choices["kind"] if c.value == kind), kind)
        values.setdefault("kind_label", label)
        values.setdefault("kind_article", with_article(kind))
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


def catalogue() -> dict[str, dict[str, str]]:
    """The catalogue as the web form receives it (``/survey/form.json``)."""
    return {code: dict(texts) for code, texts in MESSAGES.items()}
