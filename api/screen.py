"""The command-centre big screen at /screen/ (the page is being built)."""

SCREEN_ROLES = frozenset({"administrator", "commander"})

urlpatterns: list = []
