"""A person's personal fields at rest: one AES-GCM blob per person, bound to the person's id.

``care_subject_private.sealed`` holds the JSON of :data:`SEALED_FIELDS` sealed with the
personal-data key (:mod:`gis.personal`), its associated data naming the subject
(``onemap:care_subject_private:<id>``): a blob copied onto another person's row does not
open. Only ``gender`` stays in clear beside it (with ``care_subjects.age_band``, it says
nothing that picks one person out, and the restricted layer filters on it).

Writes go through :func:`gis.care.services.care_private_set`; reads through
:func:`gis.care.selectors.care_private_read` (decrypts and writes the access log) or, for
the restricted OGC layer whose statement logs the rows it returns, :func:`private_open`.
"""

from __future__ import annotations

import json
from datetime import date

from gis import personal

# what the blob holds; ``id_number`` is accepted for a registry that has one (the demo has none)
SEALED_FIELDS: tuple[str, ...] = (
    "full_name", "id_number", "birth_date", "phone", "unit", "floor", "room", "contacts", "health_notes",
)


def private_seal(*, subject_id: int, fields: dict) -> bytes:
    """The blob of one person's personal fields (unknown keys refused: they would be stored unread)."""
    unknown = set(fields) - set(SEALED_FIELDS)
    if unknown:
        raise ValueError(f"unknown personal fields: {', '.join(sorted(unknown))}; known: {', '.join(SEALED_FIELDS)}")
    clear = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in fields.items() if v is not None}
    text = json.dumps(clear, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return personal.seal(text.encode(), context=_context(subject_id))


def private_open(*, subject_id: int, sealed: bytes) -> dict:
    """One person's personal fields (missing ones as None); ``UnreadablePersonalData`` when the blob does not open."""
    fields = json.loads(personal.unseal(sealed, context=_context(subject_id)))
    return {name: fields.get(name) for name in SEALED_FIELDS}


def flat(fields: dict) -> str:
    """The flat as a worker reads it: 2单元5层502室."""
    return f"{fields['unit']}单元{fields['floor']}层{fields['room']}室"


def _context(subject_id: int) -> bytes:
    return f"onemap:care_subject_private:{int(subject_id)}".encode()
