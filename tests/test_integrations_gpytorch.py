"""The GPyTorch frontend: covariances against GPyTorch's own RBF kernel (the Gaussian kernel restricted to the
sphere), raw parameters under constraints, autograd against central differences, an exact GP that learns its
hyperparameters as the RBF model does and recovers the time of a heat-kernel prior, and a variational GP."""

from __future__ import annotations

import copy
import pickle
import unittest

import numpy as np
import pytest
from _helpers import sphere
from scipy import stats

gpytorch = pytest.importorskip("gpytorch")
torch = pytest.importorskip("torch")

from gpytorch.constraints import GreaterThan, Interval, Positive  # noqa: E402
from gpytorch.priors import GammaPrior  # noqa: E402
from gpytorch.test.base_kernel_test_case import BaseKernelTestCase  # noqa: E402

from dotkernels import (  # noqa: E402
    ExponentialKernel,
    GaussianKernel,
    HeatKernel,
    MaternKernel,
    PoissonKernel,
    PolynomialKernel,
)
from dotkernels.integrations.gpytorch import GPyTorchKernel  # noqa: E402

DTYPE = torch.float64


def _points(rng, n, q):
    return torch.from_numpy(sphere(rng, n, q))


def _rbf(gamma):
    rbf = gpytorch.kernels.RBFKernel().double()
    rbf.lengthscale = 1.0 / np.sqrt(2.0 * gamma)  # exp(-gamma ||x - y||^2) = exp(-||x - y||^2 / (2 l^2))
    return rbf


def _smooth(X):
    x, y, z = X.unbind(-1)
    return torch.sin(2.0 * x) + y * z + 0.5 * z**3


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for one test (parameters created exact), restored after it."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------------------------------------------
# covariances and parameters


def test_covariance_equals_closed_forms_and_gpytorch_rbf(rng, float64_default):
    x1, x2 = _points(rng, 25, 3), _points(rng, 15, 3)
    k = GPyTorchKernel(GaussianKernel(gamma=1.7)).double()
    squared_distances = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)  # exact differences, no cancellation
    torch.testing.assert_close(k(x1, x2).to_dense(), torch.exp(-1.7 * squared_distances), rtol=1e-13, atol=1e-15)
    # GPyTorch's RBF forms ||x||^2 + ||y||^2 - 2 <x, y>: the same kernel up to that cancellation (~1e-8 relative)
    torch.testing.assert_close(k(x1, x2).to_dense(), _rbf(1.7)(x1, x2).to_dense(), rtol=1e-7, atol=1e-9)
    e = GPyTorchKernel(ExponentialKernel(kappa=0.6)).double()
    torch.testing.assert_close(e(x1, x2).to_dense(), torch.exp(0.6 * x1 @ x2.T), rtol=1e-13, atol=0)
    # forward's diagonal, GPyTorch's diag=True and batches
    torch.testing.assert_close(k(x1, diag=True), torch.ones(25, dtype=DTYPE), rtol=1e-14, atol=0)
    torch.testing.assert_close(e.forward(x1, x1, diag=True), e(x1).to_dense().diagonal(), rtol=1e-13, atol=0)
    batch = torch.stack([x1[:10], x1[10:20]])
    dense = k(batch).to_dense()
    assert dense.shape == (2, 10, 10)
    torch.testing.assert_close(dense[1], k(x1[10:20]).to_dense(), rtol=1e-14, atol=0)
    assert k.is_stationary and gpytorch.kernels.ScaleKernel(k).is_stationary


def test_parameters_constraints_and_values(float64_default):
    k = GPyTorchKernel(HeatKernel(time=0.2))
    assert [name for name, _ in k.named_parameters()] == ["raw_time"]
    assert type(k.raw_time_constraint) is Interval and k.learnable == ("time",)
    torch.testing.assert_close(k.time, torch.tensor(0.2, dtype=DTYPE))
    k.time = 0.5
    torch.testing.assert_close(k.time, torch.tensor(0.5, dtype=DTYPE))
    k.initialize(time=0.05)
    learnt = k.current_kernel()
    assert isinstance(learnt, HeatKernel) and learnt.time == pytest.approx(0.05, rel=1e-14)
    assert k.lengthscale is None
    with pytest.raises(AttributeError, match="no learnable lengthscale"):
        k.lengthscale = 1.0
    clone = copy.deepcopy(k)
    clone.time = 0.3
    assert float(k.time.detach()) == pytest.approx(0.05) and float(clone.time.detach()) == pytest.approx(0.3)
    # the family's declared hyperparameters, under the constraints given; not the degree p, not the radius rho
    p = GPyTorchKernel(PolynomialKernel(p=2, c=0.4), constraints={"c": Interval(0.01, 0.99)})
    assert p.learnable == ("c",) and isinstance(p.raw_c_constraint, Interval)
    assert float(p.c) == pytest.approx(0.4, rel=1e-14)
    assert GPyTorchKernel(PoissonKernel(rho=0.5)).learnable == ()
    assert GPyTorchKernel(GaussianKernel(gamma=1.0), constraints={"gamma": GreaterThan(0.5)}).gamma > 0.5
    m = GPyTorchKernel(MaternKernel(nu=2.5, lengthscale=0.7))
    assert m.learnable == ("lengthscale",) and float(m.lengthscale) == pytest.approx(0.7, rel=1e-14)
    m.lengthscale = 0.3
    assert m.current_kernel() == MaternKernel(nu=2.5, lengthscale=float(m.lengthscale))


