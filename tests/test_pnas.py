"""PNAS (Liu et al., ECCV 2018): the progressive beam search against hand-computed steps, the surrogate's
shapes, the NAS-Bench-201 block mapping, sample efficiency against random search on an objective of known
optimum, resume, and the validation of its options."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ArchSearchError, ConfigError, UnknownNameError
from archsearch.evaluate.tabular import TabularEvaluator
from archsearch.groundtruth.nb201_arch import EDGES, OPS
from archsearch.spaces import get_space
from archsearch.spaces.base import as_rng
from archsearch.strategies import Budget, make_strategy
from archsearch.strategies.pnas_layout import make_layout
from archsearch.strategies.pnas_predictor import CellLSTM, CellMLP, Ensemble, featurise

NB201 = get_space("nb201")
SMALL = {"ensemble": 2, "hidden": 32, "embedding": 16, "epochs": 20}  # a cheap surrogate for the tests


class ChoiceSpace:
    """A toy space with one choice per decision: ``decisions`` decisions of ``choices`` options each."""

    name = "toy-choices"

    def __init__(self, decisions=4, choices=4):
        self.choice_shape = (decisions, choices)

    def sample(self, rng=None):
        return tuple(int(i) for i in as_rng(rng).integers(self.choice_shape[1], size=self.choice_shape[0]))

    def size(self):
        return self.choice_shape[1] ** self.choice_shape[0]

    def from_choices(self, choices):
        return tuple(int(c) for c in choices)

    def to_choices(self, genotype):
        return list(genotype)

    def parse(self, genotype):
        return self.from_string(genotype) if isinstance(genotype, str) else tuple(genotype)

    def to_string(self, genotype):
        return "-".join(map(str, genotype))

    def from_string(self, text):
        return tuple(int(c) for c in text.split("-"))


def additive(weights):
    """f(g) = sum_k w[k, g_k], in 0..100 when the weights are in 0..100/len(w): its optimum is the argmax per row."""
    return lambda g: float(sum(weights[k, c] for k, c in enumerate(g)))


class Objective:
    def __init__(self, f):
        self.f = f

    def evaluate(self, g):
        from archsearch.evaluate.result import EvalResult

        value = self.f(g)
        return EvalResult(value, value, 1.0)


# ---- the NAS-Bench-201 block mapping -----------------------------------------------------------------
def _ops(text_ops):
    return NB201.from_choices([OPS.index(o) for o in text_ops])


def test_nb201_nodes_are_the_blocks_and_partial_cells_output_their_unread_nodes():
    layout = make_layout(NB201, None)
    assert layout.depth == 3 and layout.block_sizes == (1, 2, 3)
    c3, skip, none = OPS.index("nor_conv_3x3"), "skip_connect", "none"
    # one block: node 1 = conv(x0), the output node reads node 1 by a skip, everything else 'none'
    assert layout.complete((c3,)) == _ops(("nor_conv_3x3", none, none, none, skip, none))
    # two blocks, node 2 reads node 1: node 1 is not an output, node 2 is
    assert layout.complete((c3, c3, c3)) == _ops(("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", none, none, skip))
    # node 2 ignores node 1: both are outputs (PNAS's cell concatenates its unused blocks; NB201 sums)
    assert layout.complete((c3, c3, 0)) == _ops(("nor_conv_3x3", "nor_conv_3x3", none, none, skip, skip))
    full = (1, 2, 3, 4, 0, 1)
    assert layout.complete(full) == NB201.from_choices(full)
    # expand-cell: every op of the next node's edges after every kept cell
    assert layout.expansions(()) == [(k,) for k in range(5)]
    assert layout.expansions((c3,)) == [(c3, a, b) for a in range(5) for b in range(5)]
    assert len(layout.expansions((c3, 0, 0))) == 125
    # tokens per block: inputs (source nodes) then ops, ops after the 3 input tokens
    assert layout.tokens((c3, 1, 2)) == [[0, 3 + c3], [0, 1, 3 + 1, 3 + 2]]
    # the one-block cells differ on the table: step 1 has something to learn from
    table = TabularEvaluator("cifar10", "valid12")
    assert len({table.evaluate(layout.complete(c)).objective for c in layout.expansions(())}) == 5
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # node by node: a block is a prefix


def test_decisions_layout_fills_the_ungrown_decisions_with_the_first_choice():
    layout = make_layout(ChoiceSpace(3, 4), None)
    assert layout.block_sizes == (1, 1, 1) and layout.complete((2,)) == (2, 0, 0)
    assert layout.tokens((2, 3)) == [[0, 3 + 2], [1, 3 + 3]]
    with pytest.raises(ConfigError):
        make_layout(ChoiceSpace(), "nodes")
    without = ChoiceSpace()
    without.choice_shape = None
    with pytest.raises(ConfigError):
        make_layout(without, None)  # no choice_shape
    darts = get_space("darts")  # DARTS' decisions: a node's inputs and ops, the second input among the others
    grown = make_layout(darts, None).complete((1, 6))  # node 0: input 1 by op 6, then input 0 by op 0
    assert set(grown.normal[:2]) == {(darts.searchable_ops[6], 1), (darts.searchable_ops[0], 0)}
    # decisions with fewer choices than the widest (NASNet's inputs) expand over their own choices only
    nasnet = get_space("nasnet")
    layout = make_layout(nasnet, None)
    sizes = nasnet.choice_sizes()
    prefix = ()
    for k in range(8):
        expansions = layout.expansions(prefix)
        assert [c[-1] for c in expansions] == list(range(sizes[k]))
        prefix = expansions[-1]
        nasnet.to_string(layout.complete(prefix))  # a member of the space


# ---- the surrogate ---------------------------------------------------------------------------------
def test_surrogate_shapes_and_the_ensemble_of_five():
    layout = make_layout(NB201, None)
    cells = [layout.tokens(c) for c in [(3,), (3, 1, 2), (3, 1, 2, 4, 0, 1)]]
    sequences, lengths, blocks, counts = featurise(cells, layout.vocabulary, layout.width)
    assert sequences.shape == (3, 12) and lengths.tolist() == [2, 6, 12]  # 2 tokens per edge
    assert blocks.shape == (3, 3, 6) and counts.tolist() == [1, 2, 3]
    lstm = CellLSTM(layout.vocabulary)  # the paper's sizes: embedding 100, hidden 100
    assert lstm.lstm.hidden_size == 100 and lstm.embed.embedding_dim == 100
    assert lstm(sequences, lengths).shape == (3,)
    mlp = CellMLP(layout.vocabulary, layout.width)
    assert [m.out_features for m in mlp.body if isinstance(m, torch.nn.Linear)] == [100, 100]
    out = mlp(sequences, lengths, blocks, counts)
    assert out.shape == (3,) and ((0 < out) & (out < 1)).all()  # a sigmoid: accuracy as a fraction
    # the LSTM reads each cell only up to its own last token: padding after it changes nothing
    alone = lstm(sequences[:1, :2], lengths[:1])
    assert torch.allclose(alone, lstm(sequences, lengths)[:1])
    strategy = make_strategy("pnas", NB201, seed=0)
    assert strategy.ensemble.members == 5 and strategy.ensemble.kind == "lstm"


def test_each_member_is_fitted_on_four_fifths_and_the_l1_fit_learns():
    rng = np.random.default_rng(0)
    layout = make_layout(NB201, None)
    weights = rng.uniform(0, 100 / 6, size=(6, 5))
    f = additive(weights)
    train = [tuple(rng.integers(5, size=6)) for _ in range(60)]
    test = [tuple(rng.integers(5, size=6)) for _ in range(200)]
    ensemble = Ensemble("lstm", layout.vocabulary, layout.width, embedding=16, hidden=32, epochs=30)
    seen = []
    original = ensemble._fit_one
    ensemble._fit_one = lambda features, y, keep, g: seen.append(len(keep)) or original(features, y, keep, g)
    ensemble.fit([layout.tokens(c) for c in train], [f(c) / 100 for c in train], torch.Generator().manual_seed(0))
    assert seen == [48] * 5  # 5 folds of 12
    predicted = ensemble.predict([layout.tokens(c) for c in test]).numpy()
    truth = np.array([f(c) for c in test])
    assert np.corrcoef(predicted, truth)[0, 1] > 0.6  # an additive score is learnt from 60 cells


# ---- Algorithm 1 step by step ----------------------------------------------------------------------
def test_steps_follow_algorithm_1_on_a_hand_checked_run():
    space = ChoiceSpace(3, 4)
    f = additive(np.arange(12, dtype=float).reshape(3, 4))
    strategy = make_strategy("pnas", space, seed=0, beam=2, **SMALL)
    # step 1: the 4 one-block cells (decisions not grown: choice 0), all of them
    first = strategy.ask(4)
    assert first == [(k, 0, 0) for k in range(4)] and strategy.step == 1
    for g in first:
        strategy.tell(g, f(g))
    # step 2: K = 2 of the 16 expansions of the 4 kept cells, ranked by the predictor refitted on step 1
    g = strategy.ask()
    assert strategy.step == 2
    candidates = [(a, b) for a in range(4) for b in range(4)]
    predicted = strategy.ensemble.predict([strategy.layout.tokens(c) for c in candidates]).tolist()
    measured = {(a, 0): f((a, 0, 0)) / 100 for a in range(4)}  # a known genotype keeps its measured value
    score = [measured.get(c, p) for c, p in zip(candidates, predicted)]
    top = sorted(range(16), key=lambda i: -score[i])[:2]
    assert strategy.beam == [candidates[i] for i in top]
    unknown = [space.from_choices(c + (0,)) for c in strategy.beam if c[1] != 0]
    second = [g] + list(strategy.ask(len(unknown) - 1)) if len(unknown) > 1 else [g]
    assert second == unknown
    for g in second:
        strategy.tell(g, f(g))
    third = strategy.ask()  # step 3 = B expands only the 2 kept cells
    assert strategy.step == 3 and third[:2] in [c[:2] for c in strategy.beam]
    assert {c[:2] for c in strategy.beam} <= {c for c in [candidates[i] for i in top]}


def test_pnas_finds_the_optimum_with_far_fewer_evaluations_than_random_search():
    # 3 decisions x 4 choices, additive with a unique optimum: random search (with replacement) needs 64
    # evaluations on average to draw it (geometric, p = 1/64) and finds it within 16 in 1 - (63/64)^16 = 22 %
    # of runs, so 6 runs of 8 or more happen to it with probability 0.002
    space, hits = ChoiceSpace(3, 4), []
    for seed in range(8):
        weights = np.random.default_rng(100 + seed).uniform(0, 100 / 3, size=(3, 4))
        optimum = space.to_string(tuple(int(i) for i in weights.argmax(1)))
        run = make_strategy("pnas", space, seed=seed, beam=4, **SMALL).run(Objective(additive(weights)),
                                                                           Budget(queries=16))
        found = [k for k, record in enumerate(run.records, start=1) if record[0] == optimum]
        hits.append(found[0] if found else None)
    found = [h for h in hits if h is not None]
    assert len(found) >= 6, hits
    assert np.mean(found) <= 16 < 64 / 2


# ---- resume, determinism, validation -----------------------------------------------------------------
def _drive(strategy, evaluator, steps):
    asked = []
    for _ in range(steps):
        g = strategy.ask()
        strategy.tell(g, evaluator.evaluate(g))
        asked.append(NB201.to_string(g))
    return asked


def test_state_dict_resume_continues_the_same_trajectory():
    evaluator, options = TabularEvaluator(), {"beam": 4, **SMALL}
    straight = _drive(make_strategy("pnas", NB201, seed=3, **options), evaluator, 24)  # 3 steps and 2 rounds
    first = make_strategy("pnas", NB201, seed=3, **options)
    head = _drive(first, evaluator, 7)  # in the middle of step 2
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = make_strategy("pnas", NB201, seed=99, **options)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    assert head + _drive(resumed, evaluator, 17) == straight
    assert _drive(make_strategy("pnas", NB201, seed=3, **options), evaluator, 24) == straight
    assert len(set(straight)) == len(straight)  # never evaluates a genotype twice


def test_a_non_percentage_objective_needs_the_minmax_target():
    strategy = make_strategy("pnas", NB201, seed=0, **SMALL)
    with pytest.raises(ConfigError, match="minmax"):
        strategy.tell(strategy.ask(), 153.0)
    scaled = make_strategy("pnas", NB201, seed=0, target="minmax", **SMALL)
    for value in (153.0, -2.0, float("nan")):
        scaled.tell(scaled.ask(), value)
    assert scaled._targets()[1] == [1.0, 0.0, 0.0]


OPTIONS = {"beam": st.integers(-5, 0), "ensemble": st.integers(-3, 0), "hidden": st.integers(-3, 0),
           "embedding": st.integers(-3, 0), "epochs": st.integers(-3, 0), "batch_size": st.integers(-3, 0),
           "lr": st.sampled_from([0.0, -1.0, float("nan"), float("inf")]),
           "predictor": st.text(max_size=8).filter(lambda t: t not in ("lstm", "mlp")),
           "target": st.text(max_size=8).filter(lambda t: t not in ("accuracy", "minmax")),
           "layout": st.text(max_size=8).filter(lambda t: t not in ("nodes", "decisions"))}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(OPTIONS)).flatmap(lambda key: st.tuples(st.just(key), OPTIONS[key])))
def test_bad_options_are_one_line_package_errors(option):
    key, value = option
    with pytest.raises(ArchSearchError) as error:
        make_strategy("pnas", NB201, seed=0, **{key: value})
    assert "\n" not in str(error.value) and key.split("_")[0] in str(error.value)


def test_wrongly_typed_options_are_refused():
    for key, value in (("beam", 2.5), ("beam", True), ("epochs", "10"), ("lr", "0.1")):
        with pytest.raises(ConfigError):
            make_strategy("pnas", NB201, seed=0, **{key: value})
    with pytest.raises(UnknownNameError, match="did you mean 'lstm'"):
        make_strategy("pnas", NB201, predictor="lstn")


def test_bench_runs_pnas_beside_random_search(tmp_path):
    from archsearch.studies.bench import run_bench

    summary = run_bench(["pnas", "random"], seeds=2, queries=20, options={"pnas": dict(SMALL)}, out=tmp_path,
                        quiet=True)
    assert summary["pnas"]["queries_mean"] == 20 and (tmp_path / "table.md").exists()
    with pytest.raises(ConfigError):
        run_bench(["pnas"], seeds=1, queries=5, options={"pnas": {"beam": 0}})
