"""dotkernels_ssl.losses: KernelUniformityLoss, SFRIKLoss and build_loss against naive float64 references.

References: normalisation written out, the Gram matrix with explicit Gegenbauer formulas (shared/MATH.md §1) under
plain autograd, the numpy core's ``kernel.gram`` for values, and the paper's identities (shared/PAPER.md).
"""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from dotkernels import GaussianKernel, SFRIKKernel, parse_kernel  # noqa: E402
from dotkernels_ssl import losses as L  # noqa: E402
from dotkernels_ssl.losses import (  # noqa: E402
    PRESETS,
    AlignUniformLoss,
    BarlowTwinsLoss,
    KernelUniformityLoss,
    LossTerms,
    NTXentLoss,
    SFRIKLoss,
    VICRegLoss,
    build_loss,
    kernel_uniformity_loss,
    sfrik_loss,
)

DT = torch.float64


def _views(n=12, q=6, v=2, seed=0, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, q, generator=g, dtype=DT)
    return [(base + 0.6 * torch.randn(n, q, generator=g, dtype=DT)).to(dtype) for _ in range(v)]


def _unit(z):
    return z / torch.sqrt((z * z).sum(dim=1, keepdim=True))


def _pairs(v):
    return [(0, 1)] + [(g, k) for g in (0, 1) for k in range(2, v)]


def ref_sfrik_r(u, b=(1.0, 40.0, 40.0)):
    """n^-2 sum_ij sum_l b_l P_{l,q}(t_ij) with explicit P_1, P_2, P_3 (a_0 = 0)."""
    q = u.shape[1]
    t = u @ u.T
    P = [t, (q * t**2 - 1) / (q - 1), ((q + 2) * t**3 - 3 * t) / (q - 1)]
    return sum(bl * P[l] for l, bl in enumerate(b)).mean()


def ref_gauss_r(u, gamma, estimator="v"):
    n, q = u.shape
    K = torch.exp(-2 * gamma * (1 - u @ u.T))
    a0 = GaussianKernel(gamma).uniform_mean_embedding(q=q)
    if estimator == "v":
        return K.mean() - a0
    return (K.sum() - torch.diagonal(K).sum()) / (n * (n - 1)) - a0


def ref_sfrik_loss(views, sim=4000.0, mmd=1.0, r=ref_sfrik_r):
    us = [_unit(v) for v in views]
    n, q = us[0].shape
    inv = sum(((us[a] - us[b]) ** 2).sum() / (n * q) for a, b in _pairs(len(us))) / len(_pairs(len(us)))
    unif = sum(r(u) for u in us) / len(us)
    return sim * inv + mmd * unif, inv, unif


def _grads(fn, views):
    vs = [v.detach().clone().requires_grad_() for v in views]
    out = fn(vs)
    loss = out.loss if isinstance(out, LossTerms) else out
    loss.backward()
    return loss.detach(), [v.grad for v in vs]


