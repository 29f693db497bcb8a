# Board: QEMU microbit (nRF51822, Cortex-M0, 16 KiB RAM). Included by firmware/Makefile.
TOOLCHAIN := arm
CPU_FLAGS := -mcpu=cortex-m0 -mthumb
ARENA_BYTES := 12288
PORT_SRCS := $(PORT_DIR)/port.c $(FW)/ports/common/cortexm.c $(FW)/ports/common/main_app.c
LDSCRIPT := $(PORT_DIR)/link.ld
QEMU_MACHINE := microbit
# 16 KiB of RAM: keep the core small in stack and flash (-O2 doubles backward_deltas' frame on M0)
CORE_OPT := -Os
