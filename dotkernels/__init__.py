"""dotkernels: rotation-invariant (dot-product) kernels on the hypersphere."""

__version__ = "0.1.0"
__all__: list[str] = []