# ------------------------------------------------------------------------------------------------------------
# SFRIKLoss
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_views", [2, 3, 4])
@pytest.mark.parametrize("method", ["auto", "gram", "blocked"])
def test_sfrik_matches_naive(n_views, method):
    views = _views(v=n_views, seed=n_views)
    loss_fn = SFRIKLoss(method=method, block_size=5)
    res = loss_fn.forward_terms(views)
    ref, inv, unif = ref_sfrik_loss(views)
    torch.testing.assert_close(res.loss, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res.terms["invariance"], inv, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(res.terms["uniformity"], unif, rtol=1e-12, atol=1e-15)
    assert res.weights == {"invariance": 4000.0, "uniformity": 1.0}
    l1, g1 = _grads(lambda vs: loss_fn(vs), views)
    l0, g0 = _grads(lambda vs: ref_sfrik_loss(vs)[0], views)
    torch.testing.assert_close(l1, l0, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * float(b.abs().max()))


def test_sfrik_two_tensors_equals_list_and_functional():
    z1, z2 = _views(seed=1)
    loss = SFRIKLoss(invariance_weight=10.0, uniformity_weight=2.0)
    a = loss(z1, z2)
    b = loss([z1, z2])
    c = sfrik_loss(z1, z2, invariance_weight=10.0, uniformity_weight=2.0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c.loss, rtol=0, atol=0)
    ref, _, _ = ref_sfrik_loss([z1, z2], sim=10.0, mmd=2.0)
    torch.testing.assert_close(a, ref, rtol=1e-12, atol=1e-12)
    # loss = sum(weights * terms)
    total = sum(c.weights[k] * c.terms[k] for k in c.terms)
    torch.testing.assert_close(c.loss, total, rtol=1e-15, atol=0)
    scal = c.scalars()
    assert set(scal) == {"loss", "invariance", "uniformity"} and all(isinstance(v, float) for v in scal.values())


def test_sfrik_invariance_is_mse_of_normalised_views():
    z1, z2 = _views(seed=2)
    res = sfrik_loss(z1, z2)
    torch.testing.assert_close(res.terms["invariance"], F.mse_loss(_unit(z1), _unit(z2)), rtol=1e-13, atol=0)


def test_sfrik_coefficients_and_kernel_override():
    views = _views(seed=3)
    b = (2.0, 7.0, 3.0)
    res = SFRIKLoss(coefficients=b).forward_terms(views)
    ref, _, _ = ref_sfrik_loss(views, r=lambda u: ref_sfrik_r(u, b))
    torch.testing.assert_close(res.loss, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sfrik_loss(views, kernel="sfrik:2,7,3").loss, res.loss, rtol=0, atol=0)
    # kernel= replaces the SFRIK kernel, string or object; both together are rejected
    with pytest.raises(ValueError, match="not both"):
        SFRIKLoss(coefficients=(5.0,), kernel="gaussian")
    with pytest.raises(ValueError, match="not both"):
        sfrik_loss(views, coefficients=(5.0,), kernel="gaussian")
    for kernel in ("gaussian:gamma=2", GaussianKernel(2.0)):
        loss = SFRIKLoss(kernel=kernel, invariance_weight=3.0)
        assert loss.kernel == GaussianKernel(2.0)
        ref, _, _ = ref_sfrik_loss(views, sim=3.0, r=lambda u: ref_gauss_r(u, 2.0))
        l1, g1 = _grads(lambda vs, lf=loss: lf(vs), views)
        _, g0 = _grads(lambda vs: ref_sfrik_loss(vs, sim=3.0, r=lambda u: ref_gauss_r(u, 2.0))[0], views)
        torch.testing.assert_close(l1, ref, rtol=1e-12, atol=1e-14)
        for a, c in zip(g1, g0):
            torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-13 * float(c.abs().max()))


def test_sfrik_presets_and_defaults():
    loss = SFRIKLoss()
    assert loss.kernel == SFRIKKernel((1.0, 40.0, 40.0))
    assert (loss.invariance_weight, loss.uniformity_weight, loss.estimator) == (4000.0, 1.0, "v")
    assert SFRIKLoss.from_preset("resnet50").invariance_weight == 40000.0
    assert SFRIKLoss.from_preset("resnet18", invariance_weight=1.0).invariance_weight == 1.0
    assert PRESETS["sfrik"]["resnet18"] == {"invariance_weight": 4000.0, "uniformity_weight": 1.0}
    # q = 1024: the paper's balance lambda = uniformity_weight * q / invariance_weight = 2.048
    assert PRESETS["sfrik"]["fashion-mnist"]["invariance_weight"] == 1024 / 2.048
    assert PRESETS["kernel"] == PRESETS["sfrik"]
    with pytest.raises(ValueError, match="preset"):
        SFRIKLoss.from_preset("resnet34")
    assert "sfrik" in repr(loss).lower()


def test_sfrik_u_estimator():
    views = _views(seed=4)
    res = sfrik_loss(views, estimator="u", kernel="gaussian:gamma=1.5", invariance_weight=1.0)
    us = [_unit(v) for v in views]
    unif = sum(ref_gauss_r(u, 1.5, "u") for u in us) / 2
    torch.testing.assert_close(res.terms["uniformity"], unif, rtol=1e-12, atol=1e-15)
    # the estimator's name is case-insensitive, as in dotkernels.mmd2_uniform
    upper = sfrik_loss(views, estimator="U", kernel="gaussian:gamma=1.5", invariance_weight=1.0)
    assert torch.equal(upper.loss, res.loss) and SFRIKLoss(estimator="U").estimator == "u"


