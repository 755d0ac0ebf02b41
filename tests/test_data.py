"""Tests of dotkernels_ssl.pretraining.data: every format written here in its standard layout and read back exactly."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dotkernels_ssl.pretraining import data as D  # noqa: E402
from dotkernels_ssl.pretraining.data import (  # noqa: E402
    DatasetNotFoundError,
    ImageData,
    IndexBatchSampler,
    InMemoryLoader,
    first_k_per_class,
    load_dataset,
    read_idx,
    stratified_split,
)

FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the machine's data: $DOTKERNELS_DATA unset and the system root moved into tmp_path."""
    monkeypatch.delenv(D.ENV_VAR, raising=False)
    monkeypatch.setattr(D, "SYSTEM_ROOT", tmp_path / "system")


def _write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _rng_images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _mnist_dir(root: Path, n_train: int = 40, n_test: int = 10, compress: bool = True) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "xtr": _rng_images((n_train, 28, 28), 1),
        "ytr": np.arange(n_train, dtype=np.uint8) % 10,
        "xte": _rng_images((n_test, 28, 28), 2),
        "yte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    ext = ".gz" if compress else ""
    _write_idx(root / f"train-images-idx3-ubyte{ext}", arrays["xtr"], compress)
    _write_idx(root / f"train-labels-idx1-ubyte{ext}", arrays["ytr"], compress)
    _write_idx(root / f"t10k-images-idx3-ubyte{ext}", arrays["xte"], compress)
    _write_idx(root / f"t10k-labels-idx1-ubyte{ext}", arrays["yte"], compress)
    return arrays


# ------------------------------------------------------------------------------------------------------ IDX /


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_idx_roundtrip(tmp_path: Path, compress: bool) -> None:
    arrays = _mnist_dir(tmp_path / "fm", compress=compress)
    test = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "fm")
    assert isinstance(test, ImageData) and test.in_memory
    assert test.images.dtype == torch.uint8 and test.images.shape == (10, 1, 28, 28)
    assert np.array_equal(test.images[:, 0].numpy(), arrays["xte"])
    assert test.labels.dtype == torch.int64 and np.array_equal(test.labels.numpy(), arrays["yte"])
    assert (test.num_classes, test.image_size, test.in_channels) == (10, 28, 1)
    assert len(test.mean) == len(test.std) == 1
    full = load_dataset("fashion-mnist", "trainval", data_dir=tmp_path / "fm")
    assert np.array_equal(full.images[:, 0].numpy(), arrays["xtr"])


def test_lookup_order_env_and_subfolders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = _mnist_dir(tmp_path / "env" / "FashionMNIST" / "raw")  # torchvision's layout under $DOTKERNELS_DATA
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path / "env"))
    got = load_dataset("fashion-mnist", "test")
    assert np.array_equal(got.images[:, 0].numpy(), arrays["xte"])
    assert got.source == str(tmp_path / "env" / "FashionMNIST" / "raw")  # where it was read from
    mn = _mnist_dir(tmp_path / "dd" / "mnist", n_test=7)  # data_dir wins over the environment
    got = load_dataset("mnist", "test", data_dir=tmp_path / "dd")
    assert np.array_equal(got.images[:, 0].numpy(), mn["xte"]) and got.source == str(tmp_path / "dd" / "mnist")
    # an explicit data_dir is the only place looked in: no silent fall-back to the environment's copy
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "empty")
    assert str(tmp_path / "env") not in info.value.looked_in and str(tmp_path / "empty") in info.value.looked_in


def test_idx_magic_and_size_are_checked(tmp_path: Path) -> None:
    arr = _rng_images((3, 4, 5))
    _write_idx(tmp_path / "ok.gz", arr)
    assert np.array_equal(read_idx(tmp_path / "ok.gz"), arr)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    raw = gzip.decompress((tmp_path / "ok.gz").read_bytes())
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="payload"):
        read_idx(tmp_path / "short")
    # 32-bit big-endian integers
    header = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3)
    (tmp_path / "ints").write_bytes(header + np.array([1, -2, 70000], dtype=">i4").tobytes())
    assert read_idx(tmp_path / "ints").tolist() == [1, -2, 70000]


