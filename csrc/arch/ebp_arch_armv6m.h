/*
 * ebp_arch_armv6m.h - the ARMv6-M kernels (Cortex-M0, M0+): Thumb-1 inline assembly in the 8 low registers.
 * Included by ebp_arch_arm.h (the structs they share with csrc/core are there); each kernel names the plain rule it
 * reproduces.
 */
#ifndef EBP_ARCH_ARMV6M_H
#define EBP_ARCH_ARMV6M_H

#if EBP_ARMV6M
/*
 * ebp_arm_fwd_sigmoid on ARMv6-M (Cortex-M0/M0+) in Thumb-1 assembly, the same rules as the ARMv7-M one (and
 * sigmoid_neuron's 32-bit path): acc by ebp_arm_dot16's rule (one index over both arrays, MULS), two products a loop
 * step added in int32 first (each in (-2^30, 2^30]: their sum overflows only at 2^31, V, whose high word is then 0),
 * then the sum's sign extension by ADDS/ADCS: 7 instructions a multiply-accumulate (an odd n_in's first alone, 8);
 * then the fit test, |acc|, the table and both roundings
 * in the 8 low registers with the layer's constants on the stack: about 50 instructions a neuron besides the MACs
 * (GCC's loop around the dot product: about 100); the bias and the output addressed from one neuron offset k (from
 * y - y_end up to 0, on the stack) from b_end and y_end. A neuron whose acc leaves int32 stops it, as there. n_in >= 1.
 */
