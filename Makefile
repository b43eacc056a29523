# Two commands from a fresh clone: `make demo` and `make test`.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
TORCH   := torch==2.13.0

.PHONY: demo test lab lint format clean

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

test: $(STAMP)
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