# ------------------------------------------------------------------------------------------------------------
# KernelUniformityLoss
# ------------------------------------------------------------------------------------------------------------

CORE = ["sfrik", "gaussian:gamma=2.5", "heat:time=0.05", "sfrik:1,40", "energy", "arccos:order=1", "poisson:rho=0.3"]


@pytest.mark.parametrize("spec", CORE)
@pytest.mark.parametrize("estimator", ["v", "u"])
def test_kernel_uniformity_matches_core(spec, estimator):
    views = _views(n=15, q=5, v=3, seed=5)
    kernel = parse_kernel(spec)
    expected = []
    for v in views:
        x = _unit(v).numpy()
        K = kernel.gram(x)
        n = K.shape[0]
        a0 = kernel.uniform_mean_embedding(q=5)
        expected.append(K.mean() - a0 if estimator == "v" else (K.sum() - np.trace(K)) / (n * (n - 1)) - a0)
    loss = KernelUniformityLoss(spec, estimator=estimator)
    got = loss(views)
    assert abs(float(got) - float(np.mean(expected))) <= 1e-12 * max(1.0, abs(float(np.mean(expected))))
    # one view, and the functional twin
    one = loss(views[0])
    assert abs(float(one) - expected[0]) <= 1e-12 * max(1.0, abs(expected[0]))
    twin = kernel_uniformity_loss(views[0], kernel=spec, estimator=estimator)
    assert twin.weights == {"uniformity": 1.0}
    torch.testing.assert_close(twin.loss, one, rtol=0, atol=0)
    torch.testing.assert_close(loss([views[0]]), one, rtol=0, atol=0)