static inline void ebp_arm_fwd_sigmoid(ebp_arm_fwd_t *p) {
    __asm__ volatile(".syntax unified\n\t"
                     "push {r0-r7}\n\t"
                     "sub sp, #48\n\t" /* [sp]: p, b_end, k, y_end, 2 n_in, in_frac, s, 2^(s-1), sh, 2^(sh-1), tab, sat */
                     "mov r3, %[p]\n\t"
                     "str r3, [sp, #0]\n\t"
                     "ldr r4, [r3, #8]\n\t"
                     "ldr r5, [r3, #12]\n\t"
                     "str r5, [sp, #12]\n\t"
                     "subs r4, r4, r5\n\t" /* k: the neuron, y - y_end in bytes */
                     "str r4, [sp, #8]\n\t"
                     "ldr r7, [r3, #4]\n\t"
                     "subs r7, r7, r4\n\t" /* b_end = b - k */
                     "str r7, [sp, #4]\n\t"
                     "ldr r4, [r3, #20]\n\t"
                     "lsls r4, r4, #1\n\t"
                     "str r4, [sp, #16]\n\t"
                     "ldr r6, [r3, #16]\n\t" /* r6: the inputs' end */
                     "adds r6, r6, r4\n\t"
                     "ldr r4, [r3, #24]\n\t"
                     "str r4, [sp, #20]\n\t"
                     "ldr r4, [r3, #28]\n\t"
                     "str r4, [sp, #24]\n\t"
                     "subs r4, r4, #1\n\t"
                     "movs r5, #1\n\t"
                     "lsls r5, r4\n\t"
                     "str r5, [sp, #28]\n\t"
                     "ldr r4, [r3, #32]\n\t"
                     "str r4, [sp, #32]\n\t"
                     "subs r4, r4, #1\n\t"
                     "movs r5, #1\n\t"
                     "lsls r5, r4\n\t"
                     "str r5, [sp, #36]\n\t"
                     "ldr r4, [r3, #52]\n\t"
                     "str r4, [sp, #40]\n\t"
                     "ldr r4, [r3, #36]\n\t"
                     "str r4, [sp, #44]\n\t"
                     "ldr r5, [r3, #0]\n" /* r5: the row's weights (then their end) */
                     "10:\n\t" /* a neuron: r0, r1 = b 2^in_frac */
                     "ldr r3, [sp, #4]\n\t"
                     "ldr r4, [sp, #8]\n\t"
                     "ldrsh r0, [r3, r4]\n\t"
                     "ldr r4, [sp, #20]\n\t"
                     "lsls r0, r4\n\t"
                     "asrs r1, r0, #31\n\t"
                     "ldr r4, [sp, #16]\n\t"
                     "adds r5, r5, r4\n\t"
                     "negs r2, r4\n\t"
                     "lsls r4, r4, #30\n\t" /* N: n_in odd, its first product alone */
                     "bpl 11f\n\t"
                     "ldrsh r3, [r5, r2]\n\t"
                     "ldrsh r4, [r6, r2]\n\t"
                     "muls r3, r4, r3\n\t"
                     "asrs r4, r3, #31\n\t"
                     "adds r0, r0, r3\n\t"
                     "adcs r1, r1, r4\n\t"
                     "adds r2, r2, #2\n\t"
                     "beq 13f\n"
                     "11:\n\t" /* two products, their int32 sum (V: it is 2^31), its sign extension */
                     "ldrsh r3, [r5, r2]\n\t"
                     "ldrsh r4, [r6, r2]\n\t"
                     "muls r3, r4, r3\n\t"
                     "adds r2, r2, #2\n\t"
                     "ldrsh r4, [r5, r2]\n\t"
                     "ldrsh r7, [r6, r2]\n\t"
                     "muls r4, r7, r4\n\t"
                     "adds r3, r3, r4\n\t"
                     "bvs 14f\n\t"
                     "asrs r4, r3, #31\n"
                     "15:\n\t"
                     "adds r0, r0, r3\n\t"
                     "adcs r1, r1, r4\n\t"
                     "adds r2, r2, #2\n\t"
                     "bne 11b\n"
                     "13:\n\t"
                     "asrs r3, r0, #31\n\t"
                     "cmp r3, r1\n\t"
                     "bne 40f\n\t" /* acc outside int32 */
                     "eors r0, r1\n\t" /* |acc| (r1 = 0 or -1) */
                     "subs r0, r0, r1\n\t"
                     "ldr r3, [sp, #28]\n\t"
                     "adds r0, r0, r3\n\t"
                     "ldr r3, [sp, #24]\n\t"
                     "lsrs r0, r3\n\t" /* a = |z|, Q12 */
                     "lsrs r3, r0, #16\n\t"
                     "bne 41f\n\t"
                     "lsrs r3, r0, #8\n\t"
                     "lsls r3, r3, #1\n\t"
                     "ldr r4, [sp, #40]\n\t"
                     "adds r4, r4, r3\n\t"
                     "ldrh r3, [r4, #0]\n\t"
                     "ldrh r4, [r4, #2]\n\t"
                     "subs r4, r4, r3\n\t"
                     "uxtb r0, r0\n\t"
                     "muls r4, r0, r4\n\t"
                     "adds r4, #128\n\t"
                     "lsrs r4, r4, #8\n\t"
                     "adds r0, r3, r4\n" /* v */
                     "42:\n\t"
                     "cmp r1, #0\n\t"
                     "beq 43f\n\t"
                     "movs r3, #1\n\t"
                     "lsls r3, r3, #16\n\t"
                     "subs r0, r3, r0\n" /* 1 - v for negative z */
                     "43:\n\t"
                     "ldr r3, [sp, #36]\n\t"
                     "adds r0, r0, r3\n\t"
                     "ldr r3, [sp, #32]\n\t"
                     "lsrs r0, r3\n\t"
                     "lsrs r3, r0, #15\n\t" /* q <= 2^15: q = 2^15 iff bit 15 */
                     "bne 44f\n"
                     "45:\n\t"
                     "ldr r3, [sp, #8]\n\t"
                     "ldr r4, [sp, #12]\n\t"
                     "strh r0, [r4, r3]\n\t"
                     "adds r3, #2\n\t"
                     "str r3, [sp, #8]\n\t"
                     "bne 10b\n\t"
                     "movs r3, #0\n\t"
                     "b 50f\n"
                     "14:\n\t" /* the pair's sum is 2^31 (both products (-2^15)^2): its high word 0 */
                     "movs r4, #0\n\t"
                     "b 15b\n"
                     "41:\n\t" /* a >= 16.0: v = 65535 */
                     "movs r0, #1\n\t"
                     "lsls r0, r0, #16\n\t"
                     "subs r0, r0, #1\n\t"
                     "b 42b\n"
                     "44:\n\t" /* +1.0 clipped */
                     "ldr r3, [sp, #44]\n\t"
                     "adds r3, #1\n\t"
                     "str r3, [sp, #44]\n\t"
                     "subs r0, r0, #1\n\t"
                     "b 45b\n"
                     "40:\n\t"
                     "ldr r3, [sp, #0]\n\t"
                     "str r0, [r3, #40]\n\t"
                     "str r1, [r3, #44]\n\t"
                     "movs r3, #1\n"
                     "50:\n\t"
                     "ldr r4, [sp, #0]\n\t"
                     "str r3, [r4, #48]\n\t"
                     "str r5, [r4, #0]\n\t"
                     "lsls r3, r3, #1\n\t"
                     "ldr r0, [sp, #8]\n\t"
                     "adds r3, r3, r0\n\t"
                     "ldr r1, [sp, #4]\n\t"
                     "adds r3, r3, r1\n\t"
                     "str r3, [r4, #4]\n\t" /* b = b_end + k, past the stopping neuron\'s */
                     "ldr r3, [sp, #12]\n\t"
                     "adds r3, r3, r0\n\t"
                     "str r3, [r4, #8]\n\t" /* y = y_end + k */
                     "ldr r3, [sp, #44]\n\t"
                     "str r3, [r4, #36]\n\t"
                     "add sp, #48\n\t"
                     "pop {r0-r7}\n\t"
                     ".syntax divided\n"
                     :
                     : [p] "l"(p)
                     : "cc", "memory");
}
#define EBP_HAVE_ARCH_FWD_SIGMOID 1
#define EBP_ARM_FWD_MIN_IN 1u
#endif

