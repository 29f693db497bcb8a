/*
 * Port for QEMU's microbit (nRF51822, Cortex-M0, 16 MHz, 16 KiB RAM): UART at 0x40002000, TIMER0 at
 * 0x40008000 in 32-bit mode at 16 MHz. Run QEMU with -icount shift=6 (64 ns per instruction): instructions =
 * ticks (62.5 ns) * 62.5 / 64 = ticks * 125 / 128.
 */
#include <stdint.h>

#include "../../app/port.h"
#include "../../app/protocol.h"

#define REG(a) (*(volatile uint32_t *)(a))
#define UART 0x40002000u
#define UART_STARTRX REG(UART + 0x000u)
#define UART_STARTTX REG(UART + 0x008u)
#define UART_RXDRDY REG(UART + 0x108u)
#define UART_TXDRDY REG(UART + 0x11Cu)
#define UART_ENABLE REG(UART + 0x500u)
#define UART_RXD REG(UART + 0x518u)
#define UART_TXD REG(UART + 0x51Cu)
#define TIMER 0x40008000u
#define TIMER_START REG(TIMER + 0x000u)
#define TIMER_CAPTURE0 REG(TIMER + 0x040u)
#define TIMER_MODE REG(TIMER + 0x504u)
#define TIMER_BITMODE REG(TIMER + 0x508u)
#define TIMER_PRESCALER REG(TIMER + 0x510u)
#define TIMER_CC0 REG(TIMER + 0x540u)

const ebp_port_info_t ebp_port_info = {"qemu-microbit", "gcc " __VERSION__ " " EBP_BUILD_DESC, 125, 128,
                                       EBP_TICK_INSTRUCTIONS};

void ebp_port_init(void)
{
    UART_ENABLE = 4u;
    UART_RXDRDY = 0u;
    UART_TXDRDY = 0u;
    UART_STARTRX = 1u;
    UART_STARTTX = 1u;
    TIMER_MODE = 0u;      /* timer */
    TIMER_BITMODE = 3u;   /* 32 bit */
    TIMER_PRESCALER = 0u; /* 16 MHz */
    TIMER_START = 1u;
}

uint8_t ebp_port_getc(void)
{
    while (UART_RXDRDY == 0u) {
    }
    UART_RXDRDY = 0u; /* clear before reading: reading RXD sets it again while more bytes wait */
    return (uint8_t)(UART_RXD & 0xFFu);
}

void ebp_port_putc(uint8_t c)
{
    UART_TXD = c;
    while (UART_TXDRDY == 0u) {
    }
    UART_TXDRDY = 0u;
}

void ebp_port_flush(void) {}

uint32_t ebp_port_ticks(void)
{
    TIMER_CAPTURE0 = 1u;
    return TIMER_CC0;
}
