"""The fixed-point core beside its float mirror, step by step: where and why their gradients differ.

``compare()`` trains a ``FixedNet`` and a ``FloatNet`` from the same initial weights on the same rows in the
same order, and at every ``every``-th optimizer step measures, per layer:

- gradient agreement: the core's gradient of the batch against the exact float gradient *at the core's own
  weights* (cosine similarity, relative L2 error, sign agreement; weights and biases separately), and the
  cosine against the float mirror's gradient at *its* weights (``drift_cos``: how far the two trajectories
  have moved apart);
- attribution of the error in the weight update to its three sources (see ``attribute``);
- the fraction of weight updates that rounded to zero and the saturation counters of every tensor;

and after every ``eval_every`` epochs the loss and accuracy of both engines on training and test data.
The JSON layout of the report is documented in docs/compare.md.

Attribution. At a recorded step, with the core's weights W (dequantized) and the batch X, T:

    g_true  = float forward + float backward at W, exact inputs            (what the update should use)
    g_fwdq  = float backward at W on the core's own activations            (fixed forward, float backward)
    g_fixed = the core's gradient                                          (fixed forward and backward)
    ideal   = -(mu v + lr g_true), intended = -(mu v + lr g_fixed),  actual = W_after - W_before

with v the core's velocity before the step (0 for SGD). Relative to |ideal|: forward error
lr |g_fwdq - g_true|, backward error lr |g_fixed - g_fwdq|, update-rounding error |actual - intended|. They
add up (triangle inequality) to at least the total |actual - ideal|. ``per_step`` averages the per-step
ratios (noise counts); ``accumulated`` sums the error vectors and the ideal updates over the recorded steps
before taking norms (|sum error| / |sum ideal|), so zero-mean noise (stochastic rounding) cancels and
systematic error (round-to-nearest dropping small updates) does not.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

import numpy as np

from .config import NetSpec, TrainConfig
from .engine import check_data, sample_order
from .errors import ConfigError
from .fixed import FixedNet, dequantize
from .mirror import FloatNet, act_backward, dense_backward, loss_delta

STAT_FIELDS = ("sat_out", "sat_delta", "sat_grad", "sat_param", "sat_vel", "updates", "zero_updates")
SAT_FIELDS = ("sat_out", "sat_delta", "sat_grad", "sat_param", "sat_vel")
SOURCES = ("forward", "backward", "update")
SCIPY_METHODS = {"lbfgs": "L-BFGS-B", "cg": "CG"}
LAYER_METRICS = ("cos_w", "cos_b", "rel_w", "rel_b", "sign_w", "sign_b", "drift_cos", "zero_update_frac",
                 "err_forward", "err_backward", "err_update", "err_total")


# --- metrics ------------------------------------------------------------------------------------------------
def cosine(a, b) -> float:
    """Cosine similarity of two arrays; 1 when both are zero, 0 when only one is."""
    a, b = np.ravel(a), np.ravel(b)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def rel_l2(a, ref) -> float:
    """|a - ref| / |ref|; 0 when both are zero, inf when only ref is."""
    d, n = float(np.linalg.norm(np.ravel(a) - np.ravel(ref))), float(np.linalg.norm(ref))
    if n == 0.0:
        return 0.0 if d == 0.0 else math.inf
    return d / n


def sign_agreement(a, ref) -> float:
    """Fraction of elements with the same sign (-1, 0 or +1) in both."""
    a, ref = np.ravel(a), np.ravel(ref)
    return float(np.mean(np.sign(a) == np.sign(ref))) if a.size else 1.0


def layer_agreement(gq, gf) -> dict:
    """Metrics of one layer's fixed gradient (dW, db) against a float reference (dW, db)."""
    (wq, bq), (wf, bf) = gq, gf
    return dict(cos_w=cosine(wq, wf), cos_b=cosine(bq, bf), rel_w=rel_l2(wq, wf), rel_b=rel_l2(bq, bf),
                sign_w=sign_agreement(wq, wf), sign_b=sign_agreement(bq, bf))


