# Community One Map — the two commands: `make demo` and `make test`.
.PHONY: demo test test-security bench setup lock db-start db-stop db-status broker-stop clean-db help

VENV := .venv
ONEMAP := $(VENV)/bin/onemap
PYTEST_ARGS ?=
LOCK := requirements.lock
# pip-compile (pip-tools) is a tool, not a dependency: it gets its own venv under .var/, same Python as .venv
LOCK_TOOLS := pip-tools==7.7.0 pip==26.3
LOCK_VENV := .var/lock-tools
LOCK_PYTHON := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,python3)
KEEP ?=

help:
	@echo "make demo    install what is missing, start PostGIS under .var/, load the demo, serve http://127.0.0.1:8000"
	@echo "make test    the same set-up, then the tests against a real PostGIS"
	@echo "make test-security  the attacking suite (tests/security/) in its long profile: fuzzing and crashes"
	@echo "make bench   benchmarks (tests/bench/), printing ratios against baselines"
	@echo "make db-stop stop the embedded PostGIS (make broker-stop: the embedded Mosquitto)"
	@echo "make lock    re-resolve pyproject.toml into $(LOCK) (exact versions and hashes), upgrading to the newest"
	@echo "             releases pyproject.toml allows; KEEP=1 keeps the current pins and only adds or drops what changed"

setup:
	@bash scripts/bootstrap.sh

# the only way the lock changes; `make setup` (and so demo/test) then installs it
lock:
	@grep -qxF "$(LOCK_TOOLS)" $(LOCK_VENV)/.tools 2>/dev/null \
		|| { rm -rf $(LOCK_VENV) && $(LOCK_PYTHON) -m venv $(LOCK_VENV) \
		     && $(LOCK_VENV)/bin/python -m pip install -q $(LOCK_TOOLS) && echo "$(LOCK_TOOLS)" > $(LOCK_VENV)/.tools; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--extra vision --extra test $(if $(KEEP),,--upgrade) --output-file $(LOCK) pyproject.toml

demo: setup
	@$(ONEMAP) demo

test: setup
	@$(ONEMAP) db start >/dev/null
	@$(ONEMAP) broker start >/dev/null
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

broker-stop:
	@$(ONEMAP) broker stop

clean-db: db-stop
	rm -rf .var/pg
