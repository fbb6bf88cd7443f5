"""Data sets behind one shape: waveforms with captions or labels (no heavy imports here).

- ``items``: ``AudioItem`` / ``LoadReport``, what every loader returns;
- ``esc50``, ``us8k``, ``clotho``, ``audiocaps``, ``manifest``: one loader per on-disk layout;
- ``registry``: ``load_dataset(name, root, ...)`` and ``DATASET_NAMES``;
- ``labels``: ``--labels esc50|esc10|us8k|FILE`` and prompt templates;
- ``loading`` (torch): ``ClipDataset`` / ``collate_clips`` for DataLoaders;
- ``contamination`` (torch): out-of-domain mixtures (docs/method.md §6);
- ``synthetic``: the synthetic sound world with ground-truth masks.

Import the torch modules explicitly (``from lmaczs_cli.data.loading import ClipDataset``).
"""
