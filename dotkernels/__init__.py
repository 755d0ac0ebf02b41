"""dotkernels: rotation-invariant (dot-product) kernels on the hypersphere.

Gegenbauer machinery (:mod:`dotkernels.gegenbauer`), quadrature for the projected law
(:mod:`dotkernels.quadrature`), kernel families with closed-form spectra (:mod:`dotkernels.kernels`), MMD
estimators and mean embeddings (:mod:`dotkernels.mmd`) and uniformity tests (:mod:`dotkernels.uniformity`).
"""

from .gegenbauer import (
    harmonic_dimension,
    legendre,
    legendre_all,
    legendre_series,
    legendre_series_derivative,
    legendre_to_monomial,
    log_harmonic_dimension,
    monomial_to_legendre,
)
from .kernels import (
    ArcCosineKernel,
    BandLimitedKernel,
    DistanceKernel,
    DotProductKernel,
    ExponentialKernel,
    GaussianKernel,
    GegenbauerKernel,
    HeatKernel,
    InverseMultiquadricKernel,
    LegendreSeriesKernel,
    MonomialKernel,
    PoissonKernel,
    PolynomialKernel,
    ProfileKernel,
    ScaledKernel,
    SFRIKKernel,
    SpectralKernel,
    SpectrumAccuracyWarning,
    SumKernel,
    TruncatedKernel,
    parse_kernel,
)
from .nulls import WeightedChiSquare, monte_carlo_pvalue
from .quadrature import projected_density, projected_quadrature
from .special import log_gamma_ratio, log_iv

__version__ = "0.1.0"

__all__ = [
    "ArcCosineKernel",
    "BandLimitedKernel",
    "DistanceKernel",
    "DotProductKernel",
    "ExponentialKernel",
    "GaussianKernel",
    "GegenbauerKernel",
    "HeatKernel",
    "InverseMultiquadricKernel",
    "LegendreSeriesKernel",
    "MonomialKernel",
    "PoissonKernel",
    "PolynomialKernel",
    "ProfileKernel",
    "SFRIKKernel",
    "ScaledKernel",
    "SpectralKernel",
    "SpectrumAccuracyWarning",
    "SumKernel",
    "TruncatedKernel",
    "WeightedChiSquare",
    "harmonic_dimension",
    "legendre",
    "legendre_all",
    "legendre_series",
    "legendre_series_derivative",
    "legendre_to_monomial",
    "log_gamma_ratio",
    "log_harmonic_dimension",
    "log_iv",
    "monomial_to_legendre",
    "monte_carlo_pvalue",
    "parse_kernel",
    "projected_density",
    "projected_quadrature",
]
