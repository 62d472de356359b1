"""Training a found architecture: run directory, accuracy, resume, NaN loss, recipes."""

from __future__ import annotations

import importlib
import json
import math

import pytest
import torch
import yaml

from archsearch.errors import ConfigError, NonFiniteLossError
from archsearch.evaluate import RECIPES, default_recipe, get_recipe, train
from archsearch.spaces import get_space
from archsearch.utils.checkpoint import CheckpointStore
from archsearch.utils.io import read_jsonl
from archsearch.utils.tensorboard import tensorboard_installed

from conftest import SHARED_CIFAR10, needs_shared

# a good NAS-Bench-201 cell: index 9930, 94.36% CIFAR-10 test accuracy in the benchmark
GOOD_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY = {"C": 8, "N": 1}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_recipe(**overrides):
    return get_recipe("nb201", epochs=overrides.pop("epochs", 1), batch_size=64, network=TINY, **overrides)


# ---- recipes ------------------------------------------------------------------------------------
def test_recipes_hold_the_papers_values():
    nb201, darts = RECIPES.get("nb201"), RECIPES.get("darts")
    # NAS-Bench-201 (Dong & Yang 2020): Nesterov SGD 0.9, lr 0.1 cosine to 0, wd 5e-4, batch 256, 200 epochs
    assert (nb201.lr, nb201.lr_min, nb201.momentum, nb201.nesterov) == (0.1, 0.0, 0.9, True)
    assert (nb201.weight_decay, nb201.batch_size, nb201.epochs, nb201.cutout) == (5e-4, 256, 200, 0)
    # DARTS (Liu et al. 2019): lr 0.025, wd 3e-4, batch 96, 600 epochs, cutout 16, drop-path 0.2, aux 0.4, clip 5
    assert (darts.lr, darts.momentum, darts.nesterov, darts.weight_decay) == (0.025, 0.9, False, 3e-4)
    assert (darts.batch_size, darts.epochs, darts.cutout, darts.drop_path_prob) == (96, 600, 16, 0.2)
    assert (darts.auxiliary_weight, darts.grad_clip) == (0.4, 5.0)
    assert darts.network == {"C": 36, "layers": 20, "auxiliary": True}
    assert default_recipe(get_space("nb201")) is nb201 and default_recipe("darts") is darts


def test_recipe_overrides_and_unknown_key():
    recipe = get_recipe("nb201", epochs=3, network={"C": 8})
    assert recipe.epochs == 3 and recipe.network == {"C": 8, "N": 5}  # network is merged
    assert RECIPES.get("nb201").epochs == 200  # the preset is untouched
    with pytest.raises(ConfigError, match="did you mean 'weight_decay'"):
        get_recipe("nb201", weight_decy=1e-4)
    with pytest.raises(ConfigError, match="epochs"):
        get_recipe("nb201", epochs=0)


# ---- a run ---------------------------------------------------------------------------------------
def test_one_epoch_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    result = train(GOOD_CELL, "nb201", "digits", tiny_recipe(), out_dir=out, quiet=True)
    logs = {"tensorboard"} if tensorboard_installed() else set()  # TensorBoard's, where it is installed
    assert {p.name for p in out.iterdir()} == {"config.yaml", "metrics.jsonl", "metrics.csv", "result.json",
                                               "checkpoint.pt", "checkpoint.prev.pt", ".archsearch.lock"} | logs
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["space"] == "nb201" and config["genotype"] == GOOD_CELL and config["dataset"] == "digits"
    assert config["seed"] == 0 and config["recipe"]["epochs"] == 1 and config["recipe"]["network"] == TINY
    (line,) = read_jsonl(out / "metrics.jsonl")
    assert list(line) == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds"]
    assert line["epoch"] == 1 and line["lr"] == pytest.approx(0.1)
    saved = json.loads((out / "result.json").read_text())
    for key in ("test_accuracy", "test_loss", "params", "flops", "epochs", "genotype", "space", "dataset"):
        assert key in saved
    # params = every parameter of the network (the NB201 network has no auxiliary head)
    net = get_space("nb201").network(GOOD_CELL, num_classes=10, in_channels=1, **TINY)
    assert saved["params"] == sum(p.numel() for p in net.parameters())
    assert 0 <= saved["test_accuracy"] <= 100 and result["test_accuracy"] == saved["test_accuracy"]
    checkpoint, _ = CheckpointStore(out).load()
    assert checkpoint["epoch"] == 1 and {"model", "optimizer", "scheduler", "rng", "loader"} <= set(checkpoint)
    assert CheckpointStore(out).previous.is_file()  # the epoch-0 checkpoint, kept as the one before
    with pytest.raises(ConfigError, match="resume=True"):
        train(GOOD_CELL, "nb201", "digits", tiny_recipe(), out_dir=out, quiet=True)


