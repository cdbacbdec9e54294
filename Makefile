# Community One Map — the two commands: `make demo` and `make test`.
.PHONY: demo test test-security bench setup db-start db-stop db-status clean-db help

VENV := .venv
ONEMAP := $(VENV)/bin/onemap
PYTEST_ARGS ?=

help:
	@echo "make demo    install what is missing, start PostGIS under .var/, load the demo, serve http://127.0.0.1:8000"
	@echo "make test    the same set-up, then the tests against a real PostGIS"
	@echo "make test-security  the attacking suite (tests/security/) in its long profile: fuzzing and crashes"
	@echo "make bench   benchmarks (tests/bench/), printing ratios against baselines"
	@echo "make db-stop stop the embedded PostGIS"

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ONEMAP) demo

test: setup
	@$(ONEMAP) db start >/dev/null
	@$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# the attacking suite's long profile: many more generated requests, filters and bodies, three crashes
test-security: setup
	@$(ONEMAP) db start >/dev/null
	@ONEMAP_SECURITY_PROFILE=long $(VENV)/bin/python -m pytest tests/security -s $(PYTEST_ARGS)

bench: setup
	@$(ONEMAP) db start >/dev/null
	@$(VENV)/bin/python tests/bench/run_all.py

db-start: setup
	@$(ONEMAP) db start

db-stop:
	@$(ONEMAP) db stop

db-status:
	@$(ONEMAP) db status

clean-db: db-stop
	rm -rf .var/pg