# the documented default ranges on the sphere, written out (SklearnKernel's default bounds are the same)
_DEFAULT_RANGES = [
    (MaternKernel(nu=1.5, lengthscale=0.7), "lengthscale", (1e-2, 1e2)),
    (MaternKernel(nu=0.5, lengthscale=3.0), "lengthscale", (1e-2, 1e2)),
    (MaternKernel(nu=float("inf"), lengthscale=0.7), "lengthscale", (1e-2, 10.0)),
    (HeatKernel(time=0.2), "time", (1e-3, 50.0)),
    (GaussianKernel(gamma=1.0), "gamma", (5e-5, 5e3)),
    (ExponentialKernel(kappa=1.0), "kappa", (1e-4, 600.0)),
    (PolynomialKernel(p=2, c=0.4), "c", (1e-3, 1e3)),
    (2.0 * GaussianKernel(gamma=1.0), "c", (1e-5, 1e5)),  # the factor of c * kernel: scikit-learn's generic range
]


@pytest.mark.parametrize(
    "kernel, name, bounds", _DEFAULT_RANGES, ids=lambda v: repr(v) if not isinstance(v, str) else v
)
def test_default_constraint_is_the_family_range_on_the_sphere(kernel, name, bounds, float64_default):
    from dotkernels.integrations.sklearn import SklearnKernel

    k = GPyTorchKernel(kernel).double()
    assert k.learnable == (name,)
    constraint = getattr(k, f"raw_{name}_constraint")
    assert type(constraint) is Interval  # the plain interval, not Positive / GreaterThan
    # GPyTorch keeps its bounds in float32: equal to the range to float32's rounding
    assert float(constraint.lower_bound) == pytest.approx(bounds[0], rel=1e-7)
    assert float(constraint.upper_bound) == pytest.approx(bounds[1], rel=1e-7)
    (spec,) = SklearnKernel(kernel).hyperparameters
    assert spec.name == name and tuple(spec.bounds.ravel()) == pytest.approx(bounds)
    assert float(getattr(k, name)) == pytest.approx(kernel.hyperparameters[name], rel=1e-14)
    # every raw value maps inside the range, also far out where the sigmoid saturates
    with torch.no_grad():
        for raw in (-40.0, -5.0, 0.0, 5.0, 40.0):
            getattr(k, f"raw_{name}").fill_(raw)
            value = float(getattr(k, name))
            assert float(constraint.lower_bound) <= value <= float(constraint.upper_bound), (raw, value)


def test_a_given_constraint_or_prior_keeps_priority_over_the_default_range(float64_default):
    # a constraint given wins, also one that reaches beyond the default range (an initial value outside it included)
    free = GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=1e-3), constraints={"lengthscale": Positive()})
    assert type(free.raw_lengthscale_constraint) is Positive
    assert float(free.lengthscale) == pytest.approx(1e-3, rel=1e-12)
    narrow = GPyTorchKernel(HeatKernel(time=0.2), constraints={"time": Interval(0.1, 0.3)})
    assert (float(narrow.raw_time_constraint.lower_bound), float(narrow.raw_time_constraint.upper_bound)) == (
        pytest.approx(0.1),
        pytest.approx(0.3),
    )
    # a prior alone: on the constrained value, under the default range
    prior = GammaPrior(3.0, 6.0)
    with_prior = GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=0.4), priors={"lengthscale": prior})
    assert type(with_prior.raw_lengthscale_constraint) is Interval
    assert float(with_prior.raw_lengthscale_constraint.upper_bound) == pytest.approx(100.0)
    assert [name for name, *_ in with_prior.named_priors()] == ["lengthscale_prior"]
    # prior and constraint together: both kept
    both = GPyTorchKernel(
        MaternKernel(nu=1.5, lengthscale=0.4), constraints={"lengthscale": Positive()}, priors={"lengthscale": prior}
    )
    assert type(both.raw_lengthscale_constraint) is Positive and len(list(both.named_priors())) == 1


