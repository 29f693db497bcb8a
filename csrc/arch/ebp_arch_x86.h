/*
 * ebp_arch_x86.h - the x86-64 kernels (SSE2, the baseline every x86-64 processor has) beside the portable ones
 * (csrc/arch/ebp_arch.h says how they are chosen). Included by csrc/core/ebp_internal.h; every function here is
 * static inline and exists only when EBP_X86_SSE2 is selected. Each names the plain rule it reproduces;
 * tests/test_c.py trains random configurations with them and with -DEBP_PORTABLE=1 and compares every integer
 * and statistic.
 */
#ifndef EBP_ARCH_X86_H
#define EBP_ARCH_X86_H

#include <stdint.h>

#include "ebp_arch.h"

#if EBP_X86_SSE2
#include <emmintrin.h>
#include <string.h>

#define EBP_X86_INLINE static inline __attribute__((always_inline))

/* 8 updates q = floor((p + (r >> (32 - S))) / 2^S) from their exact 32-bit products p (lanes 0-3 in p0, 4-7 in
 * p1) and random values r (lanes 0-3 in r0, 4-7 in r1): PSRLD, PADDD, PSRAD (|p + u| < 2^31), then PACKSSDW,
 * exact as |q| < 2^15 */
EBP_X86_INLINE __m128i ebp_x86_sr8(__m128i p0, __m128i p1, __m128i r0, __m128i r1, __m128i sv, __m128i rsv) {
    const __m128i u0 = _mm_srl_epi32(r0, rsv), u1 = _mm_srl_epi32(r1, rsv);
    return _mm_packs_epi32(_mm_sra_epi32(_mm_add_epi32(p0, u0), sv), _mm_sra_epi32(_mm_add_epi32(p1, u1), sv));
}

/* *c = PADDW(*c, m), written in place: GCC 12 otherwise adds the mask into a new register and copies it back
 * (a MOVDQA per counter and step in the row loops) */
EBP_X86_INLINE void ebp_x86_acc16(__m128i *c, __m128i m) {
    __asm__("paddw %1, %0" : "+x"(*c) : "x"(m));
}

/* ebp_sat16(w - q) of 8 lanes by PSUBSW; per lane -1 (PADDW of the mask, which GCC 12 allocates with one register
 * copy a counter fewer than PSUBW) in *zc where q == 0 and in *ok where PSUBSW and PSUBW agree (no clip) */
EBP_X86_INLINE __m128i ebp_x86_sub8(__m128i wv, __m128i q, __m128i *zc, __m128i *ok) {
    const __m128i nw = _mm_subs_epi16(wv, q);
    ebp_x86_acc16(ok, _mm_cmpeq_epi16(nw, _mm_sub_epi16(wv, q)));
    ebp_x86_acc16(zc, _mm_cmpeq_epi16(q, _mm_setzero_si128()));
    return nw;
}

/* c += the 8 16-bit lanes of -n (each -n in (-2^16, 0]) as 32-bit lanes: (0 - n) mod 2^16, widened */
EBP_X86_INLINE __m128i ebp_x86_fold_neg16(__m128i c, __m128i n) {
    const __m128i zero = _mm_setzero_si128(), p = _mm_sub_epi16(zero, n);
    return _mm_add_epi32(c, _mm_add_epi32(_mm_unpacklo_epi16(p, zero), _mm_unpackhi_epi16(p, zero)));
}

/* w[0..7] = ebp_sat16(w - q), counted as by ebp_x86_sub8 */
EBP_X86_INLINE void ebp_x86_apply8(int16_t *w, __m128i q, __m128i *zc, __m128i *ok) {
    const __m128i wv = _mm_loadu_si128((const __m128i *)(const void *)w);
    _mm_storeu_si128((__m128i *)(void *)w, ebp_x86_sub8(wv, q, zc, ok));
}

/* the portable rule for one parameter: w = ebp_sat16(w - q), q = ebp_rshift_sr32(p, S, r); adds q != 0 to *nz,
 * returns 1 if it clipped */
EBP_X86_INLINE uint32_t ebp_x86_sr1(int16_t *w, int32_t p, int S, uint32_t r, uint32_t *nz) {
    const int32_t q = ebp_rshift_sr32(p, S, r), nw = *w - q;
    *nz += q != 0;
    if ((uint32_t)(nw + 32768) > 65535u) {
        *w = nw < 0 ? INT16_MIN : INT16_MAX;
        return 1u;
    }
    *w = (int16_t)nw;
    return 0u;
}

/* ebp_x86_sr1 for the n weights w[i] on inputs a[i], r = x + i EBP_WEYL, then (unless b is NULL) for the bias *b
 * on 2^in_frac = one, r = x + n EBP_WEYL: out of line, for the rare rows and the last n_in % 8 weights; returns
 * the clips times 2^32 plus the non-zero updates */
static __attribute__((noinline)) uint64_t ebp_x86_sr_run(int16_t *w, const int16_t *a, uint32_t n, int32_t dl,
                                                         int S, uint32_t x, int16_t *b, int32_t one) {
    uint32_t i, nz = 0, clips = 0;
    for (i = 0; i < n; i++, x += EBP_WEYL) clips += ebp_x86_sr1(&w[i], dl * a[i], S, x, &nz);
    if (b != NULL) clips += ebp_x86_sr1(b, dl * one, S, x, &nz);
    return ((uint64_t)clips << 32) | nz;
}

