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

.PHONY: run test lint bench venv clean chromium screenshots

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

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

test: $(STAMP) chromium
	$(PY) -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts setup.py
	$(VENV)/bin/ruff format --check src tests bench scripts setup.py
	$(VENV)/bin/mypy

# Renders docs/console.png (the README's screenshot) from a server filled with demo data.
screenshots: $(STAMP) chromium
	$(PY) scripts/screenshot_console.py docs/console.png

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
