"""Local, never-downloading data sets for self-supervised pretraining and evaluation.

Every reader looks for the standard files of its data set in an explicit list of places and raises
:class:`DatasetNotFoundError` (a :class:`FileNotFoundError`) naming each of them, and how to install the data,
when none has them. Nothing here touches the network.

Small data sets (Fashion-MNIST, MNIST, scikit-learn's digits, CIFAR-10/100, STL-10) are returned as one uint8
tensor of shape ``(N, C, H, W)`` plus int64 labels, so that a training loop can index whole batches and run
the augmentations batched on its device (see :class:`InMemoryLoader`). STL-10's binary files are
memory-mapped, so the 100 000 unlabeled images are read from disk only as batches touch them. Folder data sets
(ImageNet, any ImageFolder) are returned as a torch :class:`~torch.utils.data.Dataset` whose items are
fixed-size uint8 ``(C, H, W)`` tensors, for a DataLoader with workers.

Splits: ``"train"``, ``"val"`` and ``"test"``. The validation split is carved out of the official training
set, stratified by class, with an explicit fraction and seed, so that hyper-parameters are never tuned on the
test set; ``"train"`` is what remains. ``"trainval"`` is the whole official training set (for a final run once
the hyper-parameters are fixed); STL-10 also has ``"unlabeled"`` and ``"train+unlabeled"`` (labels ``-1`` for
unlabeled).

Lookup order for a data set's directory: the ``data_dir`` argument alone when it is given (an explicit folder
without the data set is an error, never a silent fall-back to another copy); otherwise ``$DOTKERNELS_DATA``,
then the system-wide location (``/usr/share/datasets/<name>``, where Debian's ``dataset-fashion-mnist``
package installs Fashion-MNIST). Within each root the usual sub-folder names are tried too (``fashion-mnist/``,
torchvision's ``FashionMNIST/raw/``, ``cifar-10-batches-py/``, ``stl10_binary/``...).

The IDX reader is kept by hand because ``torchvision.datasets.FashionMNIST``/``MNIST`` read only uncompressed
files under ``<root>/FashionMNIST/raw/``, while the system packages install the four ``.gz`` files flat.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Subset

from ..losses import distributed as D
from .config import Config
from .presets import DATASET_NAMES

__all__ = [
    "DatasetNotFoundError",
    "FolderLoader",
    "ImageData",
    "ImageFolderUint8",
    "InMemoryLoader",
    "IndexBatchSampler",
    "TensorImageDataset",
    "build_loader",
    "channel_stats",
    "first_k_per_class",
    "load_dataset",
    "load_split",
    "normalize_images",
    "read_cifar",
    "read_digits",
    "read_idx",
    "read_mnist_like",
    "read_stl10",
    "stratified_split",
]

ENV_VAR = "DOTKERNELS_DATA"
SYSTEM_ROOT = Path("/usr/share/datasets")


# Per-channel statistics of the training sets (pixel values scaled to [0, 1]), as published with the data sets
# and used throughout the SSL literature. Digits' statistics are computed from its training split at load
# time.
_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

_SPLITS = ("train", "val", "test", "trainval")

_FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files were found in none of the places looked in.

    The message lists every place that was searched, and how to install the data set.
    """

    def __init__(self, name: str, looked_in: Sequence[os.PathLike | str], expected: str, install: str) -> None:
        self.name = name
        self.looked_in = [str(p) for p in looked_in]
        places = "\n".join(f"  - {p}" for p in self.looked_in) or "  (no place to look)"
        msg = (
            f"data set {name!r} not found: looked for {expected} in\n{places}\n"
            f"To install it: {install}\n"
            f"Then pass its folder as data_dir (--data-dir) or set ${ENV_VAR}. Nothing is ever downloaded."
        )
        super().__init__(msg)


# ------------------------------------------------------------------------------------------------------------
# Lookup


def _roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """An explicit ``data_dir`` alone (no fall-back to another copy), else ``$DOTKERNELS_DATA`` when set."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    env = os.environ.get(ENV_VAR)
    return [Path(env).expanduser()] if env else []


def _candidates(data_dir: str | os.PathLike | None, subdirs: Sequence[str], system: Sequence[str]) -> list[Path]:
    """The folders to search, in order: each root, its usual sub-folders, then (without ``data_dir``) the system's."""
    out: list[Path] = []
    for root in _roots(data_dir):
        out.append(root)
        out.extend(root / s for s in subdirs)
    if data_dir is None:
        out.extend(SYSTEM_ROOT / s for s in system)
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def _find_file(directory: Path, stems: Sequence[str]) -> Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            p = directory / (stem + suffix)
            if p.is_file():
                return p
    return None