/* the k < 8 int16 p[0..k) into the low lanes of a vector, the others 0 (no read beyond p[k - 1]), and back */
EBP_X86_INLINE __m128i ebp_x86_load_part(const int16_t *p, uint32_t k) {
    __m128i v = _mm_setzero_si128();
    uint32_t t;
    if (k & 1u) v = _mm_cvtsi32_si128((uint16_t)p[k - 1u]);
    if (k & 2u) {
        memcpy(&t, p + (k & 4u), 4);
        v = _mm_or_si128(_mm_slli_si128(v, 4), _mm_cvtsi32_si128((int32_t)t));
    }
    if (k & 4u) v = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(const void *)p), v);
    return v;
}
EBP_X86_INLINE void ebp_x86_store_part(int16_t *p, uint32_t k, __m128i v) {
    uint32_t t;
    if (k & 4u) {
        _mm_storel_epi64((__m128i *)(void *)p, v);
        v = _mm_srli_si128(v, 8);
    }
    if (k & 2u) {
        t = (uint32_t)_mm_cvtsi128_si32(v);
        memcpy(p + (k & 4u), &t, 4);
        v = _mm_srli_si128(v, 4);
    }
    if (k & 1u) p[k - 1u] = (int16_t)_mm_extract_epi16(v, 0); /* its 16 bits (GCC, clang: modulo 2^16) */
}

/* the scalar rows of a block of ebp_x86_rows_sr (rows w + j n_in, biases b[j] for bit j of `bits`, its draws
 * xb[j] - n_in EBP_WEYL): a row of `rare` (|dl| >= 2^S) whole, its bias too (then dla[j] = 0, which leaves the bias
 * to the block's vector as it is), and of the others the last n_in % 8 weights; as ebp_x86_sr_run returns */
static __attribute__((noinline)) uint64_t ebp_x86_rows_rest(int16_t *w, int16_t *b, const int16_t *in, uint32_t n_in,
                                                            int16_t *dla, const uint32_t *xb, uint32_t bits,
                                                            uint32_t rare, int S, int32_t one) {
    const uint32_t n8 = n_in & ~7u;
    uint64_t c = 0;
    for (; bits != 0; bits &= bits - 1u) {
        const uint32_t j = (uint32_t)__builtin_ctz(bits), x = xb[j] - n_in * EBP_WEYL;
        if (rare >> j & 1u) {
            c += ebp_x86_sr_run(w + j * n_in, in, n_in, dla[j], S, x, b + j, one);
            dla[j] = 0;
        } else {
            c += ebp_x86_sr_run(w + j * n_in + n8, in + n8, n_in - n8, dla[j], S, x + n8 * EBP_WEYL, NULL, one);
        }
    }
    return c;
}

/* the first 8 nv >= 8 weights of a row, 8 a step, as ebp_x86_rows_sr says: w = ebp_sat16(w - q), q =
 * ebp_rshift_sr32(dl a, S, x + i EBP_WEYL), |dl| < 2^S; the products dl a exact by PMADDWD of the inputs as
 * 32-bit lanes (a, 0) (ai: inputs 8k..8k+3 in ai[2k], 8k+4..8k+7 in ai[2k + 1]) with dlw = (dl, dl) in every
 * 32-bit lane; counted as by ebp_x86_sub8 */
EBP_X86_INLINE void ebp_x86_row8(int16_t *w, const __m128i *ai, const __m128i *ai_end, __m128i dlw, uint32_t x,
                                 __m128i sv, __m128i rsv, __m128i *zc, __m128i *ok) {
    const __m128i step0 = _mm_setr_epi32(0, (int32_t)EBP_WEYL, (int32_t)(2u * EBP_WEYL), (int32_t)(3u * EBP_WEYL));
    const __m128i step4 = _mm_set1_epi32((int32_t)(4u * EBP_WEYL)), step8 = _mm_set1_epi32((int32_t)(8u * EBP_WEYL));
    __m128i x0 = _mm_add_epi32(_mm_set1_epi32((int32_t)x), step0), x1 = _mm_add_epi32(x0, step4);
    do { /* nv >= 8: ai != ai_end on entry */
        const __m128i p0 = _mm_madd_epi16(ai[0], dlw), p1 = _mm_madd_epi16(ai[1], dlw);
        ebp_x86_apply8(w, ebp_x86_sr8(p0, p1, x0, x1, sv, rsv), zc, ok);
        x0 = _mm_add_epi32(x0, step8);
        x1 = _mm_add_epi32(x1, step8);
        w += 8;
        ai += 2;
    } while (ai != ai_end);
}

/*
 * The stochastic online update of a dense layer with SSE2 (it replaces update_rows_nonneg_sr and the EBP_STATS=0
 * rows), inputs of any sign, 1 <= S <= 30. It reproduces the portable loop of ebp_update_online exactly: per
 * row o with delta[o] != 0, dl = ebp_rshift_rn32(delta[o] lr_m, 16), and unless dl == 0, per weight then for
 * the bias, with one xorshift32 draw r0 and, for weight i (i = n_in: the bias), r = r0 + i EBP_WEYL (mod 2^32),
 *     w = ebp_sat16(w - ebp_rshift_sr32(dl a, S, r))    (a = in[i], or 2^in_frac for the bias),
 * counting the non-zero updates into *nz and the rows with delta[o] != 0 into *rows; returns the clips.
 * Blocks of 8 rows (the last one's missing lanes 0): their dl at once, |d| lr_m = 2^16 hi + lo (PMULHUW, PMULLW;
 * < 2^31) rounded as hi + (lo >> 15), the sign of d put back; then the rows with dl != 0 in order (their bit
 * mask), 8 weights a step: the 8 values of the Weyl sequence in two vectors (PADDD of 8 EBP_WEYL a step),
 * PMULLW/PMULHW give the exact 32-bit products dl a, ebp_x86_sr8 the updates (a row with |dl| >= 2^S, where
 * |q| could reach 2^15, takes the scalar rule, its bias too), ebp_x86_apply8 the saturated weights and the
 * counts; the last n_in % 8 weights the scalar rule (ebp_x86_sr_run). The block's 8 biases then go together:
 * dl 2^in_frac by PSLLD, r the value r0 + n_in EBP_WEYL of each row; a row not updated has dl = 0 there, hence
 * q = 0 (u < 2^S). The last n_out % 8 < EBP_X86_ROWS_BLOCK_MIN rows (the small output layers) go one by one
 * instead, dl by the scalar rule, the bias by ebp_x86_sr1: a block's set-up costs more than its vectors save
 * there. The counts are kept in 16-bit lanes (at most 8 (n_in / 8) + 1 < 2^16 a block, held negated), added into
 * 32-bit ones after each block (ebp_x86_fold_neg16).
 */
