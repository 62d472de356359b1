"""Hostile values for every configuration key of a search and every field of a training recipe.

The oracle is this file's own table of what each key means (a count is a positive integer, a rate a
finite positive float, a probability lies in [0, 1), ...), written from the keys' meaning, not from the
package's validators. Every value the table rejects must end as one ConfigError (API) or one line and
exit 2 (CLI) with nothing written; every value it accepts must be taken as given.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archsearch.cli import main
from archsearch.errors import ArchSearchError, ConfigError, DeviceError, UnknownNameError
from archsearch.evaluate.recipes import Recipe, get_recipe
from archsearch.search.config import SearchConfig, apply_overrides
from archsearch.search.resolve import resolve_config


def count(low=1):
    return ("int", lambda v: v >= low)


def rate(zero_ok=False):
    return ("float", (lambda v: v >= 0) if zero_ok else (lambda v: v > 0))


PROBABILITY = ("float", lambda v: 0 <= v < 1)
FLAG = ("bool", lambda v: True)

#: what each SearchConfig key takes, by its meaning
SEARCH_KEYS = {
    "seed": ("int", lambda v: 0 <= v < 2**32), "limit_train": count(), "C": count(), "N": ("int", lambda v: 1 <= v <= 100),
    "epochs": count(), "batch_size": count(), "w_lr": rate(), "w_lr_min": rate(zero_ok=True),
    "w_momentum": PROBABILITY, "w_weight_decay": rate(zero_ok=True), "grad_clip": rate(), "order": ("int", lambda v: v in (1, 2)),
    "unrolled_lr": rate(), "drop_path_prob": PROBABILITY, "arch_lr": rate(), "arch_weight_decay": rate(zero_ok=True),
    "hessian_every": count(0), "hessian_iters": count(), "train_epochs": count(0), "train_C": count(),
    "deterministic": FLAG, "track_running_stats": FLAG, "w_nesterov": FLAG,
}
#: keys that may be empty (null)
NULLABLE = {"limit_train", "unrolled_lr", "train_C", "grad_clip"}

#: what each Recipe field takes
RECIPE_KEYS = {
    "epochs": count(), "batch_size": count(), "eval_batch_size": count(), "lr": rate(), "lr_min": rate(zero_ok=True),
    "momentum": PROBABILITY, "weight_decay": rate(zero_ok=True), "grad_clip": rate(zero_ok=True),
    "cutout": count(0), "drop_path_prob": PROBABILITY, "auxiliary_weight": rate(zero_ok=True),
    "label_smoothing": ("float", lambda v: 0 <= v <= 1), "valid_fraction": PROBABILITY, "nesterov": FLAG,
    "crop_flip": FLAG,
}

#: values a user can type: numbers of every kind, text, YAML collections, non-finite floats
HOSTILE = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.sampled_from(["abc", "", "1e309", "-1e309", "nan", "inf", "1e-3", "3.0", "0x10", "[1, 2]", "{a: 1}",
                     "true", "null", "~", "1_000", "٣", "NaN", "-0", "1e3"]),
)


def expected(kind_rule, value, nullable=False):
    """(accepted, the value it should become) by the table, with YAML's reading of text first."""
    kind, rule = kind_rule
    if isinstance(value, str):
        if not value.strip():  # blank text is no value; null is said with null or ~
            return False, None
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return False, None
        if isinstance(parsed, str) and kind in ("int", "float"):  # "1e-3": YAML text, a number to Python
            try:
                parsed = int(parsed)
            except ValueError:
                try:
                    parsed = float(parsed)
                except ValueError:
                    return False, None
        value = parsed
    if value is None:
        return nullable, None
    if kind == "bool":
        return isinstance(value, bool), value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False, None
    if not math.isfinite(value) or abs(value) > 3.4028234663852886e38:  # settings are float32 arithmetic
        return False, None
    if kind == "int":
        if value != int(value) or not -2**63 <= value < 2**63:  # no count or seed is wider than 64 bits
            return False, None
        value = int(value)
    else:
        value = float(value)
    return bool(rule(value)), value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(SEARCH_KEYS)), value=HOSTILE)
def test_every_search_key_takes_exactly_what_it_means(key, value):
    ok, as_value = expected(SEARCH_KEYS[key], value, key in NULLABLE)
    if ok:
        config = apply_overrides(SearchConfig(), {key: value})
        assert getattr(config, key) == as_value and type(getattr(config, key)) is type(as_value)
    else:
        with pytest.raises(ConfigError) as err:
            apply_overrides(SearchConfig(), {key: value})
        assert key in str(err.value) and "\n" not in str(err.value)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(RECIPE_KEYS)), value=HOSTILE)
def test_every_recipe_field_takes_exactly_what_it_means(key, value):
    ok, as_value = expected(RECIPE_KEYS[key], value)
    if ok:
        assert getattr(get_recipe("nb201", **{key: value}), key) == as_value
    else:
        with pytest.raises(ConfigError):
            get_recipe("nb201", **{key: value})


@settings(max_examples=100, deadline=None)
@given(key=st.text(min_size=1, max_size=20))
def test_unknown_keys_are_refused_by_name(key):
    assume(key not in SearchConfig.keys() and key not in ("method",))
    with pytest.raises(ConfigError, match="unknown configuration key"):
        apply_overrides(SearchConfig(), {key: 1})
    assume(key not in Recipe.__dataclass_fields__)
    with pytest.raises(ConfigError, match="unknown recipe field"):
        get_recipe("nb201").replace(**{key: 1})


