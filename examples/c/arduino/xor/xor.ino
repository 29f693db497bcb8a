// XOR learned online on the board (the Arduino form of examples/c/xor.c): prints the four outputs over Serial.
#include <edgebp.h>

alignas(8) static uint64_t arena[64];   // the network's memory: 8-byte aligned (AVR aligns nothing by itself), no malloc
static ebp_net_t net;
static const int16_t x[4][2] = {{0, 0}, {0, 4096}, {4096, 0}, {4096, 4096}};   // inputs, Q12
static const int16_t t[4][1] = {{0}, {4096}, {4096}, {0}};                    // targets, Q12

void setup() {
  Serial.begin(115200);
  ebp_cfg_t cfg = {};
  cfg.n_in = 2; cfg.in_frac = 12; cfg.n_layers = 2; cfg.loss = EBP_LOSS_MSE; cfg.optimizer = EBP_OPT_SGD;
  cfg.rounding = EBP_ROUND_NEAREST; cfg.flags = EBP_FLAG_ONLINE;
  cfg.layers[0].n_out = 4; cfg.layers[0].act = EBP_ACT_TANH; cfg.layers[0].w_frac = 12; cfg.layers[0].a_frac = 12;
  cfg.layers[1].n_out = 1; cfg.layers[1].act = EBP_ACT_SIGMOID; cfg.layers[1].w_frac = 12; cfg.layers[1].a_frac = 12;
  ebp_hparams_t hp = {32768, -15, 0};   // lr = 32768 * 2^-15 = 1
  int st = ebp_net_init(&net, &cfg, EBP_MODE_TRAIN, arena, sizeof arena);
  if (st == EBP_OK) st = ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 4096, 1);
  if (st == EBP_OK) st = ebp_net_seed(&net, 1);
  if (st == EBP_OK) st = ebp_net_set_hparams(&net, &hp);
  for (int epoch = 0; st == EBP_OK && epoch < 2000; epoch++) st = ebp_train(&net, &x[0][0], &t[0][0], 4, 1, NULL);
  int16_t y[4];
  if (st == EBP_OK) st = ebp_predict(&net, &x[0][0], 4, y);
  if (st != EBP_OK) { Serial.println(ebp_status_str(st)); return; }
  for (int i = 0; i < 4; i++) {
    Serial.print(x[i][0] / 4096); Serial.print(" xor "); Serial.print(x[i][1] / 4096);
    Serial.print(" -> "); Serial.print(y[i]); Serial.println(" / 4096");
  }
}

void loop() {}