#define EBP_X86_ROWS_BLOCK_MIN 4u /* a last block of fewer rows goes row by row */
EBP_X86_INLINE uint32_t ebp_x86_rows_sr(int16_t *w, int16_t *b, const int16_t *in, uint32_t n_in,
                                        const int16_t *delta, uint32_t n_out, int32_t lr_m, int in_frac, int S,
                                        uint32_t *rng, uint32_t *nz, uint32_t *rows) {
    const __m128i zero = _mm_setzero_si128(), sv = _mm_cvtsi32_si128(S), rsv = _mm_cvtsi32_si128(32 - S);
    const __m128i fv = _mm_cvtsi32_si128(in_frac), lrv = _mm_set1_epi16((int16_t)(uint16_t)lr_m);
    const __m128i limv = _mm_set1_epi16((int16_t)(S < 16 ? ((1u << S) - 1u) : 0xFFFFu)); /* 2^S - 1, unsigned */
    const uint32_t n8 = n_in & ~7u, wx = n_in * EBP_WEYL;
    const int32_t one = (int32_t)1 << in_frac;
    __m128i zc32 = zero, ok32 = zero, dz = zero; /* updates that rounded to zero, that did not clip; zero deltas */
    uint32_t st = *rng, clips = 0, n = *nz, vrows = 0, blocks = 0, j0, xb[8] = {0}; /* xb: any value with dl = 0 */
    __m128i ai[EBP_MAX_WIDTH / 4]; /* the inputs as 32-bit lanes (a, 0), for ebp_x86_row8 */
    for (j0 = 0; j0 < n8; j0 += 8) {
        const __m128i av = _mm_loadu_si128((const __m128i *)(const void *)(in + j0));
        ai[j0 / 4u] = _mm_unpacklo_epi16(av, zero);
        ai[j0 / 4u + 1u] = _mm_unpackhi_epi16(av, zero);
    }
    for (j0 = 0; j0 < n_out && n_out - j0 >= EBP_X86_ROWS_BLOCK_MIN; j0 += 8, blocks++, w += 8u * n_in) {
        const uint32_t k = n_out - j0 < 8u ? n_out - j0 : 8u;
        const __m128i dv = k == 8u ? _mm_loadu_si128((const __m128i *)(const void *)(delta + j0))
                                   : ebp_x86_load_part(delta + j0, k);
        const __m128i sg = _mm_srai_epi16(dv, 15), ad = _mm_sub_epi16(_mm_xor_si128(dv, sg), sg); /* |d| */
        const __m128i mv = _mm_add_epi16(_mm_mulhi_epu16(ad, lrv), _mm_srli_epi16(_mm_mullo_epi16(ad, lrv), 15));
        const __m128i dlv = _mm_sub_epi16(_mm_xor_si128(mv, sg), sg); /* |mv| <= 2^15 */
        const __m128i dl0 = _mm_cmpeq_epi16(dlv, zero);
        const uint32_t bits = 0xFFu & ~(uint32_t)_mm_movemask_epi8(_mm_packs_epi16(dl0, dl0)); /* rows with dl != 0 */
        const __m128i small = _mm_cmpeq_epi16(_mm_subs_epu16(mv, limv), zero); /* |dl| < 2^S */
        const uint32_t rare = bits & ~(uint32_t)_mm_movemask_epi8(_mm_packs_epi16(small, small));
        int16_t dla[8];
        const uint32_t vec = n8 != 0 ? bits & ~rare : 0u; /* the rows for ebp_x86_row8 */
        uint32_t b8, dl2[8]; /* dl2[j]: dla[j] twice, the 32-bit lane ebp_x86_row8 broadcasts (MOVD, PSHUFD) */
        __m128i zc = zero, ok = zero; /* the counts in 16-bit lanes */
        dz = _mm_sub_epi16(dz, _mm_cmpeq_epi16(dv, zero));
        _mm_storeu_si128((__m128i *)(void *)dla, dlv);
        _mm_storeu_si128((__m128i *)(void *)dl2, _mm_unpacklo_epi16(dlv, dlv));
        _mm_storeu_si128((__m128i *)(void *)(dl2 + 4), _mm_unpackhi_epi16(dlv, dlv));
        for (b8 = bits; b8 != 0; b8 &= b8 - 1u) {
            const uint32_t j = (uint32_t)__builtin_ctz(b8);
            const uint32_t x = ebp_xorshift32(&st); /* the row's draw: its Weyl sequence starts there */
            xb[j] = x + wx;                         /* the bias's value of the sequence */
            if (!(vec >> j & 1u)) continue; /* rare, |dl| >= 2^S, or n_in < 8: the scalar rule, below */
            ebp_x86_row8(w + j * n_in, ai, ai + n8 / 4u, _mm_set1_epi32((int32_t)dl2[j]), x, sv, rsv, &zc, &ok);
            vrows++;
        }
        if (rare != 0 || (n8 != n_in && bits != 0)) { /* the rare rows, the last n_in % 8 weights of the others */
            const uint64_t c = ebp_x86_rows_rest(w, b + j0, in, n_in, dla, xb, bits, rare, S, one);
            n += (uint32_t)c;
            clips += (uint32_t)(c >> 32);
        }
        { /* the block's biases */
            const __m128i bd = _mm_loadu_si128((const __m128i *)(const void *)dla);
            const __m128i p0 = _mm_sll_epi32(_mm_srai_epi32(_mm_unpacklo_epi16(bd, bd), 16), fv);
            const __m128i p1 = _mm_sll_epi32(_mm_srai_epi32(_mm_unpackhi_epi16(bd, bd), 16), fv);
            const __m128i q = ebp_x86_sr8(p0, p1, _mm_loadu_si128((const __m128i *)(const void *)xb),
                                          _mm_loadu_si128((const __m128i *)(const void *)(xb + 4)), sv, rsv);
            if (k == 8u)
                ebp_x86_apply8(b + j0, q, &zc, &ok);
            else
                ebp_x86_store_part(b + j0, k, ebp_x86_sub8(ebp_x86_load_part(b + j0, k), q, &zc, &ok));
        }
        zc32 = ebp_x86_fold_neg16(zc32, zc);
        ok32 = ebp_x86_fold_neg16(ok32, ok);
    }
    if (j0 < n_out) { /* the last rows, fewer than EBP_X86_ROWS_BLOCK_MIN: one by one, the portable loop's steps */
        __m128i zc = zero, ok = zero; /* at most 3 (n_in / 8) < 2^16 a lane */
        for (; j0 < n_out; j0++, w += n_in) {
            const int32_t dl = ebp_rshift_rn32(delta[j0] * lr_m, 16);
            uint32_t x;
            if (delta[j0] == 0) continue;
            ++*rows;
            if (dl == 0) continue;
            x = ebp_xorshift32(&st);
            if ((uint32_t)(dl < 0 ? -dl : dl) >> S != 0 || n8 != n_in || n8 == 0) { /* rare (|dl| >= 2^S), a tail */
                uint32_t i0 = 0;
                uint64_t c;
                if ((uint32_t)(dl < 0 ? -dl : dl) >> S == 0 && n8 != 0) {
                    ebp_x86_row8(w, ai, ai + n8 / 4u, _mm_set1_epi16((int16_t)dl), x, sv, rsv, &zc, &ok);
                    vrows++;
                    i0 = n8;
                }
                c = ebp_x86_sr_run(w + i0, in + i0, n_in - i0, dl, S, x + i0 * EBP_WEYL, b + j0, one);
                n += (uint32_t)c;
                clips += (uint32_t)(c >> 32);
                continue;
            }
            ebp_x86_row8(w, ai, ai + n8 / 4u, _mm_set1_epi16((int16_t)dl), x, sv, rsv, &zc, &ok);
            vrows++;
            clips += ebp_x86_sr1(b + j0, dl * one, S, x + wx, &n);
        }
        zc32 = ebp_x86_fold_neg16(zc32, zc);
        ok32 = ebp_x86_fold_neg16(ok32, ok);
    }
    { /* the lanes' counts summed: every vector lane that did not round to zero moved, every one not ok clipped */
        const uint32_t lanes = 8u * (n8 / 8u * vrows + blocks);
        __m128i s, z;
        s = _mm_add_epi32(_mm_unpacklo_epi32(zc32, ok32), _mm_unpackhi_epi32(zc32, ok32)); /* z o z o */
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));                                  /* Z O Z O */
        z = _mm_madd_epi16(dz, _mm_set1_epi16(1)); /* at most n_out / 8 + 1 a lane */
        z = _mm_add_epi32(z, _mm_shuffle_epi32(z, 0x4E));
        z = _mm_add_epi32(z, _mm_shuffle_epi32(z, 0xB1));
        n += lanes - (uint32_t)_mm_cvtsi128_si32(s);
        clips += lanes - (uint32_t)_mm_cvtsi128_si32(_mm_shuffle_epi32(s, 0x01));
        *rows += 8u * blocks - (uint32_t)_mm_cvtsi128_si32(z);
    }
    *nz = n;
    *rng = st;
    return clips;
}
#define EBP_HAVE_ARCH_ROWS_SR_SSE2 1

