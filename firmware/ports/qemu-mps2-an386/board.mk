# Board: QEMU mps2-an386 (Cortex-M4F, 25 MHz; the an385 memory map, UART and timers). Included by
# firmware/Makefile. The FPU stays off: the core has no floats, and soft-float code never touches it.
# -mcpu=cortex-m4 enables the DSP extension (__ARM_FEATURE_DSP), so the core builds its SMLAD/SSAT kernels
# (csrc/arch/).
TOOLCHAIN := arm
CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
ARENA_BYTES := 1048576
PORT_SRCS := $(PORT_DIR)/port.c $(FW)/ports/common/cortexm.c $(FW)/ports/common/main_app.c
LDSCRIPT := $(PORT_DIR)/link.ld
QEMU_MACHINE := mps2-an386
