"""pretraining.augment: shapes, randomness per sample and per view, seeding, 1 and 3 channels."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kornia")

from dotkernels_ssl.pretraining.augment import (  # noqa: E402
    RECIPES,
    MultiCropAugment,
    TwoViewAugment,
    ViewAugment,
    ViewRecipe,
    get_recipe,
)

MEAN3, STD3 = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
MEAN1, STD1 = (0.286,), (0.353,)


def _images(n: int, c: int, side: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # smooth-ish images with structure, so that crops at different places differ
    base = torch.rand(n, c, side // 4, side // 4, generator=g)
    x = torch.nn.functional.interpolate(base, size=(side, side), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtypes_and_views_differ(recipe: str, channels: int) -> None:
    mean, std = (MEAN1, STD1) if channels == 1 else (MEAN3, STD3)
    aug = TwoViewAugment(recipe, 24, mean, std)
    x = _images(6, channels, 32)
    torch.manual_seed(0)
    v1, v2 = aug(x)
    for v in (v1, v2):
        assert v.shape == (6, channels, 24, 24)
        assert v.dtype == torch.float32
        assert torch.isfinite(v).all()
    assert not torch.allclose(v1, v2)


def test_float_and_uint8_inputs_agree() -> None:
    aug = TwoViewAugment("small", 16, MEAN3, STD3)
    x = _images(4, 3, 16)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x.float() / 255)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)


def test_normalisation_matches_formula() -> None:
    """With every random operation switched off and a full-image crop, a view is (x / 255 - mean) / std."""
    still = ViewRecipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0)
    view = ViewAugment(still, 12, MEAN3, STD3)
    x = _images(3, 3, 12)
    expected = (x.double() / 255 - torch.tensor(MEAN3).view(1, 3, 1, 1)) / torch.tensor(STD3).view(1, 3, 1, 1)
    torch.testing.assert_close(view(x).double(), expected, atol=1e-5, rtol=0)


def test_per_sample_parameters_differ_within_batch() -> None:
    """The same image repeated in a batch comes out differently for each sample (per-sample parameters)."""
    aug = TwoViewAugment("vicreg", 24, MEAN3, STD3)
    x = _images(1, 3, 32).repeat(8, 1, 1, 1)
    torch.manual_seed(1)
    for v in aug(x):
        flat = v.flatten(1)
        distinct = {tuple(torch.round(r * 1e4).tolist()) for r in flat}
        assert len(distinct) == 8


def test_determinism_under_manual_seed() -> None:
    aug = TwoViewAugment("vicreg", 20, MEAN3, STD3)
    x = _images(5, 3, 24)
    torch.manual_seed(123)
    a = aug(x)
    torch.manual_seed(123)
    b = aug(x)
    torch.manual_seed(124)
    c = aug(x)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.allclose(a[0], c[0])


def test_gray_input_stays_gray_and_matches_repeated_channels_structure() -> None:
    """1-channel input keeps 1 channel; a 3-channel gray image keeps equal channels through colour ops."""
    aug1 = TwoViewAugment("vicreg", 16, MEAN1, STD1)
    x1 = _images(4, 1, 20)
    torch.manual_seed(0)
    v1, _ = aug1(x1)
    assert v1.shape == (4, 1, 16, 16)

    aug3 = TwoViewAugment("vicreg", 16, (0.5,), (1.0,))  # one value broadcast to every channel
    torch.manual_seed(0)
    for v in aug3(x1.repeat(1, 3, 1, 1)):
        # saturation, hue and grayscale are the identity on equal channels: they stay (nearly) equal
        torch.testing.assert_close(v[:, 0], v[:, 1], atol=2e-2, rtol=0)
        torch.testing.assert_close(v[:, 0], v[:, 2], atol=2e-2, rtol=0)


def test_recipes_are_asymmetric_as_in_the_paper() -> None:
    v1, v2 = RECIPES["vicreg"]
    assert (v1.blur_p, v2.blur_p, v1.solarize_p, v2.solarize_p) == (1.0, 0.1, 0.0, 0.2)
    assert v1.jitter == (0.4, 0.4, 0.2, 0.1) and v1.jitter_p == 0.8 and v1.gray_p == 0.2
    s1, s2 = RECIPES["simclr"]
    assert s1.jitter == (0.8, 0.8, 0.8, 0.2) and s1.blur_p == s2.blur_p == 0.5
    a1, _ = RECIPES["auh"]
    assert a1.jitter == (0.4, 0.4, 0.4, 0.4) and a1.jitter_p == 1.0 and a1.blur_p == 0.0
    assert all(r.blur_p == 0.0 for r in RECIPES["small"])
    assert all(r.crop_scale == (0.08, 1.0) and r.flip_p == 0.5 for pair in RECIPES.values() for r in pair)
    assert get_recipe("small", crop_scale=(0.2, 1.0))[0].crop_scale == (0.2, 1.0)
    with pytest.raises(ValueError, match="unknown augmentation recipe"):
        get_recipe("nope")


def test_multicrop_shapes() -> None:
    aug = MultiCropAugment("vicreg", 32, MEAN3, STD3, n_global=2, n_local=3, local_size=12)
    torch.manual_seed(0)
    views = aug(_images(4, 3, 40))
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 2 + [(4, 3, 12, 12)] * 3
    assert not torch.allclose(views[2], views[3])
    assert aug.local_views[0].recipe.crop_scale == (0.05, 0.14)


def test_bad_inputs() -> None:
    aug = TwoViewAugment("small", 8, MEAN3, STD3)
    with pytest.raises(ValueError, match="channels"):
        aug(torch.zeros(2, 2, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="batch"):
        aug(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mean/std"):
        aug(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
