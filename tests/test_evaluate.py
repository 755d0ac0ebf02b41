"""pretraining.evaluation and pretraining.monitors on synthetic features (independent references)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sklearn = pytest.importorskip("sklearn")

from dotkernels_ssl.pretraining.evaluation import (  # noqa: E402
    FeatureSet,
    evaluate_features,
    extract_features,
    knn_accuracy,
    knn_predict,
    linear_probe,
    logistic_regression_probe,
    pixel_features,
    train_linear_probe,
)
from dotkernels_ssl.pretraining.monitors import (  # noqa: E402
    collapse_monitors,
    effective_rank,
    embedding_std,
    mmd2_to_uniform,
    rayleigh_test,
)


def _separable(n_per_class=60, classes=4, dim=16, seed=0, noise=0.3):
    """Gaussian clusters around orthogonal directions: linearly separable and cosine-separable."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(dim)[:classes] * 4.0
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centers[y] + noise * torch.randn(len(y), dim, generator=g)
    perm = torch.randperm(len(y), generator=g)
    return FeatureSet(x[perm], y[perm])


def _naive_weighted_knn(bank, bank_y, queries, k, T, num_classes, weighted=True):
    """Loop-by-loop reference in float64 numpy."""
    b = bank.numpy().astype(np.float64)
    q = queries.numpy().astype(np.float64)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = []
    for row in q:
        sims = b @ row
        order = np.argsort(-sims, kind="stable")[:k]
        votes = np.zeros(num_classes)
        for j in order:
            votes[int(bank_y[j])] += math.exp(sims[j] / T) if weighted else 1.0
        out.append(int(np.argmax(votes)))
    return np.array(out)


# --------------------------------------------------------------------------------------------------------------
# kNN


def test_knn_separable_is_perfect():
    tr, te = _separable(seed=0), _separable(seed=1)
    acc = knn_accuracy(tr.features, tr.labels, te.features, te.labels, [1, 10, 20, 100])
    assert acc == {1: 1.0, 10: 1.0, 20: 1.0, 100: 1.0}


def test_weighted_knn_matches_naive_loop():
    g = torch.Generator().manual_seed(3)
    bank = torch.randn(200, 12, generator=g)
    bank_y = torch.randint(0, 5, (200,), generator=g)
    queries = torch.randn(50, 12, generator=g)
    for k in (1, 7, 20):
        for T in (0.07, 0.5):
            ours = knn_predict(bank, bank_y, queries, k, temperature=T, num_classes=5, chunk=17)
            ref = _naive_weighted_knn(bank, bank_y, queries, k, T, 5)
            assert np.array_equal(ours.numpy(), ref), (k, T)


def test_unweighted_knn_matches_sklearn():
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(4)
    bank = torch.randn(300, 10, generator=g, dtype=torch.float64)
    bank_y = torch.randint(0, 6, (300,), generator=g)
    queries = torch.randn(80, 10, generator=g, dtype=torch.float64)
    for k in (1, 5, 15):
        clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights="uniform")
        clf.fit(bank.numpy(), bank_y.numpy())
        ref = clf.predict(queries.numpy())
        ours = knn_predict(bank, bank_y, queries, k, weighted=False, num_classes=6)
        assert np.array_equal(ours.numpy(), ref), k


def test_knn_options():
    tr = _separable()
    preds = knn_predict(tr.features, tr.labels, tr.features, [1, 3], exclude_self=True)
    assert set(preds) == {1, 3} and preds[1].shape == (len(tr),)
    assert float((preds[3] == tr.labels).float().mean()) == 1.0
    # k larger than the bank is capped; unlabeled (-1) bank entries are ignored
    y = tr.labels.clone()
    y[:10] = -1
    assert knn_accuracy(tr.features, y, tr.features, tr.labels, 10_000) <= 1.0
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(tr.features, tr.labels, tr.features, 0)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(tr.features, tr.labels, tr.features, 1, temperature=0)


