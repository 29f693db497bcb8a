/*
 * edgebp.h - fixed-point backpropagation for microcontrollers.
 *
 * This header is the single definition of the edgebp C API: the firmware includes it, and the Python
 * package hands it (preprocessor lines stripped) to cffi, which compiles it in API mode, so a drifted
 * prototype is a compile error.
 *
 * Number formats
 * --------------
 * Every tensor is int16_t (weights and biases optionally int8_t, see "int8 weights") with a Q format given by
 * its number of fractional bits f: the stored integer q means q * 2^-f. Inputs use cfg.in_frac; layer l's
 * weights and biases use layers[l].w_frac, its outputs layers[l].a_frac.
 *
 * Rounding: every right shift goes through the helpers in ebp_fixed.h. Deterministic rounding is
 * "round half away from zero" (ebp_rshift_rn). Weight updates use either that rule or stochastic rounding
 * (floor(x / 2^s + u), u uniform in [0, 1) from the network's xorshift32 generator), chosen by cfg.rounding.
 * ebp_step() draws once per parameter; the online update (below) once per row of a layer with a non-zero
 * update, parameter j of the row (its weights in order, then its bias) taking the draw plus j EBP_WEYL
 * (mod 2^32, ebp_fixed.h): each u is uniform, so each rounding is unbiased, at one addition a parameter.
 *
 * Accumulation: a dot product of two int16 vectors accumulates in int64_t. Each product is at most 2^30 in
 * magnitude, so n products need 30 + ceil(log2 n) bits, more than int32_t holds for any n >= 2; int64_t holds
 * them for n < 2^33. On Cortex-M3/M4 this is one SMLAL per multiply-accumulate, the same cost as MLA; on
 * Cortex-M0 it is a library call. Conversions to int16 saturate and are counted in ebp_layer_stats_t.
 *
 * Kernels and build options (csrc/arch/ebp_arch.h, docs/core.md): the portable C kernels are the reference;
 * on ARMv7-M, ARMv7E-M with DSP and ARMv6-M the core builds kernels of its own that give the same integers
 * (-DEBP_PORTABLE=1 forces the portable ones). -DEBP_STATS=0 leaves the dense online update's counters
 * (updates, zero_updates, sat_param) at zero, for faster rows; the weights are the same.
 * Feature switches (EBP_CONV, EBP_INT8, EBP_GRAD_MEMORY, EBP_FIXED_DELTA, EBP_INIT_FAN, EBP_SOFTMAX, EBP_CE;
 * below): each 1 by default; a board short of flash sets some to 0, and a configuration that needs one is then refused
 * with EBP_ERR_FEATURE.
 *
 * Dynamic range of the backward pass (block floating point)
 * ---------------------------------------------------------
 * Errors (deltas) and gradients span many orders of magnitude, often far below one LSB of the activation
 * format. They are therefore kept in block floating point: a layer's delta vector is an int16 mantissa
 * vector sharing one exponent (value = delta[i] * 2^delta_exp), renormalised after every layer so that its
 * largest magnitude lies in [2^14, 2^15). Gradients accumulate in int32 with one exponent per layer (g_exp);
 * each sample's product delta * input is scaled to that exponent, which keeps EBP_GRAD_HEADROOM bits above
 * the largest single-sample contribution, and the accumulator is rescaled when a larger sample arrives.
 * Setting EBP_FLAG_FIXED_DELTA in cfg.flags switches this off and stores deltas as plain Q15 (exponent -15),
 * to show what fixed formats lose.
 *
 * Layer kinds and shapes
 * ----------------------
 * A shaped tensor (channels, length) is stored channel-major: channel 0's `length` values, then channel 1's,
 * and so on. The network input is (in_ch, n_in / in_ch); every layer reads the previous layer's output as
 * such a tensor:
 *   dense      (n_out, 1): z_o = b_o + sum_i w_oi x_i over the whole input, flattened (no flatten layer
 *              needed); w (n_out, n_in)
 *   conv1d     (n_out, len), len = (in_len - kernel) / stride + 1 ('valid' padding, stride 0 means 1):
 *              z[o][t] = b[o] + sum_{c, j} w[o][c][j] x[c][t stride + j]; w (n_out, in_ch, kernel)
 *   maxpool1d  (in_ch, len), len = (in_len - kernel) / stride + 1 (stride 0 means the window): each
 *              window's maximum; its delta goes back to the window's first maximum
 *   avgpool1d  the same shape: each window's mean, rounded half away from zero; its delta goes back to
 *              every input of the window, scaled by round(2^EBP_POOL_FRAC / kernel)
 *   gap1d      (in_ch, 1): global average pooling, one window of the whole length
 * conv1d has the activations of a dense layer (not softmax) with the same rules; pooling layers are linear,
 * have no parameters and keep their input's format (a_frac must equal it). Deltas, gradients and updates
 * work as for dense layers, summed over the output positions: a conv1d weight's gradient is
 * sum_t delta[o][t] x[c][t stride + j], accumulated with log2(len) more bits of headroom; the fused online
 * update scales every delta by the learning rate first (dl = round(delta lr_m / 2^16)) and rounds each
 * parameter's sum_t dl x once (parameters whose gradient is exactly zero are skipped: no draw).
 *
 * int8 weights
 * ------------
 * A layer with w_bits 8 stores its weights and biases as int8 in Q w_frac (half the bytes; activations,
 * deltas and gradient accumulators stay as they are). Such a layer, dense or conv1d, runs the plain loops of
 * conv1d (a dense layer being the convolution of an (n_in, 1) input with kernel 1), which give a dense
 * layer's forward pass, deltas and gradients bit for bit; its fused online update is conv1d's, and every
 * update of it is rounded stochastically whatever cfg.rounding says (round to nearest would lose nearly every
 * update at 8 bits). Weights clip to [-128, 127], counted in sat_param; initial weights are drawn in
 * [-min(r, 127), min(r, 127)].
 *
 * Activations
 * -----------
 * linear, ReLU, sigmoid, tanh, and softmax (output layer, with cross-entropy). Sigmoid is a 257-entry Q16
 * table on [0, 16] (step 1/16, linear interpolation, symmetry for z < 0); tanh(z) = 2 sigmoid(2z) - 1;
 * softmax uses an exp(-x) table on [0, 16] and one integer division per output. The tables are generated
 * by tools/gen_tables.py. Maximum absolute error against the exact function, measured over every int16
 * input at a_frac = 15 (tests/test_core.py): sigmoid 7.3e-5, tanh 1.2e-4, softmax (2 classes) 1.4e-4;
 * at coarser output formats the output rounding (2^-(a_frac+1)) dominates. Derivatives are the true ones,
 * computed from the outputs: sigmoid y(1 - y), tanh 1 - y^2, ReLU [y > 0], linear 1, all in Q15.
 *
 * Learning rule
 * -------------
 * ebp_backward() adds one sample's gradient of the loss to the per-layer accumulators; ebp_step() applies
 * the mean over the accumulated samples:
 *   SGD:      w -= lr * g
 *   momentum: v = mu * v + lr * g;  w -= v      (v kept in int32 with EBP_VEL_EXTRA_FRAC extra bits)
 * Online SGD (ebp_train with batch 1 and EBP_OPT_SGD) skips the accumulators: each layer is updated
 * straight from its deltas, w_oi -= lr * delta_o * in_i, in 32-bit arithmetic. The lr-scaled delta is
 * rounded per neuron and the update per parameter, where the accumulator path rounds the gradient and
 * then the update, so the two paths differ in the last bit; each is deterministic. With EBP_FLAG_ONLINE
 * the network has no gradient memory at all and only this path is available.
 * Frozen layers (ebp_layer_cfg_t.frozen, transfer learning): a frozen layer is never updated and has no
 * gradient or velocity memory; its deltas are still computed when a trained layer lies below it. The layers
 * below the lowest trained layer with parameters (net->first_train) run forward only: no deltas are
 * computed for them and none are laid out. With every such layer frozen, training only evaluates the loss.
 * Loss per sample: squared error 1/2 * sum_k (y_k - t_k)^2, or cross-entropy -sum_k t_k ln y_k (softmax
 * output) / -sum_k (t_k ln y_k + (1 - t_k) ln(1 - y_k)) (sigmoid outputs). With cross-entropy the output
 * delta is y - t (the activation's derivative cancels); with squared error it is (y - t) * f'(y).
 *
 * Memory
 * ------
 * No allocation: ebp_net_memory() reports the bytes a configuration needs (by part and in total; an
 * EBP_FLAG_ONLINE network keeps a hidden layer's raw deltas packed in its delta array, exactly, with a
 * sign bitmask on the stack (layers of up to 128 neurons; wider ones compute them twice) instead of in
 * scratch memory, so it needs exactly its int16 parameters, outputs and deltas, plus scratch for a softmax
 * output only),
 * Deltas exist for the layers from net->first_train up only, gradient and velocity memory for trained
 * (not frozen) layers with parameters only, and the report counts exactly what is laid out.
 * ebp_net_init() lays the network out in a caller-owned buffer (8-byte aligned). The ebp_net_t struct
 * itself is also the caller's. Nothing in the core is global or static except constant tables.
 */