/* the number of i < n with x[i] == 0, as ebp_update_online's loop counts zero_in: PCMPEQW against 0 and PSUBW,
 * 8 a step, the 16-bit lanes (each at most n / 8 < 2^13) summed by PMADDWD; the last n % 8 one by one */
EBP_X86_INLINE uint32_t ebp_x86_count_zero16(const int16_t *x, uint32_t n) {
    const int16_t *end8 = x + (n & ~7u), *end = x + n;
    __m128i c = _mm_setzero_si128();
    uint32_t z;
    for (; x != end8; x += 8)
        c = _mm_sub_epi16(c, _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(const void *)x), _mm_setzero_si128()));
    c = _mm_madd_epi16(c, _mm_set1_epi16(1));
    c = _mm_add_epi32(c, _mm_shuffle_epi32(c, 0x4E));
    c = _mm_add_epi32(c, _mm_shuffle_epi32(c, 0xB1));
    z = (uint32_t)_mm_cvtsi128_si32(c);
    for (; x != end; x++) z += *x == 0;
    return z;
}
#define EBP_HAVE_ARCH_COUNT_ZERO16 1

/*
 * acc + sum_i w[i] x[i] exactly, as the portable dot16: PMADDWD adds two 16 x 16-bit products into each 32-bit
 * lane, 8 products a step, and the lanes are sign-extended into two 64-bit sums (PADDQ). A pair sum lies in
 * [-2^31 + 2^16, 2^31]: only +2^31 (both products (-2^15)^2) wraps, to INT32_MIN, which no pair sum is, so a
 * lane's high word is all ones where its negation (PSUBD from 0) is positive: the lanes in (INT32_MIN, 0), not
 * INT32_MIN, which stands for +2^31. The last n % 8 products are added one by one.
 */
EBP_X86_INLINE int64_t ebp_x86_dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
    const int16_t *end8 = w + (n & ~7u), *end = w + n;
    const __m128i zero = _mm_setzero_si128();
    __m128i s = zero; /* two 64-bit sums */
    for (; w != end8; w += 8, x += 8) {
        const __m128i p = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)w),
                                         _mm_loadu_si128((const __m128i *)(const void *)x));
        const __m128i neg = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p), zero); /* the high words */
        s = _mm_add_epi64(s, _mm_add_epi64(_mm_unpacklo_epi32(p, neg), _mm_unpackhi_epi32(p, neg)));
    }
    acc += _mm_cvtsi128_si64(_mm_add_epi64(s, _mm_unpackhi_epi64(s, s)));
    for (; w != end; w++, x++) acc += (int32_t)*w * *x;
    return acc;
}
#define EBP_HAVE_ARCH_DOT16 1

