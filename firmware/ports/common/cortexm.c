/*
 * cortexm.c - startup and main loop shared by the Cortex-M ports: vector table, .data/.bss set-up, a fault
 * handler that resets the MCU (a device that faults comes back instead of hanging), and the byte loop.
 * The linker script provides _sidata, _sdata, _edata, _sbss, _ebss and _estack.
 */
#include <stdint.h>

#include "../../app/port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

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

void ebp_reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++)
        *dst = 0;
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

int main(void)
{
    ebp_port_init();
    ebp_app_init();
    for (;;)
        ebp_app_byte(ebp_port_getc());
}
