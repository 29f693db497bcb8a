/*
 * ebp_fixed.h - the integer helpers every edgebp kernel goes through: saturation, rounding shifts, PRNG.
 *
 * Rounding rules, written down once:
 *   ebp_rshift_rn(x, s)    round(x / 2^s), ties away from zero       (deterministic)
 *   ebp_rshift_floor(x, s) floor(x / 2^s)
 *   ebp_rshift_sr(x, s, r) floor(x / 2^s + u), u = r / 2^32 in [0, 1)  (stochastic, unbiased)
 * No helper shifts a negative value: negative inputs are handled through their magnitude, so the
 * results do not depend on the compiler's (implementation-defined) right shift of negative numbers.
 * Shift counts are 0..62; x must satisfy |x| <= 2^62.
 */
#ifndef EBP_FIXED_H
#define EBP_FIXED_H

#include <stdint.h>

/* The helpers (these 64-bit ones, and a few in csrc/core/ebp_internal.h): inline everywhere, except on 8-bit AVR,
 * where every 64-bit add or shift is dozens of instructions inlined at each call: there they are out-of-line
 * functions (an ATmega328P has 32 KiB of flash; 8-16-2 step within 0.1% as fast, tools/step_bench/avr.py).
 * The integers are the same either way. -DEBP_FIXED_INLINE=1 or 0 forces one or the other. */
#ifndef EBP_FIXED_INLINE
#if defined(__AVR__)
#define EBP_FIXED_INLINE 0
#else
#define EBP_FIXED_INLINE 1
#endif
#endif
#if EBP_FIXED_INLINE || !defined(__GNUC__)
#define EBP_FIXED_FN
#define EBP_FIXED_BEGIN
#define EBP_FIXED_END
#else
/* noinline on a static inline function (edgebp/_build.py finds the helpers by "static inline"): GCC's warning
 * about the pair is silenced between EBP_FIXED_BEGIN and EBP_FIXED_END only */
#define EBP_FIXED_FN __attribute__((noinline))
#define EBP_FIXED_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wattributes\"")
#define EBP_FIXED_END _Pragma("GCC diagnostic pop")
#endif

EBP_FIXED_BEGIN
EBP_FIXED_FN static inline int16_t ebp_sat16(int64_t x) {
    return (int16_t)(x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x));
}

EBP_FIXED_FN static inline int32_t ebp_sat32(int64_t x) {
    return (int32_t)(x > INT32_MAX ? INT32_MAX : (x < INT32_MIN ? INT32_MIN : x));
}

EBP_FIXED_FN static inline int64_t ebp_rshift_rn(int64_t x, int s) {
    /* floor((x + 2^(s-1) - [x < 0]) / 2^s), the floor taken on x + 2^62 as an unsigned number */
    uint64_t b;
    if (s <= 0) return x;
    b = (uint64_t)x + ((uint64_t)1 << 62) + ((uint64_t)1 << (s - 1)) - ((uint64_t)x >> 63);
    return (int64_t)(b >> s) - (int64_t)(((uint64_t)1 << 62) >> s);
}

/*
 * ebp_rshift_rn in 32-bit arithmetic (cheaper on Cortex-M), for s in 1..31 and
 * -2^31 < x < 2^31 - 2^(s-1) (e.g. any |x| <= 2^30 when s <= 30). floor((x + 2^(s-1) - [x < 0]) / 2^s)
 * rounds ties away from zero; the floor is taken on x + 2^31 as an unsigned number, so no negative value
 * is shifted.
 */
static inline int32_t ebp_rshift_rn32(int32_t x, int s) {
    uint32_t b = (uint32_t)x + 0x80000000u + ((uint32_t)1 << (s - 1)) - ((uint32_t)x >> 31);
    return (int32_t)(b >> s) - (int32_t)(0x80000000u >> s);
}

EBP_FIXED_FN static inline int64_t ebp_rshift_floor(int64_t x, int s) {
    uint64_t m;
    if (s <= 0) return x;
    if (x >= 0) return (int64_t)((uint64_t)x >> s);
    m = (uint64_t)0 - (uint64_t)x;
    m = (m + ((uint64_t)1 << s) - 1u) >> s;
    return -(int64_t)m;
}

/* ebp_rshift_sr for |x| <= 2^30 and s in 1..30, in 32-bit arithmetic: the same result. */
static inline int32_t ebp_rshift_sr32(int32_t x, int s, uint32_t r) {
    /* floor((x + u) / 2^s) with x + u + 2^31 in [0, 2^32): shift it as unsigned, then remove the bias */
    uint32_t b = (uint32_t)x + 0x80000000u + (r >> (32 - s));
    return (int32_t)(b >> s) - (int32_t)(0x80000000u >> s);
}

EBP_FIXED_FN static inline int64_t ebp_rshift_sr(int64_t x, int s, uint32_t r) {
    uint64_t u;
    if (s <= 0) return x;
    u = s <= 32 ? (uint64_t)(r >> (32 - s)) : (uint64_t)r << (s - 32);
    /* floor((x + u) / 2^s); x + u cannot overflow since |x| <= 2^62 and u < 2^s <= 2^62 */
    return ebp_rshift_floor(x + (int64_t)u, s);
}

/* x * 2^s for s >= 0, saturated to +-2^62 (the helpers' input range). */
EBP_FIXED_FN static inline int64_t ebp_lshift_sat(int64_t x, int s) {
    const int64_t lim = (int64_t)1 << 62;
    uint64_t m;
    if (s <= 0) return x;
    m = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    if (m == 0) return 0;
    if (s >= 62 || m > ((uint64_t)lim >> s)) return x < 0 ? -lim : lim;
    m <<= s;
    return x < 0 ? -(int64_t)m : (int64_t)m;
}

/* Marsaglia's xorshift32; state must not be 0. Returns the new state. (Out of line on AVR as the helpers above:
 * the core draws about once per row of an update, so one copy costs no speed and saves its inlined copies.) */
EBP_FIXED_FN static inline uint32_t ebp_xorshift32(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

EBP_FIXED_END

/*
 * The step of the Weyl sequence that spreads one draw over a row of the online update: parameter j of a row
 * is rounded with r + j EBP_WEYL (mod 2^32), r the row's one xorshift32 draw. Odd (floor(2^32 / golden ratio)
 * rounded to odd), so the j-th values of a row are distinct for j < 2^32 and, r being uniform, each is uniform:
 * every rounding stays unbiased, and a row costs one draw and one addition a parameter.
 */
#define EBP_WEYL 0x9E3779B9u

#endif /* EBP_FIXED_H */