# --------------------------------------------------------------------------------------------------------------
# Linear probe, logistic regression, protocol


def test_linear_probe_on_separable_features():
    tr, va, te = _separable(seed=0), _separable(seed=1), _separable(seed=2)
    probe = train_linear_probe(tr.features, tr.labels, epochs=10, lr=0.1, batch_size=32)
    assert probe.accuracy(te.features, te.labels) == 1.0
    res = linear_probe(tr, va, te, lrs=(0.01, 0.1), epochs=5, batch_size=32)
    assert res["best_lr"] in (0.01, 0.1) and res["test_acc"] == 1.0 and set(res["val"]) == {"0.01", "0.1"}


def test_linear_probe_is_seeded_and_leaves_global_rng_alone():
    tr = _separable()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    p1 = train_linear_probe(tr.features, tr.labels, epochs=2, lr=0.1, seed=5)
    assert torch.equal(before, torch.get_rng_state())
    p2 = train_linear_probe(tr.features, tr.labels, epochs=2, lr=0.1, seed=5)
    assert torch.equal(p1.linear.weight, p2.linear.weight)


def _naive_probe(x, y, num_classes, *, epochs, lr, batch_size, weight_decay, momentum, seed):
    """The documented protocol step by step in float64 numpy: each mini-batch standardised with the training
    mean and (unbiased) standard deviation, softmax cross-entropy gradient by hand, SGD with momentum and weight
    decay (torch's update rule), cosine rate over all steps; the initial weights and the shuffles drawn as the
    probe draws them (``nn.Linear`` under ``torch.manual_seed(seed)``, then N(0, 0.01^2) weights, zero bias)."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.normal_(lin.weight, std=0.01)
    w, b = lin.weight.detach().double().numpy().copy(), np.zeros(num_classes)
    xn, yn = x.double().numpy(), y.numpy()
    mean, std = xn.mean(axis=0), np.maximum(xn.std(axis=0, ddof=1), 1e-6)
    g = torch.Generator().manual_seed(seed)
    n = len(yn)
    per_epoch = math.ceil(n / batch_size)
    total, step = epochs * per_epoch, 0
    bw, bb = np.zeros_like(w), np.zeros_like(b)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).numpy()
        for k in range(per_epoch):
            idx = perm[k * batch_size : (k + 1) * batch_size]
            xb = (xn[idx] - mean) / std
            logits = xb @ w.T + b
            prob = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob /= prob.sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), yn[idx]] -= 1.0
            gw, gb = prob.T @ xb / len(idx) + weight_decay * w, prob.mean(axis=0) + weight_decay * b
            bw, bb = (gw, gb) if step == 0 else (momentum * bw + gw, momentum * bb + gb)
            rate = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            w, b = w - rate * bw, b - rate * bb
            step += 1
    return w, b


@pytest.mark.parametrize("threads", [1, 2])
def test_linear_probe_follows_the_protocol_step_by_step(threads):
    """The probe's weights are those of the protocol run step by step in float64 (standardising each mini-batch);
    the caller's thread count is restored, and the probes of linear_probe (rates sharing one standardisation) are
    those of train_linear_probe."""
    tr = _separable(n_per_class=50, classes=3, dim=12, seed=3, noise=1.5)
    x, y = tr.features * torch.linspace(0.5, 20.0, 12) + 3.0, tr.labels  # unequal scales and offsets
    opts = {"epochs": 3, "batch_size": 32, "weight_decay": 1e-3, "momentum": 0.9, "seed": 4}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        probe = train_linear_probe(x, y, 3, lr=0.3, **opts)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    w, b = _naive_probe(x, y, 3, lr=0.3, **opts)
    # float32 against float64 over 15 steps: a few float32 roundings of O(1) weights (3e-7 seen)
    np.testing.assert_allclose(probe.linear.weight.detach().double().numpy(), w, rtol=0, atol=2e-6)
    np.testing.assert_allclose(probe.linear.bias.detach().double().numpy(), b, rtol=0, atol=2e-6)
    torch.testing.assert_close(probe.mean, x.mean(dim=0))  # new inputs are standardised by the probe itself
    va = FeatureSet(x[:60] + 0.1, y[:60])
    res = linear_probe(FeatureSet(x, y), va, lrs=(0.01, 0.3), num_classes=3, **opts)
    for lr in (0.01, 0.3):
        alone = train_linear_probe(x, y, 3, lr=lr, **opts)
        assert res["val"][str(lr)] == alone.accuracy(va.features, va.labels)


def test_logistic_regression_probe():
    tr, va, te = _separable(seed=0), _separable(seed=1), _separable(seed=2)
    res = logistic_regression_probe(tr, va, te, cs=(0.1, 1.0))
    assert res["test_acc"] == 1.0 and res["best_c"] in (0.1, 1.0)
    assert res["converged"] and len(res["n_iter"]) == 2 and all(0 < n < res["max_iter"] for n in res["n_iter"])
    # stopped early: reported as not converged instead of a silently swallowed ConvergenceWarning
    stopped = logistic_regression_probe(tr, va, te, cs=(1.0,), max_iter=1)
    assert not stopped["converged"] and stopped["n_iter"] == [1]


def _overlapping(n=400, dim=12, classes=3, seed=0):
    """Overlapping Gaussian classes with correlated, badly scaled features: a fit that needs iterations."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    mix = rng.normal(size=(dim, dim)) * np.logspace(0, 2, dim)
    x = (rng.normal(size=(n, dim)) + 0.8 * np.eye(classes, dim)[y]) @ mix + 5.0
    return FeatureSet(torch.from_numpy(x).float(), torch.from_numpy(y))