#if EBP_ARMV6M
/*
 * ARMv6-M (Cortex-M0/M0+) row of the stochastic online update with the counters compiled out (EBP_STATS=0) in
 * assembly: GCC's Thumb-1 code for the portable row spills its 10 live values out of the 8 low registers. It
 * reproduces, for i = 0..n-1 in order (*rng: the row's Weyl sequence),
 *     q = ebp_rshift_sr32(dl * a[i], S, *rng); w[i] = ebp_sat16(w[i] - q); *rng += EBP_WEYL
 * as q = floor((dl a[i] + (r >> (32 - S))) / 2^S) by MULS, ADDS and ASRS (|dl a[i]| <= 2^30, the draw < 2^S:
 * no wrap), with one index counting up to 0 over both arrays and a saturation branch taken only when
 * sign-extending the new weight's low 16 bits changes it. Seven low registers (r7 may be the frame pointer), dl, S
 * and EBP_WEYL in memory (one LDR, as a MOV would be). n >= 1, 1 <= S <= 30. (With EBP_STATS=1 the whole row loop
 * is ebp_arm_rows_sr_wrap below.)
 * GCC assembles Thumb-1 inline assembly in divided syntax: each block switches to unified syntax and back.
 */
#define EBP_ARM_SR_ROW_HEAD                                                                                  \
    ".syntax unified\n"                                                                                       \
    "1:\n\t"                                                                                                  \
    "ldrsh %[t2], [%[ab], %[i]]\n\t"                                                                         \
    "ldr %[t1], %[dl]\n\t"                                                                                   \
    "muls %[t2], %[t1], %[t2]\n\t"                                                                           \
    "movs %[t1], %[x]\n\t"                                                                                   \
    "lsrs %[t1], %[t1], %[rs]\n\t"                                                                           \
    "adds %[t2], %[t2], %[t1]\n\t"                                                                           \
    "ldr %[t1], %[K]\n\t" /* the next value of the Weyl sequence */                                         \
    "adds %[x], %[x], %[t1]\n\t"                                                                             \
    "ldr %[t1], %[S]\n\t"                                                                                    \
    "asrs %[t2], %[t2], %[t1]\n\t"

#define EBP_ARM_SR_ROW_TAIL                                                                                  \
    "ldrsh %[t1], [%[wb], %[i]]\n\t"                                                                         \
    "subs %[t1], %[t1], %[t2]\n\t"                                                                           \
    "sxth %[t2], %[t1]\n\t"                                                                                  \
    "cmp %[t2], %[t1]\n\t"                                                                                   \
    "bne 3f\n"                                                                                                \
    "5:\n\t"                                                                                                  \
    "strh %[t1], [%[wb], %[i]]\n\t"                                                                          \
    "adds %[i], %[i], #2\n\t"                                                                                \
    "bne 1b\n\t"                                                                                             \
    "b 6f\n"                                                                                                  \
    "3:\n\t" /* clipped: +-32767 or -32768 by the sign of the new weight */                                  \
    EBP_ARM_SR_CLIP                                                                                          \
    "movs %[t2], #1\n\t"                                                                                     \
    "lsls %[t2], %[t2], #15\n\t"                                                                             \
    "subs %[t2], %[t2], #1\n\t"                                                                              \
    "cmp %[t1], #0\n\t"                                                                                      \
    "bge 4f\n\t"                                                                                             \
    "mvns %[t2], %[t2]\n"                                                                                    \
    "4:\n\t"                                                                                                  \
    "movs %[t1], %[t2]\n\t"                                                                                  \
    "b 5b\n"                                                                                                  \
    "6:\n\t"                                                                                                  \
    ".syntax divided\n"

static inline void ebp_arm_row_sr(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
    int32_t i = -2 * (int32_t)n, t1, t2;
    uint32_t x = *rng;
    const uint32_t K = EBP_WEYL;
    const int rs = 32 - S;
#define EBP_ARM_SR_CLIP ""
    __asm__ volatile(EBP_ARM_SR_ROW_HEAD EBP_ARM_SR_ROW_TAIL
                     : [x] "+l"(x), [i] "+l"(i), [t1] "=&l"(t1), [t2] "=&l"(t2)
                     : [wb] "l"(w + n), [ab] "l"(a + n), [S] "m"(S), [rs] "l"(rs), [dl] "m"(dl), [K] "m"(K)
                     : "cc", "memory");
#undef EBP_ARM_SR_CLIP
    *rng = x;
}
#define EBP_HAVE_ARCH_ROW_SR 1

/* one weight of ebp_arm_rows_sr_wrap's ARMv6-M row loop (z: the label past its update, c: its clip's) */
#define EBP_ARM_SR_WEIGHT6(z, c)                                                                             \
    "ldrsh r0, [r3, r2]\n\t"                                                                                \
    "muls r0, r5, r0\n\t"                                                                                   \
    "mov r1, r8\n\t"                                                                                        \
    "lsrs r1, r6\n\t"                                                                                       \
    "adds r0, r0, r1\n\t"                                                                                   \
    "add r8, r9\n\t"                                                                                        \
    "asrs r0, r7\n\t" /* q */                                                                              \
    "beq " z "f\n\t"                                                                                        \
    "add r10, r9\n\t"                                                                                       \
    "ldrsh r1, [r4, r2]\n\t"                                                                                \
    "subs r1, r1, r0\n\t"                                                                                   \
    "strh r1, [r4, r2]\n\t"                                                                                 \
    "sxth r0, r1\n\t"                                                                                       \
    "cmp r0, r1\n\t"                                                                                        \
    "bne " c "f\n"                                                                                           \
    z ":\n\t"                                                                                               \
    "adds r2, #2\n\t"

