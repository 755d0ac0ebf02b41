"""dotkernels_ssl.distributed: single-process fallbacks, and 2-process gloo runs (collectives + DDP exactness).

The two-process test spawns once and runs every case in the same process group (startup dominates the cost).
Each rank trains a ``Linear`` model wrapped in ``DistributedDataParallel`` for one step on its part of the batch
with every loss; the loss values (averaged over ranks) and the parameter gradients after DDP's averaging must
equal those of a single process on the concatenated batch (float64).
"""

from __future__ import annotations

import datetime
import os

import pytest

torch = pytest.importorskip("torch")
dist = torch.distributed
mp = torch.multiprocessing

from dotkernels_ssl import distributed as D  # noqa: E402
from dotkernels_ssl.losses_baselines import (  # noqa: E402
    AlignUniformLoss,
    BarlowTwinsLoss,
    NTXentLoss,
    VICRegLoss,
)

WORLD = 2
D_IN, Q = 6, 5


def _losses():
    return {
        "align_uniform": AlignUniformLoss(t=2.0),
        "align_uniform_sfrik": AlignUniformLoss.from_preset("sfrik"),
        "vicreg": VICRegLoss(),
        "barlow": BarlowTwinsLoss(lambd=0.05),
        "ntxent": NTXentLoss(temperature=0.3),
    }


# (name, local sizes per rank, number of views)
LAYOUTS = [("equal", (4, 4), 2), ("unequal", (3, 5), 2), ("multicrop", (3, 3), 3)]


def _data(n_total, n_views):
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(n_total, D_IN, generator=g, dtype=torch.float64)
    return [base + 0.5 * torch.randn(n_total, D_IN, generator=g, dtype=torch.float64) for _ in range(n_views)]


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(D_IN, Q).double()


def _step(model, loss_fn, xs):
    """One forward/backward: all views through the model in one call, then the loss."""
    n = xs[0].shape[0]
    z = model(torch.cat(xs))
    views = list(z.split(n))
    res = loss_fn.forward_terms(views)
    res.loss.backward()
    return res


