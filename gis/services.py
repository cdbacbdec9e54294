"""What every domain's services share: the error they raise and the check of values against their columns."""

from __future__ import annotations


class ServiceError(ValueError):
    """A write was refused; the message says which value and why."""


# integer ranges of the column types, for values that must fit before any SQL runs
_INTEGER_RANGES = {
    "SmallIntegerField": (-32768, 32767),
    "PositiveSmallIntegerField": (0, 32767),
    "IntegerField": (-2**31, 2**31 - 1),
    "PositiveIntegerField": (0, 2**31 - 1),
    "BigIntegerField": (-2**63, 2**63 - 1),
}
# domain ranges narrower than the column's (they match the tables' check constraints)
_RANGES = {("incidents", "floor"): (-5, 200), ("incidents", "severity"): (1, 4)}


def check_values(model, values: dict) -> None:
    """Every value fits its column of ``model``: text length and no NUL, integer range, choices; else ServiceError.

    Run before any SQL, so a value the database would refuse is a clear message rather
    than a database error.
    """
    for name, value in values.items():
        field = model._meta.get_field(name)
        if value is None:
            if not field.null:
                raise ServiceError(f"{name} cannot be empty (null)")
            continue
        kind = field.get_internal_type()
        if isinstance(value, str):
            if "\x00" in value:
                raise ServiceError(f"{name} contains a NUL character (\\u0000), which text cannot hold")
            if field.max_length is not None and len(value) > field.max_length:
                raise ServiceError(f"{name} is {len(value):,} characters long; at most {field.max_length:,} are allowed")
        elif kind in _INTEGER_RANGES:
            low, high = _RANGES.get((model._meta.db_table, name), _INTEGER_RANGES[kind])
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ServiceError(f"{name} must be {low} to {high} (a whole number); got {value!r}")
        if field.choices:
            _check_choice(name, value, field.choices)


def _check_choice(name: str, value: str, choices) -> None:
    known = [c[0] for c in choices]
    if value not in known:
        raise ServiceError(f"{name} must be one of {', '.join(known)}; got {value!r}")
