/*
 * Template port for a real Cortex-M board. Copy this folder to ports/<your-board>/, then fill in the four
 * TODOs: UART set-up, getc, putc, and a counter. See firmware/README.md.
 */
#include <stdint.h>

#include "../../app/port.h"
#include "../../app/protocol.h"

#define REG(a) (*(volatile uint32_t *)(a))
/* The DWT cycle counter exists on Cortex-M3/M4/M7 (not on M0/M0+, not in QEMU). */
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

/* tick_unit: cycles are reported as "instructions" only in QEMU; on silicon DWT counts cycles. Use
 * EBP_TICK_NANOSECONDS with tick_num/tick_den = 1e9/f_cpu if you prefer time. */
const ebp_port_info_t ebp_port_info = {"generic-cortex-m", "gcc " __VERSION__ " " EBP_BUILD_DESC, 1, 1, EBP_TICK_NONE};

void ebp_port_init(void)
{
    /* TODO: clocks, GPIO alternate functions for TX/RX, UART at 115200 8N1. */
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u;
#endif
}

uint8_t ebp_port_getc(void)
{
    /* TODO: wait until the UART has a byte, return it. */
    return 0;
}

void ebp_port_putc(uint8_t c)
{
    /* TODO: wait until the UART can take a byte, write c. */
    (void)c;
}

void ebp_port_flush(void) {}

uint32_t ebp_port_ticks(void)
{
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    return DWT_CYCCNT;
#else
    return 0; /* TODO: a free-running 32-bit timer */
#endif
}