#ifndef EDGEBP_H
#define EDGEBP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Feature switches, each 1 by default: the Python extension, the Cortex-M boards, the Arduino library and the
 * benchmarks build them all. A board short of flash (simavr-atmega328p: an Arduino Uno's 32 KiB) compiles out
 * what it does without; a configuration or call that needs a switched-off feature is refused with EBP_ERR_FEATURE
 * (ebp_cfg_check, ebp_net_memory, ebp_net_init, ebp_net_init_weights), never run otherwise, and everything else
 * gives the same integers.
 *   EBP_CONV         conv1d and max/avg/global pooling layers (ebp_conv1d.c, ebp_pool.c)
 *   EBP_INT8         int8 weights (w_bits 8), which run conv1d's plain loops
 *   EBP_GRAD_MEMORY  gradient accumulators: batches, momentum, ebp_backward and ebp_step's updates. Off, a network
 *                    trains only with EBP_FLAG_ONLINE (online SGD, ebp_train with batch 1); inference is unchanged
 *   EBP_FIXED_DELTA  EBP_FLAG_FIXED_DELTA (plain Q15 deltas, the comparison to block floating point)
 *   EBP_INIT_FAN     EBP_INIT_XAVIER and EBP_INIT_HE (EBP_INIT_UNIFORM always)
 *   EBP_SOFTMAX      EBP_ACT_SOFTMAX (and its exp table); cross-entropy with sigmoid outputs is EBP_CE's
 *   EBP_CE           EBP_LOSS_CE (and the log table its loss value needs); squared error always
 */
#ifndef EBP_CONV
#define EBP_CONV 1
#endif
#ifndef EBP_INT8
#define EBP_INT8 1
#endif
#ifndef EBP_GRAD_MEMORY
#define EBP_GRAD_MEMORY 1
#endif
#ifndef EBP_FIXED_DELTA
#define EBP_FIXED_DELTA 1
#endif
#ifndef EBP_INIT_FAN
#define EBP_INIT_FAN 1
#endif
#ifndef EBP_SOFTMAX
#define EBP_SOFTMAX 1
#endif
#ifndef EBP_CE
#define EBP_CE 1
#endif

#define EBP_VERSION_MAJOR 0
#define EBP_VERSION_MINOR 1
#ifndef EBP_MAX_LAYERS            /* a board with little RAM may set fewer (ebp_net_t holds this many layers) */
#define EBP_MAX_LAYERS 8          /* layers per network */
#endif
#define EBP_MAX_WIDTH 1024        /* inputs or outputs of one layer */
#define EBP_LOSS_FRAC 16          /* loss values are Q16 */
#define EBP_GRAD_HEADROOM 6       /* bits kept free above one sample's gradient in the accumulators */
#define EBP_VEL_EXTRA_FRAC 16     /* momentum velocity: w_frac + this many fractional bits, int32 */
#define EBP_Z_FRAC 12             /* pre-activations enter the sigmoid/tanh/exp tables as Q12 */
#define EBP_POOL_FRAC 23          /* pooling's backward pass scales by 1/window in Q23: round(2^23 / window) */
#define EBP_FLAG_FIXED_DELTA 1    /* cfg.flags: deltas in plain Q15 instead of block floating point */
#define EBP_FLAG_ONLINE 2         /* cfg.flags: online SGD only, no gradient accumulators (least RAM) */

/** Status codes: 0 is success, errors are negative. */
typedef enum {
    EBP_OK = 0,
    EBP_ERR_ARG = -1,     /**< a NULL pointer or an argument out of range */
    EBP_ERR_CONFIG = -2,  /**< the network configuration is invalid (see ebp_cfg_check) */
    EBP_ERR_SIZE = -3,    /**< the buffer is smaller than ebp_net_sizeof() reports */
    EBP_ERR_ALIGN = -4,   /**< the buffer is not 8-byte aligned */
    EBP_ERR_STATE = -5,   /**< call out of order: backward before forward, training on an inference net */
    EBP_ERR_FORMAT = -6,  /**< a Q format is outside 0..15 */
    EBP_ERR_FEATURE = -7  /**< the configuration needs a feature this build compiled out (the feature switches above) */
} ebp_status_t;

typedef enum {
    EBP_ACT_LINEAR = 0,
    EBP_ACT_RELU = 1,
    EBP_ACT_SIGMOID = 2,
    EBP_ACT_TANH = 3,
    EBP_ACT_SOFTMAX = 4   /**< output layer only, with EBP_LOSS_CE */
} ebp_act_t;

typedef enum { EBP_LOSS_MSE = 0, EBP_LOSS_CE = 1 } ebp_loss_t;
typedef enum { EBP_OPT_SGD = 0, EBP_OPT_MOMENTUM = 1 } ebp_opt_t;
typedef enum { EBP_ROUND_NEAREST = 0, EBP_ROUND_STOCHASTIC = 1 } ebp_round_t;
typedef enum { EBP_MODE_INFER = 0, EBP_MODE_TRAIN = 1 } ebp_mode_t;
typedef enum { EBP_INIT_UNIFORM = 0, EBP_INIT_XAVIER = 1, EBP_INIT_HE = 2 } ebp_init_t;

/** Layer kinds. Every kind reads its input as the previous layer's output vector; a shaped tensor
 *  (channels, length) is stored channel-major: channel 0's `length` values, then channel 1's, ... */
typedef enum {
    EBP_KIND_DENSE = 0,      /**< n_out neurons, each with a bias, over the whole input vector (a flatten is implicit) */
    EBP_KIND_CONV1D = 1,     /**< n_out filters of (in channels, kernel), stride, 'valid' padding, one bias each */
    EBP_KIND_MAXPOOL1D = 2,  /**< per channel, the maximum of each window of `kernel` values, every `stride` */
    EBP_KIND_AVGPOOL1D = 3,  /**< per channel, the mean of each window (rounded half away from zero) */
    EBP_KIND_GAP1D = 4       /**< global average pooling: per channel, the mean over the whole length */
} ebp_kind_t;

/**
 * One layer. Every field added after a_frac has 0 as its default, meaning what a dense, trainable, int16
 * layer did before the field existed.
 */
typedef struct {
    uint16_t n_out;  /**< dense: neurons; conv1d: output channels (filters); pooling: 0 (channels kept); 1..EBP_MAX_WIDTH */
    uint8_t act;     /**< ebp_act_t; pooling layers: EBP_ACT_LINEAR */
    int8_t w_frac;   /**< fractional bits of weights and biases, 0..15 */
    int8_t a_frac;   /**< fractional bits of the outputs, 0..15; pooling layers: their input's */
    uint8_t kind;    /**< ebp_kind_t */
    uint8_t frozen;  /**< 1: never updated (transfer learning); 0: trained */
    uint8_t kernel;  /**< conv1d: kernel width; max/avg pooling: window; 1..255 (0 for dense and global pooling) */
    uint8_t stride;  /**< conv1d and pooling: step between windows, 0 meaning 1 (conv1d) or the window (pooling) */
    uint8_t w_bits;  /**< storage of weights and biases: 0 or 16 for int16, 8 for int8 (see "int8 weights") */
} ebp_layer_cfg_t;

/** A network: n_in inputs, then n_layers layers. */
typedef struct {
    uint16_t n_in;     /**< inputs, 1..EBP_MAX_WIDTH: in_ch channels of n_in / in_ch values, channel-major */
    int8_t in_frac;    /**< fractional bits of the inputs, 0..15 */
    uint8_t n_layers;  /**< 1..EBP_MAX_LAYERS */
    uint8_t loss;      /**< ebp_loss_t */
    uint8_t optimizer; /**< ebp_opt_t; momentum needs velocity memory */
    uint8_t rounding;  /**< ebp_round_t, used by weight updates */
    uint8_t flags;     /**< EBP_FLAG_* */
    ebp_layer_cfg_t layers[EBP_MAX_LAYERS];
    uint16_t in_ch;    /**< input channels, 0 meaning 1; must divide n_in */
} ebp_cfg_t;

/** Hyperparameters, changeable between steps. lr = lr_m * 2^lr_e; momentum = momentum_q15 / 2^15. */
typedef struct {
    uint16_t lr_m;
    int8_t lr_e;          /**< -80..0 */
    uint16_t momentum_q15; /**< 0..32767 */
} ebp_hparams_t;

/** Counters per layer; they only grow until ebp_net_clear_stats(). sat_out counts every forward pass,
 *  evaluation and prediction included. */
typedef struct {
    uint32_t sat_out;      /**< outputs clipped to their format */
    uint32_t sat_delta;    /**< deltas clipped (EBP_FLAG_FIXED_DELTA only) */
    uint32_t sat_grad;     /**< gradient accumulator adds clipped to int32 */
    uint32_t sat_param;    /**< weights or biases clipped by an update */
    uint32_t sat_vel;      /**< velocities clipped to int32 */
    uint32_t updates;      /**< weight and bias updates with a non-zero gradient */
    uint32_t zero_updates; /**< updates with a non-zero gradient that rounded to zero */
} ebp_layer_stats_t;

/** A layer inside an initialised network. Arrays live in the caller's buffer. */
typedef struct {
    uint16_t n_in, n_out;  /**< flat sizes of the input and output vectors (channels x length) */
    uint8_t act;
    int8_t in_frac, w_frac, a_frac;
    int16_t delta_exp;   /**< delta[i] means delta[i] * 2^delta_exp */
    int16_t g_exp;       /**< gw/gb[i] mean value * 2^g_exp (sums over grad_count samples); INT16_MIN: empty */
    int16_t *w;          /**< dense (n_out, n_in), conv1d (ch, in_ch, kernel); Q w_frac; NULL for pooling */
    int16_t *b;          /**< (n_out) dense, (ch) conv1d, Q w_frac */
    int16_t *y;          /**< (n_out), Q a_frac: outputs of the last forward pass */
    int16_t *delta;      /**< (n_out): dL/d(pre-activation), train mode, layers from net->first_train up only */
    int32_t *gw;         /**< like w, train mode with gradient memory, trained layers only */
    int32_t *gb;         /**< like b */
    int32_t *vw;         /**< like w, momentum only, Q (w_frac + EBP_VEL_EXTRA_FRAC) */
    int32_t *vb;         /**< like b, momentum only */
    ebp_layer_stats_t stats;
    uint8_t kind;        /**< ebp_kind_t */
    uint8_t frozen;      /**< 1: not updated */
    uint16_t kernel, stride; /**< conv1d and pooling windows; global pooling: (in_len, in_len) */
    uint16_t in_ch, in_len;  /**< input as (in_ch, in_len); a dense layer sees (n_in, 1) */
    uint16_t ch, len;        /**< output as (ch, len); a dense layer gives (n_out, 1) */
    uint32_t n_w;        /**< number of weights (dense n_out n_in, conv1d ch in_ch kernel, pooling 0) */
    uint16_t n_b;        /**< number of biases (dense n_out, conv1d ch, pooling 0) */
    int8_t *w8;          /**< int8 layers (w_bits 8): the weights, shaped like w, which is then NULL */
    int8_t *b8;          /**< int8 layers: the biases (b is then NULL) */
} ebp_layer_t;

typedef struct {
    ebp_cfg_t cfg;
    uint8_t mode;            /**< ebp_mode_t */
    uint8_t have_forward;    /**< a forward pass ran since the last backward */
    uint8_t first_train;     /**< lowest layer that gets deltas: the lowest trained layer with parameters
                                  (n_layers when every such layer is frozen); the layers below run forward only */
    ebp_hparams_t hp;
    uint32_t rng;            /**< xorshift32 state for stochastic rounding, never 0 */
    uint32_t grad_count;     /**< samples accumulated since ebp_zero_grad() */
    uint32_t steps;          /**< ebp_step() calls that applied an update */
    int16_t *x;              /**< (n_in), Q in_frac: copy of the last input */
    int64_t *scratch;        /**< (widest layer with deltas) when training with gradient memory, else (n_out) of a softmax output, else NULL */
    ebp_layer_t layers[EBP_MAX_LAYERS];
} ebp_net_t;

/** Bytes by part, as laid out by ebp_net_init(). */
typedef struct {
    uint32_t weights, biases, gradients, optimizer, activations, scratch, total;
} ebp_memory_t;

/** A message for a status code (static storage). */
const char *ebp_status_str(int status);

/** Checks a configuration: sizes, formats, activations, loss. @return EBP_OK or EBP_ERR_CONFIG/FORMAT. */
int ebp_cfg_check(const ebp_cfg_t *cfg);

/**
 * @param[in]  cfg   configuration
 * @param[in]  mode  EBP_MODE_INFER (weights, outputs, scratch) or EBP_MODE_TRAIN (plus gradients, deltas,
 *                   optimizer state)
 * @param[out] mem   bytes by part; mem->total is the buffer size ebp_net_init() needs
 */
int ebp_net_memory(const ebp_cfg_t *cfg, int mode, ebp_memory_t *mem);

/** Lays the network out in buf (8-byte aligned, at least the reported total). Weights start at zero. */
int ebp_net_init(ebp_net_t *net, const ebp_cfg_t *cfg, int mode, void *buf, size_t size);

/**
 * Initialises weights and biases from a xorshift32 stream seeded with seed (0 is mapped to 1), layer by
 * layer, weights row by row, then biases.
 * EBP_INIT_UNIFORM: weights and biases uniform integers in [-r, r], r = range_q12 * 2^(w_frac - 12)
 * (rounded) in each layer's format.
 * EBP_INIT_XAVIER: weights uniform in +-sqrt(6 / (n_in + n_out)), biases 0; EBP_INIT_HE: +-sqrt(6 / n_in).
 */
int ebp_net_init_weights(ebp_net_t *net, int kind, uint16_t range_q12, uint32_t seed);

/** Seeds the stochastic-rounding generator (0 is mapped to 1). */
int ebp_net_seed(ebp_net_t *net, uint32_t seed);

int ebp_net_set_hparams(ebp_net_t *net, const ebp_hparams_t *hp);

/** Zeroes every layer's ebp_layer_stats_t and net->steps. */
int ebp_net_clear_stats(ebp_net_t *net);

/**
 * Forward pass.
 * @param[in]  x  (n_in), Q in_frac
 * @param[out] y  (n_out of the last layer), Q a_frac of the last layer; may be NULL
 */
int ebp_forward(ebp_net_t *net, const int16_t *x, int16_t *y);

/**
 * Loss of the last forward pass against target t ((n_out), Q a_frac of the last layer), Q16, saturated
 * to INT32_MAX.
 */
int ebp_loss(const ebp_net_t *net, const int16_t *t, int32_t *loss_q16);

/**
 * Backward pass of the last forward pass: adds this sample's gradients to the accumulators. loss may be
 * NULL. EBP_ERR_STATE without a forward pass, in inference mode, or with EBP_FLAG_ONLINE.
 */
int ebp_backward(ebp_net_t *net, const int16_t *t, int32_t *loss_q16);

/** Clears the gradient accumulators. */
int ebp_zero_grad(ebp_net_t *net);

/** Applies the mean accumulated gradient with the optimizer, then clears the accumulators. No-op if empty. */
int ebp_step(ebp_net_t *net);

/**
 * Trains on n samples in order: forward, backward, and a step after every batch samples and after the last.
 * With batch 1 and SGD this is online learning through the fused update described above.
 * @param[in]  x         (n, n_in), Q in_frac
 * @param[in]  t         (n, n_out), Q a_frac of the last layer
 * @param[out] loss_sum  set to the sum of the per-sample losses (Q16), each before its update; may be NULL
 */
int ebp_train(ebp_net_t *net, const int16_t *x, const int16_t *t, uint32_t n, uint32_t batch,
              int64_t *loss_sum);

/** Forward passes for n samples; y is (n, n_out). */
int ebp_predict(ebp_net_t *net, const int16_t *x, uint32_t n, int16_t *y);

/**
 * Forward passes for n samples: loss sum (Q16) and the number whose output argmax equals the target argmax
 * (first maximum wins; with one output, a sample is correct when output and target lie on the same side of
 * one half). Either output may be NULL.
 */
int ebp_evaluate(ebp_net_t *net, const int16_t *x, const int16_t *t, uint32_t n, int64_t *loss_sum,
                 uint32_t *correct);

#ifdef __cplusplus
}
#endif

#endif /* EDGEBP_H */
