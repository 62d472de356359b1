"""Generators for the other commands: ground truth (nb201 query, info, show), the studies (bench, proxies,
zero-cost, optbench), demo and command lines that are garbage from the start."""

from __future__ import annotations

import os
import random

from . import oracle as o
from .common import CaseMaker, _argparse_float, _argparse_int, _dedupe_flags, _int_or_none, name_list, pick
from .gen_search import OPTION_SAMPLES, SEARCH_SAMPLES, TINY
from .genotypes import SURROGATE, arch_for, nb201_random, typo, valid_arch
from .oracle import EITHER, INVALID, OK, VALID, Given, Verdict, worst
from .runner import Case


class CommandCases(CaseMaker):
    # -- ground truth, info, show -------------------------------------------------------------------------
    def nb201(self, rng: random.Random) -> Case:
        arch, verdict = arch_for(rng, "nb201", index_ok=True)
        argv = ["nb201", "query", arch]
        roll = rng.random()
        if roll < 0.35:
            dataset = rng.choice([*o.NB201_DATASETS, *o.NB201_DATASETS, *o.NB201_DATASET_ALIASES, "imagenet", "",
                                  typo(rng, "cifar100"), "cifar10-valid", SURROGATE])
            argv += ["--dataset", dataset]
            # cifar10-valid: NAS-Bench-201's own name of its CIFAR-10 train/valid setting
            verdict = worst(verdict, OK if dataset in (*o.NB201_DATASETS, "cifar10-valid") else
                            Verdict(EITHER, "a dataset alias") if dataset in o.NB201_DATASET_ALIASES else
                            Verdict(INVALID, f"unknown dataset {dataset!r}"))
        elif roll < 0.42:
            argv, verdict = rng.choice([(argv + ["extra"], Verdict(INVALID, "an extra argument")),
                                        (["nb201", "lookup", arch], Verdict(INVALID, "no such subcommand")),
                                        (["nb201", "query"], Verdict(INVALID, "no architecture")),
                                        (["nb201"], Verdict(INVALID, "no subcommand")),
                                        (argv + ["--json", "--json"], verdict)])
        if rng.random() < 0.5:
            argv.append("--json")
        return Case("nb201", argv, verdict.label, verdict.why)

    def info(self, rng: random.Random) -> Case:
        space = rng.choice(["nb201", "nb201", "darts"])
        arch, verdict = arch_for(rng, space) if rng.random() < 0.5 else (valid_arch(rng, space), OK)
        argv = ["info", arch] + (["--space", space] if space != "nb201" or rng.random() < 0.3 else [])
        flags = {}  # flag -> verdict of its (last) value
        for _ in range(rng.choice([0, 1, 1, 2])):
            flag = rng.choice(["--num-classes", "--C", "--N", "--layers", "--image-size", "--space"])
            if flag == "--space" and verdict.label != VALID:
                continue
            if flag == "--space":
                value = rng.choice(["nasbench999", "", "NB201", "darts" if space == "nb201" else "nb201"])
                flags[flag] = Verdict(INVALID, f"--space {value!r} for a {space} cell")
            else:
                samples = {"--num-classes": ["10", "100", "1"], "--C": ["4", "8", "16"], "--N": ["1", "2"],
                           "--layers": ["3", "8"], "--image-size": ["16", "32", "64"]}[flag]
                value = pick(rng, flag[2:], samples)
                flags[flag] = self._info_flag(flag, value, space)
            argv = _dedupe_flags(argv + [flag, value])
        if rng.random() < 0.5:
            argv.append("--json")
        verdict = worst(verdict, *flags.values())
        return Case("info", argv, verdict.label, verdict.why)

    def _info_flag(self, flag: str, value: str, space: str) -> Verdict:
        n = _int_or_none(value)
        if (flag, space) in (("--N", "darts"), ("--layers", "nb201")):
            verdict = _argparse_int(value, o.Int(1))
            return verdict if verdict.label == INVALID else Verdict(INVALID, f"{flag} means nothing to {space}")
        rule = {"--num-classes": o.Int(1, big=100_000), "--image-size": o.Int(1, big=4096)}.get(flag, o.Int(1, big=4096))
        verdict = _argparse_int(value, rule)
        if flag == "--C" and space == "darts" and n is not None and n > 0 and n % 2:
            return Verdict(INVALID, "the DARTS space needs an even C")
        if flag == "--image-size" and n is not None and 0 < n < (16 if space == "darts" else 8):
            return worst(verdict, Verdict(EITHER, "images smaller than the network's reductions"))
        if flag == "--layers" and n is not None and 0 < n < 3:
            return worst(verdict, Verdict(EITHER, "fewer cells than the two reductions"))
        return verdict

    def show(self, rng: random.Random) -> Case:
        space = rng.choice(["nb201", "darts"])
        arch, verdict = arch_for(rng, space) if rng.random() < 0.5 else (valid_arch(rng, space), OK)
        argv = ["show", arch, "--space", space]
        ops, keep, keep_mode, keep_type, unprivileged = [], [], [], [], False
        kinds = ["new", "nested", "existing", "folder", "fifo", "ro parent", "file parent", "empty", "jpg", "long",
                 "symlink", "none"] + (["chardev"] if self.env.can_mknod else [])
        kind = rng.choice(kinds)
        out, out_verdict = {
            "new": ("cell.png", OK), "nested": ("a/b/cell.png", OK), "existing": ("cell.png", OK),
            "folder": ("cell.png", Verdict(INVALID, "--out is a folder")),
            "fifo": ("cell.png", Verdict(INVALID, "--out is a FIFO")),
            "chardev": ("cell.png", Verdict(EITHER, "--out is a device: write into it or refuse")),
            "ro parent": ("ro/cell.png", Verdict(INVALID, "--out in a read-only folder")),
            "file parent": ("f/cell.png", Verdict(INVALID, "--out under a file")),
            "empty": ("", Verdict(INVALID, "empty --out")), "jpg": ("cell.jpg", Verdict(EITHER, "a PNG named .jpg")),
            "long": ("x" * 300 + ".png", Verdict(INVALID, "a name longer than 255 bytes")),
            "symlink": ("cell.png", Verdict(EITHER, "--out is a symlink to a file")), "none": (None, OK),
        }[kind]
        if kind == "existing":  # may be overwritten, but stays a file its owner's group can read
            ops, keep_mode = [("write", "cell.png", b"old picture"), ("chmod", "cell.png", 0o644)], ["cell.png"]
        elif kind == "folder":
            ops, keep = [("mkdir", "cell.png"), ("write", "cell.png/inside.txt", "x")], ["cell.png"]
        elif kind in ("fifo", "chardev"):
            ops, keep_type = [(kind, "cell.png")], ["cell.png"]
        elif kind == "ro parent":
            ops, keep, unprivileged = [("mkdir", "ro"), ("chmod", "ro", 0o555)], ["ro"], True
        elif kind == "file parent":
            ops, keep = [("write", "f", "x")], ["f"]
        elif kind == "symlink":  # written through, as a shell redirection would: the target stays a file
            ops, keep_mode = [("write", "real.png", b"mine"), ("chmod", "real.png", 0o644),
                              ("symlink", "cell.png", "real.png")], ["real.png"]
        if out is not None:
            argv += ["--out", out]
        verdict = worst(verdict, out_verdict)
        return Case("show", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged, keep_mode=keep_mode)

    # -- studies -------------------------------------------------------------------------------------------
    def bench(self, rng: random.Random) -> Case:
        strategies = rng.sample(["random", "evolution", "local", "reinforce"], rng.choice([1, 1, 2]))
        budget = ["--queries", rng.choice(["3", "5", "10"])]
        argv_tail = ["--seeds", rng.choice(["1", "2"])]
        verdicts, options, ops, keep, keep_type, unprivileged, out = [], {}, [], [], [], False, "run"
        kind = rng.choices(["strategies", "queries", "seconds", "both budgets", "no budget", "seeds", "objective",
                            "workers", "executor", "batch", "option", "dataset", "space", "out", "ray", "garbage"],
                           [10, 8, 7, 2, 2, 6, 4, 7, 3, 6, 16, 5, 3, 7, 1, 3])[0]
        if kind == "strategies":
            text = rng.choice(["random,evolution", "", ",", "random,", "random,random", "Random", typo(rng, "evolution"),
                               "bo", "tpe", "random evolution", "all", "random;local"])
            if text in ("bo", "tpe"):
                budget = ["--queries", "6"]
                option = "n_init" if text == "bo" else "n_startup_trials"
                options = {text: {option: Given(3)}}
                argv_tail += ["--option", f"{text}.{option}=3"]
            verdicts.append(name_list(text, o.STRATEGIES))
            strategies = [text]
        elif kind == "queries":
            value = pick(rng, "queries", ["1", "5", "20"])
            budget = ["--queries", value]
            verdicts.append(_argparse_int(value, o.Int(1)))
        elif kind == "seconds":
            value = pick(rng, "seconds", ["12000", "500", "20000"])
            if _int_or_none(value) is not None and int(value) > 20000:
                value = "20000"
            budget = ["--seconds", value]
            verdicts.append(_argparse_float(value, o.PosFloat()))
        elif kind == "both budgets":
            budget += ["--seconds", "12000"]
            verdicts.append(Verdict(INVALID, "two budgets"))
        elif kind == "no budget":
            budget = []
            verdicts.append(Verdict(INVALID, "no budget"))
        elif kind == "seeds":
            value = pick(rng, "seeds", ["1", "2", "3"])
            argv_tail = ["--seeds", value]
            verdicts.append(_argparse_int(value, o.Int(1)))
        elif kind == "objective":
            value = rng.choice(["valid12", "valid200", "test", "", "VALID12"])
            argv_tail += ["--objective", value]
            verdicts.append(OK if value in ("valid12", "valid200") else Verdict(INVALID, f"objective {value!r}"))
        elif kind == "workers":
            executor = rng.choice(["process", "thread"])
            value = pick(rng, "workers", ["1", "2"]) if executor == "process" else rng.choice(["1", "2", "1000000", "0", "-1", "abc"])
            argv_tail += ["--workers", value, "--executor", executor]
            verdicts.append(_argparse_int(value, o.Int(1)))
        elif kind == "executor":
            value = rng.choice(["process", "thread", "ray", "", "Thread"])
            argv_tail += ["--executor", value, "--workers", "2"]
            verdicts.append(OK if value in ("process", "thread") else Verdict(INVALID, f"executor {value!r}"))
        elif kind == "batch":
            value = pick(rng, "batch", ["1", "2", "4"])
            argv_tail += ["--batch", value] + (["--async"] if rng.random() < 0.4 else [])
            verdicts.append(_argparse_int(value, o.Int(1)))
            n = _int_or_none(value)
            if n is not None and n > int(budget[1]):
                verdicts.append(Verdict(EITHER, "a batch larger than the budget"))
        elif kind == "option":
            name = rng.choice(strategies + [rng.choice(list(o.STRATEGY_OPTIONS)), typo(rng, strategies[0])])
            schema = o.STRATEGY_OPTIONS.get(name, {})
            key = rng.choice(list(schema) + [typo(rng, "population"), "foo"]) if schema else rng.choice(["foo", "lr"])
            value = pick(rng, key, OPTION_SAMPLES.get(key, ["1", "2", "ucb", "true", "10"]), 0.4)
            form = rng.random()
            if form < 0.08:
                argv_tail += ["--option", rng.choice([f"{name}{key}={value}", f"{name}.{key}", "=1", f".{key}=1"])]
                verdicts.append(Verdict(INVALID, "--option not STRATEGY.KEY=VALUE"))
            else:
                argv_tail += ["--option", f"{name}.{key}={value}"]
                options.setdefault(name, {})[key] = Given.from_text(value)
                if name in ("bo", "tpe") and name in strategies:
                    budget = ["--queries", "6"]
        elif kind == "dataset":
            value = rng.choice([*o.NB201_DATASETS, *o.NB201_DATASET_ALIASES, "imagenet", ""])
            argv_tail += ["--dataset", value]
            verdicts.append(OK if value in o.NB201_DATASETS else Verdict(EITHER, "an alias") if value in
                            o.NB201_DATASET_ALIASES else Verdict(INVALID, f"dataset {value!r}"))
        elif kind == "space":
            value = rng.choice(["nb201", "darts", "", "nb101"])
            argv_tail += ["--space", value]
            verdicts.append(OK if value == "nb201" else Verdict(INVALID, f"no tabular benchmark for {value!r}"))
        elif kind == "out":
            out, ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "bench")
            verdicts.append(verdict)
        elif kind == "ray":
            argv_tail += ["--ray-address", rng.choice(["nowhere:1", "", "ray://"])]
            verdicts.append(Verdict(INVALID, "no Ray cluster there"))
        else:
            argv_tail += rng.choice([["--bogus"], ["extra"], ["--queries"], ["--async=1"]])
            verdicts.append(Verdict(INVALID, "not an option of bench"))
        verdicts.append(o.judge_strategy_options(options, [s for s in strategies]))
        argv = ["bench", "--strategies", ",".join(strategies), *budget, *argv_tail, "--out", out, "--quiet"]
        verdict = worst(*verdicts)
        return Case("bench", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)

    def proxies(self, rng: random.Random) -> Case:
        space = "darts" if rng.random() < 0.15 else "nb201"
        proxies = rng.sample(o.DATA_FREE_PROXIES, rng.choice([1, 2]))
        argv_head = ["proxies"] + (["--space", space] if space == "darts" or rng.random() < 0.2 else [])
        source = ["--archs", rng.choice(["1", "2", "3"])]
        tail, verdicts, ops, keep, keep_type, unprivileged, out = [], [], [], [], [], False, "run"
        kind = rng.choices(["archs", "archs file", "both", "proxies", "data", "batch", "seed", "draws", "network",
                            "device", "space", "out", "workers", "ray", "garbage"],
                           [10, 18, 3, 14, 10, 5, 4, 4, 4, 8, 4, 7, 5, 2, 3])[0]
        if kind == "archs":
            value = pick(rng, "archs", ["1", "3", "15626", "100000"] if space == "nb201" else ["1", "3"])
            source = ["--archs", value]
            verdicts.append(_argparse_int(value, o.Int(1, o.NB201_SIZE if space == "nb201" else None)))
        elif kind == "archs file":
            source = ["--archs-file", "archs.txt"]
            body, verdict = self._archs_file(rng, space)
            if body is None:  # a special file instead of a text file
                what = rng.choice(["mkdir", "fifo", "missing", "chardev" if self.env.can_mknod else "mkdir"])
                ops = [(what, "archs.txt")] if what != "missing" else []
                keep_type = ["archs.txt"] if what in ("fifo", "chardev") else []
                verdict = Verdict(INVALID, f"--archs-file is {what}")
            else:
                ops, keep = [("write", "archs.txt", body)], ["archs.txt"]
            verdicts.append(verdict)
        elif kind == "both":
            source += ["--archs-file", "archs.txt"]
            ops = [("write", "archs.txt", nb201_random(rng) + "\n")]
            verdicts.append(Verdict(INVALID, "--archs with --archs-file"))
        elif kind == "proxies":
            text = rng.choice(["synflow,params", "", ",", "synflow,", "synflow,synflow", "SYNFLOW",
                               typo(rng, "synflow"), "all", "synflow;params", "flops"])
            proxies = [text]
            verdicts.append(name_list(text, o.PROXIES))
        elif kind == "data":
            proxies = [rng.choice(["snip", "grad_norm", "jacob_cov", "synflow", "fisher", "grasp", "nwot"])]
            data = rng.choice(["synthetic", "digits", "cifar10", "imagefolder", "cifar100"])
            tail += ["--data", data]
            if data in o.ON_DISK and rng.random() < 0.8:
                name = "mini100" if data == "cifar100" else "mini10"
                tail += ["--data-dir", str(self.env.source(name))]
                keep.append(str(self.env.source(name)))
            elif data in o.ON_DISK and proxies[0] not in o.DATA_FREE_PROXIES:
                verdicts.append(Verdict(INVALID, f"{data} without --data-dir"))
            elif data in o.ON_DISK:
                verdicts.append(Verdict(EITHER, "a data-free proxy: the missing data folder is never read"))
            if space == "darts":  # the full DARTS network at batch 64 needs about the child's memory limit
                tail += ["--batch-size", "8"]
        elif kind == "batch":
            value = pick(rng, "batch", ["8", "64"])
            tail += ["--batch-size", value, "--data", "synthetic"]
            proxies = ["snip"]
            verdicts.append(_argparse_int(value, o.Int(1)))
            if space == "darts" and verdicts[-1].label == VALID and int(value) > 16:
                verdicts[-1] = Verdict(EITHER, "the full DARTS network at this batch may pass the memory limit")
        elif kind == "seed":
            value = pick(rng, "seed", SEARCH_SAMPLES["seed"])
            tail += ["--seed", value]
            verdicts.append(_argparse_int(value, o.Seed()))
        elif kind == "draws":
            value = rng.choice(["per-arch", "shared", "", "Shared"])
            tail += ["--draws", value]
            verdicts.append(OK if value in ("per-arch", "shared") else Verdict(INVALID, f"draws {value!r}"))
        elif kind == "network":
            value = rng.choice(["zero-cost", "benchmark", "xautodl", ""])
            tail += ["--network", value]
            verdicts.append(OK if value in ("zero-cost", "benchmark") else Verdict(INVALID, f"network {value!r}"))
            if space == "darts" and verdicts[-1].label == VALID:
                verdicts[-1] = Verdict(EITHER, "--network is for nb201 only")
        elif kind == "device":
            value = pick(rng, "device", SEARCH_SAMPLES["device"], 0.2)
            tail += ["--device", value]
            verdicts.append(self.device_flag.judge(value))
        elif kind == "space":
            value = rng.choice(["nasbench999", "", "NB201"])
            argv_head = ["proxies", "--space", value]
            verdicts.append(Verdict(INVALID, f"unknown space {value!r}"))
        elif kind == "out":
            out, ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "proxies")
            verdicts.append(verdict)
        elif kind in ("workers", "ray"):
            flags, verdict = _scoring_workers(rng, kind)
            tail += flags
            verdicts.append(verdict)
        else:
            tail += rng.choice([["--bogus"], ["extra"], ["--archs"]])
            verdicts.append(Verdict(INVALID, "not an option of proxies"))
        argv = argv_head + source + ["--proxies", ",".join(proxies)] + tail + ["--out", out, "--quiet"]
        verdict = worst(*verdicts)
        return Case("proxies", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)

    def _archs_file(self, rng: random.Random, space: str) -> tuple[str | bytes | None, Verdict]:
        good = [valid_arch(rng, space) for _ in range(2)]
        kind = rng.choice(["valid", "comments", "empty", "bad line", "latin-1", "binary", "special", "other space",
                           "index", "crlf"])
        return {
            "valid": ("\n".join(good) + "\n", OK),
            "comments": ("# my cells\n\n" + "\n".join(good) + "\n\n", OK),
            "empty": (rng.choice(["", "\n\n", "# only a comment\n"]), Verdict(INVALID, "no architectures")),
            "bad line": (good[0] + "\n" + _bad_arch(rng, space) + "\n", Verdict(INVALID, "a line that is no architecture")),
            "latin-1": (good[0].encode() + b"\n|n\xf6ne~0|\n", Verdict(INVALID, "not UTF-8")),
            "binary": (random.Random(rng.random()).randbytes(300), Verdict(INVALID, "binary garbage")),
            "special": (None, Verdict(INVALID, "not a file")),
            "other space": ("DARTS_V2\n" if space == "nb201" else nb201_random(rng) + "\n",
                            Verdict(INVALID, "a cell of the other space")),
            "index": ("6111\n", Verdict(EITHER, "a benchmark index as a line")),
            "crlf": ("\r\n".join(good) + "\r\n", OK),
        }[kind]

    def zero_cost(self, rng: random.Random) -> Case:
        samples, seeds, proxy = rng.choice(["2", "2,3", "3"]), rng.choice(["1", "2"]), "synflow"
        tail, verdicts, ops, keep, keep_type, unprivileged, out = [], [], [], [], [], False, "run"
        kind = rng.choice(["samples", "seeds", "init seed", "proxy", "space", "device", "out", "workers", "ray",
                           "garbage"])
        if kind == "samples":
            samples = rng.choice(["0", "-1", "", "abc", "2,,3", "2, 3", "1.5", "3,2", SURROGATE, "1e309", "2,-2",
                                  "100000", "2;3"])
            items = [t.strip() for t in samples.split(",") if t.strip()]
            ints = [_int_or_none(t) for t in items]
            if not items or None in ints or samples in ("1.5",):
                verdicts.append(Verdict(INVALID, f"samples {samples!r}"))
            elif min(ints) < 1:
                verdicts.append(Verdict(INVALID, f"samples {samples!r}"))
            elif max(ints) > 5:
                samples = "3"
            else:
                verdicts.append(Verdict(EITHER, "odd spacing or order") if samples in ("2,,3", "2, 3", "3,2") else OK)
        elif kind == "seeds":
            seeds = pick(rng, "seeds", ["1", "2"])
            verdicts.append(_argparse_int(seeds, o.Int(1)))
        elif kind == "init seed":
            value = pick(rng, "seed", SEARCH_SAMPLES["seed"])
            tail += ["--init-seed", value]
            verdicts.append(_argparse_int(value, o.Seed()))
        elif kind == "proxy":
            proxy = rng.choice(["params", "flops", "snip", "", "synflow,snip", typo(rng, "synflow"), "all"])
            verdicts.append(OK if proxy in ("params", "flops") else Verdict(INVALID, f"proxy {proxy!r}") if proxy != "snip"
                            else Verdict(INVALID, "snip reads data: cifar10 needs --data-dir"))
        elif kind == "space":
            value = rng.choice(["darts", "", "nasbench999", "nb201"])
            tail += ["--space", value]
            verdicts.append(OK if value == "nb201" else Verdict(INVALID, f"no tabular benchmark for {value!r}"))
        elif kind == "device":
            value = pick(rng, "device", SEARCH_SAMPLES["device"], 0.2)
            tail += ["--device", value]
            verdicts.append(self.device_flag.judge(value))
        elif kind == "out":
            out, ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "zero-cost")
            verdicts.append(verdict)
        elif kind in ("workers", "ray"):
            flags, verdict = _scoring_workers(rng, kind)
            tail += flags
            verdicts.append(verdict)
        else:
            tail += rng.choice([["--bogus"], ["extra"], ["--samples"]])
            verdicts.append(Verdict(INVALID, "not an option of zero-cost"))
        argv = ["zero-cost", "--samples", samples, "--seeds", seeds, "--proxy", proxy, *tail, "--out", out, "--quiet"]
        verdict = worst(*verdicts)
        return Case("zero-cost", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)

    def optbench(self, rng: random.Random) -> Case:
        values = {"--steps": rng.choice(["5", "10", "20"]), "--runs": rng.choice(["1", "2"]),
                  "--dim": rng.choice(["2", "5"])}
        tail, verdicts, ops, keep, keep_type, unprivileged, out = [], [], [], [], [], False, "run"
        optimizers = rng.choice(["adam,uniform", "adam+dscd", "cmaes", None, "uniform"])
        kind = rng.choice(["steps", "runs", "dim", "optimizers", "lrs", "function", "seed", "out", "garbage"])
        if kind in ("steps", "runs", "dim"):
            value = pick(rng, kind, ["1", "3", "10"])
            values["--" + kind] = value
            # past these a run is too large to make here: either answer (the package bounds the sizes)
            verdicts.append(_argparse_int(value, o.Int(1, big={"steps": 100_000, "runs": 10_000, "dim": 10_000}[kind])))
        elif kind == "optimizers":
            optimizers = rng.choice(["adam,uniform,cmaes", "", ",", "adam,", "Adam", typo(rng, "cmaes"), "sgd",
                                     "adam,adam", "adam+dscd,uniform"])
            verdicts.append(name_list(optimizers, o.OPTBENCH_OPTIMIZERS))
        elif kind == "lrs":
            text = rng.choice(["0.01,cos:0.1", "nan", "inf", "-1", "0", "abc", "cos:", "cos:nan", "", "1e-3",
                               "1e309", "cos:-1", "0.1,,0.2", "cos:1e309", " 0.1", SURROGATE])
            tail += ["--lrs", text]
            verdicts.append(self._lrs(text, optimizers))
        elif kind == "function":
            value = rng.choice([*o.FUNCTIONS, "ackley", "", "Rastrigin"])
            tail += ["--function", value]
            verdicts.append(OK if value in o.FUNCTIONS else Verdict(INVALID, f"function {value!r}"))
        elif kind == "seed":
            value = pick(rng, "seed", SEARCH_SAMPLES["seed"])
            tail += ["--seed", value]
            verdicts.append(_argparse_int(value, o.Seed()))
        elif kind == "out":
            out, ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "optbench")
            verdicts.append(verdict)
        else:
            tail += rng.choice([["--bogus"], ["extra"], ["--steps"]])
            verdicts.append(Verdict(INVALID, "not an option of optbench"))
        in_use = o.OPTBENCH_OPTIMIZERS if optimizers is None else optimizers.split(",")
        if values["--dim"].strip() == "1" and "cmaes" in in_use:
            verdicts.append(Verdict(INVALID, "CMA-ES in one dimension"))
        argv = ["optbench", *[x for kv in values.items() for x in kv]]
        argv += (["--optimizers", optimizers] if optimizers is not None else []) + tail + ["--out", out, "--quiet"]
        verdict = worst(*verdicts)
        return Case("optbench", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)

    @staticmethod
    def _lrs(text: str, optimizers: str | None) -> Verdict:
        items = [t.strip() for t in text.split(",") if t.strip()]
        verdicts = [Verdict(INVALID, "no learning rate")] if not items else []
        for item in items:
            number = item[4:] if item.startswith("cos:") else item
            try:
                x = float(number)
            except ValueError:
                verdicts.append(Verdict(INVALID, f"learning rate {item!r}"))
                continue
            verdicts.append(o.PosFloat().judge(x))
        verdict = worst(*verdicts)
        if optimizers is not None and "adam" not in optimizers and verdict.label == VALID:
            return Verdict(EITHER, "learning rates without Adam")
        return worst(verdict, Verdict(EITHER, "an empty item") if ",," in text else OK)

    def demo(self, rng: random.Random) -> Case:
        """Only variants that must end fast: a valid demo is a minutes-long search."""
        kind = rng.choice(["help", "bogus", "extra", "out"])
        if kind == "help":
            return Case("demo", ["demo", "--help"], VALID, "help")
        if kind in ("bogus", "extra"):
            return Case("demo", ["demo", "--bogus" if kind == "bogus" else "extra"], INVALID, "not an option of demo")
        while True:
            out, ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "search")
            if verdict.label == INVALID and out != "":
                return Case("demo", ["demo", "--out", out, "--quiet"], INVALID, verdict.why, ops, keep, keep_type,
                            unprivileged)

    def global_argv(self, rng: random.Random) -> Case:
        commands = ["spaces", "methods", "nb201", "info", "show", "train", "search", "demo", "bench", "proxies",
                    "zero-cost", "optbench", "config", "report", "compare"]
        kind = rng.choice(["empty", "help", "sub help", "version", "unknown", "abbrev", "missing value", "garbage",
                           "global flag", "extra positional", "foreign option", "equals form", "repeat"])
        if kind == "empty":
            return Case("global", [], INVALID, "no command")
        if kind == "help":
            return Case("global", [rng.choice(["-h", "--help"])], VALID, "help")
        if kind == "sub help":
            command = rng.choice(commands)
            return Case("global", [command] + (["query"] if command == "nb201" and rng.random() < 0.5 else []) +
                        ["--help"], VALID, "help")
        if kind == "version":
            return Case("global", ["--version"], VALID, "the package's version")
        if kind == "unknown":
            return Case("global", [rng.choice(["bogus", "Search", "sea", "serch", SURROGATE, "", "-", "😀", "x" * 10000])],
                        INVALID, "no such command")
        if kind == "abbrev":
            argv = self.search_argv("darts", dict(TINY), [])
            argv[1] = "--meth"
            return Case("global", argv, EITHER, "an abbreviated option")
        if kind == "missing value":
            command, flag = rng.choice([("search", "--epochs"), ("train", "--out"), ("info", "--space"),
                                        ("bench", "--strategies"), ("show", "--out")])
            return Case("global", [command, nb201_random(rng)] + [flag] if command in ("info", "show", "train")
                        else [command, flag], INVALID, f"{flag} without a value")
        if kind == "garbage":
            argv = [rng.choice([SURROGATE, "\t", " ", "--", "-x", "--=", "💥", "\\", "$HOME", "`id`", "%s%s"])
                    for _ in range(rng.randint(1, 3))]
            return Case("global", argv, INVALID, "garbage")
        if kind == "global flag":
            return Case("global", ["--quiet", "spaces"], INVALID, "--quiet is no global option")
        if kind == "extra positional":
            return Case("global", [rng.choice(["spaces", "methods"]), "extra"], INVALID, "an extra argument")
        if kind == "foreign option":
            command, flag = rng.choice([("spaces", "--json"), ("methods", "--space"), ("info", "--epochs"),
                                        ("show", "--json"), ("nb201", "--json")])
            argv = [command] + ([nb201_random(rng)] if command in ("info", "show") else []) + [flag, "1"]
            return Case("global", argv, INVALID, f"{flag} is no option of {command}")
        if kind == "equals form":
            argv = self.search_argv(None, dict(TINY), [])
            argv[argv.index("--out"):argv.index("--out") + 2] = ["--out=run"]
            return Case("global", argv, VALID, "--out=run")
        argv = self.search_argv("darts", dict(TINY), ["--method", "gdas"])
        return Case("global", argv, EITHER, "--method given twice")

    def spaces(self, rng: random.Random) -> Case:
        return Case("spaces", [rng.choice(["spaces", "methods"])], VALID, "a listing")


def _bad_arch(rng: random.Random, space: str) -> str:
    """An architecture text the space must refuse, on one line."""
    while True:
        text, verdict = arch_for(rng, space)
        if verdict.label == INVALID and "\n" not in text and text.strip():
            return text


def _scoring_workers(rng: random.Random, kind: str) -> tuple[list[str], Verdict]:
    """``--workers`` or ``--ray-address`` of the scoring commands: local workers up to this host's usable CPUs
    (where the cases run), a Ray address where no cluster answers."""
    if kind == "ray":
        return ["--ray-address", rng.choice(["nowhere:1", "", "ray://"])], Verdict(INVALID, "no Ray cluster there")
    value = pick(rng, "workers", ["1", "2", "0", "-1", "1000000", str(len(os.sched_getaffinity(0)) + 1)])
    return ["--workers", value], _argparse_int(value, o.Int(1, len(os.sched_getaffinity(0))))
