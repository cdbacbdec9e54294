"""pygeoapi providers, referenced by dotted path from the generated configuration."""

from __future__ import annotations

from pygeoapi.provider.sql import GenericSQLProvider, PostgreSQLProvider


_TYPE_WORDS = {int: "an integer", float: "a number"}


class StockPostgreSQLProvider(PostgreSQLProvider):
    """pygeoapi's own PostgreSQL provider, driven through psycopg 3 instead of psycopg2.

    Only the driver changes; queries, paging and filtering are pygeoapi's. It is
    the baseline that the project's fast provider (a later issue) is measured against.
    """

    def __init__(self, provider_def: dict):
        GenericSQLProvider.__init__(
            self,
            provider_def,
            "postgresql+psycopg",
            {"client_encoding": "utf8", "application_name": "onemap-ogc"},
        )

    def _get_property_filters(self, properties):
        """Property filters with values cast to the column's type.

        Query-string values arrive as text; psycopg 3 binds them as text and
        PostgreSQL refuses ``smallint = varchar`` (psycopg2 hid this by inlining).
        """
        from pygeoapi.provider.base import ProviderInvalidQueryError
        from sqlalchemy import and_, cast

        if not properties:
            return True
        clauses = []
        for name, value in properties:
            column = getattr(self.table_model, name)
            try:
                python_type = column.type.python_type
            except NotImplementedError:
                python_type = str
            if python_type is bool:
                if str(value).lower() not in {"true", "false", "1", "0"}:
                    raise ProviderInvalidQueryError(user_msg=f"{name} must be true or false, got {value!r}")
                value = str(value).lower() in {"true", "1"}
            elif python_type in (int, float):
                try:
                    value = python_type(value)
                except ValueError:
                    raise ProviderInvalidQueryError(
                        user_msg=f"{name} must be {_TYPE_WORDS[python_type]}, got {value!r}"
                    ) from None
            else:
                value = cast(value, column.type) if python_type is not str else value
            clauses.append(column == value)
        return and_(*clauses)

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        """Item by id; the id is cast to the id column's type, and a malformed id is simply not found."""
        from pygeoapi.provider.base import ProviderItemNotFoundError

        column = getattr(self.table_model, self.id_field)
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = str
        if python_type is int:
            try:
                identifier = int(identifier)
            except (TypeError, ValueError):
                raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.") from None
        return super().get(identifier, crs_transform_spec=crs_transform_spec, **kwargs)