def _flat(pair) -> np.ndarray:
    return np.concatenate([np.ravel(pair[0]), np.ravel(pair[1])])


# --- reading the core ----------------------------------------------------------------------------------------
def fixed_activations(fixed: FixedNet, Xq: np.ndarray) -> List[np.ndarray]:
    """[x, y_1, ..., y_L] of the core's own forward pass on the quantized rows Xq, dequantized."""
    from ._core import ffi, lib
    from .fixed import check
    spec = fixed.spec
    acts = [dequantize(Xq, spec.in_frac)] + [np.empty((len(Xq), l.n_out)) for l in spec.layers]
    for s, x in enumerate(Xq):
        check(lib.ebp_forward(fixed._net, ffi.from_buffer("int16_t[]", np.ascontiguousarray(x)), ffi.NULL),
              "forward")
        for i, l in enumerate(spec.layers):
            acts[i + 1][s] = dequantize(fixed._array(fixed._net.layers[i].y, l.n_out, np.int16), l.a_frac)
    fixed._net.have_forward = 0
    return acts


def velocities(fixed: FixedNet) -> Optional[List[np.ndarray]]:
    """The core's momentum velocities per layer, concatenated (vW, vb) and dequantized; None for SGD."""
    if fixed.cfg.optimizer != "momentum":
        return None
    from ._core import lib
    out = []
    for i, l in enumerate(fixed.spec.layers):
        L = fixed._net.layers[i]
        scale = 2.0 ** -(l.w_frac + lib.EBP_VEL_EXTRA_FRAC)
        vw = fixed._array(L.vw, L.n_out * L.n_in, np.int32) * scale
        out.append(np.concatenate([vw, fixed._array(L.vb, L.n_out, np.int32) * scale]))
    return out


def float_backward(spec: NetSpec, weights, acts: Sequence[np.ndarray], T: np.ndarray):
    """Per-layer mean (dW, db) of float backprop through given activations [x, y_1, ..., y_L] at weights."""
    names = [l.act for l in spec.layers]
    delta = loss_delta(spec.loss, names[-1], acts[-1], T)
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        dW, db, back = dense_backward(weights[l][0], acts[l], delta)
        grads[l] = (dW, db)
        if l:
            delta = back * act_backward(names[l - 1], acts[l])
    return grads


def _stats_diff(after: List[dict], before: List[dict]) -> List[dict]:
    return [{f: a[f] - b[f] for f in STAT_FIELDS} for a, b in zip(after, before)]


