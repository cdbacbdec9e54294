"""The bottom layer: what every other package of Community One Map shares, importing nothing of them.

- :mod:`core.settings` — the ``ONEMAP_*`` settings, one cached accessor, the database URL
- :mod:`core.identity` — who is asking (``Identity``, ``ANONYMOUS``)
- :mod:`core.roles` — the user roles, who may do what by role, their database roles
- :mod:`core.vocabulary` — incident categories (labels, colours, scenes), statuses, sources
- :mod:`core.cli` — the command line's base: ``CommandError`` and Django's set-up

The one rule of the house (``docs/architecture.md``): imports only go down, and this is
the bottom. ``tests/test_architecture.py`` fails when something here imports the project.
"""
