# Two entry points, each doing all of its own set-up on a fresh machine:
#   make demo   build a vocabulary and pretraining data from text that ships with Python, and report
#   make test   lint and format-check with ruff, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Test processes for make test (pytest-xdist; each file's tests stay in one process, so a
# module's fixtures are built once); 0 runs it in one pytest process, without xdist workers.
TEST_WORKERS ?= 2

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
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

clean-demo:
	rm -rf demo_output
