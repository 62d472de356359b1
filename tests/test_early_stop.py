"""Early-stopping rules on constructed metric sequences (they fire when the papers' criteria hold and not
before), their plumbing through the configuration, and RobustDARTS' ScheduledDropPath seam.

Oracles: DARTS+ (Liang et al. 2019) criteria 1 and 2; RobustDARTS' EVLocalAvg rule worked by hand on
step sequences (window 5, k 4, factor 1.3, start epoch 10); drop-path's per-sample 0 or x / (1 - p).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from archsearch.data import load_dataset
from archsearch.errors import ConfigError
from archsearch.search.hooks.early_stop import DartsPlusStop, EigenvalueStop
from archsearch.search.hooks import EARLY_STOPPING, build_hooks
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.spaces import get_space
from archsearch.utils.io import read_jsonl

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
TINY = {"C": 4, "N": 1, "batch_size": 32, "hessian_iters": 3}


def _stub(epochs=50, alpha=None):
    """The part of a SearchView the rules read."""
    alpha = alpha if alpha is not None else torch.nn.Parameter(torch.zeros(6, 5))
    return SimpleNamespace(space=SimpleNamespace(ops=NB201_OPS), config=SimpleNamespace(epochs=epochs), alphas=[alpha])


def _weights(conv1, conv3, skip=0.2):
    """NB201 op weights with the two learnable ops' weights given (the same on every edge)."""
    rest = (1 - conv1 - conv3 - skip) / 2
    return {"cell": [[rest, skip, conv1, conv3, rest]] * 6}


def _run(rule, view, records):
    """1-based epoch at which the rule fires, or None."""
    for record in records:
        if rule.on_epoch_end(view, record):
            return record["epoch"]
    return None


# ---- DARTS+ ----------------------------------------------------------------------------------
def test_dartsplus_fires_at_two_skip_connections_and_not_before():
    records = [{"epoch": e + 1, "skip_count": s, "op_weights": _weights(0.3, 0.2 + 0.01 * e)}
               for e, s in enumerate([0, 1, 0, 1, 1, 2, 3])]
    rule = DartsPlusStop()
    assert _run(rule, _stub(), records) == 6
    assert "2 skip connections" in DartsPlusStop().on_epoch_end(_stub(), records[5])


def test_dartsplus_fires_after_ten_epochs_of_a_stable_ranking_and_not_before():
    # conv_1x1 ahead of conv_3x3 until epoch 4, behind from epoch 5 on: stable over epochs 5..14
    records = []
    for e in range(1, 21):
        conv1, conv3 = (0.3, 0.2) if e <= 4 else (0.2, 0.3)
        records.append({"epoch": e, "skip_count": 0, "op_weights": _weights(conv1, conv3, skip=0.1 + 0.02 * e)})
    assert _run(DartsPlusStop(), _stub(), records) == 14  # the skip weight changing is no instability
    assert _run(DartsPlusStop(patience=11), _stub(), records) == 15
    # a ranking flip on one edge at epoch 12 restarts the count
    flipped = [dict(r) for r in records]
    w = _weights(0.2, 0.3)
    w["cell"] = [list(row) for row in w["cell"]]
    w["cell"][3][2], w["cell"][3][3] = 0.3, 0.2
    flipped[11] = {**flipped[11], "op_weights": w}
    assert _run(DartsPlusStop(), _stub(), flipped) is None  # epochs 13..20: only 8 stable epochs


def test_dartsplus_state_survives_a_checkpoint():
    records = [{"epoch": e, "skip_count": 0, "op_weights": _weights(0.2, 0.3)} for e in range(1, 11)]
    first = DartsPlusStop()
    assert _run(first, _stub(), records[:6]) is None
    resumed = DartsPlusStop()
    resumed.load_state_dict(first.state_dict())
    assert _run(resumed, _stub(), records[6:]) == 10


# ---- RobustDARTS -------------------------------------------------------------------------------
def _eigen_records(values):
    return [{"epoch": e + 1, "hessian_max_eigenvalue": v} for e, v in enumerate(values)]


def test_rdarts_fires_on_the_windowed_ratio_and_not_before():
    # lambda = 1 up to 0-based epoch 19, 2 from epoch 20. At epoch e the newest complete window is centred
    # on e - 2 (mean over e-4..e) and the earlier one on e - 6: ratio 1 + (e - 19) / 5 for e in 20..24,
    # i.e. 1.2 at e = 20 and 1.4 at e = 21 > 1.3: it fires at epoch 21 (1-based 22), returning epoch 15.
    alpha = torch.nn.Parameter(torch.zeros(6, 5))
    view = _stub(alpha=alpha)
    rule = EigenvalueStop()
    fired = None
    for record in _eigen_records([1.0] * 20 + [2.0] * 10):
        with torch.no_grad():
            alpha.fill_(record["epoch"])  # alpha remembers its epoch
        reason = rule.on_epoch_end(view, record)
        if reason:
            fired = record["epoch"]
            break
    assert fired == 22
    assert "epoch 16" in reason  # 1-based epoch i - k, whose architecture is restored
    assert bool((alpha == 16).all())


