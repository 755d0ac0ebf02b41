"""Baseline SSL losses against independent naive references (loops / explicit formulas, float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from dotkernels_ssl.losses import (  # noqa: E402
    PRESETS,
    AlignUniformLoss,
    BarlowTwinsLoss,
    LossTerms,
    NTXentLoss,
    VICRegLoss,
    align_uniform_loss,
    barlow_twins_loss,
    nt_xent_loss,
    vicreg_loss,
)

DT = torch.float64


def _views(n=6, q=4, v=2, seed=0, scale=1.0, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, q, generator=g, dtype=dtype)
    return [(base + 0.7 * torch.randn(n, q, generator=g, dtype=dtype)) * scale for _ in range(v)]


def _pairs(v):
    return [(0, 1)] + [(g, k) for g in (0, 1) for k in range(2, v)]


# ------------------------------------------------------------------------------------------------------------
# naive references
# ------------------------------------------------------------------------------------------------------------


def ref_align_uniform(views, align_weight=1.0, unif_weight=1.0, gamma=2.0, alpha=2.0, reduction="sample"):
    us = [v / torch.sqrt((v * v).sum(dim=1, keepdim=True)) for v in views]
    n, q = us[0].shape
    aligns = []
    for a, b in _pairs(len(us)):
        acc = 0.0
        for i in range(n):
            acc = acc + torch.sqrt(((us[a][i] - us[b][i]) ** 2).sum()) ** alpha
        acc = acc / n
        aligns.append(acc / q if reduction == "element" else acc)
    unifs = []
    for u in us:
        vals = [torch.exp(-gamma * ((u[i] - u[j]) ** 2).sum()) for i in range(n) for j in range(n) if i != j]
        unifs.append(torch.log(sum(vals) / (n * (n - 1))))
    align = sum(aligns) / len(aligns)
    unif = sum(unifs) / len(unifs)
    return align_weight * align + unif_weight * unif, align, unif


def np_uniformity(u, t):
    """Direct numpy: log of the mean over i != j of exp(-t ||u_i - u_j||^2), u normalised here."""
    u = np.asarray(u, dtype=np.float64)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    d2 = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    n = len(u)
    off = d2[~np.eye(n, dtype=bool)]
    m = (-t * off).max()
    return m + np.log(np.exp(-t * off - m).mean())


def ref_vicreg(views, sim=25.0, std=25.0, cov=1.0, eps=1e-4, gamma=1.0):
    q = views[0].shape[1]
    inv = sum(((views[a] - views[b]) ** 2).mean() for a, b in _pairs(len(views))) / len(_pairs(len(views)))
    var_terms, cov_terms = [], []
    for v in views:
        per_dim = [torch.relu(gamma - torch.sqrt(torch.var(v[:, j], unbiased=True) + eps)) for j in range(q)]
        var_terms.append(sum(per_dim) / q)
        c = torch.cov(v.T)  # unbiased
        off = 0.0
        for j in range(q):
            for k in range(q):
                if j != k:
                    off = off + c[j, k] ** 2
        cov_terms.append(off / q)
    variance = sum(var_terms) / len(views)
    covariance = 2 * sum(cov_terms) / len(views)  # official code: c(Z) + c(Z') for two views
    return sim * inv + std * variance + cov * covariance, inv, variance, covariance


def ref_barlow(views, lambd=0.0051, scale=1.0, bn_eps=1e-5):
    n, q = views[0].shape
    bn = [F.batch_norm(v, None, None, training=True, eps=bn_eps) for v in views]
    ons, offs = [], []
    for a, b in _pairs(len(views)):
        c = bn[a].T @ bn[b] / n
        on = sum((1 - c[j, j]) ** 2 for j in range(q))
        off = sum(c[j, k] ** 2 for j in range(q) for k in range(q) if j != k)
        ons.append(on)
        offs.append(off)
    on, off = sum(ons) / len(ons), sum(offs) / len(offs)
    return scale * (on + lambd * off), on, off


def ref_ntxent_two(z1, z2, temperature):
    """Cross-entropy formulation: 2N anchors, logits against all 2N embeddings minus self."""
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = u @ u.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, labels)


def ref_ntxent(views, temperature=0.15):
    ps = _pairs(len(views))
    return sum(ref_ntxent_two(views[a], views[b], temperature) for a, b in ps) / len(ps)


CASES = {
    "align_uniform": (AlignUniformLoss, align_uniform_loss, {}, lambda vs: ref_align_uniform(vs)[0]),
    "align_uniform_alpha": (
        AlignUniformLoss,
        align_uniform_loss,
        {"alpha": 1.5, "gamma": 3.0, "invariance_weight": 2.0, "uniformity_weight": 0.5},
        lambda vs: ref_align_uniform(vs, 2.0, 0.5, 3.0, 1.5)[0],
    ),
    "vicreg": (VICRegLoss, vicreg_loss, {}, lambda vs: ref_vicreg(vs)[0]),
    "vicreg_custom": (
        VICRegLoss,
        vicreg_loss,
        {"invariance_weight": 10.0, "variance_weight": 10.0, "covariance_weight": 2.0, "target_std": 1.5, "eps": 1e-3},
        lambda vs: ref_vicreg(vs, 10.0, 10.0, 2.0, 1e-3, 1.5)[0],
    ),
    "barlow": (BarlowTwinsLoss, barlow_twins_loss, {}, lambda vs: ref_barlow(vs)[0]),
    "barlow_custom": (
        BarlowTwinsLoss,
        barlow_twins_loss,
        {"invariance_weight": 0.5, "redundancy_weight": 0.05},  # scale_loss 0.5, lambd 0.1
        lambda vs: ref_barlow(vs, 0.1, 0.5)[0],
    ),
    "ntxent": (NTXentLoss, nt_xent_loss, {}, lambda vs: ref_ntxent(vs)),
    "ntxent_t05": (NTXentLoss, nt_xent_loss, {"temperature": 0.5}, lambda vs: ref_ntxent(vs, 0.5)),
}


# ------------------------------------------------------------------------------------------------------------
# values and gradients against the references
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("n_views", [2, 4])
def test_value_and_grad_match_reference(name, n_views):
    cls, fn, kw, ref = CASES[name]
    views = [v.requires_grad_() for v in _views(n=6, q=4, v=n_views, seed=n_views, scale=0.6)]
    out = cls(**kw)(views if n_views > 2 else views[0], None if n_views > 2 else views[1])
    grads = torch.autograd.grad(out, views)
    expect = ref(views)
    grads_ref = torch.autograd.grad(expect, views)
    torch.testing.assert_close(out, expect, rtol=1e-12, atol=1e-12)
    for g, gr in zip(grads, grads_ref):
        torch.testing.assert_close(g, gr, rtol=1e-10, atol=1e-12)
    # functional twin gives the same LossTerms
    terms = fn(views, **kw)
    assert isinstance(terms, LossTerms)
    torch.testing.assert_close(terms.loss, out, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name):
    cls, _, kw, _ = CASES[name]
    loss = cls(**kw)
    z1, z2, z3 = (v.requires_grad_() for v in _views(n=4, q=3, v=3, seed=7, scale=0.5))
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b), (z1, z2))
    assert torch.autograd.gradcheck(lambda a, b, c: loss([a, b, c]), (z1, z2, z3))


@pytest.mark.parametrize("name", sorted(CASES))
def test_terms_api(name):
    cls, _fn, kw, _ = CASES[name]
    z1, z2 = _views(n=5, q=3, seed=3)
    res = cls(**kw).forward_terms(z1, z2)
    assert set(res.terms) == set(res.weights)
    total = sum(res.weights[k] * res.terms[k] for k in res.terms)
    torch.testing.assert_close(res.loss, total, rtol=1e-14, atol=1e-14)
    sc = res.scalars()
    assert list(sc) == ["loss", *res.terms]
    assert all(isinstance(v, float) for v in sc.values())
    assert sc["loss"] == pytest.approx(float(res.loss), rel=1e-15)
    # (z1, z2), [z1, z2] and (z1, z2) tuple are the same input
    torch.testing.assert_close(cls(**kw)([z1, z2]), res.loss, rtol=0, atol=0)
    torch.testing.assert_close(cls(**kw)((z1, z2)), res.loss, rtol=0, atol=0)
    assert repr(cls(**kw)).startswith(cls.__name__)


def test_term_values_match_references():
    vs = _views(n=7, q=5, v=3, seed=11, scale=0.4)
    r = align_uniform_loss(vs, gamma=2.5)
    _, a, u = ref_align_uniform(vs, gamma=2.5)
    torch.testing.assert_close(r.terms["invariance"], a, rtol=1e-12, atol=0)
    torch.testing.assert_close(r.terms["uniformity"], u, rtol=1e-12, atol=0)
    r = vicreg_loss(vs)
    _, inv, var, cov = ref_vicreg(vs)
    for k, v in zip(("invariance", "variance", "covariance"), (inv, var, cov)):
        torch.testing.assert_close(r.terms[k], v, rtol=1e-12, atol=1e-14)
    r = barlow_twins_loss(vs)
    _, on, off = ref_barlow(vs)
    torch.testing.assert_close(r.terms["invariance"], on, rtol=1e-12, atol=0)
    torch.testing.assert_close(r.terms["redundancy"], off, rtol=1e-12, atol=0)
    z1, z2 = vs[:2]
    r = nt_xent_loss(z1, z2, temperature=0.2)
    assert list(r.terms) == ["contrastive"] and r.weights == {"contrastive": 1.0}
    torch.testing.assert_close(r.terms["contrastive"], ref_ntxent_two(z1, z2, 0.2), rtol=1e-12, atol=0)
    torch.testing.assert_close(r.loss, ref_ntxent_two(z1, z2, 0.2), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------------------
# uniformity and NT-Xent against direct computations
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.5, 2.0, 2.5, 60.0, 400.0])
def test_uniformity_equals_numpy(gamma):
    z1, z2 = _views(n=9, q=6, seed=5)
    r = align_uniform_loss(z1, z2, gamma=gamma)
    expect = 0.5 * (np_uniformity(z1.numpy(), gamma) + np_uniformity(z2.numpy(), gamma))
    assert math.isfinite(float(r.terms["uniformity"]))
    assert float(r.terms["uniformity"]) == pytest.approx(expect, rel=1e-11, abs=1e-11)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_alignment_gradient_at_coinciding_views_is_finite(alpha):
    """Rows whose two views coincide: ||d||^alpha has its minimum there; the gradient is 0 (for alpha < 1 it was
    inf * 0 = nan), and elsewhere it is that of the naive per-row formula (float64 autograd of an independent
    expression, uniformity weight 0 so that rows decouple)."""
    z1, z2 = (v.clone() for v in _views(n=6, q=4))
    z2[[1, 4]] = z1[[1, 4]]  # u1 = u2 exactly on rows 1 and 4
    a = z1.clone().requires_grad_()
    align_uniform_loss(a, z2, alpha=alpha, uniformity_weight=0.0).loss.backward()
    assert torch.isfinite(a.grad).all()
    assert torch.all(a.grad[[1, 4]] == 0)
    for i in (0, 2, 3, 5):
        x = z1[i].clone().requires_grad_()
        d = x / torch.sqrt((x * x).sum()) - z2[i] / torch.sqrt((z2[i] * z2[i]).sum())
        (torch.sqrt((d * d).sum()) ** alpha / 6).backward()
        torch.testing.assert_close(a.grad[i], x.grad, rtol=1e-12, atol=1e-14)


def test_uniformity_float32_large_t_does_not_underflow():
    z1, z2 = _views(n=16, q=8, seed=6, dtype=torch.float32)
    r = align_uniform_loss(z1, z2, gamma=200.0)
    expect = 0.5 * (np_uniformity(z1.double().numpy(), 200.0) + np_uniformity(z2.double().numpy(), 200.0))
    assert float(r.terms["uniformity"]) == pytest.approx(expect, rel=1e-4)


def test_sfrik_preset_matches_released_formula():
    """The AUH baseline as in the SFRIK code: 3000 * mse(u1, u2) + mean_v log mean_{i!=j} exp(-2t(1-<u_i,u_j>))."""
    z1, z2 = _views(n=8, q=5, seed=9)
    loss = AlignUniformLoss.from_preset("resnet18")
    assert PRESETS["auh"]["resnet18"]["gamma"] == 2.5
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n = len(u1)
    off = ~torch.eye(n, dtype=torch.bool)
    unif = sum(torch.exp(-2 * 2.5 * (1 - (u @ u.T)[off])).mean().log() for u in (u1, u2)) / 2
    expect = 3000 * F.mse_loss(u1, u2) + unif
    torch.testing.assert_close(loss(z1, z2), expect, rtol=1e-12, atol=0)
    # defaults are Wang & Isola's
    default = AlignUniformLoss()
    assert (default.invariance_weight, default.uniformity_weight, default.gamma, default.alpha) == (1.0, 1.0, 2.0, 2.0)
    torch.testing.assert_close(default(z1, z2), AlignUniformLoss.from_preset("wang_isola")(z1, z2))
    # override on top of a preset
    assert AlignUniformLoss.from_preset("resnet18", gamma=3.0).gamma == 3.0
    with pytest.raises(ValueError, match="preset"):
        AlignUniformLoss.from_preset("nope")


def test_wang_isola_functions():
    """Wang & Isola's formulation: align = mean ||x-y||^alpha, uniform = log mean exp(-t pdist^2)."""
    z1, z2 = _views(n=8, q=5, seed=10)
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    align = (u1 - u2).norm(dim=1).pow(2).mean()
    unif = [torch.pdist(u).pow(2).mul(-2.0).exp().mean().log() for u in (u1, u2)]
    expect = align + (unif[0] + unif[1]) / 2
    torch.testing.assert_close(AlignUniformLoss()(z1, z2), expect, rtol=1e-12, atol=0)


