# The README's two commands: `make demo` (main job) and `make test`. Both set up a fresh machine first.
PY ?= python3

.PHONY: setup demo demo-host test arduino bench-link bench-avr test-kernels-long bench-kernels coverage

setup:
	bash tools/setup.sh

demo: setup
	$(PY) -m edgebp.cli device train diabetes --board qemu-mps2-an385 --check --layers 8,16,2 \
		--activation sigmoid --loss mse --optimizer sgd --lr 0.2 --batch-size 1 --epochs 200 --seed 1

# the same training on the host only (no emulator): fixed-point core and float mirror side by side
demo-host: setup
	$(PY) -m edgebp.cli train diabetes --layers 8,16,2 --activation sigmoid --loss mse --optimizer sgd \
		--lr 0.2 --batch-size 1 --epochs 200 --seed 1 --engine both

test: setup
	$(PY) -m pytest -q

# The Arduino library (1.5 format needs the sources in src/): library.properties, the core as one translation
# unit in src/ and the example sketch, as a folder and a zip for "Add .ZIP Library" (a release artifact; the
# repository keeps one copy of the sources).
ARDUINO_OUT ?= build/arduino
arduino:
	$(PY) examples/c/arduino/make_library.py $(ARDUINO_OUT)

# training throughput over the emulated serial link against the share of bytes dropped and flipped (docs/link.md)
bench-link: setup
	$(PY) tools/bench/link.py --seeds 3 --fixed-frames

# line and branch coverage of csrc/ by the C suite (tests/c/test_core.c): the core built file by file with
# --coverage (so each csrc/core/*.c is reported on its own), twice: with the host's architecture kernels (x86-64:
# csrc/arch/ebp_arch_x86.h) and with the portable kernels alone (-DEBP_PORTABLE=1, the reference the architecture
# kernels reproduce); the suite run once per build and gcovr's merged summary printed (docs/link.md, Coverage).
# Needs gcc and gcovr (tools/setup.sh). Output in build/coverage/.
COV_DIR ?= build/coverage
coverage:
	rm -rf $(COV_DIR) && mkdir -p $(COV_DIR)/arch $(COV_DIR)/portable
	cd $(COV_DIR)/arch && gcc -std=c99 -Wall -Wextra -Wconversion -Werror -O0 -g --coverage -I$(CURDIR)/csrc \
		$(CURDIR)/tests/c/test_core.c $(addprefix $(CURDIR)/,$(sort $(wildcard csrc/core/*.c))) -o test_core
	cd $(COV_DIR)/portable && gcc -std=c99 -Wall -Wextra -Wconversion -Werror -O0 -g --coverage -DEBP_PORTABLE=1 \
		-I$(CURDIR)/csrc $(CURDIR)/tests/c/test_core.c $(addprefix $(CURDIR)/,$(sort $(wildcard csrc/core/*.c))) \
		-o test_core
	cd $(COV_DIR)/arch && ./test_core | tail -1
	cd $(COV_DIR)/portable && ./test_core | tail -1
	gcovr --root . --filter 'csrc/' --txt $(COV_DIR)/lines.txt $(COV_DIR)/arch $(COV_DIR)/portable
	gcovr --root . --filter 'csrc/' --branches --txt $(COV_DIR)/branches.txt --print-summary \
		$(COV_DIR)/arch $(COV_DIR)/portable | tail -3
	@echo "per file: $(COV_DIR)/lines.txt and $(COV_DIR)/branches.txt"

# the per-architecture kernels against the portable ones on the emulated M3, M4 and M0: 500 random configurations
# per board and build (EBP_STATS=1 and 0) instead of CI's 12, about 3 minutes (tests/test_kernels.py)
test-kernels-long:
	EBP_KERNEL_SWEEP=500 CI=true $(PY) -m pytest -q tests/test_kernels.py

# instructions per 8-16-2 step and the phase shares on every emulated core and x86, each kernel build
bench-kernels:
	$(PY) tools/step_bench/mcu.py
	$(PY) tools/step_bench/run.py

# cycles per 8-16-2 online step on the ATmega328P in simavr: the core against genann's algorithm (issue 14)
bench-avr:
	$(PY) tools/step_bench/avr.py
