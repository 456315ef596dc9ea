# Two commands: `make run` (set up + run the pipeline on the default corpus), `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORPUS ?= data/corpus
OUT ?= out

.PHONY: run test test-cluster bench venv java-check corpus clean-out

$(STAMP): pyproject.toml setup.py native/codecorpus_scan.c native/jsonl.c native/measure.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,lm]'
	touch $(STAMP)

venv: $(STAMP)

java-check:
	@command -v java >/dev/null || { echo "error: Java 17 or newer is required (install openjdk-17-jre-headless)"; exit 1; }
	@v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2}' | cut -d. -f1); \
	  [[ $${v:-0} -ge 17 ]] || { echo "error: Java 17 or newer is required, found $$v"; exit 1; }

# The embedded default corpus: this Python's standard library and the venv's site-packages.
$(CORPUS)/_manifest.json: | $(STAMP)
	$(PY) jobs/make_corpus.py --output $(CORPUS)

corpus: $(CORPUS)/_manifest.json

run: venv java-check corpus
	./spark-submit.sh jobs/pipeline.py --set input=$(CORPUS) --set output=$(OUT)
	@echo "dataset: $(OUT)/dataset   report: $(OUT)/report/index.html   tokens: $(OUT)/tokens"

test: venv java-check
	$(PY) -m pytest -m "not cluster" -q

test-cluster: venv java-check
	$(PY) -m pytest -m cluster -q

bench: venv java-check corpus
	$(PY) bench/run_all.py --corpus $(CORPUS) --scaling

clean-out:
	rm -rf $(OUT) build