@pytest.mark.parametrize(
    "kernel, name",
    [
        (MaternKernel(nu=1.5, lengthscale=1e-3), "lengthscale"),
        (MaternKernel(nu=float("inf"), lengthscale=20.0), "lengthscale"),
        (HeatKernel(time=1e-4), "time"),
        (ExponentialKernel(kappa=700.0), "kappa"),
        (PolynomialKernel(p=2, c=0.0), "c"),
    ],
    ids=repr,
)
def test_an_initial_value_outside_the_default_range_raises_and_says_how_to_keep_it(kernel, name):
    with pytest.raises(ValueError, match=rf"initial {name} = .* outside its default range .*constraints=\{{'{name}'"):
        GPyTorchKernel(kernel)


def test_bad_arguments():
    with pytest.raises(TypeError, match="kernel must be a dotkernels kernel"):
        GPyTorchKernel(gpytorch.kernels.RBFKernel())
    with pytest.raises(ValueError, match="constraints names 'lengthscale'"):
        GPyTorchKernel(GaussianKernel(), constraints={"lengthscale": Positive()})
    with pytest.raises(ValueError, match=r"names 'p', which is not a learnable parameter"):
        GPyTorchKernel(PolynomialKernel(p=2), constraints={"p": Positive()})
    with pytest.raises(TypeError, match=r"must be a gpytorch.constraints.Interval"):
        GPyTorchKernel(GaussianKernel(), constraints={"gamma": (0, 1)})
    with pytest.raises(ValueError, match=r"initial gamma = 3.0 violates"):
        GPyTorchKernel(GaussianKernel(gamma=3.0), constraints={"gamma": Interval(0.1, 2.0)})
    with pytest.raises(TypeError, match="normalize must be a bool"):
        GPyTorchKernel(GaussianKernel(), normalize=1)


def test_points_on_the_sphere(rng):
    x = _points(rng, 6, 3)
    k = GPyTorchKernel(GaussianKernel(gamma=1.0)).double()
    with pytest.raises(ValueError, match=r"rows of x1 must be unit vectors.*normalize=True"):
        k(2.0 * x).to_dense()
    with pytest.raises(ValueError, match="q >= 2"):
        k.forward(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="last_dim_is_batch"):
        k.forward(x, x, last_dim_is_batch=True)
    normalized = GPyTorchKernel(GaussianKernel(gamma=1.0), normalize=True).double()
    torch.testing.assert_close(normalized(3.0 * x).to_dense(), k(x).to_dense(), rtol=1e-14, atol=1e-15)
    zero = x.clone()
    zero[3] = 0.0
    with pytest.raises(ValueError, match="x1 has a zero row, which normalize=True cannot put on the sphere"):
        normalized(zero).to_dense()


def test_bad_inputs_name_themselves(rng):
    x = _points(rng, 6, 3)
    k = GPyTorchKernel(GaussianKernel(gamma=1.0)).double()
    with pytest.raises(TypeError, match=r"x1 must be a floating-point torch tensor.*torch.int64"):
        k.forward(x.to(torch.int64), x)
    with pytest.raises(TypeError, match=r"x2 must be a floating-point torch tensor.*ndarray"):
        k.forward(x, x.numpy())
    nan = x.clone()
    nan[2, 1] = float("nan")
    with pytest.raises(ValueError, match="x1 contains NaN or inf"):
        k.forward(nan, x)
    with pytest.raises(ValueError, match=r"x1 and x2 must have the same number of columns, got 3 and 4"):
        k.forward(x, _points(rng, 6, 4))
    with pytest.raises(ValueError, match=r"diag=True pairs the rows of x1 and x2.*got 6 and 4"):
        k.forward(x, x[:4], diag=True)
    with pytest.raises(TypeError, match=r"batch_shape must be a torch\.Size"):
        GPyTorchKernel(GaussianKernel(), batch_shape=2)
    with pytest.raises(ValueError, match="batch_shape must have positive sizes"):
        GPyTorchKernel(GaussianKernel(), batch_shape=torch.Size([2, 0]))
    with pytest.raises(ValueError, match=r"priors names 'lengthscale'"):
        GPyTorchKernel(GaussianKernel(), priors={"lengthscale": GammaPrior(3.0, 6.0)})
    with pytest.raises(TypeError, match=r"priors\['gamma'\] must be a gpytorch.priors.Prior"):
        GPyTorchKernel(GaussianKernel(), priors={"gamma": stats.gamma(3.0)})


