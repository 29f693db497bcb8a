/*
 * cortexm.c - startup shared by the Cortex-M ports: vector table, .data/.bss set-up, a fault handler that
 * resets the MCU (a device that faults comes back instead of hanging), the boot counter. main() is the
 * protocol's byte loop (main_app.c) or a program of its own (examples/standalone).
 * The linker script provides _sidata, _sdata, _edata, _sbss, _ebss and _estack.
 */
#include <stdint.h>

#include "../../app/port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
/* RAM that no loaded section covers (the RETAIN region of the port's link.ld): the startup code and QEMU's
 * loader leave it alone at a system reset. Its first two words count boots. */
extern uint32_t _sretain[];

int main(void);
void ebp_reset_handler(void);
void ebp_fault_handler(void);

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)

void ebp_port_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}

void ebp_fault_handler(void) { ebp_port_reset(); }

#define EBP_BOOT_MAGIC 0xB0075EEDu

uint32_t ebp_port_boot_count(void) { return _sretain[1]; }

static void count_boot(void)
{
    volatile uint32_t *r = _sretain;
    if (r[0] != EBP_BOOT_MAGIC) { /* power-up (or never counted): start over */
        r[0] = EBP_BOOT_MAGIC;
        r[1] = 0;
    }
    r[1] = r[1] + 1u;
}

/* Painted stack: at reset every word between the end of .bss and the stack pointer gets EBP_STACK_PAINT; the
 * high-water mark is how far down from the top of RAM the paint has been overwritten since. */
#define EBP_STACK_PAINT 0xA5C3E1F7u

uint32_t ebp_port_stack_high_water(void)
{
    const uint32_t *p = &_ebss;
    while (p < &_estack && *p == EBP_STACK_PAINT)
        p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

void ebp_reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata, *sp;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++)
        *dst = 0;
    count_boot();
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &_ebss; dst < sp - 8; dst++) /* 32 bytes below this frame stay unpainted */
        *dst = EBP_STACK_PAINT;
    (void)main();
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack,
    ebp_reset_handler,
    ebp_fault_handler, /* NMI */
    ebp_fault_handler, /* HardFault */
    ebp_fault_handler, /* MemManage */
    ebp_fault_handler, /* BusFault */
    ebp_fault_handler, /* UsageFault */
    0, 0, 0, 0,
    ebp_fault_handler, /* SVC */
    ebp_fault_handler, /* DebugMon */
    0,
    ebp_fault_handler, /* PendSV */
    ebp_fault_handler, /* SysTick */
};
