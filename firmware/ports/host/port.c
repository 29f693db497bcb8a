/*
 * Host port: the same application as a native process, for fast tests and for users without an emulator.
 *   edgebp-host [--port N]   serve TCP on 127.0.0.1:N (0 = any free port); prints "listening on 127.0.0.1:P"
 *   edgebp-host --stdio      talk over stdin/stdout (e.g. behind socat or a pty)
 *   --nv FILE                keep the checkpoint storage (1 MiB, 4 KiB pages) in FILE, created erased (0xFF) if
 *                            missing; default: $EBP_HOST_NV, else process memory (it survives RESET with the
 *                            MCU bit, which re-initialises the application, but not the end of the process)
 * One client at a time; the model survives reconnections, like a board's RAM survives a closed serial port.
 * The counter is CLOCK_MONOTONIC in nanoseconds.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../app/port.h"
#include "../../app/protocol.h"

const ebp_port_info_t ebp_port_info = {"host", "cc " __VERSION__ " " EBP_BUILD_DESC, 1, 1, EBP_TICK_NANOSECONDS};

static int out_fd = -1;
static unsigned char out_buf[4096];
static size_t out_len;

void ebp_port_flush(void)
{
    size_t done = 0;
    while (done < out_len && out_fd >= 0) {
        ssize_t k = write(out_fd, out_buf + done, out_len - done);
        if (k <= 0)
            break; /* the client went away; the next accept() starts over */
        done += (size_t)k;
    }
    out_len = 0;
}

void ebp_port_putc(uint8_t c)
{
    if (out_len == sizeof out_buf)
        ebp_port_flush();
    out_buf[out_len++] = c;
}

uint32_t ebp_port_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

static uint32_t boots = 1;

/* ---- non-volatile storage: a file (or memory), programmed like flash (bits only go from 1 to 0) ---------- */
#define NV_SIZE (1024u * 1024u)
#define NV_PAGE 4096u
static unsigned char nv_mem[NV_SIZE];
static FILE *nv_file;

uint32_t ebp_port_nv_size(uint32_t *page_size)
{
    *page_size = NV_PAGE;
    return NV_SIZE;
}

static int nv_sync(uint32_t off, uint32_t n)
{
    if (nv_file == NULL)
        return 0;
    if (fseek(nv_file, (long)off, SEEK_SET) != 0 || fwrite(nv_mem + off, 1, n, nv_file) != n || fflush(nv_file) != 0)
        return -1;
    return 0;
}

int ebp_port_nv_erase(uint32_t offset)
{
    if (offset % NV_PAGE != 0 || offset >= NV_SIZE)
        return -1;
    memset(nv_mem + offset, 0xFF, NV_PAGE);
    return nv_sync(offset, NV_PAGE);
}

int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n)
{
    uint32_t i;
    if (offset % 4u || n % 4u || offset > NV_SIZE || n > NV_SIZE - offset)
        return -1;
    for (i = 0; i < n; i++)
        nv_mem[offset + i] &= src[i];
    return nv_sync(offset, n);
}

int ebp_port_nv_read(uint32_t offset, uint8_t *dst, uint32_t n)
{
    if (offset > NV_SIZE || n > NV_SIZE - offset)
        return -1;
    if (nv_file != NULL) { /* the file is the storage: another process (a test) may have changed it */
        if (fseek(nv_file, (long)offset, SEEK_SET) != 0 || fread(nv_mem + offset, 1, n, nv_file) != n)
            return -1;
    }
    memcpy(dst, nv_mem + offset, n);
    return 0;
}

static int nv_open(const char *path)
{
    memset(nv_mem, 0xFF, sizeof nv_mem);
    if (path == NULL || *path == 0)
        return 0;
    nv_file = fopen(path, "r+b");
    if (nv_file == NULL) {
        nv_file = fopen(path, "w+b");
        if (nv_file == NULL || fwrite(nv_mem, 1, NV_SIZE, nv_file) != NV_SIZE || fflush(nv_file) != 0) {
            perror(path);
            return -1;
        }
    }
    if (fseek(nv_file, 0, SEEK_SET) != 0 || fread(nv_mem, 1, NV_SIZE, nv_file) != NV_SIZE) {
        fprintf(stderr, "%s: not a %u-byte storage file\n", path, NV_SIZE);
        return -1;
    }
    return 0;
}

uint32_t ebp_port_boot_count(void) { return boots; }

void ebp_port_reset(void)
{
    boots++;
    ebp_app_init();
}

static void serve(int in_fd, int fd_out)
{
    unsigned char buf[4096];
    out_fd = fd_out;
    for (;;) {
        ssize_t k = read(in_fd, buf, sizeof buf), i;
        if (k <= 0)
            break;
        for (i = 0; i < k; i++)
            ebp_app_byte(buf[i]);
    }
    out_fd = -1;
}

int main(int argc, char **argv)
{
    int port = 0, stdio_mode = 0, i, srv, one = 1;
    const char *nv = getenv("EBP_HOST_NV");
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    signal(SIGPIPE, SIG_IGN);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stdio") == 0)
            stdio_mode = 1;
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--nv") == 0 && i + 1 < argc)
            nv = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--port N | --stdio] [--nv FILE]\n", argv[0]);
            return 2;
        }
    }
    if (nv_open(nv) != 0)
        return 1;
    ebp_app_init();
    if (stdio_mode) {
        serve(0, 1);
        return 0;
    }
    srv = socket(AF_INET, SOCK_STREAM, 0);
    if (srv < 0) {
        perror("socket");
        return 1;
    }
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(srv, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv, 1) != 0 ||
        getsockname(srv, (struct sockaddr *)&a, &alen) != 0) {
        perror("bind");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept(srv, NULL, NULL);
        if (c < 0)
            continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        serve(c, c);
        close(c);
    }
}
