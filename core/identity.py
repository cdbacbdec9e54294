"""Who is asking: the identity of one request's caller, as every layer of the house sees it.

How an identity is made from a request (tokens, HTTP Basic) is the web's business
(``api.auth``); what it is, is shared by the web, the published layers and the services.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.roles import ANONYMOUS_ROLE


@dataclass(frozen=True)
class Identity:
    """The caller of one request: a role; for a grid worker their level-3 grid, for a department user their unit."""

    role: str  # one of core.roles.ROLES, or "anonymous"
    username: str | None = None
    user_id: int | None = None
    grid_id: int | None = None  # the level-3 grid (Grid.id) of a grid worker, else None
    token_id: int | None = None
    department: str | None = None  # the unit a department user belongs to (``Department.name``), else None
    worker_id: int | None = None  # the grid worker (``GridWorker.id``) a grid worker's account is bound to

    @property
    def is_anonymous(self) -> bool:
        return self.role == ANONYMOUS_ROLE


ANONYMOUS = Identity(role=ANONYMOUS_ROLE)
