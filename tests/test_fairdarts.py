"""FairDARTS: sigmoid relaxation, zero-one loss, threshold selection and invalid-cell detection;
the fairdarts, fairdarts-dscd and xnas presets end to end."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.search.selectors.threshold import ThresholdSelector, cell_topology, reaches_output
from archsearch.spaces import get_space
from archsearch.utils.checkpoint import CheckpointStore
from archsearch.utils.io import read_jsonl

REAL_NB201_OPS = [op for op in get_space("nb201").ops if op != "none"]
TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3, "hessian_every": 0, "data": "digits"}


def test_sigmoid_weights_are_independent_and_the_zero_one_loss_is_the_formula():
    relax = build_relaxation("sigmoid")
    alpha = torch.tensor([[2.0, 3.0, -1.0, 0.0, 1.5]], requires_grad=True)
    w = relax(alpha)
    assert ((w > 0.8).sum() == 3)  # several ops active on one edge
    torch.testing.assert_close(w, 1 / (1 + torch.exp(-alpha)))
    loss = relax.extra_loss({"a": alpha, "b": torch.zeros(2, 5)})
    values = torch.cat([torch.sigmoid(alpha.detach()).flatten(), torch.full((10,), 0.5)])
    expected = -10.0 * ((values - 0.5) ** 2).mean()  # w01 = 10
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()  # descent moves every weight away from 0.5: the gradient has the sign of -(w - 0.5)
    moving = alpha.detach() != 0
    assert torch.all(torch.sign(-alpha.grad[moving]) == torch.sign(w.detach()[moving] - 0.5))


def test_cell_paths_on_both_spaces():
    nb201 = cell_topology(get_space("nb201"))  # rows: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    assert reaches_output([3], nb201)  # 3<-0 alone connects
    assert reaches_output([0, 2, 5], nb201)  # 0 -> 1 -> 2 -> 3
    assert not reaches_output([0, 5], nb201)  # node 2 is never reached, so 3<-2 carries nothing
    assert not reaches_output([0, 1, 2], nb201)  # nothing enters node 3
    darts = cell_topology(get_space("darts"))  # rows: node0<-{0,1}, node1<-{0,1,2}, ...
    assert reaches_output([0], darts)
    assert not reaches_output([4], darts)  # node 1 <- node 0 while node 0 has no input edge


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits", quiet=True)


def test_threshold_selector_reports_a_collapsed_cell_instead_of_a_genotype(tmp_path, digits, caplog):
    config = resolve_config("fairdarts", overrides={**TINY, "hessian_every": 0})
    search = DifferentiableSearch(config, tmp_path, quiet=True, dataset=digits)
    alpha = search.model.alphas["cell"]
    conv = REAL_NB201_OPS.index("nor_conv_3x3")  # alpha's columns: the preset leaves `none` out
    with torch.no_grad():
        alpha.fill_(-3.0)
        alpha[[0, 2, 5], conv] = 3.0  # 0 -> 1 -> 2 -> 3 through kept convolutions
    genotype = search.selector.select(search.view())
    assert search.space.to_string(genotype) == "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert search.selector.invalid_reason(search.view(), genotype) is None
    assert search.summary(genotype)["genotype"] == search.space.to_string(genotype)
    with torch.no_grad():
        alpha[2, conv] = 0.0  # sigmoid 0.5 < 0.8: node 2 is cut off, so is the output
    with caplog.at_level("WARNING", logger="archsearch"):
        record = search.selector.record(search.view())
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "is invalid" in caplog.records[0].getMessage()
    assert record["threshold_valid"] is False
    summary = search.summary(search.selector.select(search.view()))
    assert summary["genotype"] is None and "threshold 0.8" in summary["invalid_architecture"]
    assert "ground_truth" not in summary


def test_threshold_selector_counts_the_darts_edges_it_drops(tmp_path, digits):
    """A DARTS genotype keeps two inputs per node whatever the threshold, so the record says how many of
    the cell's 14 edges hold no op above it: here 14 minus the 3 edges set above."""
    config = resolve_config("fairdarts", overrides={**TINY, "space": "darts", "layers": 2, "N": 5})
    search = DifferentiableSearch(config, tmp_path, quiet=True, dataset=digits)
    conv = PRIMITIVES.index("sep_conv_3x3")
    with torch.no_grad():
        for alpha in search.model.alphas.values():
            alpha.fill_(-3.0)
            alpha[[0, 1, 4], conv] = 3.0  # node 2 from both inputs, node 3 from node 2
    record = search.selector.record(search.view())
    assert record["threshold_dropped"] == {"normal": 11, "reduce": 11}


