/*
 * simavr_run.c - runs an AVR firmware in simavr (libsimavr) with its UART0 on a TCP socket or on stdio, the
 * way QEMU serves the Cortex-M boards' serial ports. A host program (built with the host's cc), not firmware.
 *
 *   simavr-run [options] firmware.elf
 *     --mcu NAME          atmega328p (default; the ELF's .mmcu section, if any, wins)
 *     --freq HZ           16000000 (default; the ELF's .mmcu section, if any, wins)
 *     --flash-kib N       give the chip N KiB of flash instead of its own (a firmware larger than the part: the
 *                         rest of the chip, RAM included, stays as it is)
 *     --port N            serve the UART on 127.0.0.1:N (0: any free port); prints "listening on 127.0.0.1:P"
 *     -serial tcp:127.0.0.1:N,server=on,wait=on[,...]   the same, in QEMU's spelling (edgebp.boards uses it)
 *     --stdio             UART output to stdout, stdin to the UART (the default without --port)
 *     --eeprom FILE       load the EEPROM from FILE at start (if it exists), save it back at exit
 *     --max-cycles N      stop after N simulated cycles (exit status 3)
 *     --cycles            print "cycles N" on stderr at exit
 * The simulation starts when the first client connects (nothing the firmware prints at boot is lost) and keeps
 * running while clients come and go; without a client, UART output is dropped. It ends when the firmware
 * sleeps with interrupts off (exit status 0), crashes (2), or at --max-cycles (3), or by a signal.
 *
 * Input flow control: simavr's UART holds a small FIFO and says when it is full (UART_IRQ_OUT_XOFF) and when it
 * has room again (UART_IRQ_OUT_XON); bytes from the host wait in a queue here until it has room, so none is
 * lost whatever the host sends. simavr is cycle-accurate: the UART takes as many cycles per byte as its baud
 * rate says, the timers count CPU cycles.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <simavr/avr_eeprom.h>
#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>

#define QUEUE_BYTES 65536

static struct {
    uint8_t b[QUEUE_BYTES];
    size_t head, tail; /* bytes [head, tail) wait for the UART */
} inq;

static uint8_t outbuf[65536];
static size_t out_len;

static avr_t *avr;
static avr_irq_t *uart_in;
static int xoff = 1;        /* the UART's FIFO is full (or reception is off): hold input back */
static int idle_polls;      /* the firmware polled an empty receiver since the last look */
static int listen_fd = -1, client_fd = -1, stdio_mode, uart_out_fd = 1;
static volatile sig_atomic_t stop;

static void feed(void) {
    while (!xoff && inq.head < inq.tail) avr_raise_irq(uart_in, inq.b[inq.head++]);
    if (inq.head == inq.tail) inq.head = inq.tail = 0;
}

static void on_output(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    (void)param;
    if (out_len < sizeof outbuf) outbuf[out_len++] = (uint8_t)value;
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    (void)value;
    (void)param;
    xoff = 0;
    if (inq.head == inq.tail) idle_polls++;
    feed();
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    (void)value;
    (void)param;
    xoff = 1;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void drop_client(void) {
    if (client_fd >= 0) close(client_fd);
    client_fd = -1;
    inq.head = inq.tail = 0;
}

static int accept_client(int block) {
    int fd, one = 1;
    if (!block) {
        struct pollfd p = {listen_fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0) return -1;
    }
    fd = accept(listen_fd, NULL, NULL);
    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    client_fd = fd;
    return 0;
}

/* Output to the host, input from it; waits up to wait_ms for input when the firmware is idle. */
static void pump(int wait_ms) {
    int in_fd = stdio_mode ? 0 : client_fd;
    if (out_len > 0) {
        int out_fd = stdio_mode ? uart_out_fd : client_fd;
        if (out_fd >= 0 && write_all(out_fd, outbuf, out_len) != 0 && !stdio_mode) drop_client();
        out_len = 0;
    }
    if (!stdio_mode && client_fd < 0) {
        accept_client(0);
        in_fd = client_fd;
    }
    if (in_fd >= 0 && QUEUE_BYTES - inq.tail >= 4096) {
        struct pollfd p = {in_fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) > 0) {
            ssize_t k = read(in_fd, inq.b + inq.tail, QUEUE_BYTES - inq.tail);
            if (k > 0) {
                inq.tail += (size_t)k;
                feed();
            } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (stdio_mode)
                    in_fd = -1;
                else
                    drop_client();
            }
        }
    }
}

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void eeprom_io(const char *path, int save) {
    avr_eeprom_desc_t d;
    FILE *f;
    static uint8_t buf[4096];
    if (path == NULL) return;
    d.offset = 0;
    d.size = avr->e2end + 1u > sizeof buf ? (uint32_t)sizeof buf : avr->e2end + 1u;
    d.ee = buf;
    if (save) {
        if (avr_ioctl(avr, AVR_IOCTL_EEPROM_GET, &d) != 0) return;
        f = fopen(path, "wb");
        if (f == NULL) return;
        fwrite(d.ee, 1, d.size, f);
        fclose(f);
        return;
    }
    f = fopen(path, "rb");
    if (f == NULL) return; /* a new file: the EEPROM starts erased, as simavr makes it */
    d.size = (uint32_t)fread(buf, 1, d.size, f);
    fclose(f);
    if (d.size > 0) avr_ioctl(avr, AVR_IOCTL_EEPROM_SET, &d);
}

