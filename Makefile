# REE Channel: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install specs run test lint format asyncapi i18n bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(MAKE) --no-print-directory specs
	touch $@

## The AsyncAPI Initiative's JSON Schemas, which tests/unit/test_asyncapi.py validates against,
## and axe-core, which tests/browser/test_portal.py runs on every portal page (one install).
ASYNCAPI_SPECS := .cache/npm/node_modules/@asyncapi/specs/package.json
AXE_CORE := .cache/npm/node_modules/axe-core/axe.min.js
$(ASYNCAPI_SPECS) $(AXE_CORE) &:
	npm install --prefix .cache/npm --no-save --no-audit --no-fund --silent \
		@asyncapi/specs@6.11.1 axe-core@4.10.3

specs: $(ASYNCAPI_SPECS) $(AXE_CORE)

install: $(VENV)/.installed

## Start the whole system: embedded Redis and SQLite unless REDIS_URL / DATABASE_URL are set.
run: install
	$(BIN)/reechannel run

## Run the whole test suite (real Redis and database: see README, Testing). TEST_WORKERS=N
## runs it on N processes, a test file to a process (README, Testing: not yet the default).
TEST_WORKERS ?= 0
test: install specs
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services bench reechannel

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

asyncapi: install
	$(BIN)/reechannel events asyncapi --out docs/asyncapi.json

## The console's, the portal's and the e-mails' languages (docs/console.md, docs/portal.md,
## docs/notify.md): extract their messages (babel.cfg, babel-portal.cfg,
## services/notify/babel.cfg) into the templates, merge them into each catalogue, then check
## that none is missing or untranslated.
CATALOGUES := services/review/translations
PORTAL_CATALOGUES := services/intake/translations
MAIL_CATALOGUES := services/notify/translations
## $(call catalogue,babel config,folder,domain,project): extract the template, keeping the
## old one where only its POT-Creation-Date would change (so an unchanged catalogue stays
## untouched in git), then merge it into each language's catalogue.
define catalogue
	cp $(2)/$(3).pot $(2)/$(3).pot.old
	PYTHONPATH=. $(BIN)/pybabel -q extract -F $(1) -k N_ --no-location --sort-output \
		--project "$(4)" -o $(2)/$(3).pot .
	if diff -q -I '^"POT-Creation-Date: ' $(2)/$(3).pot.old $(2)/$(3).pot >/dev/null; then \
		mv $(2)/$(3).pot.old $(2)/$(3).pot; else rm $(2)/$(3).pot.old; fi
	$(BIN)/pybabel -q update -i $(2)/$(3).pot -d $(2) -D $(3) --no-fuzzy-matching \
		--ignore-obsolete --ignore-pot-creation-date
endef
i18n: install
	$(call catalogue,babel.cfg,$(CATALOGUES),console,REE Channel console)
	$(call catalogue,babel-portal.cfg,$(PORTAL_CATALOGUES),portal,REE Channel portal)
	$(call catalogue,services/notify/babel.cfg,$(MAIL_CATALOGUES),mail,REE Channel e-mail)
	$(BIN)/pytest -q tests/unit/test_console_languages.py tests/unit/test_portal_languages.py \
		tests/unit/notify/test_mail_languages.py

## Measure the system against its baselines on PostgreSQL and Redis; writes docs/benchmarks.md
## (about 15 minutes; BENCH_ARGS="--quick" for a short run, see docs/benchmarks.md).
bench: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf .data .pytest_cache .ruff_cache .mypy_cache
