# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test install clean report-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/forecast demo --out $(OUT)

# Open the demo's report in headless Chromium (apt-get install chromium), keep a screenshot, check it
report-check: $(STAMP)
	@test -f $(OUT)/report/report.html || $(MAKE) demo
	$(BIN)/forecast report-check $(OUT)/report/report.html --png $(OUT)/report/report.png

# Our backtest beside mlforecast and statsforecast (benchmarks/README.md); ~15 min on 2 cores.
# Options pass through: make bench BENCH_ARGS="--sizes 2000x120 --skip-autoets"
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

.PHONY: bench
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# What each covariate family adds: one backtest of the sample with and without each (~17 min on 2 cores)
.PHONY: ablation
ablation: $(STAMP)
	mkdir -p $(OUT)/ablation
	$(BIN)/python benchmarks/ablation.py --tracking-uri sqlite:///$(OUT)/ablation/mlflow.db --out $(OUT)/ablation \
		--artifacts $(OUT)/ablation/mlartifacts

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

# Everything the demo, the tests and the build wrote: the demo keeps its MLflow store (database and
# artifacts) under $(OUT); ./mlflow.db, ./mlruns and ./mlartifacts are MLflow's defaults for the
# CLI commands run here without --tracking-uri (the README's walk-through).
clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis mlflow.db mlruns mlartifacts build dist *.egg-info
	find forecast tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
