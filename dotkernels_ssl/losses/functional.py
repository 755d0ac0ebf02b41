r"""Fused autograd functions for the kernel regulariser (MMD to the uniform distribution on the sphere).

For rows :math:`z_1, \dots, z_N` (on :math:`S^{q-1}` in the losses; any rows here) and a dot-product kernel
:math:`\varphi = \sum_l a_l P_{l,q}` (any :class:`dotkernels.DotProductKernel`), with :math:`t_{ij} = \langle z_i,
z_j\rangle` and the *centred* profile :math:`\varphi_c = \varphi - a_0`,

.. math::

    R_V(Z) = \frac{1}{N^2} \sum_{i,j} \varphi(t_{ij}) - a_0 = \frac{1}{N^2} \sum_{i,j} \varphi_c(t_{ij}),
    \qquad
    R_U(Z) = \frac{1}{N(N-1)} \sum_{i \ne j} \varphi_c(t_{ij}),

and, because :math:`t_{ij} = t_{ji}`,

.. math::

    \frac{\partial R_V}{\partial z_i} = \frac{2}{N^2} \sum_j \varphi'(t_{ij})\, z_j
    = \Big(\frac{2}{N^2} \varphi'(G) Z\Big)_i, \qquad
    \frac{\partial R_U}{\partial z_i} = \frac{2}{N(N-1)} \sum_{j \ne i} \varphi'(t_{ij})\, z_j .

Design of the fused function (:func:`kernel_regularizer`, methods ``"gram"`` and ``"blocked"``)
-------------------------------------------------------------------------------------------------
The forward pass walks over the rows of the Gram matrix once, in row strips :math:`G_B = Z_B Z_C^\top` of
``block_size`` rows (one strip of all rows for ``"gram"``), and for each strip

1. evaluates :math:`\varphi_c` elementwise over chunks of rows of the strip (about 2 MiB each on the CPU, so
   that the passes run in cache) into **one** chunk-sized workspace buffer (none for the exponential family) and
   sums it (the value),
2. overwrites the chunk of :math:`G_B` in place with :math:`\varphi'` and
3. forms the gradient rows :math:`\varphi'(G_B)\, Z_C` (a ``(b, q)`` matrix product).

Only the ``(n, q)`` gradient :math:`\frac{2}{N^2}\varphi'(G) Z` is saved for backward, which scales it by the
incoming scalar gradient (out of place: scaling in place would save one transient ``(n, q)`` buffer only when the
regulariser's input is a leaf, 128 MiB and 0.1 s at n = 4096, q = 8192 on a CPU, and nothing measurable in the
losses, whose input is the normalised view, so no private autograd state is read to decide it). No ``n x n``
tensor survives the forward pass; the peak extra
memory is one strip (``b N`` numbers; ``n N`` for ``"gram"``) plus one chunk plus the gradient itself, against
autograd's Gram matrix, every intermediate recurrence term of :math:`G` kept until backward, one ``n x n``
gradient buffer per elementwise operation in backward, and two ``(n, q)`` products in the backward of
:math:`Z Z^\top`.

Arithmetic: in one process the rows are the columns, and the strip of block ``[lo, hi)`` only spans the columns
``[lo, N)``: every off-diagonal tile of the Gram matrix is computed once, counted twice in the value, and its
transpose adds :math:`\varphi'(G_{B,C'})^\top Z_B` to the gradient rows to the right. With ``k`` blocks this
is :math:`(1.5 + 0.5/k)\,N^2 q` multiply-adds (1.56 for ``k = 8``; 2 for ``"gram"``, ``k = 1``), against
:math:`3 N^2 q` for autograd (the Gram product and the two products of its backward, which does not know that
:math:`\varphi'(G)` is symmetric). The gradient is computed in the forward pass only when ``z`` requires a
gradient (``ctx.needs_input_grad``), so evaluation costs one product. The function is once differentiable.

Elementwise evaluation per kernel family (chosen once per ``(kernel, q)``, host-side in float64):

- finite series (every kernel with a polynomial ``degree``, e.g. SFRIK, ``sfrik:...`` / ``legendre:...``, truncated and
  band-limited kernels, monomial/polynomial kernels): the Gegenbauer coefficients :math:`a_1..a_L` (with
  :math:`a_0` dropped) are converted to the monomial form :math:`\varphi_c(t) = \sum_p c_p t^p` and evaluated by
  **Horner**, :math:`v \leftarrow v\,t + c_p` (in place, on cache-sized chunks), and
  :math:`\varphi'` by Horner on :math:`p\,c_p`. Horner's forward error on :math:`|t| \le 1` is at most
  :math:`2L\,\epsilon \sum_p |c_p|`, Clenshaw's about :math:`L\,\epsilon \sum_l |a_l|`; the conversion is
  therefore used when the amplification :math:`\kappa = \sum_p |c_p| / \sum_l |a_l| \le 16`. Since
  :math:`P_{l,q}(t) \to t^l` as q grows, :math:`\kappa \to 1` at the dimensions of SSL (SFRIK (1, 40, 40):
  :math:`\kappa = 1.00` at q = 128, 1.54 at q = 8, 4.9 at q = 2). Horner then needs one buffer and L passes,
  Clenshaw two buffers and 2L passes. Otherwise (high degree at small q, e.g. :math:`\kappa = 5\cdot 10^4` for
  degree 16 at q = 2) the in-place **Clenshaw** recurrence is used for the value and, in dimension q + 2, for the
  derivative (:math:`P'_{l,q} = \frac{l(l+q-2)}{q-1} P_{l-1,q+2}`), with two workspace buffers.
- Gaussian / exponential kernels (and positive multiples): :math:`\varphi(t) = e^{s t + \log A}`, computed in
  place in the Gram buffer, centred by subtracting :math:`a_0` before the sum, and
  :math:`\varphi' = s\,\varphi` obtained from the same buffer: no workspace buffer at all.
- any other kernel: ``kernel.profile`` and ``kernel.derivative`` on the Gram block with the same one-pass
  structure (the inner products are clipped to [-1, 1], to the open interval for kernels with a corner, whose
  diagonal is :math:`\varphi(1)` analytically with zero derivative); kernels without a derivative use plain
  autograd on the block.

Centring (the mathematics page of the documentation): the sums are of :math:`\varphi_c = \varphi - a_0`, never of
:math:`\varphi` followed by a subtraction of :math:`a_0`, so that float32 does not cancel the :math:`O(10^{-4})`
signal against the :math:`O(1)` mean embedding; the constant term of :math:`\varphi_c` is itself split into a part
exact in the working dtype and a float64 remainder added once per summed entry (a float32-rounded constant would bias
every entry alike), and chunk sums are accumulated in float64. Under bf16/fp16 autocast everything here runs in
float32 with autocast disabled (half-precision inner products lose exactly the digits the regulariser measures); half
inputs are promoted.

Moments (``"moments"``, kernels of degree <= 2, cheaper when q < N): with :math:`m = \frac1N \sum_i z_i` and
:math:`S = \frac1N Z^\top Z`, :math:`\frac{1}{N^2}\sum_{ij} t_{ij} = \|m\|^2` and
:math:`\frac{1}{N^2}\sum_{ij} t_{ij}^2 = \|S\|_F^2`, hence for :math:`\varphi_c = c_0 + c_1 t + c_2 t^2`

.. math::

    R_V = c_1 \|m\|^2 + c_2 \|S - I/q\|_F^2 + c_0 + c_2 \frac{2 \operatorname{tr} S - 1}{q}, \qquad
    \frac{\partial R_V}{\partial z_i} = \frac{2 c_1}{N} m + \frac{4 c_2}{N} S z_i,

(:math:`\|S - I/q\|_F^2` is the centred, cancellation-free form; the last term vanishes for unit rows and
centred Gegenbauer series). Cost :math:`O(N q^2)` time and :math:`O(q^2)` memory. :math:`R_U` follows from
:math:`R_V` by removing the diagonal terms.

Distributed: local rows
-----------------------
Under ``torch.distributed`` (``W`` ranks, global batch of ``N`` rows, rank ``r`` holding rows ``I_r``), each rank
all-gathers the embeddings **without** autograd and computes only its rows :math:`G_{I_r} = Z_{I_r} Z^\top`
(``O(n_r N q)`` time, ``O(n_r N)`` or ``O(b N)`` memory; no ``N x N`` matrix anywhere). It returns its share

.. math::  L_r = \frac{W}{N^2} \sum_{i \in I_r} \sum_j \varphi_c(t_{ij}) \quad
           (\tfrac{W}{N(N-1)} \textstyle\sum_{j \ne i} \text{ for } R_U),
           \qquad \frac1W \sum_r L_r = R,

and its backward returns, for the local rows only, :math:`\frac{\partial}{\partial z_i}\sum_s L_s = W
\frac{\partial R}{\partial z_i} = \frac{2W}{N^2} \sum_j \varphi'(t_{ij}) z_j` (:math:`i \in I_r`): by symmetry of
:math:`\varphi(\langle\cdot,\cdot\rangle)` the column contributions that other ranks would send back equal the row
contribution, so the gathered gradient is never all-reduced. DDP averages the parameter gradients over ranks,
giving exactly :math:`\nabla_\theta R` of the full batch — the convention of :mod:`dotkernels_ssl.losses.distributed`
(the surrogate gradient is *not* the derivative of :math:`L_r` alone, it is the derivative of the sum over ranks).
The moments method returns the replicated global value (statistics all-reduced without autograd) with backward
:math:`W\,\partial R/\partial z_i` on the local rows.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dotkernels._validate import check_block_size, check_dimension, check_estimator
from dotkernels.gegenbauer import derivative_coefficients, legendre_to_monomial, recurrence_coefficients
from dotkernels.kernels import (
    DotProductKernel,
    ExponentialKernel,
    GaussianKernel,
    LegendreSeriesKernel,
    ScaledKernel,
)

from . import distributed as D
from ._base import METHODS, as_kernel, check_matrix, no_autocast

__all__ = [
    "METHODS",
    "describe_plan",
    "kernel_regularizer",
    "local_rows_regularizer",
    "moments_regularizer",
    "resolve_method",
]

#: Horner on the monomial form is used when sum|c_p| / sum|a_l| is at most this (see the module docstring).
HORNER_MAX_AMPLIFICATION = 16.0
#: Highest polynomial degree evaluated as a series; above it the kernel's own profile is used.
MAX_SERIES_DEGREE = 256
#: Rows per block of ``method="auto"`` (when the local batch is larger).
AUTO_BLOCK_SIZE = 512
#: ``method="auto"`` uses smaller blocks when one block of Gram rows would exceed this many bytes.
AUTO_BLOCK_BYTES = 1 << 28
#: Default block size of ``method="blocked"`` when ``block_size`` is not given.
DEFAULT_BLOCK_SIZE = 512
#: Bytes per elementwise chunk of Gram rows on the CPU (about an L2 cache) and on accelerators.
CHUNK_BYTES = 1 << 21
CHUNK_BYTES_ACCELERATOR = 1 << 26


# ----------------------------------------------------------------------------------------------------
# elementwise plans: phi_c = phi - a_0 and phi' on a Gram block
# ----------------------------------------------------------------------------------------------------


def _split(c: float, dtype: torch.dtype) -> tuple[float, float]:
    """``c = hi + lo`` with ``hi`` representable in ``dtype`` (``lo`` is added back in float64 after the sum)."""
    if dtype == torch.float64:
        return c, 0.0
    # host-side rounding (no tensor, so no device work and nothing for torch.compile to trace)
    hi = float(np.float32(c)) if dtype == torch.float32 else float(torch.tensor(c, dtype=torch.float64).to(dtype))
    return hi, c - hi


def _horner_(dst: Tensor, acc: Tensor, t: Tensor, coef: list[float]) -> Tensor:
    """``dst <- sum_p coef[p] t^p`` by Horner's rule, ``acc <- acc * t + c_p`` in place.

    ``acc`` holds the partial sums (it must not alias ``t``); ``dst`` receives the last step and may be ``acc`` or
    ``t`` itself (every step is elementwise, so exact aliasing is safe). Python scalars only, so that the same
    code runs on every device without host-device transfers.
    """
    deg = len(coef) - 1
    if deg == 0:
        return dst.fill_(coef[0])
    if deg == 1:
        return torch.mul(t, coef[1], out=dst).add_(coef[0])
    torch.mul(t, coef[deg], out=acc).add_(coef[deg - 1])
    for p in range(deg - 2, 0, -1):
        acc.mul_(t).add_(coef[p])
    return torch.mul(acc, t, out=dst).add_(coef[0])


def _clenshaw_(x: Tensor, y: Tensor, t: Tensor, coef: list[float], q: int) -> Tensor:
    """``sum_k coef[k] P_{k,q}(t)`` by Clenshaw's recurrence in place in the buffers ``x``, ``y``; returns one of them.

    :math:`b_k = a_k + \\alpha_k t b_{k+1} - \\beta_{k+1} b_{k+2}`, result :math:`b_0` (with :math:`\\alpha_0 = 1`),
    with :math:`\\alpha_k, \\beta_k` from :func:`dotkernels.gegenbauer.recurrence_coefficients`.
    """
    L = len(coef) - 1
    x.fill_(coef[L])  # b_L
    y.zero_()  # b_{L+1}
    alpha, beta = recurrence_coefficients(L, q=q)
    for k in range(L - 1, -1, -1):
        # y <- a_k + alpha_k t x - beta_{k+1} y   (y held b_{k+2}; becomes b_k)
        y.mul_(-float(beta[k + 1]))
        y.addcmul_(t, x, value=float(alpha[k]))
        y.add_(coef[k])
        x, y = y, x
    return x


class _Plan:
    """How to evaluate :math:`\\varphi_c` and :math:`\\varphi'` on a chunk of Gram rows (built once per kernel and q).

    The engine calls ``V = values(G, work)``, sums ``V`` (after fixing the diagonal), then ``derivative_(G, V,
    work)``, which leaves :math:`\\varphi'(t)` in ``G``'s buffer. ``work`` holds :attr:`n_work` buffers of the
    chunk's shape.
    """

    kind = "generic"
    #: number of chunk-sized workspace buffers
    n_work = 0
    #: value of phi_c placed on the diagonal analytically (corner kernels), else None
    diag_value: float | None = None
    has_derivative = True
    monomial: tuple[float, ...] | None = None  # centred monomial coefficients of polynomial plans

    def __init__(self, kernel: DotProductKernel, q: int, a0: float) -> None:
        self.kernel = kernel
        self.q = q
        self.a0 = a0
        try:
            self.log_phi_at_one = float(kernel.log_phi_at_one(q=q))
        except ValueError:  # phi(1) < 0 (a conditionally positive definite kernel): its size is not in question
            self.log_phi_at_one = -math.inf

    def check_range(self, dtype: torch.dtype) -> None:
        """ValueError where :math:`\varphi(1)` (the largest :math:`|\varphi|` of a positive definite kernel) is
        beyond the working dtype: the regulariser would be inf or nan."""
        if self.log_phi_at_one >= math.log(torch.finfo(dtype).max):
            raise ValueError(
                f"kernel {self.kernel!r} at q={self.q} has phi(1) = exp({self.log_phi_at_one:.6g}), beyond the range "
                f"of {dtype}: the regulariser would be inf or nan; use a smaller kernel parameter"
                + (" or float64 embeddings" if self.log_phi_at_one < math.log(torch.finfo(torch.float64).max) else "")
            )

    def values(self, G: Tensor, work: list[Tensor]) -> Tensor:
        """:math:`\\varphi_c(G) - r` with ``r = self.residual(G.dtype)``, in ``work[0]`` or in place in ``G``.

        The constant of :math:`\\varphi_c` (:math:`-a_0`, or the monomial :math:`c_0`) is split as ``hi + lo`` with
        ``hi`` exact in the working dtype; only ``hi`` enters the elementwise pass and ``lo`` (the residual) is
        added to the sum in float64 once per summed entry. Rounding the constant to float32 would otherwise bias
        every entry by the same ~3e-8 relative amount, which is not small against a U-statistic near 0.
        """
        raise NotImplementedError

    def residual(self, dtype: torch.dtype) -> float:
        """Per-entry correction ``r`` (float64) with :math:`\\varphi_c = V + r` for the buffer of :meth:`values`."""
        return 0.0

    def derivative_(self, G: Tensor, V: Tensor, work: list[Tensor]) -> None:
        """Write :math:`\\varphi'(t)` into ``G`` (which holds t, or V when :meth:`values` worked in place)."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