def test_good_cell_learns_digits():
    # chance is 10%; at C=8, N=1 this cell reached 96.4-98.3% after 3 epochs over seeds 0-5
    for seed in (0, 1):
        result = train(GOOD_CELL, "nb201", "digits", tiny_recipe(epochs=3), seed=seed, quiet=True)
        assert result["test_accuracy"] > 90.0, result["test_accuracy"]


def _metrics(path):
    return [{k: v for k, v in line.items() if k != "seconds"} for line in read_jsonl(path / "metrics.jsonl")]


def test_resume_gives_the_uninterrupted_run(tmp_path):
    recipe = tiny_recipe(epochs=2, cutout=2)  # cutout draws from the loader's generator too
    whole = train(GOOD_CELL, "nb201", "digits", recipe, out_dir=tmp_path / "whole", quiet=True,
                  deterministic=True)
    part = train(GOOD_CELL, "nb201", "digits", recipe, out_dir=tmp_path / "cut", quiet=True,
                 deterministic=True, stop_after=1)
    assert part["completed"] is False and len(read_jsonl(tmp_path / "cut" / "metrics.jsonl")) == 1
    resumed = train(GOOD_CELL, "nb201", "digits", recipe, out_dir=tmp_path / "cut", quiet=True,
                    deterministic=True, resume=True)
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "whole")
    assert resumed["test_accuracy"] == whole["test_accuracy"] and resumed["test_loss"] == whole["test_loss"]
    with pytest.raises(ConfigError, match="cannot change 'batch_size'"):
        train(GOOD_CELL, "nb201", "digits", tiny_recipe(epochs=3).replace(batch_size=32), out_dir=tmp_path / "cut",
              quiet=True, deterministic=True, resume=True)


def test_non_finite_loss_raises_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(GOOD_CELL, "nb201", "digits", tiny_recipe(epochs=2), out_dir=out, quiet=True, stop_after=1)
    before = (out / "checkpoint.pt").read_bytes(), (out / "metrics.jsonl").read_bytes()
    train_module = importlib.import_module("archsearch.evaluate.train")

    calls = {"n": 0}
    real = train_module.F.cross_entropy

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * math.nan if calls["n"] == 3 else loss

    monkeypatch.setattr(train_module.F, "cross_entropy", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 3"):
        train(GOOD_CELL, "nb201", "digits", tiny_recipe(epochs=2), out_dir=out, quiet=True, resume=True)
    assert ((out / "checkpoint.pt").read_bytes(), (out / "metrics.jsonl").read_bytes()) == before


def test_huge_learning_rate_is_a_non_finite_loss():
    with pytest.raises(NonFiniteLossError, match="epoch 1"):
        train(GOOD_CELL, "nb201", "digits", tiny_recipe(lr=1e30), quiet=True)


def test_darts_space_one_epoch_with_auxiliary_head(tmp_path):
    from archsearch.spaces.darts_genotypes import DARTS_V2

    recipe = get_recipe("darts", epochs=1, batch_size=64, network={"C": 8, "layers": 3})
    result = train(DARTS_V2, "darts", "digits", recipe, out_dir=tmp_path / "darts", quiet=True)
    net = get_space("darts").network(DARTS_V2, num_classes=10, in_channels=1, C=8, layers=3, auxiliary=True)
    assert result["params"] == sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)
    assert result["params"] < sum(p.numel() for p in net.parameters())
    assert math.isfinite(result["test_loss"]) and 0 <= result["test_accuracy"] <= 100


@needs_shared
def test_one_epoch_on_a_slice_of_cifar10(tmp_path):
    recipe = get_recipe("nb201", epochs=1, batch_size=64, network={"C": 4, "N": 1})
    result = train(GOOD_CELL, "nb201", "cifar10", recipe, out_dir=tmp_path / "c10", quiet=True,
                   data_dir=SHARED_CIFAR10, limit_train=300, limit_test=100)
    assert result["dataset"] == "cifar10" and 0 <= result["test_accuracy"] <= 100
    assert len(read_jsonl(tmp_path / "c10" / "metrics.jsonl")) == 1
