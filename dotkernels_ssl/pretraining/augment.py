"""Batched, per-sample random image augmentations (kornia) in the recipes of the SSL papers.

The augmentations run on whatever device the batch is on (GPU or CPU), on a whole batch at once, with random
parameters drawn independently for every image. The random draws use torch's global RNG (kornia samples its
parameters on the CPU), so ``torch.manual_seed`` makes a run reproducible.

Recipes (docs/background.md; every view: RandomResizedCrop with scale (0.08, 1) and ratio (3/4, 4/3) to the output size,
horizontal flip with probability 0.5, then the colour operations in this order, then normalisation):

========  ===========================  =====  =========  ===========  ==============
recipe    colour jitter (b, c, s, h)   p      grayscale  blur p       solarize p
========  ===========================  =====  =========  ===========  ==============
vicreg    (0.4, 0.4, 0.2, 0.1)         0.8    0.2        1.0 / 0.1    0.0 / 0.2
simclr    (0.8, 0.8, 0.8, 0.2)         0.8    0.2        0.5 / 0.5    0 / 0
auh       (0.4, 0.4, 0.4, 0.4)         1.0    0.2        none         none
small     (0.4, 0.4, 0.2, 0.1)         0.8    0.2        none         0.0 / 0.2
========  ===========================  =====  =========  ===========  ==============

("a / b" is view 1 / view 2.) The Gaussian blur draws sigma uniformly in (0.1, 2.0) pixels with a kernel of
about a tenth of the output side (odd, at least 3), as in BYOL/VICReg; solarisation inverts the pixels above
0.5. "small" is for 28-32 px images (Fashion-MNIST, CIFAR), where blurring destroys the little detail there
is.

Grayscale (1-channel) inputs stay 1-channel: brightness and contrast apply as for colour images, and
saturation, hue and random grayscale are skipped. This is exact, not an approximation: on an image whose three
channels are equal, saturation, hue and grayscale conversion are the identity, so repeating the channel three
times would give three equal channels carrying exactly what the 1-channel pipeline computes, at three times
the cost (and a backbone with three input channels). Only the random-number stream differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import kornia.augmentation as K
import torch
from torch import nn

from .config import Config
from .data import normalize_images

__all__ = [
    "RECIPES",
    "MirrorViews",
    "MultiCropAugment",
    "TwoViewAugment",
    "ViewAugment",
    "ViewRecipe",
    "build_augment",
    "get_recipe",
]


@dataclass(frozen=True)
class ViewRecipe:
    """The augmentation parameters of one view.

    Attributes
    ----------
    crop_scale, crop_ratio
        RandomResizedCrop area fraction and aspect-ratio ranges.
    flip_p
        Probability of a horizontal flip.
    jitter
        Colour jitter strengths (brightness, contrast, saturation, hue), torchvision's convention.
    jitter_p
        Probability of applying the colour jitter.
    gray_p
        Probability of converting to grayscale.
    blur_p
        Probability of a Gaussian blur (0 disables it).
    blur_sigma
        Range of the blur's standard deviation, in pixels.
    solarize_p
        Probability of solarisation (threshold 0.5).
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0


_VICREG = ViewRecipe()
RECIPES: dict[str, tuple[ViewRecipe, ViewRecipe]] = {
    "vicreg": (replace(_VICREG, blur_p=1.0), replace(_VICREG, blur_p=0.1, solarize_p=0.2)),
    "simclr": (
        replace(_VICREG, jitter=(0.8, 0.8, 0.8, 0.2), blur_p=0.5),
        replace(_VICREG, jitter=(0.8, 0.8, 0.8, 0.2), blur_p=0.5),
    ),
    "auh": (
        replace(_VICREG, jitter=(0.4, 0.4, 0.4, 0.4), jitter_p=1.0),
        replace(_VICREG, jitter=(0.4, 0.4, 0.4, 0.4), jitter_p=1.0),
    ),
    "small": (_VICREG, replace(_VICREG, solarize_p=0.2)),
}
"""The named recipes: a (view 1, view 2) pair of :class:`ViewRecipe` each."""