@pytest.mark.parametrize("method", ["fairdarts", "fairdarts-dscd", "xnas"])
def test_presets_run_end_to_end(tmp_path, digits, method, caplog):
    config = resolve_config(method, overrides=TINY)
    with caplog.at_level("WARNING", logger="archsearch"):
        summary = run_search(config, tmp_path, quiet=True, dataset=digits)
    # the thresholded cell is invalid after one epoch: one warning line per epoch (none for XNAS)
    assert [r.getMessage().startswith("archsearch: warning:") for r in caplog.records] == \
        ([] if method == "xnas" else [True])
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(records) == 1
    if method == "xnas":
        alive = records[0]["alive_ops"]["cell"]
        assert alive == [1] * 6  # at t = T only each edge's leader is left
        assert summary["genotype"] is not None
        state = CheckpointStore(tmp_path).load()[0]["a_optimizer"]["state"]
        assert state[0]["alive"].sum() == 6  # the checkpoint remembers the removals
    else:
        assert "threshold_valid" in records[0] and "zero_one_loss" in records[0]
        # at the start every sigmoid weight is 0.5 < 0.8: after one epoch the cell is still invalid
        assert records[0]["threshold_valid"] is False and summary["genotype"] is None
        saved = json.loads((tmp_path / "genotype.json").read_text())
        assert saved["invalid_architecture"] and saved["rejected_genotype"]
    if method == "fairdarts-dscd":
        assert records[0]["dscd"]["local"] + records[0]["dscd"]["global"] > 0


# ---- the reference's 7 ops and its threshold_sparse genotype -----------------------------------------------
# Transcriptions of xiaomi-automl/FairDARTS (fairdarts/): the oracles of the tests below.
PRIMITIVES = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
              "dil_conv_5x5"]  # genotypes.py:8-16


def reference_zero_one_loss(alphas_normal, alphas_reduce, weight=10.0):
    """ConvSeparateLoss' aux term (separate_loss.py:16) on train_search.py:209's input, times --aux_loss_weight."""
    aux_input = torch.cat([torch.sigmoid(alphas_normal), torch.sigmoid(alphas_reduce)], dim=0)
    with warnings.catch_warnings():  # the reference broadcasts a scalar target, which torch warns about
        warnings.simplefilter("ignore", UserWarning)
        return weight * -torch.nn.functional.mse_loss(aux_input, torch.tensor(0.5))


def reference_threshold_sparse(weights, op_threshold, steps=4):
    """utils.py:143-189, parse_method='threshold_sparse': (op, to, from) of each kept edge."""
    gene, n, start = [], 2, 0
    for i in range(steps):
        end = start + n
        W = weights[start:end].copy()
        edges = sorted(range(i + 2), key=lambda x: -max(W[x][k] for k in range(len(W[x]))))[:2]
        for j in edges:
            k_best = None
            for k in range(len(W[j])):
                if k_best is None or W[j][k] > W[j][k_best]:
                    k_best = k
            if W[j][k_best] >= op_threshold:
                gene.append((PRIMITIVES[k_best], i + 2, j))
        start = end
        n += 1
    return gene


