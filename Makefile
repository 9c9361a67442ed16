# Two commands on a fresh clone: `make demo` and `make test`. Both build .venv on first use and
# reinstall the pinned requirements whenever a requirements file changes (the stamp name is their hash).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-dev.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha256sum | cut -c1-16)

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(foreach r,$(REQS),-r $(r))
	$(PY) -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# The whole pipeline on the zoo RDN (or the bundled EDSR offline): demo_out/report.html. About 15 minutes on 2 cores.
demo: $(STAMP)
	$(PY) -m edge_sr.demo --out demo_out

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
