"""dotkernels_ssl: PyTorch self-supervised learning losses and training built on dotkernels."""

__all__: list[str] = []