# --- scipy (optional): full-batch float training driven by the mirror's gradients ---------------------------
def fit_scipy(net: FloatNet, X, T, method: str = "lbfgs", maxiter: int = 100,
              callback: Optional[Callable[[int], None]] = None) -> dict:
    """Minimises the mean training loss of a FloatNet with scipy.optimize.minimize (L-BFGS-B or CG), using
    backprop for the gradient. Returns {method, iterations, evaluations, message, loss}."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise ConfigError("the scipy optimizers need scipy: pip install scipy") from None
    if method not in SCIPY_METHODS:
        raise ConfigError(f"unknown scipy method {method!r}; choose one of {', '.join(SCIPY_METHODS)}")
    X, T = check_data(net.spec, X, T)
    shapes = [(W.shape, b.shape) for W, b in net.get_weights()]

    def unflat(theta):
        out, k = [], 0
        for ws, bs in shapes:
            nw, nb = int(np.prod(ws)), int(np.prod(bs))
            out.append((theta[k:k + nw].reshape(ws), theta[k + nw:k + nw + nb]))
            k += nw + nb
        return out

    def fun(theta):
        net.set_weights(unflat(theta))
        grads, losses = net._backward(net._forward(X), T)
        return float(np.mean(losses)), np.concatenate([_flat(g) for g in grads])

    it = [0]

    def cb(theta):
        it[0] += 1
        if callback:
            net.set_weights(unflat(theta))
            callback(it[0])

    theta0 = np.concatenate([_flat(p) for p in net.get_weights()])
    res = minimize(fun, theta0, jac=True, method=SCIPY_METHODS[method], callback=cb,
                   options={"maxiter": int(maxiter)})
    net.set_weights(unflat(res.x))
    return dict(method=SCIPY_METHODS[method], iterations=int(res.nit), evaluations=int(res.nfev),
                message=str(res.message), loss=float(res.fun))


# --- the comparison ---------------------------------------------------------------------------------------------
def _evaluate(engine, X, T) -> tuple:
    if X is None or len(X) == 0:
        return None, None
    loss, acc = engine.evaluate(X, T)
    return float(loss), float(acc)


def compare(spec: NetSpec, cfg: TrainConfig, X, T, X_test=None, T_test=None, epochs: int = 50,
            every: int = 0, threshold: float = 0.9, rel_threshold: float = 0.5, attribution: bool = True,
            eval_every: int = 1, scipy_method: Optional[str] = None,
            progress: Optional[Callable[[int, float], None]] = None,
            grad_hook: Optional[Callable[[int, np.ndarray, np.ndarray], tuple]] = None,
            init_weights=None) -> dict:
    """Trains the fixed-point core and the float mirror side by side; returns the report (docs/compare.md).

    every: record gradient metrics every this many optimizer steps (0: about 400 records over the run).
    threshold / rel_threshold: a layer "disagrees" at a step when the cosine of its weight or bias gradient
    falls below ``threshold`` or its weight-gradient relative error exceeds ``rel_threshold``.
    scipy_method: "lbfgs" or "cg" adds a third engine, the float mirror trained full batch by scipy.
    grad_hook(layer, dW, db) -> (dW, db): test hook applied to the core's gradients as the comparison sees
    them (not to the training), to plant an error in one layer.
    init_weights: a weights file (path or edgebp.weights.WeightsFile) both engines start from (the core gets
    its integers, the mirror their dequantized values), instead of the seeded initialisation.
    """
    X, T = check_data(spec, X, T)
    if X_test is not None:
        X_test, T_test = check_data(spec, X_test, T_test)
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if every < 0 or eval_every < 1:
        raise ConfigError("every must be >= 0 (0 = automatic) and eval_every >= 1")
    if scipy_method is not None and not (cfg.batch_size == 0 or cfg.batch_size >= len(X)):
        raise ConfigError("the scipy optimizers train full batch: use --batch-size 0 with --scipy")
    fixed = FixedNet(spec, cfg)
    if init_weights is not None:
        from .weights import apply_weights
        apply_weights(fixed, init_weights)
    w0 = fixed.get_weights()
    flt = FloatNet(spec, cfg, weights=w0)
    ref = FloatNet(spec, cfg, weights=w0)       # scratch: float gradients at the core's weights
    n = len(X)
    bs = cfg.batch_size if 0 < cfg.batch_size < n else n
    spe = -(-n // bs)                            # steps per epoch
    total_steps = spe * epochs
    if every == 0:
        every = max(1, total_steps // 400)
    lr, mu = cfg.effective_lr(), cfg.effective_momentum() if cfg.optimizer == "momentum" else 0.0
    Xq_all, Tq_all = fixed.quantize_inputs(X), fixed.quantize_targets(T)
    L = len(spec.layers)

    train_stats = [{f: 0 for f in STAT_FIELDS} for _ in range(L)]   # counted during training only
    interval_stats = [{f: 0 for f in STAT_FIELDS} for _ in range(L)]
    records: List[dict] = []
    acc_err = [{s: 0.0 for s in SOURCES} | {"total": 0.0} for _ in range(L)]  # accumulated error vectors
    acc_vec = [None] * L

    def train_fixed(Xq, Tq, batch):
        before = fixed.stats()
        loss = fixed.train_q(Xq, Tq, batch)
        d = _stats_diff(fixed.stats(), before)
        for l in range(L):
            for f in STAT_FIELDS:
                train_stats[l][f] += d[l][f]
                interval_stats[l][f] += d[l][f]
        return loss

    curves = {"epoch": [], "step": [], "fixed": {}, "float": {}}
    for eng in ("fixed", "float"):
        curves[eng] = {k: [] for k in ("epoch_loss", "train_loss", "train_accuracy", "test_loss",
                                       "test_accuracy")}

    def record_curves(epoch, step, epoch_losses):
        curves["epoch"].append(epoch)
        curves["step"].append(step)
        for name, eng in (("fixed", fixed), ("float", flt)):
            c = curves[name]
            tl, ta = _evaluate(eng, X, T)
            vl, va = _evaluate(eng, X_test, T_test)
            for k, v in (("epoch_loss", epoch_losses[name] if epoch_losses else None), ("train_loss", tl),
                         ("train_accuracy", ta), ("test_loss", vl), ("test_accuracy", va)):
                c[k].append(v)

    record_curves(0, 0, None)
    from .fixed import LOSS_SCALE

    step = 0
    for epoch in range(epochs):
        order = sample_order(n, epoch, cfg)
        Xe, Te, Xqe, Tqe = X[order], T[order], Xq_all[order], Tq_all[order]
        loss_q, loss_f = 0, 0.0
        j = 0
        while j < spe:
            # next recorded step in this epoch (global step index % every == 0)
            nxt = step + ((-step) % every)
            k = min(nxt - step, spe - j)        # unrecorded steps to run in one go
            if k:
                a, b = j * bs, min((j + k) * bs, n)
                loss_q += train_fixed(Xqe[a:b], Tqe[a:b], bs)
                loss_f += flt.train_samples(Xe[a:b], Te[a:b], bs) * (b - a)
                j += k
                step += k
                continue
            a, b = j * bs, min((j + 1) * bs, n)
            Xb, Tb, Xqb, Tqb = Xe[a:b], Te[a:b], Xqe[a:b], Tqe[a:b]
            W_before = fixed.get_weights()
            v_before = velocities(fixed)
            g_fixed = fixed.gradients(Xb, Tb)
            if grad_hook is not None:
                g_fixed = [tuple(grad_hook(l, dW.copy(), db.copy())) for l, (dW, db) in enumerate(g_fixed)]
            ref.set_weights(W_before)
            g_true = ref.gradients(Xb, Tb)
            g_mirror = flt.gradients(Xb, Tb)
            g_fwdq = float_backward(spec, W_before, fixed_activations(fixed, Xqb), Tb) if attribution else None
            loss_q += train_fixed(Xqb, Tqb, len(Xqb))
            loss_f += flt.train_samples(Xb, Tb, len(Xb)) * (b - a)
            W_after = fixed.get_weights()
            rec = {"step": step, "epoch": epoch, "layers": []}
            for l in range(L):
                m = layer_agreement(g_fixed[l], g_true[l])
                m["drift_cos"] = cosine(_flat(g_fixed[l]), _flat(g_mirror[l]))
                st = interval_stats[l]
                m["zero_update_frac"] = st["zero_updates"] / st["updates"] if st["updates"] else 0.0
                m["saturations"] = {f: st[f] for f in SAT_FIELDS}
                if attribution:
                    vmu = mu * v_before[l] if v_before is not None else 0.0
                    gt, gq, gfw = _flat(g_true[l]), _flat(g_fixed[l]), _flat(g_fwdq[l])
                    ideal = -(vmu + lr * gt)
                    intended = -(vmu + lr * gq)
                    actual = _flat(W_after[l]) - _flat(W_before[l])
                    errs = {"forward": lr * (gfw - gt), "backward": lr * (gq - gfw),
                            "update": actual - intended, "total": actual - ideal, "ideal": ideal}
                    den = float(np.linalg.norm(ideal))
                    for s, e in errs.items():
                        if s != "ideal":
                            m[f"err_{s}"] = float(np.linalg.norm(e)) / den if den > 0 else 0.0
                    if acc_vec[l] is None:
                        acc_vec[l] = {s: np.zeros_like(e) for s, e in errs.items()}
                    for s, e in errs.items():
                        acc_vec[l][s] += e
                rec["layers"].append(m)
            records.append(rec)
            interval_stats = [{f: 0 for f in STAT_FIELDS} for _ in range(L)]
            j += 1
            step += 1
        epoch_losses = {"fixed": loss_q * LOSS_SCALE / n, "float": loss_f / n}
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            record_curves(epoch + 1, step, epoch_losses)
        if progress:
            progress(epoch + 1, epoch_losses["fixed"])

    engines = {"fixed": fixed, "float": flt}
    extra = None
    if scipy_method is not None:
        sp = FloatNet(spec, cfg, weights=w0)
        name = f"float+{scipy_method}"
        curves[name] = {k: [] for k in ("iteration", "train_loss", "test_loss", "test_accuracy")}

        def cb(it):
            if it % eval_every == 0:
                c = curves[name]
                c["iteration"].append(it)
                c["train_loss"].append(sp.loss(X, T))
                tl, ta = _evaluate(sp, X_test, T_test)
                c["test_loss"].append(tl), c["test_accuracy"].append(ta)

        extra = fit_scipy(sp, X, T, scipy_method, maxiter=epochs, callback=cb)
        engines[name] = sp

    for l in range(L):
        den = float(np.linalg.norm(acc_vec[l]["ideal"])) if acc_vec[l] is not None else 0.0
        for s in acc_err[l]:
            acc_err[l][s] = float(np.linalg.norm(acc_vec[l][s])) / den if den > 0 else None
    report = dict(spec=spec.to_dict(), config=cfg.to_dict(), epochs=epochs, steps=step, every=every,
                  batch_size=bs, threshold=threshold, rel_threshold=rel_threshold, attribution=attribution,
                  records=records, curves=curves)
    report["summary"] = summarize(report, engines, X, T, X_test, T_test, train_stats,
                                  acc_err if attribution else None)
    if extra is not None:
        report["summary"]["scipy"] = extra
    return report


def _median(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.median(xs)) if xs else None


def _mean(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(xs)) if xs else None


def disagrees(m: dict, threshold: float, rel_threshold: float) -> Optional[str]:
    """The metric by which one layer's record falls below the agreement thresholds, or None."""
    if m["cos_w"] < threshold:
        return "cos_w"
    if m["cos_b"] < threshold:
        return "cos_b"
    if not m["rel_w"] <= rel_threshold:
        return "rel_w"
    return None