def test_logistic_regression_converges_to_the_optimum_by_default():
    """The default settings reach the optimum: the same model as an independent fit to a tight tolerance.

    The reference minimises the same objective (mean cross-entropy + ||W||^2 / (2 C n) on the standardised
    features) with scipy's L-BFGS-B to a gradient of 1e-10, from zero and not warm-started.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    tr, va = _overlapping(seed=0), _overlapping(seed=1)
    cs = (0.01, 1.0, 100.0)
    res = logistic_regression_probe(tr, va, None, cs=cs)
    assert res["converged"] and all(n < res["max_iter"] for n in res["n_iter"])
    x = tr.features.double().numpy()
    x = (x - x.mean(0)) / x.std(0)
    y = tr.labels.numpy()
    n, d, k = x.shape[0], x.shape[1], 3
    onehot = np.eye(k)[y]
    xb = np.hstack([x, np.ones((n, 1))])

    def objective(theta, c):
        w = theta.reshape(d + 1, k)
        logp = log_softmax(xb @ w, axis=1)
        value = -(onehot * logp).sum() / n + (w[:-1] ** 2).sum() / (2 * c * n)
        grad = xb.T @ (np.exp(logp) - onehot) / n
        grad[:-1] += w[:-1] / (c * n)
        return value, grad.ravel()

    xv = (va.features.double().numpy() - tr.features.double().numpy().mean(0)) / tr.features.double().numpy().std(0)
    for c in cs:
        opt = minimize(objective, np.zeros((d + 1) * k), args=(c,), jac=True, method="L-BFGS-B",
                       options={"gtol": 1e-10, "ftol": 0, "maxiter": 100_000})  # fmt: skip
        w = opt.x.reshape(d + 1, k)
        pred = np.argmax(np.hstack([xv, np.ones((len(xv), 1))]) @ w, axis=1)
        assert res["val"][str(float(c))] == pytest.approx(float((pred == va.labels.numpy()).mean()), abs=1.5 / len(xv))


def test_hyper_parameters_are_chosen_on_val_only():
    """With a validation split whose labels are shuffled, the choice cannot depend on the test split."""
    tr, va, te = _separable(seed=0), _separable(seed=1), _separable(seed=2)
    res1 = evaluate_features(tr, va, te, knn_k=(1, 20), linear_epochs=2, linear_lrs=(0.01,), logreg_cs=(1.0,))
    te_bad = FeatureSet(te.features, te.labels[torch.randperm(len(te))])
    res2 = evaluate_features(tr, va, te_bad, knn_k=(1, 20), linear_epochs=2, linear_lrs=(0.01,), logreg_cs=(1.0,))
    assert res1["knn"]["best_k"] == res2["knn"]["best_k"]
    assert res1["knn"]["val"] == res2["knn"]["val"]
    assert res1["knn"]["test_acc"] == 1.0 and res2["knn"]["test_acc"] < 0.6
    # the train+val bank: the same as kNN with the concatenated features, at the k chosen on val
    both = FeatureSet(torch.cat([tr.features, va.features]), torch.cat([tr.labels, va.labels]))
    full = knn_accuracy(both.features, both.labels, te_bad.features, te_bad.labels, [1, 20], temperature=0.07)
    assert res2["knn"]["test_bank_trainval"] == {str(k): v for k, v in full.items()}
    assert res2["knn"]["test_acc_bank_trainval"] == full[res2["knn"]["best_k"]]
    assert res1["n_train"] == len(tr) and res1["feature_dim"] == 16
    assert {"knn", "linear", "logreg"} <= set(res1)
    res3 = evaluate_features(tr, va, None, knn_k=(5,), linear=False, logreg=False)
    assert "test" not in res3["knn"] and "linear" not in res3


# --------------------------------------------------------------------------------------------------------------
# Feature extraction


class _Images:
    def __init__(self, n=10, c=1, s=8):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=g)
        self.labels = torch.arange(n) % 3
        self.mean, self.std = (0.5,), (0.25,)


def test_extract_features_order_normalisation_and_mode():
    from dotkernels_ssl.pretraining.models import SSLModel, build_projector

    data = _Images()
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5), torch.nn.BatchNorm1d(5))
    model = SSLModel(backbone, build_projector(5, "6-3"))
    model.train()
    fs = extract_features(model, data, batch_size=3)
    assert model.training  # restored
    assert fs.features.shape == (10, 5) and fs.embeddings.shape == (10, 3)
    assert torch.equal(fs.labels, data.labels)
    model.eval()
    with torch.no_grad():
        x = (data.images.float() / 255 - 0.5) / 0.25
        ref_f, ref_z = model(x)
    torch.testing.assert_close(fs.features, ref_f)
    torch.testing.assert_close(fs.embeddings, ref_z)
    pooled = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    only = extract_features(pooled, data, batch_size=4, size=4)
    assert only.embeddings is None and only.features.shape == (10, 4)
    x4 = torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(only.features, pooled(x4))


def test_pixel_features():
    data = _Images(n=4)
    fs = pixel_features(data, mean=(0.0,), std=(1.0,))
    torch.testing.assert_close(fs.features, data.images.float().flatten(1) / 255)


# --------------------------------------------------------------------------------------------------------------
# Monitors


def _sphere(n, q, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, q, generator=g, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def test_effective_rank():
    assert effective_rank(torch.eye(7)) == pytest.approx(7.0, rel=1e-6)
    rank_one = torch.outer(torch.randn(20, dtype=torch.float64), torch.randn(5, dtype=torch.float64))
    assert effective_rank(rank_one) == pytest.approx(1.0, abs=1e-6)
    d = torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))
    p = np.array([0.75, 0.25])
    assert effective_rank(d) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert effective_rank(torch.zeros(3, 3)) == 0.0


def _a0_gaussian(tau, q):
    """E[exp(2 tau (t - 1))] under the projected law, density proportional to (1 - t^2)^((q - 3) / 2)."""
    from scipy.integrate import quad

    w = lambda t: (1 - t * t) ** ((q - 3) / 2)  # noqa: E731
    num = quad(lambda t: math.exp(2 * tau * (t - 1)) * w(t), -1, 1)[0]
    return num / quad(w, -1, 1)[0]


def test_mmd_to_uniform_against_quadrature():
    q, tau = 5, 1.5
    U = _sphere(300, q)
    G = np.exp(2 * tau * (U.numpy() @ U.numpy().T - 1))
    ref = G.mean() - _a0_gaussian(tau, q)
    assert mmd2_to_uniform(U, f"gaussian:gamma={tau}") == pytest.approx(ref, rel=1e-6, abs=1e-9)
    collapsed = U[:1].repeat(50, 1)
    assert mmd2_to_uniform(collapsed, f"gaussian:gamma={tau}") == pytest.approx(1 - _a0_gaussian(tau, q), rel=1e-6)
    # a uniform sample has a small MMD; the SFRIK kernel (a_0 = 0) gives the mean Gram entry
    assert mmd2_to_uniform(_sphere(2000, q, 1), "sfrik") < mmd2_to_uniform(collapsed, "sfrik")


def test_rayleigh_test():
    from scipy.stats import chi2

    U = _sphere(400, 6, 2)
    statistic, pvalue = res = rayleigh_test(U * 3.0)  # normalised inside; unpacks like scipy's results
    stat = 6 * 400 * float((U.mean(0) ** 2).sum())
    assert statistic == res.statistic == pytest.approx(stat, rel=1e-9)
    assert pvalue == res.pvalue == pytest.approx(chi2.sf(stat, 6), rel=1e-9)
    assert pvalue > 1e-4  # a uniform sample is not rejected
    shifted = U + torch.tensor([2.0, 0, 0, 0, 0, 0], dtype=torch.float64)
    assert rayleigh_test(shifted).pvalue < 1e-10


def test_collapse_monitors_separate_collapse_from_spread():
    spread = collapse_monitors(_sphere(500, 8))
    collapsed = collapse_monitors(_sphere(1, 8).repeat(500, 1) + 1e-4 * _sphere(500, 8, 3))
    assert set(spread) == {"mmd2_uniform", "rayleigh", "rayleigh_p", "rayleigh_z", "effective_rank", "embedding_std"}
    assert spread["effective_rank"] > 6 and collapsed["effective_rank"] < 1.5
    assert spread["embedding_std"] > 0.9 and collapsed["embedding_std"] < 0.01
    assert spread["mmd2_uniform"] < collapsed["mmd2_uniform"]
    assert spread["rayleigh_p"] > collapsed["rayleigh_p"]
    assert embedding_std(_sphere(1, 4)) == 0.0
    with pytest.raises(ValueError, match="non-finite"):
        collapse_monitors(torch.full((3, 3), float("nan")))


def test_summary_says_chosen_on_validation_only_when_there_was_a_choice():
    from dotkernels_ssl.pretraining.logs import summary_lines

    def lines(lrs, cs):
        ev = {
            "linear": {"test_acc": 0.9, "best_lr": lrs[0], "val": {str(v): 0.8 for v in lrs}},
            "logreg": {"test_acc": 0.85, "best_c": cs[0], "val": {str(v): 0.8 for v in cs}, "converged": True},
        }
        return "\n".join(summary_lines({"eval": ev}, None))

    several = lines((0.01, 0.2), (0.1, 1.0))
    assert "linear probe 90.00% (lr 0.01 chosen on validation)" in several
    assert "logistic regression 85.00% (C 0.1 chosen on validation)" in several
    one = lines((0.01,), (0.1,))
    assert "linear probe 90.00% (lr 0.01)" in one and "logistic regression 85.00% (C 0.1)" in one


# --------------------------------------------------------------------------------------------------------------
# Temperature of the kNN chosen on validation; linear probe refitted on train + val


def _noisy_clusters(seed, n_per_class=40, classes=4, dim=12, noise=1.6):
    """Clusters that overlap: k and T change the kNN's accuracy."""
    return _separable(n_per_class=n_per_class, classes=classes, dim=dim, seed=seed, noise=noise)


