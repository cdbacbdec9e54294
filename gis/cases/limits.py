"""Time limits per incident category: minutes to dispatch (from filing) and to handle (from dispatch).

Minutes are working minutes (``gis.calendar``) unless the category runs around the
clock, where they are plain minutes. A dispatched case must also be signed for
(acknowledged) within ``acknowledge_minutes``, or it climbs a tier. ``tier`` is where a new case of the category starts
(3: its level-3 grid; a fire starts with the subdistrict). A warning falls due at
``WARN_SHARE`` of a limit, a breach at the limit; each fires once. ``docs/cases.md``
explains the choice of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.vocabulary import CATEGORY_CODES

WARN_SHARE = 0.8


@dataclass(frozen=True)
class Limit:
    dispatch_minutes: float
    handle_minutes: float
    around_the_clock: bool = False
    tier: int = 3
    acknowledge_minutes: float = 30  # from dispatch until the worker signs for it (签收), else it climbs a tier


LIMITS: dict[str, Limit] = {
    "falling_object": Limit(30, 240),
    "fire_smoke": Limit(10, 60, around_the_clock=True, tier=2, acknowledge_minutes=5),
    "illegal_parking": Limit(30, 120),
    "elder_inactivity": Limit(15, 60, around_the_clock=True, acknowledge_minutes=10),
    "resident_report": Limit(60, 900),
    "sanitation": Limit(60, 450),
    "facility_damage": Limit(120, 900),
    "neighbour_dispute": Limit(120, 2250),
    "epidemic": Limit(30, 240, around_the_clock=True, acknowledge_minutes=15),
}
assert set(LIMITS) == set(CATEGORY_CODES), "every category needs its time limits"


def limit_for(category: str) -> Limit:
    return LIMITS[category]