def test_missing_dataset_message_lists_places_and_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path / "envdir"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", "train", data_dir=tmp_path / "mine")
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    for place in (tmp_path / "mine", tmp_path / "mine" / "FashionMNIST" / "raw"):
        assert str(place) in msg
        assert str(place) in err.looked_in
    assert not any(str(tmp_path / d) in p for p in err.looked_in for d in ("envdir", "system"))  # data_dir only
    with pytest.raises(DatasetNotFoundError) as info:  # without data_dir: the environment, then the system
        load_dataset("fashion-mnist", "train")
    for place in (tmp_path / "envdir", tmp_path / "envdir" / "fashion-mnist", tmp_path / "system" / "fashion-mnist"):
        assert str(place) in info.value.looked_in
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "DIR" in msg
    for name, hint in [
        ("cifar10", "cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python"),
        ("stl10", "stl10_binary"),
    ]:
        with pytest.raises(DatasetNotFoundError, match=hint) as info:
            load_dataset(name, "test", data_dir=tmp_path / "mine")
        assert str(tmp_path / "mine") in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="data_dir"):
        load_dataset("imagefolder", "train")


def test_bad_names_and_splits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar11", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("digits", "unlabeled")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("digits", "validation")


# ------------------------------------------------------------------------------------------------------ real


@pytest.mark.skipif(
    not (FASHION_SYSTEM / "train-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)",
)
def test_real_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "SYSTEM_ROOT", Path("/usr/share/datasets"))
    test = load_dataset("fashion-mnist", "test")
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1000))
    train = load_dataset("fashion-mnist", "train", val_fraction=0.1, split_seed=0)
    val = load_dataset("fashion-mnist", "val", val_fraction=0.1, split_seed=0)
    assert len(train) == 54000 and len(val) == 6000
    assert torch.equal(torch.bincount(val.labels), torch.full((10,), 600))
    # the published statistics match the data
    mean, std = D.channel_stats(train.images[:20000])
    assert abs(mean[0] - train.mean[0]) < 5e-3 and abs(std[0] - train.std[0]) < 5e-3


# ------------------------------------------------------------------------------------------------------ digit


def test_digits_split_and_upsample() -> None:
    sk = pytest.importorskip("sklearn.datasets")
    digits = sk.load_digits()
    train = load_dataset("digits", "trainval")
    test = load_dataset("digits", "test")
    assert len(train) + len(test) == len(digits.target)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    # each image is one of the data set's, rescaled 0..16 -> 0..255, with its own label
    ref = {
        tuple(np.rint(im * 255 / 16).astype(np.uint8).ravel()): int(t) for im, t in zip(digits.images, digits.target)
    }
    for im, t in zip(test.images, test.labels):
        assert ref[tuple(im.ravel().tolist())] == int(t)
    big = load_dataset("digits", "test", resize=28)
    assert big.images.shape == (len(test), 1, 28, 28) and big.image_size == 28
    assert big.labels.equal(test.labels)
    assert 0.0 < big.mean[0] < 1.0 and big.std[0] > 0.0


# ------------------------------------------------------------------------------------------------------ CIFAR


def _write_cifar10(root: Path, per_batch: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = _rng_images((per_batch, 3072), 10 + i)
        y = [(i + j) % 10 for j in range(per_batch)]
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"batch_label": b"x", b"data": x, b"labels": y}, f, protocol=2)
        xs.append(x)
        ys.extend(y)
    xt = _rng_images((5, 3072), 99)
    yt = [3, 1, 4, 1, 5]
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": xt, b"labels": yt}, f, protocol=4)
    names = [f"class{i}".encode() for i in range(10)]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f, protocol=2)
    return np.concatenate(xs), np.array(ys), xt, np.array(yt)