def test_knn_protocol_chooses_k_and_temperature_on_validation():
    from dotkernels_ssl.pretraining.evaluation import knn_protocol

    tr, va, te = _noisy_clusters(0), _noisy_clusters(1), _noisy_clusters(2)
    ks, temps = (1, 5, 20, 60), (0.005, 0.05, 0.5)
    res = knn_protocol(tr, va, te, ks=ks, temperatures=temps)
    # the grid, scored one (T, k) at a time by the single-temperature kNN
    grid = {t: knn_accuracy(tr.features, tr.labels, va.features, va.labels, list(ks), temperature=t) for t in temps}
    assert res["val_by_temperature"] == {str(t): {str(k): grid[t][k] for k in ks} for t in temps}
    order = [(t, k) for t in temps for k in ks]
    best = max(order, key=lambda p: (grid[p[0]][p[1]], -order.index(p)))  # ties: first T listed, then smallest k
    assert (res["temperature"], res["best_k"]) == best
    assert res["val"] == {str(k): grid[best[0]][k] for k in ks} and res["val_acc"] == grid[best[0]][best[1]]
    assert len({v for row in grid.values() for v in row.values()}) > 1  # the choice is not a tie everywhere
    test = knn_accuracy(tr.features, tr.labels, te.features, te.labels, list(ks), temperature=best[0])
    assert res["test"] == {str(k): v for k, v in test.items()} and res["test_acc"] == test[best[1]]
    both = torch.cat([tr.features, va.features]), torch.cat([tr.labels, va.labels])
    full = knn_accuracy(*both, te.features, te.labels, list(ks), temperature=best[0])
    assert res["test_bank_trainval"] == {str(k): v for k, v in full.items()}
    # a single temperature (a float or a 1-tuple) is no choice, and gives the same result either way
    one = knn_protocol(tr, va, te, ks=ks, temperatures=0.05)
    assert one == knn_protocol(tr, va, te, ks=ks, temperatures=(0.05,)) and one["temperature"] == 0.05
    with pytest.raises(ValueError, match="temperature"):
        knn_protocol(tr, va, te, ks=ks, temperatures=(0.05, 0.0))
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(tr.features, tr.labels, va.features, 5, temperature=float("nan"))


