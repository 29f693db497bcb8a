/*
 * simavr-atmega328p port: an ATmega328P at 16 MHz (an Arduino Uno's chip: 2 KiB of RAM, 32 KiB of flash, 1 KiB
 * of EEPROM, an 8-bit AVR whose int has 16 bits), run in simavr by simavr_run.c, or flashed onto a real Uno
 * (avrdude -p m328p -c arduino -P /dev/ttyACM0 -U flash:w:edgebp.hex).
 *
 * UART0 polled at EBP_BAUD (default 115200, U2X: 117647 baud, 2.1% off like the Arduino core's), 8N1.
 * Counter: Timer1 at the CPU clock (no prescaler) with an overflow interrupt extending it to 32 bits, so a tick
 * is one CPU cycle (62.5 ns at 16 MHz; HELLO reports nanoseconds = ticks * 125 / 2). simavr is cycle-accurate.
 * Checkpoint storage: the EEPROM, 1 KiB as two 512-byte slots (an 8-16-2 model's checkpoint takes about 430).
 * Boot counter: in .noinit (the C start-up code leaves it alone; a watchdog reset keeps RAM).
 * Stack: painted at start-up from the end of .noinit to the stack pointer; HELLO reports its high-water mark.
 */
#include <avr/eeprom.h>
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <stdint.h>

#include "../../app/port.h"
#include "../../app/protocol.h"

#ifndef F_CPU
#define F_CPU 16000000UL
#endif
#ifndef EBP_BAUD
#define EBP_BAUD 115200UL
#endif

/* simavr reads the MCU and its clock from this section of the ELF (simavr/sim/avr/avr_mcu_section.h) */
#define SIMAVR_TAG_NAME 1
#define SIMAVR_TAG_FREQUENCY 2
__attribute__((section(".mmcu"), used)) const uint8_t ebp_simavr_mmcu[] = {
    SIMAVR_TAG_FREQUENCY, 4, (uint8_t)(F_CPU & 0xFFu), (uint8_t)((F_CPU >> 8) & 0xFFu),
    (uint8_t)((F_CPU >> 16) & 0xFFu), (uint8_t)(F_CPU >> 24),
    SIMAVR_TAG_NAME, 11, 'a', 't', 'm', 'e', 'g', 'a', '3', '2', '8', 'p', 0,
    0, 0};

/* a tick is a CPU cycle: nanoseconds = ticks * 10^9 / F_CPU (125 / 2 at 16 MHz; whole MHz otherwise) */
#if F_CPU == 16000000UL
#define TICK_NUM 125u
#define TICK_DEN 2u
#else
#define TICK_NUM 1000u
#define TICK_DEN ((uint32_t)(F_CPU / 1000000UL))
#endif
const ebp_port_info_t ebp_port_info = {"simavr-atmega328p", "gcc " __VERSION__ " " EBP_BUILD_DESC, TICK_NUM, TICK_DEN,
                                       EBP_TICK_NANOSECONDS};

/* ---- boot counter and watchdog ------------------------------------------------------------------------------ */
#define EBP_BOOT_MAGIC 0xB0075EEDu
static uint32_t boot_magic __attribute__((section(".noinit")));
static uint32_t boots __attribute__((section(".noinit")));

/* the watchdog stays on after a watchdog reset: switch it off first thing (before .data and .bss) */
__attribute__((naked, used, section(".init3"))) static void early_init(void)
{
    MCUSR = 0;
    wdt_disable();
}

uint32_t ebp_port_boot_count(void) { return boots; }

void ebp_port_reset(void)
{
    cli();
    wdt_enable(WDTO_15MS);
    for (;;) {
    }
}

/* ---- painted stack ------------------------------------------------------------------------------------------ */
#define EBP_STACK_PAINT 0xC5u
extern uint8_t __heap_start; /* the end of .bss and .noinit */

__attribute__((naked, used, section(".init8"))) static void paint_stack(void)
{
    uint8_t *p = &__heap_start;
    while (p < (uint8_t *)SP - 16) /* the bytes just below the current frame stay unpainted */
        *p++ = EBP_STACK_PAINT;
    /* .init8 falls through into .init9, which calls main() */
}

