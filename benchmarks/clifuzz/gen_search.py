"""Generators for the differentiable search (key=value overrides, --config files, --resume), training and data
folders: each starts from a tiny valid command (seconds), so that a wrongly accepted value ends fast."""

from __future__ import annotations

import random

import yaml

from . import oracle as o
from .common import GENERIC, CaseMaker, _argparse_int, _dedupe_flags, _int_flag, _int_or_none, pick, syntax_garbage
from .fixtures import NB201_BEST
from .genotypes import arch_for, nb201_random, typo, valid_arch
from .oracle import EITHER, INVALID, OK, VALID, Given, Verdict, worst
from .runner import Case

# -- search ---------------------------------------------------------------------------------------------
TINY = {"epochs": "1", "C": "2", "N": "1", "limit_train": "64", "batch_size": "32", "hessian_every": "0"}
METHOD_TINY = {"pcdarts": {"C": "4"},
               "pdarts": {"C": "4", "layers": "2", "arch_warmup_epochs": "0",
                          "driver_options": "{add_layers: [0, 1], num_ops: [8, 5], skip_dropout: [0.0, 0.4]}"},
               "balenas-tf": {"selector_options": "{proxy: synflow, n: 3}"},
               "rdarts": {"hessian_every": "1", "hessian_iters": "2"}}
DARTS_TINY = {"C": "4", "layers": "2"}


def to_darts(overrides: dict[str, str]) -> None:
    """The tiny settings of the DARTS space, which is sized by layers: the tiny N goes."""
    overrides.update(DARTS_TINY)
    if overrides.get("N") == TINY["N"]:
        del overrides["N"]
SEARCH_SAMPLES = {
    "space": ["nb201", "darts"], "method": list(o.METHODS), "data": ["digits", "synthetic"],
    "data_dir": ["null", "no/such/folder"], "limit_train": ["10", "32", "64", "128"],
    "seed": ["0", "1", "7", "4294967295", "-1"], "deterministic": ["true", "false"],
    "device": ["cpu", "cuda", "cuda:3", "mps", "foo", "cpu:0", "''", "meta", "CPU", "cuda:-1", "null"],
    "distributed": ["false", "true"], "C": ["2", "4", "6", "3"], "N": ["1", "2"], "layers": ["1", "2", "3"],
    "track_running_stats": ["true", "false"], "supernet_path": ["fast", "reference", "slow"],
    "epochs": ["1", "2"], "batch_size": ["1", "8", "32", "64", "1000000"], "w_lr": ["0.1", "0.025", "1.0e-3"],
    "w_lr_min": ["0", "0.001"], "w_momentum": ["0", "0.5", "0.9"], "w_nesterov": ["true", "false"],
    "w_weight_decay": ["0", "0.0003"], "grad_clip": ["1", "5.0"], "order": ["1", "2"],
    "unrolled_lr": ["null", "0.01"], "arch_warmup_epochs": ["0", "1"], "drop_path_prob": ["0", "0.2", "0.6"],
    "relaxation": list(o.RELAXATIONS), "arch_optimizer": list(o.ARCH_OPTIMIZERS),
    "arch_lr": ["0.0003", "0.001"], "arch_betas": ["[0.5, 0.999]", "[0.9, 0.999]"],
    "arch_weight_decay": ["0", "0.001"], "selector": list(o.selector_schemas(o.NB201_OPS)),
    "early_stop": ["dartsplus", "rdarts", "dartsplus,rdarts", "null"], "driver": ["null", "progressive"],
    "hessian_every": ["0", "1", "auto"], "hessian_iters": ["2", "3"], "train_epochs": ["0", "1"],
    "train_C": ["2", "4", "null"], "train_N": ["1", "null"],
}
#: meaningful values of nested options, by option name
OPTION_SAMPLES = {
    "weight_sample": ["true", "false"], "entropy_samples": ["10", "100"], "w01": ["0", "5.0", "10"],
    "warmup_epochs": ["0", "1"], "kl_weight": ["0", "0.001"], "prior": ["1.0", "0.5"], "tau_max": ["10", "1.0"],
    "tau_min": ["0.1", "0.03"], "resource_weight": ["0", "0.01"], "log_penalty": ["true", "false"],
    "eps": ["1.0e-8", "0.001"], "amsgrad": ["true"], "prior_precision": ["10.0", "30"], "dataset_size": ["100"],
    "mc_samples": ["1", "2"], "init_precision": ["null", "1.0"], "perturb": ["true", "false"],
    "momentum": ["0.9", "0"], "adam_form": ["false"], "betas": ["[0.9, 0.999]"], "curvature": ["hutchinson", "exact"],
    "hutchinson_samples": ["1"], "nonnegative": ["true"], "bound": ["3.0", "1"], "memory": ["10", "2"],
    "patience": ["10", "2"], "seed": ["0", "3"], "rounds": ["10"], "lr": ["0.5", "null"], "grad_bound": ["1.0"],
    "wipeout": ["true", "false"], "remove_ops": ["[none]", "[none, skip_connect]", "[sep_conv_3x3]"],
    "threshold": ["0.8", "0.5"], "max_inputs": ["2", "null"], "exclude": ["[none]", "[]"],
    "mode": ["accumulated", "final", "sample"], "proxy": ["synflow", "params", "snip"], "n": ["2", "3"],
    "max_skips": ["2", "0"], "learnable_ops": ["[skip_connect]"], "window": ["3", "5"], "k": ["2"],
    "factor": ["1.3"], "start_epoch": ["0"], "rollback": ["true"], "add_layers": ["[0, 1]", "[0]"],
    "num_ops": ["[8, 5]", "[8]"], "skip_dropout": ["[0.0, 0.4]", "[0.0]"], "dropout_decay": ["0.2"],
    "partial_channels": ["2", "null", "4"], "edge_normalization": ["true", "false"],
}