def test_knn_votes_of_several_temperatures_match_one_at_a_time():
    from dotkernels_ssl.pretraining.evaluation import _knn_votes

    tr, va = _noisy_clusters(3), _noisy_clusters(4)
    temps, ks = (0.01, 0.07, 1.0), (1, 7, 30)
    votes = _knn_votes(tr.features, tr.labels, va.features, ks, temps, chunk=13)
    for t in temps:
        for k in ks:
            ref = _naive_weighted_knn(tr.features, tr.labels, va.features, k, t, 4)
            assert np.array_equal(votes[t, k].numpy(), ref), (t, k)


def test_linear_probe_refit_on_train_and_val():
    tr, va, te = _noisy_clusters(5), _noisy_clusters(6), _noisy_clusters(7)
    kw = {"epochs": 3, "batch_size": 32, "num_classes": 4, "seed": 3}
    res = linear_probe(tr, va, te, lrs=(0.01, 0.3), refit=True, **kw)
    both = FeatureSet(torch.cat([tr.features, va.features]), torch.cat([tr.labels, va.labels]))
    # the refit is the probe trained on the concatenated splits at the chosen rate, with its own statistics
    probe = train_linear_probe(both.features, both.labels, lr=res["best_lr"], **kw)
    assert res["test_acc_refit_trainval"] == probe.accuracy(te.features, te.labels)
    assert res["refit"] is True
    # the chosen rate and the probe fitted on train alone are those without the refit
    plain = linear_probe(tr, va, te, lrs=(0.01, 0.3), **kw)
    assert plain["test_acc_refit_trainval"] is None and plain["refit"] is False
    assert {k: res[k] for k in ("val", "best_lr", "test_acc")} == {k: plain[k] for k in ("val", "best_lr", "test_acc")}
    assert linear_probe(tr, va, None, lrs=(0.3,), refit=True, **kw)["test_acc_refit_trainval"] is None


