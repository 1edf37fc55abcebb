/* dirty.c - memory dirtier for the vmshift tiny test guest.
 *
 * Usage: dirty MIB [SLEEP_US]
 *
 * Allocates MIB MiB and, in continuous passes, makes one 8-byte non-zero
 * write per 4 KiB page, so every page is dirty again after each pass and
 * QEMU cannot send it as a zero page.  SLEEP_US (optional) sleeps that many
 * microseconds after every 256 pages, to throttle the rate.  Every ~5 s it
 * prints "DIRTY pass=N rate=XMiB/s" on stdout (the serial console).
 *
 * Before each write it reads the word back: it must hold what the previous
 * pass wrote there.  A page a migration lost (left stale or zero on the
 * destination) prints "MEMCHECK bad page=N got=X want=Y" (the first 8 of
 * them per pass, then a count), so a test sees guest memory corruption
 * directly instead of waiting for the kernel to trip over it.
 *
 * Linked statically; it runs as PID >1 inside a busybox initramfs.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dirty MIB [SLEEP_US]\n");
        return 2;
    }
    unsigned long mib = strtoul(argv[1], NULL, 10);
    unsigned long sleep_us = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    if (mib == 0 || mib > 65536) {
        fprintf(stderr, "dirty: bad size '%s'\n", argv[1]);
        return 2;
    }
    size_t len = mib << 20;
    unsigned char *volatile_guard = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (volatile_guard == MAP_FAILED) {
        perror("dirty: mmap");
        return 1;
    }
    /* volatile: the stores are never read back here, keep them anyway */
    volatile uint64_t *buf = (volatile uint64_t *)(void *)volatile_guard;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("DIRTY start mib=%lu sleep_us=%lu\n", mib, sleep_us);

    uint64_t pass = 0, pages_since = 0;
    double last = now_s();
    for (;;) {
        pass++;
        unsigned long bad = 0;
        for (size_t off = 0, n = 0; off < len; off += PAGE, n++) {
            /* non-zero, changes every pass */
            uint64_t v = (pass << 32) | (uint64_t)(off / PAGE) | 1u;
            if (pass > 1) {
                uint64_t want = ((pass - 1) << 32) | (uint64_t)(off / PAGE) | 1u;
                uint64_t got = buf[off / sizeof *buf];
                if (got != want && bad++ < 8)
                    printf("MEMCHECK bad page=%zu got=%#llx want=%#llx\n", n,
                           (unsigned long long)got, (unsigned long long)want);
            }
            buf[off / sizeof *buf] = v;
            if (sleep_us && (n & 255) == 255)
                usleep((useconds_t)sleep_us);
        }
        if (bad)
            printf("MEMCHECK bad pass=%llu pages=%lu\n", (unsigned long long)pass, bad);
        pages_since += len / PAGE;
        double t = now_s();
        if (pass == 1) {
            printf("DIRTY pass=1\n");
        } else if (t - last >= 5.0) {
            double rate = (double)pages_since * PAGE / (1 << 20) / (t - last);
            printf("DIRTY pass=%llu rate=%.0fMiB/s\n", (unsigned long long)pass, rate);
            pages_since = 0;
            last = t;
        }
    }
}
