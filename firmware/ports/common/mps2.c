/*
 * mps2.c - the port code shared by QEMU's MPS2 FPGA images (qemu-mps2-an385: Cortex-M3, qemu-mps2-an386: the
 * same image with a Cortex-M4), 25 MHz: CMSDK UART0 at 0x40004000, CMSDK TIMER0 at 0x40000000 as a free-running
 * counter, and the checkpoint store in the RETAIN region of mps2.ld. Run QEMU with -icount shift=6: each
 * instruction then takes 64 ns of virtual time, so instructions = timer ticks (40 ns) * 40 / 64 = ticks * 5 / 8
 * (MPS2_TICK_NUM / MPS2_TICK_DEN).
 *
 * Each board's port.c includes this file and defines only ebp_port_info (the name HELLO reports): port.c is the
 * one translation unit every build of a board compiles (firmware/Makefile, examples/standalone/Makefile), so the
 * shared code comes with it and is not listed again as a source.
 */
#include <stdint.h>

#include "../../app/port.h"
#include "../../app/protocol.h"

#define MPS2_TICK_NUM 5
#define MPS2_TICK_DEN 8

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00u)
#define UART_STATE REG(UART0 + 0x04u)  /* bit 0: TX full, bit 1: RX full */
#define UART_CTRL REG(UART0 + 0x08u)
#define UART_BAUDDIV REG(UART0 + 0x10u)
#define TIMER0 0x40000000u
#define TIMER_CTRL REG(TIMER0 + 0x00u)
#define TIMER_VALUE REG(TIMER0 + 0x04u)
#define TIMER_RELOAD REG(TIMER0 + 0x08u)

void ebp_port_init(void)
{
    UART_BAUDDIV = 16u;
    UART_CTRL = 3u; /* TX and RX enable */
    TIMER_CTRL = 0u;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u;
}

uint8_t ebp_port_getc(void)
{
    while ((UART_STATE & 2u) == 0u) {
    }
    return (uint8_t)(UART_DATA & 0xFFu);
}

void ebp_port_putc(uint8_t c)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = c;
}

void ebp_port_flush(void) {}

/* ---- checkpoint storage: RAM past the boot counter in the RETAIN region of mps2.ld ----------------------
 * QEMU keeps RAM that no ELF section covers across a system reset, so this emulates non-volatile storage
 * across resets (RESET with the MCU bit, a fault), NOT across power loss or a restarted emulator. It is
 * programmed like flash (erase to 0xFF, bits only go from 1 to 0) so the checkpoint code is exercised as on
 * a real part. */
#define NV_BASE 0x203C0000u            /* RETAIN starts at 0x203BE000: 8 KiB for the boot counter */
#define NV_SIZE (256u * 1024u)
#define NV_PAGE 4096u

uint32_t ebp_port_nv_size(uint32_t *page_size)
{
    *page_size = NV_PAGE;
    return NV_SIZE;
}

int ebp_port_nv_erase(uint32_t offset)
{
    volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)(NV_BASE + offset);
    uint32_t i;
    if (offset % NV_PAGE != 0u || offset >= NV_SIZE)
        return -1;
    for (i = 0; i < NV_PAGE / 4u; i++)
        p[i] = 0xFFFFFFFFu;
    return 0;
}

int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)(NV_BASE + offset);
    uint32_t i;
    if (offset % 4u || n % 4u || offset > NV_SIZE || n > NV_SIZE - offset)
        return -1;
    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(p[i] & src[i]);
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

uint32_t ebp_port_ticks(void) { return ~TIMER_VALUE; } /* the timer counts down */