# ------------------------------------------------------------------------------------------------------------
# Formats


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Parameters
    ----------
    path
        File name; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        The array, in native byte order, with the shape stored in the header.

    Raises
    ------
    ValueError
        If the magic number is wrong or the payload does not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX payload has {len(raw) - header} bytes, header {shape} needs {count * dtype.itemsize}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _mnist_places(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    if name == "fashion-mnist":
        return _candidates(
            data_dir,
            ["fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"],
            ["fashion-mnist"],
        )
    return _candidates(data_dir, ["mnist", "MNIST/raw", "MNIST"], ["mnist"])


def read_mnist_like(
    name: str, split: str, data_dir: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the official train or test split of Fashion-MNIST or MNIST from its four IDX files.

    Parameters
    ----------
    name
        ``"fashion-mnist"`` or ``"mnist"``.
    split
        ``"train"`` (60 000 images) or ``"test"`` (10 000 images).
    data_dir
        A folder to look in first (see the module docstring for the lookup order).

    Returns
    -------
    images, labels
        uint8 tensor ``(N, 1, 28, 28)`` and int64 tensor ``(N,)``.

    Raises
    ------
    DatasetNotFoundError
        If no searched folder holds both files of the split.
    """
    if name not in ("fashion-mnist", "mnist"):
        raise ValueError(f"name must be 'fashion-mnist' or 'mnist', got {name!r}")
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    img_stem, lbl_stem = _MNIST_FILES[split]
    places = _mnist_places(name, data_dir)
    for d in places:
        img = _find_file(d, [img_stem, img_stem.replace("-idx", ".idx")])
        lbl = _find_file(d, [lbl_stem, lbl_stem.replace("-idx", ".idx")])
        if img is not None and lbl is not None:
            x = read_idx(img)
            y = read_idx(lbl)
            if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(f"{img}, {lbl}: inconsistent shapes {x.shape} and {y.shape}")
            return torch.from_numpy(x).unsqueeze(1).contiguous(), torch.from_numpy(y.astype(np.int64))
    files = ", ".join(f"{s}.gz" for pair in _MNIST_FILES.values() for s in pair)
    if name == "fashion-mnist":
        install = f"`apt-get install -y dataset-fashion-mnist` (Debian), or put the four files {files} in DIR"
    else:
        install = f"put the four files {files} of MNIST in DIR"
    raise DatasetNotFoundError(name, places, f"{img_stem}[.gz] and {lbl_stem}[.gz]", install)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler limited to what CIFAR batches hold (dicts, lists, numpy arrays): runs no arbitrary code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def _load_batch(path: Path) -> dict:
    with open(path, "rb") as f:
        obj = _ArrayOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR batch (a {type(obj).__name__}, expected a dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "labels": "labels",
        "meta": ("batches.meta", "label_names"),
        "archive": "cifar-10-python.tar.gz",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "labels": "fine_labels",
        "meta": ("meta", "fine_label_names"),
        "archive": "cifar-100-python.tar.gz",
    },
}


def read_cifar(
    name: str, split: str, data_dir: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
    """Read CIFAR-10 or CIFAR-100 (fine labels) from the standard python pickle batches.

    Parameters
    ----------
    name
        ``"cifar10"`` (folder ``cifar-10-batches-py/``) or ``"cifar100"`` (folder ``cifar-100-python/``).
    split
        ``"train"`` or ``"test"``.
    data_dir
        A folder to look in first: either the batches' folder itself or its parent.

    Returns
    -------
    images, labels, class_names
        uint8 ``(N, 3, 32, 32)``, int64 ``(N,)``, and the class names from the meta file (None if absent).
    """
    if name not in _CIFAR:
        raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    spec = _CIFAR[name]
    places = _candidates(data_dir, [spec["folder"]], [f"{name}/{spec['folder']}", spec["folder"]])
    for d in places:
        files = [d / f for f in spec[split]]
        if all(f.is_file() for f in files):
            xs, ys = [], []
            for f in files:
                batch = _load_batch(f)
                data = np.asarray(batch["data"], dtype=np.uint8)
                if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                    raise ValueError(f"{f}: CIFAR data must have shape (N, 3072), got {data.shape}")
                xs.append(data.reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[spec["labels"]], dtype=np.int64))
            names = None
            meta_file, meta_key = spec["meta"]
            if (d / meta_file).is_file():
                meta = _load_batch(d / meta_file)
                if meta_key in meta:
                    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[meta_key]]
            x = torch.from_numpy(np.concatenate(xs))
            y = torch.from_numpy(np.concatenate(ys))
            return x, y, names
    install = (
        f"extract {spec['archive']} (from the CIFAR web page of the University of Toronto) in DIR, so that "
        f"DIR/{spec['folder']}/ holds {', '.join(spec['train'] + spec['test'])}"
    )
    raise DatasetNotFoundError(name, places, f"{spec['folder']}/ with {', '.join(spec[split])}", install)


_STL_FILES = {
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin", None),
}


def read_stl10(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
    """Read STL-10 from its standard binary files (``stl10_binary/``), memory-mapped.

    Parameters
    ----------
    split
        ``"train"`` (5 000 labelled), ``"test"`` (8 000) or ``"unlabeled"`` (100 000, labels -1).
    data_dir
        A folder to look in first: ``stl10_binary/`` itself or its parent.

    Returns
    -------
    images, labels, class_names
        uint8 ``(N, 3, 96, 96)`` (a view of a copy-on-write memory map: pages are read on access), int64
        ``(N,)`` with labels 0..9 (the files store 1..10), and the names from ``class_names.txt`` if present.

    Notes
    -----
    Each image is stored channel by channel in column-major order; the returned view is transposed to
    ``(C, H, W)``, so it is not contiguous: index batches from it (which copies) rather than calling
    ``.contiguous()`` on the 100 000 unlabeled images.
    """
    if split not in _STL_FILES:
        raise ValueError(f"split must be 'train', 'test' or 'unlabeled', got {split!r}")
    x_name, y_name = _STL_FILES[split]
    places = _candidates(data_dir, ["stl10_binary", "stl10/stl10_binary"], ["stl10/stl10_binary", "stl10_binary"])
    for d in places:
        if (d / x_name).is_file() and (y_name is None or (d / y_name).is_file()):
            size = (d / x_name).stat().st_size
            if size == 0 or size % (3 * 96 * 96):
                raise ValueError(f"{d / x_name}: size {size} is not a multiple of 3*96*96")
            mm = np.memmap(d / x_name, dtype=np.uint8, mode="c", shape=(size // (3 * 96 * 96), 3, 96, 96))
            x = torch.from_numpy(mm).transpose(2, 3)  # stored (C, W, H)
            if y_name is None:
                y = torch.full((x.shape[0],), -1, dtype=torch.int64)
            else:
                y = torch.from_numpy(np.fromfile(d / y_name, dtype=np.uint8).astype(np.int64) - 1)
                if y.shape[0] != x.shape[0]:
                    raise ValueError(f"{d}: {x.shape[0]} images but {y.shape[0]} labels")
            names = None
            if (d / "class_names.txt").is_file():
                names = [s.strip() for s in (d / "class_names.txt").read_text().splitlines() if s.strip()]
            return x, y, names
    install = (
        "extract stl10_binary.tar.gz (from the STL-10 page of Stanford University) in DIR, so that "
        "DIR/stl10_binary/ holds train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin"
    )
    raise DatasetNotFoundError(
        "stl10", places, f"stl10_binary/{x_name}" + (f" and {y_name}" if y_name else ""), install
    )


def read_digits(split: str, test_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Scikit-learn's 8x8 digits (1 797 images shipped inside scikit-learn), with a fixed train/test split.

    Parameters
    ----------
    split
        ``"train"`` or ``"test"``.
    test_fraction, seed
        The data set has no official split: a stratified ``test_fraction`` of each class, chosen with
        ``seed``, is the test set. Keep the defaults to compare runs.

    Returns
    -------
    images, labels
        uint8 ``(N, 1, 8, 8)`` with the 0..16 intensities rescaled to 0..255, and int64 ``(N,)``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    y = torch.from_numpy(d.target.astype(np.int64))
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    return torch.from_numpy(x)[idx].unsqueeze(1).contiguous(), y[idx]


# ------------------------------------------------------------------------------------------------------------
# Splits, subsets, statistics


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (kept, held out), holding out ``round(fraction * n_c)`` of each class ``c``.

    Parameters
    ----------
    labels
        int64 labels ``(N,)``; negative labels (unlabeled) are kept, never held out.
    fraction
        In ``[0, 1)``.
    seed
        Seed of the permutation (a private ``torch.Generator``: the global RNG is untouched).

    Returns
    -------
    kept, held_out
        Sorted, disjoint int64 index tensors covering ``range(N)``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    labels = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(int(seed))
    held = []
    for c in torch.unique(labels):
        if c < 0:
            continue
        idx = torch.nonzero(labels == c).flatten()
        k = round(fraction * idx.numel())
        if k:
            held.append(idx[torch.randperm(idx.numel(), generator=g)[:k]])
    mask = torch.zeros(labels.numel(), dtype=torch.bool)
    if held:
        mask[torch.cat(held)] = True
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()


def channel_stats(images: torch.Tensor, batch: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images ``(N, C, H, W)`` (pixel values in [0, 1])."""
    n, c = images.shape[:2]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, n, batch):
        b = images[i : i + batch].to(torch.float64) / 255.0
        s += b.sum(dim=(0, 2, 3))
        s2 += (b * b).sum(dim=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = s / count
    std = (s2 / count - mean * mean).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def normalize_images(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a float batch ``(N, C, H, W)``; a single value serves every channel.

    Examples
    --------
    >>> normalize_images(torch.full((1, 3, 2, 2), 0.5), (0.5,), (0.25,)).abs().max().item()
    0.0
    """
    c = x.shape[1]
    m = torch.tensor(tuple(mean) * (c if len(mean) == 1 else 1), device=x.device).view(1, c, 1, 1)
    s = torch.tensor(tuple(std) * (c if len(std) == 1 else 1), device=x.device).view(1, c, 1, 1)
    return (x - m) / s


def first_k_per_class(dataset: Any, k: int) -> Subset:
    """The first ``k`` samples of each class, by sorted file name: the ImageNet-20% recipe (k = 260).

    Parameters
    ----------
    dataset
        A torchvision ``ImageFolder``/``DatasetFolder`` (anything with ``samples``: a list of ``(path,
        target)``).
    k
        Samples per class (classes with fewer keep all of theirs).

    Returns
    -------
    torch.utils.data.Subset
        With indices sorted; ``subset.targets`` holds their labels.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    by_class: dict[int, list[tuple[str, int]]] = {}
    for i, (path, target) in enumerate(dataset.samples):
        by_class.setdefault(int(target), []).append((os.path.basename(path), i))
    keep: list[int] = []
    for items in by_class.values():
        keep.extend(i for _, i in sorted(items)[:k])
    keep.sort()
    sub = Subset(dataset, keep)
    sub.targets = [int(dataset.samples[i][1]) for i in keep]  # type: ignore[attr-defined]
    return sub


# ------------------------------------------------------------------------------------------------------------
# Containers


class TensorImageDataset(Dataset):
    """uint8 images ``(N, C, H, W)`` and int64 labels in memory; indexable by an int or by a batch of indices.

    ``dataset[idx]`` with a 1-D index tensor returns a whole batch ``(images[idx], labels[idx])`` in one
    gather, which is the fast path of :class:`InMemoryLoader` (no per-image Python calls, no collation).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


@dataclass
class ImageData:
    """A loaded split of a data set.

    Attributes
    ----------
    name, split
        As passed to :func:`load_dataset`.
    labels
        int64 ``(N,)``; -1 for unlabeled images.
    num_classes
        Number of classes (10 for STL-10 even on its unlabeled split).
    mean, std
        Per-channel normalisation statistics (pixel values in [0, 1]) of the training set.
    image_size
        Side of the (square) images as stored, or as produced by the file-backed dataset.
    in_channels
        1 (Fashion-MNIST, MNIST, digits) or 3.
    images
        uint8 ``(N, C, H, W)`` for in-memory data sets, None for file-backed ones.
    dataset
        A torch Dataset over the split: a :class:`TensorImageDataset` over ``images`` for in-memory data sets
        (indexable by a batch of indices), else items ``(uint8 (C, H, W) tensor, int label)``.
    classes
        Class names when the files provide them.
    indices
        Positions of the split's images in the official split they come from.
    source
        Where the images were read from (a folder, or ``"scikit-learn"`` for the digits).
    """

    name: str
    split: str
    labels: torch.Tensor = field(repr=False)
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    in_channels: int
    images: torch.Tensor | None = field(default=None, repr=False)
    dataset: Dataset | None = field(default=None, repr=False)
    classes: list[str] | None = None
    indices: torch.Tensor | None = field(default=None, repr=False)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.dataset is None and self.images is not None:
            self.dataset = TensorImageDataset(self.images, self.labels)

    @property
    def in_memory(self) -> bool:
        """True when :attr:`images` holds the whole split as one tensor."""
        return self.images is not None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# ------------------------------------------------------------------------------------------------------------
# Samplers and the in-memory loader


class IndexBatchSampler:
    """Batches of indices for one process, in the order :class:`~torch.utils.data.DistributedSampler` gives.

    Parameters
    ----------
    num_samples
        Size of the data set.
    batch_size
        Batch size of this process (the local batch).
    shuffle, seed, drop_last
        As for ``DistributedSampler`` (``drop_last`` also drops the last, incomplete local batch).
    num_replicas, rank
        World size and this process's rank; default to the initialised process group, else 1 and 0.

    Notes
    -----
    Call :meth:`set_epoch` at the start of each epoch for a new permutation, as for ``DistributedSampler``;
    the order depends only on ``(seed, epoch)``, so a resumed run that sets the same epoch sees the same
    batches.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        num_replicas = D.world_size() if num_replicas is None else num_replicas
        rank = D.rank() if rank is None else rank
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.skip = 0
        self.sampler = DistributedSampler(
            range(num_samples),  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )

    @property
    def epoch(self) -> int:
        """The epoch last set."""
        return int(self.sampler.epoch)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Set the epoch (the permutation is seeded with ``seed + epoch``); skip its first ``skip`` batches.

        Parameters
        ----------
        epoch
            The epoch.
        skip
            Batches of this epoch to leave out of the next iteration (those a checkpoint already trained on).
        """
        if not 0 <= skip <= len(self):
            raise ValueError(f"skip must be in [0, {len(self)}], got {skip}")
        self.sampler.set_epoch(epoch)
        self.skip = int(skip)

    def __len__(self) -> int:
        n = self.sampler.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        idx = torch.as_tensor(list(iter(self.sampler)), dtype=torch.int64)
        skip, self.skip = self.skip, 0
        for b in range(skip, len(self)):
            yield idx[b * self.batch_size : (b + 1) * self.batch_size]


class InMemoryLoader:
    """Iterate ``(images, labels)`` batches of an in-memory data set, gathered in one indexing op per batch.

    Parameters
    ----------
    data
        An :class:`ImageData` with ``images``, or a :class:`TensorImageDataset`.
    batch_size, shuffle, seed, drop_last, num_replicas, rank
        See :class:`IndexBatchSampler` (``batch_size`` is per process).
    device
        Where batches are delivered (uint8 images, int64 labels).
    resident
        Copy the whole data set to ``device`` once and index it there (fast for small data sets on a GPU).
    pin_memory
        Pin each CPU batch before a non-blocking copy to a CUDA device (ignored when ``resident``).
    """

    def __init__(
        self,
        data: ImageData | TensorImageDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        device: torch.device | str | None = None,
        resident: bool = False,
        pin_memory: bool = False,
    ) -> None:
        if isinstance(data, ImageData):
            if data.images is None:
                raise ValueError(f"{data.name!r} is file-backed: use a DataLoader over data.dataset instead")
            data = TensorImageDataset(data.images, data.labels)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.images = data.images
        self.labels = data.labels
        if resident:
            self.images = self.images.to(self.device)
            self.labels = self.labels.to(self.device)
        self.resident = resident
        self.pin_memory = pin_memory and self.device.type == "cuda" and not resident
        self.batch_sampler = IndexBatchSampler(
            len(data),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            num_replicas=num_replicas,
            rank=rank,
        )

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Set the epoch of the underlying sampler (and the batches to skip, see :class:`IndexBatchSampler`)."""
        self.batch_sampler.set_epoch(epoch, skip)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.batch_sampler:
            if self.resident:
                idx = idx.to(self.device)
            x, y = self.images[idx], self.labels[idx]
            if not self.resident and self.device.type != "cpu":
                if self.pin_memory:
                    x, y = x.pin_memory(), y.pin_memory()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
            yield x, y


# ------------------------------------------------------------------------------------------------------------
# Image folders


class ImageFolderUint8(Dataset):
    """A torchvision ``ImageFolder`` whose items are fixed-size uint8 ``(3, size, size)`` tensors.

    Each image is decoded to RGB, its shorter side resized to ``resize`` (default ``round(size * 8 / 7)``,
    e.g. 256 for 224) and centre-cropped to ``size``; random crops and the other augmentations then run
    batched on the training device. (This bounds RandomResizedCrop to the central square at ``resize``
    resolution, the usual trade-off of GPU-side augmentation pipelines; pass ``resize=size`` to keep the whole
    centre square.)

    Parameters
    ----------
    root
        Folder with one sub-folder of images per class.
    size
        Output side.
    resize
        Shorter side before the centre crop.
    """

    def __init__(self, root: str | os.PathLike, size: int = 224, resize: int | None = None) -> None:
        from torchvision.datasets import ImageFolder

        self.folder = ImageFolder(str(root))
        self.size = int(size)
        self.resize = int(resize) if resize is not None else round(size * 8 / 7)
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be >= size ({self.size})")
        self.samples = self.folder.samples
        self.targets = self.folder.targets
        self.classes = self.folder.classes

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: str) -> torch.Tensor:
        """Decode one file (Pillow, converted to RGB) to a uint8 ``(3, size, size)`` tensor."""
        from PIL import Image
        from torchvision.transforms.v2 import functional as F

        with Image.open(path) as im:
            img = torch.from_numpy(np.array(im.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
        if min(img.shape[-2:]) != self.resize:
            img = F.resize(img, [self.resize], antialias=True)
        if tuple(img.shape[-2:]) != (self.size, self.size):
            img = F.center_crop(img, [self.size, self.size])
        return img.contiguous()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[index]
        return self.load(path), int(target)


def _imagefolder_root(name: str, split: str, data_dir: str | os.PathLike | None) -> Path:
    """Class-folder root of a folder split: ``DIR/train`` or ``DIR/val`` when they exist, else ``DIR``."""
    if name in ("imagenet", "imagenet20"):
        places = _candidates(data_dir, ["imagenet", "ILSVRC2012", "imagenet-1k"], ["imagenet"])
    else:
        places = [Path(p).expanduser() for p in ([data_dir] if data_dir is not None else [])]
    sub = ("train",) if split in ("train", "val", "trainval") else ("val", "test")
    for d in places:
        for s in sub:
            if (d / s).is_dir():
                return d / s
        if name == "imagefolder" and d.is_dir() and split != "test":
            return d
    looked = [str(d / s) for d in places for s in sub] + (
        [str(d) for d in places] if name == "imagefolder" and split != "test" else []
    )
    install = (
        "put one sub-folder of images per class in DIR/train (and DIR/val for the test split); "
        "for ImageNet, the ILSVRC2012 train and val images sorted into class folders"
    )
    if name == "imagefolder" and data_dir is None:
        install = "pass the folder as data_dir (--data-dir DIR). " + install
    raise DatasetNotFoundError(name, looked, "an image folder", install)


# ------------------------------------------------------------------------------------------------------------
# Entry point


def _resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    import torch.nn.functional as F

    out = []
    for i in range(0, images.shape[0], 4096):
        b = images[i : i + 4096].float()
        b = F.interpolate(b, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(b.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    resize: int | None = None,
    per_class: int | None = None,
    limit: int | None = None,
    folder_resize: int | None = None,
) -> ImageData:
    """Load one split of a data set from local files (never downloading).

    Parameters
    ----------
    name
        One of :data:`DATASET_NAMES`: ``"fashion-mnist"``, ``"mnist"``, ``"digits"``, ``"cifar10"``,
        ``"cifar100"``, ``"stl10"``, ``"imagefolder"`` (``data_dir`` is the folder; ``"imagefolder:PATH"``
        also works), ``"imagenet"`` and ``"imagenet20"`` (ImageNet with the first 260 training images per
        class).
    split
        ``"train"``, ``"val"`` (``val_fraction`` of the official training set, stratified by class),
        ``"test"``, ``"trainval"`` (the whole official training set); for STL-10 also ``"unlabeled"`` and
        ``"train+unlabeled"`` (the usual pretraining set; never split).
    data_dir
        The folder to look in (and its usual sub-folders), and the only one when given; without it,
        ``$DOTKERNELS_DATA``, then ``/usr/share/datasets``.
    val_fraction, split_seed
        The validation split: the same ``(val_fraction, split_seed)`` always give the same, disjoint train and
        val splits. ``val_fraction=0`` makes ``"train"`` the whole training set and ``"val"`` empty.
    resize
        Resize in-memory images to ``resize x resize`` (bilinear, antialiased, rounded back to uint8), e.g. 28
        or 32 for the 8x8 digits; for folder data sets, the output side (default 224).
    per_class
        Keep only the first ``per_class`` training images of each class (by sorted file name for folders, by
        index otherwise) before the validation split; ``"imagenet20"`` sets 260.
    limit
        Keep only the first ``limit`` images of the split (after everything else): quick experiments and
        tests.
    folder_resize
        Folder data sets only: the shorter side before the centre crop to ``resize`` (default: equal to it, so
        the whole centre square is kept for the random crops; the classic evaluation preprocessing is
        ``resize=224, folder_resize=256``).

    Returns
    -------
    ImageData

    Raises
    ------
    DatasetNotFoundError
        The files are nowhere to be found; the message says where it looked and how to install them.
    ValueError
        Unknown name or split, or a corrupt file.
    """
    if name.startswith("imagefolder:"):
        name, data_dir = "imagefolder", name.split(":", 1)[1]
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    stl_only = ("unlabeled", "train+unlabeled")
    if split not in _SPLITS + stl_only or (split in stl_only and name != "stl10"):
        allowed = _SPLITS + (stl_only if name == "stl10" else ())
        raise ValueError(f"unknown split {split!r} for {name!r}; choose one of {', '.join(allowed)}")
    if name == "imagenet20" and per_class is None:
        per_class = 260

    if name in ("imagefolder", "imagenet", "imagenet20"):
        return _load_folder(name, split, data_dir, val_fraction, split_seed, resize, per_class, limit, folder_resize)

    classes: list[str] | None = None
    official = "test" if split == "test" else "train"
    if name == "stl10" and split in stl_only:
        xu, yu, classes = read_stl10("unlabeled", data_dir)
        if split == "train+unlabeled":
            xt, yt, _ = read_stl10("train", data_dir)
            x, y = torch.cat([xt, xu]), torch.cat([yt, yu])  # materialises ~2.8 GB: the labelled 5000 first
        else:
            x, y = xu, yu
    elif name in ("fashion-mnist", "mnist"):
        x, y = read_mnist_like(name, official, data_dir)
        classes = list(_FASHION_CLASSES) if name == "fashion-mnist" else [str(i) for i in range(10)]
    elif name == "digits":
        x, y = read_digits(official)
        classes = [str(i) for i in range(10)]
    elif name in ("cifar10", "cifar100"):
        x, y, classes = read_cifar(name, official, data_dir)
    else:  # stl10 labelled splits
        x, y, classes = read_stl10(official, data_dir)

    num_classes = {"cifar100": 100}.get(name, 10)
    indices = torch.arange(x.shape[0])
    if split in ("train", "val", "trainval") and per_class is not None:
        indices = _first_per_class_index(y, per_class)
    if split in ("train", "val") and val_fraction > 0:
        kept, held = stratified_split(y[indices], val_fraction, split_seed)
        indices = indices[held if split == "val" else kept]
    if limit is not None:
        indices = indices[:limit]
    if indices.numel() != x.shape[0]:
        x, y = x[indices], y[indices]
    if resize is not None and resize != x.shape[-1]:
        x = _resize_uint8(x, resize)
    if name == "digits":
        xt, _ = read_digits("train")
        mean, std = channel_stats(xt if resize is None else _resize_uint8(xt, resize))
    else:
        mean, std = _STATS[name]
    return ImageData(
        name=name,
        split=split,
        labels=y,
        num_classes=num_classes,
        mean=mean,
        std=std,
        image_size=int(x.shape[-1]),
        in_channels=int(x.shape[1]),
        images=x,
        classes=classes,
        indices=indices,
        source=_source(name, official, data_dir),
    )


def _first_per_class_index(labels: torch.Tensor, k: int) -> torch.Tensor:
    keep = []
    for c in torch.unique(labels):
        if c >= 0:
            keep.append(torch.nonzero(labels == c).flatten()[:k])
    return torch.sort(torch.cat(keep)).values


def _load_folder(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None,
    val_fraction: float,
    split_seed: int,
    resize: int | None,
    per_class: int | None,
    limit: int | None,
    folder_resize: int | None,
) -> ImageData:
    root = _imagefolder_root(name, split, data_dir)
    size = resize if resize is not None else 224
    folder = ImageFolderUint8(root, size=size, resize=folder_resize if folder_resize is not None else size)
    base: Any = folder
    indices = torch.arange(len(folder))
    if split != "test" and per_class is not None:
        sub = first_k_per_class(folder, per_class)
        indices = torch.as_tensor(sub.indices, dtype=torch.int64)
    targets = torch.as_tensor(folder.targets, dtype=torch.int64)
    if split in ("train", "val") and val_fraction > 0:
        kept, held = stratified_split(targets[indices], val_fraction, split_seed)
        indices = indices[held if split == "val" else kept]
    if limit is not None:
        indices = indices[:limit]
    dataset: Dataset = base if indices.numel() == len(folder) else Subset(base, indices.tolist())
    mean, std = _STATS["imagenet"]
    return ImageData(
        name=name,
        split=split,
        labels=targets[indices],
        num_classes=len(folder.classes),
        mean=mean,
        std=std,
        image_size=size,
        in_channels=3,
        dataset=dataset,
        classes=list(folder.classes),
        indices=indices,
        source=str(root),
    )


def _source(name: str, split: str, data_dir: str | os.PathLike | None) -> str | None:
    """The folder an in-memory data set's ``split`` is read from (the first place of the lookup that has it)."""
    if name == "digits":
        return "scikit-learn"
    if name in ("fashion-mnist", "mnist"):
        stem = _MNIST_FILES[split][0]
        found = (d for d in _mnist_places(name, data_dir) if _find_file(d, [stem, stem.replace("-idx", ".idx")]))
    elif name in _CIFAR:
        spec = _CIFAR[name]
        places = _candidates(data_dir, [spec["folder"]], [f"{name}/{spec['folder']}", spec["folder"]])
        found = (d for d in places if (d / spec[split][0]).is_file())
    else:
        places = _candidates(data_dir, ["stl10_binary", "stl10/stl10_binary"], ["stl10/stl10_binary", "stl10_binary"])
        found = (d for d in places if (d / _STL_FILES.get(split, _STL_FILES["train"])[0]).is_file())
    return str(next(found, "")) or None


def load_split(cfg: Config, split: str, limit: int | None = None) -> ImageData:
    """One split of a run's data set with the settings of ``cfg.data`` (``limit``: the first images only)."""
    d = cfg.data
    return load_dataset(
        d.dataset,
        split,
        d.data_dir,
        val_fraction=d.val_fraction,
        split_seed=d.split_seed,
        resize=d.image_size,
        per_class=d.per_class,
        limit=limit,
        folder_resize=d.folder_resize,
    )


class FolderLoader:
    """Batches of a file-backed data set (DataLoader with workers) in the order of the distributed sampler."""

    def __init__(self, data: ImageData, batch_size: int, *, seed: int, world: int, rank: int, num_workers: int) -> None:
        self.sampler = IndexBatchSampler(
            len(data), batch_size, shuffle=True, seed=seed, drop_last=True, num_replicas=world, rank=rank
        )
        self.dataset = data.dataset
        self.num_workers = num_workers

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Reshuffle for ``epoch`` (the permutation depends on it and on the seed only); skip ``skip`` batches."""
        self.sampler.set_epoch(epoch, skip)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = [b.tolist() for b in self.sampler]
        loader = torch.utils.data.DataLoader(
            self.dataset,  # type: ignore[arg-type]
            batch_sampler=batches,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
        )
        for x, y in loader:
            yield x, torch.as_tensor(y)


def build_loader(
    cfg: Config, data: ImageData, *, world: int, rank: int, device: torch.device
) -> InMemoryLoader | FolderLoader:
    """The training batches of this rank: ``optim.batch_size / world`` images, shuffled per epoch, full batches."""
    local_batch = cfg.optim.batch_size // world
    if data.in_memory:
        return InMemoryLoader(
            data,
            local_batch,
            shuffle=True,
            seed=cfg.run.seed,
            drop_last=True,
            num_replicas=world,
            rank=rank,
            device=device,
            resident=cfg.data.resident and device.type == "cuda",
            pin_memory=device.type == "cuda",
        )
    return FolderLoader(data, local_batch, seed=cfg.run.seed, world=world, rank=rank, num_workers=cfg.data.num_workers)
