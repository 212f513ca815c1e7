# Two commands: `make run` (install what is missing, build the demo models, start the stack)
# and `make test` (install what is missing, run every test). Both are idempotent and quick
# once installed: each install step is skipped when its inputs have not changed.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: R, Plumber and its friends, NGINX. CRAN is not reachable: R packages come
# from Debian's r-cran-*. Keep renv.lock in sync (make renv.lock).
APT_PACKAGES := nginx-light r-base-core r-cran-plumber r-cran-jsonlite r-cran-randomforest \
	r-cran-testthat r-cran-httr r-cran-sodium
R_LIB := .rlib

.PHONY: run test deps bench lint clean

run: deps
	$(VENV)/bin/gateway build-demo
	$(VENV)/bin/gateway up

test: deps
	$(VENV)/bin/ruff check gateway tests bench
	R_LIBS=$(abspath $(R_LIB)) Rscript -e 'testthat::test_dir("r_services/tests/testthat", package = "gatewayr", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'
	$(VENV)/bin/pytest -q

# Bench-only tools, never needed by `make test`: wrk (load generator), matplotlib (the chart),
# and mlflow in its own venv (a baseline to compare with; kept apart so its pins never touch
# ours). If mlflow cannot be installed, the benchmark says so and measures the rest.
BENCH_APT := wrk
MLFLOW_VENV := .venv-mlflow

bench: deps $(STAMPS)/bench
	$(PY) -m bench hot_path serving

$(STAMPS)/bench: pyproject.toml
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(BENCH_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the benchmarks: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(PY) -m pip install -q -e '.[test,bench]'
	@sk=$$($(PY) -c 'import sklearn; print(sklearn.__version__)'); \
	sko=$$($(PY) -c 'from importlib.metadata import version; print(version("skops"))'); \
	test -x $(MLFLOW_VENV)/bin/mlflow || { python3 -m venv $(MLFLOW_VENV) && \
		timeout 600 $(MLFLOW_VENV)/bin/pip install -q mlflow-skinny "scikit-learn==$$sk" "skops==$$sko" pandas; } || \
		{ rm -rf $(MLFLOW_VENV); echo "mlflow did not install: the benchmark skips mlflow serve"; }
	@touch $@

lint: deps
	$(VENV)/bin/ruff check gateway tests bench

deps: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/rlib

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

$(STAMPS)/rlib: $(STAMPS)/apt $(shell find r_services -type f -not -path '*/tests/*' 2>/dev/null)
	@mkdir -p $(R_LIB)
	R CMD INSTALL --no-multiarch --no-test-load --library=$(R_LIB) r_services >/dev/null
	@touch $@

renv.lock: $(STAMPS)/rlib
	R_LIBS=$(abspath $(R_LIB)) Rscript -e 'gatewayr::write_renv_lock("renv.lock", c("plumber", "jsonlite", "randomForest", "testthat", "httr", "sodium"))'

clean:
	-$(VENV)/bin/gateway down 2>/dev/null
	rm -rf $(STAMPS) $(R_LIB) .run
