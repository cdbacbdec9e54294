"""The user roles, what each may do, and the database role each reads and writes as.

One definition for the whole house: the access profiles' check constraint, the layer
catalogue, the screen, the case services and row-level security all read these.
``docs/access.md`` explains them to people.
"""

from __future__ import annotations

# roles of signed-in users (an access profile holds one)
ADMINISTRATOR = "administrator"
COMMANDER = "commander"
ANALYST = "analyst"
GRID_WORKER = "grid_worker"
DEPARTMENT = "department"
ROLES: tuple[str, ...] = (ADMINISTRATOR, COMMANDER, ANALYST, GRID_WORKER, DEPARTMENT)
# no credentials
ANONYMOUS_ROLE = "anonymous"

STAFF_ROLES = frozenset(ROLES)  # every signed-in role
EVERYONE = STAFF_ROLES | {ANONYMOUS_ROLE}
ADMINS = frozenset({ADMINISTRATOR})
# who may see a person's record: those who act on it
PERSONAL_ROLES = frozenset({ADMINISTRATOR, COMMANDER, GRID_WORKER})
# who handles cases: they see and write dispatch notes
CASE_ROLES = frozenset({ADMINISTRATOR, COMMANDER, GRID_WORKER, DEPARTMENT})
# who may create incidents by hand, and place them on the map
REPORTING_ROLES = frozenset({ADMINISTRATOR, COMMANDER, GRID_WORKER})
# the command centre's big screen
SCREEN_ROLES = frozenset({ADMINISTRATOR, COMMANDER})
# aggregate figures (the daily incident density, the case indicators): the screen's roles and analysts
FIGURE_ROLES = SCREEN_ROLES | {ANALYST}
DENSITY_ROLES = FIGURE_ROLES

# the database role each user role reads and writes with (row-level security: layers.access)
DB_ROLES = {
    ANONYMOUS_ROLE: "onemap_public",
    ANALYST: "onemap_analyst",
    DEPARTMENT: "onemap_analyst",
    ADMINISTRATOR: "onemap_staff",
    COMMANDER: "onemap_staff",
    GRID_WORKER: "onemap_grid",
}
ALL_DB_ROLES: tuple[str, ...] = ("onemap_public", "onemap_analyst", "onemap_staff", "onemap_grid")