def test_summary_names_the_chosen_temperature_and_the_refitted_probe():
    from dotkernels_ssl.pretraining.logs import summary_lines

    ev = {
        "knn": {
            "test": {"20": 0.88},
            "test_acc": 0.89,
            "best_k": 10,
            "temperature": 0.02,
            "temperatures": [0.02, 0.07],
        },
        "linear": {"test_acc": 0.9, "best_lr": 0.01, "val": {"0.01": 0.8}, "test_acc_refit_trainval": 0.905},
    }
    text = "\n".join(summary_lines({"eval": ev}, None))
    assert "kNN accuracy 89.00% at k = 10, T = 0.02 (k and T chosen on the validation split)" in text
    assert "linear probe 90.00% (lr 0.01) / 90.50% (refitted on train + validation)" in text
    ev["knn"]["temperatures"] = [0.07]
    assert "(k chosen on the validation split)" in "\n".join(summary_lines({"eval": ev}, None))


def test_config_reads_the_earlier_single_temperature_and_checks_the_new_ones():
    from dotkernels_ssl.pretraining.config import ConfigError, config_from_dict, parse_config

    # a run configuration stored by an earlier version (one temperature, eval.knn_temperature)
    cfg = config_from_dict({"eval": {"knn_temperature": 0.05}})
    assert cfg.eval.knn_temperatures == (0.05,) and cfg.eval.monitor_temperature == 0.07
    cfg = parse_config(["--preset", "fashion-mnist-cpu", "--eval.knn_temperatures", "0.02,0.07"])
    assert cfg.eval.knn_temperatures == (0.02, 0.07) and cfg.eval.linear_refit
    for bad in ("0.02,-1", "nan"):
        with pytest.raises(ConfigError, match=r"eval\.knn_temperatures"):
            parse_config(["--preset", "fashion-mnist-cpu", "--eval.knn_temperatures", bad])
    with pytest.raises(ConfigError, match=r"eval\.monitor_temperature"):
        parse_config(["--preset", "fashion-mnist-cpu", "--eval.monitor_temperature", "0"])