def test_rdarts_threshold_is_strict_and_waits_for_the_start_epoch():
    # a jump to 1.5 gives ratios 1.1, 1.2, 1.3 (not > 1.3), 1.4 at 0-based epochs 20..23
    assert _run(EigenvalueStop(), _stub(), _eigen_records([1.0] * 20 + [1.5] * 10)) == 24
    # a doubling at epoch 5 is ignored: the earlier window's centre must be at epoch 10 or later
    assert _run(EigenvalueStop(rollback=False), _stub(), _eigen_records([1.0] * 5 + [2.0] * 30)) is None
    # ... unless the start epoch allows it: at e = 6, mean(lambda_2..6) / mean(lambda_0..2) = 1.4 / 1
    assert _run(EigenvalueStop(start_epoch=0, rollback=False), _stub(), _eigen_records([1.0] * 5 + [2.0] * 30)) == 7
    # the last epoch decides nothing (the reference skips it)
    assert _run(EigenvalueStop(), _stub(epochs=22), _eigen_records([1.0] * 20 + [2.0] * 2)) is None


def test_rdarts_skips_epochs_without_an_eigenvalue_and_resumes():
    values = [1.0] * 20 + [2.0] * 10
    records = _eigen_records(values)
    for r in records[::3]:
        r["hessian_max_eigenvalue"] = None
    uninterrupted = _run(EigenvalueStop(rollback=False), _stub(), records)
    assert uninterrupted is not None
    first = EigenvalueStop(rollback=False)
    assert _run(first, _stub(), records[:15]) is None
    resumed = EigenvalueStop(rollback=False)
    resumed.load_state_dict(first.state_dict())
    assert _run(resumed, _stub(), records[15:]) == uninterrupted
    with pytest.raises(ConfigError, match="odd window"):
        EigenvalueStop(window=4)


# ---- configuration and end to end ------------------------------------------------------------------
def test_rules_are_registered_and_any_preset_can_use_them():
    assert {"dartsplus", "rdarts"} <= set(EARLY_STOPPING.names())
    config = resolve_config("gdas", overrides={"early_stop": "rdarts,dartsplus",
                                               "early_stop_options": {"rdarts": {"factor": 1.5}}})
    hooks = build_hooks(config)
    assert [type(h) for h in hooks] == [EigenvalueStop, DartsPlusStop] and hooks[0].factor == 1.5
    assert resolve_config("rdarts").early_stop == "rdarts" and resolve_config("dartsplus").early_stop == "dartsplus"


def test_a_stopped_run_says_why(tmp_path):
    # patience 1: the ranking is "stable for one epoch" after the first epoch, so the run stops there
    config = resolve_config("dartsplus", overrides={**TINY, "epochs": 3,
                                                    "early_stop_options": {"dartsplus": {"patience": 1}}})
    summary = run_search(config, tmp_path, quiet=True, dataset=load_dataset("digits", quiet=True))
    assert summary["epochs_run"] == 1 and summary["stopped_early"].startswith("dartsplus")
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 1


# ---- RobustDARTS' regularised variants ------------------------------------------------------------
def test_scheduled_drop_path_drops_whole_edge_outputs_in_training_only():
    torch.manual_seed(0)
    model = get_space("nb201").supernet(num_classes=3, C=4, N=1, in_channels=1)
    mixed = model.mixed_ops("cell")[0][1]
    x, w = torch.randn(64, 4, 5, 5), torch.softmax(torch.randn(5), dim=0)
    model.eval()
    clean = mixed(x, w)
    model.set_drop_path_prob(0.25)
    assert torch.equal(mixed(x, w), clean)  # evaluation: untouched
    model.train()
    model.set_drop_path_prob(0.0)
    reference = mixed(x, w).detach()
    model.set_drop_path_prob(0.25)
    out = mixed(x, w).detach()
    dropped = out.flatten(1).abs().sum(dim=1) == 0
    assert 0 < int(dropped.sum()) < 64
    assert torch.allclose(out[~dropped], reference[~dropped] / 0.75, atol=1e-5)


def test_drop_path_rises_linearly_over_the_search(tmp_path):
    from archsearch.search.loop import DifferentiableSearch

    config = resolve_config("rdarts-dp", overrides={**TINY, "epochs": 3, "hessian_every": 0, "limit_train": 128})
    assert config.drop_path_prob == 0.6 and resolve_config("rdarts-l2").w_weight_decay == pytest.approx(81e-4)
    search = DifferentiableSearch(config, quiet=True, dataset=load_dataset("digits", quiet=True))
    seen = []
    for _ in range(3):
        search.train_epoch()
        seen.append(search.model.mixed_ops("cell")[0][1].drop_prob)
        search.epoch += 1
    assert seen == pytest.approx([0.0, 0.3, 0.6])  # p * epoch / (epochs - 1), as RobustDARTS


def test_rdarts_preset_runs_end_to_end(tmp_path):
    summary = run_search(resolve_config("rdarts", overrides={**TINY, "epochs": 1}), tmp_path, quiet=True,
                         dataset=load_dataset("digits", quiet=True))
    assert summary["genotype"] and summary["stopped_early"] is None  # one epoch: nothing to compare yet
