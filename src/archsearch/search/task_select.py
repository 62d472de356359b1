"""Which task a search runs (search/tasks.py): language modelling for a token stream, image classification
for every other dataset; and the checks that the space and the settings suit it."""

from __future__ import annotations

import torch

from archsearch.data.datasets import TEXT_DATASETS  # token streams, searched by language modelling
from archsearch.errors import ConfigError
from archsearch.search.tasks import ImageClassification, SearchTask

#: spaces of recurrent cells, searched on token streams only
TEXT_SPACES = ("darts-rnn",)


def check_task(config, explicit=()) -> None:
    """The data must suit the space, and the settings the task (one-line ConfigError)."""
    text = config.data in TEXT_DATASETS
    if text != (config.space in TEXT_SPACES):
        if text:
            raise ConfigError(f"'{config.data}' is a token stream: search it with the "
                              f"{' or '.join(TEXT_SPACES)} space, not {config.space}")
        raise ConfigError(f"the {config.space} space is searched on a token stream "
                          f"(data={' or '.join(TEXT_DATASETS)}), not on '{config.data}'")
    if not text:
        if config.task_options:
            raise ConfigError(f"task_options are for language modelling ({', '.join(TEXT_DATASETS)}); "
                              "an image search takes none")
        return
    from archsearch.search.lm_task import task_options

    task_options(config.task_options)
    refused = {"limit_train": "an image dataset's subset (a token stream takes task_options {batches: N})",
               "distributed": "image searches only", "drop_path_prob": "the image supernets' mixed edges"}
    for key, why in refused.items():
        if getattr(config, key) and (key in explicit or key != "limit_train"):
            raise ConfigError(f"'{key}' does not apply to language modelling: {why}")
    if config.hessian_every != 0 and config.hessian_order != 1:
        raise ConfigError("hessian_order must be 1 with language modelling: the unrolled Hessian's virtual step "
                          "is written for image batches")
    # what reads image batches or the image supernets' structure: proxies (selectors), P-DARTS' stages
    # (driver), DARTS+' skip counts; shared-weights ranks through the task's score, rdarts reads the
    # Hessian diagnostic, which takes the task's loss
    for key, allowed in (("selector", ("argmax", "shared-weights")), ("driver", (None,)),
                         ("early_stop", (None, "rdarts"))):
        if getattr(config, key) not in allowed:
            names = " or ".join(a or "null" for a in allowed)
            raise ConfigError(f"language modelling takes {key}={names}, not {getattr(config, key)}: "
                              "the others read image batches or the image supernets")
    if config.selector == "shared-weights" and config.selector_options.get("candidates", "uniform") == "top":
        raise ConfigError("shared-weights candidates=top enumerates the space; the darts-rnn space is too "
                          "large: use candidates=sample or uniform")


def build_task(config, dataset=None, device: torch.device | str = "cpu", quiet: bool = False) -> SearchTask:
    """The task ``config.data`` is searched with, its data read (or ``dataset``, already loaded, used)."""
    if config.data in TEXT_DATASETS:
        from archsearch.search.lm_task import LanguageModelling

        return LanguageModelling(config, dataset, device, quiet)
    return ImageClassification(config, dataset, device, quiet)