def test_small_temperatures_vote_for_a_far_querys_neighbours():
    """exp((s - 1) / T) underflows for every neighbour of a far query at small T: the votes must not all vanish."""
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([1, 2, 2])
    far = torch.tensor([[0.45, -0.893]])  # cosine 0.45 with the nearest bank entry
    for t in (0.001, 0.005, 0.07):
        assert knn_predict(bank, labels, far, 1, temperature=t).tolist() == [1], t
        ref = _naive_weighted_knn(bank, labels, far, 3, t, 3)
        assert knn_predict(bank, labels, far, 3, temperature=t, num_classes=3).tolist() == ref.tolist(), t


def test_temperatures_must_be_finite_positive_numbers():
    from dotkernels_ssl.pretraining.config import ConfigError, parse_config
    from dotkernels_ssl.pretraining.evaluation import knn_protocol

    tr, va = _noisy_clusters(0), _noisy_clusters(1)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(tr.features, tr.labels, va.features, 5, temperature=float("inf"))
    with pytest.raises(ValueError, match="temperatures must hold at least one value"):
        knn_protocol(tr, va, ks=(5,), temperatures=())
    with pytest.raises(ValueError, match="finite and > 0"):
        knn_protocol(tr, va, ks=(5,), temperatures=(0.05, float("inf")))
    # a numpy scalar is one temperature
    assert knn_protocol(tr, va, ks=(5,), temperatures=np.float32(0.05))["temperatures"] == [pytest.approx(0.05)]
    with pytest.raises(ConfigError, match=r"eval\.knn_temperatures"):
        parse_config(["--preset", "fashion-mnist-cpu", "--eval.knn_temperatures", "0.02,inf"])
