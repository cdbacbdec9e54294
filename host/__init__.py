"""The host: what runs the faces of ``api/`` — Django's settings, the ASGI and WSGI applications,
the granian server, the ``onemap`` command line, the embedded PostgreSQL and the vendored
browser assets. It stands on top of every other package and nothing imports it."""
