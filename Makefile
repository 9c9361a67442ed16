# Two commands on a fresh clone: `make demo` and `make test`. Both build .venv on first use and
# reinstall the pinned requirements whenever a requirements file changes (the stamp name is their hash).
# The ONNX extra is installed too, so the tests cover it; onnx2tf goes in without its pins (NODEPS).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-dev.txt requirements-onnx.txt
NODEPS := requirements-onnx-nodeps.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) $(NODEPS) | sha256sum | cut -c1-16)

.PHONY: test lint venv clean

venv: $(STAMP)

$(STAMP): $(REQS) $(NODEPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(foreach r,$(REQS),-r $(r))
	$(PY) -m pip install --quiet --no-deps -r $(NODEPS)
	$(PY) -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