def reference_cell(gene):
    """What model.py:76-117's DCOCell computes from a gene: the edges it runs (an edge from a node not in
    ``states`` is skipped, model.py:108-110) and the nodes it concatenates (model.py:117). A node all of
    whose edges are skipped would make the reference sum an empty list; such a node is left out, as the
    isolated nodes are."""
    ops = {}
    for name, to, source in gene:
        ops.setdefault(to, []).append((name, source))
    states, run = [0, 1], set()
    for to, edges in ops.items():
        live = {(name, to, source) for name, source in edges if source in states}
        if live:
            run |= live
            states.append(to)
    return run, states[2:]


def ours_as_cell(genotype, cell):
    edges = {(op, 2 + i // 2, source) for i, (op, source) in enumerate(genotype.cell(cell)) if op != "none"}
    return edges, list(genotype.concat(cell))


_DARTS_SUPERNET = {}


def darts_view(exclude_ops=("none",)):
    """A SearchView of a small FairDARTS supernet on the DARTS space (built once per option)."""
    from archsearch.search.view import SearchView

    if exclude_ops not in _DARTS_SUPERNET:
        torch.manual_seed(0)
        _DARTS_SUPERNET[exclude_ops] = get_space("darts").supernet(relaxation=build_relaxation("sigmoid"), C=4,
                                                                   layers=2, exclude_ops=list(exclude_ops))
    return SearchView(space=get_space("darts"), supernet=_DARTS_SUPERNET[exclude_ops],
                      relaxation=build_relaxation("sigmoid"), arch_optimizer=None, config=None, epoch=0,
                      device=torch.device("cpu"), score_batch=None, num_classes=10, in_channels=3)


def test_the_darts_preset_has_the_reference_seven_ops_and_its_zero_one_loss():
    config = resolve_config("fairdarts", overrides={"space": "darts"})
    assert config.supernet_options == {"exclude_ops": ["none"]}
    view = darts_view()
    alphas = view.supernet.named_arch_parameters()
    assert {name: tuple(a.shape) for name, a in alphas.items()} == {"normal": (14, 7), "reduce": (14, 7)}
    assert [op for op in view.space.ops if op != "none"] == PRIMITIVES  # the same columns, the same order
    with torch.no_grad():
        for a in alphas.values():
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(1)) * 2)
            a.grad = None
    relax = build_relaxation(config.relaxation, **config.relaxation_options)
    ours = relax.extra_loss(alphas)
    normal, reduce = (alphas[name].detach().clone().requires_grad_() for name in ("normal", "reduce"))
    reference = reference_zero_one_loss(normal, reduce)
    torch.testing.assert_close(ours, reference)
    ours.backward()
    reference.backward()
    torch.testing.assert_close(alphas["normal"].grad, normal.grad)
    torch.testing.assert_close(alphas["reduce"].grad, reduce.grad)
    # the selection still sees every op: `none` weighs 0 and is never chosen
    weights = view.deterministic_weights()
    assert weights["normal"].shape == (14, 8) and not weights["normal"][:, OPS_DARTS.index("none")].any()


OPS_DARTS = get_space("darts").ops


def test_the_eight_op_option_keeps_the_dead_column_and_pulls_seven_eighths_as_hard():
    """exclude_ops: [] is the supernet as before: a `none` column in alpha and in the mean, so every real op's
    zero-one gradient is 7/8 of the reference's on the same real-op alphas."""
    config = resolve_config("fairdarts", overrides={"space": "darts", "supernet_options": {"exclude_ops": []}})
    assert config.supernet_options == {"exclude_ops": []}
    eight = darts_view(exclude_ops=()).supernet.named_arch_parameters()
    assert {tuple(a.shape) for a in eight.values()} == {(14, 8)}
    real = torch.randn(2, 14, 7, generator=torch.Generator().manual_seed(2)) * 2
    with torch.no_grad():
        for c, a in enumerate(eight.values()):
            a.copy_(torch.randn(14, 8, generator=torch.Generator().manual_seed(3)))
            a[:, 1:] = real[c]
            a.grad = None
    relax = build_relaxation("sigmoid")
    loss = relax.extra_loss(eight)
    values = torch.cat([torch.sigmoid(a.detach()).flatten() for a in eight.values()])
    assert float(loss.detach()) == pytest.approx(float(-10 * ((values - 0.5) ** 2).mean()))  # the formula, as before
    loss.backward()
    normal, reduce = (real[c].clone().requires_grad_() for c in range(2))
    reference_zero_one_loss(normal, reduce).backward()
    torch.testing.assert_close(eight["normal"].grad[:, 1:], normal.grad * 7 / 8)
    torch.testing.assert_close(eight["reduce"].grad[:, 1:], reduce.grad * 7 / 8)


