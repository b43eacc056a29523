# Two commands from a fresh clone: `make demo` and `make test`.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
TORCH   := torch==2.13.0

.PHONY: demo test browser-deps lab lint format clean mutate

# The venv is rebuilt only when it is missing; the install only reruns when pyproject changes.
.venv/bin/python:
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip

$(STAMP): .venv/bin/python pyproject.toml
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[notebooks,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Every notebook headlessly into runs/<time>/. SCALE=cpu: the notebooks' own settings, for 2 CPU
# cores; SCALE=paper: the reference recipe (paper preset, 500 epochs a stage), for a GPU;
# SCALE=fast: the tests' smallest settings. The choices live in mmslim.tutorial.runner.SCALES.
SCALE ?= cpu
demo: $(STAMP)
	$(PY) -m mmslim.tutorial.demo --scale $(SCALE)

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

# Mutation testing (slow, not in CI): mutmut mutates the modules named in pyproject.toml's
# [tool.mutmut], runs the tests that reach each mutant, then the score of each module is printed
# (killed / (killed + survived + no tests); timeouts, often mutants that loop forever, are listed
# apart and count in neither). `make mutate MUTANTS='mmslim.metrics.radar.*'`
# limits it to some modules; `mutmut browse` shows the survivors. One OpenMP thread per mutant:
# mutmut's time limit counts CPU seconds, which idle-spinning threads burn on a busy machine.
MUTANTS ?= mmslim.metrics.* mmslim.codec.* mmslim.data.radar.* mmslim.data.simulator.* \
           mmslim.training.evaluate.* mmslim.training.checkpoint.*

define MUTATION_SCORE
import collections, sys
found = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    if "__mutmut_" in name:
        found[name.split("__mutmut_")[0].rsplit(".", 1)[0]][status] += 1
print(f"{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'timeout':>7} {'score':>6}")
for module, c in sorted(found.items()):
    killed = c["killed"] + c["segfault"]
    judged = killed + c["survived"] + c["no tests"]
    score = f"{100 * killed / judged:5.1f}%" if judged else "-"
    print(f"{module:32} {sum(c.values()):7} {killed:6} {c['survived']:8} {c['no tests']:8} {c['timeout']:7} {score:>6}")
endef
export MUTATION_SCORE

mutate: $(STAMP)
	MMSLIM_SAMPLES=$(CURDIR)/data_samples OMP_NUM_THREADS=1 nice -n 19 .venv/bin/mutmut run $(foreach m,$(MUTANTS),'$(m)')
	.venv/bin/mutmut results --all true | $(PY) -c "$$MUTATION_SCORE"

clean:
	rm -rf .venv runs .pytest_cache
