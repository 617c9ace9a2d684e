# faceprint: everything runs from a virtual environment at .venv in the checkout.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FACEPRINT_DATA ?= ../shared/data
export FACEPRINT_DATA

.PHONY: install library demo test test-fast lint format bench clean calibration quality-model pad-model synthetic-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp is rebuilt whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dlib,test,scale]'
	# face_recognition is only the baseline of benchmarks/throughput.py; --no-deps keeps pip from compiling dlib
	$(BIN)/pip install --quiet --no-deps 'face_recognition==1.3.0'
	# sqlcipher3-binary is only the SQLCipher baseline of benchmarks/encryption.py
	$(BIN)/pip install --quiet 'sqlcipher3-binary==0.6.0'
	touch $@

install: $(VENV)/.installed

## The main job: index the sample photos into a library, group the faces into people, serve the web UI.
LIBRARY ?= .faceprint/library.db
PORT ?= 8000
library: install
	$(BIN)/faceprint index "$(FACEPRINT_DATA)/samples" --db "$(LIBRARY)"
	$(BIN)/faceprint serve --db .faceprint/gallery.db --library "$(LIBRARY)" --no-auth --port $(PORT)

demo: install
	$(BIN)/faceprint demo --data "$(FACEPRINT_DATA)"

## The test suite: the lint, then every test (real models, real images from $(FACEPRINT_DATA)),
## on two worker processes (pytest-xdist; a test file stays on one worker, so its module
## fixtures are built once): much of the suite waits on servers, a browser and subprocesses.
PYTEST_WORKERS ?= 2
test: install lint
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

## The inner loop (under 3 minutes): the lint, then every test not marked slow.
test-fast: install lint
	$(BIN)/python -m pytest -q -m "not slow"

## ruff: lint and formatting check (the config is in pyproject.toml); `make format` applies both.
lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: install
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

## Benchmarks at full size (minutes); CI runs them at smoke size from the tests.
bench: install
	$(BIN)/python benchmarks/verification.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/throughput.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/identification.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/search.py
	$(BIN)/python benchmarks/clustering.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/simulated_user.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/quality.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/pad.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/synthetic.py --data "$(FACEPRINT_DATA)"
	$(BIN)/python benchmarks/encryption.py
	$(BIN)/python benchmarks/encrypted_gallery.py
	$(BIN)/python benchmarks/decode_memory.py --sweep
	$(BIN)/python benchmarks/library_ui.py

## Recompute the shipped calibration table from all impostor pairs of lfw-dev.
calibration: install
	$(BIN)/python scripts/build_calibration.py --data "$(FACEPRINT_DATA)"
	FACEPRINT_EMBEDDER=dlib-resnet-v1 $(BIN)/python scripts/build_calibration.py --data "$(FACEPRINT_DATA)"

## Retrain the shipped face-quality model (src/faceprint/quality/model-v1.json) on lfw-dev.
quality-model: install
	$(BIN)/python scripts/train_quality.py --data "$(FACEPRINT_DATA)"

## Retrain the shipped presentation-attack model (src/faceprint/liveness/pad-v2.json) on the three PAD sources (each also scored by a model trained without it).
pad-model: install
	$(BIN)/faceprint train-pad --labels "$(FACEPRINT_DATA)/pad/nuaa-train/labels.csv" --labels "$(FACEPRINT_DATA)/pad/webcam-collect/labels.csv" \
	  --labels "$(FACEPRINT_DATA)/pad/video-selfreplay/labels.csv" --out src/faceprint/liveness/pad-v2.json --version pad-v2

## Retrain the shipped synthetic-face model (src/faceprint/forensics/synthetic-v2.json): every face also seen re-framed (scripts/train_synthetic.py).
synthetic-model: install
	$(BIN)/python scripts/train_synthetic.py --data "$(FACEPRINT_DATA)" --out src/faceprint/forensics/synthetic-v2.json --version synthetic-v2

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
