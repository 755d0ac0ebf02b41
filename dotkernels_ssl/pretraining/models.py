"""Backbones, projectors and the two-part SSL model.

- :func:`build_backbone`: torchvision ResNet-18/34/50 with the classifier removed (``fc = Identity``), the
  small-image ("CIFAR") stem option, zero-initialised last BatchNorm gamma in each residual block, any number
  of input channels; or the small :class:`ConvNet` for 28x28 grayscale images on a CPU.
- :func:`build_projector`: Linear-BN-ReLU hidden layers and a last Linear without bias, from a spec like
  ``"8192-8192-8192"``.
- :class:`SSLModel`: ``forward(x) -> (features, embeddings)``; :func:`build_model` builds it from a run's
  configuration; :class:`ViewsForward` embeds a list of augmented views.
- :class:`GlobalBatchNorm`: BatchNorm over the global batch of every process, on any device (kept by hand
  because ``torch.nn.SyncBatchNorm`` runs on CUDA only); :func:`sync_batchnorm` picks one of the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import distributed as D
from .config import Config, parse_projector_spec
from .presets import BACKBONES

__all__ = [
    "ConvNet",
    "GlobalBatchNorm",
    "Projector",
    "SSLModel",
    "ViewsForward",
    "build_backbone",
    "build_model",
    "build_projector",
    "convert_global_batchnorm",
    "sync_batchnorm",
]

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


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


def build_model(cfg: Config, in_channels: int, image_size: int | None = None) -> SSLModel:
    """The :class:`SSLModel` of a configuration (backbone + projector), on the CPU.

    ``image_size`` (the side of the views) is needed by ``model.convnet_pool = "flatten"`` only.
    """
    m = cfg.model
    if m.backbone == "convnet":
        if m.convnet_pool == "flatten" and image_size is None:
            raise ValueError("model.convnet_pool = 'flatten' needs the image size")
        backbone: nn.Module = ConvNet(
            in_channels=in_channels, widths=tuple(m.convnet_widths), pool=m.convnet_pool, image_size=image_size
        )
        dim = int(backbone.out_dim)  # type: ignore[arg-type]
    else:
        backbone, dim = build_backbone(
            m.backbone,
            small_image_stem=m.small_image_stem,
            in_channels=in_channels,
            zero_init_residual=m.zero_init_residual,
        )
    return SSLModel(backbone, build_projector(int(dim), m.projector))


class ViewsForward(nn.Module):
    """Embeddings of a list of views: one forward per view (the papers' BN statistics) or one per image size.

    Parameters
    ----------
    model
        An :class:`SSLModel` (its embeddings are used).
    concat
        Forward the views of equal size in one call (one BatchNorm statistic over them).
    """

    def __init__(self, model: nn.Module, concat: bool) -> None:
        super().__init__()
        self.model = model
        self.concat = concat

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """The embedding of each view, in order."""
        if not self.concat:
            return [self.model(v)[1] for v in views]
        out: list[torch.Tensor | None] = [None] * len(views)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[1:]), []).append(i)
        for idx in groups.values():
            z = self.model(torch.cat([views[i] for i in idx]))[1]
            for i, part in zip(idx, z.split(views[idx[0]].shape[0])):
                out[i] = part
        return out  # type: ignore[return-value]


class GlobalBatchNorm(nn.Module):
    """BatchNorm whose training statistics are those of the global batch over all processes, on any device.

    Kept by hand because ``torch.nn.SyncBatchNorm`` runs on CUDA only: this module does the same on the CPU
    (gloo) with the gradient-carrying :func:`dotkernels_ssl.losses.distributed.all_reduce_sum`. The mean and the
    (biased) variance used for normalisation are computed over the concatenation of every rank's batch (two
    passes: the sum, then the sum of squared deviations), and the running statistics are updated with the
    unbiased variance, exactly as a BatchNorm over the whole batch in one process. Outside training, or in a
    single process, it is a plain BatchNorm (:func:`torch.nn.functional.batch_norm`). Its parameters and buffers
    have the names of ``nn.BatchNorm2d``'s, so state dicts are interchangeable; :func:`convert_global_batchnorm`
    converts a model.

    Examples
    --------
    >>> bn = GlobalBatchNorm(3)
    >>> bn(torch.randn(8, 3, 4, 4)).shape
    torch.Size([8, 3, 4, 4])
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalise ``input`` ``(N, C, ...)`` over every dimension but the channels."""
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")
        if self.training and D.is_distributed():
            return self._global_forward(input)
        use_batch = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias, use_batch, momentum, self.eps
        )

    def _global_forward(self, input: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float()
        count = D.all_reduce_sum(torch.tensor([float(x.numel() // x.shape[1])], device=x.device))
        mean = D.all_reduce_sum(x.sum(dim=dims)) / count
        xc = x - mean.view(shape)
        var = D.all_reduce_sum(xc.pow(2).sum(dim=dims)) / count
        out = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)  # type: ignore[union-attr]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = float(count)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)  # type: ignore[union-attr]
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)  # type: ignore[union-attr]
        return out.to(input.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d/3d of ``module`` by a :class:`GlobalBatchNorm` (same parameters and buffers)."""
    if isinstance(module, _BATCHNORMS):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_global_batchnorm(child))
    return module


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm over the global batch: ``torch.nn.SyncBatchNorm`` on GPUs, :class:`GlobalBatchNorm` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return convert_global_batchnorm(model)
