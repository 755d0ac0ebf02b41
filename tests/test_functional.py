"""dotkernels_ssl.functional: fused kernel regulariser against naive autograd references and the numpy core.

References are written here independently of the code under test: the Gram matrix with explicit low-degree
Gegenbauer formulas (shared/MATH.md §1) or closed-form profiles under plain autograd, and the core's numpy
``kernel.gram`` for values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from dotkernels import (  # noqa: E402
    ArcCosineKernel,
    DistanceKernel,
    GaussianKernel,
    LegendreSeriesKernel,
    MaternKernel,
    ProfileKernel,
    SFRIKKernel,
    legendre,
    parse_kernel,
)
from dotkernels_ssl.losses.functional import (  # noqa: E402
    describe_plan,
    kernel_regularizer,
    local_rows_regularizer,
    moments_regularizer,
    resolve_method,
)

DT = torch.float64


def _sphere(n, q, seed=0, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, q, generator=g, dtype=DT), dim=1).to(dtype)


def _rows(n, q, seed=0):
    """Rows off the sphere (norms in [0.6, 0.95], so |t_ij| < 1) for gradcheck, which perturbs them freely."""
    g = torch.Generator().manual_seed(seed)
    norms = 0.6 + 0.35 * torch.rand(n, 1, generator=g, dtype=DT)
    return (norms * F.normalize(torch.randn(n, q, generator=g, dtype=DT), dim=1)).requires_grad_()


# ------------------------------------------------------------------------------------------------------------
# naive references (plain autograd on the full Gram matrix)
# ------------------------------------------------------------------------------------------------------------


def _p(l, q, t):
    """Explicit normalised Gegenbauer polynomials of degree <= 3 (shared/MATH.md §1)."""
    if l == 1:
        return t
    if l == 2:
        return (q * t**2 - 1) / (q - 1)
    if l == 3:
        return ((q + 2) * t**3 - 3 * t) / (q - 1)
    raise AssertionError


def ref_phi_c(name, q, t):
    """Centred profile phi - a_0 written out by hand; a_0 from the core for the Gaussian."""
    if name == "sfrik":
        return _p(1, q, t) + 40 * _p(2, q, t) + 40 * _p(3, q, t)
    if name == "sfrik-2":
        return 2 * _p(1, q, t) + 5 * _p(2, q, t)
    if name == "gaussian":
        return torch.exp(-2 * 1.5 * (1 - t)) - GaussianKernel(1.5).uniform_mean_embedding(q=q)
    if name == "exponential":
        return torch.exp(0.7 * t) - parse_kernel("exponential:kappa=0.7").uniform_mean_embedding(q=q)
    raise AssertionError(name)


KERNEL_SPEC = {
    "sfrik": "sfrik",
    "sfrik-2": "sfrik:2,5",
    "gaussian": "gaussian:gamma=1.5",
    "exponential": "exponential:kappa=0.7",
}


def ref_regularizer(z, name, estimator="v"):
    n, q = z.shape
    V = ref_phi_c(name, q, z @ z.T)
    if estimator == "v":
        return V.sum() / n**2
    return (V.sum() - torch.diagonal(V).sum()) / (n * (n - 1))


def _value_and_grad(fn, z):
    z = z.detach().clone().requires_grad_()
    r = fn(z)
    (g,) = torch.autograd.grad(r, z)
    return r.detach(), g


# ------------------------------------------------------------------------------------------------------------
# values and gradients against the naive references
# ------------------------------------------------------------------------------------------------------------

CASES = [
    ("sfrik", "gram", None),
    ("sfrik", "blocked", 7),
    ("sfrik", "blocked", 64),
    ("sfrik-2", "gram", None),
    ("sfrik-2", "moments", None),
    ("gaussian", "gram", None),
    ("gaussian", "blocked", 5),
    ("exponential", "gram", None),
]


@pytest.mark.parametrize("estimator", ["v", "u"])
@pytest.mark.parametrize(("name", "method", "block"), CASES)
def test_float64_matches_naive(name, method, block, estimator):
    z = _sphere(37, 11, seed=1)
    r, g = _value_and_grad(
        lambda x: kernel_regularizer(x, KERNEL_SPEC[name], estimator=estimator, method=method, block_size=block), z
    )
    r0, g0 = _value_and_grad(lambda x: ref_regularizer(x, name, estimator), z)
    torch.testing.assert_close(r, r0, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, g0, rtol=1e-12, atol=1e-13 * float(g0.abs().max()))


@pytest.mark.parametrize("estimator", ["v", "u"])
@pytest.mark.parametrize("name", ["sfrik", "gaussian", "sfrik-2"])
def test_float32_matches_naive(name, estimator):
    z64 = _sphere(300, 512, seed=2)
    z32 = z64.float()
    methods = ["gram", "blocked"] + (["moments"] if name == "sfrik-2" else [])
    spec = KERNEL_SPEC[name]
    r0, g0 = _value_and_grad(lambda x: ref_regularizer(x, name, estimator), z32.double())
    r0_32, g0_32 = _value_and_grad(lambda x: ref_regularizer(x, name, estimator), z32)
    for method in methods:
        r, g = _value_and_grad(
            lambda x, m=method: kernel_regularizer(x, spec, estimator=estimator, method=m, block_size=64), z32
        )
        assert r.dtype == torch.float32 and g.dtype == torch.float32
        # against the exact (float64) value of the float32 inputs, and against the naive float32 computation
        assert abs(float(r) - float(r0)) <= 1e-5 * abs(float(r0)), (method, float(r), float(r0))
        assert float((g.double() - g0).abs().max()) <= 1e-5 * float(g0.abs().max()), method
        assert float((g - g0_32).abs().max()) <= 1e-5 * float(g0_32.abs().max()), method
        if estimator == "v":
            assert abs(float(r) - float(r0_32)) <= 1e-5 * abs(float(r0)), method
        else:  # R_U is near 0: the uncentred float32 naive value is the less accurate one
            assert abs(float(r) - float(r0)) <= abs(float(r0_32) - float(r0)) + 1e-7 * abs(float(r0)), method


def test_float32_centring_large_q():
    """Gaussian at q = 2048, U-statistic: a_0 = 0.135 while R_U = -2.4e-5. The centred float32 sum keeps ~6
    digits; subtracting a_0 from the float32 mean (the naive way) keeps ~3."""
    n, q = 400, 2048
    z = _sphere(n, q, seed=3).float()
    k = GaussianKernel(1.0)
    a0 = k.uniform_mean_embedding(q=q)
    r = kernel_regularizer(z, k, estimator="u")
    G = z.double() @ z.double().T
    V = torch.exp(-2.0 * (1 - G)) - a0
    exact = float((V.sum() - V.diagonal().sum()) / (n * (n - 1)))
    assert abs(exact) < 1e-3 * a0  # the cancellation is real
    err = abs(float(r) - exact)
    assert err <= 1e-5 * abs(exact)
    K32 = torch.exp(-2.0 * (1 - z @ z.T))
    naive = float((K32.sum() - K32.diagonal().sum()) / (n * (n - 1))) - a0
    assert abs(naive - exact) > 10 * err


# ------------------------------------------------------------------------------------------------------------
# values against the numpy core (kernel.gram)
# ------------------------------------------------------------------------------------------------------------

CORE_KERNELS = [
    "sfrik",
    "sfrik:1,40,40,3,2",
    "gaussian:gamma=2.5",
    "exponential:kappa=1.3",
    "heat:time=0.05",
    "poisson:rho=0.4",
    "imq:c=1,beta=0.5",
    "polynomial:p=3,c=1",
    "monomial:p=2",
    "arccos:order=0",
    "arccos:order=1",
    "energy",
    "distance:s=2",
]


@pytest.mark.parametrize("spec", CORE_KERNELS)
@pytest.mark.parametrize("estimator", ["v", "u"])
def test_value_matches_core_gram(spec, estimator):
    kernel = parse_kernel(spec)
    x = _sphere(33, 6, seed=4)
    K = kernel.gram(x.numpy())  # numpy float64, phi(1) on the diagonal for corner kernels
    a0 = kernel.uniform_mean_embedding(q=6)
    n = K.shape[0]
    expected = K.mean() - a0 if estimator == "v" else (K.sum() - np.trace(K)) / (n * (n - 1)) - a0
    for method, block in [("gram", None), ("blocked", 8)]:
        r = kernel_regularizer(x, kernel, estimator=estimator, method=method, block_size=block)
        assert abs(float(r) - expected) <= 1e-12 * max(1.0, abs(expected)), (method, float(r), expected)


def test_value_matches_core_mmd_module_if_present():
    mmd = pytest.importorskip("dotkernels.mmd")
    if not hasattr(mmd, "mmd2_uniform"):
        pytest.skip("dotkernels.mmd.mmd2_uniform not available")
    x = _sphere(40, 7, seed=5)
    for spec in ["sfrik", "gaussian:gamma=1"]:
        expected = float(mmd.mmd2_uniform(x.numpy(), parse_kernel(spec)))
        assert abs(float(kernel_regularizer(x, spec)) - expected) <= 1e-12 * max(1.0, abs(expected))


# ------------------------------------------------------------------------------------------------------------
# gradcheck (float64) for every custom function
# ------------------------------------------------------------------------------------------------------------

GRADCHECK = [
    ("sfrik", "gram", None),
    ("sfrik", "blocked", 3),
    ("sfrik:2,5", "moments", None),
    ("sfrik:2,5", "gram", None),
    ("gaussian:gamma=1", "gram", None),
    ("gaussian:gamma=1", "blocked", 4),
    ("exponential:kappa=2", "gram", None),
    ("heat:time=0.2", "gram", None),  # generic: kernel.profile / kernel.derivative
    ("heat:time=0.2", "blocked", 4),
    ("sfrik:" + ",".join(["1"] * 14), "gram", None),  # ill-conditioned monomial form at q = 3: Clenshaw
]


@pytest.mark.parametrize("estimator", ["v", "u"])
@pytest.mark.parametrize(("spec", "method", "block"), GRADCHECK)
def test_gradcheck(spec, method, block, estimator):
    q = 3 if spec.count(",") > 5 else 5
    z = _rows(9, q, seed=6)
    assert float((z @ z.T).detach().abs().max()) < 1
    fn = lambda x: kernel_regularizer(x, spec, estimator=estimator, method=method, block_size=block)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("estimator", ["v", "u"])
def test_gradcheck_moments_function(estimator):
    z = _rows(10, 4, seed=7)
    fn = lambda x: moments_regularizer(x, "monomial:p=2", estimator=estimator)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_gradcheck_kernel_without_derivative_and_corner():
    # a profile kernel without derivative: plain autograd on row blocks with the doubled row gradient
    k = ProfileKernel(lambda t: (1.0 + t) ** 2 / 4)
    assert describe_plan(k, q=4) == "generic-autograd"
    z = _rows(8, 4, seed=8)
    for est in "vu":
        fn = lambda x, e=est: kernel_regularizer(x, k, estimator=e, block_size=3, method="blocked")  # noqa: E731
        assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-8, rtol=1e-6)
    # a corner kernel: the diagonal is phi(1) (constant), off-diagonal entries stay inside (-1, 1)
    for est in "vu":
        fn = lambda x, e=est: kernel_regularizer(x, ArcCosineKernel(1), estimator=e)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("estimator", ["v", "u"])
def test_matern_nu_one_has_a_finite_gradient(estimator):
    # phi'(1) is infinite at nu = 1 (a (1 - t) log(1 - t) term): a corner kernel, whose diagonal phi(1) is constant
    kernel = MaternKernel(1.0, 0.5)
    assert kernel.has_corner and math.isinf(float(kernel.derivative(1.0, q=5)))
    z = _sphere(9, 5, seed=9)
    z = torch.cat([z, z[:2]])  # coinciding points: t = 1 off the diagonal too
    K = kernel.gram(z.numpy())
    n = K.shape[0]
    a0 = kernel.uniform_mean_embedding(q=5)
    expected = K.mean() - a0 if estimator == "v" else (K.sum() - np.trace(K)) / (n * (n - 1)) - a0
    x = z.clone().requires_grad_(True)
    value = kernel_regularizer(x, kernel, estimator=estimator)
    assert abs(float(value.detach()) - expected) <= 1e-12
    value.backward()
    assert bool(torch.isfinite(x.grad).all())
    # inside the sphere (|t| < 1), where the gradient is the derivative's
    fn = lambda x: kernel_regularizer(x, kernel, estimator=estimator)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (_rows(9, 5, seed=9),), eps=1e-6, atol=1e-8, rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# local rows: a simulated world in one process
# ------------------------------------------------------------------------------------------------------------


def _simulated_world(z, kernel, sizes, estimator="v", block=None):
    """(1/W) sum_r L_r with L_r the local-rows share of rank r; autograd reaches z only through the local rows."""
    cols = z.detach()
    shares, start = [], 0
    for s in sizes:
        shares.append(
            local_rows_regularizer(
                z[start : start + s],
                cols,
                kernel,
                row_offset=start,
                world_size=len(sizes),
                estimator=estimator,
                block_size=block,
            )
        )
        start += s
    return torch.stack(shares).mean()


@pytest.mark.parametrize("estimator", ["v", "u"])
@pytest.mark.parametrize("spec", ["sfrik", "gaussian:gamma=2", "heat:time=0.1", "arccos:order=0"])
@pytest.mark.parametrize("sizes", [(10, 10), (3, 12, 5), (1, 19)])
def test_local_rows_shares_average_to_global(spec, sizes, estimator):
    z = _sphere(20, 6, seed=9)
    r, g = _value_and_grad(lambda x: kernel_regularizer(x, spec, estimator=estimator, method="gram"), z)
    for block in (None, 2):
        rs, gs = _value_and_grad(lambda x, b=block: _simulated_world(x, spec, sizes, estimator, b), z)
        torch.testing.assert_close(rs, r, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(gs, g, rtol=1e-12, atol=1e-13 * float(g.abs().max()))


@pytest.mark.parametrize("estimator", ["v", "u"])
def test_gradcheck_local_rows(estimator):
    z = _rows(9, 5, seed=10)
    for spec in ["sfrik", "gaussian:gamma=1"]:
        fn = lambda x, k=spec: _simulated_world(x, k, (4, 5), estimator, 2)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_local_rows_share_is_not_its_own_derivative():
    """The share's backward is W * dR/dz_local (sum over ranks), twice the derivative of the share alone."""
    z = _sphere(12, 5, seed=11)
    zl = z[:6].clone().requires_grad_()
    share = local_rows_regularizer(zl, z, "sfrik", row_offset=0, world_size=2)
    (g,) = torch.autograd.grad(share, zl)
    zl2 = z[:6].clone().requires_grad_()
    G = zl2 @ z.T
    own = 2 * ref_phi_c("sfrik", 5, G).sum() / 144  # the share with detached columns, by plain autograd
    torch.testing.assert_close(share.detach(), own.detach(), rtol=1e-12, atol=0)
    (g_own,) = torch.autograd.grad(own, zl2)
    torch.testing.assert_close(g, 2 * g_own, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------------------
# consistency between methods
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["v", "u"])
@pytest.mark.parametrize("spec", ["sfrik:1,40", "monomial:p=2", "polynomial:p=2,c=0.5", "sfrik:3"])
def test_moments_equals_gram(spec, estimator):
    for z in (_sphere(50, 6, seed=12), _rows(50, 6, seed=12).detach()):
        r, g = _value_and_grad(lambda x: kernel_regularizer(x, spec, estimator=estimator, method="gram"), z)
        rm, gm = _value_and_grad(lambda x: kernel_regularizer(x, spec, estimator=estimator, method="moments"), z)
        torch.testing.assert_close(rm, r, rtol=1e-11, atol=1e-14)
        torch.testing.assert_close(gm, g, rtol=1e-11, atol=1e-13 * float(g.abs().max()))


