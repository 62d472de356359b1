"""A search run end to end: directory, search, summary, and a brief training of the found cell."""

from __future__ import annotations

from pathlib import Path

from archsearch.errors import ArchSearchError
from archsearch.search.components import DRIVERS
from archsearch.search.config import SearchConfig
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.utils.io import write_json_atomic


def demo_config() -> SearchConfig:
    """The default method on NAS-Bench-201 over the embedded digits, sized for a few CPU minutes:
    the full NB201 supernet (C=16, N=5) on 8x8 images, then 15 epochs of training of the found cell."""
    return resolve_config(overrides={"space": "nb201", "data": "digits", "epochs": 30, "hessian_every": 5,
                                     "train_epochs": 15})


def run_search(config: SearchConfig | None = None, out_dir: str | Path | None = None, *,
               resume: str | Path | None = None, quiet: bool = False, dataset=None) -> dict:
    if resume is not None:
        out_dir = Path(resume)
        saved = out_dir / "config.yaml"
        config = SearchConfig.load(saved) if saved.is_file() else None
    out_dir = Path(out_dir)
    if config is not None and config.driver:  # a method made of several searches (P-DARTS' stages)
        search, genotype, summary = DRIVERS.get(config.driver)(
            config, out_dir, resume=resume is not None, quiet=quiet, dataset=dataset)
    else:
        if resume is not None:
            if not (out_dir / "checkpoint.pt").is_file():
                raise ArchSearchError(f"cannot resume: no checkpoint.pt in '{out_dir}'")
            search = DifferentiableSearch(config, out_dir, quiet=quiet, dataset=dataset)
            search.resume()
        else:
            if (out_dir / "checkpoint.pt").exists():
                raise ArchSearchError(f"'{out_dir}' already holds a run: use --resume {out_dir} or another --out")
            search = DifferentiableSearch(config, out_dir, quiet=quiet, dataset=dataset)
        genotype = search.run()
        summary = search.summary(genotype)
        if not search.is_main:  # a data-parallel search: process 0 trains the found cell and writes the run
            return {**summary, "out_dir": str(out_dir)}
    summary["out_dir"] = str(out_dir)
    if config.train_epochs > 0 and summary["genotype"] is not None:  # None: the selector found no valid cell
        summary["train"] = _train_found(search, genotype, out_dir / "train", quiet)
    write_json_atomic(out_dir / "genotype.json", summary)
    return summary


def _train_found(search: DifferentiableSearch, genotype, out_dir: Path, quiet: bool) -> dict:
    """Train the found cell from scratch on the search's dataset, with the space's recipe."""
    from archsearch.evaluate import default_recipe, train

    config = search.config
    network = {k: v for k, v in (("C", config.train_C), ("N", config.train_N)) if v}
    recipe = default_recipe(search.space).replace(epochs=config.train_epochs, network=network)
    result = train(genotype, search.space, search.dataset, recipe, out_dir=out_dir, seed=config.seed,
                   device=config.device, quiet=quiet, resume=(out_dir / "checkpoint.pt").exists(),
                   deterministic=config.deterministic)
    return {"epochs": config.train_epochs, "dataset": search.dataset.name,
            "test_accuracy": result["test_accuracy"], "params": result["params"]}