class _SeriesPlan(_Plan):
    """Finite Gegenbauer series: Horner on the monomial form when well conditioned, else Clenshaw."""

    def __init__(self, kernel: DotProductKernel, q: int, a0: float, coef: np.ndarray) -> None:
        super().__init__(kernel, q, a0)
        coef = np.array(coef, dtype=np.float64)
        coef[0] = 0.0  # centring: a_0 is the uniform mean embedding, it never enters a sum
        nz = np.nonzero(coef)[0]
        coef = coef[: (nz[-1] + 1 if nz.size else 1)]
        self.legendre = [float(c) for c in coef]
        self.degree = len(self.legendre) - 1
        mono = np.asarray(legendre_to_monomial(self.legendre, q=q), dtype=np.float64)
        scale = float(np.abs(coef).sum())
        self.amplification = float(np.abs(mono).sum()) / scale if scale > 0 else 1.0
        self.horner = self.amplification <= HORNER_MAX_AMPLIFICATION
        self.kind = "series-horner" if self.horner else "series-clenshaw"
        self.n_work = 1 if self.horner else 2
        self.monomial = tuple(float(c) for c in mono)
        self.monomial_derivative = [p * self.monomial[p] for p in range(1, len(self.monomial))] or [0.0]
        self.legendre_derivative = [float(c) for c in derivative_coefficients(self.legendre, q=q)]

    def values(self, G: Tensor, work: list[Tensor]) -> Tensor:
        if self.degree == 0:
            return work[0].zero_()
        if self.horner:
            coef = list(self.monomial)
            coef[0] = _split(coef[0], G.dtype)[0]
            return _horner_(work[0], work[0], G, coef)
        return _clenshaw_(work[0], work[1], G, self.legendre, self.q)

    def residual(self, dtype: torch.dtype) -> float:
        if self.horner and self.degree > 0:
            return _split(self.monomial[0], dtype)[1]
        return 0.0

    def derivative_(self, G: Tensor, V: Tensor, work: list[Tensor]) -> None:
        if self.horner or self.degree <= 1:
            _horner_(G, work[0], G, self.monomial_derivative)
        else:
            G.copy_(_clenshaw_(work[0], work[1], G, self.legendre_derivative, self.q + 2))

    def describe(self) -> str:
        return f"{self.kind} (degree {self.degree}, amplification {self.amplification:.3g})"


