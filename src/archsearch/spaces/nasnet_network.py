"""The CIFAR network of the NASNet family: a 3x3 stem, N normal cells per stage, a reduction cell between stages.

Built as tensorflow/models ``research/slim/nets/nasnet/nasnet.py`` builds NASNet-A for CIFAR-10
(``build_nasnet_cifar``, ``_build_nasnet_base``; cells: ``nasnet_utils.py`` ``NasNetABaseCell``); the
``enas`` skeleton is melodyguan/enas ``src/cifar10/micro_child.py`` (``_model``, ``_fixed_layer``), the
``pnasnet`` one ``pnasnet.py`` (``_build_pnasnet_base``). Line numbers below are those of the slim files as
vendored, unchanged, at Max-Reger-Institut/MeasureDetector ff46218 (research/slim/nets/nasnet/).

Both: stem = 3x3 conv of 3F channels and BN; reductions double F; the block ops of a reduction cell stride
where they read a cell input (``_apply_conv_operation``); the cell output concatenates ``concat``, states
of another size first brought to the last block's (``_combine_unused_states``, nasnet_utils.py:395);
ScheduledDropPath on every op but identity with p = drop_path_prob * (cell + 1) / cells, the trainer
raising ``drop_path_prob`` linearly over training (``_apply_drop_path`` v3, nasnet_utils.py:426-427; the
reference raises it per step, the trainer per epoch). They differ in:

============================  ====================================  =====================================
                              ``nasnet`` (slim)                     ``enas`` (micro_child.py)
============================  ====================================  =====================================
h_{i-1}                       ReLU-1x1-BN                           ReLU-1x1-BN where the width differs,
                                                                    then ReLU-1x1-BN (``layer_base``)
h_{i-2} of the first cell     the stem itself (prev_layer None)     ReLU-1x1-BN to F
identity that strides         ReLU-1x1(stride 2)-BN                 factorized reduction
auxiliary head                after the last cell of stage 2,       after the first cell of stage 3,
                              conv to 768 over the 4x4 map          2x2 conv, global pool
classifier                    ReLU, pool, linear with bias          ReLU, pool, dropout 0.2, no bias
============================  ====================================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.checks import number
from archsearch.errors import ConfigError, ShapeError, shown
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.darts_ops import FactorizedReduce
from archsearch.spaces.nasnet_genotypes import NasnetGenotype
from archsearch.spaces.nasnet_ops import ReLUConvBN, bn, make_op
from archsearch.spaces.ops import drop_path


@dataclass(frozen=True)
class Skeleton:
    raw_first_s0: bool  #: the first cell's h_{i-2} is the stem's output as it is
    double_s1: bool  #: h_{i-1} always passes one more ReLU-1x1-BN (ENAS' layer_base)
    identity_reduce: str  #: see nasnet_ops.make_op
    aux_stage3: bool  #: the auxiliary head reads the first cell of stage 3 (else the last of stage 2)
    dropout: float  #: before the classifier
    fc_bias: bool
    #: the reduction cell is the first of its stage's N (PNASNet: 3N cells), not added between stages (3N + 2)
    reduction_in_stage: bool = False


SKELETONS = {
    # nasnet.py cifar_config (l. 39-56: dense_dropout_keep_prob=1.0), _build_aux_head (l. 227), final_layer (l. 533)
    "nasnet": Skeleton(raw_first_s0=True, double_s1=False, identity_reduce="conv", aux_stage3=False,
                       dropout=0.0, fc_bias=True),
    # micro_child.py _maybe_calibrate_size, layer_base, aux_head_indices = [pool_layers[-1] + 1];
    # cifar10_micro_final.sh --child_keep_prob=0.80; its fully-connected weights have no bias
    # pnasnet.py _build_pnasnet_base: the cell at each of calc_reduction_layers(3N, 2) strides (l. 100-124);
    # 9 cells for CIFAR-10's N=3 (the first author, chenxi116/PNASNet.pytorch issue 1)
    "pnasnet": Skeleton(raw_first_s0=True, double_s1=False, identity_reduce="conv", aux_stage3=False,
                        dropout=0.0, fc_bias=True, reduction_in_stage=True),
    "enas": Skeleton(raw_first_s0=False, double_s1=True, identity_reduce="factorized", aux_stage3=True,
                     dropout=0.2, fc_bias=False),
}


def _reduce(c_in: int, c_out: int, relu: bool) -> nn.Module:
    """``factorized_reduction`` at stride 2 (nasnet_utils.py:90), with or without the ReLU before it."""
    reduce = FactorizedReduce(c_in, c_out)
    if not relu:
        reduce.relu = nn.Identity()
    return reduce


class Cell(nn.Module):
    """One cell: the two inputs brought to F channels, B blocks, the concatenated output."""

    def __init__(self, genotype: NasnetGenotype, cell: str, c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, first: bool, skeleton: Skeleton):
        super().__init__()
        self.reduction = reduction
        # h_{i-2}: _reduce_prev_layer (nasnet_utils.py:274) / _maybe_calibrate_size
        if first and skeleton.raw_first_s0:
            self.preprocess0, c0 = nn.Identity(), c_prev_prev
        elif reduction_prev:
            self.preprocess0, c0 = _reduce(c_prev_prev, c, relu=True), c
        elif c_prev_prev != c:
            self.preprocess0, c0 = ReLUConvBN(c_prev_prev, c), c
        else:
            self.preprocess0, c0 = nn.Identity(), c
        # h_{i-1}: _cell_base's ReLU-1x1-BN (nasnet_utils.py:295)
        calibrate = [ReLUConvBN(c_prev, c)] if skeleton.double_s1 and c_prev != c else []
        self.preprocess1 = nn.Sequential(*calibrate, ReLUConvBN(c, c) if calibrate else ReLUConvBN(c_prev, c))
        edges, self.combine = genotype.cell(cell), genotype.combine(cell)
        widths, sizes = [c0, c], [1, 1]  # channels and (relative) resolution of each state
        self.ops, self.sources, self.droppable = nn.ModuleList(), [], []
        for i, (op, source) in enumerate(edges):
            stride = 2 if reduction and source < 2 else 1
            self.ops.append(make_op(op, widths[source], c, stride, skeleton.identity_reduce))
            self.sources.append(source)
            self.droppable.append(op != "skip_connect")  # `if operation != 'none'` (nasnet_utils.py:391)
            if i % 2:
                widths.append(2 * c if self.combine[i // 2] == "concat" else c)
                sizes.append(2 if reduction else 1)
        self.concat = list(genotype.concat(cell))
        # _combine_unused_states: a state of another resolution or width than the last block's is reduced
        # (a factorized reduction without ReLU, stride 1: 1x1 conv and BN)
        target, self.fit = widths[-1], nn.ModuleDict()
        for s in self.concat:
            if sizes[s] != sizes[-1]:
                self.fit[str(s)] = _reduce(widths[s], target, relu=False)
            elif widths[s] != target:
                self.fit[str(s)] = ReLUConvBN(widths[s], target, relu=False)
        self.out_channels = sum(target if str(s) in self.fit else widths[s] for s in self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for block, combine in enumerate(self.combine):
            outs = []
            for i in (2 * block, 2 * block + 1):
                h = self.ops[i](states[self.sources[i]])
                if self.training and drop_prob > 0.0 and self.droppable[i]:
                    h = drop_path(h, drop_prob)
                outs.append(h)
            states.append(outs[0] + outs[1] if combine == "add" else torch.cat(outs, dim=1))
        return torch.cat([self.fit[str(s)](states[s]) if str(s) in self.fit else states[s] for s in self.concat],
                         dim=1)


class AuxiliaryHead(nn.Module):
    """ReLU, 5x5 avg pool (stride 3), 1x1 conv 128, BN, ReLU, conv to 768 over the whole map, BN, ReLU, linear
    (nasnet.py:227 ``_build_aux_head``; micro_child.py's head pads its 2x2 conv SAME and pools globally).

    On CIFAR the pooled map is ``size`` pixels wide (4 for NASNet, 2 for ENAS); on other inputs it is
    average-pooled to that size, so the parameters are the reference's whatever the image size.
    """

    def __init__(self, channels: int, num_classes: int, size: int, same_padding: bool, fc_bias: bool):
        super().__init__()
        self.size, self.same_padding = size, same_padding
        self.pool = nn.AvgPool2d(5, stride=3)
        self.project = nn.Sequential(nn.Conv2d(channels, 128, 1, bias=False), bn(128), nn.ReLU(inplace=True))
        self.conv = nn.Sequential(nn.Conv2d(128, 768, size, bias=False), bn(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes, bias=fc_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)  # not in place: x is the cell output the next cells read
        if min(x.shape[-2:]) >= 5:
            x = self.pool(x)
        x = self.project(F.adaptive_avg_pool2d(x, self.size))
        if self.same_padding:  # TensorFlow's SAME for an even kernel pads right and bottom
            x = F.pad(x, (0, self.size - 1, 0, self.size - 1))
        return self.classifier(self.conv(x).mean((2, 3)))


class NASNetCIFAR(nn.Module):
    """Stem, then N normal cells, a reduction cell, N normal, a reduction, N normal; global pooling, linear."""

    def __init__(self, genotype: NasnetGenotype, C: int = 32, N: int = 6, num_classes: int = 10,
                 auxiliary: bool = True, drop_path_prob: float = 0.0, in_channels: int = 3,
                 skeleton: str = "nasnet", stem_multiplier: int = 3):
        super().__init__()
        C, N, num_classes, in_channels, stem_multiplier = positive_sizes(
            C=C, N=N, num_classes=num_classes, in_channels=in_channels, stem_multiplier=stem_multiplier)
        if C % 2:
            raise ConfigError(f"the NASNet network needs an even filter count C (factorized reductions split it "
                              f"in two halves), got {C}")
        if skeleton not in SKELETONS:
            raise ConfigError(f"unknown NASNet skeleton {shown(skeleton)} (skeletons: {', '.join(SKELETONS)})")
        drop_path_prob = number(drop_path_prob, "drop_path_prob", minimum=0.0)
        if drop_path_prob >= 1.0:
            raise ConfigError(f"drop_path_prob must be below 1, got {drop_path_prob}")
        form = SKELETONS[skeleton]
        self.genotype, self.in_channels, self.skeleton = genotype, in_channels, skeleton
        #: drop-path probability of the last cell; schedules raise it over training
        self.drop_path_prob = drop_path_prob
        c_stem = stem_multiplier * C  # _cifar_stem (nasnet.py:280): 3x3 conv, BN, no ReLU
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), bn(c_stem))
        rest = N - 1 if form.reduction_in_stage else N  # normal cells after each reduction
        plan = [(False, C)] * N + [(True, 2 * C)] + [(False, 2 * C)] * rest + [(True, 4 * C)] + [(False, 4 * C)] * rest
        second_reduction = N + 1 + rest
        # the cell whose output the head reads: before the second reduction (nasnet.py:485), or after it (ENAS)
        self.aux_index = second_reduction + 1 if form.aux_stage3 and rest else second_reduction - 1
        c_prev_prev, c_prev, reduction_prev, c_aux = c_stem, c_stem, False, None
        cells = []
        for i, (reduction, c) in enumerate(plan):
            cell = Cell(genotype, "reduce" if reduction else "normal", c_prev_prev, c_prev, c, reduction,
                        reduction_prev, i == 0, form)
            cells.append(cell)
            c_prev_prev, c_prev, reduction_prev = c_prev, cell.out_channels, reduction
            if i == self.aux_index:
                c_aux = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = (AuxiliaryHead(c_aux, num_classes, 2 if form.aux_stage3 else 4, form.aux_stage3,
                                             form.fc_bias) if auxiliary else None)
        self.dropout = nn.Dropout(form.dropout)
        self.classifier = nn.Linear(c_prev, num_classes, bias=form.fc_bias)

    def forward(self, x: torch.Tensor):
        """Logits; in training mode with an auxiliary head, ``(logits, aux_logits)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                             "set in_channels when building the network")
        s0 = s1 = self.stem(x)
        aux, total = None, len(self.cells)
        for i, cell in enumerate(self.cells):
            # ScheduledDropPath v3: the probability grows with depth, (cell + 1) / cells of the final one
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob * (i + 1) / total)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.dropout(torch.relu(s1).mean((2, 3))))
        return (logits, aux) if aux is not None else logits