/*
 * ebp_arm_rows_sr_wrap on ARMv6-M (Cortex-M0/M0+) in Thumb-1 assembly: update_rows_nonneg_sr's loop over a layer's
 * rows with the statistics (EBP_STATS=1), the same rule, state and flag/repair protocol as the ARMv7-M one. For each
 * row from p->d on: skipped when delta = 0 (counted on the stack: rows is the rows passed less those); else
 * dl = ebp_rshift_rn32(delta lr_m, 16) as floor((floor((v - [v < 0]) / 2^15) + 1) / 2), v = delta lr_m (|v| < 2^31:
 * lr_m < 2^16; ASRS, ADDS, ASRS, ADDS, ASRS); skipped when dl = 0 (no draw); else one xorshift32 draw r0 (the state
 * on the stack) and, in order, each weight then the bias (product dl 2^in_frac)
 *     q = floor((dl a[i] + (r >> (32 - S))) / 2^S)   by MULS, LSRS, ADDS, ASRS; r = r0 + i EBP_WEYL (one ADD)
 *     q = 0: nothing stored (the weight keeps its value);  else w[i] = the low 16 bits of w[i] - q (STRH)
 * with a clip (SXTH of the new value differs from it) marking the row: the loop ends after it (d_end := d) with
 * flagged = 1, that row's bias, dl (recomputed from its delta) and draw (x0), w and d past it, for the caller's repair
 * (fix_row_sr_any); at d_end flagged = 0. The non-zero updates are counted in units of EBP_WEYL (ADD of the register
 * holding it, no low register spent), nz += that sum times EBP_WEYL^-1 mod 2^32 (EBP_WEYL is odd: the count exactly).
 * Four weights a loop step (n_in mod 4 = 3, 2, 1 enters at the second, third, fourth weight): 16 instructions a
 * weight with q != 0, 9 with q = 0, and one loop branch every four (ebp_arm_row_sr_count and its C caller: about
 * 21, and some 60 a row). Registers: r0, r1 scratch, r2 the offset
 * into the row (-2 n_in .. 0; 0 between rows), r3 the inputs' end, r4 the row's weights' end, r5 dl, r6 32 - S, r7 S,
 * r8 the row's Weyl sequence, r9 EBP_WEYL, r10 the non-zero updates times EBP_WEYL, r11 2 n_in, r12 d, lr d_end; the
 * rest on the stack. Every register is saved and restored. p->d != p->d_end, n_in >= 1, 1 <= S <= 30.
 */