def get_recipe(
    recipe: str | Sequence[ViewRecipe], crop_scale: tuple[float, float] | None = None
) -> tuple[ViewRecipe, ViewRecipe]:
    """Resolve a recipe name (or a pair of :class:`ViewRecipe`), optionally overriding the crop scale.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"unknown augmentation recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
        pair = RECIPES[recipe]
    else:
        pair = tuple(recipe)
        if len(pair) != 2 or not all(isinstance(r, ViewRecipe) for r in pair):
            raise TypeError("recipe must be a name or a pair of ViewRecipe")
    if crop_scale is not None:
        pair = tuple(replace(r, crop_scale=tuple(crop_scale)) for r in pair)
    return pair[0], pair[1]


def _blur_kernel(size: int) -> int:
    k = max(3, int(0.1 * size))
    return k if k % 2 else k + 1


def _to_unit_float(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point in [0, 1], got {x.dtype}")
    return x.float()


class ViewAugment(nn.Module):
    """One view: random crop, flip, colour operations and normalisation of a batch, per-sample parameters.

    Parameters
    ----------
    recipe
        The view's :class:`ViewRecipe`.
    size
        Output side (square crops).
    mean, std
        Per-channel normalisation (pixel values in [0, 1]); one value per input channel, or one value for all.

    Notes
    -----
    ``forward`` takes a uint8 batch (0..255) or a float batch in [0, 1], ``(N, C, H, W)`` with C = 1 or 3, on
    any device, and returns a float32 batch ``(N, C, size, size)`` on that device.
    """

    def __init__(self, recipe: ViewRecipe, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.recipe = recipe
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        self.pipelines = nn.ModuleDict({str(c): self._build(c) for c in (1, 3)})

    def _build(self, channels: int) -> nn.Sequential:
        r = self.recipe
        ops: list[nn.Module] = [
            K.RandomResizedCrop((self.size, self.size), scale=r.crop_scale, ratio=r.crop_ratio, p=1.0),
            K.RandomHorizontalFlip(p=r.flip_p),
        ]
        b, c, s, h = r.jitter
        if channels == 1:
            s, h = 0.0, 0.0
        if r.jitter_p > 0 and any(v > 0 for v in (b, c, s, h)):
            ops.append(K.ColorJitter(b, c, s, h, p=r.jitter_p))
        if r.gray_p > 0 and channels == 3:
            ops.append(K.RandomGrayscale(p=r.gray_p))
        if r.blur_p > 0:
            ops.append(K.RandomGaussianBlur(_blur_kernel(self.size), r.blur_sigma, p=r.blur_p))
        if r.solarize_p > 0:
            ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=r.solarize_p))
        return nn.Sequential(*ops)

    def _stats(self, channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.mean, self.std
        if len(mean) == 1:
            mean = mean * channels
        if len(std) == 1:
            std = std * channels
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std have {len(self.mean)}/{len(self.std)} values for {channels} channels")
        m = torch.tensor(mean, device=device).view(1, channels, 1, 1)
        s = torch.tensor(std, device=device).view(1, channels, 1, 1)
        return m, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Augment a batch (see the class notes)."""
        x = _to_unit_float(x)
        channels = x.shape[1]
        if channels not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got {channels}")
        x = self.pipelines[str(channels)](x).clamp_(0.0, 1.0)
        m, s = self._stats(channels, x.device)
        return (x - m) / s

    def extra_repr(self) -> str:
        return f"size={self.size}, recipe={self.recipe}"


