/*
 * Port for QEMU's mps2-an386 (Cortex-M4F, 25 MHz): the an385's FPGA image with a Cortex-M4, so the same UART0,
 * TIMER0 and checkpoint store (ports/common/mps2.c, shared with qemu-mps2-an385); this file names the board
 * for HELLO.
 */
#include "../common/mps2.c"

const ebp_port_info_t ebp_port_info = {"qemu-mps2-an386", "gcc " __VERSION__ " " EBP_BUILD_DESC, MPS2_TICK_NUM,
                                       MPS2_TICK_DEN, EBP_TICK_INSTRUCTIONS};
