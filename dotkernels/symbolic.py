r"""Symbolic (sympy) Gegenbauer algebra and derivations of the special cases of the kernel regulariser.

sympy is imported inside the functions, so ``import dotkernels`` never needs it.

Polynomials and spectra with a symbolic dimension q
    :func:`legendre_symbolic` builds :math:`P_{l,q}(t)` from the normalised recurrence

    .. math::

        P_{0,q} = 1, \quad P_{1,q} = t, \quad
        P_{l+1,q}(t) = \frac{(2l+q-2)\, t\, P_{l,q}(t) - l\, P_{l-1,q}(t)}{l+q-2},

    keeping every monomial coefficient as a cancelled rational function of q (exact rationals for an integer q).
    :func:`legendre_series_to_monomial`, :func:`monomial_spectrum_symbolic` and
    :func:`polynomial_kernel_spectrum_symbolic` convert between :math:`\sum_l a_l P_{l,q}` and :math:`\sum_p c_p t^p`
    by the triangular change of basis (the leading monomial of :math:`P_{l,q}` is :math:`t^l`), and
    :func:`harmonic_dimension_symbolic` gives :math:`N(q, l)` as a polynomial in q.

Derivations
    Each ``derive_*`` function returns an :class:`Identity`: ``lhs``, ``rhs`` and ``difference = lhs - rhs`` as sympy
    expressions, the ``assumptions`` under which it holds, and the lemmas (``steps``) it uses, each itself an
    :class:`Identity`. :meth:`Identity.verify` simplifies every difference; a zero is the proof. The main statements
    are proven for a symbolic dimension q (and symbolic batch size n where it enters); lemmas that are plain index
    exchanges on the data matrix (e.g. :math:`n^{-2}\sum_{ij} (z_i^T z_j)^2 = \operatorname{tr}(S^2)`) are checked
    as polynomial identities in the symbolic entries of an explicit ``n x q`` matrix (default 3 x 3); they are the
    same finite-sum exchange :math:`\sum_{ij}\sum_{kl} z_{ik}z_{jk}z_{il}z_{jl} = \sum_{kl}\sum_{ij} \cdots` at
    every size.

Notation (used by every derivation): Z is n x q with rows :math:`z_i`, :math:`t_{ij} = z_i^T z_j`,
:math:`m = n^{-1}\sum_i z_i`, :math:`S = n^{-1} Z^T Z = E[z z^T]` (uncentred second moment),
:math:`M_p = n^{-2} \sum_{ij} t_{ij}^p` (so :math:`M_0 = 1`, :math:`M_1 = \|m\|^2`, :math:`M_2 = \operatorname{tr}
S^2`), and for unit-norm rows :math:`\operatorname{tr} S = 1`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._validate import check_degree, check_dimension, check_integer

__all__ = [
    "Identity",
    "derive_barlow_twins_relation",
    "derive_centering_whitening_identity",
    "derive_energy_distance_identity",
    "derive_spectral_contrastive_identity",
    "derive_uniformity_identity",
    "derive_vicreg_covariance_relation",
    "harmonic_dimension_symbolic",
    "legendre_series_to_monomial",
    "legendre_symbolic",
    "monomial_spectrum_symbolic",
    "polynomial_kernel_spectrum_symbolic",
]


def _sympy():
    try:
        import sympy
    except ImportError as exc:  # pragma: no cover - sympy is a test/notebook dependency
        raise ImportError("dotkernels.symbolic needs sympy: pip install 'dotkernels[notebooks]'") from exc
    return sympy


# ---------------------------------------------------------------------------------------------------------------
# validation


def _dimension(q: Any) -> Any:
    """A symbolic q passes through; a number must be an integer >= 2 (returned as a sympy Integer)."""
    sp = _sympy()
    if q is None:
        return sp.Symbol("q")
    if isinstance(q, sp.Basic):
        if q.is_number:
            if not q.is_integer:
                raise TypeError(f"q must be an integer >= 2 or a symbolic expression, got {q}")
            return sp.Integer(check_dimension(int(q)))
        return q
    return sp.Integer(check_dimension(q))


def _coefficient_list(coefficients: Any, name: str) -> list[Any]:
    sp = _sympy()
    if isinstance(coefficients, (str, bytes)) or not isinstance(coefficients, (Sequence, sp.Matrix)):
        try:
            coefficients = list(coefficients)
        except TypeError as exc:
            raise TypeError(f"{name} must be a sequence of numbers or sympy expressions") from exc
    coef = [sp.sympify(c) for c in coefficients]
    if not coef:
        raise ValueError(f"{name} must be non-empty")
    return coef


# ---------------------------------------------------------------------------------------------------------------
# polynomials with a symbolic dimension


def _legendre_table(L: int, q: Any) -> list[list[Any]]:
    """Row l: monomial coefficients (length L + 1) of P_{l,q}, each a cancelled rational function of q."""
    sp = _sympy()
    zero, one = sp.Integer(0), sp.Integer(1)
    rows = [[one] + [zero] * L]
    if L >= 1:
        rows.append([zero, one] + [zero] * (L - 1))
    for k in range(1, L):
        alpha = (2 * k + q - 2) / (k + q - 2)
        beta = sp.Integer(k) / (k + q - 2)
        new = [zero] * (L + 1)
        for j in range(L + 1):
            value = (alpha * rows[k][j - 1] if j >= 1 else zero) - beta * rows[k - 1][j]
            new[j] = sp.cancel(value)
        rows.append(new)
    return rows


def legendre_symbolic(degree: int, t: Any = None, *, q: Any = None) -> Any:
    r"""The normalised Gegenbauer polynomial :math:`P_{l,q}(t)` with a symbolic (or integer) dimension q.

    Built from the normalised three-term recurrence (module docstring); every monomial coefficient is a cancelled
    rational function of q, e.g. :math:`P_{2,q} = (q t^2 - 1)/(q - 1)`,
    :math:`P_{3,q} = ((q+2) t^3 - 3t)/(q-1)`. q = 3 gives Legendre's :math:`P_l`, q = 2 Chebyshev's :math:`T_l`.

    Parameters
    ----------
    degree : int
        Degree l >= 0.
    t : sympy expression, optional
        Variable (default ``sympy.Symbol('t')``); any sympy expression or number may be substituted.
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``); a number must be an integer >= 2.

    Returns
    -------
    sympy.Expr
        :math:`\sum_{p \le l} c_p(q)\, t^p` (coefficients cancelled; exact rationals for an integer q).

    See Also
    --------
    dotkernels.gegenbauer.legendre : The numerical values.
    legendre_series_to_monomial : Series in monomials.

    Accuracy
    --------
    Exact (sympy rational arithmetic; symbolic in q).

    Examples
    --------
    >>> import sympy
    >>> q, t = sympy.symbols("q t")
    >>> sympy.factor(legendre_symbolic(2, t, q=q))
    (q*t**2 - 1)/(q - 1)
    >>> legendre_symbolic(3, t, q=3)
    5*t**3/2 - 3*t/2
    """
    sp = _sympy()
    l = check_degree(degree)
    q = _dimension(q)
    t = sp.Symbol("t") if t is None else sp.sympify(t)
    row = _legendre_table(l, q)[l]
    return sp.Add(*[c * t**p for p, c in enumerate(row)])


def legendre_series_to_monomial(coefficients: Sequence[Any], *, q: Any = None) -> list[Any]:
    r"""Monomial coefficients :math:`c_0, \dots, c_L` of :math:`\sum_{l=0}^{L} a_l P_{l,q}(t) = \sum_p c_p t^p`.

    Parameters
    ----------
    coefficients : sequence
        :math:`a_0, \dots, a_L`: numbers or sympy expressions (ints and Rationals stay exact; floats become
        sympy Floats).
    q : sympy expression or int, optional
        Dimension, symbolic (default ``sympy.Symbol('q')``) or an integer >= 2.

    Returns
    -------
    list of sympy.Expr
        :math:`c_p = \sum_l a_l [t^p] P_{l,q}`, each cancelled.

    See Also
    --------
    polynomial_kernel_spectrum_symbolic : The inverse conversion.
    dotkernels.gegenbauer.legendre_to_monomial : The numerical conversion.

    Accuracy
    --------
    Exact (sympy rational arithmetic; symbolic in q).

    Examples
    --------
    >>> legendre_series_to_monomial([0, 1, 40, 40], q=3)  # SFRIK's default kernel on S^2
    [-20, -59, 60, 100]
    """
    sp = _sympy()
    coef = _coefficient_list(coefficients, "coefficients")
    q = _dimension(q)
    L = len(coef) - 1
    table = _legendre_table(L, q)
    return [sp.cancel(sum((coef[l] * table[l][p] for l in range(p, L + 1)), sp.Integer(0))) for p in range(L + 1)]


def polynomial_kernel_spectrum_symbolic(coefficients: Sequence[Any], *, q: Any = None) -> list[Any]:
    r"""Gegenbauer coefficients :math:`a_0, \dots, a_P` of a polynomial profile :math:`\varphi(t) = \sum_p c_p t^p`.

    Solves :math:`\sum_l a_l P_{l,q} = \sum_p c_p t^p` by back substitution (the leading monomial of
    :math:`P_{l,q}` is :math:`t^l`): :math:`a_P = c_P`, then peel off degree by degree. With a symbolic q each
    :math:`a_l` is a rational function of q; :math:`a_l / N(q,l)` are the Mercer eigenvalues.

    Parameters
    ----------
    coefficients : sequence
        :math:`c_0, \dots, c_P` (numbers or sympy expressions).
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``).

    Returns
    -------
    list of sympy.Expr
        :math:`a_0, \dots, a_P`, each cancelled.

    See Also
    --------
    legendre_series_to_monomial : The inverse conversion.
    dotkernels.gegenbauer.monomial_to_legendre : The numerical conversion.

    Accuracy
    --------
    Exact (sympy rational arithmetic; symbolic in q).

    Examples
    --------
    >>> import sympy
    >>> q = sympy.Symbol("q")
    >>> polynomial_kernel_spectrum_symbolic([1, 1, 0], q=q)  # 1 + t
    [1, 1, 0]
    >>> polynomial_kernel_spectrum_symbolic([0, 0, 1], q=q)  # t^2 = 1/q + (q-1)/q P_2
    [1/q, 0, (q - 1)/q]
    """
    sp = _sympy()
    c = _coefficient_list(coefficients, "coefficients")
    q = _dimension(q)
    P = len(c) - 1
    table = _legendre_table(P, q)
    remainder = list(c)
    a = [sp.Integer(0)] * (P + 1)
    for l in range(P, -1, -1):
        a[l] = sp.cancel(remainder[l] / table[l][l])
        for p in range(l + 1):
            remainder[p] = remainder[p] - a[l] * table[l][p]
    return a


def monomial_spectrum_symbolic(degree: int, *, q: Any = None) -> list[Any]:
    r"""Gegenbauer coefficients :math:`a_0, \dots, a_p` of :math:`t^p` (p = ``degree``) with a symbolic dimension q.

    Computed by inverting the recurrence's monomial table (:func:`polynomial_kernel_spectrum_symbolic`), which
    agrees with the closed form

    .. math::

        a_l = N(q,l)\, \frac{p!\, \Gamma(q/2)}{2^p\, ((p-l)/2)!\, \Gamma((p+l+q)/2)}
        \quad (l \le p,\ p - l \text{ even}; \text{ else } 0).

    :math:`a_0 = E_{\nu_q}[t^p]`, e.g. :math:`1/q` for p = 2 (the uniform mean embedding of :math:`(u^T v)^2`).

    Parameters
    ----------
    degree : int
        The exponent p >= 0 of :math:`t^p`.
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``); a number must be an integer >= 2.

    Returns
    -------
    list of sympy.Expr
        :math:`a_0, \dots, a_p`, each cancelled.

    See Also
    --------
    polynomial_kernel_spectrum_symbolic : Any polynomial.
    dotkernels.kernels.MonomialKernel : The numerical spectrum.

    Accuracy
    --------
    Exact (sympy rational arithmetic; symbolic in q).

    Examples
    --------
    >>> import sympy
    >>> [sympy.factor(a) for a in monomial_spectrum_symbolic(3, q=sympy.Symbol("q"))]
    [0, 3/(q + 2), 0, (q - 1)/(q + 2)]
    """
    p = check_degree(degree)
    return polynomial_kernel_spectrum_symbolic([0] * p + [1], q=q)


def harmonic_dimension_symbolic(degree: int, *, q: Any = None) -> Any:
    r"""Harmonic dimension :math:`N(q, l)` as a polynomial in q.

    .. math::

        N(q, 0) = 1, \qquad N(q, l) = \frac{2l+q-2}{l} \binom{l+q-3}{l-1}
        = \frac{2l+q-2}{l} \prod_{j=1}^{l-1} \frac{q-2+j}{j}.

    Parameters
    ----------
    degree : int
        The degree l >= 0.
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``); a number must be an integer >= 2.

    Returns
    -------
    sympy.Expr
        :math:`N(q, l)`, a polynomial in q (an integer for an integer q).

    See Also
    --------
    dotkernels.gegenbauer.harmonic_dimension : The exact integer.

    Accuracy
    --------
    Exact (sympy rational arithmetic; symbolic in q).

    Examples
    --------
    >>> import sympy
    >>> sympy.factor(harmonic_dimension_symbolic(2, q=sympy.Symbol("q")))
    (q - 1)*(q + 2)/2
    >>> harmonic_dimension_symbolic(4, q=3)
    9
    """
    sp = _sympy()
    l = check_degree(degree)
    q = _dimension(q)
    if l == 0:
        return sp.Integer(1)
    value = sp.Rational(1, l) * (2 * l + q - 2)
    for j in range(1, l):
        value = value * (q - 2 + j) / j
    return sp.expand(value)


# ---------------------------------------------------------------------------------------------------------------
# identities


def _is_zero(expr: Any) -> bool:
    sp = _sympy()
    if isinstance(expr, sp.MatrixBase):
        return all(_is_zero(e) for e in expr)
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    for transform in (sp.expand, sp.cancel, lambda e: sp.gammasimp(sp.expand_func(e)), sp.simplify):
        try:
            if transform(expr) == 0:
                return True
        except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - sympy edge cases
            continue
    return False


@dataclass(frozen=True)
class Identity:
    r"""A symbolic identity ``lhs == rhs``; ``difference = lhs - rhs`` simplifies to 0 (the proof).

    Parameters
    ----------
    name : str
        What is stated.
    lhs, rhs : sympy.Expr
        The two sides.
    difference : sympy.Expr
        ``lhs - rhs`` (built by :meth:`of`).
    assumptions : str
        Conditions under which the identity holds, in words.
    steps : tuple of Identity
        Lemmas used by the statement.
    symbols : dict
        The sympy symbols of the statement, by name.
    meaning : dict
        What each symbol stands for, by name.

    Attributes
    ----------
    name : str
        What is stated.
    lhs, rhs : sympy.Expr
        The two sides (``difference`` is ``lhs - rhs``).
    assumptions : str
        Conditions under which the identity holds (unit-norm rows, centred data, ...), in words.
    steps : tuple of Identity
        Lemmas used by the statement; :meth:`verify` checks them too.
    symbols : dict
        The sympy symbols the statement is written in, by name, with their meaning in ``meaning``.

    See Also
    --------
    derive_uniformity_identity, derive_centering_whitening_identity : Identities of the library.

    Examples
    --------
    >>> import sympy
    >>> x = sympy.Symbol("x")
    >>> Identity.of("square of a sum", (x + 1) ** 2, x**2 + 2 * x + 1).verify()
    True
    """

    name: str
    lhs: Any
    rhs: Any
    difference: Any
    assumptions: str = ""
    steps: tuple[Identity, ...] = ()
    symbols: dict[str, Any] = field(default_factory=dict)
    meaning: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, lhs: Any, rhs: Any, **kwargs: Any) -> Identity:
        """Build an identity, forming ``difference = lhs - rhs``.

        Parameters
        ----------
        name : str
            What is stated.
        lhs, rhs : sympy.Expr
            The two sides.
        **kwargs
            The other fields (``assumptions``, ``steps``, ``symbols``, ``meaning``).

        Returns
        -------
        Identity
            The identity.

        See Also
        --------
        verify : The proof.

        Examples
        --------
        >>> import sympy
        >>> x = sympy.Symbol("x")
        >>> Identity.of("difference of squares", x**2 - 1, (x - 1) * (x + 1)).difference
        x**2 - (x - 1)*(x + 1) - 1
        """
        return cls(name=name, lhs=lhs, rhs=rhs, difference=lhs - rhs, **kwargs)

    def simplified_difference(self) -> Any:
        """``difference`` after ``gammasimp`` and ``simplify`` (0 when the identity holds).

        Returns
        -------
        sympy.Expr or sympy.Matrix
            The simplified difference.

        See Also
        --------
        verify : Whether it is 0, the steps included.

        Examples
        --------
        >>> import sympy
        >>> x = sympy.Symbol("x")
        >>> Identity.of("difference of squares", x**2 - 1, (x - 1) * (x + 1)).simplified_difference()
        0
        """
        sp = _sympy()
        if isinstance(self.difference, sp.MatrixBase):
            return self.difference.applyfunc(lambda e: sp.simplify(sp.gammasimp(sp.expand(e))))
        return sp.simplify(sp.gammasimp(sp.expand_func(sp.expand(self.difference))))

    def verify(self) -> bool:
        """True when this difference and those of every step simplify to 0.

        Returns
        -------
        bool
            Whether the identity and its steps hold.

        See Also
        --------
        simplified_difference : The difference, simplified.

        Examples
        --------
        >>> derive_spectral_contrastive_identity(q=3).verify()
        True
        """
        return all(step.verify() for step in self.steps) and _is_zero(self.difference)

    def __str__(self) -> str:
        return f"{self.name}: {self.lhs} == {self.rhs}"


def _data_matrix(n: int, q: int, name: str = "z") -> Any:
    sp = _sympy()
    n = check_integer(n, "n", minimum=1)
    q = check_integer(q, "q", minimum=1)
    return sp.Matrix(n, q, lambda i, k: sp.Symbol(f"{name}_{i}_{k}", real=True))


def _moment_lemmas(n: int, q: int) -> tuple[Identity, ...]:
    """n^-2 sum t_ij = ||m||^2, n^-2 sum t_ij^2 = tr S^2, tr S = n^-1 sum ||z_i||^2 on an explicit n x q matrix."""
    sp = _sympy()
    Z = _data_matrix(n, q)
    G = Z * Z.T
    m = Z.T * sp.ones(n, 1) / n
    S = Z.T * Z / n
    assumption = f"any real {n} x {q} matrix Z (an index exchange, the same at every size)"
    return (
        Identity.of("n^-2 sum_ij z_i^T z_j = ||m||^2", sum(G) / n**2, (m.T * m)[0, 0], assumptions=assumption),
        Identity.of(
            "n^-2 sum_ij (z_i^T z_j)^2 = tr(S^2)",
            sum(g**2 for g in G) / n**2,
            (S * S).trace(),
            assumptions=assumption,
        ),
        Identity.of(
            "tr S = n^-1 sum_i ||z_i||^2 (= 1 for unit-norm rows)",
            S.trace(),
            sum(G[i, i] for i in range(n)) / n,
            assumptions=assumption,
        ),
    )


def derive_centering_whitening_identity(
    b1: Any = None, b2: Any = None, *, q: Any = None, check_size: tuple[int, int] = (3, 3)
) -> Identity:
    r"""Prove :math:`\mathrm{MMD}_V^2 = b_1 \|m\|^2 + b_2 \frac{q}{q-1} \|S - I/q\|_F^2` for
    :math:`\varphi = b_1 P_{1,q} + b_2 P_{2,q}`, with symbolic q, b_1, b_2.

    Derivation. :math:`a_0 = 0`, so :math:`\mathrm{MMD}_V^2 = n^{-2}\sum_{ij} \varphi(t_{ij})`. Expanding
    :math:`P_{l,q}` in monomials (:func:`legendre_symbolic`), :math:`n^{-2}\sum_{ij} P_{l,q}(t_{ij}) = \sum_p
    [t^p]P_{l,q}\, M_p` with :math:`M_0 = 1`, :math:`M_1 = A = \|m\|^2`, :math:`M_2 = B = \operatorname{tr} S^2`
    (lemmas). The right side is :math:`b_1 A + b_2 \frac{q}{q-1}(\operatorname{tr}S^2 - \frac2q \operatorname{tr}S +
    \frac{\operatorname{tr} I}{q^2})` with :math:`\operatorname{tr}S = 1` (unit-norm rows) and
    :math:`\operatorname{tr} I = q`; the difference cancels for symbolic q.

    Parameters
    ----------
    b1, b2 : sympy expression or number, optional
        Weights (default symbols ``b1``, ``b2``).
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``).
    check_size : (int, int)
        Size n x q of the explicit matrix on which the moment lemmas are checked.

    Returns
    -------
    Identity
        ``lhs`` = the kernel V-statistic, ``rhs`` = the centring + whitening form, written in the symbols ``A``
        (:math:`\|m\|^2`) and ``B`` (:math:`\operatorname{tr} S^2`).

    See Also
    --------
    dotkernels.regularizers.centering_whitening : The numerical form.

    Examples
    --------
    >>> derive_centering_whitening_identity().verify()
    True
    """
    sp = _sympy()
    b1 = sp.Symbol("b1") if b1 is None else sp.sympify(b1)
    b2 = sp.Symbol("b2") if b2 is None else sp.sympify(b2)
    q = _dimension(q)
    A, B, t = sp.symbols("A B t")
    moments = {0: sp.Integer(1), 1: A, 2: B}
    phi = b1 * legendre_symbolic(1, t, q=q) + b2 * legendre_symbolic(2, t, q=q)
    poly = sp.Poly(sp.expand(phi), t)
    lhs = sum(coef * moments[p] for (p,), coef in poly.terms())  # n^-2 sum_ij phi(t_ij), a_0 = 0
    trace_s, trace_i = sp.Integer(1), q
    frob = B - 2 * trace_s / q + trace_i / q**2  # ||S - I/q||_F^2 = tr S^2 - 2 tr S / q + tr I / q^2
    rhs = b1 * A + b2 * q / (q - 1) * frob
    n0, q0 = check_size
    return Identity.of(
        "MMD_V^2[b1 P_1 + b2 P_2] = b1 ||m||^2 + b2 q/(q-1) ||S - I/q||_F^2",
        lhs,
        rhs,
        assumptions="unit-norm rows (tr S = 1); V-statistic (diagonal included); a_0 = 0",
        steps=_moment_lemmas(n0, q0),
        symbols={"A": A, "B": B, "q": q, "b1": b1, "b2": b2},
        meaning={"A": "||m||^2 = n^-2 sum_ij t_ij", "B": "tr(S^2) = n^-2 sum_ij t_ij^2"},
    )


def _gaussian_mean_embedding_steps(gamma: Any, q: Any) -> tuple[Identity, ...]:
    r"""a_0 = E_nu exp(-2 gamma (1 - s)) = e^{-2 gamma} 0F1(; q/2; gamma^2), term by term, for symbolic q and k."""
    sp = _sympy()
    k = sp.Symbol("k", integer=True, nonnegative=True)
    half = sp.Rational(1, 2)
    # E_nu[s^{2k}] from the Beta integral: c_q B(k + 1/2, (q-1)/2) = Gamma(k+1/2) Gamma(q/2) / (sqrt(pi) Gamma(k+q/2))
    moment = sp.gamma(k + half) * sp.gamma(q / 2) / (sp.sqrt(sp.pi) * sp.gamma(k + q / 2))
    steps = []
    for kk in range(4):  # the Beta-integral moment agrees with a_0 of s^{2k} from the recurrence (independent)
        steps.append(
            Identity.of(
                f"E_nu[s^{2 * kk}] (Beta integral) = a_0(s^{2 * kk}) (Gegenbauer recurrence)",
                moment.subs(k, kk),
                monomial_spectrum_symbolic(2 * kk, q=q)[0],
                assumptions="nu_q: density c_q (1-s^2)^((q-3)/2) on (-1, 1)",
            )
        )
    series_term = (2 * gamma) ** (2 * k) / sp.factorial(2 * k) * moment  # odd moments vanish
    hyper_term = gamma ** (2 * k) / (sp.factorial(k) * sp.rf(q / 2, k))
    steps.append(
        Identity.of(
            "k-th term of E_nu[exp(2 gamma s)] = k-th term of 0F1(; q/2; gamma^2)",
            series_term,
            hyper_term,
            assumptions="every integer k >= 0 (Legendre duplication formula)",
        )
    )
    return tuple(steps)


def derive_uniformity_identity(gamma: Any = None, *, q: Any = None) -> Identity:
    r"""Prove Wang & Isola's uniformity :math:`\log \frac{1}{n(n-1)}\sum_{i\ne j} e^{-\gamma\|z_i - z_j\|^2} =
    \log(a_0 + \mathrm{MMD}_U^2)` for the Gaussian kernel, with symbolic n, q, gamma.

    Derivation. For unit vectors :math:`\|z_i - z_j\|^2 = 2 - 2 t_{ij}`, so each summand is the Gaussian profile
    :math:`\varphi(t) = e^{-2\gamma(1-t)}` at :math:`t_{ij}` (step 1). Write :math:`M = n^{-2}\sum_{ij}
    \varphi(t_{ij})` (the Gram mean) and :math:`\varphi(1) = 1`; the off-diagonal mean is
    :math:`(n^2 M - n)/(n(n-1))`. With :math:`\mathrm{MMD}_V^2 = M - a_0` and the U/V relation
    :math:`n\,\mathrm{MMD}_V^2 = (n-1)\mathrm{MMD}_U^2 + \varphi(1) - a_0` (step 2), :math:`a_0 + \mathrm{MMD}_U^2`
    equals the off-diagonal mean for every :math:`a_0`. The remaining steps identify :math:`a_0 = E_{\nu_q}\varphi =
    e^{-2\gamma}\,{}_0F_1(; q/2; \gamma^2)` term by term (Beta-integral moments, checked against the recurrence, and
    the duplication formula).

    Parameters
    ----------
    gamma : sympy expression or number, optional
        Scale of the Gaussian kernel (default ``sympy.Symbol('gamma')``).
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``); a number must be an integer >= 2.

    Returns
    -------
    Identity
        Written in the symbols ``n``, ``M``, ``a0``, ``gamma``, ``q``; ``symbols['a0_closed_form']`` holds
        :math:`e^{-2\gamma}{}_0F_1(; q/2; \gamma^2)`.

    See Also
    --------
    dotkernels.regularizers.wang_isola_uniformity : The numerical form.

    Examples
    --------
    >>> derive_uniformity_identity().verify()
    True
    """
    sp = _sympy()
    gamma = sp.Symbol("gamma", positive=True) if gamma is None else sp.sympify(gamma)
    q = _dimension(q)
    n = sp.Symbol("n", integer=True, positive=True)
    M, a0, s, nu, nv = sp.symbols("M a0 s normu2 normv2")
    phi = sp.exp(-2 * gamma * (1 - s))
    sq_distance = nu + nv - 2 * s  # ||u - v||^2 = ||u||^2 + ||v||^2 - 2 u^T v
    step_profile = Identity.of(
        "exp(-gamma ||u - v||^2) = exp(-2 gamma (1 - u^T v)) for unit u, v",
        sp.exp(-gamma * sq_distance.subs({nu: 1, nv: 1})),
        phi,
        assumptions="||u|| = ||v|| = 1, s = u^T v",
    )
    phi_one = phi.subs(s, 1)
    off_diagonal_mean = (n**2 * M - n * phi_one) / (n * (n - 1))
    mmd_v = M - a0
    mmd_u_def = off_diagonal_mean - a0
    step_uv = Identity.of(
        "n MMD_V^2 = (n - 1) MMD_U^2 + phi(1) - a_0",
        n * mmd_v,
        (n - 1) * mmd_u_def + phi_one - a0,
        assumptions="n >= 2; MMD_U^2 = mean_{i != j} phi(t_ij) - a_0",
    )
    mmd_u = (n * mmd_v - (phi_one - a0)) / (n - 1)  # from the U/V relation
    lhs = sp.log(off_diagonal_mean)
    rhs = sp.log(a0 + mmd_u)
    closed = sp.exp(-2 * gamma) * sp.hyper([], [q / 2], gamma**2)
    return Identity.of(
        "log mean_{i != j} exp(-gamma ||z_i - z_j||^2) = log(a_0 + MMD_U^2)",
        lhs,
        rhs,
        assumptions="unit-norm rows, n >= 2, Gaussian kernel exp(-gamma ||x - y||^2)",
        steps=(step_profile, step_uv, *_gaussian_mean_embedding_steps(gamma, q)),
        symbols={"n": n, "M": M, "a0": a0, "gamma": gamma, "q": q, "a0_closed_form": closed},
        meaning={"M": "n^-2 sum_ij exp(-gamma ||z_i - z_j||^2)", "a0": "E_nu phi = uniform mean embedding"},
    )


def derive_spectral_contrastive_identity(*, q: Any = None) -> Identity:
    r"""Prove :math:`\frac{1}{n(n-1)}\sum_{i\ne j}(z_i^T z_j)^2 = \frac1q + \mathrm{MMD}_U^2[t^2]` with symbolic
    n and q, and :math:`\mathrm{MMD}_V^2[t^2] = \|S - I/q\|_F^2` (the whitening term).

    Derivation. The spectrum of :math:`t^2` (:func:`monomial_spectrum_symbolic`) is :math:`a_0 = 1/q`,
    :math:`a_1 = 0`, :math:`a_2 = (q-1)/q` (step 1). With :math:`B = \operatorname{tr} S^2 = n^{-2}\sum_{ij}t_{ij}^2`
    and :math:`t_{ii} = 1`, the repulsion is :math:`(n^2 B - n)/(n(n-1))`. The MMD is built from the spectrum:
    :math:`\mathrm{MMD}_V^2 = a_2\, n^{-2}\sum_{ij} P_{2,q}(t_{ij}) = a_2 (qB - 1)/(q-1)`, and
    :math:`\mathrm{MMD}_U^2 = (n\,\mathrm{MMD}_V^2 - (\varphi(1) - a_0))/(n-1)` with :math:`\varphi(1) = 1`.

    Parameters
    ----------
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``); a number must be an integer >= 2.

    Returns
    -------
    Identity
        The statement; :meth:`Identity.verify` proves it (its difference simplifies to 0).

    See Also
    --------
    dotkernels.regularizers.spectral_contrastive_repulsion : The numerical form.

    Examples
    --------
    >>> derive_spectral_contrastive_identity().verify()
    True
    """
    sp = _sympy()
    q = _dimension(q)
    n = sp.Symbol("n", integer=True, positive=True)
    B, t = sp.symbols("B t")
    a = monomial_spectrum_symbolic(2, q=q)
    p2 = legendre_symbolic(2, t, q=q)
    step_spectrum = Identity.of(
        "t^2 = a_0 + a_1 P_1 + a_2 P_2 with (a_0, a_1, a_2) from the recurrence",
        t**2,
        a[0] + a[1] * t + a[2] * p2,
        assumptions="polynomial identity in t, symbolic q",
    )
    step_a0 = Identity.of("a_0(t^2) = 1/q", a[0], 1 / q)
    A = sp.Symbol("A")  # ||m||^2 = n^-2 sum_ij t_ij; it enters with a_1 (= 0 for t^2)
    p2_poly = sp.Poly(sp.expand(p2), t)
    mean_p2 = p2_poly.coeff_monomial(t**2) * B + p2_poly.coeff_monomial(1)  # n^-2 sum_ij P_2(t_ij)
    mmd_v = a[1] * A + a[2] * mean_p2
    whitening = B - 2 * sp.Integer(1) / q + q / q**2  # ||S - I/q||_F^2 with tr S = 1
    step_whitening = Identity.of(
        "MMD_V^2[t^2] = ||S - I/q||_F^2",
        mmd_v,
        whitening,
        assumptions="unit-norm rows (tr S = 1)",
    )
    phi_one = sp.Integer(1)
    mmd_u = (n * mmd_v - (phi_one - a[0])) / (n - 1)
    lhs = (n**2 * B - n) / (n * (n - 1))
    rhs = a[0] + mmd_u
    return Identity.of(
        "mean_{i != j} (z_i^T z_j)^2 = 1/q + MMD_U^2[t^2]",
        lhs,
        rhs,
        assumptions="unit-norm rows, n >= 2",
        steps=(step_spectrum, step_a0, step_whitening),
        symbols={"n": n, "B": B, "q": q},
        meaning={"B": "tr(S^2) = n^-2 sum_ij (z_i^T z_j)^2"},
    )


def derive_energy_distance_identity(*, q: Any = None) -> Identity:
    r"""Prove that the energy distance to the uniform law is the MMD with :math:`\varphi(t) = -\|x-y\| =
    -\sqrt{2-2t}`, and the mean distance :math:`E\|Y - Y'\|` in closed form, for symbolic q.

    Derivation. With :math:`c = E_{Y\sim\sigma}\|x - Y\|` (the same for every unit x by rotation invariance, and equal
    to :math:`E\|Y - Y'\|`), :math:`\mathrm{ED} = 2E\|X - Y\| - E\|X - X'\| - E\|Y - Y'\| = c - D` with
    :math:`D = E\|X - X'\|`, while :math:`\mathrm{MMD}^2 = E\varphi - a_0 = -D - a_0` and :math:`a_0 = E_{\nu}\varphi
    = -c`. Step: :math:`c` from the Beta law of :math:`(1-s)/2 \sim \mathrm{Beta}(\alpha, \alpha)`,
    :math:`\alpha = (q-1)/2`:
    :math:`c = 2\Gamma(\alpha+\frac12)\Gamma(2\alpha)/(\Gamma(\alpha)\Gamma(2\alpha+\frac12))`,
    equals the Riesz closed form :math:`2^{q-1}\Gamma(q/2)^2/(\sqrt\pi\,\Gamma(q-\frac12))`
    (:math:`-\lambda_0` of the distance kernel with a = 1/2).

    Parameters
    ----------
    q : sympy expression or int, optional
        Dimension (default ``sympy.Symbol('q')``); a number must be an integer >= 2.

    Returns
    -------
    Identity
        The statement; :meth:`Identity.verify` proves it (its difference simplifies to 0).

    See Also
    --------
    dotkernels.regularizers.energy_distance_to_uniform : The numerical form.

    Examples
    --------
    >>> derive_energy_distance_identity().verify()
    True
    """
    sp = _sympy()
    q = _dimension(q)
    c, D = sp.symbols("c D")
    half = sp.Rational(1, 2)
    alpha = (q - 1) / 2
    beta_form = 2 * sp.gamma(alpha + half) * sp.gamma(2 * alpha) / (sp.gamma(alpha) * sp.gamma(2 * alpha + half))
    a = half
    riesz = 2 ** (2 * a + q - 2) * sp.gamma(q / 2) * sp.gamma(a + (q - 1) / 2) / (sp.sqrt(sp.pi) * sp.gamma(a + q - 1))
    step_c = Identity.of(
        "E||Y - Y'|| (Beta law) = lambda_0 of ||x - y|| (Riesz closed form)",
        beta_form,
        riesz,
        assumptions="Y, Y' independent uniform on S^(q-1)",
    )
    energy = 2 * c - D - c
    a0 = -c
    mmd = -D - a0
    return Identity.of(
        "energy distance(P, sigma) = MMD^2 with phi = -||x - y||",
        energy,
        mmd,
        assumptions="P on S^(q-1); V or U statistics alike (D estimated the same way on both sides)",
        steps=(step_c,),
        symbols={"c": c, "D": D, "q": q, "c_closed_form": riesz},
        meaning={"c": "E||x - Y|| = E||Y - Y'|| (Y uniform)", "D": "E||X - X'|| (X ~ P)"},
    )


def derive_vicreg_covariance_relation(n: int = 3, *, q: int = 3) -> Identity:
    r"""The exact relation between VICReg's covariance term and the whitening term, on an explicit n x q matrix
    with symbolic entries (a polynomial identity; no constraint on the rows).

    With :math:`C_n = S - m m^T` (centred covariance, denominator n), VICReg's :math:`C = \frac{n}{n-1} C_n` and
    :math:`c(Z) = \frac1q \sum_{k\ne l} C_{kl}^2`:

    .. math::

        q \Big(\frac{n-1}{n}\Big)^2 c(Z) + \sum_k \big((C_n)_{kk} - \tfrac1q\big)^2
        = \|C_n - I/q\|_F^2 = \|S - I/q\|_F^2 - 2\, m^T (S - I/q)\, m + \|m\|^4 .

    For centred data (m = 0) the right side is the whitening term; for unit-norm rows it is
    :math:`\frac{q-1}{q}\mathrm{MMD}_V^2[P_2] = \mathrm{MMD}_V^2[t^2]`. The extra term :math:`m^T S m =
    n^{-3}\sum_{ijk} t_{ij} t_{ik}` is a three-point statistic, not a pairwise kernel mean.

    Parameters
    ----------
    n : int
        Number of rows of the explicit data matrix on which it is proved.
    q : int
        Number of its columns.

    Returns
    -------
    Identity
        The statement; :meth:`Identity.verify` proves it (its difference simplifies to 0).

    See Also
    --------
    dotkernels.regularizers.vicreg_covariance : The numerical form.

    Examples
    --------
    >>> derive_vicreg_covariance_relation(2, q=2).verify()
    True
    """
    sp = _sympy()
    Z = _data_matrix(n, q)
    m = Z.T * sp.ones(n, 1) / n
    S = Z.T * Z / n
    Cn = S - m * m.T
    C = Cn * sp.Rational(n, n - 1) if n > 1 else None
    if C is None:
        raise ValueError("n must be >= 2 (VICReg's covariance uses the denominator n - 1)")
    eye = sp.eye(q)
    vicreg_cov = sum(C[k, l] ** 2 for k in range(q) for l in range(q) if k != l) / q
    lhs = q * sp.Rational(n - 1, n) ** 2 * vicreg_cov + sum((Cn[k, k] - sp.Rational(1, q)) ** 2 for k in range(q))
    W = S - eye / q
    rhs = sum(w**2 for w in W) - 2 * (m.T * W * m)[0, 0] + (m.T * m)[0, 0] ** 2
    return Identity.of(
        "q ((n-1)/n)^2 vicreg_cov + sum_k (C_n,kk - 1/q)^2 = ||S - I/q||_F^2 - 2 m^T (S - I/q) m + ||m||^4",
        sp.expand(lhs),
        sp.expand(rhs),
        assumptions=f"any real {n} x {q} matrix; C_n = S - m m^T",
        symbols={"Z": Z},
    )


def derive_barlow_twins_relation(n: int = 3, *, q: int = 3, redundancy_weight: Any = None) -> Identity:
    r"""The exact relations between the Barlow Twins redundancy term and pairwise (kernel-type) statistics.

    Write the standardised views :math:`\hat Z^{(v)}` (columns centred, unit variance) as :math:`\hat Z^{(v)} =
    \sqrt q\, Y^{(v)}`, so that the cross-correlation is :math:`c = \hat Z^{(1)T} \hat Z^{(2)}/n = q\, Y^{(1)T}
    Y^{(2)}/n` and the rows of :math:`Y^{(v)}` have mean squared norm 1. Then, for any matrices (checked here as
    a polynomial identity on explicit n x q symbolic matrices),

    .. math::

        \|c - I\|_F^2 = q^2\, n^{-2}\sum_{ij} (y^{(1)T}_i y^{(1)}_j)(y^{(2)T}_i y^{(2)}_j)
        - 2q\, n^{-1} \sum_i y^{(1)T}_i y^{(2)}_i + q,

    which is the Barlow Twins loss for :math:`\lambda = 1`: a pairwise statistic of the joint embedding
    :math:`(y^{(1)}_i, y^{(2)}_i)` with the product kernel :math:`t_1 t_2`, minus an alignment term. With a single
    view (:math:`Y^{(1)} = Y^{(2)} = Y`), standardisation makes :math:`c_{kk} = 1`, so for every :math:`\lambda`

    .. math::

        \mathrm{BT}(Z, Z) = \lambda \sum_{k\ne l} c_{kl}^2 = \lambda q^2 \Big(n^{-2}\sum_{ij}(y_i^T y_j)^2
        - \frac1q\Big) = \lambda\, q (q-1)\, n^{-2} \sum_{ij} P_{2,q}(y_i^T y_j)

    (the second statement is proven for symbolic q and lambda as the main identity; the rows of Y are NOT
    on the sphere, only on average).

    Parameters
    ----------
    n : int
        Number of rows of the explicit data matrices on which it is proved.
    q : int
        Number of their columns.
    redundancy_weight : sympy expression or number, optional
        Weight of the off-diagonal term (default a symbol).

    Returns
    -------
    Identity
        Main statement: the single-view relation in the symbols ``B`` (:math:`n^{-2}\sum_{ij}(y_i^Ty_j)^2 =
        \operatorname{tr}(S_Y^2)`), ``q``, ``redundancy_weight`` (shown as lambda); steps: the two-view
        polynomial identity and the ``tr(S_Y^2)`` lemma on explicit matrices.

    See Also
    --------
    dotkernels.regularizers.barlow_twins_redundancy : The numerical form.

    Examples
    --------
    >>> derive_barlow_twins_relation(2, q=2).verify()
    True
    """
    sp = _sympy()
    n = check_integer(n, "n", minimum=1)
    q0 = check_integer(q, "q", minimum=1)
    lambd = sp.Symbol("lambda") if redundancy_weight is None else sp.sympify(redundancy_weight)
    Y1 = _data_matrix(n, q0, "y")
    Y2 = _data_matrix(n, q0, "w")
    c = q0 * Y1.T * Y2 / n
    G1, G2 = Y1 * Y1.T, Y2 * Y2.T
    two_view = Identity.of(
        "||c - I||_F^2 = q^2 n^-2 sum_ij (y_i^T y_j)(w_i^T w_j) - 2 q n^-1 sum_i y_i^T w_i + q",
        sp.expand(sum(x**2 for x in (c - sp.eye(q0)))),
        sp.expand(
            q0**2 * sum(G1[i, j] * G2[i, j] for i in range(n) for j in range(n)) / n**2
            - 2 * sp.Integer(q0) * sum((Y1[i, :] * Y2[i, :].T)[0, 0] for i in range(n)) / n
            + q0
        ),
        assumptions=f"any real {n} x {q0} matrices Y = Z1_hat / sqrt(q), W = Z2_hat / sqrt(q)",
    )
    S_y = Y1.T * Y1 / n
    lemma = Identity.of(
        "n^-2 sum_ij (y_i^T y_j)^2 = tr(S_Y^2)",
        sum(g**2 for g in G1) / n**2,
        (S_y * S_y).trace(),
        assumptions=f"any real {n} x {q0} matrix",
    )
    qs = sp.Symbol("q")
    B, t = sp.symbols("B t")
    frob_c = qs**2 * B  # ||c||_F^2 = q^2 tr(S_Y^2) for c = q S_Y
    diag_sq = qs  # c_kk = 1 for standardised columns: sum_k c_kk^2 = q, sum_k (1 - c_kk)^2 = 0
    on_diagonal = 0  # sum_k (1 - c_kk)^2
    lhs = on_diagonal + lambd * (frob_c - diag_sq)
    p2 = sp.Poly(sp.expand(legendre_symbolic(2, t, q=qs)), t)
    mean_p2 = p2.coeff_monomial(t**2) * B + p2.coeff_monomial(1)
    rhs = lambd * qs * (qs - 1) * mean_p2
    return Identity.of(
        "BT(Z, Z) = lambda q^2 (n^-2 sum (y_i^T y_j)^2 - 1/q) = lambda q (q-1) n^-2 sum P_2(y_i^T y_j)",
        lhs,
        rhs,
        assumptions="single view, columns standardised without eps (Y = Z_hat / sqrt(q)); rows of Y not unit",
        steps=(two_view, lemma),
        symbols={"B": B, "q": qs, "redundancy_weight": lambd},
        meaning={"B": "tr(S_Y^2) = n^-2 sum_ij (y_i^T y_j)^2"},
    )