def test_diag_uses_the_matching_rows_only(rng, monkeypatch, float64_default):
    # the profile is evaluated on the n inner products <x_i, x_i>, never on an n x n matrix, through GPyTorch's
    # __call__ and a ScaleKernel as in a model
    import dotkernels.integrations.gpytorch as frontend

    shapes = []
    profile = frontend._profile

    def recording(kernel, t, q):
        shapes.append(tuple(t.shape))
        return profile(kernel, t, q)

    monkeypatch.setattr(frontend, "_profile", recording)
    x = _points(rng, 50, 3)
    k = GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=0.5)).double()
    diagonal = gpytorch.kernels.ScaleKernel(k).double()(x, diag=True)
    assert shapes == [(50,)] and diagonal.shape == (50,)
    shapes.clear()
    batched = GPyTorchKernel(GaussianKernel(gamma=1.0), batch_shape=torch.Size([3])).double()
    assert batched(x, diag=True).shape == (3, 50)
    assert shapes == [(50,)] * 3
    x1, x2 = _points(rng, 40, 3), _points(rng, 40, 3)
    closed_form = torch.exp(-2.0 * ((x1 - x2) ** 2).sum(-1))  # the Gaussian kernel exp(-gamma ||x - y||^2)
    gaussian = GPyTorchKernel(GaussianKernel(gamma=2.0)).double()
    torch.testing.assert_close(gaussian(x1, x2, diag=True), closed_form, rtol=1e-13, atol=1e-15)


def test_batch_shape_one_kernel_per_batch_entry(rng, float64_default):
    # batch-independent GPs: gamma = (0.5, 3.0), each entry against the closed form exp(-gamma ||x - y||^2)
    x1, x2 = _points(rng, 7, 3), _points(rng, 5, 3)
    gammas = torch.tensor([0.5, 3.0], dtype=DTYPE)
    k = GPyTorchKernel(GaussianKernel(gamma=1.0), batch_shape=torch.Size([2])).double()
    assert k.raw_gamma.shape == (2,) and k.batch_shape == (2,)
    k.gamma = gammas
    torch.testing.assert_close(k.gamma, gammas, rtol=1e-14, atol=0)
    squared = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)
    expected = torch.exp(-gammas[:, None, None] * squared)
    torch.testing.assert_close(k(x1, x2).to_dense(), expected, rtol=1e-13, atol=1e-15)  # data without a batch
    torch.testing.assert_close(
        k(torch.stack([x1, x1]), torch.stack([x2, x2])).to_dense(), expected, rtol=1e-13, atol=1e-15
    )
    with pytest.raises(ValueError, match=r"batch shape \(3,\) does not broadcast with the kernel's batch_shape \(2,\)"):
        k.forward(torch.stack([x1] * 3), torch.stack([x2] * 3))
    # the gradient of each entry reaches its own raw parameter, gamma = low + (high - low) sigmoid(raw) (the default
    # Interval): d/d raw exp(-gamma D) = -D exp(-gamma D) (high - low) s (1 - s), s = sigmoid(raw)
    weights = torch.from_numpy(rng.standard_normal((2, 7, 5)))
    (grad,) = torch.autograd.grad((k(x1, x2).to_dense() * weights).sum(), k.raw_gamma)
    s = torch.sigmoid(k.raw_gamma.detach())
    width = k.raw_gamma_constraint.upper_bound - k.raw_gamma_constraint.lower_bound
    closed = (-(squared * expected) * weights).sum((-1, -2)) * width * s * (1 - s)
    torch.testing.assert_close(grad, closed, rtol=1e-12, atol=1e-14)
    # indexing and expanding as GPyTorch's kernels
    second = k[1]
    learnt = second.current_kernel()  # gamma to the round trip through the Interval's sigmoid (a few ulps)
    assert second.batch_shape == () and type(learnt) is GaussianKernel
    assert learnt.gamma == pytest.approx(float(gammas[1]), rel=1e-14)
    torch.testing.assert_close(second(x1, x2).to_dense(), expected[1], rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"one kernel per batch entry.*module\[0\].current_kernel\(\)"):
        k.current_kernel()
    # a family without learnable parameters (the Poisson kernel): one covariance, repeated over the batch
    poisson = GPyTorchKernel(PoissonKernel(rho=0.5), batch_shape=torch.Size([2]))
    t = x1 @ x2.T
    closed_poisson = (1 - 0.25) / (1 - 2 * 0.5 * t + 0.25) ** 1.5  # (1 - rho^2) / (1 - 2 rho t + rho^2)^(q/2), q = 3
    torch.testing.assert_close(poisson(x1, x2).to_dense(), closed_poisson.expand(2, 7, 5), rtol=1e-13, atol=0)
    shared = GPyTorchKernel(GaussianKernel(gamma=0.5)).double().expand_batch(torch.Size([3]))
    assert shared.raw_gamma.shape == (3,)
    torch.testing.assert_close(shared(x1, x2).to_dense(), expected[0].expand(3, 7, 5), rtol=1e-13, atol=1e-15)


