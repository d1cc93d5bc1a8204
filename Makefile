# Developer entry points. Works from a fresh clone: `make test` builds .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_REDIS := /usr/bin/redis-server

.PHONY: venv locales locales-update redis test lint fmt run demo bench clean

venv: $(STAMP)

# Re-installs whenever pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m bot.i18n
	touch $(STAMP)

# Compiles a gettext catalogue (locales/*/LC_MESSAGES/messages.po) whose .mo is stale.
locales: venv
	@$(BIN)/python -m bot.i18n

# After changing user-facing text: re-extract it and merge into every catalogue.
locales-update: venv
	$(BIN)/pybabel extract -F babel.cfg -k _ -k __ -k N_ --no-location --sort-output \
		--project binance-telegram-bot -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages

redis:
	@if command -v redis-server >/dev/null 2>&1 || [ -x $(DEBIAN_REDIS) ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	else \
		echo "redis-server is missing: install Debian's redis-server package (sudo apt-get install redis-server)" >&2; \
		exit 1; \
	fi

# Three workers on two cores: most tests wait on sockets, child processes and Redis, not the CPU
# (four were faster but loaded the machine enough to starve the limiter's window-filling tests);
# work stealing keeps the long process tests from ending up in one worker's tail.
# `make test PYTEST_ARGS=` runs them one after another.
PYTEST_ARGS ?= -n 3 --dist worksteal

test: venv locales redis
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict utils
	$(BIN)/mypy bot handler analysis

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: venv locales
	$(BIN)/python -m bot

# The bot against the local fake exchange and fake Bot API, with a terminal chat.
demo: venv locales
	$(BIN)/python -m scripts.demo

bench: venv
	$(BIN)/python -m pip install -e '.[dev,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
