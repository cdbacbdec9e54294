"""Cases: an incident becomes a case a named person handles to closure in time (GB/T 30428's loop).

- :mod:`gis.cases.workflow` — the states and actions as one table, who may take each
- :mod:`gis.cases.limits` — the time limits per category, working hours or around the clock
- :mod:`gis.cases.clock` — due moments and elapsed minutes on the working calendar
- :mod:`gis.cases.models` — ``Case`` and its audit log ``CaseEvent``
- :mod:`gis.cases.services` — one service per action; :mod:`gis.cases.sla` — warnings, breaches, escalation
"""