def summarize(report: dict, engines: dict, X, T, X_test, T_test, train_stats, acc_err) -> dict:
    recs, L = report["records"], len(report["spec"]["layers"])
    th, rth = report["threshold"], report["rel_threshold"]
    finals = {}
    for name, eng in engines.items():
        tl, ta = _evaluate(eng, X, T)
        vl, va = _evaluate(eng, X_test, T_test)
        finals[name] = dict(train_loss=tl, train_accuracy=ta, test_loss=vl, test_accuracy=va,
                            memory=eng.memory_report()["total"])
    first = None
    for r in recs:
        for l, m in enumerate(r["layers"]):
            why = disagrees(m, th, rth)
            if why:
                first = dict(step=r["step"], epoch=r["epoch"], layer=l, metric=why, value=m[why])
                break
        if first:
            break
    layers = []
    for l in range(L):
        ms = [r["layers"][l] for r in recs]
        st = train_stats[l]
        d = dict(layer=l,
                 median_cos_w=_median([m["cos_w"] for m in ms]), min_cos_w=min((m["cos_w"] for m in ms), default=None),
                 median_cos_b=_median([m["cos_b"] for m in ms]),
                 median_rel_w=_median([m["rel_w"] for m in ms]), median_rel_b=_median([m["rel_b"] for m in ms]),
                 median_sign_w=_median([m["sign_w"] for m in ms]),
                 final_drift_cos=ms[-1]["drift_cos"] if ms else None,
                 disagree_frac=(sum(disagrees(m, th, rth) is not None for m in ms) / len(ms)) if ms else None,
                 zero_update_frac=st["zero_updates"] / st["updates"] if st["updates"] else 0.0,
                 updates=st["updates"], saturations={f: st[f] for f in SAT_FIELDS})
        if acc_err is not None:
            d["attribution"] = {"per_step": {s: _mean([m.get(f"err_{s}") for m in ms]) for s in SOURCES + ("total",)},
                                "accumulated": dict(acc_err[l])}
        layers.append(d)
    # the layer that agrees worst: highest disagreement fraction, then highest median relative error
    worst = max(range(L), key=lambda l: (layers[l]["disagree_frac"] or 0.0, layers[l]["median_rel_w"] or 0.0))
    s = dict(engines=finals, first_disagreement=first, worst_layer=worst, layers=layers)
    if "fixed" in finals and "float" in finals:
        for split in ("train", "test"):
            a, b = finals["fixed"][f"{split}_accuracy"], finals["float"][f"{split}_accuracy"]
            s[f"{split}_accuracy_gap"] = None if a is None or b is None else (a - b) * 100.0
    if acc_err is not None:
        att = {}
        for kind in ("per_step", "accumulated"):
            # weighted by the layer's parameter count share is overkill; plain mean over layers
            att[kind] = {src: _mean([ly["attribution"][kind][src] for ly in layers]) for src in SOURCES + ("total",)}
            vals = {src: att[kind][src] or 0.0 for src in SOURCES}
            att[kind]["dominant"] = max(vals, key=vals.get)
        s["attribution"] = att
    return s


