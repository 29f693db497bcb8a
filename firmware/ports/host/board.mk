# Board: the host itself (native process serving TCP or stdio). Included by firmware/Makefile.
TOOLCHAIN := host
CPU_FLAGS :=
ARENA_BYTES := 1048576
PORT_SRCS := $(PORT_DIR)/port.c
