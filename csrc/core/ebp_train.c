/*
 * ebp_train.c - the passes and loops: ebp_forward, ebp_train, ebp_predict, ebp_evaluate.
 */
#include "ebp_internal.h"

static void forward_layers(ebp_net_t *net, const int16_t *x) {
    unsigned l;
    for (l = 0; l < net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        if (L->kind == EBP_KIND_DENSE && L->w != NULL)
            ebp_dense_fwd_s16(L, x, net->scratch);
        else if (ebp_plain(L))
            ebp_conv1d_fwd(L, x, net->scratch);
        else if (EBP_CONV)
            ebp_pool_fwd_s16(L, x);
        x = L->y;
    }
}

int ebp_forward(ebp_net_t *net, const int16_t *x, int16_t *y) {
    uint16_t i;
    if (net == NULL || x == NULL) return EBP_ERR_ARG;
    for (i = 0; i < net->cfg.n_in; i++) net->x[i] = x[i];
    forward_layers(net, x);
    if (y != NULL) {
        const ebp_layer_t *L = &net->layers[net->cfg.n_layers - 1];
        for (i = 0; i < L->n_out; i++) y[i] = L->y[i];
    }
    net->have_forward = 1;
    return EBP_OK;
}

/* ---- loops ------------------------------------------------------------------------------------------ */

int ebp_train(ebp_net_t *net, const int16_t *x, const int16_t *t, uint32_t n, uint32_t batch,
              int64_t *loss_sum) {
    uint32_t s;
    int st;
    if (net == NULL || x == NULL || t == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN) return EBP_ERR_STATE;
    if (loss_sum != NULL) *loss_sum = 0;
    if (batch == 1 && net->cfg.optimizer == EBP_OPT_SGD) { /* the caller's batch, so chunks stay equivalent */
        /* online SGD: deltas, then each layer updated directly from them (ebp_update_online) */
        const int16_t *ts = t;
        for (s = 0; s < n; s++, ts += net->layers[net->cfg.n_layers - 1].n_out) {
            const int16_t *xs = x + (size_t)s * net->cfg.n_in; /* read in place: no copy to net->x */
            int l;
            forward_layers(net, xs);
            if (loss_sum != NULL) {
                int32_t loss;
                ebp_loss(net, ts, &loss);
                *loss_sum += loss;
            }
            ebp_backward_deltas(net, ts);
            for (l = net->first_train; l < (int)net->cfg.n_layers; l++)
                if (!net->layers[l].frozen && net->layers[l].n_w > 0) {
                    const int16_t *in = l == 0 ? xs : net->layers[l - 1].y;
                    if (ebp_plain(&net->layers[l]))
                        ebp_conv1d_update_online(net, &net->layers[l], in);
                    else
                        ebp_update_online(net, &net->layers[l], in);
                }
            net->steps++;
        }
        net->have_forward = 0;
        return EBP_OK;
    }
    if ((net->cfg.flags & EBP_FLAG_ONLINE) || !EBP_GRAD_MEMORY) return EBP_ERR_STATE;
    if (batch == 0 || batch > n) batch = n;
    for (s = 0; s < n; s++) {
        int32_t loss = 0;
        st = ebp_forward(net, x + (size_t)s * net->cfg.n_in, NULL);
        if (st == EBP_OK)
            st = ebp_backward(net, t + (size_t)s * net->layers[net->cfg.n_layers - 1].n_out,
                              loss_sum != NULL ? &loss : NULL);
        if (st != EBP_OK) return st;
        if (loss_sum != NULL) *loss_sum += loss;
        if ((s + 1) % batch == 0 || s + 1 == n) {
            st = ebp_step(net);
            if (st != EBP_OK) return st;
        }
    }
    return EBP_OK;
}

int ebp_predict(ebp_net_t *net, const int16_t *x, uint32_t n, int16_t *y) {
    uint32_t s;
    uint16_t n_out;
    if (net == NULL || x == NULL || y == NULL) return EBP_ERR_ARG;
    n_out = net->layers[net->cfg.n_layers - 1].n_out;
    for (s = 0; s < n; s++) ebp_forward(net, x + (size_t)s * net->cfg.n_in, y + (size_t)s * n_out);
    net->have_forward = 0;
    return EBP_OK;
}

static uint16_t argmax16(const int16_t *v, uint16_t n) {
    uint16_t k, best = 0;
    for (k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

int ebp_evaluate(ebp_net_t *net, const int16_t *x, const int16_t *t, uint32_t n, int64_t *loss_sum,
                 uint32_t *correct) {
    const ebp_layer_t *L;
    uint32_t s;
    if (net == NULL || x == NULL || t == NULL) return EBP_ERR_ARG;
    L = &net->layers[net->cfg.n_layers - 1];
    if (loss_sum != NULL) *loss_sum = 0;
    if (correct != NULL) *correct = 0;
    for (s = 0; s < n; s++) {
        const int16_t *ts = t + (size_t)s * L->n_out;
        ebp_forward(net, x + (size_t)s * net->cfg.n_in, NULL);
        if (loss_sum != NULL) {
            int32_t loss;
            ebp_loss(net, ts, &loss);
            *loss_sum += loss;
        }
        if (correct != NULL) {
            int ok;
            if (L->n_out == 1) {
                int32_t half = (int32_t)1 << (L->a_frac - 1 < 0 ? 0 : L->a_frac - 1);
                ok = (L->y[0] >= half) == (ts[0] >= half);
            } else {
                ok = argmax16(L->y, L->n_out) == argmax16(ts, L->n_out);
            }
            *correct += (uint32_t)ok;
        }
    }
    net->have_forward = 0;
    return EBP_OK;
}