class TestGPyTorchKernelContract(BaseKernelTestCase, unittest.TestCase):
    """GPyTorch's own test case for kernels: batches (with and without a batch_shape), diag, indexing and
    expand_batch, active_dims, pickling, dtype and device. Its data is Gaussian noise in R^d: the kernel normalises
    it onto the sphere."""

    seed = 0

    def create_kernel_no_ard(self, **kwargs):
        return GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=0.7), normalize=True, **kwargs)


def test_active_dims_select_the_points_on_the_sphere(rng):
    # a product of a kernel on S^2 (columns 0-2) and GPyTorch's RBF kernel on a fourth, real column
    x = torch.cat([_points(rng, 20, 3), torch.from_numpy(rng.uniform(-1.0, 1.0, (20, 1)))], dim=-1)
    on_sphere = GPyTorchKernel(HeatKernel(time=0.1), active_dims=[0, 1, 2]).double()
    torch.testing.assert_close(
        on_sphere(x).to_dense(), GPyTorchKernel(HeatKernel(time=0.1)).double()(x[:, :3]).to_dense(), rtol=0, atol=0
    )
    rbf = gpytorch.kernels.RBFKernel(active_dims=[3]).double()
    product = (on_sphere * rbf)(x).to_dense()
    torch.testing.assert_close(
        product,
        on_sphere(x).to_dense() * gpytorch.kernels.RBFKernel().double()(x[:, 3:]).to_dense(),
        rtol=1e-14,
        atol=0,
    )
    with pytest.raises(ValueError, match="rows of x1 must be unit vectors"):
        GPyTorchKernel(HeatKernel(time=0.1)).double()(x).to_dense()  # all four columns are not on the sphere


def test_dtype_follows_gpytorch(rng, float64_default):
    # created in the default dtype (here float64: the initial value exact), as GPyTorch's kernels
    k = GPyTorchKernel(MaternKernel(nu=2.5, lengthscale=0.7))
    # (exact to the round trip through the Interval's sigmoid, a few ulps)
    assert k.dtype == torch.float64 and float(k.lengthscale.detach()) == pytest.approx(0.7, rel=1e-14)
    torch.set_default_dtype(torch.float32)
    k32 = GPyTorchKernel(MaternKernel(nu=2.5, lengthscale=0.7))
    scaled = gpytorch.kernels.ScaleKernel(k32)
    assert k32.dtype == torch.float32 and scaled.dtype == torch.float32  # one dtype across the model
    x = _points(rng, 30, 3)
    dense64 = k(x).to_dense()
    dense32 = k32(x.float()).to_dense()
    assert dense32.dtype == torch.float32 and dense64.dtype == torch.float64
    # float32 covariance: rounding of the inner products (~1e-7) through the profile's slope, and of lengthscale
    torch.testing.assert_close(dense32.double(), dense64, rtol=0, atol=1e-5)
    assert scaled.double().dtype == torch.float64
    assert k32.double()(x).to_dense().dtype == torch.float64


def test_priors_enter_the_marginal_likelihood_and_sample(rng, float64_default):
    x = _points(rng, 40, 3)
    y = _smooth(x)
    prior = GammaPrior(3.0, 6.0)  # shape 3, rate 6
    losses = {}
    for with_prior in (False, True):
        kernel = GPyTorchKernel(
            MaternKernel(nu=1.5, lengthscale=0.4), priors={"lengthscale": prior} if with_prior else None
        )
        likelihood = gpytorch.likelihoods.GaussianLikelihood()
        model = _ExactGP(x, y, likelihood, kernel)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        model.train()
        losses[with_prior] = float(mll(model(x), y))
    # GPyTorch adds the prior's log density at the constrained value, divided by the number of data
    log_density = stats.gamma(a=3.0, scale=1.0 / 6.0).logpdf(0.4)
    assert losses[True] - losses[False] == pytest.approx(log_density / 40, rel=1e-10)
    assert [name for name, *_ in kernel.named_priors()] == ["lengthscale_prior"]
    torch.manual_seed(0)
    expected = prior.sample()
    torch.manual_seed(0)
    kernel.sample_from_prior("lengthscale_prior")
    torch.testing.assert_close(kernel.lengthscale.detach(), expected, rtol=1e-12, atol=0)
    restored = pickle.loads(pickle.dumps(kernel))
    torch.testing.assert_close(restored.lengthscale, kernel.lengthscale, rtol=0, atol=0)
    assert isinstance(restored.lengthscale_prior, GammaPrior)


