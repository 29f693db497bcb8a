# Board template: a generic Cortex-M3 with 32 KiB RAM. Copy the folder and edit CPU_FLAGS, ARENA_BYTES, link.ld.
TOOLCHAIN := arm
CPU_FLAGS := -mcpu=cortex-m3 -mthumb
ARENA_BYTES := 24576
PORT_SRCS := $(PORT_DIR)/port.c $(FW)/ports/common/cortexm.c $(FW)/ports/common/main_app.c
LDSCRIPT := $(PORT_DIR)/link.ld
