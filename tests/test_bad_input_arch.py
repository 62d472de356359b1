"""Bad architecture strings, NB201 indices and network sizes: the API raises the package's own errors, the
commands ``nb201 query``, ``info`` and ``show`` answer in one line with exit code 2."""

from __future__ import annotations

import json
import re

import pytest
import torch
from cli_contract import assert_ok_or_one_line_error, assert_one_line_error, returns_or_raises_ours, run_cli
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archsearch.diagnostics import flops
from archsearch.errors import ConfigError, InvalidGenotypeError, ShapeError, UnknownNameError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.spaces import get_space
from archsearch.spaces.darts_genotypes import DARTS_V2, to_genotype_str

NB201, DARTS = get_space("nb201"), get_space("darts")
TABLE = NB201Table.load()
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
V2_TEXT = to_genotype_str(DARTS_V2)

#: values of every kind a caller might pass where a string, index or size is expected
ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10**40, 10**40),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.binary(max_size=6),
                     st.lists(st.integers(), max_size=3), st.complex_numbers(allow_nan=False))
NB201_CHARS = list("|+~0123456789_abcnorvskiptlx -") + ["²", "٣", "\n", "\t", "\x00", "é", "𝟘"]
DARTS_TOKENS = ["-1", "6", "1.5", "True", "10**30", "9" * 60, "None", "'x'", "[", "]", "(", ")", ",", "{[1]}",
                "range(2, 10**18)", "range(1, 2, 0)", "Genotype", "'sep_conv_9x9'", "\x00", "é"]


@st.composite
def edited(draw, text: str, pieces: list[str]):
    """``text`` after a few deletions, insertions, replacements, truncations or repetitions."""
    out = text
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "repeat"]))
        piece = draw(st.sampled_from(pieces))
        if kind == "delete":
            out = out[:at] + out[at + draw(st.integers(1, 8)):]
        elif kind == "insert":
            out = out[:at] + piece + out[at:]
        elif kind == "replace":
            out = out[:at] + piece + out[at + len(piece):]
        elif kind == "truncate":
            out = out[:at]
        else:
            out = out[:at] * draw(st.integers(2, 50))
    return out


# -- the API ------------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(st.one_of(ANYTHING, st.from_regex(r"\s*[+-]?[0-9]{1,40}\s*", fullmatch=True)))
def test_an_nb201_index_is_found_or_refused(value):
    index = returns_or_raises_ours(TABLE.index_of, value)
    assert index is None or (0 <= index < len(TABLE) and not isinstance(value, (bool, float)))


@settings(max_examples=200, deadline=None)
@given(st.one_of(edited(BEST, NB201_CHARS), st.text(alphabet=NB201_CHARS, max_size=40)))
def test_an_edited_nb201_string_parses_to_itself_or_is_refused(text):
    genotype = returns_or_raises_ours(NB201.from_string, text)
    if genotype is not None and not text.strip().lstrip("+-").isdigit():
        assert NB201.to_string(genotype) == text.strip()


@settings(max_examples=150, deadline=None)
@given(st.one_of(edited(V2_TEXT, DARTS_TOKENS), edited("DARTS_V2", DARTS_TOKENS), st.text(max_size=30)))
def test_an_edited_darts_string_parses_or_is_refused(text):
    genotype = returns_or_raises_ours(DARTS.from_string, text)
    assert genotype is None or DARTS.from_string(DARTS.to_string(genotype)) == genotype


@settings(max_examples=60, deadline=None)
@given(ANYTHING, st.sampled_from(["nb201", "darts"]), st.sampled_from(["network", "to_string", "encode", "cell_edges"]))
def test_an_object_that_is_no_genotype_is_refused(value, space, method):
    # digits are a NAS-Bench-201 index (a documented way to name an architecture), not a stray object
    assume(not (space == "nb201" and isinstance(value, str) and value.strip().lstrip("+").isdigit()))
    space = get_space(space)
    with pytest.raises((InvalidGenotypeError, UnknownNameError)):
        getattr(space, method)(value)


