"""The services Open311 offers: the categories residents may report, their time limits and their questions.

A service is an incident category a resident may report (``gis.reports.services.CATEGORIES``);
its notice states the category's time limits (``gis.cases.limits``), so an app can tell the
resident what to expect. A few services ask questions (GeoReport v2 "attributes"); the answers
are checked here and kept with the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import vocabulary
from gis.calendar.calendar import WorkingCalendar
from gis.cases.limits import limit_for
from gis.reports.services import CATEGORIES, ReportRefused

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
_GROUPS = {vocabulary.SAFETY_SCENE: "社区安全", vocabulary.GOVERNANCE_SCENE: "社区治理",
           vocabulary.ELDER_CARE_SCENE: "智慧养老"}
MAX_ANSWER = 200  # characters of a string answer


@dataclass(frozen=True)
class Attribute:
    """One question of a service (a GeoReport v2 attribute)."""

    code: str
    label: str  # the short Chinese label the answer carries in the case's description
    datatype: str
    description: str
    required: bool = False
    datatype_description: str = ""
    order: int = 1
    values: tuple[tuple[str, str], ...] = ()  # (key, name) for the list datatypes
    low: int = 0  # number: the smallest and largest answer
    high: int = 0


@dataclass(frozen=True)
class Service:
    """One Open311 service: a category residents may report."""

    code: str
    name: str
    description: str
    group: str
    keywords: str
    notice: str
    attributes: tuple[Attribute, ...]

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)


# the questions some services ask (keyed by category; the others ask none)
_QUESTIONS: dict[str, tuple[Attribute, ...]] = {
    "falling_object": (
        Attribute("floor", "楼层", "number", "从几楼落下（估计即可） / The floor it fell from, as far as you can tell",
                  datatype_description="a whole number from 1 to 100", low=1, high=100),
    ),
    "facility_damage": (
        Attribute("facility", "设施", "singlevaluelist", "损坏的是什么设施 / What is damaged", required=True,
                  values=(("streetlight", "路灯"), ("manhole", "井盖"), ("bench", "座椅"),
                          ("fitness", "健身器材"), ("other", "其他"))),
    ),
    "illegal_parking": (
        Attribute("blocking", "阻挡", "singlevaluelist", "车辆挡住了什么 / What the vehicle blocks",
                  values=(("fire_lane", "消防通道"), ("entrance", "出入口"), ("pavement", "人行道"), ("nothing", "无"))),
    ),
    "sanitation": (
        Attribute("kind", "类型", "multivaluelist", "问题类型（可多选） / What kind of problem (one or more)",
                  values=(("garbage", "垃圾堆积"), ("sewage", "污水外溢"), ("pests", "鼠患蚊虫"), ("odour", "异味"))),
    ),
}


def services() -> tuple[Service, ...]:
    """Every service, in the vocabulary's order."""
    return _SERVICES


def service(code: str) -> Service | None:
    return _BY_CODE.get(code) if isinstance(code, str) else None


def check_answers(svc: Service, given: dict[str, list[str]]) -> dict[str, object]:
    """The answers to a service's questions, checked: code -> int, text or list of keys; ReportRefused otherwise."""
    known = {a.code: a for a in svc.attributes}
    unknown = sorted(set(given) - set(known))
    if unknown:
        asked = ", ".join(known) if known else "none"
        raise ReportRefused(f"service {svc.code} has no attribute {', '.join(unknown)[:200]}; its attributes: {asked}")
    answers: dict[str, object] = {}
    for attribute in svc.attributes:
        values = [v for v in given.get(attribute.code, []) if v != ""]
        if not values:
            if attribute.required:
                raise ReportRefused(f"attribute[{attribute.code}] is required for service {svc.code}: "
                                    f"{attribute.description}")
            continue
        answers[attribute.code] = _answer(attribute, values)
    return answers


def answers_text(svc: Service, answers: dict[str, object]) -> str:
    """The answers as one line for the case's description ("设施：路灯；…"), in the questions' order."""
    parts = []
    for attribute in svc.attributes:
        if attribute.code not in answers:
            continue
        answer = answers[attribute.code]
        names = dict(attribute.values)
        if isinstance(answer, list):
            shown = "、".join(names[key] for key in answer)
        else:
            shown = names.get(answer, str(answer)) if isinstance(answer, str) else str(answer)
        parts.append(f"{attribute.label}：{shown}")
    return "；".join(parts)


def _answer(attribute: Attribute, values: list[str]) -> object:
    name = f"attribute[{attribute.code}]"
    if attribute.datatype == "multivaluelist":
        keys = list(dict.fromkeys(values))
        wrong = [v for v in keys if v not in dict(attribute.values)]
        if wrong:
            raise ReportRefused(f"{name} must be among {', '.join(k for k, _ in attribute.values)}; "
                                f"got {wrong[0][:60]!r}")
        return keys
    if len(values) > 1:
        raise ReportRefused(f"{name} takes one answer; got {len(values)}")
    value = values[0]
    if attribute.datatype == "singlevaluelist":
        if value not in dict(attribute.values):
            raise ReportRefused(f"{name} must be one of {', '.join(k for k, _ in attribute.values)}; "
                                f"got {value[:60]!r}")
        return value
    if attribute.datatype == "number":
        if not value.isascii() or not value.strip().isdigit() or not attribute.low <= int(value) <= attribute.high:
            raise ReportRefused(f"{name} must be {attribute.datatype_description}; got {value[:60]!r}")
        return int(value)
    if len(value) > MAX_ANSWER or "\x00" in value:
        raise ReportRefused(f"{name} must be text of at most {MAX_ANSWER} characters without NUL")
    return value


def _duration(minutes: float, around_the_clock: bool) -> str:
    day = WorkingCalendar().minutes_per_day
    if not around_the_clock and minutes >= day and minutes % day == 0:
        return f"{int(minutes // day)} 个工作日"
    kind = "" if around_the_clock else "工作"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{int(minutes // 60)} {kind}小时"
    return f"{int(minutes)} {kind}分钟"


def _notice(code: str) -> str:
    limit = limit_for(code)
    clock = "全天候计时" if limit.around_the_clock else "按工作时间计时"
    urgent = "有明火或人员被困请立即拨打 119。" if code == "fire_smoke" else ""  # a fire is 119's first
    return urgent + (f"立案后 {_duration(limit.dispatch_minutes, limit.around_the_clock)}内派遣网格员，"
            f"派遣后 {_duration(limit.handle_minutes, limit.around_the_clock)}内处置（{clock}）。")


def _build() -> tuple[Service, ...]:
    made = []
    for code in CATEGORIES:
        category = vocabulary.CATEGORY[code]
        notice = _notice(code)
        made.append(Service(code=code, name=category.label_zh, description=f"{category.label}. {notice}",
                            group=_GROUPS.get(category.scene, "社区治理"),
                            keywords=f"{category.label_zh},{category.label},{code}", notice=notice,
                            attributes=_QUESTIONS.get(code, ())))
    return tuple(made)


_SERVICES = _build()
_BY_CODE = {s.code: s for s in _SERVICES}
assert set(_QUESTIONS) <= set(_BY_CODE), "questions for a category residents may not report"
