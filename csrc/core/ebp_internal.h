/*
 * ebp_internal.h - what the core's files share (not part of the API; edgebp.h is the manual).
 *
 * The core is one file per concern (see docs/core.md): ebp_net.c (configuration, memory, layout, init),
 * ebp_act.c (activations' rules and the loss), ebp_dense.c (dense forward, deltas to the input, gradients),
 * ebp_conv1d.c and ebp_pool.c (the same for 1-D convolution and pooling), ebp_backward.c (block floating
 * point deltas, ebp_backward), ebp_update.c (the online update and ebp_step), ebp_train.c (the passes and
 * training loops). csrc/edgebp.c includes them all as one translation unit (EBP_AMALGAMATION), which is
 * what the firmware, the Python extension and the benchmarks build: the compiler then sees every kernel
 * at once, as it did when the core was one file. Each file also compiles on its own (tests/test_c.py).
 * Functions shared between files are EBP_INTERNAL: static in the amalgamation, external otherwise.
 */
#ifndef EBP_INTERNAL_H
#define EBP_INTERNAL_H

#include "../edgebp.h"
#include "../ebp_fixed.h"
#include "../ebp_tables.h"
#include "../arch/ebp_arch.h"
#include "../arch/ebp_arch_arm.h"
#include "../arch/ebp_arch_x86.h"

#ifdef EBP_AMALGAMATION
#define EBP_INTERNAL static
#else
#define EBP_INTERNAL
#endif

/* keep a hot function out of its caller (register pressure), or a kernel specialised for constant arguments
 * in it, where the compiler allows saying so (like CMSIS's __STATIC_FORCEINLINE) */
#if defined(__GNUC__) && !defined(__OPTIMIZE_SIZE__) /* -Os: the compiler weighs the copies' size */
#define EBP_NOINLINE __attribute__((noinline))
#define EBP_INLINE static inline __attribute__((always_inline))
#elif defined(__GNUC__)
#define EBP_NOINLINE __attribute__((noinline))
#define EBP_INLINE static inline
#else
#define EBP_NOINLINE
#define EBP_INLINE static inline
#endif

/* dot products unrolled by 4, except on ARMv6-M (Cortex-M0/M0+), whose 8 low registers cannot hold the
 * unrolled 64-bit sums (measured: tools/bench) */
#ifndef EBP_UNROLL_DOT
#if defined(__ARM_ARCH_6M__)
#define EBP_UNROLL_DOT 0
#else
#define EBP_UNROLL_DOT 1
#endif
#endif

/* a 64-bit multiply in one instruction (64-bit hosts): some portable kernels then take a form without variable
 * shifts (row_nonneg_sr64 in ebp_update.c); the integers are the same either way */
#ifndef EBP_WIDE_MUL
#if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__) || defined(_M_ARM64)
#define EBP_WIDE_MUL 1
#else
#define EBP_WIDE_MUL 0
#endif
#endif

#define EBP_ONE_Q16 65536
#define EBP_LN2_Q16 45426 /* ln(2) * 2^16 */

/* x at from_frac fractional bits, re-expressed with to_frac (rounded to nearest, or saturated upwards). */
static inline int64_t requant(int64_t x, int from_frac, int to_frac) {
    int s = from_frac - to_frac;
    if (s <= 0) return ebp_lshift_sat(x, -s);
    if (s <= 31 && x > INT32_MIN && x < ((int64_t)1 << 30)) return ebp_rshift_rn32((int32_t)x, s); /* cheaper */
    return ebp_rshift_rn(x, s > 62 ? 62 : s);
}

/* an int16 from its 16 bits (two's complement), without an out-of-range conversion */
static inline int16_t s16_of_bits(uint32_t bits) {
    bits &= 0xFFFFu;
    return (int16_t)((int32_t)bits - (int32_t)((bits & 0x8000u) << 1));
}

EBP_FIXED_BEGIN
EBP_FIXED_FN static inline int16_t sat16_count(int64_t x, uint32_t *count) {
    int16_t y = ebp_sat16(x);
    if (y != x) (*count)++;
    return y;
}
EBP_FIXED_END

/* number of significant bits of v (0 for 0): count leading zeros with GCC and clang on targets that have
 * the instruction (not Cortex-M0; -DEBP_NO_CLZ forces the portable code), else binary search on its upper
 * or lower half */