def test_on_nb201_the_preset_leaves_none_out_and_computes_the_same_network():
    """Under the sigmoid the weight of `none` multiplies zeros: without its column the supernet's output is
    the same for the same real-op alphas, on the fused and the reference path."""
    space = get_space("nb201")
    nets = []
    for exclude in ([], ["none"]):
        torch.manual_seed(0)
        nets.append(space.supernet(relaxation=build_relaxation("sigmoid"), C=4, N=1, exclude_ops=exclude))
    with torch.no_grad():
        nets[0].alphas["cell"].normal_()
        nets[1].alphas["cell"].copy_(nets[0].alphas["cell"][:, 1:])
    nets[1].load_state_dict({k: v for k, v in nets[0].state_dict().items() if not k.startswith("alphas")},
                            strict=False)
    assert tuple(nets[1].alphas["cell"].shape) == (6, 4)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for path in ("fast", "reference"):
        for net in nets:
            net.set_path(path)
        torch.testing.assert_close(nets[1](x), nets[0](x))


@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 6.0), threshold=st.floats(0.05, 0.95),
       ties=st.booleans())
@settings(max_examples=60, deadline=None)
def test_sparse_genotype_is_the_reference_threshold_sparse_cell(seed, scale, threshold, ties):
    view = darts_view()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for alpha in view.supernet.named_arch_parameters().values():
            alpha.copy_(torch.randn(alpha.shape, generator=generator) * scale)
            if ties:  # equal weights: the reference's stable sort and strict > decide, so must ours
                alpha.copy_(alpha.round())
    selector = ThresholdSelector(threshold=threshold, mode="sparse")
    genotype = selector.select(view)
    for name, alpha in view.supernet.named_arch_parameters().items():
        weights = torch.sigmoid(alpha.detach()).numpy()  # model_search.py:151
        run, concat = reference_cell(reference_threshold_sparse(weights, threshold))
        if concat:
            assert ours_as_cell(genotype, name) == (run, concat)
        else:  # the reference cannot build this cell; ours is all `none` and reported invalid
            assert ours_as_cell(genotype, name)[0] == set()
            assert name in selector.invalid_cells(view)
    assert (selector.invalid_reason(view, genotype) is None) == all(
        reference_cell(reference_threshold_sparse(torch.sigmoid(a.detach()).numpy(), threshold))[1]
        for a in view.supernet.named_arch_parameters().values())
    # top2 is the space's DARTS rule whatever the threshold
    top2 = ThresholdSelector(threshold=threshold, mode="top2").select(view)
    assert top2 == view.space.genotype_from_weights(view.deterministic_weights())


