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

## Run the whole test suite (real Redis and database: see README, Testing).
test: install specs
	$(BIN)/pytest

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
i18n: install
	PYTHONPATH=. $(BIN)/pybabel -q extract -F babel.cfg -k N_ --no-location --sort-output \
		--project "REE Channel console" -o $(CATALOGUES)/console.pot .
	$(BIN)/pybabel -q update -i $(CATALOGUES)/console.pot -d $(CATALOGUES) -D console \
		--no-fuzzy-matching --ignore-obsolete
	PYTHONPATH=. $(BIN)/pybabel -q extract -F babel-portal.cfg -k N_ --no-location --sort-output \
		--project "REE Channel portal" -o $(PORTAL_CATALOGUES)/portal.pot .
	$(BIN)/pybabel -q update -i $(PORTAL_CATALOGUES)/portal.pot -d $(PORTAL_CATALOGUES) -D portal \
		--no-fuzzy-matching --ignore-obsolete
	PYTHONPATH=. $(BIN)/pybabel -q extract -F services/notify/babel.cfg -k N_ --no-location \
		--sort-output --project "REE Channel e-mail" -o $(MAIL_CATALOGUES)/mail.pot .
	$(BIN)/pybabel -q update -i $(MAIL_CATALOGUES)/mail.pot -d $(MAIL_CATALOGUES) -D mail \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pytest -q tests/unit/test_console_languages.py tests/unit/test_portal_languages.py \
		tests/unit/notify/test_mail_languages.py

## Measure the system against its baselines on PostgreSQL and Redis; writes docs/benchmarks.md
## (about 15 minutes; BENCH_ARGS="--quick" for a short run, see docs/benchmarks.md).
bench: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf .data .pytest_cache .ruff_cache .mypy_cache