EBP_FIXED_BEGIN
EBP_FIXED_FN static inline int bit_length(uint64_t v) {
#if defined(__GNUC__) && (defined(__ARM_FEATURE_CLZ) || defined(__x86_64__)) && !defined(EBP_NO_CLZ)
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    return hi != 0 ? 64 - __builtin_clz(hi) : lo != 0 ? 32 - __builtin_clz(lo) : 0;
#else
    uint32_t x = (uint32_t)(v >> 32);
    int n = 32, step;
    if (x == 0) {
        x = (uint32_t)v;
        n = 0;
    }
    for (step = 16; step > 0; step >>= 1)
        if ((x >> step) != 0) {
            x >>= step;
            n += step;
        }
    return n + (int)x;
#endif
}
EBP_FIXED_END

/*
 * f'(y) from the output y (Q a_frac), Q15 in [0, 32768]; sd = 2 a_frac - 15. The forward pass leaves sigmoid
 * outputs in [0, 1] and tanh outputs in [-1, 1], so the products below lie in [0, 2^30].
 */
static inline int32_t act_deriv_q15(int act, int32_t y, int32_t one, int sd) {
    int32_t v;
    switch (act) {
    case EBP_ACT_SIGMOID: v = y * (one - y); break;
    case EBP_ACT_TANH: v = one * one - y * y; break;
    case EBP_ACT_RELU: return y > 0 ? 32768 : 0;
    default: return 32768;
    }
    return sd > 0 ? (int32_t)(((uint32_t)v + ((uint32_t)1 << (sd - 1))) >> sd) : v * ((int32_t)1 << -sd);
}

/* act_deriv_q15 with its final shift prepared once a layer (half = 2^(sd-1), sr = sd when sd > 0, else half = sr = 0
 * and sl = -sd): the same value, ((v + half) >> sr) << sl, without a branch on sd per neuron */
static inline uint32_t act_deriv_q15_pre(int act, int32_t y, int32_t one, uint32_t half, int sr, int sl) {
    uint32_t v;
    switch (act) {
    case EBP_ACT_SIGMOID: v = (uint32_t)(y * (one - y)); break;
    case EBP_ACT_TANH: v = (uint32_t)(one * one - y * y); break;
    case EBP_ACT_RELU: return y > 0 ? 32768u : 0u;
    default: return 32768u;
    }
    return ((v + half) >> sr) << sl; /* v <= 2^30; for sd <= 0, v 2^-sd <= 2^15 */
}

/* sigmoid of a Q12 magnitude a, Q16 in [32768, 65535]: the table on [0, 16] with step 1/16, linear
 * interpolation (sigmoid(-a) is 65536 minus this) */
static inline uint32_t sigmoid_pos_q16(uint32_t a) {
    uint32_t idx, frac, y0, y1;
    if (a >= ((uint32_t)16 << 12)) return 65535u; /* a >= 16.0 (an int32 constant: int may have 16 bits) */
    idx = a >> 8;
    frac = a & 255u;
    y0 = EBP_TAB16(ebp_sigmoid_q16, idx);
    y1 = EBP_TAB16(ebp_sigmoid_q16, idx + 1);
    return y0 + (((y1 - y0) * frac + 128u) >> 8); /* the table does not decrease */
}

/* a f for a < 2^32 and f <= 2^15, exactly, from two 16 x 16-bit products (each below 2^31): a 32 x 32-bit
 * multiply without the 64-bit library call of ARMv6-M */
static inline uint64_t mul_u32_q15(uint32_t a, uint32_t f) {
    return (uint64_t)((a & 0xFFFFu) * f) + ((uint64_t)((a >> 16) * f) << 16);
}

/* w -= q, saturated to int16; returns 1 if it clipped */
static inline uint32_t sub_sat16(int16_t *w, int32_t q) {
    int32_t nw = *w - q;
    if ((uint32_t)(nw + 32768) > 65535u) {
        *w = nw < 0 ? INT16_MIN : INT16_MAX;
        return 1u;
    }
    *w = (int16_t)nw;
    return 0u;
}

