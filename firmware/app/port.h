/*
 * port.h - what a board must provide to run the edgebp application (one folder per board in ../ports/).
 *
 * The application is single-threaded and polls: the port's main() calls ebp_app_init() once, then feeds
 * every received byte to ebp_app_byte(), which answers complete frames through ebp_port_putc().
 */
#ifndef EBP_PORT_H
#define EBP_PORT_H

#include <stdint.h>

#ifndef EBP_BUILD_DESC /* the Makefile passes the real flags */
#define EBP_BUILD_DESC "(flags unknown)"
#endif

/** Static description of the board, reported by HELLO. */
typedef struct {
    const char *board;     /**< e.g. "qemu-mps2-an385" */
    const char *build;     /**< compiler and flags: "gcc " __VERSION__ " " EBP_BUILD_DESC (set by the Makefile) */
    uint32_t tick_num;     /**< counter ticks -> unit: value = ticks * tick_num / tick_den */
    uint32_t tick_den;
    uint8_t tick_unit;     /**< EBP_TICK_* */
} ebp_port_info_t;

extern const ebp_port_info_t ebp_port_info;

/** Sends one byte (blocking). */
void ebp_port_putc(uint8_t c);
/** Called after the last byte of a response: ports that buffer output send it now. */
void ebp_port_flush(void);
/** A free-running up-counter (wraps modulo 2^32); see tick_num/tick_den for its unit. */
uint32_t ebp_port_ticks(void);
/** Resets the board (MCU: system reset); called after the RESET response is flushed. */
void ebp_port_reset(void);
/** Boots since power-up, 1 on the first: counted in memory that survives a system reset (Cortex-M ports: a
 *  word in the RETAIN region of link.ld; host port: RESETs of the process). Reported by HELLO. */
uint32_t ebp_port_boot_count(void);

/* Non-volatile storage for checkpoints (app/ckpt.c). Offsets are bytes from the start of the storage. */
/** Bytes of storage (0: the board has none; checkpoints are then refused) and its erase unit in *page_size
 *  (a multiple of 4). */
uint32_t ebp_port_nv_size(uint32_t *page_size);
/** Erases the page that starts at offset: every byte then reads 0xFF. 0 on success, -1 on failure. */
int ebp_port_nv_erase(uint32_t offset);
/** Programs n bytes at offset (both multiples of 4) into erased storage, like flash: bits only go from 1 to
 *  0. 0 on success, -1 on failure (the caller reads back and checks a CRC anyway). */
int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n);
/** Reads n bytes at offset. 0 on success, -1 on failure. */
int ebp_port_nv_read(uint32_t offset, uint8_t *dst, uint32_t n);

/* MCU ports built on ports/common/cortexm.c (startup + main loop) also provide these two. */
/** Sets up clocks, the UART and the counter. */
void ebp_port_init(void);
/** Waits for and returns one received byte. */
uint8_t ebp_port_getc(void);

/* Provided by the application (app.c). */
void ebp_app_init(void);
void ebp_app_byte(uint8_t c);

#endif /* EBP_PORT_H */