def test_sparse_cells_of_the_reference_have_its_published_sizes():
    """FairDARTS_a and _b as printed in genotypes.py:150-156, through keep_edges: 2.83M and 3.88M parameters
    (README's table; thop counts the auxiliary head), which needs the isolated node out of the concat."""
    from archsearch.spaces.darts_genotypes import ROW_OF, DartsGenotype, node_inputs

    a = ([("sep_conv_3x3", 2, 0), ("sep_conv_5x5", 2, 1), ("max_pool_3x3", 4, 0), ("sep_conv_3x3", 5, 0)],
         [("max_pool_3x3", 2, 0), ("avg_pool_3x3", 2, 1), ("avg_pool_3x3", 3, 0), ("dil_conv_5x5", 3, 1),
          ("avg_pool_3x3", 4, 0), ("sep_conv_5x5", 4, 1), ("skip_connect", 5, 0), ("skip_connect", 5, 1)])
    b = ([("sep_conv_3x3", 2, 0), ("sep_conv_3x3", 2, 1), ("sep_conv_3x3", 3, 1), ("dil_conv_3x3", 4, 0),
          ("sep_conv_5x5", 4, 1), ("dil_conv_5x5", 5, 1)],
         [("skip_connect", 2, 0), ("dil_conv_3x3", 2, 1), ("skip_connect", 3, 0), ("dil_conv_3x3", 3, 1),
          ("max_pool_3x3", 4, 0), ("sep_conv_3x3", 4, 1), ("skip_connect", 5, 2), ("max_pool_3x3", 5, 0)])
    space = get_space("darts")
    for (normal, reduce), millions in ((a, 2.83), (b, 3.88)):
        cells, rows = {}, {}
        for cell, gene in (("normal", normal), ("reduce", reduce)):
            edges = []
            for node in range(4):
                mine = [(op, source) for op, to, source in gene if to == node + 2]
                spare = [s for s in node_inputs(node) if s not in {s for _, s in mine}]
                edges += mine + [("skip_connect", s) for s in spare[:2 - len(mine)]]  # to be emptied
            cells[cell] = edges
            rows[cell] = [ROW_OF[(to - 2, source)] for _, to, source in gene]
        full = DartsGenotype(cells["normal"], (2, 3, 4, 5), cells["reduce"], (2, 3, 4, 5))
        sparse = space.keep_edges(full, rows)
        assert [ours_as_cell(sparse, c) for c in ("normal", "reduce")] == [reference_cell(g) for g in (normal, reduce)]
        net = space.network(space.to_string(sparse))  # the text format carries it
        params = sum(p.numel() for p in net.parameters())
        assert params / 1e6 == pytest.approx(millions, abs=0.01)


def test_keep_edges_empties_what_an_isolated_node_feeds():
    space = get_space("darts")
    genotype = space.named("DARTS_V2")  # normal: node 3 <- input 0 (skip) and input 2, i.e. node 0 (dil_conv)
    keep = {"normal": [2, 3, 5, 6, 9, 11], "reduce": range(14)}  # node 0's edges (rows 0, 1) dropped
    sparse = space.keep_edges(genotype, keep)
    assert sparse.normal[:2] == (("none", 0), ("none", 1))
    assert sparse.normal[6:] == (("skip_connect", 0), ("none", 2))  # from the isolated node: emptied too
    assert sparse.normal[2:6] == genotype.normal[2:6]
    assert sparse.normal_concat == (3, 4, 5) and sparse.reduce == genotype.reduce


@pytest.mark.parametrize("overrides, message", [
    ({"selector_options": {"mode": "dense"}}, "mode must be one of sparse, top2, got 'dense'"),
    ({"selector_options": {"max_inputs": None}}, "max_inputs must be 1..2"),
    ({"selector_options": {"max_inputs": 3, "mode": "sparse"}}, "max_inputs must be 1..2"),
])
def test_bad_selector_options_are_refused_before_the_search(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("fairdarts", overrides={"space": "darts", **overrides})
    resolve_config("fairdarts", overrides={"space": "darts", "selector_options": {"max_inputs": None, "mode": "top2"}})


@pytest.mark.parametrize("space", ["darts", "nb201"])
@pytest.mark.parametrize("exclude, message", [
    (["nonee"], "'nonee' is no op of the space.*did you mean 'none'"),
    ("none", "must be a list of op names"),
    (None, "removes every op"),  # None: every op of the space
])
def test_bad_exclude_ops_are_refused_when_the_supernet_is_built(space, exclude, message):
    space = get_space(space)
    with pytest.raises(ConfigError, match=message):
        space.supernet(C=4, **({"layers": 2} if space.name == "darts" else {"N": 1}),
                       exclude_ops=list(space.ops) if exclude is None else exclude)
