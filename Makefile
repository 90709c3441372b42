# layerlab: `make run` sets up and runs the main job; `make test` sets up and runs every test.
.PHONY: setup run test test-fast bench clean

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/layerlab summary mnist-conv --dataset fashion-mnist

test: setup
	.venv/bin/python -m pytest -q

test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow"

clean:
	rm -rf .venv .pytest_cache .hypothesis