BAD_SIZE = st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.text(max_size=3), st.just([16]))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["C", "N", "num_classes", "in_channels"]), BAD_SIZE)
def test_a_bad_nb201_network_size_is_a_config_error(key, value):
    with pytest.raises(ConfigError, match=key):
        NB201.network(BEST, **{key: value})
    with pytest.raises(ConfigError, match=key):
        NB201.supernet(**{key: value})


BAD_PROBABILITY = st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), st.just(float("nan")),
                           st.text(max_size=3), st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.tuples(st.sampled_from(["C", "layers", "num_classes", "in_channels"]), BAD_SIZE),
                 st.tuples(st.just("drop_path_prob"), BAD_PROBABILITY)))
def test_a_bad_darts_network_size_is_a_config_error(key_value):
    key, value = key_value
    with pytest.raises(ConfigError, match=key):
        DARTS.network(DARTS_V2, **{key: value})


@settings(max_examples=80, deadline=None)
@given(ANYTHING, ANYTHING, ANYTHING)
def test_table_lookups_answer_or_refuse(dataset, split, epochs):
    value = returns_or_raises_ours(TABLE.accuracy, 6111, dataset, split, epochs)
    assert value is None or 0 < value < 100
    assert returns_or_raises_ours(TABLE.best, dataset, split, epochs) in (None, *range(len(TABLE)))
    returns_or_raises_ours(TABLE.column, dataset)
    returns_or_raises_ours(TABLE.query, 6111, dataset)


@pytest.mark.parametrize("value, fragment", [
    ("²", "bad NAS-Bench-201 string"),  # a digit to str.isdigit, not to int()
    ("9" * 5000, "out of range"),  # past int()'s digit limit
    ("-1", "out of range"), ("15625", "out of range"), (True, "got bool"), (3.0, "got float"),
    ("|a\nb|", r"'|a\nb|'"),  # the newline is quoted, so the message stays one line
])
def test_nb201_index_regressions(value, fragment):
    with pytest.raises(InvalidGenotypeError) as error:
        TABLE.index_of(value)
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("text, fragment", [
    ("Genotype(normal_concat=range(1, 2, 0))", "range(start, stop)"),
    ("Genotype(normal_concat=range(2, 10**18))", "range(start, stop)"),
    ("Genotype(normal_concat=range(2, 1000000000000000000))", "longer than a cell"),
    ("Genotype(normal_concat=range(2, " + "9" * 40 + "))", "longer than a cell"),  # len() would overflow
    ("Genotype(normal={[1]})", "literal list"),
    ("DARTS_v2", "did you mean 'DARTS_V2'"), ("DARTS-V2", "did you mean 'DARTS_V2'"),
    ("[" * 300 + "]" * 300, "syntax"), ("-" * 50_000 + "1", "too long"), ("Genotype(\x00)", "syntax"),
    ("1" * 5000, "syntax"), (12, "is text"),
])
def test_darts_string_regressions(text, fragment):
    with pytest.raises(InvalidGenotypeError, match=re.escape(fragment)):
        DARTS.from_string(text)


def test_zero_sizes_no_longer_mean_the_default():
    with pytest.raises(ConfigError, match="C must be an integer >= 1"):
        NB201.network(BEST, C=0)
    with pytest.raises(ConfigError, match="layers must be an integer >= 1"):
        DARTS.network(DARTS_V2, layers=0)


@pytest.mark.parametrize("side", [1, 2, 3, 6, 30])
def test_nb201_images_must_have_sides_divisible_by_4(side):
    net = NB201.network(BEST, C=4, N=1).eval()
    with pytest.raises(ShapeError, match="multiples of 4"):
        net(torch.zeros(1, 3, side, side))
    with pytest.raises(ShapeError, match=r"\(N, 3, H, W\)"):
        net(torch.zeros(1, 1, 8, 8))