def test_cifar10_pickle_roundtrip(tmp_path: Path) -> None:
    xtr, ytr, xte, yte = _write_cifar10(tmp_path)
    full = load_dataset("cifar10", "trainval", data_dir=tmp_path)
    assert full.images.shape == (30, 3, 32, 32) and full.images.dtype == torch.uint8
    assert np.array_equal(full.images.numpy().reshape(30, -1), xtr)
    assert np.array_equal(full.labels.numpy(), ytr)
    assert full.classes == [f"class{i}" for i in range(10)]
    # the batches' folder itself can be data_dir
    test = load_dataset("cifar10", "test", data_dir=tmp_path / "cifar-10-batches-py")
    assert np.array_equal(test.images.numpy().reshape(5, -1), xte) and np.array_equal(test.labels.numpy(), yte)
    # pixel layout: the 3072 values are the R plane, then G, then B, each row-major
    assert full.images[0, 1, 2, 3].item() == xtr[0, 1024 + 2 * 32 + 3]


def test_cifar100_pickle_roundtrip(tmp_path: Path) -> None:
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    x = _rng_images((7, 3072), 5)
    fine = [0, 99, 42, 7, 7, 13, 64]
    for split in ("train", "test"):
        with open(d / split, "wb") as f:
            pickle.dump({b"data": x, b"fine_labels": fine, b"coarse_labels": [0] * 7}, f, protocol=2)
    got = load_dataset("cifar100", "test", data_dir=tmp_path)
    assert got.num_classes == 100
    assert np.array_equal(got.images.numpy().reshape(7, -1), x) and got.labels.tolist() == fine


