"""Independent high-precision references (mpmath) shared by the tests."""

from __future__ import annotations

import mpmath as mp


def legendre_mp(l: int, q: int, t):
    """P_{l,q}(t) from the explicit Gegenbauer sum at 250 digits (cos(l arccos t) for q = 2)."""
    with mp.workdps(250):
        t = mp.mpf(t)
        if q == 2:
            return +mp.cos(l * mp.acos(t))
        lam = mp.mpf(q - 2) / 2

        def c(x):
            return mp.fsum(
                (-1) ** k * mp.rf(lam, l - k) / (mp.factorial(k) * mp.factorial(l - 2 * k)) * (2 * x) ** (l - 2 * k)
                for k in range(l // 2 + 1)
            )

        return +(c(t) / c(mp.mpf(1)))


def legendre_mp_recurrence(l: int, q: int, t, dps: int | None = 60):
    """P_{l,q}(t) by the three-term recurrence in exact rational coefficients at ``dps`` digits (large degrees).

    The recurrence is an identity of the polynomials; carried out at ``dps`` digits it is accurate to about
    10^(-dps) times l (|P| <= 1), far below float64 rounding. Independent of the float64 code (mpmath arithmetic,
    coefficients formed from integers here). ``dps=None`` keeps the caller's precision (for mp.diff).
    """
    with mp.workdps(dps or mp.mp.dps):
        t = mp.mpf(t)
        if l == 0:
            return mp.mpf(1)
        previous, current = mp.mpf(1), t
        for k in range(1, l):
            previous, current = current, ((2 * k + q - 2) * t * current - k * previous) / (k + q - 2)
        return +current


def harmonic_dimension_mp(q: int, l: int):
    if l == 0:
        return mp.mpf(1)
    return mp.mpf(2 * l + q - 2) / l * mp.binomial(l + q - 3, l - 1)


def spectrum_mp(phi, q: int, L: int, dps: int = 60, breakpoints=()):
    """a_0..a_L of phi in dimension q by tanh-sinh quadrature in theta (t = cos theta), at ``dps`` digits.

    E_nu[f] = int_0^pi f(cos th) sin^(q-2) th dth / int_0^pi sin^(q-2) th dth, smooth for every q; the interval is
    split around pi/2 on the scale 1/sqrt(q) where the weight concentrates. P_{l,q} is evaluated by the
    three-term recurrence at ``dps`` digits.
    """
    with mp.workdps(dps):
        width = mp.mpf(1) / mp.sqrt(q)
        pts = sorted(
            {
                mp.mpf(0),
                mp.pi,
                *[mp.pi / 2 + k * width for k in (-8, -4, -2, -1, 0, 1, 2, 4, 8)],
                *[mp.acos(mp.mpf(b)) for b in breakpoints],
            }
        )
        pts = [p for p in pts if 0 <= p <= mp.pi]

        cache: dict = {}

        def node_values(th):
            # phi, the polynomials and the weight at one node, shared by the L + 1 integrals (same nodes each time)
            if th not in cache:
                t = mp.cos(th)
                vals = [mp.mpf(1), t]
                for k in range(1, L):
                    vals.append(((2 * k + q - 2) * t * vals[k] - k * vals[k - 1]) / (k + q - 2))
                cache[th] = (phi(t), vals[: L + 1], mp.sin(th) ** (q - 2))
            return cache[th]

        norm = mp.quad(lambda th: node_values(th)[2], pts)
        out = []
        for l in range(L + 1):
            val = mp.quad(lambda th, l=l: node_values(th)[0] * node_values(th)[1][l] * node_values(th)[2], pts)
            out.append(harmonic_dimension_mp(q, l) * val / norm)
        return out
