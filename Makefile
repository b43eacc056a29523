# Two commands from a fresh clone: `make demo` and `make test`.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
TORCH   := torch==2.13.0

.PHONY: demo test browser-deps lab lint format clean

# The venv is rebuilt only when it is missing; the install only reruns when pyproject changes.
.venv/bin/python:
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip

$(STAMP): .venv/bin/python pyproject.toml
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[notebooks,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mmslim.tutorial.demo

# Debian's Chromium and its driver, for the browser test (tests/viz/test_browser.py): installed
# with apt-get only where one is missing, apt-get exists and we are root; otherwise a message
# says why not, and that test is skipped with the reason.
BROWSER_BIN := /usr/bin/chromium /usr/bin/chromedriver
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "browser-deps: chromium and chromedriver are installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser-deps: no apt-get here; install Chromium and chromedriver as $(BROWSER_BIN)" \
			"or the browser test is skipped"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "browser-deps: not root; run 'sudo make browser-deps' or the browser test is skipped"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver \
			|| echo "browser-deps: apt-get failed; the browser test is skipped"; \
	fi

test: $(STAMP) browser-deps
	$(PY) -m ruff format --check mmslim tests
	$(PY) -m ruff check mmslim tests
	$(PY) -m pytest -q

lab: $(STAMP)
	.venv/bin/jupyter lab notebooks/

lint: $(STAMP)
	$(PY) -m ruff format --check mmslim tests
	$(PY) -m ruff check mmslim tests

format: $(STAMP)
	$(PY) -m ruff format mmslim tests
	$(PY) -m ruff check --fix mmslim tests

clean:
	rm -rf .venv runs .pytest_cache