static inline void ebp_arm_rows_sr_wrap(ebp_arm_rows_t *p) {
    __asm__ volatile(".syntax unified\n\t"
                     "push {r0-r7}\n\t"
                     "mov r7, %[p]\n\t"
                     "mov r0, r8\n\t"
                     "mov r1, r9\n\t"
                     "mov r2, r10\n\t"
                     "mov r3, r11\n\t"
                     "mov r4, r12\n\t"
                     "mov r5, lr\n\t"
                     "push {r0-r5}\n\t"
                     "sub sp, #32\n\t" /* [sp]: p, lr_m, in_frac, x, b - d - 2, rows with delta = 0, the clip mark,
                                          d at entry */
                     "str r7, [sp, #0]\n\t"
                     "ldr r0, [r7, #24]\n\t"
                     "str r0, [sp, #4]\n\t"
                     "ldr r0, [r7, #32]\n\t"
                     "str r0, [sp, #8]\n\t"
                     "ldr r0, [r7, #36]\n\t"
                     "str r0, [sp, #12]\n\t"
                     "ldr r0, [r7, #8]\n\t"
                     "str r0, [sp, #28]\n\t"
                     "mov r12, r0\n\t"
                     "ldr r1, [r7, #4]\n\t"
                     "subs r1, r1, r0\n\t"
                     "subs r1, #2\n\t"
                     "str r1, [sp, #16]\n\t"
                     "movs r2, #0\n\t"
                     "str r2, [sp, #20]\n\t"
                     "str r2, [sp, #24]\n\t"
                     "mov r10, r2\n\t"
                     "ldr r0, [r7, #12]\n\t"
                     "mov lr, r0\n\t"
                     "ldr r0, [r7, #20]\n\t"
                     "lsls r0, r0, #1\n\t"
                     "mov r11, r0\n\t"
                     "ldr r3, [r7, #16]\n\t"
                     "adds r3, r3, r0\n\t"
                     "ldr r4, [r7, #0]\n\t" /* the previous row's end */
                     "ldr r0, [r7, #28]\n\t"
                     "movs r6, #32\n\t"
                     "subs r6, r6, r0\n\t"
                     "movs r7, r0\n\t"
                     "ldr r0, 97f\n\t"
                     "mov r9, r0\n"
                     "10:\n\t" /* a row */
                     "add r4, r11\n\t"
                     "mov r0, r12\n\t"
                     "ldrsh r1, [r0, r2]\n\t"
                     "adds r0, #2\n\t"
                     "mov r12, r0\n\t"
                     "cmp r1, #0\n\t"
                     "beq 17f\n\t"
                     "ldr r0, [sp, #4]\n\t"
                     "muls r1, r0, r1\n\t"
                     "asrs r0, r1, #31\n\t"
                     "adds r1, r1, r0\n\t"
                     "asrs r1, r1, #15\n\t"
                     "adds r1, #1\n\t"
                     "asrs r5, r1, #1\n\t" /* dl */
                     "beq 19f\n\t"
                     "ldr r0, [sp, #12]\n\t" /* the row's draw, its Weyl sequence's start */
                     "lsls r1, r0, #13\n\t"
                     "eors r0, r1\n\t"
                     "lsrs r1, r0, #17\n\t"
                     "eors r0, r1\n\t"
                     "lsls r1, r0, #5\n\t"
                     "eors r0, r1\n\t"
                     "str r0, [sp, #12]\n\t"
                     "mov r8, r0\n\t"
                     "mov r1, r11\n\t"
                     "negs r2, r1\n\t"
                     "lsls r1, r1, #29\n\t" /* Z: 4 | n_in; else N: n_in & 2, then (LSLS #1) n_in & 1 */
                     "bne 16f\n"
                     "12:\n\t"
                     EBP_ARM_SR_WEIGHT6("21", "31")
                     "13:\n\t"
                     EBP_ARM_SR_WEIGHT6("22", "32")
                     "14:\n\t"
                     EBP_ARM_SR_WEIGHT6("23", "33")
                     "15:\n\t"
                     EBP_ARM_SR_WEIGHT6("24", "34")
                     "bne 12b\n\t"
                     "ldr r0, [sp, #8]\n\t" /* the bias: dl 2^in_frac */
                     "movs r1, r5\n\t"
                     "lsls r1, r0\n\t"
                     "mov r0, r8\n\t"
                     "lsrs r0, r6\n\t"
                     "adds r1, r1, r0\n\t"
                     "asrs r1, r7\n\t"
                     "beq 19f\n\t"
                     "add r10, r9\n\t"
                     "ldr r0, [sp, #16]\n\t"
                     "add r0, r12\n\t"
                     "ldrsh r5, [r0, r2]\n\t"
                     "subs r5, r5, r1\n\t"
                     "strh r5, [r0]\n\t"
                     "sxth r1, r5\n\t"
                     "cmp r1, r5\n\t"
                     "bne 35f\n"
                     "19:\n\t"
                     "cmp r12, lr\n\t"
                     "bne 10b\n\t"
                     "b 40f\n"
                     "17:\n\t" /* delta = 0: counted, the next row */
                     "ldr r0, [sp, #20]\n\t"
                     "adds r0, #1\n\t"
                     "str r0, [sp, #20]\n\t"
                     "b 19b\n"
                     "16:\n\t" /* 4 does not divide n_in: enter at weight 4 - n_in mod 4 of the four */
                     "bmi 18f\n\t"
                     "b 15b\n"
                     "18:\n\t"
                     "lsls r1, r1, #1\n\t"
                     "bmi 13b\n\t"
                     "b 14b\n"
                     "31:\n\t" /* a clip: this row is the last (d_end := d, past it), marked */
                     "str r1, [sp, #24]\n\t"
                     "mov lr, r12\n\t"
                     "b 21b\n"
                     "32:\n\t"
                     "str r1, [sp, #24]\n\t"
                     "mov lr, r12\n\t"
                     "b 22b\n"
                     "33:\n\t"
                     "str r1, [sp, #24]\n\t"
                     "mov lr, r12\n\t"
                     "b 23b\n"
                     "34:\n\t"
                     "str r1, [sp, #24]\n\t"
                     "mov lr, r12\n\t"
                     "b 24b\n"
                     "35:\n\t"
                     "str r5, [sp, #24]\n\t"
                     "mov lr, r12\n\t"
                     "b 19b\n"
                     "40:\n\t"
                     "ldr r7, [sp, #0]\n\t"
                     "str r4, [r7, #0]\n\t"
                     "mov r0, r12\n\t"
                     "str r0, [r7, #8]\n\t"
                     "ldr r1, [sp, #12]\n\t" /* the state: the last row's draw */
                     "str r1, [r7, #36]\n\t"
                     "str r1, [r7, #52]\n\t"
                     "ldr r1, 98f\n\t" /* nz: the sum times EBP_WEYL^-1 */
                     "mov r2, r10\n\t"
                     "muls r1, r2, r1\n\t"
                     "ldr r2, [r7, #40]\n\t"
                     "adds r2, r2, r1\n\t"
                     "str r2, [r7, #40]\n\t"
                     "ldr r1, [sp, #28]\n\t" /* rows: those passed, less those with delta = 0 */
                     "subs r1, r0, r1\n\t"
                     "lsrs r1, r1, #1\n\t"
                     "ldr r2, [sp, #20]\n\t"
                     "subs r1, r1, r2\n\t"
                     "ldr r2, [r7, #44]\n\t"
                     "adds r2, r2, r1\n\t"
                     "str r2, [r7, #44]\n\t"
                     "ldr r1, [sp, #16]\n\t" /* b: the marked row's bias, else the next row's */
                     "adds r1, r1, r0\n\t"
                     "ldr r2, [sp, #24]\n\t"
                     "cmp r2, #0\n\t"
                     "bne 41f\n\t"
                     "adds r1, #2\n\t"
                     "str r1, [r7, #4]\n\t"
                     "str r2, [r7, #56]\n\t"
                     "b 42f\n"
                     "41:\n\t"
                     "str r1, [r7, #4]\n\t"
                     "movs r2, #1\n\t"
                     "str r2, [r7, #56]\n\t"
                     "subs r0, #2\n\t" /* its dl again, from its delta */
                     "movs r1, #0\n\t"
                     "ldrsh r1, [r0, r1]\n\t"
                     "ldr r0, [sp, #4]\n\t"
                     "muls r1, r0, r1\n\t"
                     "asrs r0, r1, #31\n\t"
                     "adds r1, r1, r0\n\t"
                     "asrs r1, r1, #15\n\t"
                     "adds r1, #1\n\t"
                     "asrs r1, r1, #1\n\t"
                     "str r1, [r7, #48]\n"
                     "42:\n\t"
                     "add sp, #32\n\t"
                     "pop {r0-r5}\n\t"
                     "mov r8, r0\n\t"
                     "mov r9, r1\n\t"
                     "mov r10, r2\n\t"
                     "mov r11, r3\n\t"
                     "mov r12, r4\n\t"
                     "mov lr, r5\n\t"
                     "pop {r0-r7}\n\t"
                     "b 99f\n\t"
                     ".align 2\n"
                     "97:\n\t"
                     ".word 0x9E3779B9\n" /* EBP_WEYL */
                     "98:\n\t"
                     ".word 0x144CBC89\n" /* its inverse mod 2^32 */
                     "99:\n\t"
                     ".syntax divided\n"
                     :
                     : [p] "l"(p)
                     : "cc", "memory");
}
#define EBP_HAVE_ARCH_ROWS_SR_WRAP 1
#endif