def test_ntxent_equals_simclr_positive_first_formulation():
    """SimCLR code form: logits [pos, 2N-2 negatives], label 0, averaged over the two views' anchors."""
    z1, z2 = _views(n=6, q=4, seed=12)
    tau = 0.15
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    s = u @ u.T / tau
    losses = []
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        negs = [s[a, b] for b in range(2 * n) if b not in (a, p)]
        row = torch.stack([s[a, p], *negs])
        losses.append(-torch.log_softmax(row, dim=0)[0])
    expect = torch.stack(losses).mean()
    torch.testing.assert_close(NTXentLoss(tau)(z1, z2), expect, rtol=1e-12, atol=0)


def test_vicreg_matches_official_two_view_form():
    """Official code: std/2 per view summed, cov summed over views, batch statistics over N-1."""
    z1, z2 = _views(n=10, q=6, seed=13, scale=0.5)
    x, y = z1 - z1.mean(0), z2 - z2.mean(0)
    std_x, std_y = torch.sqrt(x.var(0) + 1e-4), torch.sqrt(y.var(0) + 1e-4)
    std_loss = F.relu(1 - std_x).mean() / 2 + F.relu(1 - std_y).mean() / 2
    n, q = x.shape
    mask = ~torch.eye(q, dtype=torch.bool)
    cov_loss = ((x.T @ x / (n - 1))[mask] ** 2).sum() / q + ((y.T @ y / (n - 1))[mask] ** 2).sum() / q
    expect = 25 * F.mse_loss(z1, z2) + 25 * std_loss + cov_loss
    torch.testing.assert_close(VICRegLoss()(z1, z2), expect, rtol=1e-12, atol=0)