class _ExpPlan(_Plan):
    """:math:`\\varphi(t) = e^{s t + \\log A}` (Gaussian, exponential, positive multiples): all in the Gram buffer."""

    kind = "exp"

    def __init__(self, kernel: DotProductKernel, q: int, a0: float, s: float, log_a: float) -> None:
        super().__init__(kernel, q, a0)
        self.s = s
        self.log_a = log_a

    def values(self, G: Tensor, work: list[Tensor]) -> Tensor:
        G.mul_(self.s).add_(self.log_a).exp_()
        return G.sub_(_split(self.a0, G.dtype)[0])

    def residual(self, dtype: torch.dtype) -> float:
        return -_split(self.a0, dtype)[1]

    def derivative_(self, G: Tensor, V: Tensor, work: list[Tensor]) -> None:
        # G holds V = phi - hi(a_0): phi' = s phi = s (V + hi(a_0))
        G.add_(_split(self.a0, G.dtype)[0]).mul_(self.s)

    def describe(self) -> str:
        return f"exp (kappa = {self.s:g}, log A = {self.log_a:g})"


class _GenericPlan(_Plan):
    """Any kernel: its own ``profile`` / ``derivative`` on the clipped Gram chunk (chunk-sized temporaries)."""

    def __init__(self, kernel: DotProductKernel, q: int, a0: float) -> None:
        super().__init__(kernel, q, a0)
        self.corner = bool(kernel.has_corner)
        if self.corner:
            self.diag_value = float(kernel.phi_at_one(q=q)) - a0
        try:
            kernel.derivative(np.zeros(1), q=q, validate=False)
        except NotImplementedError:
            self.has_derivative = False
        self.kind = "generic" if self.has_derivative else "generic-autograd"

    def clip_(self, G: Tensor) -> Tensor:
        if self.corner:
            eps = float(torch.finfo(G.dtype).eps)
            return G.clamp_(-1.0 + eps, 1.0 - eps)
        return G.clamp_(-1.0, 1.0)

    def values(self, G: Tensor, work: list[Tensor]) -> Tensor:
        self.clip_(G)
        V = self.kernel.profile(G, q=self.q, validate=False)
        if V is G or V.data_ptr() == G.data_ptr():
            V = V.clone()
        return V.sub_(_split(self.a0, G.dtype)[0])

    def residual(self, dtype: torch.dtype) -> float:
        return -_split(self.a0, dtype)[1]

    def derivative_(self, G: Tensor, V: Tensor, work: list[Tensor]) -> None:
        G.copy_(self.kernel.derivative(G, q=self.q, validate=False))

    def values_autograd(self, G: Tensor) -> Tensor:
        """Out-of-place, differentiable version (for kernels without a derivative)."""
        if self.corner:
            eps = float(torch.finfo(G.dtype).eps)
            G = G.clamp(-1.0 + eps, 1.0 - eps)
        else:
            G = G.clamp(-1.0, 1.0)
        return self.kernel.profile(G, q=self.q, validate=False) - self.a0