def test_cifar_refuses_code_in_pickles(tmp_path: Path) -> None:
    d = tmp_path / "cifar-100-python"
    d.mkdir()

    class Evil:
        def __reduce__(self):  # pragma: no cover - only pickled
            return (print, ("pwned",))

    for split in ("train", "test"):
        with open(d / split, "wb") as f:
            pickle.dump({b"data": Evil(), b"fine_labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_dataset("cifar100", "test", data_dir=tmp_path)


# ------------------------------------------------------------------------------------------------------ STL-1


def test_stl10_binary_roundtrip(tmp_path: Path) -> None:
    d = tmp_path / "stl10_binary"
    d.mkdir()
    imgs = {s: _rng_images((n, 3, 96, 96), k) for k, (s, n) in enumerate([("train", 4), ("test", 3), ("unlabeled", 5)])}
    for s, x in imgs.items():
        # the files store each channel column-major: (N, C, W, H)
        (d / f"{s}_X.bin").write_bytes(np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tobytes())
    (d / "train_y.bin").write_bytes(bytes([1, 10, 3, 3]))
    (d / "test_y.bin").write_bytes(bytes([2, 2, 9]))
    (d / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    train = load_dataset("stl10", "trainval", data_dir=tmp_path)
    assert train.images.shape == (4, 3, 96, 96) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images.numpy(), imgs["train"])
    assert train.labels.tolist() == [0, 9, 2, 2] and train.classes[9] == "c9"
    test = load_dataset("stl10", "test", data_dir=d)
    assert np.array_equal(test.images.numpy(), imgs["test"]) and test.labels.tolist() == [1, 1, 8]
    unl = load_dataset("stl10", "unlabeled", data_dir=tmp_path)
    assert np.array_equal(unl.images.numpy(), imgs["unlabeled"]) and (unl.labels == -1).all()
    both = load_dataset("stl10", "train+unlabeled", data_dir=tmp_path)
    assert len(both) == 9 and both.labels.tolist()[:4] == [0, 9, 2, 2] and (both.labels[4:] == -1).all()
    assert np.array_equal(both.images[4:].numpy(), imgs["unlabeled"])
    # the in-memory loader can gather batches out of the memory map
    loader = InMemoryLoader(unl, batch_size=2, shuffle=False, drop_last=False, num_replicas=1, rank=0)
    x, _ = next(iter(loader))
    assert np.array_equal(x.numpy(), imgs["unlabeled"][:2])


# ------------------------------------------------------------------------------------------------------ Image


def _write_png(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(path)


def _write_folder(root: Path, per_class: dict[str, int], side: int = 8) -> dict[str, np.ndarray]:
    written = {}
    k = 0
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        # create files out of name order: the subset must sort by name, not by creation
        for i in reversed(range(n)):
            img = _rng_images((3, side, side), 100 + k)
            k += 1
            path = root / cls / f"img_{i:03d}.png"
            _write_png(img, path)
            written[str(path)] = img
    return written


def test_imagefolder_roundtrip_and_first_k(tmp_path: Path) -> None:
    written = _write_folder(tmp_path / "train", {"ant": 5, "bee": 3, "cat": 4})
    _write_folder(tmp_path / "val", {"ant": 1, "bee": 1, "cat": 1})
    data = load_dataset("imagefolder", "trainval", data_dir=tmp_path, resize=8)
    assert not data.in_memory and data.num_classes == 3 and data.classes == ["ant", "bee", "cat"]
    assert len(data) == 12 and data.image_size == 8
    folder = data.dataset
    for i in range(len(folder)):
        x, y = folder[i]
        path, target = folder.samples[i]
        assert x.dtype == torch.uint8 and x.shape == (3, 8, 8)
        assert np.array_equal(x.numpy(), written[path]) and y == target == data.labels[i]
    sub = first_k_per_class(folder.folder, 2)
    names = [(Path(folder.samples[i][0]).parent.name, Path(folder.samples[i][0]).name) for i in sub.indices]
    assert names == [(c, f"img_{i:03d}.png") for c in ("ant", "bee", "cat") for i in range(2)]
    assert sub.targets == [0, 0, 1, 1, 2, 2]
    limited = load_dataset(f"imagefolder:{tmp_path}", "trainval", resize=8, per_class=2)
    assert limited.labels.tolist() == [0, 0, 1, 1, 2, 2]
    test = load_dataset("imagefolder", "test", data_dir=tmp_path, resize=8)
    assert len(test) == 3
    # a bare class-folder root (no train/ sub-folder) works for the training splits
    bare = load_dataset("imagefolder", "trainval", data_dir=tmp_path / "train", resize=8)
    assert len(bare) == 12


def test_imagefolder_resizes_to_fixed_size(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _write_png(_rng_images((3, 20, 30)), tmp_path / "a" / "x.png")
    (tmp_path / "b").mkdir()
    _write_png(_rng_images((1, 12, 9)), tmp_path / "b" / "y.png")  # grayscale file
    data = load_dataset("imagefolder", "trainval", data_dir=tmp_path, resize=16)
    for i in range(2):
        x, _ = data.dataset[i]
        assert x.shape == (3, 16, 16) and x.dtype == torch.uint8


# ------------------------------------------------------------------------------------------------------ split


def test_val_split_disjoint_deterministic_stratified(tmp_path: Path) -> None:
    _mnist_dir(tmp_path, n_train=200)
    kw = {"data_dir": tmp_path, "val_fraction": 0.2, "split_seed": 7}
    train, val = load_dataset("mnist", "train", **kw), load_dataset("mnist", "val", **kw)
    full = load_dataset("mnist", "trainval", data_dir=tmp_path)
    ti, vi = set(train.indices.tolist()), set(val.indices.tolist())
    assert not ti & vi and ti | vi == set(range(200))
    assert len(vi) == 40 and torch.equal(torch.bincount(val.labels), torch.full((10,), 4))
    assert torch.equal(val.images, full.images[val.indices]) and torch.equal(val.labels, full.labels[val.indices])
    again = load_dataset("mnist", "val", **kw)
    assert torch.equal(again.indices, val.indices)
    other = load_dataset("mnist", "val", data_dir=tmp_path, val_fraction=0.2, split_seed=8)
    assert not torch.equal(other.indices, val.indices)
    everything = load_dataset("mnist", "train", data_dir=tmp_path, val_fraction=0.0)
    assert len(everything) == 200
    few = load_dataset("mnist", "train", data_dir=tmp_path, per_class=3, val_fraction=0.0, limit=25)
    assert len(few) == 25 and torch.bincount(few.labels).max() <= 3


def test_stratified_split_keeps_unlabeled() -> None:
    labels = torch.tensor([0, 0, 1, 1, -1, -1, 0, 0])  # 4 zeros -> 2 held out, 2 ones -> 1
    kept, held = stratified_split(labels, 0.5, 0)
    assert set(held.tolist()).isdisjoint({4, 5}) and len(held) == 3
    assert sorted(kept.tolist() + held.tolist()) == list(range(8))
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(labels, 1.0, 0)


# ------------------------------------------------------------------------------------------------------ sampl


@pytest.mark.parametrize("world,n,batch,drop", [(1, 23, 5, True), (3, 23, 4, False), (2, 40, 7, True)])
def test_index_batch_sampler_matches_distributed_sampler(world: int, n: int, batch: int, drop: bool) -> None:
    from torch.utils.data import DistributedSampler

    for epoch in (0, 3):
        for rank in range(world):
            s = IndexBatchSampler(n, batch, shuffle=True, seed=11, drop_last=drop, num_replicas=world, rank=rank)
            s.set_epoch(epoch)
            batches = list(s)
            assert len(batches) == len(s)
            assert all(len(b) == batch for b in batches[:-1])
            ref = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=11, drop_last=drop)
            ref.set_epoch(epoch)
            ref_idx = list(ref)
            flat = torch.cat(batches).tolist()
            if drop:
                assert flat == ref_idx[: len(flat)] and len(ref_idx) - len(flat) < batch
            else:
                assert flat == ref_idx


def test_in_memory_loader_batches() -> None:
    images = torch.arange(10 * 2 * 2, dtype=torch.int64).remainder(256).to(torch.uint8).view(10, 1, 2, 2)
    labels = torch.arange(10)
    ds = D.TensorImageDataset(images, labels)
    loader = InMemoryLoader(ds, 3, shuffle=True, seed=0, drop_last=False, num_replicas=1, rank=0)
    loader.set_epoch(1)
    seen = []
    for x, y in loader:
        assert torch.equal(x, images[y])
        seen.extend(y.tolist())
    assert sorted(seen) == list(range(10)) and len(loader) == 4
    loader.set_epoch(1)
    assert [y.tolist() for _, y in loader] == [y.tolist() for _, y in loader]
    resident = InMemoryLoader(ds, 4, shuffle=False, resident=True, device="cpu", num_replicas=1, rank=0)
    assert [y.tolist() for _, y in resident] == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("channels", [1, 3])
def test_normalize_images_per_channel(channels) -> None:
    rng = np.random.default_rng(3)
    x = rng.random((4, channels, 5, 5)).astype(np.float32)
    mean = tuple(rng.random(channels).tolist())
    std = tuple((0.1 + rng.random(channels)).tolist())
    ref = (x - np.array(mean, dtype=np.float32)[None, :, None, None]) / np.array(std, dtype=np.float32)[
        None, :, None, None
    ]
    out = D.normalize_images(torch.from_numpy(x), mean, std)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
    # one value serves every channel
    shared = D.normalize_images(torch.from_numpy(x), (0.25,), (0.5,))
    np.testing.assert_allclose(shared.numpy(), (x - 0.25) / 0.5, rtol=1e-6, atol=1e-6)


def test_sampler_skips_the_batches_a_checkpoint_trained_on() -> None:
    """set_epoch(e, skip=k) continues epoch e at batch k: the same batches as the rest of a full pass."""
    for world, rank in ((1, 0), (2, 1)):
        sampler = IndexBatchSampler(103, 8, seed=3, num_replicas=world, rank=rank)
        sampler.set_epoch(4)
        full = [b.tolist() for b in sampler]
        for k in (0, 1, len(full) - 1, len(full)):
            sampler.set_epoch(4, skip=k)
            assert [b.tolist() for b in sampler] == full[k:]
        assert [b.tolist() for b in sampler] == full  # the skip applies to one pass only
    with pytest.raises(ValueError, match="skip"):
        sampler.set_epoch(0, skip=len(full) + 1)