static int parse_serial(const char *s) { /* tcp:HOST:PORT,server=on,... -> PORT */
    const char *c = strrchr(s, ':');
    if (strncmp(s, "tcp:", 4) != 0 || c == NULL) return -1;
    return atoi(c + 1);
}

int main(int argc, char **argv) {
    const char *mcu = "atmega328p", *elf = NULL, *eeprom = NULL;
    unsigned long freq = 16000000ul;
    unsigned long long max_cycles = 0;
    int port = -1, print_cycles = 0, flash_kib = 0, i, state, rc = 0;
    unsigned long n = 0;
    elf_firmware_t fw;
    uint32_t flags = 0;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mcu") && i + 1 < argc) mcu = argv[++i];
        else if (!strcmp(argv[i], "--freq") && i + 1 < argc) freq = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--flash-kib") && i + 1 < argc) flash_kib = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-serial") && i + 1 < argc) {
            port = parse_serial(argv[++i]);
            if (port < 0) {
                fprintf(stderr, "simavr-run: only -serial tcp:HOST:PORT,... is supported\n");
                return 1;
            }
        } else if (!strcmp(argv[i], "--stdio")) port = -1;
        else if (!strcmp(argv[i], "--eeprom") && i + 1 < argc) eeprom = argv[++i];
        else if (!strcmp(argv[i], "--max-cycles") && i + 1 < argc) max_cycles = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--cycles")) print_cycles = 1;
        else if (argv[i][0] != '-' && elf == NULL) elf = argv[i];
        else {
            fprintf(stderr, "usage: simavr-run [--mcu M] [--freq HZ] [--flash-kib N] [--port N | --stdio] [--eeprom FILE] "
                            "[--max-cycles N] [--cycles] firmware.elf\n");
            return 1;
        }
    }
    if (elf == NULL) {
        fprintf(stderr, "simavr-run: no firmware given\n");
        return 1;
    }
    if (port < 0) { /* stdio: the UART owns stdout; simavr's own messages go to stderr */
        fflush(stdout);
        uart_out_fd = dup(1);
        dup2(2, 1);
    }
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "simavr-run: cannot read %s\n", elf);
        return 1;
    }
    if (fw.mmcu[0] == 0) snprintf(fw.mmcu, sizeof fw.mmcu, "%s", mcu);
    if (fw.frequency == 0) fw.frequency = (uint32_t)freq;
    avr = avr_make_mcu_by_name(fw.mmcu);
    if (avr == NULL) {
        fprintf(stderr, "simavr-run: unknown MCU %s\n", fw.mmcu);
        return 1;
    }
    if (flash_kib > 0) avr->flashend = (uint32_t)flash_kib * 1024u - 1u; /* before avr_init allocates it */
    avr_init(avr);
    avr->log = LOG_ERROR;
    avr_load_firmware(avr, &fw);
    eeprom_io(eeprom, 0);

    /* UART0: our callbacks, no console echo, no usleep while the firmware polls */
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_POLL_SLEEP | AVR_UART_FLAG_STDIO);
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_output, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (port >= 0) {
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        int one = 1;
        listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(listen_fd, 1) != 0) {
            fprintf(stderr, "simavr-run: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
            return 1;
        }
        getsockname(listen_fd, (struct sockaddr *)&a, &alen);
        printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
        fflush(stdout);
        while (!stop && accept_client(1) != 0) {
        }
    } else {
        stdio_mode = 1;
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    }

    for (;;) {
        state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            rc = state == cpu_Crashed ? 2 : 0;
            break;
        }
        if (stop) {
            rc = 4;
            break;
        }
        if (max_cycles && avr->cycle >= max_cycles) {
            rc = 3;
            break;
        }
        if (++n % 2048 == 0) {
            /* the firmware only polls its empty receiver and nothing is queued: wait for the host (the simulated
             * clock does not advance meanwhile) */
            int idle = idle_polls > 8 && inq.head == inq.tail && out_len == 0;
            idle_polls = 0;
            pump(idle ? 2 : 0);
        }
    }
    pump(0);
    if (print_cycles) fprintf(stderr, "cycles %llu\n", (unsigned long long)avr->cycle);
    eeprom_io(eeprom, 1);
    drop_client();
    return rc;
}