def _option_schemas(key: str, component: str, ops) -> dict:
    tables = {"relaxation_options": o.RELAXATIONS, "arch_options": o.arch_optimizer_schemas(ops),
              "selector_options": o.selector_schemas(ops), "supernet_options": {"supernet": o.SUPERNET_OPTIONS},
              "driver_options": o.DRIVERS}
    return tables[key].get(component, {})


def mapping_text(rng: random.Random, schema: dict, others: list[str]) -> str:
    """A YAML flow mapping of options: mostly the component's own, now and then an unknown one or one that
    belongs to another component."""
    keys = rng.sample(list(schema), min(len(schema), rng.choice([1, 1, 2]))) if schema else []
    roll = rng.random()
    if roll < 0.25 or not keys:
        keys.append(rng.choice([typo(rng, keys[0]) if keys else "foo", "foo", "lr", "C"]))
    elif roll < 0.45 and others:
        keys.append(rng.choice(others))
    items = [f"{k}: {pick(rng, k, OPTION_SAMPLES.get(k, ['1']), generic=0.4)}" for k in keys]
    return "{" + ", ".join(items) + "}"


def nested_value(rng: random.Random, key: str, component: str, ops) -> str:
    if key == "early_stop_options":
        rule = rng.choice(["dartsplus", "rdarts", "dartsplus", typo(rng, "rdarts")])
        schema = o.early_stop_schemas(ops).get(rule, {})
        return "{" + f"{rule}: {mapping_text(rng, schema, [])}" + "}"
    if rng.random() < 0.15:
        return rng.choice(GENERIC)
    schema = _option_schemas(key, component, ops)
    others = sorted({k for table in (o.RELAXATIONS, o.arch_optimizer_schemas(ops), o.selector_schemas(ops))
                     for schema_ in table.values() for k in schema_} - set(schema))
    return mapping_text(rng, schema, others)


