r"""Collapse monitors of self-supervised embeddings, computed with dotkernels.

Given embeddings :math:`Z \in \mathbb R^{n \times q}` of held-out images (no augmentation), each row normalised
onto :math:`S^{q-1}` where the monitor needs it:

- :func:`mmd2_to_uniform`: the squared MMD between the empirical distribution of the normalised rows and the
  uniform distribution on the sphere, for a dot-product kernel :math:`\varphi`:
  :math:`\frac1{n^2}\sum_{i,j}\varphi(\langle u_i,u_j\rangle) - a_0` (V-statistic; :math:`a_0` is the kernel's
  uniform mean embedding). 0 for a perfectly uniform sample in the limit, :math:`\varphi(1) - a_0` for a complete
  collapse onto one point (:func:`dotkernels.mmd2_uniform`).
- :func:`rayleigh_test`: the Rayleigh uniformity statistic :math:`R = q\,n\,\|\bar u\|^2`, asymptotically
  :math:`\chi^2_q` under uniformity, with its p-value and the standardised value :math:`(R - q)/\sqrt{2q}` (which
  grows like :math:`\sqrt n` when the mean direction is non-zero, e.g. under collapse): the result object of
  :func:`dotkernels.uniformity_test`.
- :func:`effective_rank`: :math:`\exp(H(p))` with :math:`p_k = \sigma_k / \sum_j \sigma_j` the normalised
  singular values (RankMe, Garrido et al. 2023): between 1 (rank-one, collapsed) and ``min(n, q)``.
- :func:`embedding_std`: :math:`\sqrt q` times the mean over coordinates of the standard deviation of the
  normalised rows: about 1 for a spread-out distribution, 0 under complete collapse (the SimSiam diagnostic).

:func:`collapse_monitors` returns all of them as a dict of floats; :class:`EpochMonitor` runs them (and a kNN
accuracy on the validation split) after each training epoch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
from torch import nn

from dotkernels import mmd2_uniform, parse_kernel, uniformity_test

from .config import Config
from .data import ImageData, load_split
from .evaluation import extract_features, knn_accuracy
from .presets import KERNEL_METHODS

__all__ = [
    "MONITOR_KEYS",
    "EpochMonitor",
    "collapse_monitors",
    "effective_rank",
    "embedding_std",
    "mmd2_to_uniform",
    "monitor_kernel",
    "monitor_pvalues",
    "rayleigh_test",
]

MONITOR_KEYS: tuple[str, ...] = (
    "knn_val",
    "mmd2_uniform",
    "rayleigh",
    "rayleigh_p",
    "rayleigh_z",
    "effective_rank",
    "embedding_std",
    "monitor_seconds",
)
"""The columns the monitors add to ``metrics_epoch.csv`` (empty on epochs without monitoring)."""


def _as_matrix(Z: Any, name: str = "Z") -> torch.Tensor:
    Z = torch.as_tensor(Z)
    if Z.ndim != 2 or Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, q), got shape {tuple(Z.shape)}")
    if not Z.is_floating_point():
        Z = Z.double()
    if not bool(torch.isfinite(Z).all()):
        raise ValueError(f"{name} contains non-finite values")
    return Z


def _normalize(Z: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(Z.double(), dim=1, eps=1e-30)


def effective_rank(Z: Any, *, center: bool = False, eps: float = 1e-12) -> float:
    r"""Effective rank :math:`\exp(-\sum_k p_k \log p_k)`, :math:`p_k = \sigma_k/\|\sigma\|_1` (RankMe).

    Parameters
    ----------
    Z
        Embeddings ``(n, q)`` (not normalised).
    center
        Subtract the column means first.
    eps
        Added to each :math:`p_k` inside the logarithm (RankMe's convention).

    Returns
    -------
    float
        In ``[1, min(n, q)]``; 0.0 for an all-zero matrix.
    """
    Z = _as_matrix(Z).double()
    if center:
        Z = Z - Z.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(Z)
    total = s.sum()
    if float(total) <= 0:
        return 0.0
    p = s / total
    return float(torch.exp(-(p * torch.log(p + eps)).sum()))


def embedding_std(Z: Any) -> float:
    r""":math:`\sqrt q` times the mean coordinate std of the l2-normalised rows (1: spread out, 0: collapse)."""
    U = _normalize(_as_matrix(Z))
    if U.shape[0] < 2:
        return 0.0
    return float(U.std(dim=0).mean() * math.sqrt(U.shape[1]))


def mmd2_to_uniform(Z: Any, kernel: Any = "sfrik", *, block_size: int | None = None) -> float:
    r"""Squared MMD (V-statistic) between the normalised rows of ``Z`` and the uniform law on :math:`S^{q-1}`.

    A thin wrapper of :func:`dotkernels.mmd2_uniform` on the normalised rows.

    Parameters
    ----------
    Z
        Embeddings ``(n, q)``, normalised here.
    kernel
        A :class:`dotkernels.kernels.DotProductKernel` or a :func:`dotkernels.parse_kernel` string.
    block_size
        Rows per block of the Gram matrix (memory ``block_size * n``); None lets dotkernels choose.

    Returns
    -------
    float
        :math:`\frac{1}{n^2}\sum_{i,j}\varphi(\langle u_i, u_j\rangle) - a_0`.
    """
    U = _normalize(_as_matrix(Z))
    return float(mmd2_uniform(U, parse_kernel(kernel), block_size=block_size))


def rayleigh_test(Z: Any) -> Any:
    r"""Rayleigh test of uniformity on :math:`S^{q-1}` for the normalised rows of ``Z``.

    Returns
    -------
    UniformityTestResult
        :func:`dotkernels.uniformity_test`'s result: it unpacks as ``statistic, pvalue``
        (:math:`R = q n \|\bar u\|^2` and :math:`P(\chi^2_q > R)`) and has named fields.
    """
    U = _normalize(_as_matrix(Z)).double().cpu().numpy()
    return uniformity_test(U, "rayleigh")


def monitor_pvalues() -> dict[str, Any]:
    r"""The monitors read as p-values of uniformity tests, as functions ``f(Z) -> p-value`` (their calibration).

    ``"rayleigh_p"`` is :func:`rayleigh_test`'s p-value (:math:`P(\chi^2_q \ge R)`); ``"rayleigh_z"`` is the
    standardised value read as a one-sided normal score, :math:`\bar\Phi((R - q)/\sqrt{2q})` (its normal law is the
    q -> infinity limit: anti-conservative at small q, where :math:`\chi^2_q` is skewed). Their measured sizes under
    uniformity are in the calibration table of the documentation (``docs/calibration.md``,
    :func:`dotkernels.calibration.size_study` with these functions).

    Returns
    -------
    dict
        Monitor name -> function of an ``(n, q)`` array of embeddings (normalised here).
    """

    def rayleigh_z_pvalue(Z: Any) -> float:
        statistic = float(rayleigh_test(Z).statistic)
        q = int(_as_matrix(Z).shape[1])
        return 0.5 * math.erfc((statistic - q) / math.sqrt(2.0 * q) / math.sqrt(2.0))

    return {"rayleigh_p": lambda Z: float(rayleigh_test(Z).pvalue), "rayleigh_z": rayleigh_z_pvalue}


def collapse_monitors(Z: Any, kernel: Any = "sfrik", *, max_rows: int | None = 4096) -> dict[str, float]:
    """All collapse monitors of embeddings ``Z`` as ``{name: float}``.

    Parameters
    ----------
    Z
        Embeddings ``(n, q)`` of held-out images.
    kernel
        Kernel of the MMD (the run's kernel for kernel methods, the SFRIK kernel otherwise).
    max_rows
        Use only the first ``max_rows`` rows (bounds the cost of the Gram matrix and the SVD).

    Returns
    -------
    dict
        ``mmd2_uniform``, ``rayleigh``, ``rayleigh_p``, ``rayleigh_z``, ``effective_rank``, ``embedding_std``.
    """
    Z = _as_matrix(Z)
    if max_rows is not None:
        Z = Z[:max_rows]
    statistic, pvalue = rayleigh_test(Z)
    q = Z.shape[1]
    return {
        "mmd2_uniform": mmd2_to_uniform(Z, kernel),
        "rayleigh": float(statistic),
        "rayleigh_p": float(pvalue),
        "rayleigh_z": (float(statistic) - q) / math.sqrt(2.0 * q),
        "effective_rank": effective_rank(Z),
        "embedding_std": embedding_std(Z),
    }


def monitor_kernel(cfg: Config) -> Any:
    """Kernel of the MMD monitor: the run's kernel for the kernel methods, else the SFRIK kernel."""
    if cfg.loss.method in KERNEL_METHODS and cfg.loss.kernel:
        return parse_kernel(cfg.loss.kernel)
    return parse_kernel("sfrik")


def _head(data: ImageData, limit: int | None) -> ImageData:
    if limit is None or limit >= len(data):
        return data
    indices = None if data.indices is None else data.indices[:limit]
    return dataclasses.replace(
        data,
        labels=data.labels[:limit],
        images=data.images[:limit],
        indices=indices,  # type: ignore[index]
    )


class EpochMonitor:
    """The monitors of a run after an epoch (rank 0, no collectives): kNN accuracy on validation, collapse.

    A bank of training images (``eval.monitor_bank``) and the validation queries (``eval.monitor_queries``)
    are loaded once; :meth:`__call__` extracts their features with the current model and returns the values
    of :data:`MONITOR_KEYS`.

    Parameters
    ----------
    cfg
        The run's configuration.
    train_data
        The pretraining split (reused as the bank when it is the labelled training split in memory).
    """

    def __init__(self, cfg: Config, train_data: ImageData) -> None:
        d, e = cfg.data, cfg.eval
        self.cfg = cfg
        self.kernel = monitor_kernel(cfg)
        self.num_classes = train_data.num_classes
        limits = [v for v in (e.monitor_bank, d.eval_limit) if v is not None]
        bank_limit = min(limits) if limits else None
        if d.train_split == "train" and train_data.in_memory and d.limit is None:
            self.bank = _head(train_data, bank_limit)
        else:
            self.bank = load_split(cfg, "train", bank_limit)
        limits = [v for v in (e.monitor_queries, d.eval_limit) if v is not None]
        self.val = load_split(cfg, "val", min(limits) if limits else None) if d.val_fraction > 0 else None

    def __call__(self, model: nn.Module, device: torch.device, amp_dtype: torch.dtype | None) -> dict[str, Any]:
        """The monitors of ``model`` now (its training mode is restored)."""
        t0 = time.perf_counter()
        cfg, out = self.cfg, dict.fromkeys(MONITOR_KEYS)
        options = {
            "batch_size": cfg.eval.batch_size,
            "device": device,
            "size": cfg.data.crop_size,
            "channels_last": cfg.run.channels_last,
            "amp_dtype": amp_dtype,
            "num_workers": 0 if self.bank.in_memory else cfg.data.num_workers,
        }
        bank = extract_features(model, self.bank, **options)
        queries = extract_features(model, self.val, **options) if self.val is not None else None
        if queries is not None:
            out["knn_val"] = knn_accuracy(
                bank.features,
                bank.labels,
                queries.features,
                queries.labels,
                cfg.eval.monitor_k,
                temperature=cfg.eval.monitor_temperature,
                num_classes=self.num_classes,
            )
        embeddings = (queries if queries is not None else bank).embeddings
        if embeddings is not None and embeddings.shape[1] >= 2:
            out.update(collapse_monitors(embeddings, self.kernel))
        out["monitor_seconds"] = time.perf_counter() - t0
        return out
