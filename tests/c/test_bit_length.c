/*
 * bit_length, the block exponent's helper, in both of its implementations (count leading zeros, and the
 * portable binary search built with -DEBP_NO_CLZ): it includes the core to reach the static function and
 * checks it against a plain loop on every power of two, its neighbours and random values.
 */
#include <stdio.h>

#include "../../csrc/edgebp.c"

static int reference(uint64_t v) {
    int n = 0;
    while (v != 0) {
        v >>= 1;
        n++;
    }
    return n;
}

int main(void) {
    uint64_t rng = 88172645463325252u;
    unsigned checks = 0, failed = 0;
    int k, d, i;
    for (k = 0; k < 64; k++)
        for (d = -1; d <= 1; d++) {
            uint64_t v = ((uint64_t)1 << k) + (uint64_t)(int64_t)d;
            checks++;
            if (bit_length(v) != reference(v)) failed++;
        }
    for (i = 0; i < 100000; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        checks++;
        if (bit_length(rng >> (i % 64)) != reference(rng >> (i % 64))) failed++;
    }
    checks++;
    if (bit_length(0) != 0) failed++;
    printf("%u checks, %u failed\n", checks, failed);
    return failed != 0;
}
