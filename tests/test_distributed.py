"""dotkernels_ssl.losses.distributed: single-process fallbacks, and 2-process gloo runs (collectives, DDP exactness).

The two-process test spawns once, joins the group the way ``torchrun`` does (``init_from_env`` with ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and runs every case in the same process group (startup dominates
the cost). Each rank trains a ``Linear`` model wrapped in ``DistributedDataParallel`` for one step on its part of
the batch with every loss; on every rank the loss value and each term must equal those of a single process on the
concatenated batch (the losses return global values), and so must the parameter gradients after DDP's averaging
(float64).
"""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
dist = torch.distributed
mp = torch.multiprocessing

from dotkernels_ssl.losses import (  # noqa: E402
    AlignUniformLoss,
    BarlowTwinsLoss,
    NTXentLoss,
    VICRegLoss,
)
from dotkernels_ssl.losses import distributed as D  # noqa: E402
from dotkernels_ssl.pretraining.config import ConfigError  # noqa: E402
from dotkernels_ssl.pretraining.runtime import resolve_device  # noqa: E402

WORLD = 2
D_IN, Q = 6, 5


def _losses():
    return {
        "align_uniform": AlignUniformLoss(gamma=2.0),
        "align_uniform_sfrik": AlignUniformLoss.from_preset("resnet18"),
        "vicreg": VICRegLoss(),
        "barlow": BarlowTwinsLoss(redundancy_weight=0.05),
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


def _loop_collectives(rank):
    """The no-grad collectives of a training loop, each with a rank-dependent input."""
    D.barrier()
    t = torch.full((3,), float(rank + 1), dtype=torch.float64)
    x = torch.tensor(float(rank + 1), dtype=torch.float64, requires_grad=True)
    shown = D.global_values({"loss": 3.0 * x * x})["loss"]
    shown.backward()
    return {
        "global_value": (shown.detach(), x.grad),
        "broadcast": D.broadcast(t.clone(), src=1),
        "broadcast_object": D.broadcast_object({"rank": rank}, src=1),
        "gather_object": D.all_gather_object(("r", rank)),
        "mean": D.all_reduce_mean(t),
        "min": D.all_reduce_min(t),
        "is_main": D.is_main_process(),
        "context": D.init_from_env("cpu"),  # a group is running: describe it, start nothing
    }


def _join(rank, port):
    """Join the gloo group of ``WORLD`` processes as a ``torchrun`` worker does: launch environment, init_from_env."""
    torch.set_num_threads(1)
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    return D.init_from_env("cpu", backend="auto", timeout_s=60)


def _worker(rank, port, out_dir):
    ctx = _join(rank, port)
    try:
        results = {"world_size": D.world_size(), "rank": D.rank(), "is_distributed": D.is_distributed()}
        results["init"] = ctx
        results["loop"] = _loop_collectives(rank)

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
        D.shutdown(ctx)
        results_after = {"initialized_after_shutdown": D.is_initialized()}
        torch.save(results_after, os.path.join(out_dir, f"after{rank}.pt"))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(_free_port(), str(tmp)), nprocs=WORLD, join=True)
    out = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for r in range(WORLD):
        out[r]["after"] = torch.load(tmp / f"after{r}.pt", weights_only=False)
    return out


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
    torch.testing.assert_close(D.all_reduce_mean(x), x.detach())
    torch.testing.assert_close(D.all_reduce_min(x), x.detach())
    assert D.global_values({"a": x})["a"] is x
    assert D.broadcast(x) is x and D.broadcast_object("a") == "a" and D.all_gather_object(3) == [3]
    D.barrier()
    assert D.is_main_process() and not D.is_initialized()


def test_launch_environment_and_device():
    assert not D.launched_by_torchrun({})
    assert D.launched_by_torchrun({"RANK": "1", "WORLD_SIZE": "2"})
    assert D.local_rank({"LOCAL_RANK": "3"}) == 3 and D.local_rank({}) == 0
    ctx = D.init_from_env("cpu", env={})  # no launch, no group: one process
    assert (ctx.world, ctx.rank, ctx.initialized_here, ctx.is_main, ctx.active) == (1, 0, False, True, False)
    D.shutdown(ctx)
    assert D.default_backend("cpu") == "gloo" and D.default_backend("cuda:1") == "nccl"
    assert D.select_device("cpu") == torch.device("cpu")
    assert D.select_device(torch.device("cpu", 0)) == torch.device("cpu", 0)
    if torch.cuda.is_available():
        assert D.select_device("auto", local_rank=0) == torch.device("cuda", 0)
    else:
        assert D.select_device("auto", local_rank=1) == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            D.select_device("cuda")
    with pytest.raises(ValueError, match="backend"):
        D.init_from_env("cpu", backend="mpi", env={})


def test_resolve_device_is_select_device_with_a_config_error():
    for spec in ("cpu", "auto", torch.device("cpu", 0)):
        assert resolve_device(spec) == D.select_device(spec)
    if torch.cuda.is_available():
        assert resolve_device("cuda", 0) == torch.device("cuda", 0)
    else:
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda", 0)


# ------------------------------------------------------------------------------------------------------------
# two processes (gloo)
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.distributed
def test_world_info(spawned):
    for r, res in enumerate(spawned):
        assert res["world_size"] == WORLD
        assert res["rank"] == r
        assert res["is_distributed"]
        init = res["init"]
        assert (init.world, init.rank, init.local_rank, init.initialized_here) == (WORLD, r, r, True)
        assert not res["loop"]["context"].initialized_here and res["loop"]["context"].world == WORLD
        assert not res["after"]["initialized_after_shutdown"]


@pytest.mark.distributed
def test_loop_collectives(spawned):
    for r, res in enumerate(spawned):
        loop = res["loop"]
        torch.testing.assert_close(loop["broadcast"], torch.full((3,), 2.0, dtype=torch.float64))
        assert loop["broadcast_object"] == {"rank": 1}
        assert loop["gather_object"] == [("r", 0), ("r", 1)]
        torch.testing.assert_close(loop["mean"], torch.full((3,), 1.5, dtype=torch.float64))
        torch.testing.assert_close(loop["min"], torch.full((3,), 1.0, dtype=torch.float64))
        assert loop["is_main"] == (r == 0)
        # value: the mean of the shares 3 x_r^2 (3 and 12); gradient: the share's own, 6 x_r
        value, grad = loop["global_value"]
        assert float(value) == 7.5 and float(grad) == 6.0 * (r + 1)


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
    # every rank returns the full-batch loss and terms (global values)
    for p in per_rank:
        torch.testing.assert_close(p["loss"], res.loss.detach(), rtol=1e-9, atol=1e-10)
        for k, v in res.terms.items():
            torch.testing.assert_close(p["terms"][k], v.detach(), rtol=1e-9, atol=1e-10)
    # DDP-averaged parameter gradients on every rank equal the single-process gradients
    for p in per_rank:
        for g_ddp, g in zip(p["grads"], grads):
            torch.testing.assert_close(g_ddp, g, rtol=1e-9, atol=1e-10)


@pytest.mark.distributed
def test_replicated_terms_are_global_on_every_rank(spawned):
    replicated = {
        "align_uniform": ["uniformity"],
        "vicreg": ["variance", "covariance"],
        "barlow": ["invariance", "redundancy"],
    }
    for name, keys in replicated.items():
        for k in keys:
            a, b = (s[("unequal", name)]["terms"][k] for s in spawned)
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
