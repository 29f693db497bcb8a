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

/* Checkpoint storage (app/ckpt.c). A real board gives a few pages of its internal flash that the firmware
 * image does not use (reserve them in link.ld as a NVSTORE region, as ports/qemu-microbit does), an external
 * SPI flash or EEPROM, or FRAM:
 *   ebp_port_nv_size:  bytes and erase-page size (STM32F4: sectors of 16-128 KiB; nRF52: 4 KiB pages; RP2040:
 *                      4 KiB sectors of the QSPI flash, written from RAM-resident code)
 *   ebp_port_nv_erase: unlock the flash controller, erase the page at NVSTORE + offset, wait, lock
 *   ebp_port_nv_write: program words (or half-words) at NVSTORE + offset, waiting for each; never erase here
 *   ebp_port_nv_read:  memory-mapped flash: a plain copy
 * Two slots of half the storage each are written alternately, so a reset or power loss mid-save keeps the
 * previous checkpoint. Returning 0 from ebp_port_nv_size disables checkpoints (the protocol reports
 * EBP_PERR_NV). */
uint32_t ebp_port_nv_size(uint32_t *page_size)
{
    *page_size = 4u; /* TODO */
    return 0;        /* TODO: no storage until the board's flash is wired up */
}

int ebp_port_nv_erase(uint32_t offset)
{
    (void)offset; /* TODO */
    return -1;
}

int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n)
{
    (void)offset; /* TODO */
    (void)src;
    (void)n;
    return -1;
}

int ebp_port_nv_read(uint32_t offset, uint8_t *dst, uint32_t n)
{
    (void)offset; /* TODO */
    (void)dst;
    (void)n;
    return -1;
}

uint32_t ebp_port_ticks(void)
{
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    return DWT_CYCCNT;
#else
    return 0; /* TODO: a free-running 32-bit timer */
#endif
}