def test_measuring_on_the_meta_device_gives_the_real_figures(monkeypatch):
    for space, genotype, options in ((NB201, BEST, {"C": 8, "N": 2}), (DARTS, DARTS_V2, {"C": 8, "layers": 5})):
        real = flops.params_and_flops(lambda: space.network(genotype, **options), (1, 3, 32, 32))
        monkeypatch.setattr(flops, "REAL_BUILD_BYTES", 0)
        assert flops.params_and_flops(lambda: space.network(genotype, **options), (1, 3, 32, 32)) == real
        monkeypatch.undo()


# -- the commands -------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(st.one_of(edited(BEST, NB201_CHARS), st.from_regex(r"[+-]?[0-9]{1,30}", fullmatch=True)),
       st.sampled_from(["cifar10", "c100", "ImageNet16-120", "foo", "", "cifar10\n"]))
def test_nb201_query_answers_or_refuses_in_one_line(arch, dataset):
    assert_ok_or_one_line_error(["nb201", "query", arch, "--dataset", dataset, "--json"])


FLAGS = ["--C", "--N", "--layers", "--num-classes", "--image-size"]
VALUES = st.one_of(st.integers(-3, 4), st.integers(10**5, 10**30), st.sampled_from(["x", "1.5", "", "nan", "٣"]))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([("nb201", BEST), ("nb201", "6111"), ("darts", "DARTS_V2")]),
       st.lists(st.tuples(st.sampled_from(FLAGS), VALUES), min_size=1, max_size=2))
def test_info_answers_or_refuses_in_one_line(space_arch, flags):
    space, arch = space_arch
    argv = ["info", arch, "--space", space, "--json"]
    for flag, value in flags:
        argv += [f"{flag}={value}"]
    assert_ok_or_one_line_error(argv)


def test_info_takes_an_nb201_index_as_nb201_query_does():
    code, by_index, _ = run_cli(["info", "6111", "--json"])
    _, by_string, _ = run_cli(["info", BEST, "--json"])
    assert code == 0 and json.loads(by_index) == json.loads(by_string)


@pytest.mark.parametrize("argv, fragment", [
    (["info", BEST, "--num-classes", "0"], "--num-classes must be an integer in 1.."),
    (["info", BEST, "--num-classes", "-1"], "--num-classes"),
    (["info", BEST, "--num-classes", str(10**12)], "--num-classes"),
    (["info", BEST, "--C", "0"], "--C"), (["info", BEST, "--C", "-3"], "--C"), (["info", BEST, "--N", "-1"], "--N"),
    (["info", BEST, "--layers", "3"], "--layers does not apply to the nb201 space"),
    (["info", "DARTS_V2", "--space", "darts", "--N", "3"], "--N does not apply"),
    (["info", "DARTS_V2", "--space", "darts", "--layers", "0"], "--layers"),
    (["info", "DARTS_V2", "--space", "darts", "--C", "7"], "even initial channel count"),
    (["info", BEST, "--image-size", "0"], "--image-size"), (["info", BEST, "--image-size", "30"], "multiples of 4"),
    (["info", BEST, "--image-size", str(10**9)], "--image-size"),
    (["info", "DARTS_v2", "--space", "darts"], "did you mean 'DARTS_V2'"),
    (["info", "-1"], "out of range"), (["info", "²"], "bad NAS-Bench-201 string"),
    (["nb201", "query", "9" * 5000], "out of range"), (["nb201", "query", BEST, "--dataset", "foo"], "unknown"),
])
def test_info_and_query_regressions(argv, fragment):
    assert_one_line_error(argv, fragment)


def test_show_refuses_an_output_it_cannot_write(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_one_line_error(["show", BEST, "--out", str(tmp_path)], "is a directory")
    assert_one_line_error(["show", BEST, "--out", str(tmp_path / "file" / "cell.png")], "not a directory")
    assert_one_line_error(["show", BEST, "--out", ""], "empty")
    assert_one_line_error(["show", "DARTS_v2", "--space", "darts", "--out", str(tmp_path / "c.png")], "did you mean")
    assert not (tmp_path / "c.png").exists()