# --- presentation ---------------------------------------------------------------------------------------------
def _f(x, fmt):
    return "-" if x is None else fmt.format(x)


def format_report(rep: dict, title: str = "") -> str:
    """The readable terminal summary of a compare() report."""
    s, out = rep["summary"], []
    spec = rep["spec"]
    sizes = [spec["n_in"]] + [l["n_out"] for l in spec["layers"]]
    cfg = rep["config"]
    head = (f"{'-'.join(map(str, sizes))} {','.join(l['act'] for l in spec['layers'])}, {spec['loss']}, "
            f"{cfg['optimizer']} lr {cfg['lr']}" + (f" momentum {cfg['momentum']}" if cfg['optimizer'] == 'momentum'
                                                    else "")
            + f", batch {rep['batch_size']}, rounding {cfg['rounding']}, formats "
            f"in{spec['in_frac']} w{'/'.join(str(l['w_frac']) for l in spec['layers'])} "
            f"a{'/'.join(str(l['a_frac']) for l in spec['layers'])}")
    out.append(f"{title}: {head}" if title else head)
    out.append(f"{rep['epochs']} epochs, {rep['steps']} steps, gradients compared every {rep['every']} "
               f"step(s) ({len(rep['records'])} records)")
    names = list(s["engines"])
    out.append("")
    out.append(f"{'':24}" + "".join(f"{n:>14}" for n in names))
    for label, key, fmt in (("train loss", "train_loss", "{:.5f}"), ("train accuracy", "train_accuracy", "{:.2%}"),
                            ("test loss", "test_loss", "{:.5f}"), ("test accuracy", "test_accuracy", "{:.2%}"),
                            ("memory (bytes)", "memory", "{}")):
        out.append(f"{label:24}" + "".join(f"{_f(s['engines'][n][key], fmt):>14}" for n in names))
    if s.get("test_accuracy_gap") is not None:
        out.append(f"fixed - float accuracy: test {s['test_accuracy_gap']:+.2f} points, "
                   f"train {s['train_accuracy_gap']:+.2f} points")
    out.append("")
    out.append("gradient agreement per layer (core vs float gradient at the core's weights; medians over records)")
    hdr = (f"{'layer':>5} {'cos W':>8} {'cos b':>8} {'min cos W':>9} {'rel L2 W':>9} {'sign W':>7} "
           f"{'drift cos':>9} {'zero upd':>8} {'disagree':>8}  saturations")
    out.append(hdr)
    for d in s["layers"]:
        sat = ", ".join(f"{k[4:]} {v}" for k, v in d["saturations"].items() if v) or "none"
        out.append(f"{d['layer']:>5} {_f(d['median_cos_w'], '{:.4f}'):>8} {_f(d['median_cos_b'], '{:.4f}'):>8} "
                   f"{_f(d['min_cos_w'], '{:.4f}'):>9} {_f(d['median_rel_w'], '{:.4f}'):>9} "
                   f"{_f(d['median_sign_w'], '{:.1%}'):>7} {_f(d['final_drift_cos'], '{:.4f}'):>9} "
                   f"{_f(d['zero_update_frac'], '{:.1%}'):>8} {_f(d['disagree_frac'], '{:.1%}'):>8}  {sat}")
    fd = s["first_disagreement"]
    if fd:
        out.append(f"first disagreement (cos < {rep['threshold']} or rel L2 > {rep['rel_threshold']}): "
                   f"layer {fd['layer']} at step {fd['step']} (epoch {fd['epoch']}), {fd['metric']} = {fd['value']:.4f}")
    else:
        out.append(f"every layer agreed at every recorded step (cos >= {rep['threshold']}, "
                   f"rel L2 <= {rep['rel_threshold']})")
    out.append(f"worst layer: {s['worst_layer']}")
    if "attribution" in s:
        out.append("")
        out.append("error in the weight update, relative to the ideal float update, by source")
        out.append(f"{'layer':>5} {'':12} {'forward':>9} {'backward':>9} {'update':>9} {'total':>9}")
        for d in s["layers"]:
            for kind in ("per_step", "accumulated"):
                a = d["attribution"][kind]
                out.append(f"{d['layer'] if kind == 'per_step' else '':>5} {kind:12} "
                           + " ".join(f"{_f(a[k], '{:.4f}'):>9}" for k in SOURCES + ("total",)))
        att = s["attribution"]
        out.append(f"dominant source: {att['per_step']['dominant']} per step (mean {att['per_step'][att['per_step']['dominant']]:.4f}); "
                   f"{att['accumulated']['dominant']} accumulated over training "
                   f"(mean {att['accumulated'][att['accumulated']['dominant']]:.4f})")
    if "scipy" in s:
        sc = s["scipy"]
        out.append(f"scipy {sc['method']}: {sc['iterations']} iterations, {sc['evaluations']} gradient evaluations, "
                   f"final loss {sc['loss']:.5f} ({sc['message']})")
    return "\n".join(out)


