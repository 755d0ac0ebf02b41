r"""Piecewise Chebyshev tables of profiles :math:`\varphi(t)` on [-1, 1], in the variable :math:`u = \sqrt{(1-t)/2}`.

:math:`u \in [0, 1]` is half the chordal distance :math:`\|x - y\|` of two unit vectors with :math:`\langle x, y\rangle
= t`. Profiles of the form :math:`G(t) + \sum_j w_j (2 - 2t)^{\nu + j}` (with a logarithm for integer exponents),
G analytic, are analytic in u for half-integer :math:`\nu` and have a :math:`u^{2\nu}` (or :math:`u^{2\nu}\ln u`)
singularity at u = 0 otherwise; a mesh graded geometrically towards u = 0 (hp-style) resolves every :math:`\nu > 0`.

:func:`tabulate` builds the table adaptively from a vectorised float64 callable, chebfun-style: an interval is kept
when the last Chebyshev coefficients of its degree-p interpolant and its deviation from the callable at 3p check
points (between the nodes, not on them) are below the tolerance; otherwise it is bisected (the interval at u = 0 is
split geometrically, into intervals of ratio 2 down to :math:`2^{-12}` of its width). Breakpoints are dyadic, so
that the map of an interval to [-1, 1] is exact and t = 1 gives u = 0, x = -1 exactly. :meth:`ChebyshevTable.evaluate`
evaluates in any array namespace (numpy, torch on any device, jax): the interval by ``searchsorted``, the map to
[-1, 1], Clenshaw's recurrence of degree p on all points at once.

The table's :attr:`~ChebyshevTable.error` bounds the difference to the callable: twice the largest deviation found at
the check points or coefficient tail of any interval, plus the rounding of the evaluation in float64 (Clenshaw's
sum, and the rounding of u times a bound on :math:`|u\, p'(u)|`), plus the callable's own rounding noise when the
caller knows a bound for it (the check points sample that noise, they do not bound it). It is an a-posteriori
bound, as chebfun's: the tests check it on dense grids up to the ends of [-1, 1].
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
import scipy.fft

__all__ = ["ChebyshevTable", "tabulate"]

_EPS = float(np.finfo(np.float64).eps)
#: the smallest u > 0 of a float64 t: t = 1 - 2^-53 (the float below 1) gives u = 2^-27
_U_MIN = 2.0**-27
#: points evaluated per block by the numpy route (temporaries stay in cache)
_BLOCK = 1 << 16


def _nodes(p: int) -> np.ndarray:
    """Chebyshev points of the second kind on [-1, 1], increasing (x_j = -cos(pi j / p))."""
    return -np.cos(np.pi * np.arange(p + 1) / p)


def _checks(p: int) -> np.ndarray:
    """3p points strictly between the nodes: a quarter, half and three quarters of the way in the angle."""
    theta = np.pi * (np.arange(p)[:, None] + np.array([0.25, 0.5, 0.75])[None, :]).ravel() / p
    return -np.cos(theta)


def _coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients (m, p+1) of the interpolants of values (m, p+1) at :func:`_nodes` (DCT-I)."""
    p = values.shape[-1] - 1
    # _nodes are increasing, -cos(pi j/p) = cos(pi (p-j)/p): reverse to the usual order
    c = scipy.fft.dct(values[:, ::-1], type=1, axis=-1) / p
    c[:, 0] *= 0.5
    c[:, -1] *= 0.5
    return c


