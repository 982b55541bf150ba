# The two commands of the README. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean pretrain

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of PyTorch first: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m sctranslator.demo

# Re-creates the shipped default model from ../shared/data (1–3 h on 2 CPU cores; relaunching resumes) into
# outputs/pretrain/sctranslator-base and prints its held-out metrics next to the shipped model's.
pretrain: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) training/pretrain.py --out outputs/pretrain --ship outputs/pretrain/sctranslator-base

# pytest (its 15 slowest tests listed, to watch the CI time), ruff, and the layering contract of pyproject.toml ([tool.importlinter]: no import upwards, no circles)
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --durations=15
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) demo_output