#if EBP_ARMV6M
/*
 * acc + sum_i w[i] x[i] exactly, as the portable dot16, on ARMv6-M in assembly: one index over both arrays
 * (LDRSH takes only a register offset), MULS for the 32-bit product, its sign extension added with ADDS/ADCS:
 * 8 instructions per multiply-accumulate against GCC's 12. Not inlined: the callers' registers stay theirs.
 */
__attribute__((noinline)) static int64_t ebp_arm_dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
    uint32_t lo = (uint32_t)(uint64_t)acc, hi = (uint32_t)((uint64_t)acc >> 32), t1, t2;
    int32_t i = -2 * (int32_t)n;
    if (n == 0) return acc;
    __asm__ volatile(".syntax unified\n"
                     "1:\n\t"
                     "ldrsh %[t1], [%[wb], %[i]]\n\t"
                     "ldrsh %[t2], [%[xb], %[i]]\n\t"
                     "muls %[t1], %[t2], %[t1]\n\t"
                     "asrs %[t2], %[t1], #31\n\t"
                     "adds %[lo], %[lo], %[t1]\n\t"
                     "adcs %[hi], %[hi], %[t2]\n\t"
                     "adds %[i], %[i], #2\n\t"
                     "bne 1b\n\t"
                     ".syntax divided\n"
                     : [lo] "+l"(lo), [hi] "+l"(hi), [i] "+l"(i), [t1] "=&l"(t1), [t2] "=&l"(t2)
                     : [wb] "l"(w + n), [xb] "l"(x + n)
                     : "cc", "memory");
    { /* the sum's 64 bits as an int64 (GCC converts modulo 2^64) */
        const uint64_t u = ((uint64_t)hi << 32) | lo;
        return (int64_t)u;
    }
}
#define EBP_HAVE_ARCH_DOT16 1
#endif

#if EBP_ARMV6M
/*
 * ebp_arm_hidden_pack on ARMv6-M (Cortex-M0/M0+) in Thumb-1 assembly, the same rules as the ARMv7-M one (hidden_pass
 * with signs): f_i into packed[i] first (MULS), then per neuron the sum over k (MULS, its sign extension added by
 * ADDS/ADCS), r = sum f_i from three 32-bit products (the sum's halves of 16 bits and its high word, as mul_u32_q15),
 * its sign bit, m = |r|, the running maximum (on the stack) and packed[i] = (m LSR a) | (hi LSL (32 - a)). Without
 * CLZ or RBIT: the sign bits enter the word from the left behind a sentinel bit, which a full word shifts out into C
 * (LSRS; the last partial word shifted right by 32 - n % 32), and bit_length of a new maximum by binary search.
 * A shift a >= 32 leaves it to the portable pass (ok = 0). About 62 instructions a neuron for nk = 2 (GCC's: some 115,
 * with the calls). Registers in the neuron loop: r0, r1 the sum then r (lo, hi); r2, r3, r5 scratch (r5 first the
 * column walk); r4 w - packed, r6 dk + nk, r7 the k offset then packed + i; r8 2 n (the next layer's row, bytes),
 * r9 a, r10 32 - a, r11 packed + n, r12 packed + i, lr the sign word. Every register is saved and restored.
 */