/* *a += r, saturated; |r| <= 2^30. Returns 1 if it clipped. */
static inline uint32_t add_sat32(int32_t *a, int32_t r) {
    if (r > 0 ? *a > INT32_MAX - r : *a < INT32_MIN - r) {
        *a = r > 0 ? INT32_MAX : INT32_MIN;
        return 1u;
    }
    *a += r;
    return 0u;
}

/* a weight or bias of an int16 or an int8 (w8 set) layer */
static inline int32_t ebp_w(const ebp_layer_t *L, uint32_t k) { return EBP_INT8 && L->w8 != NULL ? L->w8[k] : L->w[k]; }
static inline int32_t ebp_b(const ebp_layer_t *L, uint32_t k) { return EBP_INT8 && L->b8 != NULL ? L->b8[k] : L->b[k]; }

/* a layer that runs the plain per-position loops of ebp_conv1d.c: a convolution, or a dense layer with
 * int8 weights (a dense layer is the convolution of an (n_in, 1) input with kernel 1) */
static inline int ebp_plain(const ebp_layer_t *L) {
    return (EBP_CONV && L->kind == EBP_KIND_CONV1D) || (EBP_INT8 && L->w8 != NULL);
}

/* widest hidden layer whose raw deltas an EBP_FLAG_ONLINE network packs instead of computing them twice */
#define EBP_PACK_WIDTH 128

/* ---- shared between the files ------------------------------------------------------------------------ */

/* ebp_net.c: a layer's geometry (shapes as (channels, length); counts of weights and biases) */
typedef struct {
    uint32_t in_ch, in_len, ch, len, n_w, n_b, stride;
    int in_frac, a_frac;
} ebp_geom_t;
EBP_INTERNAL int ebp_geometry(const ebp_cfg_t *cfg, unsigned l, const ebp_geom_t *prev, ebp_geom_t *g);

/* ebp_act.c: exp(-x) of a Q12 argument x >= 0, Q16 */
EBP_INTERNAL int32_t ebp_exp_neg(int64_t x);

/* ebp_act.c: the plain rule of an elementwise activation on an exact pre-activation (zf fractional bits) */
EBP_INTERNAL int16_t ebp_act_out(int act, int64_t acc, int zf, int a_frac, uint32_t *sat);
EBP_INTERNAL void ebp_softmax_out(ebp_layer_t *L, int64_t *z, uint32_t *sat);

/* ebp_conv1d.c and ebp_pool.c */
EBP_INTERNAL void ebp_conv1d_fwd(ebp_layer_t *L, const int16_t *in, int64_t *scratch);
EBP_INTERNAL int64_t ebp_conv1d_back(const ebp_layer_t *N, uint32_t i);
EBP_INTERNAL void ebp_conv1d_accumulate_grad(ebp_layer_t *L, const int16_t *in);
EBP_INTERNAL void ebp_conv1d_update_online(ebp_net_t *net, ebp_layer_t *L, const int16_t *in);
EBP_INTERNAL void ebp_pool_fwd_s16(ebp_layer_t *L, const int16_t *in);
EBP_INTERNAL int64_t ebp_pool_back(const ebp_layer_t *N, const int16_t *x, uint32_t i);

/* ebp_dense.c */
EBP_INTERNAL void ebp_dense_fwd_s16(ebp_layer_t *L, const int16_t *in, int64_t *scratch);
EBP_INTERNAL int64_t ebp_dense_raw_hidden(const ebp_layer_t *L, const ebp_layer_t *N, uint32_t i, int32_t one,
                                          int sd);
EBP_INTERNAL uint64_t ebp_dense_hidden_raw(const ebp_layer_t *L, const ebp_layer_t *N, int64_t *out,
                                           uint32_t *signs);
EBP_INTERNAL void ebp_dense_accumulate_grad(ebp_layer_t *L, const int16_t *in);

/* ebp_backward.c */
EBP_INTERNAL void ebp_backward_deltas(ebp_net_t *net, const int16_t *t);

/* ebp_update.c */
EBP_INTERNAL int32_t ebp_online_delta_slow(const ebp_net_t *net, int32_t p, int S, uint32_t r);
EBP_INTERNAL void ebp_update_online(ebp_net_t *net, ebp_layer_t *L, const int16_t *in);

#endif /* EBP_INTERNAL_H */
