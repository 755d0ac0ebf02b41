"""Evaluation of frozen backbones: feature extraction, weighted kNN, linear probe, logistic regression.

Protocol (docs/PAPER.md): the backbone is frozen and its features are extracted once, without augmentation, for the
training split (the official training set minus the validation split), the validation split and the test split.
Every hyper-parameter (the k of the kNN, the learning rate of the linear probe, the C of the logistic
regression) is chosen on the validation split; the test split only reports the accuracy of the chosen setting
(and, for reference, of every k of the kNN).

- :func:`extract_features`: features (and embeddings, for an :class:`~dotkernels_ssl.pretraining.models.SSLModel`) of a
  labelled split.
- :func:`knn_predict` / :func:`knn_accuracy`: weighted kNN with cosine similarity; each of the k nearest training
  samples votes for its class with weight ``exp(sim / T)`` (T = 0.07), or 1 with ``weighted=False``.
- :func:`train_linear_probe` / :func:`linear_probe`: a linear layer trained on pre-extracted features with SGD
  (momentum 0.9, cosine schedule, batch 256, weight decay 1e-6), optionally on standardised features.
- :func:`logistic_regression_probe`: scikit-learn's multinomial logistic regression (the fast variant).
- :func:`evaluate_features`: the whole protocol on pre-extracted features.
- :func:`evaluate_checkpoint`: the whole protocol for a saved checkpoint (``dotkernels-eval``).
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import load_checkpoint
from .config import Config, ConfigError, config_from_dict, set_option
from .data import ImageData, load_split, normalize_images
from .logs import progress_bar
from .models import build_model
from .runtime import autocast_dtype, resolve_device

__all__ = [
    "FeatureSet",
    "LinearProbe",
    "evaluate_checkpoint",
    "evaluate_features",
    "extract_features",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "load_eval_splits",
    "logistic_regression_probe",
    "pixel_features",
    "train_linear_probe",
    "write_json",
]

_Model = TypeVar("_Model")


# --------------------------------------------------------------------------------------------------------------
# Features


@dataclass
class FeatureSet:
    """Features of a labelled split.

    Attributes
    ----------
    features
        float32 ``(N, D)`` on the CPU.
    labels
        int64 ``(N,)``.
    embeddings
        float32 ``(N, q)`` projector outputs when the model has a projector, else None.
    """

    features: torch.Tensor
    labels: torch.Tensor
    embeddings: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _iter_batches(data: Any, batch_size: int, num_workers: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    images = getattr(data, "images", None)
    labels = data.labels
    if images is not None:
        for i in range(0, len(labels), batch_size):
            yield images[i : i + batch_size], labels[i : i + batch_size]
        return
    loader = torch.utils.data.DataLoader(
        data.dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False
    )
    for x, y in loader:
        yield x, torch.as_tensor(y)


@torch.no_grad()
def extract_features(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: int | None = None,
    channels_last: bool = False,
    amp_dtype: torch.dtype | None = None,
    num_workers: int = 0,
    progress: bool = False,
) -> FeatureSet:
    """Features of every image of a labelled split, in order, with the model in eval mode.

    Parameters
    ----------
    model
        A backbone (images to features) or an :class:`~dotkernels_ssl.pretraining.models.SSLModel` (images to
        ``(features, embeddings)``; both are returned). Its training mode is restored afterwards.
    data
        An :class:`~dotkernels_ssl.pretraining.data.ImageData` (in memory or file-backed) or any object with
        ``labels`` and ``images`` (uint8 ``(N, C, H, W)``) or ``dataset``.
    batch_size
        Images per forward pass.
    device
        Where the model runs (default: the model's device).
    mean, std
        Normalisation statistics (default: the data's ``mean``/``std``).
    size
        Resize the images to ``size x size`` first (bilinear, antialiased) when they differ.
    channels_last
        Feed channels-last tensors.
    amp_dtype
        Autocast dtype (bfloat16/float16) or None for full precision.
    num_workers
        DataLoader workers for file-backed data.
    progress
        Show a progress bar over the batches.

    Returns
    -------
    FeatureSet
    """
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    device = torch.device(device)
    mean = tuple(getattr(data, "mean", None) or (0.0,)) if mean is None else tuple(mean)
    std = tuple(getattr(data, "std", None) or (1.0,)) if std is None else tuple(std)
    was_training = model.training
    model.eval()
    feats: list[torch.Tensor] = []
    embs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    bar = progress_bar(math.ceil(len(data.labels) / batch_size), "features", progress)
    try:
        for x, y in _iter_batches(data, batch_size, num_workers):
            x = x.to(device, non_blocking=True)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            x = normalize_images(x, mean, std)
            if size is not None and tuple(x.shape[-2:]) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if amp_dtype is not None:
                with torch.autocast(device_type=device.type, dtype=amp_dtype):
                    out = model(x)
            else:
                out = model(x)
            if isinstance(out, (tuple, list)):
                feats.append(out[0].float().cpu())
                embs.append(out[1].float().cpu())
            else:
                feats.append(out.float().cpu())
            labels.append(torch.as_tensor(y).cpu())
            if bar is not None:
                bar.update(1)
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    if not feats:
        raise ValueError("the split is empty: no features to extract")
    return FeatureSet(torch.cat(feats), torch.cat(labels).long(), torch.cat(embs) if embs else None)


def pixel_features(data: Any, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> FeatureSet:
    """Raw pixels as features: the normalised images, flattened (the kNN baseline on raw pixels)."""
    images = data.images
    if images is None:
        raise ValueError("pixel features need an in-memory data set")
    mean = tuple(data.mean) if mean is None else tuple(mean)
    std = tuple(data.std) if std is None else tuple(std)
    x = normalize_images(images.float() / 255.0, mean, std)
    return FeatureSet(x.flatten(1), data.labels.clone())


# --------------------------------------------------------------------------------------------------------------
# kNN


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    k: int | Sequence[int] = 20,
    *,
    temperature: float = 0.07,
    weighted: bool = True,
    num_classes: int | None = None,
    chunk: int = 1024,
    exclude_self: bool = False,
    on_chunk: Callable[[int], Any] | None = None,
) -> torch.Tensor | dict[int, torch.Tensor]:
    r"""Weighted k-nearest-neighbour classification with cosine similarity.

    Each query's ``k`` most similar training samples (cosine similarity ``s``) vote for their class with weight
    :math:`\exp(s / T)` (``weighted=True``, the InstDisc/DINO/solo-learn kNN) or 1 (a majority vote); the class
    with the largest total wins (ties: the smallest label).

    Parameters
    ----------
    train_features, train_labels
        The bank: ``(N, D)`` features and int labels ``(N,)`` (labels < 0 are ignored).
    query_features
        ``(M, D)`` features to classify.
    k
        Number of neighbours, or several (one prediction tensor per k, sharing one top-k search).
    temperature
        T of the weights.
    weighted
        Exponential similarity weights (True) or uniform votes (False).
    num_classes
        Number of classes (default ``max(label) + 1``).
    chunk
        Queries per block (memory ``chunk * N``).
    exclude_self
        The queries are the bank itself: skip each query's own entry.
    on_chunk
        Called with the number of queries of each block once it is classified (a progress bar's ``update``).

    Returns
    -------
    Tensor or dict
        int64 predictions ``(M,)``, or ``{k: predictions}`` when ``k`` is a sequence.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    ks = [int(k)] if isinstance(k, (int, np.integer)) else [int(v) for v in k]
    if not ks or min(ks) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    votes = _knn_votes(
        train_features,
        train_labels,
        query_features,
        ks,
        (float(temperature),),
        weighted=weighted,
        num_classes=num_classes,
        chunk=chunk,
        exclude_self=exclude_self,
        on_chunk=on_chunk,
    )
    preds = {kk: votes[float(temperature), kk] for kk in ks}
    return preds[ks[0]] if isinstance(k, (int, np.integer)) else preds


@torch.no_grad()
def _knn_votes(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    ks: Sequence[int],
    temperatures: Sequence[float],
    *,
    weighted: bool = True,
    num_classes: int | None = None,
    chunk: int = 1024,
    exclude_self: bool = False,
    on_chunk: Callable[[int], Any] | None = None,
) -> dict[tuple[float, int], torch.Tensor]:
    """Predictions ``{(T, k): (M,) int64}`` for every temperature and k, from one top-k search per block."""
    if not temperatures:
        raise ValueError("temperatures must hold at least one value")
    if any(not (math.isfinite(t) and t > 0) for t in temperatures):
        raise ValueError(f"every temperature must be finite and > 0, got {list(temperatures)}")
    if not ks or min(ks) < 1:
        raise ValueError(f"k must be >= 1, got {list(ks)}")
    keep = train_labels >= 0
    bank = F.normalize(train_features[keep].float(), dim=1)
    bank_labels = train_labels[keep].long().to(bank.device)
    if bank.shape[0] == 0:
        raise ValueError("the kNN bank has no labelled sample")
    if num_classes is None:
        num_classes = int(bank_labels.max()) + 1
    kmax = min(max(ks), bank.shape[0] - int(exclude_self))
    queries = F.normalize(query_features.float().to(bank.device), dim=1)
    out: dict[tuple[float, int], list[torch.Tensor]] = {(t, kk): [] for t in temperatures for kk in ks}
    for i in range(0, queries.shape[0], chunk):
        sim = queries[i : i + chunk] @ bank.T
        if exclude_self:
            rows = torch.arange(sim.shape[0], device=sim.device)
            sim[rows, rows + i] = -math.inf
        top_sim, top_idx = sim.topk(kmax, dim=1)
        top_lab = bank_labels[top_idx]
        for t in temperatures:
            # relative to each query's nearest neighbour (the same votes up to a factor per row): with small T,
            # exp((s - 1) / T) underflows to 0 for every neighbour of a far query and the vote went to class 0
            w = torch.exp((top_sim - top_sim[:, :1]) / t) if weighted else torch.ones_like(top_sim)
            for kk in ks:
                kk_ = min(kk, kmax)
                votes = torch.zeros(sim.shape[0], num_classes, dtype=w.dtype, device=w.device)
                votes.scatter_add_(1, top_lab[:, :kk_], w[:, :kk_])
                out[t, kk].append(votes.argmax(dim=1))
        if on_chunk is not None:
            on_chunk(sim.shape[0])
    return {key: torch.cat(v).cpu() for key, v in out.items()}


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    query_labels: torch.Tensor,
    k: int | Sequence[int] = 20,
    **kwargs: Any,
) -> float | dict[int, float]:
    """Accuracy (fraction in [0, 1]) of :func:`knn_predict`; a dict ``{k: accuracy}`` when ``k`` is a sequence."""
    preds = knn_predict(train_features, train_labels, query_features, k, **kwargs)
    y = query_labels.cpu().long()
    if isinstance(preds, dict):
        return {kk: float((p == y).float().mean()) for kk, p in preds.items()}
    return float((preds == y).float().mean())


# --------------------------------------------------------------------------------------------------------------
# Linear probe


class LinearProbe(nn.Module):
    """A linear classifier on frozen features, with a fixed standardisation (a frozen BatchNorm without affine).

    Parameters
    ----------
    in_dim, num_classes
        Feature dimension and number of classes.
    mean, std
        Standardisation statistics (None: identity).
    """

    def __init__(
        self, in_dim: int, num_classes: int, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(in_dim) if std is None else std.float().clone())
        self.linear = nn.Linear(in_dim, num_classes)
        nn.init.zeros_(self.linear.bias)
        nn.init.normal_(self.linear.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of features ``(N, in_dim)``."""
        return self.linear((x - self.mean) / self.std)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch: int = 8192) -> float:
        """Top-1 accuracy on ``(x, y)``."""
        dev = self.linear.weight.device
        correct = 0
        for i in range(0, x.shape[0], batch):
            correct += int((self(x[i : i + batch].to(dev)).argmax(1).cpu() == y[i : i + batch].cpu()).sum())
        return correct / max(1, x.shape[0])


def train_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    *,
    epochs: int = 100,
    lr: float = 0.4,
    batch_size: int = 256,
    weight_decay: float = 1e-6,
    momentum: float = 0.9,
    standardize: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> LinearProbe:
    """Train a linear classifier on pre-extracted features (the paper's protocol).

    SGD with momentum, weight decay, a cosine learning-rate schedule over all steps, cross-entropy, shuffled
    mini-batches (a private generator seeded with ``seed``: the global RNG is untouched). The features are
    standardised once, before the steps (the same values as standardising each mini-batch), and on a CPU the steps
    run on one torch thread (their products are too small to gain from more; restored afterwards).

    Parameters
    ----------
    features, labels
        ``(N, D)`` float features, int labels ``(N,)``.
    num_classes
        Default ``max(label) + 1``.
    epochs, lr, batch_size, weight_decay, momentum
        The optimisation settings.
    standardize
        Standardise features with the training mean and standard deviation (stored in the probe).
    seed
        Seed of the initialisation and the shuffling.
    device
        Where to train (default: the features' device).

    Returns
    -------
    LinearProbe
        The trained probe (in eval mode).

    See Also
    --------
    linear_probe : The learning rate chosen on a validation split.
    logistic_regression_probe : The same model fitted to its optimum by lbfgs.

    Examples
    --------
    >>> import torch
    >>> x = torch.cat([torch.randn(50, 4) + 3.0, torch.randn(50, 4) - 3.0])
    >>> y = torch.arange(2).repeat_interleave(50)
    >>> probe = train_linear_probe(x, y, epochs=5, lr=0.1, batch_size=20)
    >>> probe.accuracy(x, y)
    1.0
    """
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise ValueError("need epochs >= 1, lr > 0, batch_size >= 1")
    device = torch.device(device) if device is not None else features.device
    x, y, mean, std = _probe_inputs(features, labels, standardize, device)
    if num_classes is None:
        num_classes = int(y.max()) + 1
    return _fit_probe(
        x, y, mean, std, num_classes, epochs, lr, batch_size, weight_decay=weight_decay, momentum=momentum, seed=seed
    )


def _probe_inputs(
    features: torch.Tensor, labels: torch.Tensor, standardize: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(standardised features, labels, mean, std) on ``device``; mean and std are None without ``standardize``."""
    x = features.float().to(device)
    y = labels.long().to(device)
    if not standardize:
        return x, y, None, None
    mean = x.mean(dim=0)
    std = x.std(dim=0).clamp_min(1e-6) if x.shape[0] > 1 else torch.ones_like(mean)
    return (x - mean) / std, y, mean, std


@contextlib.contextmanager
def _one_thread(device: torch.device) -> Iterator[None]:
    """One intra-op torch thread on a CPU (restored at the end); nothing changes on other devices."""
    before = torch.get_num_threads()
    if device.type != "cpu" or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_probe(
    xs: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor | None,
    std: torch.Tensor | None,
    num_classes: int,
    epochs: int,
    lr: float,
    batch_size: int,
    *,
    weight_decay: float,
    momentum: float,
    seed: int,
) -> LinearProbe:
    """The SGD of :func:`train_linear_probe` on standardised features ``xs``; the probe standardises new inputs."""
    device = xs.device
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        probe = LinearProbe(xs.shape[1], num_classes, mean, std).to(device)
    linear = probe.linear  # the steps see features already standardised
    opt = torch.optim.SGD(linear.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n = xs.shape[0]
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total = epochs * steps_per_epoch
    step = 0
    probe.train()
    with _one_thread(device):
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g).to(device)
            for b in range(steps_per_epoch):
                idx = perm[b * batch_size : (b + 1) * batch_size]
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
                loss = F.cross_entropy(linear(xs.index_select(0, idx)), y.index_select(0, idx))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
    probe.eval()
    return probe


def _select_on_val(
    values: Sequence[float], fit: Callable[[float], _Model], val_accuracy: Callable[[_Model], float]
) -> tuple[dict[str, float], float, float, _Model]:
    """Fit a model for each hyper-parameter value and keep the best on validation (the first one on ties).

    Returns ``({str(value): val accuracy}, best value, its val accuracy, its model)``.
    """
    results: dict[float, float] = {}
    best: tuple[float, float, _Model] | None = None
    for value in values:
        model = fit(float(value))
        acc = val_accuracy(model)
        results[float(value)] = acc
        if best is None or acc > best[1]:
            best = (float(value), acc, model)
    assert best is not None
    return {str(k): v for k, v in results.items()}, *best


def linear_probe(
    train: FeatureSet,
    val: FeatureSet,
    test: FeatureSet | None = None,
    *,
    lrs: Sequence[float] = (0.4,),
    epochs: int = 100,
    batch_size: int = 256,
    weight_decay: float = 1e-6,
    momentum: float = 0.9,
    standardize: bool = True,
    refit: bool = False,
    num_classes: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Linear probe with the learning rate chosen on the validation split; test accuracy of the chosen one.

    With ``refit`` (and ``test``), a second probe is then trained at the chosen learning rate on ``train`` and
    ``val`` together (its own standardisation statistics, the same seed): the usual last step once the
    hyper-parameters are fixed, so that the reported probe has seen every labelled training image.

    Returns
    -------
    dict
        ``val`` ({lr: accuracy}), ``best_lr``, ``val_acc``, ``train_acc``, ``test_acc`` (None without test),
        ``test_acc_refit_trainval`` (None without ``refit`` or ``test``), and the settings.
    """
    if num_classes is None:
        num_classes = int(max(train.labels.max(), val.labels.max())) + 1
    # The settings shared by every learning rate, as trained and as reported.
    settings = {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "weight_decay": float(weight_decay),
        "momentum": float(momentum),
        "standardize": bool(standardize),
        "refit": bool(refit),
    }

    dev = torch.device(device) if device is not None else train.features.device
    train_inputs = _probe_inputs(train.features, train.labels, standardize, dev)  # once for every rate
    if epochs < 1 or batch_size < 1 or any(lr <= 0 for lr in lrs):
        raise ValueError("need epochs >= 1, lr > 0, batch_size >= 1")

    def fit(lr: float, inputs: tuple[Any, ...] = train_inputs) -> LinearProbe:
        return _fit_probe(
            *inputs,
            num_classes,
            epochs,
            lr,
            batch_size,
            weight_decay=weight_decay,
            momentum=momentum,
            seed=seed,
        )

    results, lr, acc, probe = _select_on_val(lrs, fit, lambda p: p.accuracy(val.features, val.labels))
    refit_acc = None
    if refit and test is not None:
        both = _probe_inputs(
            torch.cat([train.features, val.features]), torch.cat([train.labels, val.labels]), standardize, dev
        )
        refit_acc = fit(lr, both).accuracy(test.features, test.labels)
    return {
        "val": results,
        "best_lr": lr,
        "val_acc": acc,
        "train_acc": probe.accuracy(train.features, train.labels),
        "test_acc": probe.accuracy(test.features, test.labels) if test is not None else None,
        "test_acc_refit_trainval": refit_acc,
        **settings,
    }


def logistic_regression_probe(
    train: FeatureSet,
    val: FeatureSet,
    test: FeatureSet | None = None,
    *,
    cs: Sequence[float] = (0.1, 1.0, 10.0),
    max_iter: int = 1000,
    progress: bool = False,
) -> dict[str, Any]:
    """Multinomial logistic regression (scikit-learn, lbfgs) on standardised features, C chosen on val.

    The features are standardised with the training statistics; the values of C are fitted in increasing order,
    each fit starting from the previous solution (a warm start: the optimum is the same, it is reached in fewer
    iterations), until lbfgs converges (scikit-learn's tolerance) or ``max_iter`` iterations.

    Parameters
    ----------
    train, val, test
        Features and labels; C is chosen on ``val``, ``test`` (optional) reports the chosen fit.
    cs
        The values of C (inverse regularisation strength) tried.
    max_iter
        Iteration limit of each lbfgs fit.
    progress
        Show a progress bar over the values of C.

    Returns
    -------
    dict
        ``val`` ({C: accuracy}), ``best_c``, ``val_acc``, ``train_acc``, ``test_acc`` (None without test),
        ``n_iter`` (lbfgs iterations of each fit, in the order of ``cs`` sorted), ``max_iter`` and ``converged``
        (every fit stopped before ``max_iter``).
    """
    import copy
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train.features.float().numpy())
    xtr, ytr = scaler.transform(train.features.float().numpy()), train.labels.numpy()
    xva, yva = scaler.transform(val.features.float().numpy()), val.labels.numpy()
    clf = LogisticRegression(max_iter=max_iter, warm_start=True)
    iters: list[int] = []
    bar = progress_bar(len(cs), "logistic regression", progress)

    def fit(c: float) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.set_params(C=c).fit(xtr, ytr)
        iters.append(int(max(clf.n_iter_)))
        if bar is not None:
            bar.set_postfix({"C": c, "iterations": iters[-1]})
            bar.update(1)
        return copy.deepcopy(clf)

    try:
        results, c, acc, best = _select_on_val(sorted(cs), fit, lambda m: float(m.score(xva, yva)))
    finally:
        if bar is not None:
            bar.close()
    xte = scaler.transform(test.features.float().numpy()) if test is not None else None
    return {
        "val": results,
        "best_c": c,
        "val_acc": acc,
        "n_iter": iters,
        "max_iter": int(max_iter),
        "converged": all(n < max_iter for n in iters),
        "train_acc": float(best.score(xtr, ytr)),
        "test_acc": float(best.score(xte, test.labels.numpy())) if test is not None else None,
    }


# --------------------------------------------------------------------------------------------------------------
# Protocol


def evaluate_features(
    train: FeatureSet,
    val: FeatureSet,
    test: FeatureSet | None = None,
    *,
    knn_k: Sequence[int] = (10, 20, 100, 200),
    knn_temperatures: float | Sequence[float] = (0.07,),
    linear: bool = True,
    linear_epochs: int = 100,
    linear_lrs: Sequence[float] = (0.4,),
    linear_batch_size: int = 256,
    linear_weight_decay: float = 1e-6,
    linear_momentum: float = 0.9,
    linear_standardize: bool = True,
    linear_refit: bool = True,
    logreg: bool = True,
    logreg_cs: Sequence[float] = (0.1, 1.0, 10.0),
    logreg_max_iter: int = 1000,
    num_classes: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: Callable[[str], None] | None = None,
    show_bars: bool = True,
) -> dict[str, Any]:
    """The evaluation protocol on pre-extracted features: kNN, linear probe, logistic regression.

    Hyper-parameters are chosen on ``val``; ``test`` (optional) reports the chosen settings (and every k at the
    chosen temperature).
    ``progress`` receives one line as each part starts and ends (and when lbfgs did not converge); with it and
    ``show_bars``, the kNN searches and the logistic regression also show progress bars.

    Returns
    -------
    dict
        ``knn`` (see :func:`knn_protocol`: k and T chosen on ``val``, test accuracies with the training split and
        with train + val as the bank), ``linear`` (see :func:`linear_probe`; ``linear_refit`` adds the test
        accuracy of the probe refitted on train + val) and ``logreg`` (see :func:`logistic_regression_probe`)
        when enabled; ``n_train``, ``n_val``, ``n_test``, ``feature_dim``, and the seconds each part took.
    """
    if num_classes is None:
        labs = [train.labels.max(), val.labels.max()] + ([test.labels.max()] if test is not None else [])
        num_classes = int(max(int(v) for v in labs)) + 1
    out: dict[str, Any] = {
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test) if test is not None else 0,
        "feature_dim": int(train.features.shape[1]),
    }
    say = progress if progress is not None else (lambda msg: None)
    bars = progress is not None and show_bars
    t0 = time.perf_counter()
    knn = knn_protocol(
        train, val, test, ks=knn_k, temperatures=knn_temperatures, num_classes=num_classes, progress=bars
    )
    say(
        f"kNN: k = {knn['best_k']}, T = {knn['temperature']} chosen on the validation split "
        f"({100 * knn['val_acc']:.2f}%)"
    )
    out["knn"] = knn
    out["knn_seconds"] = time.perf_counter() - t0
    if linear:
        t0 = time.perf_counter()
        say(f"linear probe: {linear_epochs} epochs for each of lr {', '.join(str(v) for v in linear_lrs)}")
        out["linear"] = linear_probe(
            train,
            val,
            test,
            lrs=linear_lrs,
            epochs=linear_epochs,
            batch_size=linear_batch_size,
            weight_decay=linear_weight_decay,
            momentum=linear_momentum,
            standardize=linear_standardize,
            refit=linear_refit,
            num_classes=num_classes,
            seed=seed,
            device=device,
        )
        out["linear_seconds"] = time.perf_counter() - t0
        say(f"linear probe: lr {out['linear']['best_lr']} chosen ({out['linear_seconds']:.0f} s)")
    if logreg:
        t0 = time.perf_counter()
        say(f"logistic regression: C in {', '.join(str(v) for v in logreg_cs)}")
        out["logreg"] = lr = logistic_regression_probe(
            train, val, test, cs=logreg_cs, max_iter=logreg_max_iter, progress=bars
        )
        out["logreg_seconds"] = time.perf_counter() - t0
        if not lr["converged"]:
            say(
                f"logistic regression: lbfgs stopped at max_iter = {logreg_max_iter} before converging "
                f"(iterations {lr['n_iter']}); the accuracy is that of a partly fitted model: raise "
                "--eval.logreg_max_iter for the optimum"
            )
        say(f"logistic regression: C {lr['best_c']} chosen ({out['logreg_seconds']:.0f} s)")
    return out


def knn_protocol(
    train: FeatureSet,
    val: FeatureSet,
    test: FeatureSet | None = None,
    *,
    ks: Sequence[int] = (10, 20, 100, 200),
    temperatures: float | Sequence[float] = (0.07,),
    num_classes: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Weighted kNN with k and T chosen on ``val``; on ``test`` every k, then the bank enlarged by ``val``.

    Every pair (T, k) is scored on the validation split from one top-k search; the best pair is kept (ties: the
    first temperature listed, then the smallest k). The test split is classified with the chosen T at every k.

    Parameters
    ----------
    train, val, test
        The bank, the queries k and T are chosen on, and the queries reported (optional).
    ks
        The values of k.
    temperatures
        The temperatures T of the votes ``exp(sim / T)`` (one value: no choice).
    num_classes
        Number of classes (default: from the labels).
    progress
        Show a bar over the queries of the three searches.

    Returns
    -------
    dict
        ``temperature`` (the chosen T), ``temperatures`` (those tried), ``val_by_temperature`` ({T: {k: acc}}),
        ``val`` and ``test`` ({k: acc} at the chosen T), ``best_k``, ``val_acc``, ``test_acc`` (at ``best_k``),
        ``test_bank_trainval`` and ``test_acc_bank_trainval`` (the bank is ``train`` and ``val`` together once
        k and T are chosen).
    """
    ks = sorted({int(k) for k in ks})
    scalar = isinstance(temperatures, numbers.Real) or (hasattr(temperatures, "ndim") and temperatures.ndim == 0)
    temps = [float(temperatures)] if scalar else [float(t) for t in temperatures]
    temps = list(dict.fromkeys(temps))
    total = len(val) + (2 * len(test) if test is not None else 0)
    bar = progress_bar(total, "kNN", progress)
    kw: dict[str, Any] = {"num_classes": num_classes}
    if bar is not None:
        kw["on_chunk"] = bar.update
    try:
        return _knn_searches(train, val, test, ks, temps, kw)
    finally:
        if bar is not None:
            bar.close()


def _knn_accuracies(
    bank: FeatureSet, queries: FeatureSet, ks: list[int], temps: list[float], kw: dict[str, Any]
) -> dict[tuple[float, int], float]:
    preds = _knn_votes(bank.features, bank.labels, queries.features, ks, temps, **kw)
    y = queries.labels.cpu().long()
    return {key: float((p == y).float().mean()) for key, p in preds.items()}


def _knn_searches(
    train: FeatureSet, val: FeatureSet, test: FeatureSet | None, ks: list[int], temps: list[float], kw: dict[str, Any]
) -> dict[str, Any]:
    val_acc = _knn_accuracies(train, val, ks, temps, kw)
    # first temperature listed, then the smallest k, on ties
    order = {key: i for i, key in enumerate((t, k) for t in temps for k in ks)}
    best_t, best_k = max(val_acc, key=lambda key: (val_acc[key], -order[key]))
    knn: dict[str, Any] = {
        "temperature": best_t,
        "temperatures": temps,
        "val_by_temperature": {str(t): {str(k): val_acc[t, k] for k in ks} for t in temps},
        "val": {str(k): val_acc[best_t, k] for k in ks},
        "best_k": best_k,
        "val_acc": val_acc[best_t, best_k],
    }
    if test is not None:
        test_acc = _knn_accuracies(train, test, ks, [best_t], kw)
        knn["test"] = {str(k): test_acc[best_t, k] for k in ks}
        knn["test_acc"] = test_acc[best_t, best_k]
        # Once k and T are chosen, the validation images join the bank (the usual protocol: the bank is the whole
        # labelled training set, as for the raw-pixel reference).
        bank = FeatureSet(torch.cat([train.features, val.features]), torch.cat([train.labels, val.labels]))
        full_acc = _knn_accuracies(bank, test, ks, [best_t], kw)
        knn["test_bank_trainval"] = {str(k): full_acc[best_t, k] for k in ks}
        knn["test_acc_bank_trainval"] = full_acc[best_t, best_k]
    return knn


def _eval_kwargs(ecfg: Any) -> dict[str, Any]:
    return {
        "knn_k": tuple(ecfg.knn_k),
        "knn_temperatures": tuple(ecfg.knn_temperatures),
        "linear": ecfg.linear,
        "linear_epochs": ecfg.linear_epochs,
        "linear_lrs": tuple(ecfg.linear_lrs),
        "linear_batch_size": ecfg.linear_batch_size,
        "linear_weight_decay": ecfg.linear_weight_decay,
        "linear_momentum": ecfg.linear_momentum,
        "linear_standardize": ecfg.linear_standardize,
        "linear_refit": ecfg.linear_refit,
        "logreg": ecfg.logreg,
        "logreg_cs": tuple(ecfg.logreg_cs),
        "logreg_max_iter": ecfg.logreg_max_iter,
    }


def load_eval_splits(cfg: Config) -> dict[str, ImageData]:
    """The labelled ``train``, ``val`` and ``test`` splits of a configuration's data set (``data.eval_limit``)."""
    return {split: load_split(cfg, split, cfg.data.eval_limit) for split in ("train", "val", "test")}


def evaluate_model(
    model: nn.Module,
    cfg: Any,
    *,
    device: torch.device | str | None = None,
    splits: dict[str, Any] | None = None,
    amp_dtype: torch.dtype | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Extract the backbone features of a model on the train/val/test splits of ``cfg`` and evaluate them.

    Parameters
    ----------
    model
        The backbone, or an SSLModel (its backbone is used).
    cfg
        A :class:`~dotkernels_ssl.pretraining.config.Config`: its data section gives the splits and the crop
        size, its eval section the protocol's settings.
    device
        Where to extract (default: the model's device).
    splits
        Pre-loaded splits (default: :func:`load_eval_splits`).
    amp_dtype
        Autocast dtype of the extraction.
    progress
        Receives one line per step of the protocol (features of each split, kNN, probes); with it, the feature
        extraction also shows a progress bar (unless ``run.quiet``).
    """
    backbone = getattr(model, "backbone", model)
    splits = load_eval_splits(cfg) if splits is None else splits
    if len(splits["val"]) == 0:
        raise ConfigError("the evaluation chooses its hyper-parameters on a validation split: data.val_fraction > 0")
    size = cfg.data.crop_size
    feats = {}
    t0 = time.perf_counter()
    for name, data in splits.items():
        if progress is not None:
            progress(f"evaluation: features of the {name} split ({len(data)} images)")
        feats[name] = extract_features(
            backbone,
            data,
            batch_size=cfg.eval.batch_size,
            device=device,
            size=size,
            channels_last=cfg.run.channels_last,
            amp_dtype=amp_dtype,
            num_workers=cfg.data.num_workers if not getattr(data, "in_memory", True) else 0,
            progress=progress is not None and not cfg.run.quiet,
        )
    extract_s = time.perf_counter() - t0
    result = evaluate_features(
        feats["train"],
        feats["val"],
        feats["test"],
        num_classes=splits["train"].num_classes,
        seed=cfg.run.seed,
        progress=progress,
        show_bars=not cfg.run.quiet,
        **_eval_kwargs(cfg.eval),
    )
    result["extract_seconds"] = extract_s
    result["dataset"] = cfg.data.dataset
    return result


def evaluate_checkpoint(
    checkpoint: str | os.PathLike | None = None,
    *,
    run: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a saved checkpoint with the protocol of its run's configuration.

    The features are extracted in the run's precision (``run.amp``, resolved on ``device``), as its final
    evaluation extracted them, so a finished run evaluates to the same accuracies again.

    Parameters
    ----------
    checkpoint
        A checkpoint file (``run/last.pt``, ``run/epoch-0010.pt``).
    run
        A run folder instead: its ``last.pt``.
    overrides
        Dotted configuration overrides applied to the stored configuration (``data.data_dir``,
        ``eval.linear_epochs``, ``data.eval_limit``...).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    out
        Write the result as JSON there too.
    progress
        Receives one line per step of the protocol (see :func:`evaluate_model`).

    Returns
    -------
    dict
        The result of :func:`evaluate_features`, plus ``checkpoint``, ``epoch``, ``method``.

    Raises
    ------
    dotkernels_ssl.pretraining.checkpoint.CheckpointError
        For a missing or corrupt checkpoint (the file is left untouched).
    """
    if (checkpoint is None) == (run is None):
        raise ValueError("pass exactly one of checkpoint and run")
    path = Path(checkpoint) if checkpoint is not None else Path(run) / "last.pt"  # type: ignore[arg-type]
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"])
    for key, value in (overrides or {}).items():
        set_option(cfg, key, value)
    dev = resolve_device(device)
    splits = load_eval_splits(cfg)
    model = build_model(
        cfg, in_channels=splits["train"].in_channels, image_size=cfg.data.crop_size or splits["train"].image_size
    )
    model.load_state_dict(state["model"])
    model.to(dev)
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # the features in the run's precision (its final evaluation's): bf16 autocast changes them in the last digits
    amp_dtype = autocast_dtype(cfg.run.amp, dev)
    result = evaluate_model(model, cfg, device=dev, splits=splits, amp_dtype=amp_dtype, progress=progress)
    result.update({"checkpoint": str(path), "epoch": int(state["epoch"]), "method": cfg.loss.method})
    if out is not None:
        write_json(result, out)
    return result


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, (Path,)):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