CSV_STEP_COLUMNS = ("step", "epoch", "layer") + LAYER_METRICS + SAT_FIELDS


def csv_rows(rep: dict, what: str = "steps") -> List[list]:
    """Rows (header first) of the per-step per-layer metrics ("steps") or the per-epoch curves ("curves")."""
    if what == "steps":
        rows = [list(CSV_STEP_COLUMNS)]
        for r in rep["records"]:
            for l, m in enumerate(r["layers"]):
                rows.append([r["step"], r["epoch"], l] + [m.get(k) for k in LAYER_METRICS]
                            + [m["saturations"][f] for f in SAT_FIELDS])
        return rows
    if what == "curves":
        keys = ("epoch_loss", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
        c = rep["curves"]
        rows = [["epoch", "step"] + [f"{e}_{k}" for e in ("fixed", "float") for k in keys]]
        for i, ep in enumerate(c["epoch"]):
            rows.append([ep, c["step"][i]] + [c[e][k][i] for e in ("fixed", "float") for k in keys])
        return rows
    raise ConfigError(f"unknown CSV table {what!r}; choose steps or curves")


def clean_json(x):
    """Non-finite floats -> None, numpy scalars -> Python, so json.dumps writes strict JSON."""
    if isinstance(x, dict):
        return {k: clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def plot_title(rep: dict) -> str:
    """What the plot shows: data set, network, number formats, rounding and training setup."""
    spec, cfg = rep["spec"], rep.get("config", {})
    layers = spec["layers"]
    sizes = "-".join(str(v) for v in [spec["n_in"]] + [l["n_out"] for l in layers])
    acts = ",".join(l["act"] for l in layers)
    ws, as_ = [l["w_frac"] for l in layers], [l["a_frac"] for l in layers]
    w = str(ws[0]) if len(set(ws)) == 1 else "/".join(map(str, ws))
    a = str(as_[0]) if len(set(as_)) == 1 else "/".join(map(str, as_))
    return (f"{rep.get('data', 'data')}: {sizes} {acts}, {spec['loss']} | formats in Q{spec['in_frac']}, "
            f"weights Q{w}, activations Q{a} | rounding {cfg.get('rounding', '?')} | {cfg.get('optimizer', '?')} "
            f"lr {cfg.get('lr', '?')}, batch {cfg.get('batch_size', '?')}, {rep.get('epochs', '?')} epochs")


def curve_differences(rep: dict) -> dict:
    """fixed minus float, per epoch, for every curve both engines have (None where either is missing)."""
    c = rep["curves"]
    out = {}
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        out[key] = [None if a is None or b is None else a - b for a, b in zip(c["fixed"][key], c["float"][key])]
    return out


def plot_report(rep: dict, path: str) -> str:
    """One PNG: both engines' loss and accuracy curves, fixed minus float (where the curves lie on top of each
    other, this is what differs), and per-layer gradient agreement; titled with the data set, network,
    formats and rounding (returned)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib (or pip install edgebp[plot])") from None
    c = rep["curves"]
    fig, axs = plt.subplots(2, 3, figsize=(18, 9))
    ax = axs.ravel()
    for eng, color in (("fixed", "C0"), ("float", "C1")):
        for split, style in (("train", "-"), ("test", "--")):
            if any(v is not None for v in c[eng][f"{split}_loss"]):
                ax[0].plot(c["epoch"], c[eng][f"{split}_loss"], style, color=color, label=f"{eng} {split}")
                ax[3].plot(c["epoch"], [None if v is None else 100 * v for v in c[eng][f"{split}_accuracy"]],
                           style, color=color, label=f"{eng} {split}")
    for name in c:
        if name.startswith("float+"):
            ax[0].plot(c[name]["iteration"], c[name]["train_loss"], ":", color="C2",
                       label=f"{name} train (per iteration)")
    ax[0].set(xlabel="epoch", ylabel="mean loss", title="loss")
    ax[3].set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    d = curve_differences(rep)
    for split, style in (("train", "-"), ("test", "--")):
        if any(v is not None for v in d[f"{split}_loss"]):
            ax[1].plot(c["epoch"], [np.nan if v is None else v for v in d[f"{split}_loss"]], style, color="C3",
                       label=f"{split}")
            ax[4].plot(c["epoch"], [np.nan if v is None else 100 * v for v in d[f"{split}_accuracy"]], style,
                       color="C3", label=f"{split}")
    for a in (ax[1], ax[4]):
        a.axhline(0.0, color="k", lw=0.8)
    ax[1].set(xlabel="epoch", ylabel="loss(fixed) - loss(float)", title="fixed minus float: loss")
    ax[4].set(xlabel="epoch", ylabel="accuracy points", title="fixed minus float: accuracy")
    steps = [r["step"] for r in rep["records"]]
    for l in range(len(rep["spec"]["layers"])):
        for a, key in ((ax[2], "cos_w"), (ax[5], "rel_w")):
            ys = [r["layers"][l][key] for r in rep["records"]]
            ys = [np.nan if y is None or not math.isfinite(y) else y for y in ys]
            if not ys or all(math.isnan(y) for y in ys):
                continue
            k = max(1, len(ys) // 50)                   # running median keeps online noise readable
            sm = [float(np.nanmedian(ys[max(0, i - k):i + k + 1])) for i in range(len(ys))]
            a.plot(steps, ys, ".", ms=2, alpha=0.3, color=f"C{l}")
            a.plot(steps, sm, "-", color=f"C{l}", label=f"layer {l} (running median)")
    ax[2].axhline(rep["threshold"], color="k", lw=0.8, ls=":", label="threshold")
    ax[2].set(xlabel="step", ylabel="cosine", title="gradient agreement: cosine(core dW, float dW)")
    ax[5].axhline(rep["rel_threshold"], color="k", lw=0.8, ls=":", label="threshold")
    ax[5].set_yscale("log")
    ax[5].set(xlabel="step", ylabel="|dW_core - dW_float| / |dW_float|", title="per-layer gradient error")
    for a in ax:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
        a.grid(alpha=0.3)
    title = plot_title(rep)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return title