def test_pickle_and_state_dict(rng):
    x = _points(rng, 12, 3)
    k = GPyTorchKernel(PolynomialKernel(p=2, c=0.4), constraints={"c": Interval(0.01, 0.99)}).double()
    k.c = 0.7
    restored = pickle.loads(pickle.dumps(k))
    torch.testing.assert_close(restored(x).to_dense(), k(x).to_dense(), rtol=0, atol=0)
    assert isinstance(restored.raw_c_constraint, Interval)
    fresh = GPyTorchKernel(PolynomialKernel(p=2, c=0.4), constraints={"c": Interval(0.01, 0.99)}).double()
    fresh.load_state_dict(k.state_dict())
    assert float(fresh.c.detach()) == pytest.approx(0.7, rel=1e-14)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rng):
    x = _points(rng, 64, 3)
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        k = GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=0.5), batch_shape=torch.Size([2])).to(dtype)
        on_cpu = k(x.to(dtype)).to_dense()
        gpu = copy.deepcopy(k).cuda()
        on_gpu = gpu(x.to(dtype).cuda()).to_dense()
        assert on_gpu.device.type == "cuda" and on_gpu.dtype == dtype
        torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=0, atol=atol)
        torch.testing.assert_close(
            gpu(x.to(dtype).cuda(), diag=True).cpu(), on_cpu.diagonal(dim1=-2, dim2=-1), rtol=0, atol=atol
        )
        (grad,) = torch.autograd.grad(on_gpu.sum(), gpu.raw_lengthscale)
        (grad_cpu,) = torch.autograd.grad(on_cpu.sum(), k.raw_lengthscale)
        torch.testing.assert_close(grad.cpu(), grad_cpu, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=0)


@pytest.mark.parametrize(
    "kernel, constraints",
    [
        (GaussianKernel(gamma=1.3), None),
        (ExponentialKernel(kappa=0.7), None),
        (HeatKernel(time=0.08), None),
        (PolynomialKernel(p=3, c=0.5), {"c": Interval(0.01, 0.99)}),
        (MaternKernel(nu=1.5, lengthscale=0.6), None),
        (MaternKernel(nu=0.5, lengthscale=0.3), None),
    ],
    ids=repr,
)
def test_gradient_against_central_differences(kernel, constraints, rng):
    x = _points(rng, 9, 3)
    weights = torch.from_numpy(rng.standard_normal((9, 9)))
    k = GPyTorchKernel(kernel, constraints=constraints).double()
    (raw,) = k.parameters()
    (grad,) = torch.autograd.grad((k(x).to_dense() * weights).sum(), raw)
    h = 1e-6
    values = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            shifted = copy.deepcopy(k)
            next(shifted.parameters()).add_(sign * h)
            values.append(float((shifted(x).to_dense() * weights).sum()))
    fd = (values[0] - values[1]) / (2 * h)
    # central differences: truncation O(h^2), rounding ~ 1e-16 * |sum| / h ~ 1e-9
    assert float(grad) == pytest.approx(fd, rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------------------------------------------
# exact and variational GPs


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, x, y, likelihood, kernel, mean=None):
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean() if mean is None else mean
        self.covar_module = gpytorch.kernels.ScaleKernel(kernel)

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def _train_exact(x, y, kernel, *, noise=None, mean=None):
    """Maximise the marginal likelihood with L-BFGS (strong Wolfe line search) to a tight optimum."""
    likelihood = gpytorch.likelihoods.GaussianLikelihood()
    model = _ExactGP(x, y, likelihood, kernel, mean).double()
    if noise is not None:  # a known noise: fixed
        likelihood.noise = noise**2
        likelihood.raw_noise.requires_grad_(False)
    model.train()
    likelihood.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    optimizer = torch.optim.LBFGS(
        [p for p in model.parameters() if p.requires_grad],
        lr=1.0,
        max_iter=200,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )
    losses = []

    def closure():
        optimizer.zero_grad()
        loss = -mll(model(x), y)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    with gpytorch.settings.max_cholesky_size(10_000):
        optimizer.step(closure)
    model.eval()
    likelihood.eval()
    return model, likelihood, losses