class TwoViewAugment(nn.Module):
    """Two differently augmented views of each image of a batch (asymmetric recipes per view).

    Parameters
    ----------
    recipe
        A name of :data:`RECIPES` (``"vicreg"``, ``"simclr"``, ``"auh"``, ``"small"``) or a pair of
        :class:`ViewRecipe`.
    size
        Output side.
    mean, std
        Per-channel normalisation statistics of the data set.
    crop_scale
        Overrides the recipe's RandomResizedCrop scale range.

    Examples
    --------
    >>> aug = TwoViewAugment("small", 28, mean=(0.286,), std=(0.353,))
    >>> v1, v2 = aug(torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8))
    >>> v1.shape, v1.dtype
    (torch.Size([4, 1, 28, 28]), torch.float32)
    """

    def __init__(
        self,
        recipe: str | Sequence[ViewRecipe],
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        crop_scale: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        r1, r2 = get_recipe(recipe, crop_scale)
        self.view1 = ViewAugment(r1, size, mean, std)
        self.view2 = ViewAugment(r2, size, mean, std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(view1, view2)``, float32 ``(N, C, size, size)`` on ``x``'s device."""
        return self.view1(x), self.view2(x)


class MultiCropAugment(nn.Module):
    """``n_global`` large views and ``n_local`` small views of each image (SwAV/DINO multi-crop).

    Parameters
    ----------
    recipe
        As for :class:`TwoViewAugment`. Global view ``i`` uses the recipe's view ``i % 2 + 1``; local views
        use view 2's colour operations (for "vicreg": light blur, some solarisation).
    size
        Side of the global views.
    mean, std
        Normalisation statistics.
    n_global, n_local
        Numbers of global and local views.
    local_size
        Side of the local views (default ``size * 96 // 224``, at least 8).
    local_scale, global_scale
        RandomResizedCrop area ranges of the local and global views: (0.05, 0.14) and (0.14, 1.0) by default,
        the split of SwAV; pass ``global_scale=(0.08, 1.0)`` for the two-view recipes' range.

    Notes
    -----
    ``forward`` returns a list: the ``n_global`` global views first, then the ``n_local`` local views.
    """

    def __init__(
        self,
        recipe: str | Sequence[ViewRecipe],
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        n_global: int = 2,
        n_local: int = 6,
        local_size: int | None = None,
        local_scale: tuple[float, float] = (0.05, 0.14),
        global_scale: tuple[float, float] = (0.14, 1.0),
    ) -> None:
        super().__init__()
        if n_global < 1 or n_local < 0:
            raise ValueError(f"need n_global >= 1 and n_local >= 0, got {n_global} and {n_local}")
        pair = get_recipe(recipe)
        if local_size is None:
            local_size = max(8, math.floor(size * 96 / 224))
        self.global_views = nn.ModuleList(
            ViewAugment(replace(pair[i % 2], crop_scale=tuple(global_scale)), size, mean, std) for i in range(n_global)
        )
        self.local_views = nn.ModuleList(
            ViewAugment(replace(pair[1], crop_scale=tuple(local_scale)), local_size, mean, std) for _ in range(n_local)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the global views, then the local views."""
        return [v(x) for v in self.global_views] + [v(x) for v in self.local_views]


class MirrorViews(nn.Module):
    """Deterministic "augmentation" (recipe ``"none"``): view 1 is the image, view 2 its horizontal mirror.

    Normalised with ``mean``/``std`` and resized to ``size``; no randomness, so runs that split the same batch
    differently (one process or several) see exactly the same views.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.size = int(size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``[x, flip(x)]`` normalised, float32."""
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        x = normalize_images(x, self.mean, self.std)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return [x, x.flip(-1)]


def build_augment(cfg: Config, mean: Sequence[float], std: Sequence[float], image_size: int) -> nn.Module:
    """The batched augmentation of ``cfg.data`` (a module mapping a uint8 batch to a list of views)."""
    d = cfg.data
    size = int(d.crop_size or image_size)
    if d.recipe == "none":
        return MirrorViews(size, mean, std)
    if d.local_crops > 0:
        kwargs: dict[str, Any] = {}
        if d.crop_scale is not None:
            kwargs["global_scale"] = tuple(d.crop_scale)
        return MultiCropAugment(
            d.recipe, size, mean, std, n_global=2, n_local=d.local_crops, local_size=d.local_size, **kwargs
        )
    return TwoViewAugment(d.recipe, size, mean, std, crop_scale=tuple(d.crop_scale) if d.crop_scale else None)