#: option dicts and the names their parts take (the table, not the code)
NESTED = [
    ("relaxation_options", {"relaxation": "gumbel_hard"}, {"tau_max", "tau_min"}),
    ("selector_options", {"selector": "threshold"}, {"threshold", "max_inputs", "exclude"}),
    ("selector_options", {"selector": "argmax"}, set()),
    ("supernet_options", {}, {"partial_channels", "edge_normalization"}),
    ("arch_options", {"arch_optimizer": "vadam"}, {"momentum", "prior_precision", "dataset_size", "mc_samples",
                                                   "init_precision", "adam_form", "betas", "perturb", "generator"}),
]


@settings(max_examples=150, deadline=None)
@given(which=st.sampled_from(range(len(NESTED))), key=st.text(min_size=1, max_size=15))
def test_unknown_options_of_a_part_are_refused(which, key):
    field, setting, known = NESTED[which]
    assume(key not in known)
    with pytest.raises(ConfigError, match="has no option"):
        resolve_config("darts", overrides={**setting, field: {key: 1}})


@pytest.mark.parametrize("overrides, fragment", [
    ({"epochs": 0}, "'epochs' must be >= 1"),
    ({"epochs": 5, "arch_warmup_epochs": 5}, "never trained"),
    ({"space": "darts", "N": 3}, "'N' does not apply to the darts space"),
    ({"layers": 12}, "'layers' does not apply to the nb201 space"),
    ({"space": "darts", "train_N": 3}, "'train_N' does not apply"),
    ({"relaxation_options": {"tau_max": "hot"}, "relaxation": "gumbel_hard"}, "tau_max"),
    ({"arch_options": {"eps": -1.0}}, "architecture optimizer 'adam'"),
    ({"early_stop": "dartsplus", "early_stop_options": {"rdarts": {"k": 2}}}, "early_stop does not name"),
    ({"early_stop": "dartsplus", "early_stop_options": {"dartsplus": {"patience": 0}}}, "patience"),
    ({"selector": "sample_and_rank", "selector_options": {"proxy": "synflw"}}, "did you mean 'synflow'"),
    ({"arch_betas": [0.5, 1.5]}, "arch_betas"),
    ({"supernet_path": "fastest"}, "supernet_path"),
    ({"step_order": "weights_first"}, "step_order"),
])
def test_values_that_only_fail_together_or_inside_a_part(overrides, fragment):
    with pytest.raises(ArchSearchError) as err:
        resolve_config("darts", overrides=overrides)
    assert fragment in str(err.value)


def test_a_device_this_machine_lacks_is_one_clear_error():
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available"):
            resolve_config("darts", overrides={"device": "cuda"})
    with pytest.raises(DeviceError):
        resolve_config("darts", overrides={"device": "quantum"})
    assert resolve_config("darts", overrides={"device": "cpu"}).device == "cpu"


def test_methods_and_parts_are_checked_by_name():
    with pytest.raises(UnknownNameError, match="did you mean 'darts'"):
        resolve_config("dartz")
    with pytest.raises(UnknownNameError, match="relaxation"):
        resolve_config("darts", overrides={"relaxation": "softmx"})


@pytest.mark.parametrize("text", [
    b"epochs: [\n", b"- 1\n- 2\n", b"42\n", b"\xff\xfe\x00garbage", b"epochs: 3\nepochs: {a: [}\n",
    b"!!python/object:os.system 'true'\n", b"1: 2\n", b"[" * 5000 + b"]" * 5000,
])
def test_bad_config_files_are_one_line(tmp_path, capsys, text):
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    out = tmp_path / "run"
    assert main(["search", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archsearch: error:") and err.count("\n") == 1
    assert not out.exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(SEARCH_KEYS)), value=HOSTILE)
def test_the_command_line_refuses_what_the_table_refuses_and_writes_nothing(tmp_path, capsys, key, value):
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("\n...").strip()
    ok, _ = expected(SEARCH_KEYS[key], text, key in NULLABLE)
    assume(not ok and "\x00" not in text)
    out = tmp_path / f"run-{abs(hash((key, text)))}"
    assert main(["search", "--out", str(out), f"{key}={text}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archsearch: error:") and err.count("\n") == 1
    assert not Path(out).exists()


@pytest.mark.parametrize("argv", [
    ["--epochs", "0"], ["--seed", "-1"], ["lr=abc"], ["batch_size=0"], ["lr=nan"], ["nesterov=maybe"],
    ["network={C: 0.5}"], ["network=[1]"], ["network={depth: 3}"], ["--layers", "5"], ["--device", "cuda:9"],
])
def test_train_refuses_bad_overrides_in_one_line(tmp_path, capsys, argv):
    out = tmp_path / "run"
    code = main(["train", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--out", str(out), *argv])
    err = capsys.readouterr().err
    if argv == ["--device", "cuda:9"] and torch.cuda.device_count() > 9:
        pytest.skip("this machine has a tenth GPU")
    assert code == 2 and err.startswith("archsearch: error:") and err.count("\n") == 1, err
    assert not out.exists()