def _exp_parameters(kernel: DotProductKernel) -> tuple[float, float] | None:
    """``(s, log A)`` with :math:`\\varphi(t) = A e^{s t}` for the exponential family, else None."""
    log_c = 0.0
    while isinstance(kernel, ScaledKernel):
        log_c += math.log(kernel.c)
        kernel = kernel.kernel
    if type(kernel) is GaussianKernel:
        return 2.0 * kernel.gamma, log_c - 2.0 * kernel.gamma
    if type(kernel) is ExponentialKernel:
        return kernel.kappa, log_c
    return None


@functools.lru_cache(maxsize=128)
def _plan(kernel: DotProductKernel, q: int) -> _Plan:
    a0 = float(kernel.uniform_mean_embedding(q=q))
    degree = kernel.degree
    if degree is not None and degree <= MAX_SERIES_DEGREE:
        if isinstance(kernel, LegendreSeriesKernel):
            coef = np.zeros(degree + 1)
            coef[: kernel.coefficients.size] = kernel.coefficients
        else:
            coef = kernel.spectrum(degree, q=q)
        return _SeriesPlan(kernel, q, a0, coef)
    exp = _exp_parameters(kernel)
    if exp is not None:
        return _ExpPlan(kernel, q, a0, *exp)
    return _GenericPlan(kernel, q, a0)


