# Two entry points, each doing all of its own set-up on a fresh machine:
#   make demo   build a vocabulary and pretraining data from text that ships with Python, and report
#   make test   lint and format-check with ruff, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Test processes for make test (pytest-xdist; each file's tests stay in one process, so a
# module's fixtures are built once; tests/conftest.py starts the slowest files first); 0 runs it
# in one pytest process, without xdist workers. Three on 2 cores: the tiny models leave the cores
# idle part of the time in Python, tracing and subprocess start-up (quiet, 2026-12-07: 20.7 min
# with 2 workers, 17.3 with 3, both before the slowest files went first).
TEST_WORKERS ?= 3

.PHONY: demo test bench clean-demo

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m electra_tf.demo --output_dir demo_output

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

clean-demo:
	rm -rf demo_output
