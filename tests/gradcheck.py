"""Gradient checks shared by the float mirror's tests: central differences of the loss, and their distance."""
import numpy as np


def rel_err(a, b):
    """Relative distance of two lists of arrays; refuses vanished gradients (the check would prove nothing)."""
    a, b = np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in b])
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    assert scale > 1e-8, "gradient vanished: the check would prove nothing"
    return np.linalg.norm(a - b) / scale


def flat(weights):
    return [x for pair in weights for x in pair]


def numeric_gradients(net, X, T, eps=1e-6):
    """Central differences of the mean loss with respect to every weight and bias of ``net``
    (anything with get_weights, set_weights and loss)."""
    base = net.get_weights()
    out = []
    for l, (W, b) in enumerate(base):
        grads = []
        for k, p in enumerate((W, b)):
            g = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                vals = []
                for sign in (1, -1):
                    w = [(x.copy(), y.copy()) for x, y in base]
                    w[l][k][i] += sign * eps
                    net.set_weights(w)
                    vals.append(net.loss(X, T))
                g[i] = (vals[0] - vals[1]) / (2 * eps)
            grads.append(g)
        out.append(tuple(grads))
    net.set_weights(base)
    return out
