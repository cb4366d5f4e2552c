"""The one definition of the field-survey form.

Everything else is generated from :data:`FORM`: the pydantic model of the API
(:mod:`survey.schemas`), the pandera schema of batch imports
(:mod:`survey.batch`), the XLSForm / XForm for ODK Collect and KoboCollect
(:mod:`survey.xlsform`) and the web form (:mod:`survey.webform`). Change a
field here and all four change.

Labels are Vietnamese first (the surveyors' language) and English.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

FieldType = Literal[
    "uuid", "text", "integer", "date", "datetime", "boolean", "select_one", "select_multiple", "geopoint", "commune"
]
RecordKind = Literal["aspirant", "returnee", "departure"]
KINDS: tuple[str, ...] = get_args(RecordKind)
"""The kinds of survey record: who wants to go abroad, who came back, who left under contract."""

YES_WORDS = frozenset({"true", "yes", "1", "có", "co", "x"})
NO_WORDS = frozenset({"false", "no", "0", "không", "khong"})
"""How a yes/no answer is written in files and forms (ODK's yes/no, Excel's TRUE, Vietnamese có/không, a tick x),
compared in lower case."""


@dataclass(frozen=True)
class Choice:
    value: str
    vi: str
    en: str


@dataclass(frozen=True)
class TextFormat:
    """The shape a text answer must have: ``pattern`` (a regular expression, matched in full) after the
    characters in ``ignore`` are removed, with the message to show in both languages.

    >>> NATIONAL_ID.accepts("042 199.012-345"), NATIONAL_ID.accepts("1 OR 1=1")
    (True, False)
    """

    pattern: str
    ignore: str
    vi: str
    en: str

    def normalised(self, value: str) -> str:
        return value.translate({ord(c): None for c in self.ignore})

    def accepts(self, value: str) -> bool:
        return re.fullmatch(self.pattern, self.normalised(value)) is not None


NATIONAL_ID = TextFormat(
    # CCCD (citizen identity card, from 2016): 12 digits; CMND (the old identity card): 9.
    pattern=r"[0-9]{9}|[0-9]{12}",
    ignore=" .-",
    vi="Số CCCD gồm 12 chữ số (CMND cũ: 9 chữ số)",
    en="A citizen identity number has 12 digits (an old identity card number: 9)",
)


@dataclass(frozen=True)
class Field:
    """One question of the form.

    ``kinds`` lists the record kinds that ask it (all by default); ``required``
    applies only to those kinds. ``personal`` fields are sensitive personal
    data: never kept without consent. ``minimum`` / ``maximum`` bound integers:
    the value itself (``range_of="value"``) or, for a year of birth
    (``range_of="age"``), the person's age in the year of collection.
    ``format`` constrains a text answer (:class:`TextFormat`).
    ``reason_for`` names another field this one explains the absence of: it
    is asked (and, if ``required``, required) only when that field is blank,
    and that field, even if required, may then be blank ("no GPS, no
    record" would lose the interview).
    """

    name: str
    type: FieldType
    vi: str
    en: str
    required: bool = False
    kinds: tuple[str, ...] = KINDS
    choices: str | None = None
    personal: bool = False
    minimum: int | None = None
    maximum: int | None = None
    range_of: Literal["value", "age"] = "value"
    format: TextFormat | None = None
    # Kept only as a keyed hash: the value is never repeated in a message (messages are stored and shown).
    hashed: bool = False
    hint_vi: str | None = None
    hint_en: str | None = None
    reason_for: str | None = None


@dataclass(frozen=True, eq=False)  # hashed by identity: generated schemas are cached per definition
class FormDefinition:
    form_id: str
    version: str
    title_vi: str
    title_en: str
    # Records collected before this date cannot come from this form.
    published: dt.date
    fields: tuple[Field, ...]
    choices: dict[str, tuple[Choice, ...]] = field(default_factory=dict)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def reason_field(self, name: str) -> Field | None:
        """The field that explains why field ``name`` is blank (its ``reason_for``), if any.

        >>> FORM.reason_field("location").name
        'location_missing_reason'
        """
        return next((f for f in self.fields if f.reason_for == name), None)

    def choice_values(self, list_name: str) -> list[str]:
        return [c.value for c in self.choices[list_name]]

    def with_field(
        self, new: Field, after: str | None = None, choices: dict[str, tuple[Choice, ...]] | None = None
    ) -> FormDefinition:
        """A copy with ``new`` added (after field ``after``, or at the end) and any new choice lists."""
        fields = list(self.fields)
        at = len(fields) if after is None else [f.name for f in fields].index(after) + 1
        fields.insert(at, new)
        return replace(self, fields=tuple(fields), choices={**self.choices, **(choices or {})})


def _choices(*rows: tuple[str, str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(*r) for r in rows)


# The 54 ethnic groups of Viet Nam, coded as in the GSO classification.
ETHNIC_GROUPS = (
    "Kinh", "Tày", "Thái", "Hoa", "Khơ-me", "Mường", "Nùng", "HMông", "Dao", "Gia-rai", "Ngái", "Ê-đê", "Ba-na",
    "Xơ-đăng", "Sán Chay", "Cơ-ho", "Chăm", "Sán Dìu", "Hrê", "Mnông", "Ra-glai", "Xtiêng", "Bru-Vân Kiều", "Thổ",
    "Giáy", "Cơ-tu", "Giẻ-Triêng", "Mạ", "Khơ-mú", "Co", "Tà-ôi", "Chơ-ro", "Kháng", "Xinh-mun", "Hà Nhì", "Chu-ru",
    "Lào", "La Chí", "La Ha", "Phù Lá", "La Hủ", "Lự", "Lô Lô", "Chứt", "Mảng", "Pà Thẻn", "Cờ Lao", "Cống", "Bố Y",
    "Si La", "Pu Péo", "Brâu", "Ơ-đu", "Rơ-măm",
)

MARKETS = _choices(
    ("JP", "Nhật Bản", "Japan"), ("KR", "Hàn Quốc", "South Korea"), ("TW", "Đài Loan", "Taiwan"),
    ("DE", "Đức", "Germany"), ("RO", "Romania", "Romania"), ("PL", "Ba Lan", "Poland"), ("HU", "Hungary", "Hungary"),
    ("CZ", "Séc", "Czechia"), ("SK", "Slovakia", "Slovakia"), ("SA", "Ả Rập Xê Út", "Saudi Arabia"),
    ("AE", "UAE", "United Arab Emirates"), ("QA", "Qatar", "Qatar"), ("KW", "Kuwait", "Kuwait"),
    ("MY", "Malaysia", "Malaysia"), ("SG", "Singapore", "Singapore"), ("MO", "Ma Cao", "Macao"),
    ("AU", "Úc", "Australia"), ("NZ", "New Zealand", "New Zealand"), ("IL", "Israel", "Israel"),
    ("OTHER", "Nước khác", "Other country"),
)

SKILLS = _choices(
    ("construction", "Xây dựng", "Construction"), ("manufacturing", "Sản xuất, lắp ráp", "Manufacturing, assembly"),
    ("agriculture", "Nông nghiệp", "Agriculture"), ("fishing", "Thủy sản", "Fishing, aquaculture"),
    ("caregiving", "Điều dưỡng, chăm sóc", "Nursing, care"), ("hospitality", "Nhà hàng, khách sạn", "Hospitality"),
    ("food_processing", "Chế biến thực phẩm", "Food processing"), ("welding", "Hàn", "Welding"),
    ("mechanics", "Cơ khí", "Mechanics"), ("electrical", "Điện", "Electrical"), ("sewing", "May mặc", "Garments"),
    ("driving", "Lái xe", "Driving"), ("domestic", "Giúp việc gia đình", "Domestic work"),
    ("it", "Công nghệ thông tin", "IT"), ("other", "Khác", "Other"),
)

FORM = FormDefinition(
    form_id="labour_survey",
    version="2026112502",
    title_vi="Khảo sát lao động đi làm việc ở nước ngoài",
    title_en="Survey of workers going abroad under contract",
    published=dt.date(2025, 1, 1),
    fields=(
        # -- record -----------------------------------------------------------
        Field("instance_id", "uuid", "Mã phiếu", "Form instance ID", required=True),
        Field("kind", "select_one", "Loại phiếu", "Record kind", required=True, choices="kind"),
        Field("collected_at", "datetime", "Thời điểm khảo sát", "Collected at", required=True),
        Field("surveyor", "text", "Người khảo sát", "Surveyor", required=True),
        Field("consent", "boolean", "Người được hỏi đồng ý cung cấp thông tin", "The person consents to this survey",
              required=True, hint_vi="Không đồng ý thì không ghi thông tin cá nhân", hint_en="Without consent, record nothing personal"),
        # -- location ---------------------------------------------------------
        Field("commune_code", "commune", "Xã/phường nơi khảo sát", "Commune of the survey", required=True),
        Field("location", "geopoint", "Vị trí GPS", "GPS location", required=True, personal=True),
        # Location refused, no fix indoors: the interview is still recorded, the commune is the declared one,
        # and the record is flagged for an officer to check.
        Field("location_missing_reason", "select_one", "Lý do không có vị trí GPS", "Why there is no GPS location",
              required=True, choices="location_missing_reason", reason_for="location",
              hint_vi="Chỉ khi không lấy được vị trí; cán bộ sẽ kiểm tra phiếu",
              hint_en="Only when no location could be taken; an officer will check the record"),
        Field("mock_location", "boolean", "Thiết bị báo vị trí giả lập", "Device reports a mock location"),
        # -- person -----------------------------------------------------------
        Field("full_name", "text", "Họ và tên", "Full name", required=True, personal=True),
        Field("national_id", "text", "Số CCCD/CMND", "National ID number", personal=True, format=NATIONAL_ID, hashed=True,
              hint_vi="12 chữ số (CMND cũ: 9); chỉ lưu dạng mã hóa một chiều",
              hint_en="12 digits (old card: 9); stored only as a keyed hash"),
        Field("phone", "text", "Số điện thoại", "Phone", personal=True),
        Field("birth_year", "integer", "Năm sinh", "Year of birth", required=True, personal=True, minimum=15, maximum=80, range_of="age",
              hint_vi="Tuổi từ 15 đến 80", hint_en="Age 15 to 80"),
        Field("sex", "select_one", "Giới tính", "Sex", required=True, choices="sex", personal=True),
        Field("ethnicity", "select_one", "Dân tộc", "Ethnic group", choices="ethnicity", personal=True),
        Field("household_status", "select_one", "Hộ gia đình", "Household status", choices="household_status", personal=True),
        Field("demobilised_soldier", "boolean", "Bộ đội xuất ngũ", "Demobilised soldier", personal=True),
        Field("education", "select_one", "Trình độ học vấn", "Education", choices="education", personal=True),
        Field("skills", "select_multiple", "Nghề, kỹ năng", "Skills", choices="skills", personal=True),
        Field("languages", "select_multiple", "Ngoại ngữ", "Languages", choices="languages", personal=True),
        # -- aspirant ---------------------------------------------------------
        Field("markets_wanted", "select_multiple", "Thị trường muốn đi", "Markets wanted", required=True,
              kinds=("aspirant",), choices="market"),
        Field("sector", "select_one", "Ngành nghề muốn làm", "Sector wanted", required=True, kinds=("aspirant",), choices="skills"),
        Field("aspirant_needs", "select_multiple", "Nhu cầu hỗ trợ", "Support needed", kinds=("aspirant",), choices="aspirant_needs"),
        # -- returnee ---------------------------------------------------------
        Field("return_country", "select_one", "Nước đã làm việc", "Country worked in", required=True,
              kinds=("returnee",), choices="market"),
        Field("return_date", "date", "Ngày về nước", "Date of return", required=True, kinds=("returnee",)),
        Field("contract_outcome", "select_one", "Kết quả hợp đồng", "Contract outcome", required=True,
              kinds=("returnee",), choices="contract_outcome"),
        Field("skills_gained", "select_multiple", "Kỹ năng có được", "Skills gained", kinds=("returnee",), choices="skills"),
        Field("job_status", "select_one", "Việc làm hiện nay", "Current job", required=True, kinds=("returnee",), choices="job_status"),
        Field("returnee_needs", "select_multiple", "Nhu cầu hỗ trợ", "Support needed", kinds=("returnee",), choices="returnee_needs"),
        # -- departure --------------------------------------------------------
        Field("departure_date", "date", "Ngày xuất cảnh", "Departure date", required=True, kinds=("departure",)),
        Field("market", "select_one", "Thị trường", "Destination", required=True, kinds=("departure",), choices="market"),
        Field("recruiter_licence", "text", "Số giấy phép doanh nghiệp đưa đi", "Recruiter licence number", required=True,
              kinds=("departure",)),
        Field("contract_months", "integer", "Thời hạn hợp đồng (tháng)", "Contract length (months)", required=True,
              kinds=("departure",), minimum=1, maximum=120),
    ),
    choices={
        "kind": _choices(
            ("aspirant", "Người có nhu cầu đi làm việc ở nước ngoài", "Wants to work abroad"),
            ("returnee", "Người lao động đã về nước", "Returnee"),
            ("departure", "Người đã xuất cảnh theo hợp đồng", "Departed under contract"),
        ),
        "sex": _choices(("male", "Nam", "Male"), ("female", "Nữ", "Female")),
        "location_missing_reason": _choices(
            ("denied", "Không được phép dùng vị trí", "Location permission denied"),
            ("no_fix", "Không bắt được tín hiệu GPS", "No GPS fix"),
            ("indoors", "Phỏng vấn trong nhà, không có tín hiệu", "Indoors, no signal"),
            ("other", "Lý do khác", "Other reason"),
        ),
        "ethnicity": tuple(Choice(f"{i:02d}", name, name) for i, name in enumerate(ETHNIC_GROUPS, start=1)),
        "household_status": _choices(("poor", "Hộ nghèo", "Poor"), ("near_poor", "Hộ cận nghèo", "Near-poor"), ("none", "Không", "Neither")),
        "education": _choices(
            ("none", "Chưa đi học", "None"), ("primary", "Tiểu học", "Primary"), ("lower_secondary", "THCS", "Lower secondary"),
            ("upper_secondary", "THPT", "Upper secondary"), ("vocational", "Trung cấp nghề", "Vocational"),
            ("college", "Cao đẳng", "College"), ("university", "Đại học trở lên", "University"),
        ),
        "skills": SKILLS,
        "languages": _choices(
            ("ja", "Tiếng Nhật", "Japanese"), ("ko", "Tiếng Hàn", "Korean"), ("zh", "Tiếng Trung", "Chinese"),
            ("en", "Tiếng Anh", "English"), ("de", "Tiếng Đức", "German"), ("ar", "Tiếng Ả Rập", "Arabic"),
            ("other", "Khác", "Other"),
        ),
        "market": MARKETS,
        "aspirant_needs": _choices(
            ("training", "Đào tạo nghề", "Vocational training"), ("language", "Học ngoại ngữ", "Language course"),
            ("loan", "Vay vốn", "Loan"), ("information", "Thông tin doanh nghiệp được cấp phép", "Licensed recruiters"),
        ),
        "contract_outcome": _choices(
            ("completed", "Hoàn thành hợp đồng", "Completed"), ("ended_early", "Về trước hạn", "Ended early"),
            ("overstayed", "Ở lại quá hạn rồi về", "Overstayed, then returned"), ("other", "Khác", "Other"),
        ),
        "job_status": _choices(
            ("employed", "Có việc làm", "Employed"), ("self_employed", "Tự kinh doanh", "Self-employed"),
            ("unemployed", "Chưa có việc làm", "Unemployed"), ("studying", "Đi học", "Studying"),
        ),
        "returnee_needs": _choices(
            ("job", "Giới thiệu việc làm", "Job placement"), ("loan", "Vay vốn", "Loan"),
            ("training", "Đào tạo", "Training"), ("legal", "Tư vấn pháp lý", "Legal advice"),
        ),
    },
)
