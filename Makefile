# One command each: `make run` (the whole stack locally), `make test` (every test), `make bench`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench venv clean package

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devtools.run_local

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts

# --- Deployment package (README "Deploying to AWS") ----------------------------------------------
# `make package STAGE=dev|prod`: generates build/merge-$(STAGE).json from the models and the app,
# runs `chalice package --merge-template` into build/$(STAGE)/ (sam.json + deployment.zip) with
# fake credentials when none are set, then cfn-lint (fails on errors). No AWS call is made.
STAGE ?= dev

package: $(STAMP)
	$(PY) -m devtools.infra package --stage $(STAGE)
