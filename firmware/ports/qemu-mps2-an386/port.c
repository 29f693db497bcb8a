/*
 * Port for QEMU's mps2-an386 (Cortex-M4F, 25 MHz): the same FPGA image as the an385 with a Cortex-M4, so the
 * same CMSDK UART0, TIMER0 and RETAIN-region checkpoint store. This file reuses the an385 port's code and
 * only names the board (HELLO reports it). Instructions = TIMER0 ticks * 5 / 8 under -icount shift=6, as there.
 */
#define ebp_port_info ebp_port_info_an385 /* the an385's name record, replaced below (dropped by --gc-sections) */
#include "../qemu-mps2-an385/port.c"
#undef ebp_port_info

extern const ebp_port_info_t ebp_port_info;
const ebp_port_info_t ebp_port_info = {"qemu-mps2-an386", "gcc " __VERSION__ " " EBP_BUILD_DESC, 5, 8,
                                       EBP_TICK_INSTRUCTIONS};
