# Board: QEMU mps2-an385 (Cortex-M3). Included by firmware/Makefile.
TOOLCHAIN := arm
CPU_FLAGS := -mcpu=cortex-m3 -mthumb
ARENA_BYTES := 1048576
PORT_SRCS := $(PORT_DIR)/port.c $(FW)/ports/common/cortexm.c $(FW)/ports/common/main_app.c
LDSCRIPT := $(PORT_DIR)/link.ld
QEMU_MACHINE := mps2-an385
