/* Minimal bare-metal start for the QEMU mps2-an385 (Cortex-M3) and microbit (Cortex-M0) benchmark harness
 * (tools/bench): vector table with an optional SysTick handler (the sampling profiler of bench_m.c), .data/.bss
 * set-up, memset/memcpy, and semihosting output and exit. */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);
void systick_handler(void);

void reset_handler(void) {
    uint32_t *src = &__data_load, *dst;
    for (dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    main();
    for (;;) {
    }
}

static void hang(void) {
    for (;;) {
    }
}

/* Overridden by bench_m.c when it profiles. */
__attribute__((weak)) void systick_handler(void) {}

__attribute__((section(".vectors"), used)) static const void *vectors[16] = {
    &__stack_top, (void *)reset_handler, (void *)hang, (void *)hang, (void *)hang, (void *)hang, (void *)hang,
    0, 0, 0, 0, (void *)hang, (void *)hang, 0, (void *)hang, (void *)systick_handler,
};

void *memset(void *d, int c, unsigned n) {
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned n) {
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}

/* semihosting SYS_EXIT (ADP_Stopped_ApplicationExit) */
void bench_exit(int code) {
    register uint32_t r0 __asm__("r0") = 0x18;
    register uint32_t r1 __asm__("r1") = code == 0 ? 0x20026 : 0x20024;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

/* semihosting SYS_WRITE0 */
void bench_puts(const char *s) {
    register uint32_t r0 __asm__("r0") = 0x04;
    register const char *r1 __asm__("r1") = s;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}