def test_barlow_matches_batchnorm_module():
    z1, z2 = _views(n=10, q=6, seed=14)
    bn = torch.nn.BatchNorm1d(6, affine=False).double().train()
    c = bn(z1).T @ bn(z2) / 10
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    torch.testing.assert_close(BarlowTwinsLoss()(z1, z2), on + 0.0051 * off, rtol=1e-10, atol=0)


# ------------------------------------------------------------------------------------------------------------
# precision
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["align_uniform", "vicreg", "barlow", "ntxent"])
def test_half_precision_inputs_are_promoted(name):
    cls, _, kw, _ = CASES[name]
    z1, z2 = _views(n=8, q=6, seed=15, dtype=torch.float32)
    b1, b2 = z1.bfloat16(), z2.bfloat16()
    out = cls(**kw)(b1, b2)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, cls(**kw)(b1.float(), b2.float()), rtol=1e-6, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = cls(**kw)(z1, z2)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, cls(**kw)(z1, z2), rtol=1e-6, atol=1e-6)


def test_float32_close_to_float64():
    z1, z2 = _views(n=16, q=8, seed=16)
    for name in ("align_uniform", "vicreg", "barlow", "ntxent"):
        cls, _, kw, _ = CASES[name]
        a = cls(**kw)(z1.float(), z2.float())
        b = cls(**kw)(z1, z2)
        assert float(a) == pytest.approx(float(b), rel=1e-5, abs=1e-6), name


