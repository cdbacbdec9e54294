"""Notifications through a transactional outbox: in-app (the live feed), DingTalk robots and SMS.

A service writes an outbox row with its change (:func:`gis.notifications.services.notify`);
the worker (``onemap worker``) delivers it, retries it with backoff, dead-letters it, and a
commander replays it. See docs/notifications.md.
"""
