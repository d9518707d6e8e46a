# The two commands of the README, and a few helpers. Every target sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV_PYTHON := .venv/bin/python
# The DAG `make run` runs; its own options follow (ARGS="--help" lists them).
DAG ?= learning_platform_etl
# UTC day for `make run` of the learning platform DAG; default: yesterday.
DATE ?= $(shell date -u -d yesterday +%F)
RUN_ARGS_learning_platform_etl = --date $(DATE) $(if $(filter 1 true,$(TEST_MODE)),--test-mode)
# How many profiles `make run DAG=user_profiles_relay` generates: required, no default.
RUN_ARGS_user_profiles_relay = $(if $(COUNT),--count $(COUNT))

.PHONY: help setup run airflow airflow-cli test reliability lint format lock simulator bench bench-csv bench-usage bench-profiles bench-sums bench-sums-rest

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i] }'

setup: ## create .venv from the lock files and install PostgreSQL if it is missing
	@scripts/bootstrap.sh
	@scripts/install_postgres.sh

run: setup ## run DAG (default learning_platform_etl, for DATE: yesterday; user_profiles_relay needs COUNT) on local services and print what it did
	$(VENV_PYTHON) -m devservices.local_run --dag $(DAG) $(RUN_ARGS_$(DAG)) $(ARGS)

airflow: setup ## Airflow with its UI on http://127.0.0.1:8080 (admin/admin) and the local services, until Ctrl-C
	$(VENV_PYTHON) -m devservices.local_airflow

airflow-cli: setup ## any airflow command with the local Airflow's environment: ARGS="dags list"
	$(VENV_PYTHON) -m devservices.airflow_cli $(ARGS)

# Two pytest processes, a test module always whole on one (--dist loadfile): most of the suite
# waits on the services it starts, so two at once nearly halve its time on two cores.
test: setup lint ## run the whole test suite (starts and stops its own services)
	@scripts/install_test_tools.sh
	$(VENV_PYTHON) -m pytest --numprocesses 2 --dist loadfile

reliability: setup ## run the fault-injection tests and rewrite docs/RELIABILITY.md from their output
	$(VENV_PYTHON) -m pytest tests/reliability -q
	$(VENV_PYTHON) -m tests.reliability.report

simulator: setup ## serve the API simulator on 127.0.0.1:8765 in the foreground (Ctrl-C stops it)
	$(VENV_PYTHON) -m devservices.simulator --host 127.0.0.1 --port 8765

bench: setup ## time each stage on a simulated day of 1M attempts, vs psql copy, row-by-row, pandas (ARGS=--quick|--write-docs)
	$(VENV_PYTHON) -m bench $(ARGS)

bench-csv: setup ## csv_folder_import on 200 MB and 2 GB drops, vs psql \copy, the seed's pandas, DuckDB (ARGS=--quick|--write-docs)
	$(VENV_PYTHON) -m bench.csv_import $(ARGS)

bench-usage: setup ## usage_files_ingest on 100 MB and 2 GB of usage files, vs DuckDB and the seed's upsert per line (ARGS=--quick|--write-docs)
	$(VENV_PYTHON) -m bench.usage_ingest $(ARGS)

bench-profiles: setup ## user_profiles_relay: 5,000 profiles at interval 0 and 40 at 0.5 s, vs the seed's multiprocessing queues (ARGS=--quick|--write-docs)
	$(VENV_PYTHON) -m bench.user_profiles $(ARGS)

bench-sums: setup ## csv_column_sums' compute on 300k and 3M rows from disk and S3 (moto), vs DuckDB, Polars, PyArrow, pandas (ARGS=--quick|--write-docs)
	$(VENV_PYTHON) -m bench.column_sums $(ARGS)

bench-sums-rest: setup ## csv_column_sums through its REST API on a local Airflow: the whole request vs the compute, answers' p95 while tasks run (ARGS=--quick|--write-docs)
	$(VENV_PYTHON) -m bench.column_sums_rest $(ARGS)

lint: ## ruff: lint and formatting check
	@scripts/bootstrap.sh
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

lock: ## recompile requirements*.txt after editing requirements*.in
	@scripts/bootstrap.sh
	.venv/bin/uv pip compile requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-header --annotation-style line -o requirements.txt
	.venv/bin/uv pip compile requirements-dev.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-header --annotation-style line -o requirements-dev.txt
