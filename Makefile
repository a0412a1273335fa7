# reviewrank — `make serve` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ADDRESS ?= $(or $(REVIEWRANK_ADDRESS),127.0.0.1:50051)
METRICS_ADDRESS ?= $(or $(REVIEWRANK_METRICS_ADDRESS),127.0.0.1:9464)

.PHONY: install node-client postgres serve bench-server reset-demo demo-data test soak bench bench-abuse bench-writes bench-visibility bench-polls bench-integrity bench-ab bench-postgres ghz-configs lint format gen evaluate clean

$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e clients/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Load the demo data (the real reviews data set) if the database is empty.
demo-data: install
	$(VENV)/bin/reviewrank import --if-empty

## Serve on $(ADDRESS) with the demo data; Prometheus metrics on $(METRICS_ADDRESS).
## Admin commands and erasure need the admin token: unless REVIEWRANK_ADMIN_TOKEN[_FILE]
## is set, it is $(ADMIN_TOKEN_FILE), made (random, mode 0600) on first run; the client
## commands read it there too (service/cli/token_file.py).
ADMIN_TOKEN_FILE := data/admin-token
serve: demo-data
	@if [ -z "$$REVIEWRANK_ADMIN_TOKEN$$REVIEWRANK_ADMIN_TOKEN_FILE" ]; then \
		$(PY) -m reviewrank.service.cli.token_file $(ADMIN_TOKEN_FILE) || exit 1; \
		export REVIEWRANK_ADMIN_TOKEN_FILE=$(ADMIN_TOKEN_FILE); \
	fi; \
	exec $(VENV)/bin/reviewrank serve --address $(ADDRESS) --metrics-address $(METRICS_ADDRESS)

## A scratch copy of the demo database served on $(BENCH_ADDRESS), where the ghz configs in
## bench/ghz/ point: their writes never reach the demo's database.
BENCH_ADDRESS ?= 127.0.0.1:50052
bench-server: demo-data
	exec $(VENV)/bin/reviewrank serve --scratch --address $(BENCH_ADDRESS)

## Start the demo afresh (stop `make serve` first): the next `make serve` imports it again.
reset-demo:
	rm -f data/reviewrank.db data/reviewrank.db-wal data/reviewrank.db-shm data/reviewrank.db.catalogue.npz

## The Node.js example client's packages (clients/node), which make test runs it with.
NODE_STAMP := clients/node/node_modules/.installed-stamp
$(NODE_STAMP): clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --ignore-scripts
	touch $(NODE_STAMP)

node-client: $(NODE_STAMP)

## The PostgreSQL server binaries the tests' throwaway clusters need (installed if missing).
postgres:
	.ci/install-postgres

# The suite on TEST_WORKERS processes, each test module on one of them (its servers and
# fixtures made once); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: install postgres node-client
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

## Long reliability runs (make test runs the same tests briefly): SIGKILL crash rounds,
## fuzzed requests, vote state-machine examples, and each attack of the abuse suite for
## ABUSE_SECONDS. Override e.g. make soak CRASH_ROUNDS=1000 ABUSE_SECONDS=120
CRASH_ROUNDS ?= 200
FUZZ_RUNS ?= 100000
STATEFUL_EXAMPLES ?= 300
ABUSE_SECONDS ?= 30
soak: install
	CRASH_ROUNDS=$(CRASH_ROUNDS) FUZZ_RUNS=$(FUZZ_RUNS) STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) \
		ABUSE_SECONDS=$(ABUSE_SECONDS) $(PY) -m pytest -s --timeout=0 tests/storage/test_crash.py \
		tests/api/test_fuzz.py tests/domain/test_vote_machine.py tests/tools/test_abuse_suite.py

## The benchmark suite (several minutes): writes bench/results/results.{md,json}.
## BENCH_ARGS e.g. "--duration 10 --synthetic 100000,1000000 --workdir /tmp/reviewrank-bench"
BENCH_ARGS ?= --workdir .bench-data
bench: install
	$(PY) -m reviewrank.service.tools.benchsuite $(BENCH_ARGS)

## Normal Rank's p50/p99 alone, then with each attack of service/tools/abuse.py alongside (about
## two minutes): writes bench/results/abuse.{md,json}. Exits 1 if any server did not answer
## afterwards or needed SIGKILL. BENCH_ABUSE_ARGS e.g. "--duration 10 --only flood,oversized"
BENCH_ABUSE_ARGS ?= --workdir .bench-data
bench-abuse: install
	$(PY) -m reviewrank.service.tools.abuse_bench $(BENCH_ABUSE_ARGS)

