# The README's two commands: `make demo` (main job) and `make test`. Both set up a fresh machine first.
PY ?= python3

.PHONY: setup demo test

setup:
	bash tools/setup.sh

demo: setup
	$(PY) -m edgebp.cli train diabetes --layers 8,16,2 --activation sigmoid --loss mse --optimizer sgd \
		--lr 0.2 --batch-size 1 --epochs 200 --seed 1 --engine both

test: setup
	$(PY) -m pytest -q
