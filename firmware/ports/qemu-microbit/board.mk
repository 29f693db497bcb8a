# Board: QEMU microbit (nRF51822, Cortex-M0, 16 KiB RAM). Included by firmware/Makefile.
TOOLCHAIN := arm
CPU_FLAGS := -mcpu=cortex-m0 -mthumb
ARENA_BYTES := 11776
PORT_SRCS := $(PORT_DIR)/port.c $(FW)/ports/common/cortexm.c $(FW)/ports/common/main_app.c
LDSCRIPT := $(PORT_DIR)/link.ld
QEMU_MACHINE := microbit
# 16 KiB of RAM: arena 11.5 KiB, the rest holds the frame buffers, the ebp_net_t and at least 1 KiB of stack;
# keep the core small in stack and flash (-O2 doubles backward_deltas' frame on M0)
CORE_OPT := -Os
