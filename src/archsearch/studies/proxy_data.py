"""The images proxies score on, prepared as the zero-cost code (SamsungLabs/zero-cost-nas) prepares them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

BATCH_SIZE = 64  # Abdelfattah et al.: one batch of 64 images ("random" dataload, 1 batch)
#: proxies that read nothing but the input's shape (no dataset needed)
DATA_FREE = frozenset({"synflow", "params", "flops"})
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: the zero-cost code's normalisation (foresight/dataset.py, get_cifar_dataloaders): fixed constants, not the
#: statistics of the images at hand (the CIFAR std there is the widespread 0.2023, 0.1994, 0.2010)
ZERO_COST_NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "ImageNet16-120": (tuple(v / 255 for v in (122.68, 116.66, 104.01)), tuple(v / 255 for v in (63.22, 61.26, 65.09))),
}


def training_loader(data: str, data_dir=None, seed: int = 0, batch_size: int = BATCH_SIZE, quiet: bool = True,
                    device="cpu", augment: bool = False):
    """A shuffled loader of the training images, normalised as the zero-cost code where it names the
    dataset (else by the images' own statistics); with ``augment``, random crop (padding 4) and flip, the
    transforms of that code's training loader. Returns (loader, number of classes)."""
    from archsearch.data import BatchLoader, Subset, load_dataset
    from archsearch.data.augment import default_augment

    ds = load_dataset(data, data_dir, quiet=quiet)
    mean, std = ZERO_COST_NORMALISATION.get(data, (ds.mean, ds.std))
    loader = BatchLoader(Subset(ds.train_x, ds.train_y), batch_size, shuffle=True,
                         augment=default_augment(ds) if augment else None, mean=mean, std=std, device=device,
                         seed=seed)
    return loader, ds.num_classes


def real_batch(data: str, data_dir=None, seed: int = 0, batch_size: int = BATCH_SIZE, quiet: bool = True,
               device="cpu") -> tuple[torch.Tensor, torch.Tensor, int]:
    """One shuffled, normalised, unaugmented batch of training images and the dataset's number of classes."""
    loader, num_classes = training_loader(data, data_dir, seed, batch_size, quiet, device)
    x, y = next(iter(loader))
    return x, y, num_classes


def loader_batches(loader) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """Batch i = the first batch of pass i of ``loader``: the zero-cost code takes a new iterator of its
    shuffled training loader for every architecture (predictive.get_some_data)."""

    def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        loader.set_epoch(i)
        return next(iter(loader))

    return batch


def shape_batch(num_classes: int = 10, in_channels: int = 3, size: int = 32, device="cpu"):
    """A placeholder batch for the proxies that read only the input shape."""
    return (torch.zeros(2, in_channels, size, size, device=device), torch.zeros(2, dtype=torch.long, device=device))


def needs_data(proxies: Sequence[str]) -> bool:
    return any(p not in DATA_FREE for p in proxies)


def batch_for(proxies, data, data_dir, seed, batch_size, quiet, device):
    """(x, y, number of classes): a real batch where a proxy reads data, else a placeholder."""
    if needs_data(proxies):
        return real_batch(data, data_dir, seed, batch_size, quiet, device)
    num_classes = NUM_CLASSES.get(data, 10)
    return (*shape_batch(num_classes, device=device), num_classes)
