"""SFRIKLoss / KernelUniformityLoss under 2-process gloo DDP: exact against a single process on the full batch.

Reuses the harness of ``test_distributed.py`` (joining the group, data, model, training step, layouts). Each rank
trains a ``Linear`` model wrapped in ``DistributedDataParallel`` for one step on its part of the batch; the loss
values averaged over ranks and the parameter gradients after DDP's averaging must equal those of one process on the
concatenated batch (float64); every rank returns the global loss and terms (the value of the single process on the
whole batch), not its share. The local-rows path is also checked never to create an ``N x N`` tensor (a
``TorchFunctionMode`` records the shape of every tensor produced by a torch call during forward and backward).
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
mp = torch.multiprocessing

from test_distributed import LAYOUTS, WORLD, _data, _free_port, _join, _model, _step  # noqa: E402

from dotkernels_ssl.losses import KernelUniformityLoss, SFRIKLoss  # noqa: E402
from dotkernels_ssl.losses import distributed as D  # noqa: E402


def _losses():
    """Name -> (loss, whether the Gram path is used, i.e. no N x N tensor may appear)."""
    return {
        "sfrik": (SFRIKLoss(invariance_weight=50.0), True),
        "sfrik_blocked": (SFRIKLoss(invariance_weight=50.0, method="blocked", block_size=2), True),
        "sfrik_u": (SFRIKLoss(invariance_weight=50.0, estimator="u"), True),
        "sfrik_gaussian": (SFRIKLoss(kernel="gaussian:gamma=1.5", invariance_weight=50.0), True),
        "sfrik_moments": (SFRIKLoss(kernel="sfrik:1,40", invariance_weight=50.0, method="moments"), True),
        "unif_sfrik": (KernelUniformityLoss("sfrik"), True),
        "unif_gaussian_u": (KernelUniformityLoss("gaussian:gamma=2", estimator="u"), True),
        "unif_gaussian_blocked": (KernelUniformityLoss("gaussian:gamma=2", method="blocked", block_size=3), True),
        "unif_heat": (KernelUniformityLoss("heat:time=0.2"), True),  # generic plan
        "unif_energy_u": (KernelUniformityLoss("energy", estimator="u"), True),  # corner kernel
        "unif_moments_u": (KernelUniformityLoss("sfrik:2,9", estimator="u", method="moments"), True),
    }


class _ShapeRecorder(torch.overrides.TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.shapes = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.add(tuple(t.shape))
        return out


def _worker(rank, port, out_dir):
    ctx = _join(rank, port)
    try:
        results = {}
        for layout, sizes, n_views in LAYOUTS:
            xs_full = _data(sum(sizes), n_views)
            start = sum(sizes[:rank])
            xs = [x[start : start + sizes[rank]] for x in xs_full]
            for name, (loss_fn, _) in _losses().items():
                ddp = torch.nn.parallel.DistributedDataParallel(_model())
                with _ShapeRecorder() as rec:
                    res = _step(ddp, loss_fn, xs)
                results[(layout, name)] = {
                    "loss": res.loss.detach(),
                    "terms": {k: v.detach() for k, v in res.terms.items()},
                    "grads": [p.grad.detach().clone() for p in ddp.module.parameters()],
                    "shapes": rec.shapes,
                }
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        D.shutdown(ctx)


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist_losses")
    mp.spawn(_worker, args=(_free_port(), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.distributed
@pytest.mark.parametrize("layout", [lay[0] for lay in LAYOUTS])
@pytest.mark.parametrize("name", sorted(_losses()))
def test_ddp_matches_single_process(spawned, layout, name):
    _, sizes, n_views = next(lay for lay in LAYOUTS if lay[0] == layout)
    loss_fn, _ = _losses()[name]
    model = _model()
    res = _step(model, loss_fn, _data(sum(sizes), n_views))
    grads = [p.grad for p in model.parameters()]
    assert float(model.weight.grad.abs().max()) > 1e-8  # not vacuous
    per_rank = [s[(layout, name)] for s in spawned]
    for p in per_rank:  # the global value on every rank
        torch.testing.assert_close(p["loss"], res.loss.detach(), rtol=1e-10, atol=1e-12)
        for k, v in res.terms.items():
            torch.testing.assert_close(p["terms"][k], v.detach(), rtol=1e-10, atol=1e-12)
    for p in per_rank:
        for g_ddp, g in zip(p["grads"], grads):
            torch.testing.assert_close(g_ddp, g, rtol=1e-9, atol=1e-11)


@pytest.mark.distributed
@pytest.mark.parametrize("layout", [lay[0] for lay in LAYOUTS])
def test_local_rows_never_materialise_n_by_n(spawned, layout):
    _, sizes, n_views = next(lay for lay in LAYOUTS if lay[0] == layout)
    n_total = sum(sizes)
    for name in _losses():
        for r, s in enumerate(spawned):
            shapes = s[(layout, name)]["shapes"]
            assert (n_total, n_total) not in shapes, (layout, name, r)
            if "moments" not in name:
                block = _losses()[name][0].block_size if _losses()[name][0].method == "blocked" else sizes[r]
                assert (min(block, sizes[r]), n_total) in shapes, (layout, name, r)  # the local Gram rows
    # the recorder does see the full Gram matrix of a single process
    model = _model()
    with _ShapeRecorder() as rec:
        _step(model, SFRIKLoss(), _data(n_total, n_views))
    assert (n_total, n_total) in rec.shapes
