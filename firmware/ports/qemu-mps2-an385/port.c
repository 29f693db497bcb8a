/*
 * Port for QEMU's mps2-an385 (Cortex-M3, 25 MHz). UART0, TIMER0 and the checkpoint store are the MPS2 images'
 * (ports/common/mps2.c, shared with qemu-mps2-an386); this file names the board for HELLO.
 */
#include "../common/mps2.c"

const ebp_port_info_t ebp_port_info = {"qemu-mps2-an385", "gcc " __VERSION__ " " EBP_BUILD_DESC, MPS2_TICK_NUM,
                                       MPS2_TICK_DEN, EBP_TICK_INSTRUCTIONS};
