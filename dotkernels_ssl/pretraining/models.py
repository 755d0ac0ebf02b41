"""Backbones, projectors and the two-part SSL model.

- :func:`build_backbone`: torchvision ResNet-18/34/50 with the classifier removed (``fc = Identity``), the
  small-image ("CIFAR") stem option, zero-initialised last BatchNorm gamma in each residual block, any number
  of input channels; or the small :class:`ConvNet` for 28x28 grayscale images on a CPU.
- :func:`build_projector`: Linear-BN-ReLU hidden layers and a last Linear without bias, from a spec like
  ``"8192-8192-8192"``.
- :class:`SSLModel`: ``forward(x) -> (features, embeddings)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "ConvNet",
    "Projector",
    "SSLModel",
    "build_backbone",
    "build_projector",
    "parse_projector_spec",
]

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "convnet")


class ConvNet(nn.Module):
    """A small VGG-like backbone for 28x28 (or 32x32) images, fast on a few CPU cores.

    Four 3x3 conv-BN-ReLU blocks with ``widths`` channels; 2x2 max-pooling after each of the first three
    (28 -> 14 -> 7 -> 3), then global average pooling (``pool="avg"``) or the last feature map flattened
    (``pool="flatten"``: ``widths[-1] * side**2`` features, 3 x 3 x 128 = 1152 for widths ending in 128 on 28x28
    images; it keeps the spatial layout, which on small images carries much of the class information, at the
    price of a fixed input size). About 0.96 M parameters and 35 M multiply-adds per 28x28 image with the
    default widths (64, 128, 256, 256).

    Parameters
    ----------
    in_channels
        Input channels (1 for Fashion-MNIST).
    widths
        Channels of the blocks (at least one).
    pool
        ``"avg"`` or ``"flatten"``.
    image_size
        Side of the (square) input images; required by ``pool="flatten"``, which then rejects other sizes.

    Attributes
    ----------
    out_dim
        Feature dimension: ``widths[-1]``, or ``widths[-1] * side**2`` with ``pool="flatten"``.

    Examples
    --------
    >>> ConvNet(1, widths=(16, 32, 64, 128), pool="flatten", image_size=28).out_dim
    1152
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (64, 128, 256, 256),
        *,
        pool: str = "avg",
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        if in_channels < 1 or len(widths) < 1:
            raise ValueError("ConvNet needs in_channels >= 1 and at least one block")
        if pool not in ("avg", "flatten"):
            raise ValueError(f"pool must be 'avg' or 'flatten', got {pool!r}")
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.image_size: int | None = None
        if pool == "flatten":
            if image_size is None or image_size < 2 ** (len(widths) - 1):
                raise ValueError(
                    f"pool='flatten' needs image_size >= {2 ** (len(widths) - 1)} (the input side), got {image_size}"
                )
            side = int(image_size)
            for _ in range(len(widths) - 1):
                side //= 2  # MaxPool2d(2) floors
            self.image_size = int(image_size)
            self.pool: nn.Module = nn.Flatten(1)
            self.out_dim = int(c * side * side)
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
            self.out_dim = int(c)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, out_dim)`` of images ``(N, in_channels, H, W)``."""
        if self.image_size is not None and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"this ConvNet flattens {self.image_size}x{self.image_size} maps; got images of shape {tuple(x.shape)}"
            )
        return self.pool(self.features(x))


def build_backbone(
    name: str,
    *,
    small_image_stem: bool = False,
    in_channels: int = 3,
    zero_init_residual: bool = True,
) -> tuple[nn.Module, int]:
    """Build a backbone without its classifier.

    Parameters
    ----------
    name
        ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` (torchvision, randomly initialised) or ``"convnet"``.
    small_image_stem
        ResNets only: replace the 7x7 stride-2 first convolution and the max-pool with a 3x3 stride-1
        convolution and no pooling (the "CIFAR stem"), so that 32x32 inputs reach the last stage at 4x4
        instead of 1x1.
    in_channels
        Input channels (the first convolution is rebuilt when it is not 3).
    zero_init_residual
        ResNets only: zero-initialise the gamma of the last BatchNorm of each residual block, so each block
        starts as the identity.

    Returns
    -------
    backbone, feature_dim
        The module maps ``(N, in_channels, H, W)`` to ``(N, feature_dim)`` features (512 for ResNet-18/34,
        2048 for ResNet-50, 256 for the ConvNet).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    name = name.lower()
    if name == "convnet":
        net = ConvNet(in_channels=in_channels)
        return net, net.out_dim
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    import torchvision

    net = getattr(torchvision.models, name)(weights=None, zero_init_residual=zero_init_residual)
    if small_image_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if small_image_stem or in_channels != 3:
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    feature_dim = int(net.fc.in_features)
    net.fc = nn.Identity()
    return net, feature_dim


def parse_projector_spec(spec: str | Sequence[int]) -> list[int]:
    """Layer widths of a projector spec: ``"8192-8192-8192"`` -> ``[8192, 8192, 8192]``; ``""`` -> ``[]``.

    Raises
    ------
    ValueError
        For a malformed spec or a non-positive width.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            return []
        try:
            dims = [int(s) for s in text.split("-")]
        except ValueError:
            raise ValueError(f"projector spec must look like '8192-8192-8192', got {spec!r}") from None
    else:
        dims = [int(d) for d in spec]
    if any(d < 1 for d in dims):
        raise ValueError(f"projector widths must be positive, got {spec!r}")
    return dims


class Projector(nn.Sequential):
    """Linear-BN-ReLU hidden layers, then a Linear without bias (VICReg/Barlow Twins/SFRIK projector).

    Parameters
    ----------
    in_dim
        Input (backbone feature) dimension.
    spec
        Output widths of the successive Linear layers, e.g. ``"8192-8192-8192"`` (two hidden layers of 8192
        and embeddings of dimension 8192); ``""`` means no projector (identity, embeddings = features).

    Attributes
    ----------
    in_dim, out_dim
        Input and embedding dimensions.
    """

    def __init__(self, in_dim: int, spec: str | Sequence[int] = "8192-8192-8192") -> None:
        dims = [int(in_dim), *parse_projector_spec(spec)]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims[:-1]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        if len(dims) >= 2:
            layers.append(nn.Linear(dims[-2], dims[-1], bias=False))
        super().__init__(*layers)
        self.in_dim = int(in_dim)
        self.out_dim = int(dims[-1])


def build_projector(in_dim: int, spec: str | Sequence[int] = "8192-8192-8192") -> Projector:
    """Build a :class:`Projector` (see there)."""
    return Projector(in_dim, spec)


class SSLModel(nn.Module):
    """A backbone followed by a projector.

    Parameters
    ----------
    backbone
        Maps images to features ``(N, feature_dim)``.
    projector
        Maps features to embeddings ``(N, q)``.

    Notes
    -----
    ``forward(x)`` returns ``(features, embeddings)``: the features for evaluation (linear probe, kNN), the
    embeddings for the loss (the losses normalise them where they need to).
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    @property
    def embedding_dim(self) -> int | None:
        """The projector's output dimension, when it declares one."""
        out = getattr(self.projector, "out_dim", None)
        return int(out) if out is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(features, embeddings)``."""
        features = self.backbone(x)
        return features, self.projector(features)