uint32_t ebp_port_stack_high_water(void)
{
    const uint8_t *p = &__heap_start;
    while (p <= (const uint8_t *)RAMEND && *p == EBP_STACK_PAINT)
        p++;
    return (uint32_t)(RAMEND + 1u - (uintptr_t)p);
}

/* ---- UART0 ---------------------------------------------------------------------------------------------------- */
#define UBRR_VALUE ((F_CPU + 4UL * EBP_BAUD) / (8UL * EBP_BAUD) - 1UL) /* U2X: f / (8 baud) - 1, rounded */

void ebp_port_putc(uint8_t c)
{
    while (!(UCSR0A & (1u << UDRE0))) {
    }
    UDR0 = c;
}

void ebp_port_flush(void) {}

uint8_t ebp_port_getc(void)
{
    while (!(UCSR0A & (1u << RXC0))) {
    }
    return UDR0;
}

/* ---- cycle counter: Timer1 + overflows ----------------------------------------------------------------------- */
static volatile uint16_t t1_overflows;

ISR(TIMER1_OVF_vect) { t1_overflows++; }

uint32_t ebp_port_ticks(void)
{
    uint16_t hi, lo;
    uint8_t sreg = SREG;
    cli();
    lo = TCNT1;
    hi = t1_overflows;
    if (TIFR1 & (1u << TOV1)) { /* an overflow not yet counted: it happened before or after the read */
        lo = TCNT1;
        hi++;
    }
    SREG = sreg;
    return ((uint32_t)hi << 16) | lo;
}

void ebp_port_init(void)
{
    if (boot_magic != EBP_BOOT_MAGIC) { /* power-up: start counting */
        boot_magic = EBP_BOOT_MAGIC;
        boots = 0;
    }
    boots++;
    UBRR0H = (uint8_t)(UBRR_VALUE >> 8);
    UBRR0L = (uint8_t)(UBRR_VALUE & 0xFFu);
    UCSR0A = (1u << U2X0);
    UCSR0C = (1u << UCSZ01) | (1u << UCSZ00); /* 8N1 */
    UCSR0B = (1u << RXEN0) | (1u << TXEN0);
    TCCR1A = 0;
    TCNT1 = 0;
    TIFR1 = (1u << TOV1);
    TIMSK1 = (1u << TOIE1);
    TCCR1B = (1u << CS10); /* clk / 1 */
    sei();
}

/* ---- checkpoint storage: the EEPROM, programmed like flash (bits only go from 1 to 0) ------------------------ */
#define NV_BYTES (E2END + 1u)
#define NV_PAGE 4u

uint32_t ebp_port_nv_size(uint32_t *page_size)
{
    *page_size = NV_PAGE;
    return NV_BYTES;
}

int ebp_port_nv_erase(uint32_t offset)
{
    uint8_t i;
    if (offset % NV_PAGE != 0 || offset >= NV_BYTES)
        return -1;
    for (i = 0; i < NV_PAGE; i++)
        eeprom_update_byte((uint8_t *)(uintptr_t)(offset + i), 0xFFu);
    return 0;
}

int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n)
{
    uint32_t i;
    if (offset % 4u != 0 || n % 4u != 0 || offset > NV_BYTES || n > NV_BYTES - offset)
        return -1;
    for (i = 0; i < n; i++) {
        uint8_t *a = (uint8_t *)(uintptr_t)(offset + i);
        eeprom_update_byte(a, (uint8_t)(eeprom_read_byte(a) & src[i]));
    }
    return 0;
}

int ebp_port_nv_read(uint32_t offset, uint8_t *dst, uint32_t n)
{
    if (offset > NV_BYTES || n > NV_BYTES - offset)
        return -1;
    eeprom_read_block(dst, (const void *)(uintptr_t)offset, (size_t)n);
    return 0;
}

/* ---- main: the protocol's byte loop ---------------------------------------------------------------------------- */
int main(void)
{
    ebp_port_init();
    ebp_app_init();
    for (;;)
        ebp_app_byte(ebp_port_getc());
}