# ------------------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [AlignUniformLoss, VICRegLoss, BarlowTwinsLoss, NTXentLoss])
def test_input_validation(cls):
    loss = cls()
    z = torch.randn(5, 3, dtype=DT)
    with pytest.raises(ValueError, match="same shape"):
        loss(z, torch.randn(5, 4, dtype=DT))
    with pytest.raises(ValueError, match="same shape"):
        loss(z, torch.randn(4, 3, dtype=DT))
    with pytest.raises(ValueError, match="at least 2 rows"):
        loss(z[:1], z[:1])
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.randn(5, 3, 2), torch.randn(5, 3, 2))
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.randn(5), torch.randn(5))
    bad = z.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="view 1 contains non-finite"):
        loss(z, bad)
    bad[2, 1] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        loss([z, z, bad])
    loss_unchecked = cls(check_finite=False)
    assert not torch.isfinite(loss_unchecked(z, bad.nan_to_num(nan=float("nan"), posinf=float("nan"))))
    with pytest.raises(ValueError, match="two views"):
        loss(z)
    with pytest.raises(ValueError, match="two views"):
        loss([z])
    with pytest.raises(TypeError, match="not both"):
        loss([z, z], z)
    with pytest.raises(TypeError, match="floating-point"):
        loss(z.long(), z.long())
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        loss([z, z.numpy()])
    with pytest.raises(ValueError, match="dtype"):
        loss(z, z.float())


