"""PNAS's surrogate (Liu et al., ECCV 2018, Sec. 3.3): an ensemble of small networks that read a cell of
any number of blocks and regress its accuracy.

A cell arrives as blocks of tokens: each block lists its input tokens, then its op tokens (PNAS's block is
(I1, I2, O1, O2); a NAS-Bench-201 node j has j inputs and j ops). Input and op tokens live in one
embedding table with disjoint rows, which is the paper's "shared embedding for the I tokens and another for
the O tokens"; the last row is padding (an all-zero vector that is never trained).

- ``lstm``: the LSTM reads the cell's tokens block after block; its last hidden state goes through a
  fully connected layer and a sigmoid (Sec. 3.3). Hidden size and embedding size 100 (Sec. 5.1).
- ``mlp``: each token embedded, a block's embeddings concatenated (a block narrower than the widest is
  padded), averaged over the cell's blocks, then an MLP with hidden layers of 100 units and a sigmoid
  (Sec. 3.3: "concatenate the embeddings for each block ... and then average over blocks"). Two hidden
  layers is our reading of the paper.
- Both trained with the L1 loss on accuracy as a fraction (Sec. 3.3). The output bias starts at the logit
  of the mean target: the paper starts it at 1.8 (0.86 after the sigmoid), the mean accuracy of its
  one-block cells; on NAS-Bench-201's 12-epoch accuracies that mean is far lower.
- Ensemble of 5, each member fitted from scratch on 4/5 of everything evaluated (Sec. 3.3), folds drawn
  at random; the prediction is the members' mean.
- Adam, learning rate 0.01, mini-batches of 16, 20 epochs per fit: the paper does not give them (our
  choice, measured in docs/pnas.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

PREDICTORS = ("lstm", "mlp")


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


class CellLSTM(nn.Module):
    """Embedding -> LSTM over the cell's tokens -> linear -> sigmoid, read at each cell's last token."""

    def __init__(self, vocabulary: int, embedding: int = 100, hidden: int = 100):
        super().__init__()
        self.embed = nn.Embedding(vocabulary + 1, embedding, padding_idx=vocabulary)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, sequences: torch.Tensor, lengths: torch.Tensor, _blocks=None, _counts=None) -> torch.Tensor:
        out, _ = self.lstm(self.embed(sequences))  # n x L x hidden; padding only after a cell's last token
        last = out[torch.arange(len(out)), lengths - 1]  # the LSTM is causal: the pads never reach it
        return torch.sigmoid(self.head(last)).squeeze(-1)


class CellMLP(nn.Module):
    """Token embeddings concatenated per block, averaged over blocks, MLP -> sigmoid."""

    def __init__(self, vocabulary: int, width: int, embedding: int = 100, hidden: int = 100, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocabulary + 1, embedding, padding_idx=vocabulary)
        sizes = [width * embedding] + [hidden] * layers
        body = []
        for a, b in zip(sizes, sizes[1:]):
            body += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(sizes[-1], 1)

    def forward(self, _sequences, _lengths, blocks: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        n, depth, width = blocks.shape
        per_block = self.embed(blocks).view(n, depth, -1)  # n x blocks x (width * embedding)
        present = (torch.arange(depth) < counts.unsqueeze(1)).unsqueeze(-1)
        mean = (per_block * present).sum(1) / counts.unsqueeze(1)  # the average over the cell's own blocks
        return torch.sigmoid(self.head(self.body(mean))).squeeze(-1)


def featurise(cells: list[list[list[int]]], pad: int, width: int) -> tuple[torch.Tensor, ...]:
    """Cells (blocks of token ids) as (sequences, lengths) for the LSTM and (blocks, counts) for the MLP."""
    flat = [[t for block in cell for t in block] for cell in cells]
    lengths = torch.tensor([len(f) for f in flat])
    sequences = torch.full((len(cells), int(lengths.max())), pad, dtype=torch.long)
    depth = max(len(cell) for cell in cells)
    blocks = torch.full((len(cells), depth, width), pad, dtype=torch.long)
    for i, (f, cell) in enumerate(zip(flat, cells)):
        sequences[i, : len(f)] = torch.tensor(f)
        for j, block in enumerate(cell):
            blocks[i, j, : len(block)] = torch.tensor(block)
    counts = torch.tensor([len(cell) for cell in cells])
    return sequences, lengths, blocks, counts


class Ensemble:
    """``members`` predictors of one kind, each refitted from scratch on a different 4/5 of the data."""

    def __init__(self, kind: str, vocabulary: int, width: int, members: int = 5, embedding: int = 100,
                 hidden: int = 100, lr: float = 0.01, epochs: int = 20, batch_size: int = 16):
        self.kind, self.vocabulary, self.width, self.members = kind, vocabulary, width, members
        self.embedding, self.hidden, self.lr, self.epochs, self.batch_size = embedding, hidden, lr, epochs, batch_size
        self.models: list[nn.Module] = []

    def build(self) -> nn.Module:
        if self.kind == "lstm":
            return CellLSTM(self.vocabulary, self.embedding, self.hidden)
        return CellMLP(self.vocabulary, self.width, self.embedding, self.hidden)

    def _features(self, cells):
        return featurise(cells, self.vocabulary, self.width)

    def fit(self, cells: list, targets: list[float], generator: torch.Generator) -> None:
        """Fit every member from scratch; ``targets`` are accuracies as fractions in [0, 1]."""
        features = self._features(cells)
        y = torch.tensor(targets, dtype=torch.float32)
        n = len(y)
        folds = torch.randperm(n, generator=generator) % self.members  # fold of each point
        self.models = []
        for k in range(self.members):
            # member k leaves out fold k (4/5 of the data with 5 members); with too few points, all of it
            keep = (folds != k).nonzero().squeeze(-1) if n >= self.members > 1 else torch.arange(n)
            self.models.append(self._fit_one(features, y, keep, generator))

    def _fit_one(self, features, y, keep, generator) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            model = self.build()
        with torch.no_grad():
            model.head.bias.fill_(_logit(float(y[keep].mean())))
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.epochs):
                order = keep[torch.randperm(len(keep), generator=generator)]
                for batch in order.split(self.batch_size):
                    loss = (model(*(f[batch] for f in features)) - y[batch]).abs().mean()  # L1 (Sec. 3.3)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        return model.eval()

    @torch.no_grad()
    def predict(self, cells: list, chunk: int = 4096) -> torch.Tensor:
        """The members' mean prediction (accuracy as a fraction) of each cell."""
        out = []
        for start in range(0, len(cells), chunk):
            features = self._features(cells[start: start + chunk])
            out.append(torch.stack([model(*features) for model in self.models]).mean(0))
        return torch.cat(out)
