"""The DARTS recurrent space: genotypes and their text, the selection rule and the cell against transcriptions of
quark0/darts rnn/model_search.py and rnn/model.py, the parameter count by hand, and the info command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.cli import main
from archsearch.errors import ConfigError, InvalidGenotypeError, ShapeError
from archsearch.report import draw_cells
from archsearch.spaces import get_space
from archsearch.spaces.darts_rnn_genotypes import DARTS_V2, ENAS, OPS, PUBLISHED, DartsRnnGenotype
from archsearch.spaces.darts_rnn_network import DartsRnnCell, expected_parameters

SPACE = get_space("darts-rnn")


# ---- genotypes and text --------------------------------------------------------------------------
def test_published_cells_are_the_references_and_round_trip():
    assert DARTS_V2.recurrent == (("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
                                  ("sigmoid", 5), ("tanh", 3), ("relu", 5))
    assert ENAS.steps == 11 and ENAS.concat == (2, 5, 6, 9, 10, 11)
    assert SPACE.from_string("DARTS") == DARTS_V2
    for genotype in PUBLISHED.values():
        assert SPACE.from_string(SPACE.to_string(genotype)) == genotype
    assert SPACE.to_string(DARTS_V2).endswith("concat=range(1, 9))")  # as quark0/darts prints it


def test_enas_trains_but_is_no_member_of_the_eight_node_space():
    assert SPACE.network(ENAS, num_classes=20, emsize=4) is not None
    for method in (SPACE.encode, SPACE.to_choices, SPACE.neighbours):
        with pytest.raises(InvalidGenotypeError, match="11 nodes"):
            method(ENAS)


@pytest.mark.parametrize("text, message", [
    ("Genotype(recurrent=[('none', 0)], concat=[1])", "op 'none'"),
    ("Genotype(recurrent=[('tanh', 1)], concat=[1])", "may only take states 0..0"),
    ("Genotype(recurrent=[('tanh', 0)], concat=[2])", "concat [2]"),
    ("Genotype(recurrent=[('tahn', 0)], concat=[1])", "did you mean 'tanh'"),
    ("Genotype(recurrent=[('tanh', 0)])", "missing field(s) concat"),
    ("DARTS_V3", "unknown published recurrent genotype"),
    ("Genotype(recurrent=__import__('os'), concat=[1])", "must be a literal list"),
    ("Genotype(recurrent=[('tanh', 0)], concat=range(1000000000000000000000000000000))", "longer than a cell"),
])
def test_bad_genotype_text_is_one_line_error(text, message):
    with pytest.raises(InvalidGenotypeError) as err:
        SPACE.from_string(text)
    assert message in str(err.value) and "\n" not in str(err.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.builds(lambda a, b: f"Genotype(recurrent={a}, concat={b})",
                                         st.text(max_size=40), st.text(max_size=20)))
def test_any_text_parses_or_is_refused_in_one_line(text):
    try:
        genotype = SPACE.from_string(text)
    except InvalidGenotypeError as err:
        assert "\n" not in str(err)
    else:
        assert SPACE.from_string(SPACE.to_string(genotype)) == genotype


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_samples_moves_choices_and_encoding_agree(seed):
    genotype = SPACE.sample(seed)
    assert SPACE.from_string(SPACE.to_string(genotype)) == genotype
    assert SPACE.from_choices(SPACE.to_choices(genotype)) == genotype
    choices = SPACE.to_choices(genotype)
    assert all(0 <= c < n <= SPACE.choice_shape[1] for c, n in zip(choices, SPACE.choice_sizes()))
    neighbours = SPACE.neighbours(genotype)
    # node k (1-based): 3 other activations and k - 1 other inputs
    assert len(neighbours) == len(set(neighbours)) == sum(3 + k - 1 for k in range(1, 9)) == 52
    diffs = [sum(a != b for a, b in zip(n.recurrent, genotype.recurrent)) for n in neighbours]
    assert set(diffs) == {1} and SPACE.mutate(genotype, seed) in neighbours
    onehot = SPACE.encode(genotype).view(36, 5)
    assert onehot.sum() == 8 and onehot[:, 0].sum() == 0  # one row per node, never 'none'
    assert SPACE.genotype_from_weights({"recurrent": onehot}) == genotype


def test_bad_choices_are_refused():
    with pytest.raises(InvalidGenotypeError, match="expected 16 choices"):
        SPACE.from_choices([0] * 15)
    with pytest.raises(InvalidGenotypeError, match="choice 2 is 2; that decision takes 0..1"):
        SPACE.from_choices([0, 0, 2] + [0] * 13)


def _reference_parse(probs):
    """rnn/model_search.py:77-91, PRIMITIVES and STEPS as rnn/genotypes.py."""
    gene, start = [], 0
    for i in range(8):
        end = start + i + 1
        W = probs[start:end].copy()
        j = sorted(range(i + 1), key=lambda x: -max(W[x][k] for k in range(len(W[x])) if k != OPS.index("none")))[0]
        k_best = None
        for k in range(len(W[j])):
            if k != OPS.index("none"):
                if k_best is None or W[j][k] > W[j][k_best]:
                    k_best = k
        gene.append((OPS[k_best], j))
        start = end
    return gene


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_genotype_from_weights_is_the_references_rule(seed, ties):
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 3, (36, 5)).astype(float) if ties else rng.normal(size=(36, 5))
    probs = torch.softmax(torch.as_tensor(alpha), -1)
    genotype = SPACE.genotype_from_weights({"recurrent": probs})
    assert list(genotype.recurrent) == _reference_parse(probs.numpy())
    assert genotype.concat == tuple(range(1, 9))


def test_genotype_from_weights_refuses_bad_input():
    with pytest.raises(ShapeError, match=r"\(36, 5\)"):
        SPACE.genotype_from_weights({"recurrent": torch.zeros(14, 8)})
    with pytest.raises(ConfigError, match="unknown op"):
        SPACE.genotype_from_weights({"recurrent": torch.zeros(36, 5)}, exclude=("skip",))


# ---- the cell and the model ----------------------------------------------------------------------
def _reference_cell(x, h_prev, x_mask, h_mask, W0, Ws, genotype, nhid):
    """rnn/model.py:47-88 in training mode (masks given), float64."""
    xh_prev = torch.cat([x * x_mask, h_prev * h_mask], dim=-1)
    c0, h0 = torch.split(xh_prev.mm(W0), nhid, dim=-1)
    s0 = h_prev + c0.sigmoid() * (h0.tanh() - h_prev)
    fns = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda v: v}
    states = [s0]
    for i, (name, pred) in enumerate(genotype.recurrent):
        s_prev = states[pred]
        c, h = torch.split((s_prev * h_mask).mm(Ws[i]), nhid, dim=-1)
        states.append(s_prev + c.sigmoid() * (fns[name](h) - s_prev))
    return torch.mean(torch.stack([states[i] for i in genotype.concat], -1), -1)


@pytest.mark.parametrize("genotype", [DARTS_V2, ENAS, SPACE.sample(7)], ids=["DARTS_V2", "ENAS", "sample"])
def test_the_cell_is_the_reference_cell_in_float64(genotype):
    torch.manual_seed(0)
    ninp = nhid = 6
    cell = DartsRnnCell(ninp, nhid, 0.25, 0.75, genotype).double()
    x, h = torch.randn(4, ninp, dtype=torch.float64), torch.randn(4, nhid, dtype=torch.float64)
    x_mask = (torch.rand(4, ninp) < 0.5).double() * 2
    h_mask = (torch.rand(4, nhid) < 0.75).double() / 0.75
    ours = cell.cell(x, h, x_mask, h_mask)
    theirs = _reference_cell(x, h, x_mask, h_mask, cell._W0, list(cell._Ws), genotype, nhid)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)
    ones = torch.ones(4, ninp, dtype=torch.float64)
    cell.eval()  # no masks in evaluation: the reference's unmasked branch is its masked one with masks of 1
    seq, last = cell(x.unsqueeze(0), h.unsqueeze(0))
    assert torch.allclose(seq[0], _reference_cell(x, h, ones, ones, cell._W0, list(cell._Ws), genotype, nhid))
    assert torch.equal(last, seq[-1:])


def test_training_masks_are_per_sequence_and_scaled():
    torch.manual_seed(1)
    model = SPACE.network(DARTS_V2, num_classes=30, emsize=8, dropout=0.5, dropouth=0.5, dropoutx=0.5,
                          dropouti=0.5, dropoute=0.5)
    seen = []
    model.rnn.cell = lambda x, h, xm, hm: seen.append((xm, hm)) or h
    model.train()
    model(torch.randint(0, 30, (5, 3)), model.init_hidden(3))
    assert all(m[0] is seen[0][0] and m[1] is seen[0][1] for m in seen) and len(seen) == 5
    assert set(seen[0][0].unique().tolist()) <= {0.0, 2.0}


def test_the_decoder_is_tied_to_the_embedding_and_log_probabilities_normalise():
    model = SPACE.network(DARTS_V2, num_classes=30, emsize=8).eval()
    assert model.decoder.weight is model.encoder.weight
    log_prob, hidden = model(torch.randint(0, 30, (5, 3)), model.init_hidden(3))
    assert log_prob.shape == (5, 3, 30) and hidden.shape == (1, 3, 8)
    assert torch.allclose(log_prob.exp().sum(-1), torch.ones(5, 3), atol=1e-5)
    log_prob[..., 0].sum().backward()
    assert model.encoder.weight.grad is not None and model.encoder.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="nhid == emsize"):
        SPACE.network(DARTS_V2, emsize=8, nhid=9)
    with pytest.raises(ConfigError, match="dropoutx must be a probability"):
        SPACE.network(DARTS_V2, emsize=8, dropoutx=1.0)


def test_parameter_count_is_the_hand_count_at_the_papers_size():
    # embedding 10000 x 850 (tied decoder), W0 (850 + 850) x 1700, 8 nodes of 850 x 1700, decoder bias 10000
    hand = 10_000 * 850 + 1700 * 1700 + 8 * 850 * 1700 + 10_000
    assert hand == expected_parameters(10_000, 850, 850, 8) == 22_960_000  # DARTS paper, Table 2: 23M
    with torch.device("meta"):
        model = SPACE.network(DARTS_V2)
        enas = SPACE.network(ENAS)
    assert sum(p.numel() for p in model.parameters()) == hand
    assert sum(p.numel() for p in enas.parameters()) == hand + 3 * 850 * 1700


def test_info_prints_the_papers_23m(capsys):
    assert main(["info", "DARTS_V2", "--space", "darts-rnn", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 22_960_000 and out["flops_per_token"] == 1700 * 1700 + 8 * 850 * 1700 + 850 * 10_000
    assert main(["info", "DARTS_V2", "--space", "darts-rnn", "--emsize", "8", "--nhid", "9"]) == 2
    assert "nhid == emsize" in capsys.readouterr().err


def test_cells_draw(tmp_path):
    axes = draw_cells(SPACE, DARTS_V2, tmp_path / "cell.png")
    assert (tmp_path / "cell.png").stat().st_size > 0 and len(axes) == 1
    edges = SPACE.cell_edges(ENAS)["recurrent"]
    assert ("8", "9", "relu") in edges and ("11", "h_{t}", "concat") in edges


def test_genotype_type_refuses_bad_fields():
    with pytest.raises(InvalidGenotypeError):
        DartsRnnGenotype((("tanh", 0),), (0, 0))
    with pytest.raises(InvalidGenotypeError):
        SPACE.parse(("tanh", 0))
