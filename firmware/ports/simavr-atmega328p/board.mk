# Board: ATmega328P at 16 MHz (Arduino Uno's chip) in simavr: 2 KiB RAM, 32 KiB flash, 1 KiB EEPROM, 16-bit int.
# Included by firmware/Makefile. The build also makes the host-side runner simavr-run (simavr_run.c, linked
# against libsimavr), which serves UART0 on a TCP port for edgebp.device.Device.
TOOLCHAIN := avr
MCU := atmega328p
F_CPU := 16000000
CPU_FLAGS := -mmcu=$(MCU) -DF_CPU=$(F_CPU)UL
# 2 KiB of RAM: the 8-16-2 online network takes 444 bytes (ebp_net_memory); the arena is that, 8-aligned
ARENA_BYTES := 448
# frames of 128-byte bodies (the smallest the application takes), two network layers at most
# (ebp_net_t holds EBP_MAX_LAYERS layer structs of 80 bytes each on AVR); no staged samples (every sample of a
# network that fits 448 bytes fits a frame), which saves flash
BOARD_DEFS := -DEBP_APP_MAX_BODY=128 -DEBP_MAX_LAYERS=2 -DEBP_APP_STAGE=0
PORT_SRCS := $(PORT_DIR)/port.c
# the core at -Os too: 32 KiB of flash (see firmware/README.md, AVR)
CORE_OPT := -Os
RUNNER_SRC := $(PORT_DIR)/simavr_run.c
# Flash: the firmware (core + protocol application) needs about 60 KB, more than the ATmega328P's 32 KiB.
# Until it is made smaller, the simulated chip gets 64 KiB of flash (the linker region here, simavr-run
# --flash-kib 64); everything else (2 KiB of RAM, EEPROM, UART, timers, cycle timing) is the 328P's.
BOARD_LDFLAGS := -Wl,--defsym=__TEXT_REGION_LENGTH__=65536
SIMAVR_FLASH_KIB := 64