def _get_plan(kernel: DotProductKernel, q: int) -> _Plan:
    try:
        return _plan(kernel, q)
    except TypeError:  # unhashable user kernel
        return _plan.__wrapped__(kernel, q)


def describe_plan(kernel: str | DotProductKernel, *, q: int) -> str:
    """How :func:`kernel_regularizer` evaluates ``kernel`` in dimension ``q`` (for logs and benchmarks).

    Parameters
    ----------
    kernel : str or DotProductKernel
        The kernel of the regulariser.
    q : int
        Dimension of the embeddings.

    Returns
    -------
    str
        The evaluation plan: its name, and the degree or the scale it works with.

    See Also
    --------
    kernel_regularizer : The regulariser that follows the plan.

    Examples
    --------
    >>> describe_plan("sfrik", q=8192)
    'series-horner (degree 3, amplification 1)'
    >>> describe_plan("gaussian:gamma=2", q=128)
    'exp (kappa = 4, log A = -4)'
    """
    return _get_plan(as_kernel(kernel), check_dimension(q)).describe()


# ----------------------------------------------------------------------------------------------------
# the row-block engine
# ----------------------------------------------------------------------------------------------------


def _chunk_rows(n_cols: int, itemsize: int, device: torch.device) -> int:
    """Rows per elementwise chunk: about :data:`CHUNK_BYTES` (cache-sized on CPU, larger on GPUs)."""
    budget = CHUNK_BYTES if device.type == "cpu" else CHUNK_BYTES_ACCELERATOR
    return max(1, budget // max(1, n_cols * itemsize))


def _rows_value_and_grad(
    plan: _Plan,
    z_rows: Tensor,
    z_cols: Tensor,
    offset: int,
    estimator: str,
    block_size: int,
    need_grad: bool,
    symmetric: bool = False,
) -> tuple[Tensor, Tensor | None]:
    r"""``(sum_{i in rows} sum_j phi_c(t_ij), [sum_j phi'(t_ij) z_j]_i)`` with the diagonal at ``(i, offset + i)``.

    Row blocks ``B`` of ``block_size`` rows: the strip ``G_B = Z_B Z_C^T`` against the columns ``C``; the
    elementwise work runs over chunks of :func:`_chunk_rows` rows of the strip with chunk-sized workspace buffers,
    leaving :math:`\varphi'` in the strip, then the gradient rows ``\varphi'(G_B) Z_C``.

    ``symmetric`` (one process: the rows are the columns): the strip of block ``B = [lo, hi)`` only spans the
    columns ``C = [lo, N)``; entries right of the diagonal tile stand for their mirror image too (counted twice in
    the value, and their transpose adds :math:`\varphi'(G_{B,C'})^\top Z_B` to the gradient rows ``C' = [hi,
    N)``). This computes each off-diagonal tile of the Gram matrix once: :math:`(1.5 + 0.5/k)\,N^2 q`
    multiply-adds for ``k`` blocks instead of :math:`2 N^2 q`.

    The diagonal is dropped for ``estimator == "u"`` and set to ``plan.diag_value`` (zero derivative) for corner
    kernels. The sum is accumulated in float64 over chunks (each chunk summed in its own dtype, pairwise).
    """
    n = z_rows.shape[0]
    n_cols = z_cols.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=z_rows.device)
    grad = None
    if need_grad:
        make = torch.zeros_like if symmetric else torch.empty_like
        grad = make(z_rows, memory_format=torch.contiguous_format)
    drop_diag = estimator == "u"
    fix_diag = drop_diag or plan.diag_value is not None
    residual = plan.residual(z_rows.dtype)
    chunk = min(_chunk_rows(n_cols, z_rows.element_size(), z_rows.device), block_size)
    work_full = [z_rows.new_empty((chunk, n_cols)) for _ in range(plan.n_work)]
    for lo in range(0, n, block_size):
        hi = min(lo + block_size, n)
        col_start = lo if symmetric else 0
        cols = z_cols[col_start:]
        width = n_cols - col_start
        tile = hi - lo if symmetric else width  # columns counted once; the rest (symmetric) count twice
        G = torch.mm(z_rows[lo:hi], cols.T)
        for r0 in range(0, hi - lo, chunk):
            r1 = min(r0 + chunk, hi - lo)
            Gc = G[r0:r1]
            work = [w[: r1 - r0, :width] for w in work_full]
            V = plan.values(Gc, work)
            count = (r1 - r0) * (tile + 2 * (width - tile))
            if fix_diag:
                diag = V.diagonal(offset + lo + r0 - col_start)
                count -= diag.numel()
                if drop_diag:
                    diag.zero_()
                else:
                    diag.fill_(plan.diag_value)  # type: ignore[arg-type]
            if tile == width:
                total += V.sum()
            else:
                total += V[:, :tile].sum() + 2.0 * V[:, tile:].sum()
            if residual:
                total += residual * count
            if grad is not None:
                plan.derivative_(Gc, V, work)
                if fix_diag:
                    Gc.diagonal(offset + lo + r0 - col_start).zero_()
            del V
        if grad is not None:
            if symmetric:
                grad[lo:hi].addmm_(G, cols)
                if tile < width:
                    grad[hi:].addmm_(G[:, tile:].T, z_cols[lo:hi])
            else:
                torch.mm(G, cols, out=grad[lo:hi])
        del G
    return total, grad


def _scaled_gradient(grad: Tensor, grad_output: Tensor) -> Tensor:
    """``grad * grad_output``, out of place (the saved gradient may be needed again under ``retain_graph=True``)."""
    return grad * grad_output.to(grad.dtype)