def test_exact_gp_learns_what_the_rbf_model_learns(rng):
    # the same model written twice (the Gaussian kernel on the sphere is the RBF kernel restricted to it): the
    # maximum of the marginal likelihood does not depend on the parameterisation (gamma or lengthscale)
    x, x_test = _points(rng, 120, 3), _points(rng, 200, 3)
    y = _smooth(x) + 0.1 * torch.from_numpy(rng.standard_normal(120))
    ours, lik, losses = _train_exact(x, y, GPyTorchKernel(GaussianKernel(gamma=0.5)))
    reference, lik_ref, losses_ref = _train_exact(x, y, _rbf(0.5))
    assert losses[-1] == pytest.approx(losses_ref[-1], rel=1e-9)
    gamma = float(ours.covar_module.base_kernel.gamma)
    length = float(reference.covar_module.base_kernel.lengthscale)
    assert 1.0 / np.sqrt(2.0 * gamma) == pytest.approx(length, rel=1e-4)
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False):
        mean, mean_ref = lik(ours(x_test)).mean, lik_ref(reference(x_test)).mean
    torch.testing.assert_close(mean, mean_ref, rtol=1e-4, atol=1e-5)
    rmse = float(torch.sqrt(torch.mean((mean - _smooth(x_test)) ** 2)))
    learnt_noise = float(lik.noise)
    # the posterior mean is far closer to f than the noisy data; the noise variance is within a factor 1.5 of 0.01
    assert rmse < 0.05 and 0.01 / 1.5 < learnt_noise < 0.015, (rmse, learnt_noise)


def test_exact_gp_recovers_the_time_of_a_heat_kernel_prior():
    # a draw of the prior with time 0.05; training starts ten times too large and must land near the truth
    rng = np.random.default_rng(7)
    truth, noise, n = 0.05, 0.05, 300
    X = sphere(rng, n, 3)
    K = HeatKernel(time=truth).gram(X) + noise**2 * np.eye(n)
    y = torch.from_numpy(np.linalg.cholesky(K) @ rng.standard_normal(n))
    model, _, losses = _train_exact(torch.from_numpy(X), y, GPyTorchKernel(HeatKernel(time=0.5)), noise=noise)
    learnt = float(model.covar_module.base_kernel.time)
    # as in the scikit-learn test: log(time) is pinned to about +-0.1 by 300 observations
    assert abs(np.log(learnt / truth)) < 0.3, learnt
    assert losses[-1] < losses[0]


def test_matern_gp_learns_the_same_lengthscale_through_both_frontends():
    # a GP regression on S^2 with the Matern kernel, nu = 3/2: scikit-learn (L-BFGS-B with the SklearnKernel
    # gradient) and GPyTorch (L-BFGS with autograd) maximise the same marginal likelihood (zero mean, signal variance,
    # length scale, noise), so they must land on the same hyperparameters and predictions
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel

    from dotkernels.integrations.sklearn import SklearnKernel

    rng = np.random.default_rng(3)
    noise = 0.1
    X, X_test = sphere(rng, 150, 3), sphere(rng, 400, 3)
    f_test = _smooth(torch.from_numpy(X_test)).numpy()
    y = _smooth(torch.from_numpy(X)).numpy() + noise * rng.standard_normal(150)
    matern = MaternKernel(nu=1.5, lengthscale=1.0)
    k = ConstantKernel() * SklearnKernel(matern, param_bounds={"lengthscale": (0.05, 10.0)}) + WhiteKernel(0.1)
    gp = GaussianProcessRegressor(k, random_state=0).fit(X, y)
    model, lik, _ = _train_exact(
        torch.from_numpy(X), torch.from_numpy(y), GPyTorchKernel(matern), mean=gpytorch.means.ZeroMean()
    )
    with torch.no_grad():
        prediction = model(torch.from_numpy(X_test)).mean.numpy()
    rmse = np.sqrt(np.mean((gp.predict(X_test) - f_test) ** 2))
    rmse_gpytorch = np.sqrt(np.mean((prediction - f_test) ** 2))
    assert gp.kernel_.k1.k2.kernel.lengthscale == pytest.approx(
        float(model.covar_module.base_kernel.lengthscale), rel=1e-4
    )
    assert gp.kernel_.k2.noise_level == pytest.approx(float(lik.noise), rel=1e-4)
    assert rmse == pytest.approx(rmse_gpytorch, rel=1e-4)
    # the noise variance is estimated to within a factor 1.5 (150 residuals); the posterior mean is closer to f than
    # the observations are (their RMSE is the noise level)
    assert noise**2 / 1.5 < gp.kernel_.k2.noise_level < 1.5 * noise**2
    assert rmse < noise, rmse


