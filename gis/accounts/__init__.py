"""Accounts: users' roles, personal access tokens, failed logins and the access log."""
