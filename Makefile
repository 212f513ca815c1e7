# Two commands: `make run` (install what is missing, build the demo models, start the stack)
# and `make test` (install what is missing, run every test). Both are idempotent and quick
# once installed: each install step is skipped when its inputs have not changed.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The venv's interpreter: Debian's, so that the unprivileged service user a root-started stack
# drops to can run Gunicorn (a Python under /root, e.g. pyenv's, is out of its reach).
BASE_PYTHON := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
# Debian packages: R, Plumber and its friends, NGINX. CRAN is not reachable: R packages come
# from Debian's r-cran-*. Keep renv.lock in sync (make renv.lock). chromium: the status page's
# test opens it headless (no driver needed). readr and htmlwidgets: the packages Plumber's own
# csv/tsv and htmlwidget serializers need (arrow and geojsonsf, for feather/parquet/geojson, are
# not in Debian). python3-venv: the venv is built on Debian's Python (see BASE_PYTHON).
# r-cran-rpart/nnet/mass/mgcv: R model families users bring (R's recommended packages), served
# by the workers and checked by the tests.
APT_PACKAGES := nginx-light python3-venv r-base-core r-cran-plumber r-cran-jsonlite r-cran-randomforest \
	r-cran-testthat r-cran-httr r-cran-sodium r-cran-readr r-cran-htmlwidgets chromium \
	r-cran-rpart r-cran-nnet r-cran-mass r-cran-mgcv
R_LIB := .rlib
# promtool checks deploy/prometheus/*.yml in the tests. Taken out of Debian's `prometheus` package
# without installing it: installing would start a Prometheus server on :9090 on this host.
PROMTOOL := .tools/promtool

.PHONY: run test deps users bench lint clean man rcheck wheel

# How to call `gateway` from anywhere once `make run` (or `make deps`) has built the venv.
ON_PATH := echo 'gateway is $(CURDIR)/$(VENV)/bin/gateway; on PATH in this shell: export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"'; \
	echo '  or in every shell: mkdir -p ~/.local/bin && ln -sf $(CURDIR)/$(VENV)/bin/gateway ~/.local/bin/gateway'

run: deps
	$(VENV)/bin/gateway build-demo
	@$(ON_PATH)
	$(VENV)/bin/gateway up

# A wheel to install anywhere (docs/install.md): dist/gateway-<version>-py3-none-any.whl.
wheel: $(STAMPS)/venv
	rm -rf build
	$(PY) -m pip wheel -q --no-deps -w dist .

test: deps rcheck
	$(VENV)/bin/ruff check gateway tests bench
	$(VENV)/bin/mypy
	R_LIBS=$(abspath $(R_LIB)) Rscript -e 'testthat::test_dir("r_services/tests/testthat", package = "gatewayr", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'
	$(VENV)/bin/pytest -q

# R CMD check of gatewayr (help pages, code/documentation agreement, NAMESPACE): no ERROR and no
# WARNING. Its tests need the repository around them, so `make test` runs them above instead.
rcheck: deps
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && cd "$$dir" && \
	R CMD build --no-build-vignettes --no-manual $(abspath r_services) >build.log 2>&1 || { cat build.log; exit 1; }; \
	R_LIBS=$(abspath $(R_LIB)) R CMD check --no-manual --no-tests gatewayr_*.tar.gz >check.log 2>&1; \
	status=$$(grep '^Status:' gatewayr.Rcheck/00check.log); echo "R CMD check gatewayr: $${status#Status: }"; \
	grep -Eq '^Status: (OK|[0-9]+ NOTEs?)$$' gatewayr.Rcheck/00check.log || \
		{ grep -E -A12 'ERROR|WARNING' gatewayr.Rcheck/00check.log; exit 1; }

# gatewayr's help pages (r_services/man) from the roxygen comments in r_services/R; NAMESPACE
# stays written by hand. roxygen2 only writes them: `make test` does not need it.
MAN_APT := r-cran-roxygen2

man:
	@dpkg -s $(MAN_APT) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(MAN_APT); }
	cd r_services && Rscript -e 'roxygen2::roxygenise(roclets = "rd")'

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
	$(VENV)/bin/mypy

deps: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/rlib $(PROMTOOL) users

# A stack started as root drops to these users (docs/security.md): NGINX workers and Gunicorn
# run as gateway, R workers (model code) as gateway-r, in gateway's group. Not root: no drop,
# nothing to create.
SERVICE_USER := gateway
R_USER := gateway-r
users:
	@if [ "$$(id -u)" = 0 ]; then \
		id -u $(SERVICE_USER) >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin $(SERVICE_USER); \
		id -u $(R_USER) >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin --gid $(SERVICE_USER) $(R_USER); \
	fi

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

# rpy2 in ABI mode (cffi dlopens libR.so at run time): no compiler, no r-base-dev, no
# python3-dev. R must be installed first: rpy2's build asks `R RHOME` where it lives.
$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	RPY2_CFFI_MODE=ABI $(PY) -m pip install -q -e '.[test,rpy2]'
	@touch $@

# The checkout's R library: what `gateway setup r` does for an installed wheel (gateway/rlib.py),
# here into .rlib, which the gateway picks when it runs from a checkout.
$(STAMPS)/rlib: $(STAMPS)/apt $(STAMPS)/venv $(shell find r_services -type f -not -path '*/tests/*' 2>/dev/null)
	GATEWAY_R_LIBRARY=$(abspath $(R_LIB)) $(VENV)/bin/gateway setup r >/dev/null
	@touch $@

$(PROMTOOL):
	@mkdir -p .tools/deb
	cd .tools/deb && apt-get download -qq prometheus 2>/dev/null && dpkg-deb -x prometheus_*.deb root
	cp .tools/deb/root/usr/bin/promtool $@ && rm -rf .tools/deb

renv.lock: $(STAMPS)/rlib
	R_LIBS=$(abspath $(R_LIB)) Rscript -e 'gatewayr::write_renv_lock("renv.lock", c("plumber", "jsonlite", "randomForest", "testthat", "httr", "sodium", "readr", "htmlwidgets", "rpart", "nnet", "MASS", "mgcv"))'

clean:
	-$(VENV)/bin/gateway down 2>/dev/null
	rm -rf $(STAMPS) $(R_LIB) .run .tools
