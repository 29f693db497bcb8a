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

/* ---- checkpoint storage: the NVSTORE region of link.ld (the last 32 KiB of flash), through the NVMC ---------
 * QEMU emulates the nRF51 NVMC (CONFIG, ERASEPAGE, READY) and keeps flash contents across a system reset;
 * the ELF image, which QEMU's loader restores at a reset, does not reach these pages. */
#define NVMC 0x4001E000u
#define NVMC_READY REG(NVMC + 0x400u)
#define NVMC_CONFIG REG(NVMC + 0x504u)   /* 0 read only, 1 write enable, 2 erase enable */
#define NVMC_ERASEPAGE REG(NVMC + 0x508u)
#define NV_BASE 0x00038000u
#define NV_SIZE (32u * 1024u)
#define NV_PAGE 1024u

static void nvmc_wait(void)
{
    while ((NVMC_READY & 1u) == 0u) {
    }
}

uint32_t ebp_port_nv_size(uint32_t *page_size)
{
    *page_size = NV_PAGE;
    return NV_SIZE;
}

int ebp_port_nv_erase(uint32_t offset)
{
    if (offset % NV_PAGE != 0u || offset >= NV_SIZE)
        return -1;
    NVMC_CONFIG = 2u;
    nvmc_wait();
    NVMC_ERASEPAGE = NV_BASE + offset;
    nvmc_wait();
    NVMC_CONFIG = 0u;
    nvmc_wait();
    return 0;
}

int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n)
{
    uint32_t i;
    if (offset % 4u || n % 4u || offset > NV_SIZE || n > NV_SIZE - offset)
        return -1;
    NVMC_CONFIG = 1u;
    nvmc_wait();
    for (i = 0; i < n; i += 4u) {
        uint32_t w = (uint32_t)src[i] | ((uint32_t)src[i + 1] << 8) | ((uint32_t)src[i + 2] << 16) |
                     ((uint32_t)src[i + 3] << 24);
        REG(NV_BASE + offset + i) = w;
        nvmc_wait();
    }
    NVMC_CONFIG = 0u;
    nvmc_wait();
    return 0;
}

int ebp_port_nv_read(uint32_t offset, uint8_t *dst, uint32_t n)
{
    const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)(NV_BASE + offset);
    uint32_t i;
    if (offset > NV_SIZE || n > NV_SIZE - offset)
        return -1;
    for (i = 0; i < n; i++)
        dst[i] = p[i];
    return 0;
}

uint32_t ebp_port_ticks(void)
{
    TIMER_CAPTURE0 = 1u;
    return TIMER_CC0;
}