class _KernelRows(torch.autograd.Function):
    """Value ``scale * sum`` and the saved gradient ``2 * scale * phi'(G_rows) Z_cols`` (see module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        z_rows: Tensor,
        z_cols: Tensor,
        plan: _Plan,
        offset: int,
        scale: float,
        estimator: str,
        block_size: int,
        symmetric: bool,
    ) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])
        with no_autocast(z_rows.device):
            total, grad = _rows_value_and_grad(
                plan, z_rows, z_cols, offset, estimator, block_size, need_grad, symmetric
            )
            if grad is not None:
                grad.mul_(2.0 * scale)
                ctx.save_for_backward(grad)
        return (total * scale).to(z_rows.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return _scaled_gradient(grad, grad_output), None, None, None, None, None, None, None


def _rows_autograd(
    plan: _GenericPlan, z_rows: Tensor, z_cols: Tensor, offset: int, scale: float, estimator: str, block_size: int
) -> Tensor:
    """Plain autograd on row blocks for kernels without a derivative; the columns are detached and the row
    gradient doubled (``v + (v - v.detach())``), exact for symmetric kernels (see the module docstring)."""
    z_cols = z_cols.detach()
    n = z_rows.shape[0]
    parts = []
    for lo in range(0, n, block_size):
        hi = min(lo + block_size, n)
        V = plan.values_autograd(z_rows[lo:hi] @ z_cols.T)
        k = min(hi - lo, z_cols.shape[0] - offset - lo)
        if estimator == "u":
            V = torch.diagonal_scatter(V, V.new_zeros(k), offset + lo)
        elif plan.diag_value is not None:
            V = torch.diagonal_scatter(V, V.new_full((k,), plan.diag_value), offset + lo)
        parts.append(V.sum())
    value = torch.stack(parts).sum() * scale
    return value + (value - value.detach())


# ----------------------------------------------------------------------------------------------------
# moments (degree <= 2)
# ----------------------------------------------------------------------------------------------------


class _Moments(torch.autograd.Function):
    """Degree-<=2 kernels through the first two moments; replicated value, backward ``world * dR/dz_local``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, z: Tensor, coef: tuple[float, float, float], estimator: str, sizes: list[int] | None
    ) -> Tensor:
        c0, c1, c2 = coef
        with no_autocast(z.device):
            n, q = z.shape
            # O(n q) and O(q^2) reductions in float64 (the U-statistic subtracts the diagonal from N^2 R_V);
            # the O(n q^2) products stay in the working dtype
            sq = z.pow(2).sum(dim=1, dtype=torch.float64)  # ||z_i||^2
            col_sum = z.sum(dim=0, dtype=torch.float64)
            M = z.T @ z  # local sum of z z^T (q x q)
            diag_local = (c0 + sq * (c1 + c2 * sq)).sum()  # sum_i phi_c(t_ii)
            tr_local = sq.sum()
            world = 1
            if sizes is not None:
                world = len(sizes)
                packed = torch.cat([col_sum, torch.stack([tr_local, diag_local])])
                packed = D.all_reduce_sum(packed)
                col_sum, tr_local, diag_local = packed[:q], packed[q], packed[q + 1]
                M = D.all_reduce_sum(M)
                N = sum(sizes)
            else:
                N = n
            S = M / N
            mean = col_sum / N
            trace = tr_local / N
            # R_V = c1 ||m||^2 + c2 ||S - I/q||_F^2 + c0 + c2 (2 tr S - 1) / q   (centred, cancellation-free)
            Sc = S.to(torch.float64, copy=True)
            Sc.diagonal().sub_(1.0 / q)
            r_v = c1 * mean.pow(2).sum() + c2 * Sc.pow(2).sum() + (c0 + c2 * (2.0 * trace - 1.0) / q)
            del Sc
            if estimator == "u":
                value = (N * N * r_v - diag_local) / (N * (N - 1))
                denom = N * (N - 1)
            else:
                value = r_v
                denom = N * N
            if ctx.needs_input_grad[0]:
                # sum_j phi'(t_ij) z_j = c1 sum_j z_j + 2 c2 M z_i ;   dR/dz_i = (2 / denom) * (that [- phi'(t_ii) z_i])
                g = torch.addmm(col_sum.to(z.dtype).unsqueeze(0), z, S, beta=c1, alpha=2.0 * c2 * N)
                if estimator == "u":
                    g.addcmul_((c1 + 2.0 * c2 * sq.unsqueeze(1)).to(z.dtype), z, value=-1.0)
                g.mul_(2.0 * world / denom)
                ctx.save_for_backward(g)
        return value.to(z.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor):  # type: ignore[override]
        (g,) = ctx.saved_tensors
        return _scaled_gradient(g, grad_output), None, None, None


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------


def _check_rows(z: Any, name: str = "z") -> Tensor:
    z = check_matrix(z, name)
    if z.shape[1] < 2:
        raise ValueError(f"{name} must have q >= 2 columns (points on S^(q-1)), got {z.shape[1]}")
    if z.shape[0] < 1:
        raise ValueError(f"{name} must have at least one row")
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()
    return z


def _moments_coefficients(plan: _Plan) -> tuple[float, float, float]:
    if plan.monomial is None or len(plan.monomial) > 3:
        raise ValueError(
            f"method='moments' needs a kernel of polynomial degree <= 2, got {plan.kernel!r} ({plan.describe()})"
        )
    c = list(plan.monomial) + [0.0] * (3 - len(plan.monomial))
    return c[0], c[1], c[2]