## Rank of 100 and Top of a category at half their maximum rate on a million synthetic
## products, alone and with 50 and 500 ratings a second alongside (about two minutes):
## writes bench/results/writes.{md,json}. BENCH_WRITES_ARGS e.g. "--synthetic 100000,1000000"
## or, to measure another checkout alike, "--python ../old/.venv/bin/python --rank-rps 900".
BENCH_WRITES_ARGS ?= --workdir .bench-data
bench-writes: install
	$(PY) -m reviewrank.service.tools.writes_bench $(BENCH_WRITES_ARGS)

## How long a write takes to show in every worker's reads under serve --workers 2, quiet
## and beside Rank load (about half a minute): writes bench/results/visibility.{md,json}.
BENCH_VISIBILITY_ARGS ?= --workdir .bench-data
bench-visibility: install
	$(PY) -m reviewrank.service.tools.visibility_bench $(BENCH_VISIBILITY_ARGS)

## How long a poll vote takes to move the poll strengths, votes trickling in over
## 100,000 in force, on 3,000 polls and on products of each vote's own (under a
## minute): writes bench/results/polls.{md,json}. BENCH_POLLS_ARGS e.g. "--votes 334000".
BENCH_POLLS_ARGS ?=
bench-polls: install
	$(PY) -m reviewrank.service.tools.polls_bench $(BENCH_POLLS_ARGS)

## The attack benchmark (issue 23, offline): the demo reviews given a made-up
## honest history, shilling and brigading injected, each target's rank in its category
## with and without the defences of ranking/integrity.py (about 70 s): writes
## docs/evaluation-integrity.md. BENCH_INTEGRITY_ARGS e.g. "--seed 1" or "--json F".
BENCH_INTEGRITY_ARGS ?=
bench-integrity: install
	$(VENV)/bin/reviewrank evaluate --integrity --table docs/evaluation-integrity.md \
		$(BENCH_INTEGRITY_ARGS)

## Paired A/B of this tree against the git revision AB_OLD (default HEAD~1), checked
## out with its own environment in .bench-data/ab-old: Rank 100 and 1,000, SubmitBatch
## 1,000, SubmitRating at concurrency 50, both versions served at once on one CPU.
## AB_ARGS e.g. "--rounds 8 --seconds 4".
AB_OLD ?= HEAD~1
bench-ab: install
	rm -rf .bench-data/ab-old && git worktree prune
	git worktree add --detach .bench-data/ab-old $(AB_OLD)
	$(MAKE) -C .bench-data/ab-old install
	$(PY) -m reviewrank.service.tools.paired_ab .bench-data/ab-old $(AB_ARGS)

## Ingest and Rank on PostgreSQL beside SQLite (a throwaway local cluster, or
## BENCH_PG_ARGS="--database-url postgresql://..." for an empty database of yours):
## writes bench/results/backends.{md,json}.
BENCH_PG_ARGS ?= --workdir .bench-data
bench-postgres: install postgres
	$(PY) -m reviewrank.service.tools.bench_backends $(BENCH_PG_ARGS)

## Rewrite the ghz configs in bench/ghz/ (candidate lists from the demo catalogue).
ghz-configs: install
	$(PY) -m reviewrank.service.tools.ghz_configs

## mypy reads the packages as installed (reviewrank.service is service/) through a link tree.
lint: install
	$(VENV)/bin/ruff check service ranking tests clients/python/src
	$(VENV)/bin/ruff format --check service ranking tests clients/python/src
	mkdir -p .lint-tree/reviewrank
	ln -sfn ../../service .lint-tree/reviewrank/service
	ln -sfn ../../ranking .lint-tree/reviewrank/ranking
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix service ranking tests clients/python/src
	$(VENV)/bin/ruff format service ranking tests clients/python/src

## Regenerate clients/python/src/reviewrank/v1 and proto/reviewrank.protoset from proto/.
gen: install
	$(PY) -m reviewrank.service.tools.codegen

## Offline evaluation of ranking quality on the reviews data set, a long-tailed resample
## of it and a simulated history with time-ordered splits (writes docs/evaluation.*,
## docs/evaluation-long-tail.* and docs/evaluation-simulated.*; about 100 s), and the
## evidence for the signals beyond stars (docs/evaluation-signals.md; about 10 s).
evaluate: install
	$(VENV)/bin/reviewrank evaluate --table docs/evaluation.md --plot docs/evaluation.png
	$(VENV)/bin/reviewrank evaluate --long-tail --table docs/evaluation-long-tail.md --plot docs/evaluation-long-tail.png
	$(VENV)/bin/reviewrank evaluate --simulated --table docs/evaluation-simulated.md --plot docs/evaluation-simulated.png
	$(VENV)/bin/reviewrank evaluate --signals --table docs/evaluation-signals.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .lint-tree
