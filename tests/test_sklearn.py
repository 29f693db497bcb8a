"""edgebp.sklearn: scikit-learn's own estimator checks (every check that applies; the two that scikit-learn
skips here need pandas or SCIPY_ARRAY_API), cross_val_score and GridSearchCV comparing fixed and float, and
the estimator's fixed engine giving exactly FixedNet's integers."""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from edgebp.data import load_dataset  # noqa: E402
from edgebp.sklearn import FixedMLPClassifier, FixedMLPRegressor  # noqa: E402


@parametrize_with_checks([FixedMLPClassifier(epochs=30),
                          FixedMLPClassifier(epochs=30, engine="float", output="softmax", rounding="stochastic"),
                          FixedMLPRegressor(epochs=30)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def diabetes():
    ds = load_dataset("diabetes")
    X = np.vstack([ds.X_train, ds.X_test])
    y = np.argmax(np.vstack([ds.T_train, ds.T_test]), axis=1)
    return X, y


def test_cross_val_score_compares_fixed_and_float():
    X, y = diabetes()
    scores = {e: cross_val_score(FixedMLPClassifier(engine=e, epochs=20), X, y, cv=3) for e in ("fixed", "float")}
    for e, s in scores.items():
        assert len(s) == 3 and s.mean() > 0.70, (e, s)
    assert abs(scores["fixed"].mean() - scores["float"].mean()) < 0.03
    g = GridSearchCV(FixedMLPClassifier(epochs=10), {"engine": ["fixed", "float"], "rounding": ["nearest",
                                                                                                  "stochastic"]}, cv=2)
    g.fit(X, y)
    assert set(g.cv_results_["param_engine"]) == {"fixed", "float"} and g.best_score_ > 0.65


def test_fixed_engine_is_the_core_bit_for_bit():
    from edgebp import NetSpec, StopRule, TrainConfig
    from edgebp.fixed import FixedNet
    ds = load_dataset("diabetes")
    y = np.argmax(ds.T_train, axis=1)
    est = FixedMLPClassifier(epochs=5, shuffle=False, input_scaling=None).fit(ds.X_train, y)
    net = FixedNet(NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), TrainConfig(lr=0.2, seed=1))
    net.fit(ds.X_train, ds.T_train, StopRule(epochs=5))
    for (a, b), (c, d) in zip(est.net_.get_int_weights(), net.get_int_weights()):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    assert np.array_equal(est.predict(ds.X_test), np.argmax(net.predict(ds.X_test), axis=1))


def test_labels_of_any_kind_pickle_and_errors():
    X, y = diabetes()
    names = np.array(["no", "yes"])[y]
    est = FixedMLPClassifier(epochs=5).fit(X[:300], names[:300])
    assert set(est.predict(X[300:])) <= {"no", "yes"} and list(est.classes_) == ["no", "yes"]
    P = est.predict_proba(X[300:])
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    back = pickle.loads(pickle.dumps(est))
    assert np.array_equal(back.predict(X[300:]), est.predict(X[300:]))
    from edgebp.errors import EdgeBPError
    with pytest.raises(EdgeBPError, match="engine must be one of"):
        FixedMLPClassifier(engine="gpu").fit(X, y)
    with pytest.raises(EdgeBPError, match="seed must be an integer in 1..2"):
        FixedMLPClassifier(seed=0).fit(X, y)


def test_regressor_on_a_regression_set():
    ds = load_dataset("building")
    est = FixedMLPRegressor(epochs=10).fit(ds.X_train, ds.T_train[:, 0] * 1000.0)   # targets far beyond Q12
    assert est.score(ds.X_test, ds.T_test[:, 0] * 1000.0) > 0.5
    multi = FixedMLPRegressor(epochs=5).fit(ds.X_train, ds.T_train)
    assert multi.predict(ds.X_test).shape == ds.T_test.shape
