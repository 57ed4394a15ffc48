# The two commands a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PEERS := .venv-peers
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench bench-peers lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelworks quickstart --dir .modelworks-demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

# Peers run in their own venv and process: MLflow, Evidently 0.7 (needs pandas<3), FLAML,
# statsmodels, and the same scikit-learn as the main venv so models cross as files.
$(PEERS)/.installed: $(STAMP) benchmarks/peers-requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -r benchmarks/peers-requirements.txt \
		"scikit-learn==$$($(PY) -c 'import sklearn; print(sklearn.__version__)')"
	touch $(PEERS)/.installed

bench-peers: $(PEERS)/.installed

bench: $(STAMP) bench-peers
	$(PY) benchmarks/tracking.py
	$(PY) benchmarks/registry.py
	$(PY) benchmarks/validation.py
	$(PY) benchmarks/serving.py
	$(PY) benchmarks/drift.py
	$(PY) benchmarks/automl.py
	$(PY) benchmarks/many_models.py

clean:
	rm -rf $(VENV) $(PEERS) .modelworks-demo
