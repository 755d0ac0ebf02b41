r"""Collapse monitors of self-supervised embeddings, computed with dotkernels.

Given embeddings :math:`Z \in \mathbb R^{n \times q}` of held-out images (no augmentation), each row normalised
onto :math:`S^{q-1}` where the monitor needs it:

- :func:`mmd2_to_uniform`: the squared MMD between the empirical distribution of the normalised rows and the
  uniform distribution on the sphere, for a dot-product kernel :math:`\varphi`:
  :math:`\frac1{n^2}\sum_{i,j}\varphi(\langle u_i,u_j\rangle) - a_0` (V-statistic; :math:`a_0` is the kernel's
  uniform mean embedding). 0 for a perfectly uniform sample in the limit, :math:`\varphi(1) - a_0` for a complete
  collapse onto one point. Uses :func:`dotkernels.mmd.mmd2_uniform` when that module exists, else the
  kernel's ``gram`` in blocks.
- :func:`rayleigh_test`: the Rayleigh uniformity statistic :math:`R = q\,n\,\|\bar u\|^2`, asymptotically
  :math:`\chi^2_q` under uniformity, with its p-value and the standardised value :math:`(R - q)/\sqrt{2q}` (which
  grows like :math:`\sqrt n` when the mean direction is non-zero, e.g. under collapse). Uses
  :func:`dotkernels.uniformity.uniformity_test` when available.
- :func:`effective_rank`: :math:`\exp(H(p))` with :math:`p_k = \sigma_k / \sum_j \sigma_j` the normalised
  singular values (RankMe, Garrido et al. 2023): between 1 (rank-one, collapsed) and ``min(n, q)``.
- :func:`embedding_std`: :math:`\sqrt q` times the mean over coordinates of the standard deviation of the
  normalised rows: about 1 for a spread-out distribution, 0 under complete collapse (the SimSiam diagnostic).

:func:`collapse_monitors` returns all of them as a dict of floats.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "collapse_monitors",
    "effective_rank",
    "embedding_std",
    "mmd2_to_uniform",
    "rayleigh_test",
]


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


def mmd2_to_uniform(Z: Any, kernel: Any = "sfrik", *, block: int = 2048) -> float:
    r"""Squared MMD (V-statistic) between the normalised rows of ``Z`` and the uniform law on :math:`S^{q-1}`.

    Parameters
    ----------
    Z
        Embeddings ``(n, q)``, normalised here.
    kernel
        A :class:`dotkernels.DotProductKernel` or a :func:`dotkernels.parse_kernel` string.
    block
        Rows per block of the Gram matrix (memory ``block * n``).

    Returns
    -------
    float
        :math:`\frac{1}{n^2}\sum_{i,j}\varphi(\langle u_i, u_j\rangle) - a_0` (float64 arithmetic).
    """
    from dotkernels import parse_kernel

    k = parse_kernel(kernel)
    U = _normalize(_as_matrix(Z))
    n, q = U.shape
    try:  # the library's estimator when present (dotkernels.mmd)
        from dotkernels.mmd import mmd2_uniform  # type: ignore[import-not-found]

        return float(mmd2_uniform(U, k))
    except ImportError:
        pass
    except (TypeError, ValueError):  # an incompatible signature: fall back to the direct formula
        pass
    total = torch.zeros((), dtype=torch.float64, device=U.device)
    for i in range(0, n, block):
        total = total + k.gram(U[i : i + block], U).sum()
    return float(total / (n * n)) - float(k.uniform_mean_embedding(q))


def rayleigh_test(Z: Any) -> dict[str, float]:
    r"""Rayleigh test of uniformity on :math:`S^{q-1}` for the normalised rows of ``Z``.

    Returns
    -------
    dict
        ``statistic`` :math:`R = q n \|\bar u\|^2`, ``pvalue`` :math:`P(\chi^2_q > R)` (asymptotic null law),
        ``z`` the standardised statistic :math:`(R - q)/\sqrt{2q}`.
    """
    from scipy.stats import chi2

    U = _normalize(_as_matrix(Z))
    n, q = U.shape
    stat = pvalue = None
    try:
        from dotkernels.uniformity import uniformity_test  # type: ignore[import-not-found]

        res = uniformity_test(U, test="rayleigh")
        stat, pvalue = float(res.statistic), float(res.pvalue)
    except ImportError:
        pass
    except (TypeError, ValueError, AttributeError):  # an incompatible version: the direct formula below
        stat = pvalue = None
    if stat is None or not math.isfinite(stat):
        stat = float(q * n * U.mean(dim=0).pow(2).sum())
        pvalue = None
    if pvalue is None or not math.isfinite(pvalue):
        pvalue = float(chi2.sf(stat, q))
    return {"statistic": stat, "pvalue": pvalue, "z": (stat - q) / math.sqrt(2.0 * q)}


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
    ray = rayleigh_test(Z)
    return {
        "mmd2_uniform": mmd2_to_uniform(Z, kernel),
        "rayleigh": ray["statistic"],
        "rayleigh_p": ray["pvalue"],
        "rayleigh_z": ray["z"],
        "effective_rank": effective_rank(Z),
        "embedding_std": embedding_std(Z),
    }
