"""dotkernels: rotation-invariant (dot-product) kernels on the hypersphere.

Gegenbauer machinery (:mod:`dotkernels.gegenbauer`), quadrature for the projected law
(:mod:`dotkernels.quadrature`), kernel families with closed-form spectra (:mod:`dotkernels.kernels`), MMD
estimators and mean embeddings (:mod:`dotkernels.mmd`), null laws (:mod:`dotkernels.nulls`), uniformity tests
(:mod:`dotkernels.uniformity`), samplers (:mod:`dotkernels.sampling`), the classic SSL regularisers and their kernel
forms (:mod:`dotkernels.regularizers`) and sympy derivations (:mod:`dotkernels.symbolic`, imported on demand).
"""

from . import regularizers
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
from .mmd import (
    mean_embedding,
    mmd2,
    mmd2_uniform,
    mmd2_vmf,
    uniform_mean_embedding,
    vmf_mean_embedding,
    vmf_mean_embedding_norm2,
)
from .nulls import WeightedChiSquare, monte_carlo_pvalue
from .quadrature import projected_density, projected_quadrature
from .sampling import sample_uniform, sample_vmf, sample_watson
from .special import log_gamma_ratio, log_iv
from .uniformity import (
    MonteCarloNull,
    UniformityTestResult,
    uniformity_kernel,
    uniformity_statistic,
    uniformity_test,
)

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
    "MonteCarloNull",
    "PoissonKernel",
    "PolynomialKernel",
    "ProfileKernel",
    "SFRIKKernel",
    "ScaledKernel",
    "SpectralKernel",
    "SpectrumAccuracyWarning",
    "SumKernel",
    "TruncatedKernel",
    "UniformityTestResult",
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
    "mean_embedding",
    "mmd2",
    "mmd2_uniform",
    "mmd2_vmf",
    "monomial_to_legendre",
    "monte_carlo_pvalue",
    "parse_kernel",
    "projected_density",
    "projected_quadrature",
    "regularizers",
    "sample_uniform",
    "sample_vmf",
    "sample_watson",
    "uniform_mean_embedding",
    "uniformity_kernel",
    "uniformity_statistic",
    "uniformity_test",
    "vmf_mean_embedding",
    "vmf_mean_embedding_norm2",
]