/*
 * Four neurons of sigmoid_neuron's 32-bit path (csrc/core/ebp_dense.c) in SSE2 lanes, tanh a constant: the k
 * neurons (1 <= k <= 4) of rows w + j n, biases b[j] (j < k; the other lanes repeat neuron k - 1), n a multiple
 * of 8, table tab = ebp_sigmoid_q16, 1 <= s <= 31, 1 <= sh <= 16. The exact accumulators
 *     acc_j = b[j] 2^in_frac + sum_i w[j n + i] x[i]
 * come from PMADDWD pairs sign-extended into 64-bit sums as in ebp_x86_dot16, the four neurons' pairs of sums
 * added transposed. Unless every acc_j is in int32 (then it stores them in acc[0..k) and returns 0, for the
 * caller's scalar rule), with neg = acc_j < 0, per lane
 *     a = (|acc_j| + 2^(s-1)) >> s,  v = sigmoid_pos_q16(a),
 *     sigmoid: q = ((neg ? 65536 - v : v) + 2^(sh-1)) >> sh, 32768 clipped to 32767;
 *     tanh:    q = ((2v - 65536) + 2^(sh-1)) >> sh, 32768 clipped to 32767 unless neg; y = neg ? -q : q,
 * stored to y[0..k), each clip of the k lanes counted into *sat. The table pair tab[idx], tab[idx + 1] of a lane
 * (idx = a >> 8 <= 255) is one 32-bit MOVD load, the four joined by PUNPCKLDQ and PUNPCKLQDQ, and
 * y0 + (((y1 - y0) frac + 128) >> 8) = (y0 (256 - frac) + y1 frac + 128) >> 8 (y0 256 is a multiple of 256) is PMADDWD of the pair minus 2^15 each (the table lies in [2^15,
 * 2^16): PXOR of bit 15) with (256 - frac, frac), 2^15 256 added back; a >= 2^16 gives 65535 by POR.
 */