def resolve_method(
    method: str,
    kernel: str | DotProductKernel,
    *,
    q: int,
    n_local: int,
    n_total: int,
    block_size: int | None = None,
    itemsize: int = 4,
) -> tuple[str, int]:
    """The method and row-block size that :func:`kernel_regularizer` uses.

    - ``"moments"``: kernels of degree <= 2 only (``ValueError`` otherwise).
    - ``"gram"``: one block of all local rows (one ``n_local x N`` matrix).
    - ``"blocked"``: blocks of ``block_size`` rows (default :data:`DEFAULT_BLOCK_SIZE`), extra memory
      ``O(block_size N)``; in one process the blocks also skip the mirror image of every off-diagonal tile.
    - ``"auto"``: ``"moments"`` for kernels of degree <= 2 when ``q < N`` (cost ``n q^2`` against ``n N q``);
      otherwise ``"blocked"`` with ``block_size`` rows when given, else with :data:`AUTO_BLOCK_SIZE` rows when
      ``n_local`` exceeds it (and smaller blocks if one block would exceed :data:`AUTO_BLOCK_BYTES`); otherwise
      ``"gram"``.

    Returns
    -------
    (str, int)
        The method (``"gram"``, ``"blocked"`` or ``"moments"``) and the row-block size (``n_local`` for
        ``"gram"``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    block_size = check_block_size(block_size)
    plan = _get_plan(as_kernel(kernel), check_dimension(q))
    n_local = max(int(n_local), 1)
    if method == "moments":
        _moments_coefficients(plan)
        return "moments", n_local
    if method == "auto":
        if plan.monomial is not None and len(plan.monomial) <= 3 and q < n_total:
            return "moments", n_local
        block = block_size or AUTO_BLOCK_SIZE
        block = min(block, max(1, AUTO_BLOCK_BYTES // max(1, n_total * itemsize)))
        return ("blocked", block) if block < n_local else ("gram", n_local)
    if method == "blocked":
        return "blocked", min(block_size or DEFAULT_BLOCK_SIZE, n_local)
    return "gram", n_local


def local_rows_regularizer(
    z_local: Tensor,
    z_all: Tensor,
    kernel: str | DotProductKernel = "sfrik",
    *,
    row_offset: int = 0,
    world_size: int = 1,
    estimator: str = "v",
    block_size: int | None = None,
) -> Tensor:
    r"""This rank's share of the kernel regulariser from its rows against explicitly gathered columns.

    .. math::

        L = \frac{W}{N^2} \sum_{i \in \text{local}} \sum_{j=1}^{N} \varphi_c(\langle z_i, z_j \rangle)
        \quad (R_V; \; \tfrac{W}{N(N-1)} \text{ and } j \ne i \text{ for } R_U),

    with backward :math:`\frac{2W}{N^2} \varphi'(G_{\text{local}}) Z_{\text{all}}` for the local rows (the
    derivative of the sum of the shares over ranks; see the module docstring). With ``z_all`` the same rows as
    ``z_local``, ``row_offset = 0`` and ``world_size = 1`` this is exactly :math:`R` and its gradient. The building
    block of :func:`kernel_regularizer` under ``torch.distributed``; public so that a world can be simulated in a
    single process (split the rows, sum the shares, divide by ``W``).

    Parameters
    ----------
    z_local : Tensor
        ``(n, q)`` rows of this rank (receives the gradient).
    z_all : Tensor
        ``(N, q)`` all rows in rank order, containing ``z_local`` at rows ``row_offset : row_offset + n``; no
        gradient flows into it.
    kernel : str or DotProductKernel
        Any dotkernels kernel or a :func:`dotkernels.parse_kernel` string.
    row_offset : int
        Index of the first local row in ``z_all`` (locates the diagonal).
    world_size : int
        ``W``, the number of shares whose mean is :math:`R`.
    estimator : {"v", "u"}
        V-statistic (diagonal included) or U-statistic.
    block_size : int, optional
        Rows per Gram block (extra memory ``O(block_size N)``); all local rows at once by default.

    Returns
    -------
    Tensor
        0-d tensor in the (promoted) dtype of ``z_local``.

    See Also
    --------
    kernel_regularizer : The same value from the whole batch on one process.
    moments_regularizer : Degree <= 2 kernels through the batch moments.

    Examples
    --------
    >>> import torch
    >>> z = torch.nn.functional.normalize(torch.randn(64, 8), dim=1)
    >>> bool(torch.isclose(local_rows_regularizer(z, z, "sfrik"), kernel_regularizer(z, "sfrik")))
    True
    """
    z_local = _check_rows(z_local, "z_local")
    z_all = _check_rows(z_all, "z_all")
    estimator = check_estimator(estimator)
    block_size = check_block_size(block_size)
    n, q = z_local.shape
    N = z_all.shape[0]
    if z_all.shape[1] != q:
        raise ValueError(f"z_local and z_all must have the same dimension, got {q} and {z_all.shape[1]}")
    if z_all.dtype != z_local.dtype or z_all.device != z_local.device:
        raise ValueError("z_local and z_all must have the same dtype and device")
    if not (0 <= row_offset and row_offset + n <= N):
        raise ValueError(f"row_offset={row_offset} with {n} local rows does not fit in {N} gathered rows")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if estimator == "u" and N < 2:
        raise ValueError("the U-statistic needs at least 2 rows")
    plan = _get_plan(as_kernel(kernel), q)
    plan.check_range(z_local.dtype)
    denom = N * N if estimator == "v" else N * (N - 1)
    scale = world_size / denom
    block = min(block_size or n, n)
    z_all = z_all.detach()
    if not plan.has_derivative:
        with no_autocast(z_local.device):
            return _rows_autograd(plan, z_local, z_all, row_offset, scale, estimator, block)  # type: ignore[arg-type]
    # one process with the rows as columns: compute each off-diagonal tile once (see _rows_value_and_grad)
    symmetric = (
        world_size == 1
        and row_offset == 0
        and n == N
        and z_all.data_ptr() == z_local.data_ptr()
        and z_all.stride() == z_local.stride()
    )
    return _KernelRows.apply(z_local, z_all, plan, int(row_offset), scale, estimator, block, symmetric)


def moments_regularizer(z: Tensor, kernel: str | DotProductKernel = "sfrik:1,40", *, estimator: str = "v") -> Tensor:
    r"""Kernel regulariser of a degree <= 2 kernel through the batch mean and second moment, ``O(N q^2)``.

    :math:`R_V = c_1 \|m\|^2 + c_2 \|S - I/q\|_F^2 + c_0 + c_2 (2 \operatorname{tr} S - 1)/q` with
    :math:`\varphi_c(t) = c_0 + c_1 t + c_2 t^2`, :math:`m` the mean and :math:`S = Z^\top Z / N`; for
    :math:`b_1 P_1 + b_2 P_2` and unit rows this is :math:`b_1 \|m\|^2 + b_2 \frac{q}{q-1} \|S - I/q\|_F^2`.
    Under ``torch.distributed`` the moments are all-reduced (no autograd) and every rank returns the global value
    with backward :math:`W \partial R / \partial z_i` on its rows (exact under DDP averaging).

    Parameters
    ----------
    z : Tensor
        Embeddings of shape ``(N, q)`` (the local rows under ``torch.distributed``), on the unit sphere.
    kernel : str or DotProductKernel
        A kernel whose profile is a polynomial of degree <= 2 (default ``"sfrik:1,40"``).
    estimator : {"v", "u"}
        V-statistic (every pair, the diagonal included) or U-statistic (distinct pairs).

    Returns
    -------
    Tensor
        The 0-d regulariser, the squared MMD to the uniform law.

    Raises
    ------
    ValueError
        When the kernel is not a polynomial of degree <= 2.

    See Also
    --------
    kernel_regularizer : Any kernel, through the Gram matrix.
    dotkernels.regularizers.centering_whitening : The same moments on any array library.

    Examples
    --------
    >>> import torch
    >>> z = torch.nn.functional.normalize(torch.randn(64, 8), dim=1)
    >>> bool(torch.isclose(moments_regularizer(z, "sfrik:1,40"), kernel_regularizer(z, "sfrik:1,40")))
    True
    """
    z = _check_rows(z)
    estimator = check_estimator(estimator)
    plan = _get_plan(as_kernel(kernel), z.shape[1])
    coef = _moments_coefficients(plan)
    sizes = D.gather_sizes(z.shape[0], z.device) if D.is_distributed() else None
    N = sum(sizes) if sizes is not None else z.shape[0]
    if estimator == "u" and N < 2:
        raise ValueError("the U-statistic needs at least 2 rows")
    return _Moments.apply(z, coef, estimator, sizes)


def kernel_regularizer(
    z: Tensor,
    kernel: str | DotProductKernel = "sfrik",
    *,
    estimator: str = "v",
    method: str = "auto",
    block_size: int | None = None,
    sizes: list[int] | None = None,
) -> Tensor:
    r"""The kernel regulariser :math:`R(Z)` (squared MMD to the uniform law) of the rows of ``z``, fused.

    ``z`` is used as given (rows on the sphere in the losses, which normalise first). In a single process this
    returns :math:`R_V` or :math:`R_U` of the module docstring with its exact gradient. Under
    ``torch.distributed`` ``z`` holds this rank's rows of the global batch; the columns are all-gathered without
    autograd, each rank evaluates only its rows and returns its share (``"gram"``/``"blocked"``) or the global
    value (``"moments"``), such that the mean over ranks is the global :math:`R` and DDP's averaged gradient is the
    full-batch gradient.

    Parameters
    ----------
    z : Tensor
        ``(n, q)`` rows, float32/float64 (half precision is promoted to float32; autocast is disabled inside).
    kernel : str or DotProductKernel
        Any dotkernels kernel or :func:`dotkernels.parse_kernel` string (``"sfrik"``, ``"gaussian:gamma=2"``,
        ``"sfrik:1,40,40"``, ``"heat:time=0.01"``, ...).
    estimator : {"v", "u"}
        V-statistic :math:`N^{-2}\sum_{ij}` (SFRIK) or U-statistic :math:`\frac{1}{N(N-1)}\sum_{i \ne j}`.
    method : {"auto", "gram", "blocked", "moments"}
        See :func:`resolve_method`.
    block_size : int, optional
        Rows per block for ``"blocked"`` (default :data:`DEFAULT_BLOCK_SIZE`); extra memory ``O(block_size N)``.
    sizes : list of int, optional
        Local batch sizes of all ranks (saves one small collective when known).

    Returns
    -------
    Tensor
        0-d tensor.

    See Also
    --------
    local_rows_regularizer : The rows of one process against the gathered batch.
    moments_regularizer : Degree <= 2 kernels through the batch moments.
    dotkernels.mmd.mmd2_uniform : The same squared MMD on any array library.

    Examples
    --------
    >>> import torch
    >>> z = torch.nn.functional.normalize(torch.randn(64, 16, dtype=torch.float64), dim=1)
    >>> r = kernel_regularizer(z, "sfrik")
    >>> G = z @ z.T
    >>> P2, P3 = (16 * G**2 - 1) / 15, (18 * G**3 - 3 * G) / 15
    >>> bool(torch.isclose(r, (G + 40 * P2 + 40 * P3).mean()))
    True
    """
    z = _check_rows(z)
    estimator = check_estimator(estimator)
    kernel = as_kernel(kernel)
    n, q = z.shape
    if D.is_distributed():
        sizes = D.gather_sizes(n, z.device) if sizes is None else [int(s) for s in sizes]
        offset = D.local_slice(n, sizes).start
        world = len(sizes)
    else:
        sizes, offset, world = None, 0, 1
    N = sum(sizes) if sizes is not None else n
    if estimator == "u" and N < 2:
        raise ValueError("the U-statistic needs at least 2 rows")
    resolved, block = resolve_method(
        method, kernel, q=q, n_local=n, n_total=N, block_size=block_size, itemsize=z.element_size()
    )
    if resolved == "moments":
        return _Moments.apply(z, _moments_coefficients(_get_plan(kernel, q)), estimator, sizes)
    z_all = D.all_gather_no_grad(z, sizes) if sizes is not None else z.detach()
    return local_rows_regularizer(
        z, z_all, kernel, row_offset=offset, world_size=world, estimator=estimator, block_size=block
    )