def _worker(rank, store, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        results = {"world_size": D.world_size(), "rank": D.rank(), "is_distributed": D.is_distributed()}

        # --- collectives on their own -------------------------------------------------------------------
        for sizes in ((4, 4), (3, 5)):
            n_total = sum(sizes)
            start = sum(sizes[:rank])
            g = torch.Generator().manual_seed(7)
            full = torch.randn(n_total, 3, generator=g, dtype=torch.float64)
            coef = torch.randn(n_total, 3, generator=g, dtype=torch.float64)
            x = full[start : start + sizes[rank]].clone().requires_grad_()
            gathered = D.all_gather_with_grad(x)
            # rank-dependent loss: L_r = (r + 1) <coef, X>; d(sum_s L_s)/dx_r = 3 coef[rows of r]
            ((rank + 1) * (coef * gathered).sum()).backward()
            results[f"gather{sizes}"] = {
                "gathered": gathered.detach(),
                "grad": x.grad,
                "sizes": D.gather_sizes(sizes[rank]),
                "slice": D.local_slice(sizes[rank]),
                "slice_given": D.local_slice(sizes[rank], sizes=list(sizes)),
                "no_grad": D.all_gather_no_grad(x),
                "with_sizes": D.all_gather_with_grad(x, sizes=list(sizes)).detach(),
            }
        a = torch.arange(4, dtype=torch.float64) + 1.0
        x = ((rank + 1) * a).requires_grad_()
        y = D.all_reduce_sum(x)
        ((rank + 1) * (a * y).sum()).backward()  # d(sum_s L_s)/dx_r = 3 a
        results["reduce"] = {"y": y.detach(), "grad": x.grad, "max": D.all_reduce_max(x * (rank + 1))}

        # --- DDP exactness ------------------------------------------------------------------------------
        for layout, sizes, n_views in LAYOUTS:
            xs_full = _data(sum(sizes), n_views)
            start = sum(sizes[:rank])
            xs = [x[start : start + sizes[rank]] for x in xs_full]
            for name, loss_fn in _losses().items():
                ddp = torch.nn.parallel.DistributedDataParallel(_model())
                res = _step(ddp, loss_fn, xs)
                results[(layout, name)] = {
                    "loss": res.loss.detach(),
                    "terms": {k: v.detach() for k, v in res.terms.items()},
                    "grads": [p.grad.detach().clone() for p in ddp.module.parameters()],
                }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


# ------------------------------------------------------------------------------------------------------------
# single process
# ------------------------------------------------------------------------------------------------------------


def test_single_process_fallbacks():
    assert D.world_size() == 1
    assert D.rank() == 0
    assert not D.is_distributed()
    x = torch.randn(5, 3, requires_grad=True)
    assert D.all_gather_with_grad(x) is x
    assert D.all_reduce_sum(x) is x
    g = D.all_gather_no_grad(x)
    assert not g.requires_grad
    assert torch.equal(g, x.detach())
    torch.testing.assert_close(D.all_reduce_max(x), x.detach())
    assert D.gather_sizes(5) == [5]
    assert D.local_slice(5) == slice(0, 5)
    with pytest.raises(ValueError, match="n_local"):
        D.gather_sizes(-1)


# ------------------------------------------------------------------------------------------------------------
# two processes (gloo)
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.distributed
def test_world_info(spawned):
    for r, res in enumerate(spawned):
        assert res["world_size"] == WORLD
        assert res["rank"] == r
        assert res["is_distributed"]


@pytest.mark.distributed
@pytest.mark.parametrize("sizes", [(4, 4), (3, 5)])
def test_all_gather_with_grad(spawned, sizes):
    n_total = sum(sizes)
    g = torch.Generator().manual_seed(7)
    full = torch.randn(n_total, 3, generator=g, dtype=torch.float64)
    coef = torch.randn(n_total, 3, generator=g, dtype=torch.float64)
    for r, res in enumerate(spawned):
        out = res[f"gather{sizes}"]
        start = sum(sizes[:r])
        rows = slice(start, start + sizes[r])
        assert out["sizes"] == list(sizes)
        assert out["slice"] == rows == out["slice_given"]
        torch.testing.assert_close(out["gathered"], full, rtol=0, atol=0)
        torch.testing.assert_close(out["with_sizes"], full, rtol=0, atol=0)
        torch.testing.assert_close(out["no_grad"], full, rtol=0, atol=0)
        assert not out["no_grad"].requires_grad
        # sum over ranks s of (s + 1) coef[rows] = 3 coef[rows]
        torch.testing.assert_close(out["grad"], 3 * coef[rows], rtol=1e-15, atol=0)


@pytest.mark.distributed
def test_all_reduce_sum_and_max(spawned):
    a = torch.arange(4, dtype=torch.float64) + 1.0
    for res in spawned:
        torch.testing.assert_close(res["reduce"]["y"], 3 * a)
        torch.testing.assert_close(res["reduce"]["grad"], 3 * a)
        torch.testing.assert_close(res["reduce"]["max"], 4 * a)


@pytest.mark.distributed
@pytest.mark.parametrize("layout", [lay[0] for lay in LAYOUTS])
@pytest.mark.parametrize("name", sorted(_losses()))
def test_ddp_matches_single_process(spawned, layout, name):
    _, sizes, n_views = next(lay for lay in LAYOUTS if lay[0] == layout)
    model = _model()
    res = _step(model, _losses()[name], _data(sum(sizes), n_views))
    grads = [p.grad for p in model.parameters()]
    assert float(model.weight.grad.abs().max()) > 1e-8  # the check is not vacuous (Barlow: bias grad is 0)
    per_rank = [s[(layout, name)] for s in spawned]
    # the loss averaged over ranks is the full-batch loss; so is each term
    mean_loss = sum(p["loss"] for p in per_rank) / WORLD
    torch.testing.assert_close(mean_loss, res.loss.detach(), rtol=1e-9, atol=1e-10)
    for k, v in res.terms.items():
        mean_term = sum(p["terms"][k] for p in per_rank) / WORLD
        torch.testing.assert_close(mean_term, v.detach(), rtol=1e-9, atol=1e-10)
    # DDP-averaged parameter gradients on every rank equal the single-process gradients
    for p in per_rank:
        for g_ddp, g in zip(p["grads"], grads):
            torch.testing.assert_close(g_ddp, g, rtol=1e-9, atol=1e-10)


@pytest.mark.distributed
def test_replicated_terms_are_global_on_every_rank(spawned):
    replicated = {
        "align_uniform": ["uniform"],
        "vicreg": ["variance", "covariance"],
        "barlow": ["on_diag", "off_diag"],
    }
    for name, keys in replicated.items():
        for k in keys:
            a, b = (s[("unequal", name)]["terms"][k] for s in spawned)
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