EBP_X86_INLINE int ebp_x86_sigmoid4(const int16_t *w, const int16_t *b, uint32_t k, const int16_t *x, uint32_t n,
                                    int in_frac, int tanh, int s, int sh, const uint16_t *tab, int16_t *y,
                                    int64_t *acc, uint32_t *sat) {
    const __m128i zero = _mm_setzero_si128();
    const int16_t *w0 = w, *w1 = w + (k > 1u ? n : 0u), *w2 = w + (k > 2u ? 2u : k - 1u) * n;
    const int16_t *w3 = w + (k > 3u ? 3u : k - 1u) * n;
    __m128i s0 = zero, s1 = zero, s2 = zero, s3 = zero, t01, t23, bv, lo, neg, a, big, ia, fr, yv, v, q;
    uint32_t i, y01[4], bits;
    for (i = 0; i < n; i += 8) {
        const __m128i xv = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
        const __m128i p0 = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w0 + i)), xv);
        const __m128i p1 = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w1 + i)), xv);
        const __m128i p2 = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w2 + i)), xv);
        const __m128i p3 = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w3 + i)), xv);
        const __m128i g0 = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p0), zero); /* the high words */
        const __m128i g1 = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p1), zero);
        const __m128i g2 = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p2), zero);
        const __m128i g3 = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p3), zero);
        s0 = _mm_add_epi64(s0, _mm_add_epi64(_mm_unpacklo_epi32(p0, g0), _mm_unpackhi_epi32(p0, g0)));
        s1 = _mm_add_epi64(s1, _mm_add_epi64(_mm_unpacklo_epi32(p1, g1), _mm_unpackhi_epi32(p1, g1)));
        s2 = _mm_add_epi64(s2, _mm_add_epi64(_mm_unpacklo_epi32(p2, g2), _mm_unpackhi_epi32(p2, g2)));
        s3 = _mm_add_epi64(s3, _mm_add_epi64(_mm_unpacklo_epi32(p3, g3), _mm_unpackhi_epi32(p3, g3)));
    }
    if (k == 4u) {
        bv = _mm_loadl_epi64((const __m128i *)(const void *)b);
    } else { /* the missing lanes repeat b[k - 1] */
        int16_t bt[4];
        for (i = 0; i < 4u; i++) bt[i] = b[i < k ? i : k - 1u];
        bv = _mm_loadl_epi64((const __m128i *)(const void *)bt);
    }
    bv = _mm_sll_epi32(_mm_srai_epi32(_mm_unpacklo_epi16(bv, bv), 16), _mm_cvtsi32_si128(in_frac)); /* |.| <= 2^30 */
    t01 = _mm_add_epi64(_mm_add_epi64(_mm_unpacklo_epi64(s0, s1), _mm_unpackhi_epi64(s0, s1)),
                        _mm_unpacklo_epi32(bv, _mm_srai_epi32(bv, 31)));
    t23 = _mm_add_epi64(_mm_add_epi64(_mm_unpacklo_epi64(s2, s3), _mm_unpackhi_epi64(s2, s3)),
                        _mm_unpackhi_epi32(bv, _mm_srai_epi32(bv, 31)));
    lo = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(t01), _mm_castsi128_ps(t23), 0x88)); /* low words */
    neg = _mm_srai_epi32(lo, 31);
    if (_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(
            neg, _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(t01), _mm_castsi128_ps(t23), 0xDD))))) != 15) {
        _mm_storeu_si128((__m128i *)(void *)acc, t01); /* an accumulator outside int32 */
        _mm_storeu_si128((__m128i *)(void *)(acc + 2), t23);
        return 0;
    }
    a = _mm_srl_epi32(_mm_add_epi32(_mm_sub_epi32(_mm_xor_si128(lo, neg), neg), _mm_set1_epi32(1 << (s - 1))),
                      _mm_cvtsi32_si128(s)); /* |acc| <= 2^31, s >= 1: no wrap, a < 2^31 */
    big = _mm_cmpgt_epi32(a, _mm_set1_epi32(65535));
    a = _mm_andnot_si128(big, a);
    ia = _mm_srli_epi32(a, 8);
    memcpy(&y01[0], tab + _mm_extract_epi16(ia, 0), 4); /* tab[idx] | tab[idx + 1] << 16 */
    memcpy(&y01[1], tab + _mm_extract_epi16(ia, 2), 4);
    memcpy(&y01[2], tab + _mm_extract_epi16(ia, 4), 4);
    memcpy(&y01[3], tab + _mm_extract_epi16(ia, 6), 4);
    yv = _mm_unpacklo_epi64(_mm_unpacklo_epi32(_mm_cvtsi32_si128((int)y01[0]), _mm_cvtsi32_si128((int)y01[1])),
                            _mm_unpacklo_epi32(_mm_cvtsi32_si128((int)y01[2]), _mm_cvtsi32_si128((int)y01[3])));
    yv = _mm_xor_si128(yv, _mm_set1_epi32((int32_t)0x80008000u));
    fr = _mm_and_si128(a, _mm_set1_epi32(255));
    fr = _mm_add_epi32(_mm_sub_epi32(_mm_slli_epi32(fr, 16), fr), _mm_set1_epi32(256)); /* 256 - frac, frac */
    v = _mm_srli_epi32(_mm_add_epi32(_mm_madd_epi16(yv, fr), _mm_set1_epi32((1 << 23) + 128)), 8);
    v = _mm_or_si128(v, _mm_srli_epi32(big, 16));
    if (tanh) { /* |2 sigmoid - 1| in Q16, the sign that of z */
        __m128i clip;
        q = _mm_srl_epi32(_mm_add_epi32(_mm_sub_epi32(_mm_add_epi32(v, v), _mm_set1_epi32(65536)),
                                        _mm_set1_epi32(1 << (sh - 1))), _mm_cvtsi32_si128(sh));
        clip = _mm_andnot_si128(neg, _mm_cmpeq_epi32(q, _mm_set1_epi32(32768)));
        q = _mm_add_epi32(q, clip);
        q = _mm_sub_epi32(_mm_xor_si128(q, neg), neg);
        bits = (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(clip));
    } else { /* 1 - v for negative z: (v ^ -1) + 65537 = 65536 - v */
        __m128i clip;
        v = _mm_add_epi32(_mm_xor_si128(v, neg), _mm_and_si128(neg, _mm_set1_epi32(65537)));
        q = _mm_srl_epi32(_mm_add_epi32(v, _mm_set1_epi32(1 << (sh - 1))), _mm_cvtsi32_si128(sh));
        clip = _mm_cmpeq_epi32(q, _mm_set1_epi32(32768));
        q = _mm_add_epi32(q, clip);
        bits = (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(clip));
    }
    q = _mm_packs_epi32(q, q); /* exact: |q| <= 2^15 */
    if (k == 4u) {
        _mm_storel_epi64((__m128i *)(void *)y, q);
    } else { /* their 16 bits (GCC, clang: conversion modulo 2^16) */
        y[0] = (int16_t)_mm_extract_epi16(q, 0);
        if (k > 1u) y[1] = (int16_t)_mm_extract_epi16(q, 1);
        if (k > 2u) y[2] = (int16_t)_mm_extract_epi16(q, 2);
        bits &= (1u << k) - 1u;
    }
    for (; bits != 0; bits &= bits - 1u) (*sat)++;
    return 1;
}
#define EBP_HAVE_ARCH_SIGMOID4 1

/*
 * act_deriv_q15 of a sigmoid (tanh: a constant) layer for n outputs y (8 divides n), 8 a step: with one = 2^a_frac,
 *     v = y (one - y) = y 2^a_frac - y^2    (tanh: one^2 - y^2),    f[i] = (uint16_t)(((v + half) >> sr) << sl)
 * (act_deriv_q15_pre's form of the final shift: half = 2^(sd-1) and sr = sd when sd = 2 a_frac - 15 > 0, else
 * half = sr = 0 and sl = -sd), modulo 2^32 as the int32 rule where it is defined; y^2 exact from PMULLW/PMULHW,
 * the low 16 bits of each lane kept by PSLLD/PSRAD 16 and PACKSSDW.
 */
EBP_X86_INLINE void ebp_x86_deriv(uint16_t *f, const int16_t *y, uint32_t n, int tanh, int a_frac) {
    const int sd = 2 * a_frac - 15;
    const __m128i half = _mm_set1_epi32(sd > 0 ? 1 << (sd - 1) : 0), av = _mm_cvtsi32_si128(a_frac);
    const __m128i srv = _mm_cvtsi32_si128(sd > 0 ? sd : 0), slv = _mm_cvtsi32_si128(sd > 0 ? 0 : -sd);
    const __m128i one2 = _mm_set1_epi32(1 << (2 * a_frac)); /* <= 2^30 */
    uint32_t i;
    for (i = 0; i < n; i += 8) {
        const __m128i yv = _mm_loadu_si128((const __m128i *)(const void *)(y + i));
        const __m128i lo = _mm_mullo_epi16(yv, yv), hi = _mm_mulhi_epi16(yv, yv);
        __m128i v0 = _mm_unpacklo_epi16(lo, hi), v1 = _mm_unpackhi_epi16(lo, hi); /* y^2 */
        if (tanh) {
            v0 = _mm_sub_epi32(one2, v0);
            v1 = _mm_sub_epi32(one2, v1);
        } else { /* y 2^a_frac - y^2, y sign-extended */
            v0 = _mm_sub_epi32(_mm_sll_epi32(_mm_srai_epi32(_mm_unpacklo_epi16(yv, yv), 16), av), v0);
            v1 = _mm_sub_epi32(_mm_sll_epi32(_mm_srai_epi32(_mm_unpackhi_epi16(yv, yv), 16), av), v1);
        }
        v0 = _mm_sll_epi32(_mm_srl_epi32(_mm_add_epi32(v0, half), srv), slv);
        v1 = _mm_sll_epi32(_mm_srl_epi32(_mm_add_epi32(v1, half), srv), slv);
        v0 = _mm_srai_epi32(_mm_slli_epi32(v0, 16), 16);
        v1 = _mm_srai_epi32(_mm_slli_epi32(v1, 16), 16);
        _mm_storeu_si128((__m128i *)(void *)(f + i), _mm_packs_epi32(v0, v1));
    }
}
#define EBP_HAVE_ARCH_DERIV 1

