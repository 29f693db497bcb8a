/*
 * ebp_arch.h - which per-architecture kernels the core builds, chosen at compile time (the CMSIS-NN way).
 *
 * The portable C kernels in csrc/core/ are the reference: always built, always tested, the host's default.
 * Beside a portable kernel an architecture's kernel may stand, named after what it needs; each gives exactly
 * the portable kernel's integers (tests/golden, tests/test_kernels.py on the emulated boards) and says in one
 * comment which plain rule it reproduces:
 *
 *   EBP_ARMV7M   ARMv7-M and ARMv7E-M (Cortex-M3, M4, M7): the update rows, the sigmoid layer and the hidden raw
 *                deltas in Thumb-2 assembly, SSAT, ASR and MLA (ebp_arch_armv7m.h)
 *   EBP_ARM_DSP  ARMv7E-M with the DSP extension (Cortex-M4, M7): SMLALD, two 16-bit multiply-accumulates per
 *                instruction, in the forward dot products; the update rows on 16-bit pairs (ebp_arch_armv7m.h)
 *   EBP_ARMV6M   ARMv6-M (Cortex-M0, M0+): the same kernels in Thumb-1 assembly in the 8 low registers, bit_length
 *                without CLZ (ebp_arch_armv6m.h); both Arm architectures share ebp_arch_arm.h
 *   EBP_X86_SSE2 x86-64 (SSE2, its baseline), GCC or clang: the update rows, the forward sigmoid, the dot products
 *                and the hidden raw deltas 8 (or 4) lanes at a time (ebp_arch_x86.h)
 *
 * -DEBP_PORTABLE=1 forces the portable kernels everywhere (what tests/test_kernels.py compares against).
 *
 * EBP_STATS (default 1): 1 counts every statistic of ebp_layer_stats_t exactly, in the hot loops where needed.
 * 0 leaves the dense layers' online update's counters (updates, zero_updates, sat_param) at zero, so its rows
 * need neither the zero test nor the clip test; the weights are the same integers either way. The Python
 * extension, the firmware and the headline benchmarks build EBP_STATS=1 (the host and the device report the
 * same statistics); docs/benchmarks.md also shows EBP_STATS=0.
 */
#ifndef EBP_ARCH_H
#define EBP_ARCH_H

/* EBP_FAST_ROWS (default 1): the dense online update's fast rows for non-negative inputs (update_rows_nonneg,
 * update_rows_nonneg_sr in ebp_update.c). 0 runs the portable loop they reproduce for every input, with the same
 * integers: 4 KB less code, for a board short of flash (simavr-atmega328p: ~1% slower step with stochastic
 * rounding, ~8% with round to nearest; tools/step_bench/avr.py) */
#ifndef EBP_FAST_ROWS
#define EBP_FAST_ROWS 1
#endif

#ifndef EBP_PORTABLE
#define EBP_PORTABLE 0
#endif

#ifndef EBP_STATS
#define EBP_STATS 1
#endif

#if !EBP_PORTABLE && defined(__GNUC__) && defined(__thumb2__) && (defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__))
#define EBP_ARMV7M 1
#if defined(__ARM_FEATURE_DSP)
#define EBP_ARM_DSP 1
#endif
#elif !EBP_PORTABLE && defined(__GNUC__) && defined(__ARM_ARCH_6M__)
#define EBP_ARMV6M 1
#endif

#if !EBP_PORTABLE && defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__)
#define EBP_X86_SSE2 1
#else
#define EBP_X86_SSE2 0
#endif

#ifndef EBP_ARMV7M
#define EBP_ARMV7M 0
#endif
#ifndef EBP_ARM_DSP
#define EBP_ARM_DSP 0
#endif
#ifndef EBP_ARMV6M
#define EBP_ARMV6M 0
#endif

/* the name of the kernel set, for the benchmarks and HELLO-style reports */
#if EBP_ARM_DSP
#define EBP_KERNELS "armv7e-m+dsp"
#elif EBP_ARMV7M
#define EBP_KERNELS "armv7-m"
#elif EBP_ARMV6M
#define EBP_KERNELS "armv6-m"
#elif EBP_X86_SSE2
#define EBP_KERNELS "x86-64+sse2"
#else
#define EBP_KERNELS "portable"
#endif

#endif /* EBP_ARCH_H */
