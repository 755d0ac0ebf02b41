r"""scikit-learn frontend: any dotkernels kernel as a :class:`sklearn.gaussian_process.kernels.Kernel`.

:class:`SklearnKernel` wraps a kernel :math:`k(x, y) = \varphi(\langle x, y\rangle)` on :math:`S^{q-1}` for
``GaussianProcessRegressor`` (its learnable parameters are scikit-learn hyperparameters, with bounds and the exact
gradient of the Gram matrix), and as a callable kernel for ``KernelRidge``, ``SVC`` and pipelines
(``sklearn.preprocessing.Normalizer()`` puts the rows on the sphere first). Compose it with scikit-learn's own
kernels: ``ConstantKernel() * SklearnKernel(...) + WhiteKernel()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from ..kernels import DotProductKernel
from ._common import check_kernel, default_bounds, gram_and_log_gradient, learnable_names, parameters
from ._common import unit_rows as _unit_rows
from ._common import with_parameters as _with_parameters

__all__ = ["SklearnKernel"]


def _check_bounds(name: str, bounds: Any) -> Any:
    if isinstance(bounds, str):
        if bounds != "fixed":
            raise ValueError(f"SklearnKernel: param_bounds[{name!r}] must be 'fixed' or (low, high), got {bounds!r}")
        return bounds
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"SklearnKernel: param_bounds[{name!r}] must be 'fixed' or a pair (low, high), got {bounds!r}"
        ) from exc
    if not (0.0 < low < high < np.inf):
        raise ValueError(f"SklearnKernel: param_bounds[{name!r}] must satisfy 0 < low < high < inf, got {bounds!r}")
    return (low, high)


class SklearnKernel(Kernel):
    r"""A dotkernels kernel as a scikit-learn kernel, with learnable hyperparameters and their gradient.

    The kernel :math:`k(x, y) = \varphi(\langle x, y\rangle)` of points on the sphere :math:`S^{q-1}` (rows of X,
    unit vectors in R^q; other rows raise ValueError). Each hyperparameter the kernel's family declares
    (``kernel.hyperparameters``: ``gamma``, ``kappa``, ``time``, ``lengthscale``, the offset ``c`` of the polynomial
    kernel, ...) is a scikit-learn :class:`~sklearn.gaussian_process.kernels.Hyperparameter` of the same name,
    bounded to its family's default range on the sphere (Notes) unless ``param_bounds`` gives other bounds or
    ``"fixed"``, and readable and settable as an attribute (``k.lengthscale``), as in scikit-learn's kernels. As in
    scikit-learn, ``theta`` is the log of the free hyperparameters, so ``GaussianProcessRegressor`` optimises the
    log marginal likelihood over ``log p`` within ``bounds``.

    ``__call__(X, eval_gradient=True)`` returns the derivative of the Gram matrix with respect to ``theta``,
    :math:`\partial K / \partial \log p = p\, \partial_p \varphi(\langle x_i, x_j\rangle)`, computed by torch
    autograd through the kernel built with ``p`` as a torch scalar (exact to the rounding of the profile's
    derivative; torch is needed for it). Only this first derivative is needed: scikit-learn's optimiser (L-BFGS-B)
    uses the log marginal likelihood and its gradient, nothing of higher order, so the Matérn kernel, whose
    derivatives in the lengthscale are exact to first order only, is fully served. Signal variance and noise are
    scikit-learn's :class:`~sklearn.gaussian_process.kernels.ConstantKernel` and
    :class:`~sklearn.gaussian_process.kernels.WhiteKernel`.

    Parameters
    ----------
    kernel : DotProductKernel
        The kernel (its current parameter values are the hyperparameters' values), e.g.
        ``GaussianKernel(gamma=1.0)`` or ``HeatKernel(time=0.1)``.
    param_bounds : mapping, optional
        Hyperparameter name -> ``(low, high)`` bounds (0 < low < high) or ``"fixed"``, kept as given. Default:
        every hyperparameter free within its family's default range (Notes).

    Attributes
    ----------
    hyperparameters : list of Hyperparameter
        One entry per learnable parameter, in the kernel's constructor order (``"fixed"`` ones marked fixed).
    theta : ndarray
        The log of the values of the free hyperparameters (settable).
    bounds : ndarray
        The log of their bounds, shape (n_free, 2).

    See Also
    --------
    dotkernels.integrations.gpytorch.GPyTorchKernel : The same kernels as GPyTorch modules.
    sklearn.gaussian_process.GaussianProcessRegressor : The regressor that learns the hyperparameters.
    dotkernels.DotProductKernel.gram : The Gram matrix this kernel returns.

    Notes
    -----
    The kernel is stationary on the sphere (a function of :math:`\|x - y\|^2 = 2 - 2\langle x, y\rangle`), so
    :meth:`is_stationary` is True and :meth:`diag` is the constant :math:`\varphi(1)`. ``get_params(deep=True)``
    lists the hyperparameters by name beside ``kernel`` and ``param_bounds``, and ``set_params`` accepts them, so
    grid searches reach them (``"kernel__gamma"`` in a ``KernelRidge``). ``clone`` copies the wrapped kernel.

    Default bounds. The sphere has geodesic diameter :math:`\pi` (chordal diameter 2), so lengthscales far below
    a hundredth of a radian or far above the diameter describe no usable model; the default ranges below keep the
    hyperparameters where the kernel is meaningful and computed to its stated accuracy, so that the random starts
    of ``GaussianProcessRegressor(n_restarts_optimizer=...)``, drawn uniformly in ``theta`` within the bounds, never
    reach a profile that raises :class:`~dotkernels.SpectrumAccuracyWarning`. A value outside its bounds is kept
    (scikit-learn's L-BFGS-B starts from the nearest bound); ``param_bounds`` overrides any of them.

    - ``MaternKernel``, ``lengthscale``: (0.01, 100), a hundredth of a radian to 100 radians. Within, the
      profile's bound (:meth:`~dotkernels.MaternKernel.profile_error`) is at most 1e-12 of :math:`\varphi(1)` and
      nothing warns; below, the profile soon warns (on :math:`S^2` its bound is 1.6e-9 at nu = 5/2, lengthscale
      1e-3, and 7e-6 at nu = 1/2, lengthscale 1e-4).
    - ``MaternKernel(nu=inf)``, ``lengthscale``: (0.01, 10). Beyond 10 the heat kernel is constant to float64 on
      every sphere (:math:`a_1 / a_0 = q\, e^{-50 (q-1)}`).
    - ``HeatKernel``, ``time``: (1e-3, 50), time :math:`= \ell^2/2` for :math:`\ell` in (0.045, 10). The
      unnormalised heat kernel's :math:`\varphi(1)` grows without bound as time -> 0; from 1e-3 on,
      :math:`\varphi(1) \le (1 + x)(1 - x)^{1-q}` with :math:`x = e^{-\text{time}\,(q-1)}`, below
      :math:`2 e^{(\ln 2)^2/\text{time}} < 10^{209}` at every q.
    - ``GaussianKernel``, ``gamma``: (5e-5, 5e3), :math:`\gamma = 1/(2\ell^2)` for :math:`\ell` in (0.01, 100).
    - ``ExponentialKernel``, ``kappa``: (1e-4, 600), :math:`\kappa = 1/\ell^2` for :math:`\ell \le 100`, and at
      most 600 so that :math:`\varphi(1) = e^\kappa` leaves a factor above 1e47 of float64 for amplitudes and sums.
    - ``PolynomialKernel``, ``c``: (1e-3, 1e3), the offset relative to :math:`|t| \le 1`, from nearly the monomial
      :math:`t^p` to nearly :math:`c^p (1 + p t / c)`.
    - Any other hyperparameter (the factor ``c`` of ``c * kernel``, ...): scikit-learn's (1e-5, 1e5).

    References
    ----------
    .. [1] C. E. Rasmussen and C. K. I. Williams, *Gaussian Processes for Machine Learning*, MIT Press, 2006,
       ch. 5 (marginal likelihood and its gradient).
    .. [2] V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Matérn Gaussian processes on Riemannian
       manifolds", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
    >>> from dotkernels import GaussianKernel, sample_uniform
    >>> from dotkernels.integrations.sklearn import SklearnKernel
    >>> X = sample_uniform(60, q=3, rng=0)
    >>> y = X[:, 2] + 0.05 * np.random.default_rng(1).standard_normal(60)
    >>> k = ConstantKernel() * SklearnKernel(GaussianKernel(gamma=1.0)) + WhiteKernel(0.01)
    >>> gpr = GaussianProcessRegressor(k, random_state=0).fit(X, y)
    >>> sorted(gpr.kernel_.get_params())[:3]
    ['k1', 'k1__k1', 'k1__k1__constant_value']
    >>> SklearnKernel(GaussianKernel(gamma=2.0)).theta.round(6).tolist()
    [0.693147]
    """

    def __init__(self, kernel: DotProductKernel, param_bounds: Mapping[str, Any] | None = None) -> None:
        self.kernel = kernel
        self.param_bounds = param_bounds
        self._specs()  # validates both arguments without changing them (clone checks they are kept as given)

    # ---- hyperparameters ----------------------------------------------------------------------------------------
    def _specs(self) -> list[tuple[str, Any]]:
        kernel = check_kernel(self.kernel, "SklearnKernel")
        given = {} if self.param_bounds is None else self.param_bounds
        specs = []
        values = parameters(kernel)
        for name in learnable_names(kernel, given, "SklearnKernel", "param_bounds"):
            bounds = _check_bounds(name, given[name] if name in given else default_bounds(kernel, name))
            if not isinstance(bounds, str) and not values[name] > 0:
                raise ValueError(
                    f"SklearnKernel: {name} = {values[name]} cannot be learnt on a log scale (it must be > 0); pass "
                    f"param_bounds={{{name!r}: 'fixed'}} to keep it"
                )
            specs.append((name, bounds))
        return specs

    @property
    def hyperparameters(self) -> list[Hyperparameter]:
        """The hyperparameter specifications, one per learnable parameter (fixed ones marked so)."""
        return [Hyperparameter(name, "numeric", bounds) for name, bounds in self._specs()]

    def _free(self) -> list[str]:
        return [name for name, bounds in self._specs() if not isinstance(bounds, str)]

    @property
    def theta(self) -> np.ndarray:
        """The log of the free hyperparameters' values (settable, as scikit-learn's optimisers expect)."""
        values = parameters(self.kernel)
        return np.log(np.array([float(values[name]) for name in self._free()], dtype=np.float64))

    @theta.setter
    def theta(self, theta: Any) -> None:
        free = self._free()
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        if theta.shape != (len(free),):
            raise ValueError(f"theta must have {len(free)} entries (one per free hyperparameter), got {theta.size}")
        self.kernel = _with_parameters(self.kernel, {name: float(np.exp(v)) for name, v in zip(free, theta)})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments and, with ``deep``, the hyperparameters' values by name.

        Parameters
        ----------
        deep : bool, default True
            Also list each hyperparameter (``gamma``, ...) with its current value.

        Returns
        -------
        dict
            ``{"kernel": ..., "param_bounds": ...}`` plus the hyperparameters when ``deep``.

        See Also
        --------
        set_params : Sets the same names.

        Examples
        --------
        >>> from dotkernels import HeatKernel
        >>> SklearnKernel(HeatKernel(time=0.5)).get_params()["time"]
        0.5
        """
        params = {"kernel": self.kernel, "param_bounds": self.param_bounds}
        if deep:
            values = parameters(self.kernel)
            params.update({name: values[name] for name, _ in self._specs()})
        return params

    def set_params(self, **params: Any) -> SklearnKernel:
        """Set ``kernel``, ``param_bounds`` or hyperparameters by name (``set_params(gamma=2.0)``).

        Parameters
        ----------
        **params
            New values; a hyperparameter's name rebuilds the kernel with that value.

        Returns
        -------
        SklearnKernel
            ``self``.

        See Also
        --------
        get_params : The names accepted.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> SklearnKernel(GaussianKernel(gamma=1.0)).set_params(gamma=3.0).kernel
        GaussianKernel(gamma=3.0)
        """
        for key in ("kernel", "param_bounds"):
            if key in params:
                setattr(self, key, params.pop(key))
        names = {name for name, _ in self._specs()}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(
                f"Invalid parameter(s) {unknown} for {self!r}: valid ones are kernel, param_bounds and "
                f"{sorted(names) or 'no hyperparameter'}"
            )
        self.kernel = _with_parameters(self.kernel, params)
        return self

    # ---- evaluation ---------------------------------------------------------------------------------------------
    def __call__(self, X: Any, Y: Any = None, eval_gradient: bool = False) -> Any:
        """The Gram matrix k(X, Y) of unit rows, and with ``eval_gradient`` its derivative with respect to theta."""
        X = _unit_rows(X, "X", "SklearnKernel")
        if eval_gradient:
            if Y is not None:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            return gram_and_log_gradient(self.kernel, self._free(), X)
        Y = None if Y is None else _unit_rows(Y, "Y", "SklearnKernel")
        if Y is not None and Y.shape[1] != X.shape[1]:
            raise ValueError(f"X and Y must have the same number of columns, got {X.shape[1]} and {Y.shape[1]}")
        return np.asarray(self.kernel.gram(X, Y), dtype=np.float64)

    def diag(self, X: Any) -> np.ndarray:
        r"""The diagonal of k(X, X), the constant :math:`\varphi(1)` of the sphere :math:`S^{q-1}` of X's rows.

        Parameters
        ----------
        X : array_like, shape (n, q)
            Unit vectors in R^q.

        Returns
        -------
        ndarray, shape (n,)
            :math:`\varphi(1)` repeated n times.

        See Also
        --------
        dotkernels.DotProductKernel.phi_at_one : The value used.

        Examples
        --------
        >>> import numpy as np
        >>> from dotkernels import ExponentialKernel
        >>> SklearnKernel(ExponentialKernel(kappa=1.0)).diag(np.eye(3)).round(6).tolist()
        [2.718282, 2.718282, 2.718282]
        """
        X = _unit_rows(X, "X", "SklearnKernel")
        return np.full(X.shape[0], self.kernel.phi_at_one(q=X.shape[1]), dtype=np.float64)

    def __getattr__(self, name: str) -> Any:
        # a hyperparameter by name (``k.lengthscale``), as scikit-learn's kernels expose theirs
        kernel = self.__dict__.get("kernel")
        if isinstance(kernel, DotProductKernel) and name in kernel.hyperparameters:
            return parameters(kernel)[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        kernel = self.__dict__.get("kernel")
        if name not in ("kernel", "param_bounds") and isinstance(kernel, DotProductKernel):
            if name in kernel.hyperparameters:  # ``k.lengthscale = 0.5``: the kernel rebuilt with that value
                self.kernel = _with_parameters(kernel, {name: value})
                return
        super().__setattr__(name, value)

    def is_stationary(self) -> bool:
        """True: on the sphere the kernel depends on x - y only, through the distance ``||x - y||``.

        Returns
        -------
        bool
            Always True.

        See Also
        --------
        diag : Constant, as for every stationary kernel.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> SklearnKernel(GaussianKernel()).is_stationary()
        True
        """
        return True

    def __eq__(self, other: object) -> bool:
        """The same kernel with the same hyperparameter bounds (``param_bounds`` normalised: arrays and tuples alike).

        Parameters
        ----------
        other : object
            Any object.

        Returns
        -------
        bool
            True for a :class:`SklearnKernel` of an equal kernel whose hyperparameters have the same bounds.

        See Also
        --------
        get_params : The parameters compared.

        Examples
        --------
        >>> import numpy as np
        >>> from dotkernels import HeatKernel
        >>> a = SklearnKernel(HeatKernel(time=0.1), param_bounds={"time": (0.01, 1.0)})
        >>> a == SklearnKernel(HeatKernel(time=0.1), param_bounds={"time": np.array([0.01, 1.0])})
        True
        """
        if type(self) is not type(other):
            return False
        return self.kernel == other.kernel and self._specs() == other._specs()

    __hash__ = None  # mutable through theta and set_params, as scikit-learn's kernels

    def __repr__(self) -> str:
        bounds = "" if self.param_bounds is None else f", param_bounds={self.param_bounds!r}"
        return f"SklearnKernel({self.kernel!r}{bounds})"
