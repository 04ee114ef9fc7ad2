# Developer and CI entry points.  Everything runs from a virtualenv in .venv that is
# (re)installed whenever pyproject.toml is newer than the stamp file.

VENV   := .venv
BIN    := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP  := $(VENV)/.installed

# Lint only the trees that exist (benchmarks/ may not be there yet); ruff fails on a
# missing path.
LINT_PATHS := $(wildcard asyncroute tests benchmarks examples)

PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Material for MkDocs prints an advertisement banner on every build otherwise.
export NO_MKDOCS_2_WARNING := 1

.PHONY: venv lint typecheck test fuzz soak bench bench-quick bench-micro bench-1m docs docs-serve dist clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,dev,bench,docs]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy --strict asyncroute

test: lint typecheck
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Hostile bytes through codec, core and transport: 110,000 hypothesis examples (~5 min).
fuzz: $(STAMP)
	ASYNCROUTE_FUZZ=full $(PYTHON) -m pytest tests/fuzz --hypothesis-show-statistics $(PYTEST_ARGS)

# As root, in a netns: 1,000,000 random route/rule operations per backend (~3 min).
soak: $(STAMP)
	ASYNCROUTE_SOAK_OPS=1000000 $(PYTHON) -m pytest tests/soak $(PYTEST_ARGS)

# The full benchmark (needs root; about 3 minutes on 2 cores): table on stdout, JSON and a
# chart in benchmarks/results/.
bench: $(STAMP)
	$(PYTHON) -m asyncroute bench --plot benchmarks/results/latest.png

# One round of 10,000 routes: a quick check that every phase still runs.
bench-quick: $(STAMP)
	$(PYTHON) -m asyncroute bench --routes 10000 --rounds 1

# As root: 1,048,576 routes from a generator through upsert_many and delete_many; checks
# every result and the kernel's counts, and peak RSS < 150 MiB.
bench-1m: $(STAMP)
	$(PYTHON) benchmarks/million.py

# Encode/decode micro-benchmarks against pyroute2 (pytest-benchmark; not part of make test).
bench-micro: $(STAMP)
	$(PYTHON) -m pytest benchmarks/test_micro.py -p no:cacheprovider --benchmark-columns=median,ops

# The documentation site (MkDocs + Material, API reference from the docstrings) into
# site/, in strict mode: any warning, broken link or missing reference fails.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

# A wheel and an sdist in dist/ (tests/release checks they install into a fresh venv).
dist: $(STAMP)
	rm -rf dist
	$(PYTHON) -m build --outdir dist .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build site
	rm -rf *.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