class SearchCases(CaseMaker):
    def search_base(self, rng: random.Random) -> tuple[str | None, dict[str, str], list[str]]:
        method = rng.choice([None, None, "darts", "darts", *o.METHODS])
        overrides = dict(TINY)
        overrides.update(METHOD_TINY.get(method, {}))
        flags = []
        if method != "pdarts" and rng.random() < 0.15:
            flags += ["--space", "darts"]
        if method == "pdarts" or flags:
            to_darts(overrides)
        return method, overrides, flags

    @staticmethod
    def given(overrides: dict[str, str], flags: list[str]) -> dict[str, Given]:
        given = {k: Given.from_text(v) for k, v in overrides.items()}
        names = {"--space": "space", "--data": "data", "--data-dir": "data_dir", "--epochs": "epochs",
                 "--seed": "seed", "--early-stop": "early_stop"}
        for flag, value in zip(flags, flags[1:]):
            if flag in names:
                key = names[flag]
                if key in overrides:
                    given[o.TWICE + key] = Given(None)
                if key in ("data_dir", "early_stop") and value.strip() in ("null", "~", "Null", "NULL"):
                    given[key] = Given(None)
                    given[key + " "] = Given(value)  # judged below: left open
                else:
                    given[key] = Given(value) if key in ("space", "data", "data_dir", "early_stop") else _int_flag(value)
        if "--deterministic" in flags:
            given["deterministic"] = Given(True)
        return given

    def search_argv(self, method, overrides, flags, extra=(), out="run", quiet=True) -> list[str]:
        argv = ["search"] + (["--method", method] if method else []) + list(flags)
        argv += [f"{k}={v}" for k, v in overrides.items()] + list(extra)
        argv += ["--out", out] if out is not None else []
        return argv + (["--quiet"] if quiet else [])

    # -- surfaces ------------------------------------------------------------------------------------
    def search(self, rng: random.Random) -> Case:
        method, overrides, flags = self.search_base(rng)
        space = "darts" if ("--space" in flags or method == "pdarts") else "nb201"
        ops = o.DARTS_OPS if space == "darts" else o.NB201_OPS
        extra, fixed, files = [], [], []
        for _ in range(1 if rng.random() < 0.85 else 2):
            kind = rng.choices(["value", "unknown", "nested", "component", "flag", "syntax", "out"],
                               [45, 7, 16, 8, 10, 6, 8])[0]
            if kind == "value":  # mostly odd values: a valid one costs a whole (tiny) search
                key = rng.choice(list(SEARCH_SAMPLES))
                overrides[key] = pick(rng, key, SEARCH_SAMPLES[key], generic=0.85)
            elif kind == "unknown":
                key = rng.choice([typo(rng, rng.choice(list(SEARCH_SAMPLES))), "lr", "queries", "arch", "foo",
                                  "tau_max", "partial_channels", "Epochs", "network"])
                overrides[key] = rng.choice(["1", "0.1", "true"])
            elif kind == "nested":
                key = rng.choice(list(o.NESTED))
                preset = o.METHODS.get(method or "balenas", {})
                component = {"relaxation_options": preset.get("relaxation", "softmax"),
                             "arch_options": preset.get("arch_optimizer", "adam"),
                             "selector_options": preset.get("selector", "argmax"), "supernet_options": "supernet",
                             "driver_options": preset.get("driver") or "progressive"}.get(key)
                overrides[key] = nested_value(rng, key, component, ops)
            elif kind == "component":
                key = rng.choice(["relaxation", "arch_optimizer", "selector", "early_stop", "driver"])
                names = SEARCH_SAMPLES[key]
                overrides[key] = rng.choice(names) if rng.random() < 0.5 else typo(rng, rng.choice(names))
            elif kind == "flag":
                flag = rng.choice(["--space", "--data", "--epochs", "--seed", "--early-stop", "--deterministic",
                                   "--data-dir"])
                key = {"--early-stop": "early_stop", "--data-dir": "data_dir"}.get(flag, flag[2:])
                overrides.pop(key, None)
                if flag == "--deterministic":
                    flags.append(flag)
                else:
                    flags += [flag, pick(rng, key, SEARCH_SAMPLES.get(key, ["1"]))]
            elif kind == "syntax":
                items, verdict = syntax_garbage(rng, "w_lr", "0.1")
                extra += items
                fixed.append(verdict)
            else:
                out, out_ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "search")
                files += out_ops
                fixed.append(verdict)
                self.keep_tiny(method, overrides, flags)
                return self._search_case(method, overrides, flags, extra, fixed, files, out, keep, keep_type,
                                         unprivileged=unprivileged)
        self.keep_tiny(method, overrides, flags)
        return self._search_case(method, overrides, flags, extra, fixed, files, "run", [], [])

    def keep_tiny(self, method, overrides: dict[str, str], flags: list[str]) -> None:
        """A mutation that switches the method or the space must not make the search big: the settings the
        mutation left alone take that method's or space's tiny values."""
        given = self.given(overrides, flags)
        name = method or (given["method"].value if "method" in given else None)
        name = name if isinstance(name, str) and name in o.METHODS else None
        space = given["space"].value if "space" in given else o.METHODS.get(name or "", {}).get("space")
        tiny = {**(METHOD_TINY.get(name, {}) if method is None else {}), **(DARTS_TINY if space == "darts" else {})}
        for key, value in tiny.items():
            if overrides.get(key) in (None, TINY.get(key)):
                overrides[key] = value
        if space == "darts" and overrides.get("N") == TINY["N"]:
            del overrides["N"]

    def _search_case(self, method, overrides, flags, extra, fixed, files, out, keep, keep_type,
                     surface="search", data_source=None, unprivileged=False) -> Case:
        verdict = worst(o.judge_search(self.given(overrides, flags), method, self.device_key, data_source), *fixed)
        argv = self.search_argv(method, overrides, flags, extra, out, quiet=True)
        return Case(surface, argv, verdict.label, verdict.why, files, keep, keep_type, unprivileged)

    def search_config(self, rng: random.Random) -> Case:
        method, overrides, flags = self.search_base(rng)
        kind = rng.choices(["mutated", "run config", "edited run config", "train config", "empty", "comments",
                            "list", "scalar", "null", "malformed", "binary", "latin-1", "utf-16", "bom", "huge",
                            "deep", "aliases", "python tag", "folder", "fifo", "missing", "symlink", "unreadable"],
                           [30, 2, 3, 2, 1, 1, 2, 2, 1, 4, 2, 2, 1, 1, 1, 2, 1, 2, 1, 1, 1, 1, 1])[0]
        files, unprivileged, fixed = [("write", "cfg.yaml", "")], False, []
        from_file: dict[str, Given] = {}
        flag_over_file = False  # the file's key is also given as a flag (--space), which wins
        if kind == "mutated":
            key = rng.choice(list(SEARCH_SAMPLES) + list(o.NESTED) + ["foo"])
            flag_over_file = "--" + key.replace("_", "-") in flags
            text = (nested_value(rng, key, "adam", o.NB201_OPS) if key in o.NESTED else
                    pick(rng, key, SEARCH_SAMPLES.get(key, ["1"]), generic=0.8))
            value = o.read_text(text)
            if value is o.BAD_YAML:
                value = text
            body = yaml.safe_dump({key: value}, allow_unicode=True)
            files = [("write", "cfg.yaml", body)]
            overrides.pop(key, None)
            from_file[key] = Given(o.read_text(body)[key])
            if key == "method" and isinstance(value, str):
                overrides.update(METHOD_TINY.get(value, {}))
            if value == "pdarts" or (key == "space" and value == "darts"):
                to_darts(overrides)
        elif kind in ("run config", "edited run config"):
            files = [("copy", "cfg.yaml", "run:search/config.yaml")]
            overrides = {}
            method = None
            from_file.update({k: Given(o.read_text(v)) for k, v in TINY.items()})  # what the run was made with
            if kind == "edited run config":
                key = rng.choice(list(SEARCH_SAMPLES))
                text = pick(rng, key, SEARCH_SAMPLES[key])
                value = o.read_text(text)
                value = text if value is o.BAD_YAML else value
                files.append(("yaml_set", "cfg.yaml", key, value))
                from_file[key] = Given(value)
            from_file["method"] = Given("darts")
        else:
            body, verdict = {
                "train config": (None, Verdict(INVALID, "a training run's config")),
                "empty": ("", OK), "comments": ("# nothing here\n\n", OK),
                "list": ("- epochs: 1\n- C: 2\n", Verdict(INVALID, "a list, not a mapping")),
                "scalar": (rng.choice(["42\n", "hello\n", "true\n"]), Verdict(INVALID, "a scalar, not a mapping")),
                "null": ("~\n", Verdict(EITHER, "an empty document")),
                "malformed": (rng.choice(["epochs: [1\n", "a: b: c\n", "\t- x\n", "key: 'unterminated\n", "{\n",
                                          "epochs: 1\n  C: 2\n", ": :\n"]), Verdict(INVALID, "not YAML")),
                "binary": (random.Random(rng.random()).randbytes(512), Verdict(INVALID, "binary garbage")),
                "latin-1": ("method: d\xe9rts\n".encode("latin-1"), Verdict(INVALID, "not UTF-8")),
                "utf-16": ("epochs: 1\n".encode("utf-16"), Verdict(INVALID, "UTF-16")),
                "bom": ("\ufeffseed: 1\n".encode("utf-8"), Verdict(EITHER, "a byte-order mark")),
                "huge": ("".join(f"k{i}: {i}\n" for i in range(20000)), Verdict(INVALID, "20,000 unknown keys")),
                "deep": ("a: " + "[" * 20000 + "]" * 20000 + "\n", Verdict(INVALID, "nesting 20,000 deep")),
                "aliases": ("a: &a [x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}]\n" for p, c in zip("abcdefghij", "bcdefghijk")),
                            Verdict(INVALID, "unknown keys behind aliases")),
                "python tag": ("epochs: !!python/object/apply:os.system ['touch pwned']\n", Verdict(INVALID, "a python tag")),
                "folder": (None, Verdict(INVALID, "--config is a folder")),
                "fifo": (None, Verdict(INVALID, "--config is a FIFO")),
                "missing": (None, Verdict(INVALID, "no such file")),
                "symlink": (None, OK), "unreadable": (None, Verdict(INVALID, "unreadable")),
            }[kind]
            fixed.append(verdict)
            if body is not None:
                files = [("write", "cfg.yaml", body)]
            elif kind == "train config":
                files = [("copy", "cfg.yaml", "run:train/config.yaml")]
            elif kind == "folder":
                files = [("mkdir", "cfg.yaml")]
            elif kind == "fifo":
                files = [("fifo", "cfg.yaml")]
            elif kind == "missing":
                files = []
            elif kind == "symlink":
                files = [("write", "real.yaml", "seed: 3\n"), ("symlink", "cfg.yaml", "real.yaml")]
                from_file["seed"] = Given(3)
            else:
                files = [("write", "cfg.yaml", "seed: 1\n"), ("chmod", "cfg.yaml", 0o000)]
                unprivileged = self.env.is_root
        given = {**from_file, **self.given(overrides, flags)}
        if "method" in from_file:  # the command line then names no method: the file's is the one that runs
            method = from_file["method"].value if isinstance(from_file["method"].value, str) else None
        verdict = worst(o.judge_search(given, method, self.device_key), *fixed)
        if flag_over_file and verdict.label == VALID:  # each layer is read and checked before the next covers it
            verdict = Verdict(EITHER, f"the file's {key} is replaced by a flag: its value may be refused first")
        argv = self.search_argv(method if "method" not in from_file else None, overrides, flags, ["--config", "cfg.yaml"])
        keep = [] if kind in ("missing", "fifo") else ["cfg.yaml"]
        keep_type = ["cfg.yaml"] if kind == "fifo" else []
        return Case("search-config", argv, verdict.label, verdict.why, files, keep, keep_type, unprivileged)

    def resume(self, rng: random.Random) -> Case:
        if rng.random() < 0.3:
            return self.train_resume(rng)
        run = rng.choice(["search", "search", "search-gdas", "search-balenas", "search-darts"])
        copy = [("copy", "run", f"run:{run}")]
        foreign = rng.choice([r for r in ("search", "search-gdas", "search-balenas", "search-darts", "train") if r != run])
        kinds = {
            "complete": (copy, OK), "extend": (copy + [("yaml_set", "run/config.yaml", "epochs", 2)], OK),
            "missing": ([], Verdict(INVALID, "no such folder")),
            "empty dir": ([("mkdir", "run")], Verdict(INVALID, "an empty folder")),
            "file": ([("write", "run", "x\n")], Verdict(INVALID, "a file")),
            "fifo": ([("fifo", "run")], Verdict(INVALID, "a FIFO")),
            # a run keeps its last two checkpoints: a missing or damaged newest one resumes from the previous
            "no checkpoint": (copy + [("remove", "run/checkpoint.pt")], OK),
            "truncated checkpoint": (copy + [("truncate", "run/checkpoint.pt", rng.choice([0.5, 0.01, 0.0]))], OK),
            "garbage checkpoint": (copy + [("write", "run/checkpoint.pt", random.Random(1).randbytes(999))], OK),
            "no checkpoints": (copy + [("remove", "run/checkpoint.pt"), ("remove", "run/checkpoint.prev.pt")],
                               Verdict(INVALID, "no checkpoint although metrics.jsonl records epochs")),
            "both truncated": (copy + [("truncate", "run/checkpoint.pt", 0.5), ("truncate", "run/checkpoint.prev.pt", 0.3)],
                               Verdict(INVALID, "both checkpoints truncated")),
            "checkpoint folder": (copy + [("remove", "run/checkpoint.pt"), ("mkdir", "run/checkpoint.pt")],
                                  Verdict(INVALID, "checkpoint.pt is a folder")),
            "checkpoint fifo": (copy + [("remove", "run/checkpoint.pt"), ("fifo", "run/checkpoint.pt")],
                                Verdict(INVALID, "checkpoint.pt is a FIFO")),
            "foreign checkpoint": (copy + [("remove", "run/checkpoint.pt"), ("copy", "run/checkpoint.pt",
                                    f"run:{foreign}/checkpoint.pt")],
                                   Verdict(INVALID, "the checkpoint of another run")),
            "train run": ([("copy", "run", "run:train")], Verdict(INVALID, "a training run given to search")),
            "bench output": ([("copy", "run", "run:bench")], Verdict(INVALID, "a folder of bench results")),
            "no config": (copy + [("remove", "run/config.yaml")], Verdict(INVALID, "no config.yaml")),
            "config garbage": (copy + [("write", "run/config.yaml", rng.choice(["[1, 2]\n", "{\n", "\xff\xfe", ""]))],
                               Verdict(INVALID, "a config.yaml that is no configuration")),
            "config C": (copy + [("yaml_set", "run/config.yaml", "C", 6)], Verdict(INVALID, "config.yaml no longer fits the checkpoint")),
            "config relaxation": (copy + [("yaml_set", "run/config.yaml", "relaxation", "gaussian")],
                                  Verdict(EITHER, "config.yaml names another relaxation than the checkpoint's")),
            "config value": None,
            "torn metrics": (copy + [("append", "run/metrics.jsonl", b'{"epoch": 2, "tr')], OK),
            "no metrics": (copy + [("remove", "run/metrics.jsonl")], Verdict(EITHER, "no metrics.jsonl")),
            "no genotype": (copy + [("remove", "run/genotype.json")], OK),
            "overrides": (copy, Verdict(INVALID, "options that --resume ignores")),
            "symlink": (copy[:0] + [("copy", "real", f"run:{run}"), ("symlink", "run", "real")], OK),
            "unreadable checkpoint": (copy + [("chmod", "run/checkpoint.pt", 0o000)], Verdict(INVALID, "unreadable")),
        }
        kind = rng.choice(list(kinds))
        extra = []
        if kind == "config value":
            key = rng.choice(["epochs", "C", "seed", "batch_size", "method", "foo", "data", "w_lr", "order"])
            text = pick(rng, key, SEARCH_SAMPLES.get(key, ["1"]))
            value = o.read_text(text)
            value = text if value is o.BAD_YAML else value
            ops = [("copy", "run", "run:search"), ("yaml_set", "run/config.yaml", key, value)]
            verdict = o.judge_search({key: Given(value)}, "darts", self.device_key)
            if key in ("C", "N", "data") and verdict.label == VALID and value != {"C": 2, "N": 1, "data": "digits"}[key]:
                verdict = Verdict(INVALID, f"{key} in config.yaml no longer fits the checkpoint")
            elif key in ("seed", "batch_size", "method", "w_lr", "order", "relaxation") and verdict.label == VALID:
                verdict = Verdict(EITHER, f"config.yaml {key} edited")
        else:
            ops, verdict = kinds[kind]
        if kind == "overrides":  # more epochs is the change a resume applies; the rest it refuses
            extra = rng.choice([["epochs=3"], ["--method", "gdas"], ["--out", "elsewhere"], ["C=4"],
                                ["--config", "x.yaml"], ["--epochs", "2"], ["--data", "synthetic"]])
            if "epochs" in " ".join(extra):
                verdict = Verdict(VALID, "more epochs")
        unprivileged = kind == "unreadable checkpoint" and self.env.is_root
        keep = ["run"] if verdict.label == INVALID and kind not in ("missing", "fifo") else []
        keep_mode = ["run"] if verdict.label != INVALID else []
        keep_type = ["run"] if kind == "fifo" else ["run/checkpoint.pt"] if kind == "checkpoint fifo" else []
        argv = ["search", "--resume", "run", *extra] + (["--quiet"] if rng.random() < 0.9 else [])
        return Case("resume", argv, verdict.label, f"{kind}: {verdict.why}", _shared(ops), keep, keep_type,
                    unprivileged, keep_mode=keep_mode)

    def train_resume(self, rng: random.Random) -> Case:
        copy = [("copy", "run", "run:train")]
        settings = ["--epochs", "1", "--limit-train", "64", "--limit-test", "64", "--C", "2", "--N", "1"]
        kinds = {
            "complete": (copy, [], OK),
            "more epochs": (copy, ["--epochs", "2"], Verdict(EITHER, "more epochs than the run")),
            "other C": (copy, ["--C", "4"], Verdict(INVALID, "settings that differ from the run")),
            "other arch": (copy, ["ARCH"], Verdict(INVALID, "another architecture than the run's")),
            "missing": ([], [], Verdict(INVALID, "no such folder")),
            "empty dir": ([("mkdir", "run")], [], Verdict(INVALID, "an empty folder")),
            "file": ([("write", "run", "x\n")], [], Verdict(INVALID, "a file")),
            "search run": ([("copy", "run", "run:search")], [], Verdict(INVALID, "a search run given to train")),
            "no checkpoint": (copy + [("remove", "run/checkpoint.pt")], [], OK),
            "truncated checkpoint": (copy + [("truncate", "run/checkpoint.pt", rng.choice([0.5, 0.01]))], [], OK),
            "garbage checkpoint": (copy + [("write", "run/checkpoint.pt", b"\x80\x02garbage")], [], OK),
            "both garbage": (copy + [("write", "run/checkpoint.pt", b"\x80\x02garbage"),
                                     ("write", "run/checkpoint.prev.pt", b"junk")], [],
                             Verdict(INVALID, "both checkpoints damaged")),
            "foreign checkpoint": (copy + [("remove", "run/checkpoint.pt"), ("copy", "run/checkpoint.pt",
                                                                              "run:search/checkpoint.pt")], [],
                                   Verdict(INVALID, "a search checkpoint")),
            "no config": (copy + [("remove", "run/config.yaml")], [], Verdict(INVALID, "no config.yaml")),
            "config garbage": (copy + [("write", "run/config.yaml", rng.choice(["[1]\n", "{\n", "\xff", ""]))], [],
                               Verdict(INVALID, "a config.yaml that is no configuration")),
            "torn metrics": (copy + [("append", "run/metrics.jsonl", b'{"epoch": 2, "tr')], [], OK),
            "with --out": (copy, ["--out", "elsewhere"], Verdict(INVALID, "--out that --resume ignores")),
        }
        kind = rng.choice(list(kinds))
        ops, extra, verdict = kinds[kind]
        arch = nb201_random(rng) if extra == ["ARCH"] else NB201_BEST
        extra = [] if extra == ["ARCH"] else extra
        argv = ["train", arch, *settings, *extra, "--resume", "run", "--quiet"]
        argv = _dedupe_flags(argv)
        keep = ["run"] if verdict.label == INVALID and kind != "missing" else []
        keep_mode = ["run"] if verdict.label != INVALID else []
        return Case("resume", argv, verdict.label, f"{kind}: {verdict.why}", _shared(ops), keep, keep_mode=keep_mode)

    def data(self, rng: random.Random) -> Case:
        """Datasets and data folders, through search, train, proxies and zero-cost."""
        command = rng.choices(["search", "train", "proxies", "zero-cost"], [45, 30, 15, 10])[0]
        dataset = rng.choice(["cifar10", "cifar10", "cifar100", "imagefolder", "digits", "synthetic",
                              typo(rng, "cifar10"), "CIFAR10", "", "imagenet"])
        large_ok = command in ("search", "train")
        use_dir = rng.random() < 0.9
        path, ops, unprivileged, source = self.data_source(rng, dataset, large_ok) if use_dir else (None, [], False, None)
        data_flags = ["--data", dataset] + (["--data-dir", path] if path is not None else [])
        data_verdict = self._data_verdict(dataset, path, source)
        keep = [p for p in [path] if p and p not in ("no/such/folder", "data.fifo", "null.dev", "loop")]
        keep_type = [p for p in [path] if p in ("data.fifo", "null.dev")]
        if command == "search":
            method, overrides, flags = self.search_base(rng)
            return self._search_case(method, overrides, flags + data_flags, [], [], ops, "run", keep, keep_type,
                                     surface="data", data_source=source, unprivileged=unprivileged)
        if command == "train":
            argv, base = self.train_argv(rng, space="nb201")
            argv = _dedupe_flags(argv[:2] + data_flags + argv[2:])
            verdict = worst(base, data_verdict)
            return Case("data", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)
        proxy = rng.choice(["snip", "jacob_cov", "grad_norm", "nwot"])
        if command == "proxies":
            argv = ["proxies", "--archs", "2", "--proxies", proxy, *data_flags, "--out", "run", "--quiet"]
        else:
            argv = ["zero-cost", "--samples", "2", "--seeds", "1", "--proxy", proxy, *data_flags, "--out", "run", "--quiet"]
        if dataset == "digits":
            data_verdict = worst(data_verdict, OK)
        return Case("data", argv, data_verdict.label, data_verdict.why, ops, keep, keep_type, unprivileged)

    @staticmethod
    def _data_verdict(dataset: str, path: str | None, source: Verdict | None) -> Verdict:
        if dataset not in o.DATASETS:
            return Verdict(INVALID, f"unknown dataset {dataset!r}")
        if dataset in o.ON_DISK:
            return source if path is not None else Verdict(INVALID, f"{dataset} without --data-dir")
        return OK if path is None else Verdict(EITHER, f"{dataset} is built in: --data-dir is ignored")

    # -- train -------------------------------------------------------------------------------------------
    def train_argv(self, rng: random.Random, space: str) -> tuple[list[str], Verdict]:
        arch = valid_arch(rng, space)
        if space == "darts":
            base = ["--space", "darts", "--data", "synthetic", "--C", "4", "--layers", "3"]
        else:
            base = ["--C", "2", "--N", "1"] + (["--space", "nb201"] if rng.random() < 0.2 else [])
        argv = ["train", arch, *base, "--epochs", "1", "--limit-train", "64", "--limit-test", "64", "--out", "run"]
        return argv + (["--quiet"] if rng.random() < 0.9 else []), OK

    TRAIN_SAMPLES = {"name": ["x"], "epochs": ["1", "2"], "batch_size": ["16", "64", "1000000"],
                     "eval_batch_size": ["16", "1"], "lr": ["0.1", "0.01"], "lr_min": ["0", "0.001"],
                     "schedule": ["cosine", "constant", "linear"], "schedule_unit": ["epoch", "step", "batch"],
                     "momentum": ["0", "0.9"], "nesterov": ["true", "false"], "weight_decay": ["0", "0.0005"],
                     "grad_clip": ["0", "5"], "crop_flip": ["true", "false"], "cutout": ["0", "4", "16"],
                     "drop_path_prob": ["0", "0.2"], "auxiliary_weight": ["0", "0.4"],
                     "label_smoothing": ["0", "0.1"], "valid_fraction": ["0", "0.1", "0.5"],
                     "network": ["{C: 4}", "{N: 2}", "{affine: false}", "{layers: 3}", "{auxiliary: false}",
                                 "{C: 4, foo: 1}", "{variant: imagenet}", "{track_running_stats: false}"]}

    def train(self, rng: random.Random) -> Case:
        space = "darts" if rng.random() < 0.25 else "nb201"
        argv, _ = self.train_argv(rng, space)
        overrides: dict[str, str] = {}
        verdicts, ops, keep, keep_type, unprivileged = [], [], [], [], False
        kind = rng.choices(["arch", "recipe", "unknown", "flag", "syntax", "out", "space"], [22, 38, 6, 18, 5, 7, 4])[0]
        if kind == "arch":
            argv[1], verdict = arch_for(rng, space)
            verdicts.append(verdict)
        elif kind == "recipe":
            key = rng.choice(list(self.TRAIN_SAMPLES))
            overrides[key] = pick(rng, key, self.TRAIN_SAMPLES[key], generic=0.85)
            # the flags would override the value: leave the field to it alone
            drop = {"epochs": ["--epochs"], "network": ["--C", "--N", "--layers"]}.get(key, [])
            argv = [a for i, a in enumerate(argv) if a not in drop and (i == 0 or argv[i - 1] not in drop)]
        elif kind == "unknown":
            overrides[rng.choice(["w_lr", "C", "lr_max", typo(rng, "batch_size"), "Epochs", "seed"])] = "1"
        elif kind == "flag":
            flag = rng.choice(["--epochs", "--C", "--N", "--layers", "--limit-train", "--limit-test", "--seed",
                               "--device", "--recipe", "--deterministic"])
            if flag == "--deterministic":
                argv.append(flag)
            else:
                value = {"--device": lambda: pick(rng, "device", SEARCH_SAMPLES["device"], 0.3),
                         "--recipe": lambda: rng.choice(["nb201", "darts", "Darts", "", typo(rng, "nb201")]),
                         "--seed": lambda: pick(rng, "seed", SEARCH_SAMPLES["seed"])}.get(
                    flag, lambda: pick(rng, flag[2:].replace("-", "_"), ["1", "2", "4"]))()
                argv = _dedupe_flags(argv + [flag, value])
                verdicts.append(self._train_flag(flag, value, space))
        elif kind == "syntax":
            items, verdict = syntax_garbage(rng, "lr", "0.1")
            argv[2:2] = items
            verdicts.append(verdict)
        elif kind == "out":
            out, ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "train")
            argv[argv.index("--out") + 1] = out
            verdicts.append(verdict)
        else:
            value = rng.choice(["nb201", "darts", "nasbench999", "", "NB201"])
            argv = _dedupe_flags(argv + ["--space", value])
            arch_space = "darts" if "--layers" in argv else "nb201"
            verdicts.append(OK if value == arch_space else Verdict(INVALID, f"--space {value!r} for a {arch_space} cell"))
        argv[2:2] = [f"{k}={v}" for k, v in overrides.items()]
        verdicts.append(o.judge_recipe({k: Given.from_text(v) for k, v in overrides.items()}, space))
        verdicts.append(self._train_cross(overrides, space, argv))
        verdict = worst(*verdicts)
        return Case("train", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)

    def _train_flag(self, flag: str, value: str, space: str) -> Verdict:
        if flag == "--device":  # train's flags stand for key=value text: --device null is device=null (auto)
            return self.device_key.judge_text(value)
        if flag == "--recipe":
            return OK if value == space else Verdict(EITHER, "the other space's recipe") if value in o.SPACES else \
                Verdict(INVALID, f"unknown recipe {value!r}")
        if flag == "--seed":
            return _argparse_int(value, o.Seed())
        if (flag, space) in (("--N", "darts"), ("--layers", "nb201")):
            verdict = _argparse_int(value, o.Int(1))
            return verdict if verdict.label == INVALID else Verdict(INVALID, f"{flag} means nothing to {space}")
        rule = {"--C": o.Int(2 if space == "darts" else 1), "--epochs": o.Int(1)}.get(flag, o.Int(1))
        verdict = _argparse_int(value, rule)
        n = _int_or_none(value)
        if flag == "--C" and space == "darts" and n is not None and n > 0 and n % 2:
            return Verdict(INVALID, "the DARTS space needs an even C")
        if flag in ("--limit-train", "--limit-test") and n is not None and 0 < n < 10:
            return worst(verdict, Verdict(EITHER, "fewer images than classes"))
        return verdict

    @staticmethod
    def _train_cross(overrides: dict, space: str, argv: list[str]) -> Verdict:
        verdicts = []
        for key in ("drop_path_prob", "auxiliary_weight"):
            value = o.as_number(o.read_text(overrides.get(key, "0")))
            if space == "nb201" and value and value[0] and value[0] > 0:
                verdicts.append(Verdict(EITHER, f"{key} on a network without drop-path or auxiliary head"))
        fraction = o.as_number(o.read_text(overrides.get("valid_fraction", "0.1")))
        if fraction and 0 < fraction[0] < 1 and fraction[0] * 64 < 1:
            verdicts.append(Verdict(EITHER, "a validation split of a few images"))
        if "--recipe" in argv and argv[argv.index("--recipe") + 1] == "darts" and space == "nb201":
            verdicts.append(Verdict(EITHER, "the DARTS recipe's network options on NB201"))
        return worst(*verdicts)


def _shared(ops: list[tuple]) -> list[tuple]:
    """A copied run opened to the group (files 0644) before it is damaged: a resume must keep those modes."""
    out = []
    for op in ops:
        out.append(op)
        if op[0] == "copy" and op[1] in ("run", "real") and op[2].startswith("run:") and "/" not in op[2]:
            out.append(("share", op[1]))
    return out