/* m[0..1] = |s| f for two int64 lanes s and f < 2^16 in the low words of the lanes of fq (exact: |s| f < 2^64),
 * from two PMULUDQ of the 32-bit halves of |s|, also OR-ed into *acc; returns bit j set if s_j < 0 */
EBP_X86_INLINE uint32_t ebp_x86_absmul2(__m128i s, __m128i fq, uint64_t *m, __m128i *acc) {
    const __m128i neg = _mm_shuffle_epi32(_mm_srai_epi32(s, 31), 0xF5); /* the high words' signs, both halves */
    const __m128i a = _mm_sub_epi64(_mm_xor_si128(s, neg), neg);
    const __m128i p = _mm_add_epi64(_mm_mul_epu32(a, fq), _mm_slli_epi64(_mm_mul_epu32(_mm_srli_epi64(a, 32), fq), 32));
    _mm_storeu_si128((__m128i *)(void *)m, p);
    *acc = _mm_or_si128(*acc, p);
    return (uint32_t)_mm_movemask_pd(_mm_castsi128_pd(neg));
}

/*
 * The magnitudes and signs of the hidden raw deltas (hidden_pass in csrc/core/ebp_dense.c) for n neurons, SSE2:
 * per neuron i the exact
 *     s_i = sum_k w[k stride + i] d[k] (k < nk),  m[i] = |s_i| f[i],  bit i of signs: s_i < 0
 * (f[i] <= 2^15; hidden_pass takes the sign of s_i f[i], which differs only where m[i] = 0, whose sign no
 * delta shows). 8 neurons a step, two rows k, k + 1 at a time: PMADDWD of their interleaved weights with the pair
 * d[k], d[k+1] gives w_k d[k] + w_k+1 d[k+1] per neuron, in [-2^31 + 2^16, 2^31], sign-extended as in
 * ebp_x86_dot16 into four pairs of 64-bit sums (PADDQ); an odd last row by PMULLW/PMULHW, its exact 32-bit
 * products; then ebp_x86_absmul2. The last n % 8 neurons take the scalar rule. Writes every word of signs that
 * holds one of the n bits; returns the OR of every m[i] (whose bit length is that of their largest).
 */
EBP_X86_INLINE uint64_t ebp_x86_hidden_mag(const int16_t *w, const int16_t *d, uint32_t nk, uint32_t stride,
                                       const uint16_t *f, uint32_t n, uint64_t *m, uint32_t *signs) {
    const __m128i zero = _mm_setzero_si128();
    const uint32_t n8 = n & ~7u;
    __m128i orv = zero;
    uint64_t all;
    uint32_t i, k;
    for (i = 0; i < (n + 31u) / 32u; i++) signs[i] = 0;
    for (i = 0; i < n8; i += 8) {
        const int16_t *wk = w + i;
        __m128i s0 = zero, s1 = zero, s2 = zero, s3 = zero, fv, f0, f1;
        uint32_t bits;
        for (k = 0; k + 1u < nk; k += 2, wk += 2u * stride) {
            const __m128i w0 = _mm_loadu_si128((const __m128i *)(const void *)wk);
            const __m128i w1 = _mm_loadu_si128((const __m128i *)(const void *)(wk + stride));
            const uint32_t dk = (uint32_t)(uint16_t)d[k] | (uint32_t)(uint16_t)d[k + 1] << 16;
            const __m128i dv = _mm_set1_epi32((int32_t)dk);
            const __m128i p0 = _mm_madd_epi16(_mm_unpacklo_epi16(w0, w1), dv);
            const __m128i p1 = _mm_madd_epi16(_mm_unpackhi_epi16(w0, w1), dv);
            const __m128i g0 = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p0), zero); /* the high words */
            const __m128i g1 = _mm_cmpgt_epi32(_mm_sub_epi32(zero, p1), zero);
            s0 = _mm_add_epi64(s0, _mm_unpacklo_epi32(p0, g0));
            s1 = _mm_add_epi64(s1, _mm_unpackhi_epi32(p0, g0));
            s2 = _mm_add_epi64(s2, _mm_unpacklo_epi32(p1, g1));
            s3 = _mm_add_epi64(s3, _mm_unpackhi_epi32(p1, g1));
        }
        if (k < nk) { /* the last row of an odd count */
            const __m128i wv = _mm_loadu_si128((const __m128i *)(const void *)wk), dv = _mm_set1_epi16(d[k]);
            const __m128i lo = _mm_mullo_epi16(wv, dv), hi = _mm_mulhi_epi16(wv, dv);
            const __m128i p0 = _mm_unpacklo_epi16(lo, hi), p1 = _mm_unpackhi_epi16(lo, hi);
            const __m128i g0 = _mm_srai_epi32(p0, 31), g1 = _mm_srai_epi32(p1, 31);
            s0 = _mm_add_epi64(s0, _mm_unpacklo_epi32(p0, g0));
            s1 = _mm_add_epi64(s1, _mm_unpackhi_epi32(p0, g0));
            s2 = _mm_add_epi64(s2, _mm_unpacklo_epi32(p1, g1));
            s3 = _mm_add_epi64(s3, _mm_unpackhi_epi32(p1, g1));
        }
        fv = _mm_loadu_si128((const __m128i *)(const void *)(f + i));
        f0 = _mm_unpacklo_epi16(fv, zero);
        f1 = _mm_unpackhi_epi16(fv, zero);
        bits = ebp_x86_absmul2(s0, _mm_unpacklo_epi32(f0, zero), m + i, &orv);
        bits |= ebp_x86_absmul2(s1, _mm_unpackhi_epi32(f0, zero), m + i + 2, &orv) << 2;
        bits |= ebp_x86_absmul2(s2, _mm_unpacklo_epi32(f1, zero), m + i + 4, &orv) << 4;
        bits |= ebp_x86_absmul2(s3, _mm_unpackhi_epi32(f1, zero), m + i + 6, &orv) << 6;
        signs[i >> 5] |= bits << (i & 31u);
    }
    for (; i < n; i++) { /* the scalar rule */
        int64_t sum = 0;
        for (k = 0; k < nk; k++) sum += (int32_t)w[k * stride + i] * d[k];
        m[i] = (sum < 0 ? (uint64_t)0 - (uint64_t)sum : (uint64_t)sum) * f[i];
        if (sum < 0) signs[i >> 5] |= 1u << (i & 31u);
    }
    orv = _mm_or_si128(orv, _mm_unpackhi_epi64(orv, orv));
    all = (uint64_t)_mm_cvtsi128_si64(orv);
    for (i = n8; i < n; i++) all |= m[i];
    return all;
}

