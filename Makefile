# One command each: `make run` (the whole stack locally), `make test` (`check`, then every test),
# `make bench`, `make load` (the payday peak). `make check` and `make pytest` run the two halves
# of `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-dates pytest check typecheck bench load venv clean package

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devtools.run_local

test: check pytest

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The date-sensitive slice again on other days (README "Running it locally"): a year ahead, the
# last half hour of 31 December in Colombia, 29 February. TEST_CLOCK moves the tests' clock and
# their local stack's (devtools/clock.py).
# In the full suite's order: the journeys share one stack, and the login journey is a member's first.
DATE_SLICE := tests/browser/test_login_journey.py tests/browser/test_member_journey.py \
  tests/browser/test_payment_journey.py tests/browser/test_phone.py \
  tests/integration/test_run_local.py tests/unit/test_demo_dates.py \
  tests/integration/test_reminders.py tests/integration/test_exports.py \
  tests/integration/test_reconcile.py tests/integration/test_payment_pages.py
DATES := 2027-12-10T10:00:00-05:00 2027-12-31T23:31:00-05:00 2028-02-29T12:00:00-05:00

test-dates: $(STAMP)
	@for moment in $(DATES); do \
	  echo "== TEST_CLOCK=$$moment"; \
	  TEST_CLOCK=$$moment $(PY) -m pytest -q $(DATE_SLICE) $(PYTEST_ARGS) || exit 1; \
	done

# Hardening checks: mypy --strict on the deployed code ([tool.mypy] in pyproject.toml says which
# files), then ruff and bandit. Bandit fails on medium and high findings. pip-audit exits 1 both on findings
# and on errors, so the report's presence tells them apart; devtools/audit_fallback.py then judges
# it and audits what pip-audit skipped against PyPI's latest-release data (see its docstring).
# Accepted vulnerabilities: .ci/audit-ignore.txt.
AUDIT_REPORT := build/pip-audit.json

check: typecheck
	$(PY) -m ruff check .
	$(PY) -m bandit --quiet -c pyproject.toml -ll -r app.py chalicelib devtools bench
	@mkdir -p build && rm -f $(AUDIT_REPORT)
	$(PY) -m pip_audit --progress-spinner off -r requirements.txt -r requirements-dev.txt \
	  $$($(PY) -m devtools.audit_fallback --ignore-args) -f json -o $(AUDIT_REPORT) \
	  || test -s $(AUDIT_REPORT)
	$(PY) -m devtools.audit_fallback $(AUDIT_REPORT)

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m bench

# The payday peak (README "Load test"): LOAD_USERS simulated members (200) for LOAD_DURATION
# seconds (300) on a stack of its own; exit 1 unless every money invariant holds and no 5xx.
LOAD_USERS    ?= 200
LOAD_DURATION ?= 300

load: $(STAMP)
	$(PY) -m devtools.load --users $(LOAD_USERS) --duration $(LOAD_DURATION) $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts

# --- Deployment package (README "Deploying to AWS") ----------------------------------------------
# `make package STAGE=dev|prod`: generates build/merge-$(STAGE).json from the models and the app,
# runs `chalice package --merge-template` into build/$(STAGE)/ (sam.json + deployment.zip) with
# fake credentials when none are set, trims the zip to what the functions use and adds bytecode
# (devtools/packaging.py), then cfn-lint (fails on errors). No AWS call is made.
STAGE ?= dev

package: $(STAMP)
	$(PY) -m devtools.infra package --stage $(STAGE)