def test_hyperparameter_validation():
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ValueError, match="gamma must"):
        AlignUniformLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        AlignUniformLoss(alpha=0.0)
    with pytest.raises(ValueError, match="align_reduction"):
        AlignUniformLoss(align_reduction="sum")
    with pytest.raises(ValueError, match="align_reduction"):
        align_uniform_loss(torch.randn(3, 2), torch.randn(3, 2), align_reduction="x")
    with pytest.raises(ValueError, match="variance_weight"):
        VICRegLoss(variance_weight=-1.0)
    with pytest.raises(ValueError, match="redundancy_weight"):
        BarlowTwinsLoss(redundancy_weight=float("nan"))
    with pytest.raises(TypeError, match="invariance_weight"):
        BarlowTwinsLoss(invariance_weight="1")
    with pytest.raises(ValueError, match="target_std"):
        vicreg_loss(torch.randn(3, 2), torch.randn(3, 2), target_std=-1.0)


def test_collapse_behaviour():
    """Sanity of the conventions: collapsed embeddings are penalised by every regulariser."""
    z = torch.ones(6, 4, dtype=DT) + 1e-3 * torch.randn(6, 4, dtype=DT)
    spread = _views(n=6, q=4, seed=17)
    # uniformity of a collapsed batch is near its maximum 0
    assert float(align_uniform_loss(z, z).terms["uniformity"]) > -1e-3
    assert float(align_uniform_loss(*spread).terms["uniformity"]) < -0.5
    # VICReg variance hinge is ~gamma for a collapsed batch
    assert float(vicreg_loss(z, z).terms["variance"]) == pytest.approx(1.0, abs=0.05)
    # NT-Xent of a collapsed batch is log(2N - 1)
    assert float(nt_xent_loss(z, z).loss) == pytest.approx(math.log(11), abs=1e-3)