def test_exact_gp_recovers_the_lengthscale_of_a_matern_prior():
    # a draw of the Matern(3/2) prior with lengthscale 0.4 on S^2; training starts five times too large
    rng = np.random.default_rng(7)
    truth, noise, n = 0.4, 0.05, 150
    X = sphere(rng, n, 3)
    K = MaternKernel(nu=1.5, lengthscale=truth).gram(X) + noise**2 * np.eye(n)
    y = torch.from_numpy(np.linalg.cholesky(K) @ rng.standard_normal(n))
    kernel = GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=2.0))
    model, _, losses = _train_exact(torch.from_numpy(X), y, kernel, noise=noise, mean=gpytorch.means.ZeroMean())
    learnt = float(model.covar_module.base_kernel.lengthscale)
    # as for the heat kernel: the marginal likelihood pins log(lengthscale) to about +-0.1 here
    assert abs(np.log(learnt / truth)) < 0.3, learnt
    assert losses[-1] < losses[0]


def test_adam_fit_stays_in_the_default_range_with_a_finite_marginal_likelihood():
    # an ExactGP trained with Adam (first derivatives only) from a short and a long lengthscale: every
    # step has a finite marginal likelihood, a lengthscale inside (0.01, 100) and raises no SpectrumAccuracyWarning
    import warnings

    from dotkernels import SpectrumAccuracyWarning

    rng = np.random.default_rng(11)
    x = _points(rng, 80, 3)
    y = _smooth(x) + 0.1 * torch.from_numpy(rng.standard_normal(80))
    for start in (0.2, 50.0):
        kernel = GPyTorchKernel(MaternKernel(nu=1.5, lengthscale=start))
        likelihood = gpytorch.likelihoods.GaussianLikelihood()
        model = _ExactGP(x, y, likelihood, kernel, gpytorch.means.ZeroMean()).double()
        model.train()
        likelihood.train()
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        low, high = (
            float(b)
            for b in (kernel.raw_lengthscale_constraint.lower_bound, kernel.raw_lengthscale_constraint.upper_bound)
        )
        losses, lengthscales = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("error", SpectrumAccuracyWarning)
            for _ in range(50):
                optimizer.zero_grad()
                loss = -mll(model(x), y)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                lengthscales.append(float(kernel.lengthscale.detach()))
        assert np.all(np.isfinite(losses)), losses
        assert all(low <= ell <= high for ell in lengthscales), lengthscales
        assert np.isfinite(float(kernel.raw_lengthscale.grad))
        # it learnt: the loss went down and the lengthscale moved towards the smooth field's (about 1 to 5 here)
        assert losses[-1] < losses[0] - 0.1, (start, losses[0], losses[-1])
        assert abs(np.log(lengthscales[-1] / start)) > 0.1, (start, lengthscales[-1])


class _VariationalGP(gpytorch.models.ApproximateGP):
    def __init__(self, inducing, kernel):
        distribution = gpytorch.variational.CholeskyVariationalDistribution(inducing.shape[0])
        strategy = gpytorch.variational.VariationalStrategy(self, inducing, distribution, learn_inducing_locations=True)
        super().__init__(strategy)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = gpytorch.kernels.ScaleKernel(kernel)

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def test_variational_gp_with_inducing_points_on_the_sphere(rng):
    x, x_test = _points(rng, 300, 3), _points(rng, 200, 3)
    y = _smooth(x) + 0.1 * torch.from_numpy(rng.standard_normal(300))
    inducing = _points(rng, 40, 3)
    # the inducing points move in R^3 during training: the kernel projects them onto the sphere
    model = _VariationalGP(inducing, GPyTorchKernel(HeatKernel(time=0.3), normalize=True)).double()
    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    model.train()
    likelihood.train()
    optimizer = torch.optim.Adam([*model.parameters(), *likelihood.parameters()], lr=0.05)
    elbo = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=300)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = -elbo(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    with torch.no_grad():
        mean = model(x_test).mean
    rmse = float(torch.sqrt(torch.mean((mean - _smooth(x_test)) ** 2)))
    assert losses[-1] < losses[0] - 0.5
    assert float(model.covar_module.base_kernel.time) != pytest.approx(0.3, rel=1e-3)  # it learnt
    assert not torch.equal(model.variational_strategy.inducing_points, inducing)
    # 40 inducing points of a smooth degree-3 field: a fit well below the signal's spread
    assert rmse < 0.3 * float(_smooth(x_test).std()), rmse
