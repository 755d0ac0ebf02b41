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


def log_harmonic_dimensions_mp(q: int, L: int, dps: int = 50) -> list:
    """ln N(q, l) for l = 0..L, by the exact ratio N(q, l+1)/N(q, l) = (2l+q)(l+q-2) / ((2l+q-2)(l+1)) (l >= 1)."""
    with mp.workdps(dps):
        out = [mp.mpf(0)]
        if L >= 1:
            out.append(mp.log(harmonic_dimension_mp(q, 1)))
        for l in range(1, L):
            out.append(out[-1] + mp.log(mp.mpf((2 * l + q) * (l + q - 2)) / ((2 * l + q - 2) * (l + 1))))
        return out


def log_bessel_spectrum_mp(gamma, q: int, L: int, *, scaled: bool = True, dps: int = 50) -> list:
    """ln a_l, l = 0..L, of exp(-2 gamma (1 - t)) (``scaled``) or exp(2 gamma t): a_l = N(q,l) Gamma(q/2)
    gamma^(1-q/2) I_{l+q/2-1}(2 gamma) [e^(-2 gamma)].

    mpmath's besseli at the two highest orders, then the backward recurrence
    I_{nu-1}(x) = (2 nu / x) I_nu(x) + I_{nu+1}(x), which adds positive terms only (no cancellation).
    """
    with mp.workdps(dps):
        g = mp.mpf(gamma)
        x, half = 2 * g, mp.mpf(q) / 2
        values = [mp.mpf(0)] * (L + 1)
        values[L] = mp.besseli(L + half - 1, x)
        above = mp.besseli(L + half, x)
        for l in range(L, 0, -1):
            nu = l + half - 1
            values[l - 1], above = 2 * nu / x * values[l] + above, values[l]
        log_n = log_harmonic_dimensions_mp(q, L, dps)
        base = mp.loggamma(half) - (half - 1) * mp.log(g) - (x if scaled else 0)
        return [log_n[l] + base + mp.log(values[l]) for l in range(L + 1)]


def log_monomial_spectrum_mp(p: int, q: int, L: int, dps: int = 50) -> list:
    """ln a_l of t^p (None where a_l = 0): N(q,l) p! Gamma(q/2) / (2^p ((p-l)/2)! Gamma((p+l+q)/2))."""
    with mp.workdps(dps):
        log_n = log_harmonic_dimensions_mp(q, L, dps)
        c = mp.loggamma(p + 1) + mp.loggamma(mp.mpf(q) / 2) - p * mp.log(2)
        return [
            log_n[l] + c - mp.loggamma(mp.mpf(p - l) / 2 + 1) - mp.loggamma(mp.mpf(p + l + q) / 2)
            if l <= p and (p - l) % 2 == 0
            else None
            for l in range(L + 1)
        ]


def log_polynomial_spectrum_mp(p: int, c, q: int, dps: int = 40) -> list:
    """ln a_l of (c + t)^p, c > 0, l = 0..p: N(q,l) sum_j C(p,j) c^(p-j) lambda_l(t^j), the positive terms by their
    exact ratios in j (lambda_l(t^(j+2)) / lambda_l(t^j) = (j+1)(j+2) / (4 ((j-l)/2 + 1) ((j+l+q)/2)))."""
    with mp.workdps(dps):
        log_n = log_harmonic_dimensions_mp(q, p, dps)
        c, half = mp.mpf(c), mp.mpf(q) / 2
        out = []
        for l in range(p + 1):
            term = mp.binomial(p, l) * c ** (p - l)
            term *= mp.exp(mp.loggamma(l + 1) + mp.loggamma(half) - l * mp.log(2) - mp.loggamma(l + half))
            total, j = term, l
            while j + 2 <= p:
                term *= mp.mpf((p - j) * (p - j - 1)) / (c * c * 4 * (mp.mpf(j - l) / 2 + 1) * (mp.mpf(j + l + q) / 2))
                total += term
                j += 2
            out.append(log_n[l] + mp.log(total))
        return out
