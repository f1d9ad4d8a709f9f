# Quick start: `make demo` and `make test` each create/update .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
RETRIEVAL_HOME ?= $(HOME)/.cache/retrieval
DEMO_DIR := $(RETRIEVAL_HOME)/demo

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

# Re-runs only when the dependency declarations change (idempotent).
$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt torch torchaudio
	# Optional extras the tests exercise: ann (hnswlib, faiss-cpu index backends), ray (the --engine ray indexer),
	# formats (PyAV, mutagen), web (retrieval serve).
	$(PIP) install --quiet -c constraints.txt -e ".[dev,ann,ray,formats,web]"
	# the browser tests (tests/web) drive Debian's chromium through playwright; never `playwright install`
	test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }
	# tinysoundfont's declared pyaudio dependency is only for live playback and needs system
	# PortAudio headers; offline rendering does not use it.
	$(PIP) install --quiet --no-deps tinysoundfont
	# musicnn ships the published TensorFlow checkpoints that retrieval.pretrained converts; its pinned
	# TensorFlow is not needed for that and never goes into .venv.
	$(PIP) install --quiet --no-deps musicnn
	touch $(STAMP)

# Build the demo corpus, train the demo model, evaluate it (each step reuses finished work).
demo: $(STAMP)
	$(VENV)/bin/retrieval demo --home $(RETRIEVAL_HOME) --config demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests $(wildcard notebooks/*.ipynb) --nbmake

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check retrieval tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