def test_kernel_uniformity_gradient_matches_naive():
    z = _views(n=20, q=7, v=1, seed=6)[0]
    l1, (g1,) = _grads(lambda vs: KernelUniformityLoss("gaussian:gamma=1")(vs[0]), [z])
    l0, (g0,) = _grads(lambda vs: ref_gauss_r(_unit(vs[0]), 1.0), [z])
    torch.testing.assert_close(l1, l0, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(g1, g0, rtol=1e-12, atol=1e-13 * float(g0.abs().max()))


def test_paper_identity_gaussian_is_wang_isola_uniformity():
    """Wang & Isola's uniformity is log(a_0 + MMD_U^2) with the Gaussian kernel of the same gamma (shared/PAPER.md)."""
    views = _views(n=16, q=6, seed=7)
    for gamma in (1.0, 2.5):
        auh = AlignUniformLoss(gamma=gamma).forward_terms(views).terms["uniformity"]
        mmd_u = kernel_uniformity_loss(views, kernel=GaussianKernel(gamma), estimator="u").loss
        per_view = [
            torch.log(
                GaussianKernel(gamma).uniform_mean_embedding(q=6)
                + kernel_uniformity_loss(v, kernel=f"gaussian:gamma={gamma}", estimator="u").loss
            )
            for v in views
        ]
        torch.testing.assert_close(auh, sum(per_view) / 2, rtol=1e-12, atol=1e-13)
        assert math.isfinite(float(mmd_u))


def test_paper_identity_degree_two_moments():
    """b1 P1 + b2 P2: MMD^2 = b1 ||E z||^2 + b2 q/(q-1) ||E z z^T - I/q||_F^2, whatever the method."""
    z = _views(n=40, q=5, v=1, seed=8)[0]
    u = _unit(z)
    q = 5
    S = u.T @ u / 40
    expected = 2.0 * u.mean(0).pow(2).sum() + 9.0 * q / (q - 1) * (S - torch.eye(q, dtype=DT) / q).pow(2).sum()
    for method in ("auto", "moments", "gram", "blocked"):
        got = KernelUniformityLoss("sfrik:2,9", method=method, block_size=7)(z)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


def test_uniform_sample_has_small_mmd_and_collapse_large():
    g = torch.Generator().manual_seed(9)
    z = torch.randn(2000, 16, generator=g, dtype=DT)
    loss = KernelUniformityLoss("sfrik", estimator="u")
    # unbiased: E MMD_U^2 = 0 under uniformity; sd = sqrt(2/(n(n-1)) sum a_l^2 / N(q,l)) ~ 1.3e-2 here
    assert abs(float(loss(z))) < 0.1
    collapsed = z[:1].repeat(2000, 1) + 1e-3 * z
    assert float(loss(collapsed)) > 50  # phi(1) - a_0 = 81 at collapse


def test_zero_row_is_finite():
    z1, z2 = _views(seed=10)
    z1 = z1.clone()
    z1[0] = 0.0
    for loss in (SFRIKLoss(), KernelUniformityLoss("gaussian:gamma=2")):
        val, grads = _grads(lambda vs, lf=loss: lf(vs), [z1, z2])
        assert math.isfinite(float(val)) and all(bool(torch.isfinite(g).all()) for g in grads)


# ------------------------------------------------------------------------------------------------------------
# mixed precision
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: SFRIKLoss(), lambda: KernelUniformityLoss("gaussian:gamma=2")])
def test_autocast_bf16_equals_float32(make):
    z1, z2 = (v.float() for v in _views(n=256, q=128, seed=11))
    loss = make()
    ref = loss(z1, z2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(z1, z2)
    assert got.dtype == torch.float32
    assert abs(float(got) - float(ref)) <= 1e-4 * abs(float(ref))
    # bf16 inputs: promoted to float32, gradients come back in bf16
    b1, b2 = z1.bfloat16().requires_grad_(), z2.bfloat16().requires_grad_()
    out = loss(b1, b2)
    out.backward()
    assert out.dtype == torch.float32 and b1.grad.dtype == torch.bfloat16
    assert bool(torch.isfinite(b1.grad.float()).all())


# ------------------------------------------------------------------------------------------------------------
# factory and re-exports
# ------------------------------------------------------------------------------------------------------------


def test_build_loss():
    assert type(build_loss("sfrik")) is SFRIKLoss
    assert build_loss("SFRIK", invariance_weight=1.0).invariance_weight == 1.0
    assert build_loss("sfrik", preset="resnet50").invariance_weight == 40000.0
    assert build_loss("sfrik", preset="resnet50", invariance_weight=2.0).invariance_weight == 2.0
    k = build_loss("kernel", kernel="gaussian:gamma=2.5", invariance_weight=100.0)
    assert type(k) is SFRIKLoss and k.kernel == GaussianKernel(2.5) and k.invariance_weight == 100.0
    assert build_loss("kernel", kernel="gaussian", preset="resnet18").invariance_weight == 4000.0
    assert build_loss("sfrik", kernel="heat:time=0.01").kernel == parse_kernel("heat:time=0.01")
    assert build_loss("sfrik", coefficients=(1.0, 2.0)).kernel == SFRIKKernel((1.0, 2.0))
    with pytest.raises(ValueError, match="not both"):
        build_loss("sfrik", kernel="gaussian", coefficients=(1.0,))
    assert type(build_loss("auh")) is AlignUniformLoss
    assert build_loss("auh", preset="resnet18").invariance_weight == 3000.0
    assert build_loss("barlow", preset="zbontar").redundancy_weight == 0.0051
    assert type(build_loss("vicreg", invariance_weight=10.0)) is VICRegLoss
    with pytest.raises(ValueError, match="unknown preset"):
        build_loss("vicreg", preset="wang_isola")
    assert type(build_loss("barlow")) is BarlowTwinsLoss
    assert type(build_loss("barlow_twins")) is BarlowTwinsLoss
    assert type(build_loss("simclr", temperature=0.2)) is NTXentLoss
    assert type(build_loss("nt_xent")) is NTXentLoss
    with pytest.raises(ValueError, match="unknown loss method"):
        build_loss("byol")
    with pytest.raises(ValueError, match="needs kernel"):
        build_loss("kernel")
    with pytest.raises(ValueError, match="kernel= applies"):
        build_loss("vicreg", kernel="gaussian")
    with pytest.raises(ValueError, match="unknown kernel"):
        build_loss("kernel", kernel="gausian:gamma=1")
    with pytest.raises(TypeError):
        build_loss("sfrik", not_an_option=1)
    with pytest.raises(TypeError, match="string"):
        build_loss(3)
    # every built loss runs on two views
    views = _views(seed=12)
    for name in L.LOSS_NAMES:
        loss = build_loss(name, kernel="gaussian:gamma=1" if name == "kernel" else None)
        assert math.isfinite(float(loss(*views)))


def test_reexports():
    import dotkernels_ssl
    from dotkernels_ssl.losses import baselines as B

    for name in ("AlignUniformLoss", "VICRegLoss", "BarlowTwinsLoss", "NTXentLoss", "vicreg_loss"):
        assert getattr(L, name) is getattr(B, name)
    assert set(L.__all__) >= {"KernelUniformityLoss", "SFRIKLoss", "build_loss", "sfrik_loss", "kernel_uniformity_loss"}
    assert set(dotkernels_ssl.__all__) == set(L.__all__)
    assert all(getattr(dotkernels_ssl, name) is getattr(L, name) for name in L.__all__)


def test_presets_build_every_loss():
    """Every preset is a valid set of options of its method's loss, under the names of the loss."""
    views = _views(seed=14)
    for method, presets in PRESETS.items():
        for name in presets:
            loss = build_loss(method, kernel="gaussian" if method == "kernel" else None, preset=name)
            assert set(presets[name]) <= set(loss.options)
            assert math.isfinite(float(loss(*views)))


def test_modules_are_the_functions():
    """A module's forward_terms is its functional twin with the module's options, bit for bit."""
    views = _views(seed=15)
    pairs = [
        (SFRIKLoss(invariance_weight=7.0), sfrik_loss),
        (KernelUniformityLoss("gaussian:gamma=1.5", estimator="u"), kernel_uniformity_loss),
        (VICRegLoss(variance_weight=3.0), L.vicreg_loss),
        (BarlowTwinsLoss(redundancy_weight=0.1), L.barlow_twins_loss),
        (AlignUniformLoss(gamma=3.0), L.align_uniform_loss),
        (NTXentLoss(0.3), L.nt_xent_loss),
    ]
    for module, function in pairs:
        a, b = module.forward_terms(views), function(views, **module.options)
        assert a.weights == b.weights and torch.equal(a.loss, b.loss)
        assert torch.equal(module(views), a.loss)
        # the constructor's parameters are the function's options: same names, order and defaults
        options = list(inspect.signature(function).parameters.values())[2:]
        init = list(inspect.signature(type(module)).parameters.values())
        assert [(p.name, p.default) for p in init] == [(p.name, p.default) for p in options]
    with pytest.raises(TypeError):
        VICRegLoss(sim_coeff=1.0)  # not an option of vicreg_loss


def test_losses_never_import_pretraining():
    """Imports go one way: the pretraining system uses the losses, never the other way round."""
    code = "import sys, dotkernels_ssl.losses; print(sorted(m for m in sys.modules if 'pretraining' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------------------


def test_bad_input():
    z1, z2 = _views(seed=13)
    sfrik = SFRIKLoss()
    unif = KernelUniformityLoss()
    with pytest.raises(ValueError, match="2-D"):
        sfrik(z1[0], z2[0])
    with pytest.raises(ValueError, match="2-D"):
        unif(z1[0])
    with pytest.raises(ValueError, match="same shape"):
        sfrik(z1, z2[:5])
    with pytest.raises(ValueError, match="same shape"):
        unif(z1, z2[:, :3])
    with pytest.raises(ValueError, match="at least two views"):
        sfrik(z1)
    bad = z1.clone()
    bad[2, 1] = float("nan")
    for loss in (sfrik, unif):
        with pytest.raises(ValueError, match="non-finite"):
            loss(bad, z2)
    with pytest.raises(ValueError, match="unknown kernel"):
        KernelUniformityLoss("gausian")
    with pytest.raises(ValueError, match="unknown parameter"):
        SFRIKLoss(kernel="heat:tau=1")
    with pytest.raises(TypeError, match="kernel"):
        KernelUniformityLoss(3.0)
    with pytest.raises(ValueError, match="method"):
        KernelUniformityLoss(method="fused")
    with pytest.raises(ValueError, match="method"):
        sfrik_loss(z1, z2, method="fused")
    with pytest.raises(ValueError, match="estimator"):
        SFRIKLoss(estimator="w")
    with pytest.raises(ValueError, match="estimator"):
        SFRIKLoss(estimator=None)
    with pytest.raises(ValueError, match="degree <= 2"):
        SFRIKLoss(method="moments")(z1, z2)
    with pytest.raises(ValueError, match="eps"):
        SFRIKLoss(eps=0.0)
    with pytest.raises(ValueError, match="invariance_weight"):
        SFRIKLoss(invariance_weight=-1.0)
    with pytest.raises(ValueError, match="uniformity_weight"):
        sfrik_loss(z1, z2, uniformity_weight=float("inf"))
    with pytest.raises(ValueError, match="block_size"):
        KernelUniformityLoss(block_size=-2)
    with pytest.raises(TypeError, match="floating"):
        unif(torch.ones(4, 3, dtype=torch.int64))


def test_views_of_another_type_are_named_in_the_error():
    """A generator of views was counted as one view ("needs at least two views, got 1"); a numpy array as a view."""
    z1, z2 = _views(seed=13)
    with pytest.raises(TypeError, match=r"z1 must be a torch\.Tensor or a list or tuple of views, got generator"):
        sfrik_loss(v for v in (z1, z2))
    with pytest.raises(TypeError, match=r"z1 must be a torch\.Tensor or a list or tuple of views, got ndarray"):
        kernel_uniformity_loss(z1.detach().numpy())
    with pytest.raises(TypeError, match=r"view 1 must be a torch\.Tensor"):
        sfrik_loss(z1, z2.detach().numpy())


@pytest.mark.parametrize("value", ["no", 0, 1.0, None])
def test_check_finite_must_be_a_bool(value):
    """A non-bool check_finite was taken by its truth value ("no" switched the check on)."""
    with pytest.raises(TypeError, match="check_finite must be a bool"):
        SFRIKLoss(check_finite=value)
    with pytest.raises(TypeError, match="check_finite must be a bool"):
        kernel_uniformity_loss(torch.randn(6, 3), check_finite=value)
    assert SFRIKLoss(check_finite=np.bool_(False)).check_finite is False


def test_sfrik_coefficients_given_as_a_string_are_named_in_the_error():
    z1, z2 = _views(seed=13)
    for build in (lambda: SFRIKLoss(coefficients="1,40,40"), lambda: sfrik_loss(z1, z2, coefficients="1,40")):
        with pytest.raises(TypeError, match="coefficients must be a 1-d sequence"):
            build()
    assert SFRIKLoss(coefficients=torch.tensor([1.0, 40.0])).kernel == SFRIKKernel((1.0, 40.0))


@pytest.mark.parametrize(
    ("kernel", "q", "dtype"),
    [
        ("poisson:rho=0.5", 4096, torch.float64),
        ("exponential:kappa=800", 5, torch.float64),
        ("exponential:kappa=100", 5, torch.float32),
        ("gaussian:gamma=50", 5, torch.float32),
    ],
)
def test_a_kernel_beyond_the_working_dtype_is_refused_not_returned_as_inf_or_nan(kernel, q, dtype):
    """phi(1) beyond the dtype's range (e^800 in float64, e^100 in float32): every method that evaluates the
    kernel on Gram rows refuses it (the loss was inf or nan); phi(1) within the range passes."""
    z = torch.randn(8, q, dtype=dtype, generator=torch.Generator().manual_seed(0))
    if kernel.startswith("gaussian"):  # phi(1) = 1: fine, and finite
        assert torch.isfinite(kernel_uniformity_loss(z, kernel=kernel).loss)
        return
    for method in ("gram", "blocked"):
        with pytest.raises(ValueError, match=r"phi\(1\) = exp\(.*beyond the range"):
            kernel_uniformity_loss(z, kernel=kernel, method=method, block_size=3)
        with pytest.raises(ValueError, match=r"beyond the range"):
            sfrik_loss(z, z.flip(0), kernel=kernel, method=method, block_size=3)
    if dtype == torch.float32 and kernel == "exponential:kappa=100":  # e^100 fits float64
        assert torch.isfinite(kernel_uniformity_loss(z.double(), kernel=kernel).loss)