def test_moments_paper_identity():
    """b1 P1 + b2 P2: MMD^2 = b1 ||mean||^2 + b2 q/(q-1) ||S - I/q||_F^2 (shared/PAPER.md, special cases)."""
    z = _sphere(80, 7, seed=13)
    q = 7
    S = z.T @ z / 80
    expected = 3 * z.mean(0).pow(2).sum() + 11 * q / (q - 1) * (S - torch.eye(q, dtype=DT) / q).pow(2).sum()
    for method in ("moments", "gram"):
        torch.testing.assert_close(kernel_regularizer(z, "sfrik:3,11", method=method), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("block", [1, 2, 5, 16, 17, 100])
def test_blocked_equals_gram(block):
    z = _sphere(17, 9, seed=14)
    for spec in ("sfrik", "gaussian:gamma=1", "energy"):
        r, g = _value_and_grad(lambda x, k=spec: kernel_regularizer(x, k, method="gram"), z)
        rb, gb = _value_and_grad(lambda x, k=spec: kernel_regularizer(x, k, method="blocked", block_size=block), z)
        torch.testing.assert_close(rb, r, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(gb, g, rtol=1e-13, atol=1e-14 * float(g.abs().max()))


def test_clenshaw_path_high_degree():
    """Degree 14 at q = 3: the monomial form is ill-conditioned, Clenshaw is used; reference: the core's recurrence."""
    coef = [0.0] + [1.0 / (l + 1) for l in range(1, 15)]
    k = LegendreSeriesKernel(coef)
    assert describe_plan(k, q=3).startswith("series-clenshaw")
    z = _sphere(25, 3, seed=15)

    def ref(x):
        G = x @ x.T
        return sum(c * legendre(l, G, q=3, validate=False) for l, c in enumerate(coef) if c).mean()

    for dtype, tol in ((DT, 1e-12), (torch.float32, 1e-5)):
        zz = z.to(dtype)
        r, g = _value_and_grad(lambda x: kernel_regularizer(x, k), zz)
        r0, g0 = _value_and_grad(ref, zz.double())
        assert abs(float(r) - float(r0)) <= tol * abs(float(r0))
        assert float((g.double() - g0).abs().max()) <= tol * float(g0.abs().max())


def test_plans_and_auto_method():
    assert describe_plan("sfrik", q=8192).startswith("series-horner")
    assert describe_plan(SFRIKKernel((1, 40, 40)), q=2).startswith("series-horner")
    assert describe_plan("gaussian:gamma=2", q=16).startswith("exp")
    assert describe_plan(2.0 * GaussianKernel(1.0), q=16) == "exp (kappa = 2, log A = -1.30685)"
    assert describe_plan("heat:time=0.1", q=16) == "generic"
    assert describe_plan(DistanceKernel(2.0), q=16).startswith("series")  # even s: a polynomial
    assert resolve_method("auto", "sfrik:1,40", q=16, n_local=64, n_total=64) == ("moments", 64)
    assert resolve_method("auto", "sfrik:1,40", q=128, n_local=64, n_total=64) == ("gram", 64)
    assert resolve_method("auto", "sfrik", q=16, n_local=64, n_total=128) == ("gram", 64)
    assert resolve_method("auto", "sfrik", q=16, n_local=64, n_total=128, block_size=16) == ("blocked", 16)
    assert resolve_method("blocked", "sfrik", q=16, n_local=64, n_total=128) == ("blocked", 64)
    method, block = resolve_method("auto", "sfrik", q=16, n_local=1 << 16, n_total=1 << 16)
    assert method == "blocked" and block * (1 << 16) * 4 <= 1 << 28


# ------------------------------------------------------------------------------------------------------------
# memory: what is saved for backward, and which matrices are created
# ------------------------------------------------------------------------------------------------------------


def _saved_shapes(fn, z):
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(z)
    return shapes


def test_saves_no_n_by_n_tensor():
    n, q = 64, 16
    z = _sphere(n, q, seed=16).requires_grad_()
    for spec, method in (
        ("sfrik", "gram"),
        ("gaussian:gamma=1", "gram"),
        ("sfrik", "blocked"),
        ("heat:time=0.1", "gram"),
    ):
        shapes = _saved_shapes(lambda x, k=spec, m=method: kernel_regularizer(x, k, method=m, block_size=8), z)
        assert shapes == [(n, q)], (spec, shapes)  # only the (n, q) gradient
    naive = _saved_shapes(lambda x: ref_regularizer(x, "sfrik"), z)
    assert sum(1 for s in naive if s == (n, n)) >= 2  # the naive reference keeps several n x n tensors
    # no gradient needed: nothing saved, and the value is unchanged
    with torch.no_grad():
        r_ng = kernel_regularizer(z, "sfrik")
    assert _saved_shapes(lambda x: kernel_regularizer(x.detach(), "sfrik"), z) == []
    torch.testing.assert_close(r_ng, kernel_regularizer(z, "sfrik").detach(), rtol=0, atol=0)


class _ShapeRecorder(torch.overrides.TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def test_blocked_never_creates_n_by_n():
    n, q, b = 48, 8, 8
    z = _sphere(n, q, seed=17).requires_grad_()
    for spec in ("sfrik", "gaussian:gamma=1", "heat:time=0.1"):
        with _ShapeRecorder() as rec:
            kernel_regularizer(z, spec, method="blocked", block_size=b).backward()
        two_d = [s for s in rec.shapes if len(s) == 2]
        assert (b, n) in two_d and (n, n) not in two_d, spec
        assert max(s[0] * s[1] for s in two_d) <= max(b * n, n * q)
    with _ShapeRecorder() as rec:
        kernel_regularizer(z, "sfrik", method="gram")
    assert (n, n) in rec.shapes  # the recorder sees the Gram matrix when there is one


def test_retain_graph_and_grad_output_scaling():
    z = _sphere(20, 5, seed=18).requires_grad_()
    r = kernel_regularizer(z, "sfrik")
    (g1,) = torch.autograd.grad(3.0 * r, z, retain_graph=True)
    (g2,) = torch.autograd.grad(r, z)
    torch.testing.assert_close(g1, 3.0 * g2, rtol=1e-15, atol=0)


# ------------------------------------------------------------------------------------------------------------
# mixed precision
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["sfrik", "gaussian:gamma=2"])
def test_autocast_bf16_equals_float32(spec):
    z = _sphere(200, 256, seed=19).float()
    ref = kernel_regularizer(z, spec)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = kernel_regularizer(z, spec)
        naive = (z @ z.T).float()  # what autocast would do to the Gram matrix
    assert r.dtype == torch.float32
    assert abs(float(r) - float(ref)) <= 1e-4 * abs(float(ref))
    assert float((naive - z @ z.T).abs().max()) > 1e-4  # bf16 inner products would lose the signal
    # half-precision inputs are promoted to float32
    zb = z.bfloat16().requires_grad_()
    rb = kernel_regularizer(zb, spec)
    rb.backward()
    assert rb.dtype == torch.float32 and zb.grad.dtype == torch.bfloat16
    torch.testing.assert_close(rb, kernel_regularizer(zb.detach().float(), spec), rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------------------


def test_bad_input():
    z = _sphere(10, 4)
    with pytest.raises(ValueError, match="2-D"):
        kernel_regularizer(z[0], "sfrik")
    with pytest.raises(ValueError, match="q >= 2"):
        kernel_regularizer(z[:, :1], "sfrik")
    with pytest.raises(TypeError, match="floating"):
        kernel_regularizer(torch.ones(4, 3, dtype=torch.int64), "sfrik")
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        kernel_regularizer(z.numpy(), "sfrik")
    with pytest.raises(ValueError, match="method"):
        kernel_regularizer(z, "sfrik", method="fast")
    with pytest.raises(ValueError, match="estimator"):
        kernel_regularizer(z, "sfrik", estimator="w")
    with pytest.raises(ValueError, match="unknown kernel"):
        kernel_regularizer(z, "gausian")
    with pytest.raises(TypeError, match="kernel"):
        kernel_regularizer(z, 3)
    with pytest.raises(ValueError, match="degree <= 2"):
        kernel_regularizer(z, "sfrik", method="moments")
    with pytest.raises(ValueError, match="degree <= 2"):
        moments_regularizer(z, "gaussian")
    with pytest.raises(ValueError, match="block_size"):
        kernel_regularizer(z, "sfrik", method="blocked", block_size=0)
    with pytest.raises(ValueError, match="U-statistic"):
        kernel_regularizer(z[:1], "sfrik", estimator="u")
    with pytest.raises(ValueError, match="row_offset"):
        local_rows_regularizer(z[:4], z, row_offset=8)
    with pytest.raises(ValueError, match="dimension"):
        local_rows_regularizer(z[:4], z[:, :3])
    with pytest.raises(ValueError, match="world_size"):
        local_rows_regularizer(z[:4], z, world_size=0)
    with pytest.raises(ValueError, match="q must be"):
        describe_plan("sfrik", q=1)


@pytest.mark.parametrize("estimator", ["v", "u"])
def test_chunked_elementwise_pass_equals_unchunked(monkeypatch, estimator):
    """The elementwise work runs over row chunks of the Gram block (cache-sized); tiny chunks change nothing."""
    import dotkernels_ssl.losses.functional as fn

    z = _sphere(23, 3, seed=20)
    specs = ["sfrik", "sfrik:" + ",".join(["1"] * 14), "gaussian:gamma=1", "heat:time=0.1", "energy"]
    ref = {s: _value_and_grad(lambda x, k=s: kernel_regularizer(x, k, estimator=estimator), z) for s in specs}
    monkeypatch.setattr(fn, "CHUNK_BYTES", 3 * 23 * 8)  # 3-row chunks
    for s in specs:
        for method, block in (("gram", None), ("blocked", 5)):
            r, g = _value_and_grad(
                lambda x, k=s, m=method, b=block: kernel_regularizer(x, k, estimator=estimator, method=m, block_size=b),
                z,
            )
            torch.testing.assert_close(r, ref[s][0], rtol=1e-13, atol=1e-15)
            torch.testing.assert_close(g, ref[s][1], rtol=1e-13, atol=1e-14 * float(ref[s][1].abs().max()))