/* packed[i] = (uint16_t)(m[i] >> a) for n magnitudes below 2^(a+16) (0 <= a < 64), 8 a step: PSRLQ, the low
 * words gathered by SHUFPS, moved by -2^15 into PACKSSDW's range (exact) and back by PXOR; returns the largest
 * packed[i] (PMAXSW of the moved values) */
EBP_X86_INLINE uint32_t ebp_x86_pack16(uint16_t *packed, const uint64_t *m, uint32_t n, int a) {
    const __m128i av = _mm_cvtsi32_si128(a), bias = _mm_set1_epi32(32768), flip = _mm_set1_epi16((int16_t)0x8000);
    __m128i mx = flip; /* -2^15: packed 0 */
    uint32_t i, top;
    for (i = 0; i + 8u <= n; i += 8) {
        const __m128i v0 = _mm_srl_epi64(_mm_loadu_si128((const __m128i *)(const void *)(m + i)), av);
        const __m128i v1 = _mm_srl_epi64(_mm_loadu_si128((const __m128i *)(const void *)(m + i + 2)), av);
        const __m128i v2 = _mm_srl_epi64(_mm_loadu_si128((const __m128i *)(const void *)(m + i + 4)), av);
        const __m128i v3 = _mm_srl_epi64(_mm_loadu_si128((const __m128i *)(const void *)(m + i + 6)), av);
        const __m128i lo = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(v0), _mm_castsi128_ps(v1), 0x88));
        const __m128i hi = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(v2), _mm_castsi128_ps(v3), 0x88));
        const __m128i p = _mm_packs_epi32(_mm_sub_epi32(lo, bias), _mm_sub_epi32(hi, bias));
        mx = _mm_max_epi16(mx, p);
        _mm_storeu_si128((__m128i *)(void *)(packed + i), _mm_xor_si128(p, flip));
    }
    mx = _mm_max_epi16(mx, _mm_shuffle_epi32(mx, 0x4E));
    mx = _mm_max_epi16(mx, _mm_shuffle_epi32(mx, 0xB1));
    mx = _mm_max_epi16(mx, _mm_shufflelo_epi16(mx, 0xB1));
    top = (uint32_t)(uint16_t)_mm_extract_epi16(_mm_xor_si128(mx, flip), 0);
    for (; i < n; i++) {
        packed[i] = (uint16_t)(m[i] >> a);
        if (packed[i] > top) top = packed[i];
    }
    return top;
}
#define EBP_HAVE_ARCH_PACK16 1
#define EBP_HAVE_ARCH_HIDDEN_MAG 1

/*
 * The mantissas of unpack_delta (csrc/core/ebp_backward.c) with a right shift, for n neurons (8 divides n): from
 * the packed magnitudes p = (uint16_t)d[i] and bit i of the sign words,
 *     d[i] = +-floor((p + 2^(sh-1)) / 2^sh)    (1 <= sh <= 16; negative where the bit is set),
 * 8 a step: PAVGW with 2^(sh-1) - 1 gives floor((p + 2^(sh-1)) / 2) with no carry out of 16 bits, PSRLW by sh - 1
 * the rest; the 8 sign bits, broadcast, become lane masks (PCMPEQW against 1, 2, ..., 128), applied by PXOR and
 * PSUBW (the mantissa is below 2^15).
 */
EBP_X86_INLINE void ebp_x86_unpack(int16_t *d, uint32_t n, const uint32_t *signs, int sh) {
    const __m128i c = _mm_set1_epi16((int16_t)(((uint32_t)1 << (sh - 1)) - 1u)), shv = _mm_cvtsi32_si128(sh - 1);
    const __m128i bit = _mm_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128);
    uint32_t i;
    for (i = 0; i < n; i += 8) {
        const uint32_t byte = (signs[i >> 5] >> (i & 31u)) & 0xFFu;
        const __m128i p = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
        const __m128i m = _mm_srl_epi16(_mm_avg_epu16(p, c), shv);
        const __m128i neg = _mm_cmpeq_epi16(_mm_and_si128(_mm_set1_epi16((int16_t)byte), bit), bit);
        _mm_storeu_si128((__m128i *)(void *)(d + i), _mm_sub_epi16(_mm_xor_si128(m, neg), neg));
    }
}
#define EBP_HAVE_ARCH_UNPACK 1

#endif /* EBP_X86_SSE2 */

#endif /* EBP_ARCH_X86_H */
