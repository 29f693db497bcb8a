# Board: ATmega328P at 16 MHz (Arduino Uno's chip) in simavr: 2 KiB RAM, 32 KiB flash, 1 KiB EEPROM, 16-bit int.
# Included by firmware/Makefile. The build also makes the host-side runner simavr-run (simavr_run.c, linked
# against libsimavr), which serves UART0 on a TCP port for edgebp.device.Device.
TOOLCHAIN := avr
MCU := atmega328p
F_CPU := 16000000
CPU_FLAGS := -mmcu=$(MCU) -DF_CPU=$(F_CPU)UL
# 2 KiB of RAM: the 8-16-2 online network takes 444 bytes (ebp_net_memory); the arena is that, 8-aligned
ARENA_BYTES := 448
# Flash: the part's 32 KiB less a 512-byte bootloader (Optiboot, what an Uno ships with) is what the firmware may
# take; the linker's flash region is the part's 32 KiB, the build fails above FLASH_LIMIT (tests/test_board_avr.py
# checks it too), and simavr-run gives the simulated chip the same 32 KiB.
FLASH_KIB := 32
FLASH_LIMIT := 32256
# Code-size flags for this board only (firmware/README.md, AVR, has the measured effect of each; none changes
# an integer): avr-gcc's shared prologues/epilogues, linker relaxation (CALL -> RCALL), X only as a pointer
# register, no loop-invariant motion or scalar-evolution constant propagation (both grow 8-bit code here)
SIZE_FLAGS := -mcall-prologues -mrelax -mstrict-X -fno-tree-scev-cprop -fno-move-loop-invariants
# The core without what this board does without (edgebp.h, feature switches; a model that needs one is refused
# with EBP_ERR_FEATURE, which the host reports): conv1d/pooling, int8 weights, gradient memory (batches,
# momentum: the board trains EBP_FLAG_ONLINE networks, as `edgebp device train` loads the 8-16-2), fixed deltas,
# Xavier/He init, softmax, cross-entropy (traded for the weight upload, 2,156 bytes); and the dense update's
# fast rows (EBP_FAST_ROWS=0: the portable loop, same integers)
CORE_FEATURES := -DEBP_CONV=0 -DEBP_INT8=0 -DEBP_GRAD_MEMORY=0 -DEBP_FIXED_DELTA=0 -DEBP_INIT_FAN=0 -DEBP_SOFTMAX=0 \
                 -DEBP_CE=0 -DEBP_FAST_ROWS=0
# The application: frames of 128-byte bodies (the smallest the application takes), two network layers at most
# (ebp_net_t holds EBP_MAX_LAYERS layer structs of 80 bytes each on AVR); no staged samples (every sample of a
# network that fits 448 bytes fits a frame), no STATE message, no checkpoint damage test hook
# (each answered as an unknown request; see firmware/README.md, AVR)
APP_FEATURES := -DEBP_APP_MAX_BODY=128 -DEBP_MAX_LAYERS=2 -DEBP_APP_STAGE=0 -DEBP_APP_STATE=0 -DEBP_APP_CKPT_DAMAGE=0
BOARD_DEFS := $(APP_FEATURES) $(CORE_FEATURES)
PORT_SRCS := $(PORT_DIR)/port.c
# the core at -Os too: 32 KiB of flash
CORE_OPT := -Os
RUNNER_SRC := $(PORT_DIR)/simavr_run.c
BOARD_LDFLAGS := -Wl,--defsym=__TEXT_REGION_LENGTH__=32768
