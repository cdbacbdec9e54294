"""Accounts: users' roles, personal access tokens, failed logins and the access log, with their services.

The web side (reading the Authorization header, the token cache, failed-login limits) is ``api.auth``.
"""