def _clenshaw_numpy(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_k c[:, k] T_k(x) for each row's own coefficients (c of shape (n, p+1) or (m, p+1) broadcast)."""
    b1 = np.zeros_like(x)
    b2 = np.zeros_like(x)
    for k in range(c.shape[-1] - 1, 0, -1):
        b1, b2 = c[..., k] + 2.0 * x * b1 - b2, b1
    return c[..., 0] + x * b1 - b2


class ChebyshevTable:
    r"""A piecewise Chebyshev interpolant of a profile, in :math:`u = \sqrt{(1-t)/2}` (read-only arrays).

    Attributes
    ----------
    breaks : numpy.ndarray
        The m + 1 breakpoints in u, from 0 to 1 (dyadic numbers).
    coefficients : numpy.ndarray
        (p + 1, m): column i holds the Chebyshev coefficients of degree 0..p on interval i.
    error : float
        Bound on the absolute difference to the tabulated callable on [-1, 1] (float64 evaluation).
    """

    __slots__ = ("_devices", "_mid", "_scale", "breaks", "coefficients", "error")

    def __init__(self, breaks: np.ndarray, coefficients: np.ndarray, error: float):
        self.breaks = np.ascontiguousarray(breaks, dtype=np.float64)
        self.coefficients = np.ascontiguousarray(coefficients, dtype=np.float64)
        self._mid = 0.5 * (self.breaks[:-1] + self.breaks[1:])
        self._scale = 2.0 / (self.breaks[1:] - self.breaks[:-1])
        for array in (self.breaks, self.coefficients, self._mid, self._scale):
            array.setflags(write=False)
        self.error = float(error)
        self._devices: dict = {}

    @property
    def degree(self) -> int:
        return self.coefficients.shape[0] - 1

    @property
    def intervals(self) -> int:
        return self.coefficients.shape[1]

    def evaluate(self, t: Any, xp: Any) -> Any:
        """The interpolant at t (inner products in [-1, 1]), of t's library, dtype, shape and device."""
        if isinstance(t, np.ndarray):
            return self._evaluate_numpy(t)
        shape = t.shape
        flat = xp.reshape(t, (-1,))
        device = array_api_compat.device(flat)
        breaks, mid, scale, coef = self._arrays(xp, flat.dtype, device)
        if array_api_compat.is_torch_array(flat) and not flat.requires_grad:
            return self._evaluate_torch(flat, breaks, mid, scale, coef).reshape(shape)
        u = xp.sqrt(xp.clip((1.0 - flat) * 0.5, 0.0, 1.0))
        idx = xp.searchsorted(breaks, u, side="right")
        idx = xp.clip(idx - 1, 0, self.intervals - 1)
        x = (u - xp.take(mid, idx)) * xp.take(scale, idx)
        x2 = 2.0 * x
        b1 = xp.zeros_like(x)
        b2 = xp.zeros_like(x)
        for k in range(self.degree, 0, -1):
            b1, b2 = xp.take(coef[k], idx) + x2 * b1 - b2, b1
        out = xp.take(coef[0], idx) + x * b1 - b2
        return xp.reshape(out, shape)

    def _evaluate_torch(self, t: Any, breaks: Any, mid: Any, scale: Any, coef: Any) -> Any:
        """The torch route without a graph: index_select gathers, Clenshaw in place (no temporary per degree), by
        blocks of points on the CPU (temporaries stay in cache), all at once on other devices."""
        import torch

        block = _BLOCK if t.device.type == "cpu" else max(t.numel(), 1)
        out = torch.empty_like(t)
        with torch.no_grad():
            for start in range(0, t.numel(), block):
                s = t[start : start + block]
                u = torch.sqrt(torch.clamp((1.0 - s) * 0.5, 0.0, 1.0))
                idx = torch.clamp(torch.searchsorted(breaks, u, right=True) - 1, 0, self.intervals - 1)
                x = (u - torch.index_select(mid, 0, idx)).mul_(torch.index_select(scale, 0, idx))
                b1 = torch.index_select(coef[self.degree], 0, idx)
                b2 = torch.zeros_like(x)
                for k in range(self.degree - 1, 0, -1):
                    # b_k = c_k + 2 x b_{k+1} - b_{k+2}, written over b_{k+2}
                    b2.neg_().addcmul_(x, b1, value=2.0).add_(torch.index_select(coef[k], 0, idx))
                    b1, b2 = b2, b1
                out[start : start + block] = b2.neg_().addcmul_(x, b1).add_(torch.index_select(coef[0], 0, idx))
        return out

    def _arrays(self, xp: Any, dtype: Any, device: Any) -> tuple:
        key = (id(xp), str(dtype), str(device))
        arrays = self._devices.get(key)
        if arrays is None:
            # the interior breakpoints: searchsorted then gives the interval directly
            inner = self.breaks[:-1]
            arrays = tuple(
                xp.asarray(np.array(a), dtype=dtype, device=device)
                for a in (inner, self._mid, self._scale, self.coefficients)
            )
            if array_api_compat.is_jax_namespace(xp):  # made inside a jax transformation they may be its tracers
                return arrays
            if len(self._devices) > 8:
                self._devices.clear()
            self._devices[key] = arrays
        return arrays

    def _evaluate_numpy(self, t: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(t).reshape(-1)
        out = np.empty(flat.shape, dtype=np.result_type(flat.dtype, np.float32))
        coef = self.coefficients if out.dtype == np.float64 else self.coefficients.astype(out.dtype)
        inner = self.breaks[1:-1]
        p = self.degree
        for start in range(0, flat.size, _BLOCK):
            block = flat[start : start + _BLOCK]
            u = np.subtract(1.0, block, dtype=out.dtype)
            u *= 0.5
            np.maximum(u, 0.0, out=u)
            np.minimum(u, 1.0, out=u)
            np.sqrt(u, out=u)
            idx = np.searchsorted(inner, u, side="right")
            x = u - self._mid[idx]
            x *= self._scale[idx]
            x2 = x + x
            b1 = np.take(coef[p], idx)
            b2 = np.zeros_like(x)
            work = np.empty_like(x)
            for k in range(p - 1, 0, -1):
                # b_k = c_k + 2 x b_{k+1} - b_{k+2}, written over b_{k+2}
                np.multiply(x2, b1, out=work)
                work -= b2
                work += np.take(coef[k], idx)
                b1, b2, work = work, b1, b2
            np.multiply(x, b1, out=work)
            work -= b2
            work += np.take(coef[0], idx)
            out[start : start + _BLOCK] = work
        return out.reshape(t.shape)


def tabulate(
    f: Callable[[np.ndarray], np.ndarray],
    *,
    scale: float,
    tol: float,
    degree: int = 20,
    max_intervals: int = 2048,
    noise: float = 0.0,
) -> ChebyshevTable:
    r"""Build a :class:`ChebyshevTable` of ``f`` (a vectorised float64 function of t) adaptively.

    Parameters
    ----------
    f : callable
        ``f(u)`` for a 1-d float64 numpy array u in [0, 1], returning the profile at :math:`t = 1 - 2u^2` (float64
        values of u's shape): parts singular at t = 1 are best computed from u itself (:math:`2 - 2t = 4u^2`), as t
        rounds near 1.
    scale : float
        The size of the profile (e.g. :math:`\varphi(1)`): ``tol`` is relative to it.
    tol : float
        Relative tolerance of each interval's coefficient tail and check-point deviation.
    degree : int
        Degree p of each interval's interpolant.
    max_intervals : int
        At most this many intervals: beyond, the unresolved intervals are kept with their measured error.
    noise : float
        A bound on the rounding noise of ``f`` (absolute, from point to point): added to the error bound, as the
        check points sample it only.

    Returns
    -------
    ChebyshevTable
        The table, with its error bound relative to the callable.
    """
    p = int(degree)
    nodes, checks = _nodes(p), _checks(p)
    target = tol * abs(scale)
    pending = [(k / 16.0, (k + 1) / 16.0, math.inf) for k in range(16)]  # (lo, hi, the parent's error)
    done: list[tuple[float, float, np.ndarray, float]] = []
    for _ in range(200):
        if not pending:
            break
        a = np.array([iv[0] for iv in pending])
        b = np.array([iv[1] for iv in pending])
        mid, half = 0.5 * (a + b), 0.5 * (b - a)
        un = mid[:, None] + half[:, None] * nodes[None, :]
        uc = mid[:, None] + half[:, None] * checks[None, :]
        u = np.concatenate([un, uc], axis=1)
        values = np.asarray(f(u.ravel()), dtype=np.float64).reshape(u.shape)
        coef = _coefficients(values[:, : p + 1])
        approx = _clenshaw_numpy(coef[:, None, :], checks[None, :])
        deviation = np.max(np.abs(approx - values[:, p + 1 :]), axis=1)
        tail = np.max(np.abs(coef[:, -3:]), axis=1)
        error = np.maximum(deviation, tail)
        budget = max_intervals - len(done) - len(pending)
        nxt = []
        for i, (lo, hi, parent) in enumerate(pending):
            # the noise of f reached: halving the interval no longer divides its deviation by 4 (a resolved
            # interval gains about 2^-p), and the deviation is within 4 times the target and the noise bound
            stalled = error[i] > 0.25 * parent and error[i] <= 4.0 * (target + noise)
            if error[i] <= target + noise or stalled or budget <= 0 or hi <= _U_MIN:
                # below _U_MIN only u = 0 and u = _U_MIN come from float64 inner products: the interpolant takes
                # both values at its end nodes
                error[i] = error[i] if hi > _U_MIN else 0.0
                done.append((lo, hi, coef[i], float(error[i])))
            elif lo == 0.0:  # towards the singularity at u = 0: a geometric mesh, ratio 2
                cuts = [0.0] + [hi * 2.0**-k for k in range(12, 0, -1)] + [hi]
                nxt += [(x, y, error[i]) for x, y in itertools.pairwise(cuts)]
                budget -= 12
            else:
                nxt += [(lo, 0.5 * (lo + hi), error[i]), (0.5 * (lo + hi), hi, error[i])]
                budget -= 1
        pending = nxt
    for lo, hi, _ in pending:  # out of rounds (not reached in practice): kept with an infinite bound
        done.append((lo, hi, np.full(p + 1, np.nan), math.inf))
    done.sort(key=lambda iv: iv[0])
    breaks = np.array([iv[0] for iv in done] + [1.0])
    coefficients = np.stack([iv[2] for iv in done], axis=1)
    measured = max(iv[3] for iv in done)
    # evaluation in float64: Clenshaw's rounding is in the deviations measured (the same sums at the check points),
    # plus its last step (2 eps sum |c_k|) at other points; the rounding of u from t (relative 1.5 eps, the map to
    # [-1, 1] adds eps/2 of the width) times |u p'(u)| <= hi * (2 / width) * sum k^2 |c_k| (Chebyshev: |T_k'| <= k^2)
    k2 = np.arange(p + 1, dtype=np.float64) ** 2
    widths = np.diff(breaks)
    sums = np.sum(np.abs(coefficients), axis=0)
    slopes = breaks[1:] * (2.0 / widths) * (k2 @ np.abs(coefficients))
    rounding = _EPS * float(np.max(2.0 * sums + 2.0 * slopes))
    return ChebyshevTable(breaks, coefficients, 2.0 * measured + rounding + noise)
