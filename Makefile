# layerlab: `make run` sets up and runs the main job; `make test` sets up and runs every test.
.PHONY: setup run test test-fast bench clean study-tables

setup:
	@bash scripts/setup.sh

# The main job: the Model Builder's convolutional preset, one epoch of Fashion-MNIST, into the
# default SQLite store; prints test accuracy and throughput.
run: setup
	.venv/bin/layerlab summary mnist-conv --dataset fashion-mnist
	.venv/bin/layerlab train mnist-conv --dataset fashion-mnist --epochs 1

# The store tests also run against a real PostgreSQL when scripts/postgres.sh can start one
# (root on Debian); without it those tests are skipped with the reason.
test: setup
	@pg_env=$$(bash scripts/postgres.sh --export 2>/tmp/layerlab-postgres.log) || { echo "PostgreSQL unavailable, its tests will skip (see /tmp/layerlab-postgres.log)"; pg_env=""; }; \
	eval "$$pg_env"; .venv/bin/python -m pytest -q

# The fast tier for the edit-test loop (under a minute here): no slow studies, no Ray, no browser.
test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow and not browser"

# Every study at full size (long: the classifiers and the autoencoder train for minutes), its tables
# written into docs/studies.md between the marker comments; `make study-tables ONLY=init` runs one.
study-tables: setup
	.venv/bin/python scripts/study_tables.py $(foreach n,$(ONLY),--only $(n))

clean:
	rm -rf .venv .pytest_cache .hypothesis