static inline void ebp_arm_hidden_pack(ebp_arm_hidden_t *p) {
    __asm__ volatile(".syntax unified\n\t"
                     "push {r0-r7}\n\t"
                     "mov r7, %[p]\n\t"
                     "mov r0, r8\n\t"
                     "mov r1, r9\n\t"
                     "mov r2, r10\n\t"
                     "mov r3, r11\n\t"
                     "mov r4, r12\n\t"
                     "mov r5, lr\n\t"
                     "push {r0-r5}\n\t"
                     "sub sp, #40\n\t" /* [sp]: p, -2 nk, maxabs (lo, hi), signs, packed, 32 - n % 32 (0 if 0), w - packed,
                                          dk + nk */
                     "str r7, [sp, #0]\n\t"
                     "ldr r0, [r7, #24]\n\t"
                     "lsls r0, r0, #1\n\t"
                     "ldr r1, [r7, #12]\n\t"
                     "adds r1, r1, r0\n\t"
                     "str r1, [sp, #32]\n\t"
                     "negs r0, r0\n\t"
                     "str r0, [sp, #4]\n\t"
                     "movs r0, #0\n\t"
                     "str r0, [sp, #8]\n\t"
                     "str r0, [sp, #12]\n\t"
                     "mov r9, r0\n\t"
                     "movs r1, #32\n\t"
                     "mov r10, r1\n\t"
                     "ldr r0, [r7, #16]\n\t"
                     "str r0, [sp, #16]\n\t"
                     "ldr r1, [r7, #4]\n\t"
                     "str r1, [sp, #20]\n\t"
                     "mov r12, r1\n\t"
                     "ldr r2, [r7, #8]\n\t"
                     "subs r2, r2, r1\n\t"
                     "str r2, [sp, #28]\n\t"
                     "ldr r0, [r7, #20]\n\t"
                     "lsls r2, r0, #27\n\t"
                     "lsrs r2, r2, #27\n\t"
                     "beq 1f\n\t"
                     "movs r3, #32\n\t"
                     "subs r2, r3, r2\n"
                     "1:\n\t"
                     "str r2, [sp, #24]\n\t"
                     "lsls r0, r0, #1\n\t"
                     "mov r8, r0\n\t"
                     "adds r1, r1, r0\n\t"
                     "mov r11, r1\n\t"
                     /* f into packed: r0 y's end, r1 packed's end, r2 the offset (-2 n .. 0), r3 kc, lr c, r4 sr, r5 sl */
                     "negs r2, r0\n\t"
                     "ldr r0, [r7, #0]\n\t"
                     "add r0, r8\n\t"
                     "ldr r3, [r7, #32]\n\t"
                     "mov lr, r3\n\t"
                     "ldr r3, [r7, #28]\n\t"
                     "ldr r4, [r7, #36]\n\t"
                     "ldr r5, [r7, #40]\n"
                     "2:\n\t"
                     "ldrsh r7, [r0, r2]\n\t"
                     "subs r6, r3, r7\n\t"
                     "muls r6, r7, r6\n\t"
                     "add r6, lr\n\t"
                     "lsrs r6, r4\n\t"
                     "lsls r6, r5\n\t"
                     "strh r6, [r1, r2]\n\t"
                     "adds r2, #2\n\t"
                     "bne 2b\n\t"
                     "movs r0, #1\n\t"
                     "lsls r0, r0, #31\n\t"
                     "mov lr, r0\n\t" /* the sentinel */
                     "ldr r4, [sp, #28]\n\t"
                     "ldr r6, [sp, #32]\n"
                     "10:\n\t" /* a neuron: the sum, its first product */
                     "mov r5, r12\n\t"
                     "ldr r7, [sp, #4]\n\t"
                     "ldrsh r0, [r4, r5]\n\t"
                     "ldrsh r3, [r6, r7]\n\t"
                     "muls r0, r3, r0\n\t"
                     "asrs r1, r0, #31\n\t"
                     "add r5, r8\n\t"
                     "adds r7, #2\n\t"
                     "beq 13f\n"
                     "11:\n\t"
                     "ldrsh r2, [r4, r5]\n\t"
                     "ldrsh r3, [r6, r7]\n\t"
                     "muls r2, r3, r2\n\t"
                     "asrs r3, r2, #31\n\t"
                     "adds r0, r0, r2\n\t"
                     "adcs r1, r1, r3\n\t"
                     "add r5, r8\n\t"
                     "adds r7, #2\n\t"
                     "bne 11b\n"
                     "13:\n\t"
                     "mov r7, r12\n\t"
                     "ldrh r2, [r7]\n\t" /* f */
                     "uxth r3, r0\n\t"
                     "muls r3, r2, r3\n\t"
                     "lsrs r5, r0, #16\n\t"
                     "muls r5, r2, r5\n\t"
                     "muls r1, r2, r1\n\t"
                     "lsls r0, r5, #16\n\t"
                     "lsrs r5, r5, #16\n\t"
                     "adds r0, r0, r3\n\t"
                     "adcs r1, r1, r5\n\t" /* r */
                     "lsrs r2, r1, #31\n\t"
                     "lsls r2, r2, #31\n\t" /* its sign bit, at bit 31 */
                     "mov r3, lr\n\t"
                     "lsrs r3, r3, #1\n\t" /* C: the sentinel left, a word of signs full */
                     "orrs r3, r3, r2\n\t"
                     "mov lr, r3\n\t"
                     "bcs 30f\n"
                     "31:\n\t"
                     "cmp r1, #0\n\t"
                     "bge 14f\n\t"
                     "negs r0, r0\n\t"
                     "sbcs r3, r3\n\t"
                     "subs r1, r3, r1\n" /* m = |r| */
                     "14:\n\t"
                     "ldr r2, [sp, #8]\n\t"
                     "subs r2, r2, r0\n\t"
                     "ldr r2, [sp, #12]\n\t"
                     "sbcs r2, r2, r1\n\t"
                     "bcc 20f\n" /* m > maxabs */
                     "21:\n\t"
                     "mov r2, r9\n\t"
                     "lsrs r0, r2\n\t"
                     "mov r2, r10\n\t"
                     "lsls r1, r2\n\t"
                     "orrs r0, r0, r1\n\t"
                     "strh r0, [r7]\n\t"
                     "adds r7, #2\n\t"
                     "mov r12, r7\n\t"
                     "cmp r7, r11\n\t"
                     "bne 10b\n\t"
                     "ldr r2, [sp, #24]\n\t" /* the last, partial word of signs */
                     "cmp r2, #0\n\t"
                     "beq 40f\n\t"
                     "mov r3, lr\n\t"
                     "lsrs r3, r2\n\t"
                     "ldr r2, [sp, #16]\n\t"
                     "str r3, [r2]\n"
                     "40:\n\t"
                     "movs r3, #1\n\t"
                     "b 50f\n"
                     "30:\n\t"
                     "ldr r2, [sp, #16]\n\t"
                     "stmia r2!, {r3}\n\t"
                     "str r2, [sp, #16]\n\t"
                     "movs r3, #1\n\t"
                     "lsls r3, r3, #31\n\t"
                     "mov lr, r3\n\t"
                     "b 31b\n"
                     "20:\n\t" /* a new maxabs: na = bit_length(m) - 16 by binary search */
                     "str r0, [sp, #8]\n\t"
                     "str r1, [sp, #12]\n\t"
                     "movs r3, r1\n\t"
                     "movs r2, #16\n\t"
                     "cmp r1, #0\n\t"
                     "bne 22f\n\t"
                     "movs r3, r0\n\t"
                     "subs r2, #32\n"
                     "22:\n\t"
                     "lsrs r5, r3, #16\n\t"
                     "beq 23f\n\t"
                     "movs r3, r5\n\t"
                     "adds r2, #16\n"
                     "23:\n\t"
                     "lsrs r5, r3, #8\n\t"
                     "beq 24f\n\t"
                     "movs r3, r5\n\t"
                     "adds r2, #8\n"
                     "24:\n\t"
                     "lsrs r5, r3, #4\n\t"
                     "beq 25f\n\t"
                     "movs r3, r5\n\t"
                     "adds r2, #4\n"
                     "25:\n\t"
                     "lsrs r5, r3, #2\n\t"
                     "beq 26f\n\t"
                     "movs r3, r5\n\t"
                     "adds r2, #2\n"
                     "26:\n\t"
                     "lsrs r5, r3, #1\n\t"
                     "beq 27f\n\t"
                     "movs r3, r5\n\t"
                     "adds r2, #1\n"
                     "27:\n\t"
                     "adds r2, r2, r3\n\t"
                     "mov r5, r9\n\t"
                     "cmp r2, r5\n\t"
                     "ble 21b\n\t"
                     "cmp r2, #32\n\t"
                     "bge 45f\n\t"
                     "subs r3, r2, r5\n\t" /* the earlier entries shifted on by na - a (>= 16: LSRS gives 0) */
                     "mov r9, r2\n\t"
                     "movs r5, #32\n\t"
                     "subs r5, r5, r2\n\t"
                     "mov r10, r5\n\t"
                     "ldr r5, [sp, #20]\n"
                     "28:\n\t"
                     "cmp r5, r7\n\t"
                     "beq 21b\n\t"
                     "ldrh r2, [r5]\n\t"
                     "lsrs r2, r3\n\t"
                     "strh r2, [r5]\n\t"
                     "adds r5, #2\n\t"
                     "b 28b\n"
                     "45:\n\t"
                     "movs r3, #0\n"
                     "50:\n\t"
                     "ldr r0, [sp, #0]\n\t"
                     "ldr r1, [sp, #8]\n\t"
                     "str r1, [r0, #44]\n\t"
                     "ldr r1, [sp, #12]\n\t"
                     "str r1, [r0, #48]\n\t"
                     "str r3, [r0, #52]\n\t"
                     "add sp, #40\n\t"
                     "pop {r0-r5}\n\t"
                     "mov r8, r0\n\t"
                     "mov r9, r1\n\t"
                     "mov r10, r2\n\t"
                     "mov r11, r3\n\t"
                     "mov r12, r4\n\t"
                     "mov lr, r5\n\t"
                     "pop {r0-r7}\n\t"
                     ".syntax divided\n"
                     :
                     : [p] "l"(p)
                     : "cc", "memory");
}
#define EBP_HAVE_ARCH_HIDDEN_PACK 1
#endif

#endif /* EBP_ARCH_ARMV6M_H */
