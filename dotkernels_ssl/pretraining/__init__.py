"""The pretraining system: configuration, data, augmentations, models, optimisation, the loop and its evaluation.

It uses :mod:`dotkernels_ssl.losses` (never the other way round). One concept per module:

- :mod:`~dotkernels_ssl.pretraining.presets`, :mod:`~dotkernels_ssl.pretraining.config` — the vocabulary, the
  named presets and the typed configuration (YAML files, command-line overrides); no torch import.
- :mod:`~dotkernels_ssl.pretraining.data`, :mod:`~dotkernels_ssl.pretraining.augment` — local data sets and
  batched kornia augmentations.
- :mod:`~dotkernels_ssl.pretraining.models` — backbones, projectors and the reusable layers (``GlobalBatchNorm``).
- :mod:`~dotkernels_ssl.pretraining.optim` — LARS, parameter groups and the warm-up + cosine schedule.
- :mod:`~dotkernels_ssl.pretraining.runtime` — device, ``torchrun`` processes, mixed precision, seeding.
- :mod:`~dotkernels_ssl.pretraining.checkpoint`, :mod:`~dotkernels_ssl.pretraining.logs` — what a run writes.
- :mod:`~dotkernels_ssl.pretraining.evaluation`, :mod:`~dotkernels_ssl.pretraining.monitors` — the evaluation
  protocol on frozen features and the per-epoch collapse monitors.
- :mod:`~dotkernels_ssl.pretraining.loop` — :func:`~dotkernels_ssl.pretraining.loop.train`.
- :mod:`~dotkernels_ssl.pretraining.cli` — ``dotkernels-pretrain`` and ``dotkernels-eval``.

The package itself imports nothing, so the command line starts without loading torch.
"""
