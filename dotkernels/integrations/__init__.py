"""Frontends for kernel-method libraries: any dotkernels kernel as a scikit-learn or a GPyTorch kernel.

The frontends are imported by name, so that ``import dotkernels`` never needs these libraries
(``pip install "dotkernels[gp]"`` installs them):

- :mod:`dotkernels.integrations.sklearn`: :class:`~dotkernels.integrations.sklearn.SklearnKernel`, a
  :class:`sklearn.gaussian_process.kernels.Kernel` for ``GaussianProcessRegressor`` (hyperparameters learnt by
  marginal likelihood with their exact gradient), ``KernelRidge``, ``SVC`` and pipelines.
- :mod:`dotkernels.integrations.gpytorch`: :class:`~dotkernels.integrations.gpytorch.GPyTorchKernel`, a
  :class:`gpytorch.kernels.Kernel` with learnable raw parameters, constraints, priors and batch shapes, for exact
  and variational GPs.

Both learn the hyperparameters a kernel's family declares (``kernel.hyperparameters``: ``gamma``, ``kappa``,
``time``, ``lengthscale``, ...), which the kernels accept as torch scalars so that gradients reach them.
"""

__all__: list[str] = []
