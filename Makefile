# Two commands on a fresh clone: `make demo` and `make test`. Both build .venv on first use and
# reinstall the pinned requirements whenever a requirements file changes (the stamp name is their hash).
# The ONNX extra is installed too, so the tests cover it; onnx2tf goes in without its pins (NODEPS).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements-dev.txt requirements-onnx.txt
NODEPS := requirements-onnx-nodeps.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQS) $(NODEPS) | sha256sum | cut -c1-16)

.PHONY: demo demo-screenshot test test-java lint venv peers-venv arm64-root clean

venv: $(STAMP)

$(STAMP): $(REQS) $(NODEPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(foreach r,$(REQS),-r $(r))
	$(PY) -m pip install --quiet --no-deps -r $(NODEPS)
	$(PY) -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# The peers extra (requirements-peers.txt) in a venv of its own, beside the pinned stack: run
# `.venv-peers/bin/python -m edge_sr.benchmark peers ...` (litert-torch's xdsl caps typing_extensions < 4.13).
PEERS_VENV := .venv-peers
PEERS_REQS := requirements.txt requirements-dev.txt requirements-peers.txt
PEERS_STAMP := $(PEERS_VENV)/.installed-$(shell cat $(PEERS_REQS) | sha256sum | cut -c1-16)

peers-venv: $(PEERS_STAMP)

$(PEERS_STAMP): $(PEERS_REQS)
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet $(foreach r,$(PEERS_REQS),-r $(r))
	$(PEERS_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@rm -f $(PEERS_VENV)/.installed-*
	@touch $@

# The whole pipeline on the zoo RDN (or the bundled EDSR offline): demo_out/report.html. about 15 minutes on 2 cores with VNNI, longer on AVX2-only CPUs.
demo: $(STAMP)
	$(PY) -m edge_sr.demo --out demo_out

# A picture of the report, from headless Chromium (Debian: apt-get install chromium).
demo-screenshot:
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --disable-background-networking \
		--window-size=1400,2400 --screenshot=$(CURDIR)/demo_out/report.png file://$(CURDIR)/demo_out/report.html

test: $(STAMP)
	$(PY) -m ruff check .
	@$(MAKE) --no-print-directory test-java
	$(PY) -m pytest -n 2 --dist loadfile

# The Android app's plain-Java core (android_demo/srcore) with javac and JUnit 5's console launcher alone (no
# Gradle, no Maven Central). Skipped with a note where javac or the JUnit jar is missing, unless
# EDGE_SR_REQUIRE_JAVA is set (CI), where that is a failure.
JUNIT_JAR ?= /usr/share/java/junit-platform-console-standalone.jar
SRCORE := android_demo/srcore
JAVA_OUT := build/srcore

test-java:
	@if ! command -v javac >/dev/null 2>&1 || [ ! -f "$(JUNIT_JAR)" ]; then \
		note="the Java tests need javac (JDK 17+) and $(JUNIT_JAR) (Debian: apt-get install default-jdk-headless junit5)"; \
		if [ -n "$$EDGE_SR_REQUIRE_JAVA" ]; then echo "error: $$note" >&2; exit 1; fi; \
		echo "skipping the Java tests: $$note"; exit 0; \
	fi; \
	set -e; rm -rf $(JAVA_OUT); \
	javac --release 17 -Xlint:all -Werror -d $(JAVA_OUT)/main $$(find $(SRCORE)/src/main/java -name '*.java'); \
	javac --release 17 -Xlint:all -Werror -cp $(JAVA_OUT)/main:$(JUNIT_JAR) -d $(JAVA_OUT)/test \
		$$(find $(SRCORE)/src/test/java -name '*.java'); \
	java -jar $(JUNIT_JAR) --disable-banner --details=summary --fail-if-no-tests --disable-ansi-colors \
		--class-path $(JAVA_OUT)/main:$(JAVA_OUT)/test:$(SRCORE)/src/test/resources --scan-class-path

# The aarch64 Python that `python -m edge_sr.armcheck` runs under qemu-aarch64 (Debian 12's arm64 python3.11 and
# this venv's ai-edge-litert and numpy as aarch64 wheels), built once into the edge_sr cache (EDGE_SR_ARM64_ROOT
# to choose the place). Needs apt-get, dpkg-deb and the network; armcheck also builds it on first use.
arm64-root: $(STAMP)
	$(PY) -m edge_sr.armcheck --setup

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .ruff_cache
