"""The words of the domain that several layers must agree on: incident categories, statuses, sources.

A category carries its English label (the database's choice label), its Chinese label
(the screen and the phone), its colour on the map and the scene panel it belongs to.
Models, the layer catalogue, the screen, the generators and the services read them from
here; ``tests/test_architecture.py`` fails when a list of them is written out elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

# scenes of the "1+6+N" mode that incidents are counted in (the screen's panels)
SAFETY_SCENE = "safety"
GOVERNANCE_SCENE = "governance"
ELDER_CARE_SCENE = "elder_care"


@dataclass(frozen=True)
class Category:
    """One incident category."""

    code: str
    label: str  # English, as the database's choices read
    label_zh: str
    colour: str  # on the big screen's map and charts
    scene: str
    published: bool = True  # False: never on a public or analysts' layer (an elder's alert)


CATEGORIES: tuple[Category, ...] = (
    Category("falling_object", "object falling or thrown from height (高空抛物)", "高空抛物", "#ff4d4f", SAFETY_SCENE),
    Category("fire_smoke", "open fire or smoke", "烟火告警", "#ff8c1a", SAFETY_SCENE),
    Category("illegal_parking", "illegal parking", "违章停车", "#ffd23f", SAFETY_SCENE),
    Category("elder_inactivity", "elder not seen (48 h)", "独居老人预警", "#d46bff", ELDER_CARE_SCENE,
             published=False),
    Category("resident_report", "resident report", "居民上报", "#3fb6ff", GOVERNANCE_SCENE),
    Category("sanitation", "sanitation", "环境卫生", "#52d273", GOVERNANCE_SCENE),
    Category("facility_damage", "facility damage", "设施损坏", "#9aa7ff", GOVERNANCE_SCENE),
    Category("neighbour_dispute", "neighbour dispute", "邻里纠纷", "#ff85c0", GOVERNANCE_SCENE),
    Category("epidemic", "epidemic prevention", "疫情防控", "#36e2d3", GOVERNANCE_SCENE),
)
CATEGORY = {c.code: c for c in CATEGORIES}
CATEGORY_CODES: tuple[str, ...] = tuple(c.code for c in CATEGORIES)
PUBLISHED_CATEGORIES: tuple[str, ...] = tuple(c.code for c in CATEGORIES if c.published)
SAFETY_CATEGORIES: tuple[str, ...] = tuple(c.code for c in CATEGORIES if c.scene == SAFETY_SCENE)
CARE_CATEGORY = "elder_inactivity"  # alerts about one elder: counts and buildings only, never a person's marker
PARKING_CATEGORY = "illegal_parking"
FALLING_OBJECT_CATEGORY = "falling_object"  # what the falling-object detector reports
FIRE_SMOKE_CATEGORY = "fire_smoke"  # what the fire and smoke detector reports (烟火告警)


@dataclass(frozen=True)
class Status:
    """One state of an incident, or of a case."""

    code: str
    label: str
    label_zh: str
    open: bool  # still to be handled


STATUSES: tuple[Status, ...] = (
    Status("new", "new", "新上报", True),
    Status("dispatched", "dispatched", "已派遣", True),
    Status("in_progress", "in progress", "处置中", True),
    Status("resolved", "resolved", "已办结", False),
    Status("closed", "closed", "已关闭", False),
    Status("false_alarm", "false alarm", "误报", False),
)
STATUS_CODES: tuple[str, ...] = tuple(s.code for s in STATUSES)
OPEN_STATUSES: tuple[str, ...] = tuple(s.code for s in STATUSES if s.open)
CLOSED_STATUSES: tuple[str, ...] = tuple(s.code for s in STATUSES if not s.open)

# where an incident came from
SOURCES: tuple[str, ...] = ("camera", "sensor", "resident", "staff")


def category_choices() -> list[tuple[str, str]]:
    """(code, English label) pairs, as Django's ``choices`` take them."""
    return [(c.code, c.label) for c in CATEGORIES]


def status_choices() -> list[tuple[str, str]]:
    return [(s.code, s.label) for s in STATUSES]


def source_choices() -> list[tuple[str, str]]:
    return [(s, s) for s in SOURCES]


def sql_literal(code: str) -> str:
    """A vocabulary code as an SQL string literal (codes are identifiers: nothing to escape)."""
    if not code.isidentifier():
        raise ValueError(f"not a vocabulary code: {code!r}")
    return f"'{code}'"


def sql_list(codes) -> str:
    """Codes as an SQL list for ``IN``: ``('new', 'dispatched')``."""
    return "(" + ", ".join(sql_literal(code) for code in codes) + ")"


# the states of a case (GB/T 30428's stages, from report to closure); open: someone still has to act
CASE_STATES: tuple[Status, ...] = (
    Status("reported", "reported", "已上报", True),
    Status("accepted", "accepted", "已受理", True),
    Status("rejected", "rejected", "不予受理", False),
    Status("filed", "filed", "已立案", True),
    Status("dispatched", "dispatched", "已派遣", True),
    Status("acknowledged", "acknowledged", "已签收", True),
    Status("returned", "returned", "已退回", True),
    Status("handled", "handled, to be checked", "待核查", True),
    Status("suspended", "suspended", "已挂起", True),
    Status("closed", "closed", "已结案", False),
)
CASE_STATE_CODES: tuple[str, ...] = tuple(s.code for s in CASE_STATES)
OPEN_CASE_STATES: tuple[str, ...] = tuple(s.code for s in CASE_STATES if s.open)


def case_state_choices() -> list[tuple[str, str]]:
    return [(s.code, s.label) for s in CASE_STATES]
