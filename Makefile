# Set-up and everyday commands. Every target creates the virtualenv on demand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The hot-path modules listed in src/pyrstmdb/_native.py are compiled (mypyc) at install
# time, so editing one of them (or the build files) reinstalls.
NATIVE_SRC := $(shell sed -n 's/^ *"\(pyrstmdb[.a-z_]*\)",$$/src.\1/p' src/pyrstmdb/_native.py | tr . / | sed 's/$$/.py/')
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py src/pyrstmdb/_native.py $(NATIVE_SRC) | sha1sum | cut -c1-12)
RSTMDB_BIND ?= 127.0.0.1:7401
RSTMDB_DATA ?= ./data
RSTMDB_HTTP_BIND ?= 127.0.0.1:7402
export RSTMDB_BIND RSTMDB_DATA RSTMDB_HTTP_BIND
# The web console's tests drive Debian's chromium (headless).
CHROMIUM ?= /usr/bin/chromium

# The cluster tests start a real PostgreSQL from Debian's package.
PG_PACKAGE ?= postgresql
PG_SERVER_GLOB ?= /usr/lib/postgresql/*/bin/postgres

.PHONY: run test lint bench bench-compare venv clean postgres chromium screenshots

venv: $(STAMP)

# Set-up prints one line per step; pip's own output (and the warnings a local pip
# configuration may add) goes to $(VENV)/setup.log and is shown only when a step fails.
SETUP_LOG = $(VENV)/setup.log
define quietly
	@echo "==> $(1)"
	@$(2) >>$(SETUP_LOG) 2>&1 || { grep -v -i '^warning' $(SETUP_LOG) | tail -n 40; \
		echo "set-up failed: $(1) (full log: $(SETUP_LOG))"; exit 1; }
endef

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "==> creating the virtualenv $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@: > $(SETUP_LOG)
	$(call quietly,upgrading pip,$(PY) -m pip install --quiet --upgrade pip)
	$(call quietly,installing pyrstmdb and its test dependencies (compiles the hot path; about a minute the first time),$(PY) -m pip install --quiet -e '.[test]')
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "==> ready: run '. $(VENV)/bin/activate' to put rstmdb and rstmdb-cli on your PATH"

# The pure-Python build (what a machine without a C compiler or mypyc installs) gets its
# own virtualenv, and `make test` runs the engine, core and durability suites on it too.
# It is a regular install, not an editable one: the extensions the compiled editable build
# leaves in src/ must not be imported from it. Any change under src/ reinstalls it.
PURE_VENV ?= .venv-pure
PURE_PY := $(PURE_VENV)/bin/python
PURE_STAMP := $(PURE_VENV)/.installed-$(shell find src -name '*.py' | sort | xargs cat pyproject.toml setup.py | sha1sum | cut -c1-12)
PURE_SUITES := tests/unit/test_native_build.py tests/unit/engine tests/unit/core tests/unit/durable tests/property

$(PURE_STAMP): SETUP_LOG = $(PURE_VENV)/setup.log
$(PURE_STAMP): pyproject.toml
	@test -x $(PURE_PY) || { echo "==> creating the pure-Python virtualenv $(PURE_VENV)"; $(PYTHON) -m venv $(PURE_VENV); }
	@: > $(PURE_VENV)/setup.log
	@rm -rf build/lib
	$(call quietly,installing pyrstmdb as pure Python into $(PURE_VENV),env PYRSTMDB_PURE_PYTHON=1 $(PURE_PY) -m pip install --quiet '.[test]')
	@rm -f $(PURE_VENV)/.installed-*
	@touch $@

run: $(STAMP)
	@echo "web console: http://$(RSTMDB_HTTP_BIND)/"
	exec $(VENV)/bin/rstmdb --bind "$(RSTMDB_BIND)" --http-bind "$(RSTMDB_HTTP_BIND)" --data-dir "$(RSTMDB_DATA)"

# Installs chromium when it is missing and this is root with apt; otherwise says what to install.
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  else \
	    echo "the web console tests need Debian's chromium at $(CHROMIUM): run 'sudo apt-get install -y chromium'" >&2; \
	    exit 1; \
	  fi; }

test: $(STAMP) $(PURE_STAMP) postgres chromium
	$(PY) -m pytest -n 2 --dist loadfile
	$(PURE_PY) -m pytest -n 2 --dist loadfile $(PURE_SUITES)

# The inner loop: everything but the tests marked slow (crash loops, long property runs,
# load tests), on the compiled build.
.PHONY: test-fast
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

# Install PostgreSQL when it is missing and we can (root and apt-get); otherwise say what to install.
postgres:
	@if ls $(PG_SERVER_GLOB) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing the Debian package $(PG_PACKAGE) (the cluster tests start PostgreSQL)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PG_PACKAGE) \
	  && ls $(PG_SERVER_GLOB) >/dev/null; \
	else \
	  echo "make test: PostgreSQL is not installed; install the Debian package '$(PG_PACKAGE)'" \
	    "(sudo apt-get install $(PG_PACKAGE)) and run it again" >&2; \
	  exit 1; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts setup.py
	$(VENV)/bin/ruff format --check src tests bench scripts setup.py
	$(VENV)/bin/mypy

# Renders docs/console.png (the README's screenshot) from a server filled with demo data.
screenshots: $(STAMP) chromium
	$(PY) scripts/screenshot_console.py docs/console.png

bench: $(STAMP)
	$(PY) -m bench

# pyrstmdb against Redis, PostgreSQL and SQLite (installs what is missing); ARGS=--quick
bench-compare: $(STAMP)
	$(PY) -m bench.compare $(ARGS)

clean:
	rm -rf $(VENV) $(PURE_VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
