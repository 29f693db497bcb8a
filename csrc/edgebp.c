/*
 * edgebp.c - the whole core as one translation unit (an amalgamation of the files in csrc/core/, the way SQLite ships
 * one file): build this file, or every core/ebp_*.c file, never both. The API, the number formats and the
 * memory layout are documented in edgebp.h; the rounding helpers in ebp_fixed.h; which file holds what in
 * csrc/core/ebp_internal.h and docs/core.md.
 */
#define EBP_AMALGAMATION 1

#include "core/ebp_net.c"
#include "core/ebp_act.c"
#include "core/ebp_dense.c"
#include "core/ebp_conv1d.c"
#include "core/ebp_pool.c"
#include "core/ebp_backward.c"
#include "core/ebp_update.c"
#include "core/ebp_train.c"
