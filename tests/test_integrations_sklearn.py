"""The scikit-learn frontend: Gram matrices against independent formulas, hyperparameters and their exact gradient
(against central differences), and its use in GaussianProcessRegressor, KernelRidge, SVC and pipelines, each checked
against scikit-learn's own RBF kernel where the model is the same."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from _helpers import sphere
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import eval_legendre

pytest.importorskip("sklearn")
pytest.importorskip("torch")

from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from sklearn.svm import SVC

from dotkernels import (
    ExponentialKernel,
    GaussianKernel,
    HeatKernel,
    MaternKernel,
    PoissonKernel,
    PolynomialKernel,
    SpectrumAccuracyWarning,
)
from dotkernels.integrations.sklearn import SklearnKernel


def _rbf_length_scale(gamma):
    # exp(-gamma ||x - y||^2) = exp(-||x - y||^2 / (2 l^2)): sklearn's RBF with l = 1 / sqrt(2 gamma)
    return 1.0 / np.sqrt(2.0 * gamma)


def _smooth(X):
    """A smooth function on S^2 (degrees 1 to 3)."""
    x, y, z = X.T
    return np.sin(2.0 * x) + y * z + 0.5 * z**3


# ---------------------------------------------------------------------------------------------------------------
# the Gram matrix


def test_gram_equals_independent_formulas(rng):
    X, Y = sphere(rng, 30, 3), sphere(rng, 20, 3)
    gamma = 1.7
    np.testing.assert_allclose(
        SklearnKernel(GaussianKernel(gamma=gamma))(X, Y), RBF(_rbf_length_scale(gamma))(X, Y), rtol=1e-13, atol=0
    )
    np.testing.assert_allclose(SklearnKernel(ExponentialKernel(kappa=0.8))(X), np.exp(0.8 * X @ X.T), rtol=1e-13)
    # heat kernel on S^2: sum_l (2l + 1) exp(-tau l (l + 1)) P_l(t), summed here with scipy's Legendre polynomials
    tau, t = 0.05, np.clip(X @ Y.T, -1, 1)
    reference = sum((2 * l + 1) * np.exp(-tau * l * (l + 1)) * eval_legendre(l, t) for l in range(200))
    np.testing.assert_allclose(SklearnKernel(HeatKernel(time=tau))(X, Y), reference, rtol=0, atol=1e-12)


def test_diag_and_stationarity(rng):
    X = sphere(rng, 12, 5)
    for kernel in (GaussianKernel(gamma=0.3), ExponentialKernel(kappa=2.0), HeatKernel(time=0.2)):
        k = SklearnKernel(kernel)
        np.testing.assert_allclose(k.diag(X), np.diag(k(X)), rtol=1e-12)
        assert k.is_stationary()
        assert k.requires_vector_input


def test_points_must_be_on_the_sphere(rng):
    k = SklearnKernel(GaussianKernel())
    X = sphere(rng, 5, 3)
    with pytest.raises(ValueError, match=r"rows of X must be unit vectors.*Normalizer"):
        k(2.0 * X)
    with pytest.raises(ValueError, match="rows of Y must be unit vectors"):
        k(X, 1.5 * X)
    with pytest.raises(ValueError, match="rows of X must be unit vectors"):
        k.diag(X[:, :2])
    with pytest.raises(ValueError, match="same number of columns"):
        k(X, sphere(rng, 4, 4))
    with pytest.raises(ValueError, match="2-d array"):
        k(X[0])
    with pytest.raises(ValueError, match="Gradient can only be evaluated when Y is None"):
        k(X, X, eval_gradient=True)
    with pytest.raises(TypeError, match=r"X must be an array of real numbers.*complex"):
        k(X.astype(complex))
    with pytest.raises(TypeError, match="Y must be an array of real numbers"):
        k(X, np.array([["a", "b", "c"]]))
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        k(np.where(np.arange(3) == 1, np.nan, X))


# ---------------------------------------------------------------------------------------------------------------
# hyperparameters


def test_hyperparameters_theta_and_bounds():
    k = SklearnKernel(GaussianKernel(gamma=2.0))
    (h,) = k.hyperparameters
    assert (h.name, h.fixed, h.n_elements) == ("gamma", False, 1)
    np.testing.assert_array_equal(h.bounds, [[5e-5, 5e3]])
    np.testing.assert_allclose(k.theta, [np.log(2.0)], rtol=1e-15)
    np.testing.assert_allclose(k.bounds, np.log([[5e-5, 5e3]]), rtol=1e-15)
    assert k.n_dims == 1
    k.theta = [np.log(0.25)]
    assert k.kernel == GaussianKernel(gamma=0.25)
    with pytest.raises(ValueError, match="theta must have 1 entries"):
        k.theta = [0.0, 1.0]

    fixed = SklearnKernel(HeatKernel(time=0.1), param_bounds={"time": "fixed"})
    assert fixed.hyperparameters[0].fixed and fixed.theta.shape == (0,) and fixed.n_dims == 0
    # the family's declared hyperparameters, and only those: not the integer degree p, not the radius rho
    assert [h.name for h in SklearnKernel(PolynomialKernel(p=3, c=1.0)).hyperparameters] == ["c"]
    assert SklearnKernel(PoissonKernel(rho=0.5)).hyperparameters == []
    assert [h.name for h in SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.5)).hyperparameters] == ["lengthscale"]


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="kernel must be a dotkernels kernel"):
        SklearnKernel(RBF())
    with pytest.raises(ValueError, match=r"param_bounds names 'length'.*learnable parameters: \['gamma'\]"):
        SklearnKernel(GaussianKernel(), param_bounds={"length": (1, 2)})
    with pytest.raises(ValueError, match=r"names 'p', which is not a learnable parameter"):
        SklearnKernel(PolynomialKernel(p=3), param_bounds={"p": (1, 5)})
    with pytest.raises(ValueError, match=r"c = 0.0 cannot be learnt on a log scale.*'fixed'"):
        SklearnKernel(PolynomialKernel(p=3, c=0.0))
    assert SklearnKernel(PolynomialKernel(p=3, c=0.0), param_bounds={"c": "fixed"}).theta.shape == (0,)
    with pytest.raises(ValueError, match="0 < low < high"):
        SklearnKernel(GaussianKernel(), param_bounds={"gamma": (2.0, 1.0)})
    with pytest.raises(ValueError, match="'fixed' or"):
        SklearnKernel(GaussianKernel(), param_bounds={"gamma": "free"})
    with pytest.raises(TypeError, match="a pair"):
        SklearnKernel(GaussianKernel(), param_bounds={"gamma": 3.0})
    with pytest.raises(TypeError, match="mapping"):
        SklearnKernel(GaussianKernel(), param_bounds=[("gamma", (1, 2))])


def test_clone_get_params_set_params():
    k = SklearnKernel(HeatKernel(time=0.1), param_bounds={"time": (1e-3, 10.0)})
    assert k.get_params(deep=False) == {"kernel": HeatKernel(time=0.1), "param_bounds": {"time": (1e-3, 10.0)}}
    assert k.get_params()["time"] == 0.1
    c = clone(k)
    assert c is not k and c == k and c.kernel == k.kernel and c.param_bounds == k.param_bounds
    c.set_params(time=0.3)
    assert c.kernel == HeatKernel(time=0.3) and k.kernel == HeatKernel(time=0.1) and c != k
    c.set_params(kernel=GaussianKernel(gamma=2.0), param_bounds=None)
    assert c.kernel == GaussianKernel(gamma=2.0) and [h.name for h in c.hyperparameters] == ["gamma"]
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(time=0.5)
    d = k.clone_with_theta(np.log([0.7]))
    assert d.kernel == HeatKernel(time=0.7) and k.kernel == HeatKernel(time=0.1)
    assert repr(k) == "SklearnKernel(HeatKernel(time=0.1), param_bounds={'time': (0.001, 10.0)})"
    # nested in scikit-learn's operators, the hyperparameters keep their names
    composite = ConstantKernel(2.0) * SklearnKernel(GaussianKernel(gamma=0.5)) + WhiteKernel(0.1)
    assert composite.get_params()["k1__k2__gamma"] == 0.5
    assert [h.name for h in composite.hyperparameters] == ["k1__k1__constant_value", "k1__k2__gamma", "k2__noise_level"]
    composite.set_params(k1__k2__gamma=4.0)
    assert composite.k1.k2.kernel == GaussianKernel(gamma=4.0)
    np.testing.assert_allclose(composite.theta, np.log([2.0, 4.0, 0.1]), rtol=1e-15)


def test_equality_and_pickling(rng):
    X = sphere(rng, 10, 3)
    k = SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.5), param_bounds={"lengthscale": (0.05, 5.0)})
    # the bounds compare by value, however given (scikit-learn's own __eq__ fails on an array of bounds)
    assert k == SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.5), param_bounds={"lengthscale": np.array([0.05, 5])})
    assert k != SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.5))
    assert k != SklearnKernel(MaternKernel(nu=2.5, lengthscale=0.5), param_bounds={"lengthscale": (0.05, 5.0)})
    assert k != "SklearnKernel" and k != RBF()
    restored = pickle.loads(pickle.dumps(k))
    assert restored == k and restored is not k
    np.testing.assert_array_equal(restored(X), k(X))
    # a fitted regressor round-trips and predicts the same
    gp = GaussianProcessRegressor(ConstantKernel() * k + WhiteKernel(0.1), random_state=0).fit(X, _smooth(X))
    X_test = sphere(rng, 5, 3)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(gp)).predict(X_test), gp.predict(X_test))


# ---------------------------------------------------------------------------------------------------------------
# the gradient with respect to theta, against central differences of the Gram matrix


def _central_difference(k, X, h=1e-5):
    theta = k.theta
    columns = []
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        columns.append((k.clone_with_theta(theta + step)(X) - k.clone_with_theta(theta - step)(X)) / (2 * h))
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize(
    "k",
    [
        SklearnKernel(GaussianKernel(gamma=1.3)),
        SklearnKernel(ExponentialKernel(kappa=0.7)),
        SklearnKernel(HeatKernel(time=0.08)),
        SklearnKernel(PolynomialKernel(p=3, c=0.5)),
        SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.6)),
        SklearnKernel(MaternKernel(nu=0.5, lengthscale=0.3)),
    ],
    ids=repr,
)
def test_gradient_against_central_differences(k, rng):
    X = sphere(rng, 9, 3)
    K, dK = k(X, eval_gradient=True)
    np.testing.assert_allclose(K, k(X), rtol=1e-12, atol=1e-14)
    assert dK.shape == (9, 9, 1)
    # central differences: truncation O(h^2 |K'''|) ~ 1e-10, rounding eps |K| / h ~ 1e-11
    np.testing.assert_allclose(dK, _central_difference(k, X), rtol=1e-7, atol=1e-8 * np.abs(dK).max())


@settings(max_examples=15)
@given(gamma=st.floats(1e-2, 30.0), q=st.integers(2, 40))
def test_gaussian_gradient_is_the_closed_form(gamma, q):
    # d/d log gamma exp(-gamma ||x - y||^2) = -gamma ||x - y||^2 exp(-gamma ||x - y||^2)
    X = sphere(np.random.default_rng(q), 7, q)
    _K, dK = SklearnKernel(GaussianKernel(gamma=gamma))(X, eval_gradient=True)
    D = np.clip(2.0 - 2.0 * X @ X.T, 0.0, 4.0)
    np.testing.assert_allclose(dK[..., 0], -gamma * D * np.exp(-gamma * D), rtol=1e-9, atol=1e-12)


def test_gradient_with_several_and_fixed_hyperparameters(rng):
    X = sphere(rng, 8, 4)
    k = ConstantKernel(1.5) * SklearnKernel(HeatKernel(time=0.1)) + WhiteKernel(0.2)
    _, dK = k(X, eval_gradient=True)
    assert dK.shape == (8, 8, 3)
    np.testing.assert_allclose(dK, _central_difference(k, X), rtol=1e-7, atol=1e-9)
    fixed = SklearnKernel(HeatKernel(time=0.1), param_bounds={"time": "fixed"})
    _K, dK = fixed(X, eval_gradient=True)
    assert dK.shape == (8, 8, 0)


# ---------------------------------------------------------------------------------------------------------------
# Gaussian-process regression


def _gp_data(rng, n, n_test, noise):
    X, X_test = sphere(rng, n, 3), sphere(rng, n_test, 3)
    y = _smooth(X) + noise * rng.standard_normal(n)
    return X, y, X_test, _smooth(X_test)


def test_gpr_learns_what_sklearns_rbf_learns(rng):
    # the same model written twice: the Gaussian kernel on the sphere is scikit-learn's RBF restricted to it
    X, y, X_test, _f_test = _gp_data(rng, 120, 200, noise=0.1)
    ours = ConstantKernel(1.0) * SklearnKernel(GaussianKernel(gamma=0.5)) + WhiteKernel(0.1)
    reference = ConstantKernel(1.0) * RBF(_rbf_length_scale(0.5)) + WhiteKernel(0.1)
    gp = GaussianProcessRegressor(ours, random_state=0).fit(X, y)
    gp_ref = GaussianProcessRegressor(reference, random_state=0).fit(X, y)
    gamma = gp.kernel_.k1.k2.kernel.gamma
    length_scale = gp_ref.kernel_.k1.k2.length_scale
    np.testing.assert_allclose(_rbf_length_scale(gamma), length_scale, rtol=1e-3)
    np.testing.assert_allclose(gp.log_marginal_likelihood_value_, gp_ref.log_marginal_likelihood_value_, rtol=1e-8)
    np.testing.assert_allclose(gp.predict(X_test), gp_ref.predict(X_test), rtol=1e-4, atol=1e-5)
    # the gradient the optimiser used is the one of the log marginal likelihood (against central differences)
    theta = gp.kernel_.theta + 0.3
    _lml, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
    h = 1e-5
    fd = [
        (gp.log_marginal_likelihood(theta + h * e) - gp.log_marginal_likelihood(theta - h * e)) / (2 * h)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)


def test_gpr_recovers_the_noise_and_beats_it(rng):
    # without a scale or noise kernel (alpha carries a known noise) and with them (the noise learnt)
    noise = 0.1
    X, y, X_test, f_test = _gp_data(rng, 150, 300, noise=noise)
    plain = GaussianProcessRegressor(SklearnKernel(HeatKernel(time=0.5)), alpha=noise**2, random_state=0).fit(X, y)
    assert plain.kernel_.kernel.time < 0.5  # moved from its start
    rmse_plain = np.sqrt(np.mean((plain.predict(X_test) - f_test) ** 2))
    k = ConstantKernel() * SklearnKernel(HeatKernel(time=0.5)) + WhiteKernel(0.5)
    gp = GaussianProcessRegressor(k, random_state=0).fit(X, y)
    learnt_noise = gp.kernel_.k2.noise_level
    rmse = np.sqrt(np.mean((gp.predict(X_test) - f_test) ** 2))
    # the noise variance is estimated to within a factor 1.5 from 150 residuals (relative sd of a chi^2 estimate
    # ~ sqrt(2 / 150) = 0.12), and the posterior mean is far closer to f than the noisy observations
    assert noise**2 / 1.5 < learnt_noise < 1.5 * noise**2
    assert rmse < 0.5 * noise and rmse_plain < 0.5 * noise
    mean, std = gp.predict(X_test, return_std=True)
    assert np.all(std > 0) and np.mean(np.abs(mean - f_test) < 3 * std) > 0.95


def test_gpr_learns_the_true_time_of_a_heat_kernel_prior():
    # data drawn from the prior with time 0.05; the fit starts ten times too large and must land near the truth
    rng = np.random.default_rng(7)
    truth, noise, n = 0.05, 0.05, 300
    X = sphere(rng, n, 3)
    K = HeatKernel(time=truth).gram(X) + noise**2 * np.eye(n)
    y = np.linalg.cholesky(K) @ rng.standard_normal(n)
    k = SklearnKernel(HeatKernel(time=0.5), param_bounds={"time": (1e-3, 10.0)})
    gp = GaussianProcessRegressor(k, alpha=noise**2, random_state=0).fit(X, y)
    learnt = gp.kernel_.kernel.time
    # 300 observations of a unit-variance field pin log(time) down to about +-0.1 (the curvature of the marginal
    # likelihood at its maximum); 0.3 is three such standard errors
    assert abs(np.log(learnt / truth)) < 0.3, learnt


def test_gp_classifier_learns_what_sklearns_rbf_learns(rng):
    # GaussianProcessClassifier (Laplace approximation) reads the same kernel contract: the same model as the RBF one
    X = sphere(rng, 80, 3)
    labels = (np.sin(3.0 * X[:, 0]) + X[:, 2] > 0).astype(int)
    ours = GaussianProcessClassifier(ConstantKernel(1.0) * SklearnKernel(GaussianKernel(gamma=0.5)), random_state=0)
    reference = GaussianProcessClassifier(ConstantKernel(1.0) * RBF(_rbf_length_scale(0.5)), random_state=0)
    ours.fit(X, labels)
    reference.fit(X, labels)
    np.testing.assert_allclose(ours.log_marginal_likelihood_value_, reference.log_marginal_likelihood_value_, rtol=1e-6)
    gamma = ours.kernel_.k2.kernel.gamma
    np.testing.assert_allclose(_rbf_length_scale(gamma), reference.kernel_.k2.length_scale, rtol=1e-3)
    X_test = sphere(rng, 50, 3)
    np.testing.assert_allclose(ours.predict_proba(X_test), reference.predict_proba(X_test), rtol=1e-4, atol=1e-6)


def test_gpr_restarts_from_random_hyperparameters(rng):
    # n_restarts_optimizer starts L-BFGS-B from thetas drawn uniformly within the log bounds: at each start the kernel
    # gives a finite log marginal likelihood whose gradient (from eval_gradient) matches central differences
    X, y, _, _ = _gp_data(rng, 40, 1, noise=0.1)
    k = ConstantKernel() * SklearnKernel(HeatKernel(time=0.5), param_bounds={"time": (1e-3, 10.0)}) + WhiteKernel(0.1)
    starts = []

    def optimizer(obj_func, initial_theta, bounds):
        value, grad = obj_func(initial_theta, eval_gradient=True)
        h = 1e-6
        fd = [
            (
                obj_func(initial_theta + h * e, eval_gradient=False)
                - obj_func(initial_theta - h * e, eval_gradient=False)
            )
            / (2 * h)
            for e in np.eye(initial_theta.size)
        ]
        starts.append((initial_theta, value, grad, np.array(fd), bounds))
        result = minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds)
        return result.x, result.fun

    GaussianProcessRegressor(k, optimizer=optimizer, n_restarts_optimizer=4, random_state=0).fit(X, y)
    assert len(starts) == 5 and len({tuple(theta) for theta, *_ in starts}) == 5
    for theta, value, grad, fd, bounds in starts:
        assert np.all((bounds[:, 0] <= theta) & (theta <= bounds[:, 1])) and np.isfinite(value)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8 * max(1.0, abs(value)))  # rounding ~ 1e-10 |value|


# ---------------------------------------------------------------------------------------------------------------
# kernel ridge, SVC, pipelines


def test_kernel_ridge_precomputed_and_callable(rng):
    X, y, X_test, _ = _gp_data(rng, 80, 40, noise=0.1)
    k = SklearnKernel(GaussianKernel(gamma=1.5))
    reference = KernelRidge(alpha=0.1, kernel="rbf", gamma=1.5).fit(X, y).predict(X_test)
    pre = KernelRidge(alpha=0.1, kernel="precomputed").fit(k(X), y).predict(k(X_test, X))
    direct = KernelRidge(alpha=0.1, kernel=k).fit(X, y).predict(X_test)
    np.testing.assert_allclose(pre, reference, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(direct, reference, rtol=1e-9, atol=1e-12)


def test_svc_precomputed_and_callable(rng):
    X = sphere(rng, 120, 3)
    labels = (X[:, 2] > 0.2).astype(int)
    X_test = sphere(rng, 60, 3)
    k = SklearnKernel(GaussianKernel(gamma=2.0))
    # libsvm stops at a duality gap of ``tol``: tight, so that the three solutions agree to rounding
    reference = SVC(kernel="rbf", gamma=2.0, tol=1e-12).fit(X, labels).decision_function(X_test)
    pre = SVC(kernel="precomputed", tol=1e-12).fit(k(X), labels).decision_function(k(X_test, X))
    direct = SVC(kernel=k, tol=1e-12).fit(X, labels).decision_function(X_test)
    np.testing.assert_allclose(pre, reference, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(direct, reference, rtol=1e-6, atol=1e-8)
    assert np.mean((reference > 0) == (X_test[:, 2] > 0.2)) > 0.9


def test_pipeline_with_normalizer_and_grid_search(rng):
    # raw data off the sphere: the Normalizer puts it on S^2, the grid search reaches the kernel's gamma by name
    X = 3.0 * sphere(rng, 90, 3) * rng.uniform(0.5, 2.0, (90, 1))
    y = _smooth(X / np.linalg.norm(X, axis=1, keepdims=True))
    pipe = make_pipeline(Normalizer(), KernelRidge(alpha=1e-3, kernel=SklearnKernel(GaussianKernel(gamma=1.0))))
    search = GridSearchCV(pipe, {"kernelridge__kernel__gamma": [0.01, 1.0, 100.0]}, cv=3).fit(X, y)
    assert search.best_params_ == {"kernelridge__kernel__gamma": 1.0}
    assert search.best_estimator_[-1].kernel.kernel == GaussianKernel(gamma=1.0)
    with pytest.raises(ValueError, match="unit vectors"):
        KernelRidge(kernel=SklearnKernel(GaussianKernel())).fit(X, y)


def test_gpr_warns_at_a_bound_like_sklearn_kernels(rng):
    X, y, _, _ = _gp_data(rng, 40, 1, noise=0.1)
    k = SklearnKernel(GaussianKernel(gamma=1.0), param_bounds={"gamma": (1.0, 1.0001)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GaussianProcessRegressor(k, alpha=0.01, random_state=0).fit(X, y)
    assert any(issubclass(w.category, ConvergenceWarning) and "gamma" in str(w.message) for w in caught)


# ---------------------------------------------------------------------------------------------------------------
# default bounds per family


def _default(kernel):
    (h,) = SklearnKernel(kernel).hyperparameters
    return tuple(np.asarray(h.bounds, dtype=float).reshape(-1).tolist())


def test_default_bounds_per_family():
    assert _default(GaussianKernel(gamma=1.0)) == (5e-5, 5e3)  # gamma = 1 / (2 l^2), l in (0.01, 100)
    assert _default(ExponentialKernel(kappa=1.0)) == (1e-4, 600.0)
    assert _default(HeatKernel(time=0.1)) == (1e-3, 50.0)  # time = l^2 / 2, l in (0.045, 10)
    assert _default(PolynomialKernel(p=3, c=1.0)) == (1e-3, 1e3)
    assert _default(MaternKernel(nu=math.inf, lengthscale=1.0)) == (1e-2, 10.0)
    for nu in (0.5, 1.5, 2.5, 0.3):
        assert _default(MaternKernel(nu=nu, lengthscale=1.0)) == (1e-2, 100.0), nu
        assert _default(MaternKernel(nu=nu, lengthscale=1.0, normalize=False)) == (1e-2, 100.0), nu
    assert _default(2.0 * GaussianKernel()) == (1e-5, 1e5)  # the factor c: scikit-learn's default


def test_default_bounds_where_the_kernels_are_accurate():
    # at the ends of the default ranges (and between) every profile is computed to its stated accuracy: no
    # SpectrumAccuracyWarning, a finite phi(1), and the Matérn profile's bound at most 1e-12 of phi(1) (its Accuracy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for nu in (0.5, 1.5, 2.5, math.inf):
            low, high = _default(MaternKernel(nu=nu))
            for ell in np.geomspace(low, high, 5):
                for q in (2, 3, 10, 100, 1000):
                    assert MaternKernel(nu=nu, lengthscale=float(ell)).profile_error(q=q) <= 1e-12, (nu, ell, q)
        low, high = _default(HeatKernel())
        for q in (2, 3, 10, 100, 300, 1000, 3000):
            # phi(1) <= (1 + x) / (1 - x)^(q - 1), x = exp(-time (q - 1)), below 2 exp((ln 2)^2 / time) at every q
            x = math.exp(-low * (q - 1))
            bound = math.log1p(x) - (q - 1) * math.log1p(-x)
            assert HeatKernel(time=low).log_phi_at_one(q=q) <= bound <= math.log(2.0) + math.log(2.0) ** 2 / low
            assert np.isfinite(HeatKernel(time=high).phi_at_one(q=q))
        # beyond the upper end the heat kernel is constant to float64 on every sphere (here the circle, q = 2)
        X = sphere(np.random.default_rng(0), 20, 2)
        assert np.all(HeatKernel(time=high).gram(X) == 1.0)
        assert np.isfinite(1e5 * ExponentialKernel(kappa=_default(ExponentialKernel())[1]).phi_at_one())


def test_user_bounds_and_fixed_are_kept(rng):
    given = {"lengthscale": (1e-3, 1e2)}
    k = SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.5), param_bounds=given)
    assert k.param_bounds is given
    np.testing.assert_array_equal(k.hyperparameters[0].bounds, [[1e-3, 1e2]])
    for other in (clone(k), k.clone_with_theta(np.log([0.7])), pickle.loads(pickle.dumps(k))):
        np.testing.assert_array_equal(other.hyperparameters[0].bounds, [[1e-3, 1e2]])
        assert other.param_bounds == given
    X, y, _, _ = _gp_data(rng, 30, 1, noise=0.1)
    gp = GaussianProcessRegressor(ConstantKernel() * k + WhiteKernel(0.1), random_state=0).fit(X, y)
    np.testing.assert_allclose(gp.kernel_.k1.k2.bounds, np.log([[1e-3, 1e2]]), rtol=1e-15)
    fixed = SklearnKernel(HeatKernel(time=0.3), param_bounds={"time": "fixed"})
    gp = GaussianProcessRegressor(fixed, alpha=0.01).fit(X, y)
    assert gp.kernel_.kernel == HeatKernel(time=0.3) and gp.kernel_.hyperparameters[0].fixed


@pytest.mark.parametrize(
    "kernel",
    [
        MaternKernel(nu=0.5),
        MaternKernel(nu=1.5),
        MaternKernel(nu=2.5),
        MaternKernel(nu=math.inf),
        HeatKernel(0.1),
        GaussianKernel(1.0),
        ExponentialKernel(1.0),
        PolynomialKernel(p=3, c=1.0),
    ],
    ids=repr,
)
def test_gpr_restarts_within_the_default_bounds(kernel):
    # n_restarts_optimizer draws starts uniformly in log within the default bounds: none reaches a profile that
    # warns, and every start and the fit give a finite log marginal likelihood
    rng = np.random.default_rng(3)
    X, y, _, _ = _gp_data(rng, 30, 1, noise=0.1)
    starts = []

    def optimizer(obj_func, initial_theta, bounds):
        starts.append(obj_func(initial_theta, eval_gradient=False))
        result = minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds)
        return result.x, result.fun

    k = ConstantKernel() * SklearnKernel(kernel) + WhiteKernel(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpectrumAccuracyWarning)
        warnings.simplefilter("error", RuntimeWarning)
        gp = GaussianProcessRegressor(k, optimizer=optimizer, n_restarts_optimizer=3, random_state=0).fit(X, y)
    assert len(starts) == 4 and np.all(np.isfinite(starts))
    assert np.isfinite(gp.log_marginal_likelihood_value_)


def test_the_old_default_range_reached_inaccurate_profiles():
    # why the Matérn range has a lower end: scikit-learn's generic (1e-5, 1e5) reaches profiles that warn
    for nu, ell in ((0.5, 1e-5), (0.5, 1e-4), (2.5, 1e-3)):
        with pytest.warns(SpectrumAccuracyWarning):
            MaternKernel(nu=nu, lengthscale=ell).profile_error(q=3)


# ---------------------------------------------------------------------------------------------------------------
# scikit-learn's kernel contract (the checks of sklearn/gaussian_process/tests/test_kernels.py, on the sphere)

CONTRACT = [
    SklearnKernel(GaussianKernel(gamma=1.3)),
    SklearnKernel(HeatKernel(time=0.08), param_bounds={"time": (1e-3, 1.0)}),
    SklearnKernel(MaternKernel(nu=1.5, lengthscale=0.6)),
    ConstantKernel(2.0) * SklearnKernel(ExponentialKernel(kappa=0.7)),  # (+ WhiteKernel: k(X) != k(X, X) there)
    SklearnKernel(PolynomialKernel(p=3, c=0.5), param_bounds={"c": "fixed"}),
    SklearnKernel(2.0 * HeatKernel(time=0.1)),  # the factor c of a scaled kernel, learnt as an amplitude
]


@pytest.mark.parametrize("kernel", CONTRACT, ids=repr)
def test_sklearn_kernel_contract(kernel):
    X = sphere(np.random.default_rng(5), 6, 4)
    kernel = clone(kernel)
    # clone: equal, not the same object, the same parameters and hyperparameters
    cloned = clone(kernel)
    assert cloned == kernel and cloned is not kernel
    assert cloned.get_params().keys() == kernel.get_params().keys()
    assert cloned.hyperparameters == kernel.hyperparameters
    # theta is the log of the free hyperparameters' values, in the order of hyperparameters, within bounds
    params = kernel.get_params()
    free = [h for h in kernel.hyperparameters if not h.fixed]
    np.testing.assert_allclose(np.exp(kernel.theta), [params[h.name] for h in free], rtol=1e-15)
    if free:
        np.testing.assert_array_equal(kernel.bounds, np.log(np.vstack([h.bounds for h in free])))
    else:
        assert kernel.bounds.size == 0
    assert kernel.n_dims == len(free)
    # set_params and theta agree both ways
    for i, h in enumerate(free):
        kernel.set_params(**{h.name: 10.0})
        assert np.exp(kernel.theta[i]) == pytest.approx(10.0, rel=1e-15)
        theta = kernel.theta.copy()
        theta[i] = np.log(0.42)
        kernel.theta = theta
        assert kernel.get_params()[h.name] == pytest.approx(0.42, rel=1e-15)
    # k(X) = k(X, X), its diagonal is diag(X), the gradient has one column per free hyperparameter
    np.testing.assert_allclose(kernel(X), kernel(X, X), rtol=1e-14)
    np.testing.assert_allclose(kernel.diag(X), np.diag(kernel(X)), rtol=1e-14)
    K, dK = kernel(X, eval_gradient=True)
    assert dK.shape == (6, 6, len(free))
    # K of the gradient's pass is torch's evaluation of the profile, the other numpy's: the same to rounding
    np.testing.assert_allclose(K, kernel(X), rtol=1e-13, atol=1e-15 * np.abs(K).max())
    # clone after set_params keeps everything
    again = clone(kernel)
    assert again == kernel and again.get_params().keys() == kernel.get_params().keys()


def test_hyperparameters_are_attributes():
    # scikit-learn's check_kernel_theta: theta[i] == log(getattr(kernel, name)); setattr moves theta
    k = SklearnKernel(MaternKernel(nu=2.5, lengthscale=0.5))
    assert k.lengthscale == 0.5 and k.theta[0] == np.log(0.5)
    k.lengthscale = 0.8
    assert k.kernel == MaternKernel(nu=2.5, lengthscale=0.8) and k.theta[0] == np.log(0.8)
    k.theta = np.log([42.0])
    assert k.lengthscale == pytest.approx(42.0, rel=1e-14)
    with pytest.raises(AttributeError, match="gamma"):
        _ = k.gamma
    # a fixed hyperparameter is an attribute too, and theta and the gradient leave it out (the others kept)
    X = sphere(np.random.default_rng(2), 5, 3)
    free = ConstantKernel(1.5) * SklearnKernel(HeatKernel(time=0.2)) + WhiteKernel(0.1)
    fixed = ConstantKernel(1.5) * SklearnKernel(HeatKernel(time=0.2), param_bounds={"time": "fixed"}) + WhiteKernel(0.1)
    _, dK = free(X, eval_gradient=True)
    _, dK_fixed = fixed(X, eval_gradient=True)
    assert fixed.k1.k2.time == 0.2 and fixed.theta.shape == (2,)
    np.testing.assert_array_equal(fixed.theta, free.theta[[0, 2]])
    # the same columns, to the rounding of torch's and numpy's evaluations of the heat kernel (the fixed one's K)
    np.testing.assert_allclose(dK_fixed, dK[..., [0, 2]], rtol=1e-13, atol=1e-15 * np.abs(dK).max())


def test_a_value_outside_the_default_bounds_is_kept(rng):
    k = SklearnKernel(HeatKernel(time=1e-4))  # below the default (1e-3, 50)
    assert k.time == 1e-4 and k.theta[0] == np.log(1e-4)
    np.testing.assert_allclose(k.bounds, np.log([[1e-3, 50.0]]), rtol=1e-15)
    # scikit-learn's L-BFGS-B starts from the nearest bound and stays within the bounds
    X, y, _, _ = _gp_data(rng, 30, 1, noise=0.1)
    gp = GaussianProcessRegressor(k, alpha=0.01).fit(X, y)
    assert 1e-3 <= gp.kernel_.time <= 50.0 and k.time == 1e-4
