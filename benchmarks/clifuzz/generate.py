"""Seeded case generators, one per command surface. Each starts from a tiny valid command (a search or a
training that finishes in seconds, so that a wrongly accepted value ends fast instead of hanging), applies
one or two mutations drawn from grammars and value corpora, and asks the oracle for the verdict.
"""

from __future__ import annotations

import random

import yaml

from . import oracle as o
from .fixtures import DATA_SOURCES, LARGE_SOURCES, NB201_BEST, Env, data_dir_ops, source_verdict
from .genotypes import SURROGATE, arch_for, nb201_random, typo, valid_arch
from .oracle import EITHER, INVALID, OK, VALID, Given, Verdict, worst
from .runner import Case

#: values of any kind, for any key: wrong types, ranges, non-finite numbers, YAML oddities
GENERIC = ["0", "-3", "-1", "1", "2", "3.5", "2.0", "1e309", "-1e309", "nan", ".nan", "inf", ".inf", "-.inf",
           "[1, 2]", "{a: 1}", "''", "", "abc", "true", "false", "yes", "null", "~", "1e-3", "0.5", "1e-320",
           "1" + "0" * 30, "0x10", "2**31", "!!python/object/apply:os.system ['touch pwned']", "[", "{", "'",
           "é", "😀", "1_000", " 4", "+4", "-0", "0.0", "[[[[[[[[1]]]]]]]]", SURROGATE, "a=b", "--quiet",
           "{C: 4}", "[0.5, 0.999]", "[0.5]", "0.9999", "1.0", "100", "2147483648", "9223372036854775808",
           "-9223372036854775809", "1:2", "2020-01-01", "*alias", "&a 1", "- 1", "0o17", "010", "1,5", "None",
           "TRUE", "[]", "{}", " ", "\t", "\n"]
#: keys whose cost grows with the value: (largest cheap value, smallest value that fails fast or None)
SLOW = {"epochs": (2, None), "N": (2, None), "layers": (3, None), "train_epochs": (1, None),
        "hessian_iters": (5, None), "train_N": (2, None), "C": (8, 10**6), "train_C": (8, 10**6),
        "limit_train": (10**9, None), "n": (5, None), "entropy_samples": (4000, 10**8),
        "mc_samples": (4, None), "hutchinson_samples": (4, None), "add_layers": (2, None), "hidden": (64, None),
        "layers_reinforce": (2, None), "pool_random": (300, None), "fit_maxiter": (60, None),
        "mc_samples_bo": (128, None), "n_init": (20, None), "queries": (30, None), "seeds": (3, None),
        "archs": (3, None), "samples": (5, None), "steps": (50, None), "runs": (3, None), "dim": (10, 10**9),
        "workers": (2, None), "batch": (8, None), "image-size": (64, 10**5), "num-classes": (1000, 10**8)}


def too_slow(key: str, text: str) -> bool:
    if key not in SLOW:
        return False
    value = o.as_number(o.read_text(text)) if o.read_text(text) is not o.BAD_YAML else None
    if value is None:
        try:
            value = (float(text), False)
        except ValueError:
            return False
    cheap, fast_fail = SLOW[key]
    x = value[0]
    return x == x and x not in (float("inf"), float("-inf")) and x > cheap and (fast_fail is None or x < fast_fail)


def pick(rng: random.Random, key: str, samples: list[str], generic: float = 0.5) -> str:
    """A value for ``key``: one of its meaningful samples, or anything from the generic corpus."""
    if rng.random() < generic:
        text = rng.choice(GENERIC)
        if not too_slow(key, text):
            return text
    return rng.choice(samples)


# -- search ---------------------------------------------------------------------------------------------
TINY = {"epochs": "1", "C": "2", "N": "1", "limit_train": "64", "batch_size": "32", "hessian_every": "0"}
METHOD_TINY = {"pcdarts": {"C": "4"},
               "pdarts": {"C": "4", "layers": "2", "arch_warmup_epochs": "0",
                          "driver_options": "{add_layers: [0, 1], num_ops: [8, 5], skip_dropout: [0.0, 0.4]}"},
               "balenas-tf": {"selector_options": "{proxy: synflow, n: 3}"},
               "rdarts": {"hessian_every": "1", "hessian_iters": "2"}}
DARTS_TINY = {"C": "4", "layers": "2"}
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
    "hessian_every": ["0", "1"], "hessian_iters": ["2", "3"], "train_epochs": ["0", "1"],
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
    if roll < 0.15 or not keys:
        keys.append(rng.choice([typo(rng, keys[0]) if keys else "foo", "foo", "lr", "C"]))
    elif roll < 0.3 and others:
        keys.append(rng.choice(others))
    items = [f"{k}: {pick(rng, k, OPTION_SAMPLES.get(k, ['1']), generic=0.3)}" for k in keys]
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


def syntax_garbage(rng: random.Random) -> tuple[list[str], Verdict]:
    """key=value items that are not well formed."""
    return rng.choice([
        (["epochs"], Verdict(INVALID, "an override without '='")), (["=3"], Verdict(INVALID, "no key")),
        (["epochs==1"], Verdict(INVALID, "value '=1'")), (["epochs", "=", "1"], Verdict(INVALID, "split override")),
        (["epochs=1=2"], Verdict(INVALID, "value '1=2'")), (["EPOCHS=1"], Verdict(INVALID, "unknown key EPOCHS")),
        (["épochs=1"], Verdict(INVALID, "unknown key")), ([SURROGATE + "epochs=1"], Verdict(INVALID, "unknown key")),
        (["x" * 5000 + "=1"], Verdict(INVALID, "unknown key")), ([" epochs=1"], Verdict(EITHER, "key with a space")),
        (["epochs =1"], Verdict(EITHER, "key with a space")), (["epochs=1", "epochs=2"], Verdict(EITHER, "a key twice")),
        (["-3"], Verdict(INVALID, "not key=value")), (["--", "epochs=1"], Verdict(EITHER, "after --")),
        (["=", "="], Verdict(INVALID, "no key")), (["\0=1"[1:]], Verdict(INVALID, "no key")),
    ])


class Gen:
    """Case generators; ``env`` says which machine (CUDA?) and which fixtures."""

    def __init__(self, env: Env):
        self.env = env
        self.device_key = o.Device(env.cuda_devices, env.mps, none=VALID)
        self.device_flag = o.Device(env.cuda_devices, env.mps, none=INVALID)

    # -- shared pieces ---------------------------------------------------------------------------
    def out_dir(self, rng: random.Random, command: str, allow_runs=True) -> tuple[str, list, list, list, Verdict, bool]:
        """--out for a command that writes a folder: (value, ops, keep, keep_type, verdict, unprivileged)."""
        kinds = ["new", "new", "new", "nested", "empty dir", "user files", "file", "fifo", "ro parent",
                 "file parent", "empty", "long", "symlink", "dangling", "surrogate", "dot"]
        if self.env.can_mknod:
            kinds.append("chardev")
        if allow_runs:
            kinds += ["search run", "train run"]
        kind = rng.choice(kinds)
        runs_are_ours = {"search": "search run", "train": "train run"}.get(command)
        return {
            "new": ("run", [], [], [], OK, False),
            "nested": ("a/b/c/run", [], [], [], OK, False),
            "empty dir": ("run", [("mkdir", "run")], [], [], OK, False),
            "user files": ("run", [("write", "run/notes.txt", "mine\n")], ["run/notes.txt"], [],
                           Verdict(EITHER, "a folder holding other files"), False),
            "file": ("run", [("write", "run", "a file\n")], ["run"], [], Verdict(INVALID, "--out is a file"), False),
            "fifo": ("run", [("fifo", "run")], [], ["run"], Verdict(INVALID, "--out is a FIFO"), False),
            "chardev": ("run", [("chardev", "run")], [], ["run"], Verdict(INVALID, "--out is a device"), False),
            "ro parent": ("ro/run", [("mkdir", "ro"), ("chmod", "ro", 0o555)], ["ro"], [],
                          Verdict(INVALID, "--out in a read-only folder"), True),
            "file parent": ("f/run", [("write", "f", "x\n")], ["f"], [], Verdict(INVALID, "--out under a file"), False),
            "empty": ("", [], [], [], Verdict(INVALID, "empty --out"), False),
            "long": ("x" * 300, [], [], [], Verdict(INVALID, "a name longer than 255 bytes"), False),
            "symlink": ("run", [("mkdir", "target"), ("symlink", "run", "target")], [], [], OK, False),
            "dangling": ("run", [("symlink", "run", "nowhere")], [], [], Verdict(EITHER, "a dangling symlink"), False),
            "surrogate": ("run" + SURROGATE, [], [], [], Verdict(EITHER, "a name that is not UTF-8"), False),
            "dot": (".", [], [], [], Verdict(EITHER, "the current folder"), False),
            "search run": ("run", [("copy", "run", "run:search")], ["run"], [],
                           Verdict(INVALID, "--out holds a search run") if runs_are_ours else
                           Verdict(EITHER, "a folder holding a search run"), False),
            "train run": ("run", [("copy", "run", "run:train")], ["run"], [],
                          Verdict(INVALID, "--out holds a training run") if runs_are_ours else
                          Verdict(EITHER, "a folder holding a training run"), False),
        }[kind]

    def data_source(self, rng: random.Random, dataset: str, large_ok: bool) -> tuple[str, list, bool, Verdict]:
        names = [n for n in DATA_SOURCES if large_ok or n not in LARGE_SOURCES]
        if self.env.shared_cifar is None:
            names = [n for n in names if n not in ("shared-cifar",)]
        if self.env.shared_ptb is None:
            names = [n for n in names if n != "shared-ptb"]
        if not self.env.can_mknod:
            names = [n for n in names if n != "chardev"]
        name = rng.choice(names)
        path, ops, unprivileged = data_dir_ops(name, self.env)
        return path, ops, unprivileged, source_verdict(name, dataset)

    def search_base(self, rng: random.Random) -> tuple[str | None, dict[str, str], list[str]]:
        method = rng.choice([None, None, "darts", "darts", *o.METHODS])
        overrides = dict(TINY)
        overrides.update(METHOD_TINY.get(method, {}))
        flags = []
        if method != "pdarts" and rng.random() < 0.15:
            flags += ["--space", "darts"]
        if method == "pdarts" or flags:
            overrides.update(DARTS_TINY)
        return method, overrides, flags

    @staticmethod
    def given(overrides: dict[str, str], flags: list[str]) -> dict[str, Given]:
        given = {k: Given.from_text(v) for k, v in overrides.items()}
        names = {"--space": "space", "--data": "data", "--data-dir": "data_dir", "--epochs": "epochs",
                 "--seed": "seed", "--early-stop": "early_stop"}
        for flag, value in zip(flags, flags[1:]):
            if flag in names:
                key = names[flag]
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
                overrides[key] = pick(rng, key, SEARCH_SAMPLES[key], generic=0.8)
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
                overrides[key] = rng.choice(names + [typo(rng, rng.choice(names))])
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
                items, verdict = syntax_garbage(rng)
                extra += items
                fixed.append(verdict)
            else:
                out, out_ops, keep, keep_type, verdict, unprivileged = self.out_dir(rng, "search")
                files += out_ops
                fixed.append(verdict)
                case = self._search_case(method, overrides, flags, extra, fixed, files, out, keep, keep_type)
                case.unprivileged = unprivileged
                return case
        if o.read_text(overrides.get("space", "")) == "darts" and "layers" not in overrides:
            overrides["layers"] = "2"  # the DARTS space's default of 8 cells is no tiny search
        return self._search_case(method, overrides, flags, extra, fixed, files, "run", [], [])

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
                           [30, 4, 6, 2, 2, 1, 2, 2, 1, 4, 2, 2, 1, 1, 1, 2, 1, 2, 1, 1, 1, 1, 1])[0]
        files, unprivileged, fixed = [("write", "cfg.yaml", "")], False, []
        from_file: dict[str, Given] = {}
        if kind == "mutated":
            key = rng.choice(list(SEARCH_SAMPLES) + list(o.NESTED) + ["foo"])
            text = (nested_value(rng, key, "adam", o.NB201_OPS) if key in o.NESTED else
                    pick(rng, key, SEARCH_SAMPLES.get(key, ["1"])))
            value = o.read_text(text)
            if value is o.BAD_YAML:
                value = text
            body = yaml.safe_dump({key: value}, allow_unicode=True)
            files = [("write", "cfg.yaml", body)]
            overrides.pop(key, None)
            from_file[key] = Given(o.read_text(body)[key])
            if key == "method" and isinstance(value, str):
                overrides.update(METHOD_TINY.get(value, {}))
                overrides.update(DARTS_TINY if value == "pdarts" else {})
        elif kind in ("run config", "edited run config"):
            files = [("copy", "cfg.yaml", "run:search/config.yaml")]
            overrides = {}
            method = None
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
        if from_file.get("method") and method is None:
            method = from_file["method"].value if isinstance(from_file["method"].value, str) else method
        verdict = worst(o.judge_search(given, method, self.device_key), *fixed)
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
            "no checkpoint": (copy + [("remove", "run/checkpoint.pt")], Verdict(INVALID, "no checkpoint")),
            "truncated checkpoint": (copy + [("truncate", "run/checkpoint.pt", rng.choice([0.5, 0.01, 0.0]))],
                                     Verdict(INVALID, "a truncated checkpoint")),
            "garbage checkpoint": (copy + [("write", "run/checkpoint.pt", random.Random(1).randbytes(999))],
                                   Verdict(INVALID, "a checkpoint of garbage")),
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
                                  Verdict(INVALID, "config.yaml no longer fits the checkpoint")),
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
            if key in ("C", "N", "relaxation", "order") and verdict.label == VALID and value != {"C": 2, "order": 1}.get(key):
                verdict = Verdict(INVALID, f"{key} in config.yaml no longer fits the checkpoint")
            elif key in ("seed", "batch_size", "method", "w_lr") and verdict.label == VALID:
                verdict = Verdict(EITHER, f"config.yaml {key} edited")
        else:
            ops, verdict = kinds[kind]
        if kind == "overrides":
            extra = rng.choice([["epochs=3"], ["--method", "gdas"], ["--out", "elsewhere"], ["C=4"],
                                ["--config", "x.yaml"], ["--epochs", "2"], ["--data", "synthetic"]])
        unprivileged = kind == "unreadable checkpoint" and self.env.is_root
        keep = ["run"] if verdict.label == INVALID and kind not in ("missing", "fifo") else []
        keep_type = ["run"] if kind == "fifo" else ["run/checkpoint.pt"] if kind == "checkpoint fifo" else []
        argv = ["search", "--resume", "run", *extra] + (["--quiet"] if rng.random() < 0.9 else [])
        return Case("resume", argv, verdict.label, f"{kind}: {verdict.why}", ops, keep, keep_type, unprivileged)

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
            "no checkpoint": (copy + [("remove", "run/checkpoint.pt")], [], Verdict(INVALID, "no checkpoint")),
            "truncated checkpoint": (copy + [("truncate", "run/checkpoint.pt", rng.choice([0.5, 0.01]))], [],
                                     Verdict(INVALID, "a truncated checkpoint")),
            "garbage checkpoint": (copy + [("write", "run/checkpoint.pt", b"\x80\x02garbage")], [],
                                   Verdict(INVALID, "a checkpoint of garbage")),
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
        return Case("resume", argv, verdict.label, f"{kind}: {verdict.why}", ops, keep)

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
            overrides[key] = pick(rng, key, self.TRAIN_SAMPLES[key], generic=0.75)
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
            items, verdict = syntax_garbage(rng)
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
        if flag == "--device":
            return self.device_flag.judge(value)
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

    # -- ground truth, info, show -------------------------------------------------------------------------
    def nb201(self, rng: random.Random) -> Case:
        arch, verdict = arch_for(rng, "nb201", index_ok=True)
        argv = ["nb201", "query", arch]
        roll = rng.random()
        if roll < 0.35:
            dataset = rng.choice([*o.NB201_DATASETS, *o.NB201_DATASETS, *o.NB201_DATASET_ALIASES, "imagenet", "",
                                  typo(rng, "cifar100"), "cifar10-valid", SURROGATE])
            argv += ["--dataset", dataset]
            verdict = worst(verdict, OK if dataset in o.NB201_DATASETS else
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
        verdicts = [verdict]
        for _ in range(rng.choice([0, 1, 1, 2])):
            flag = rng.choice(["--num-classes", "--C", "--N", "--layers", "--image-size", "--space"])
            if flag == "--space" and verdict.label != VALID:
                continue
            if flag == "--space":
                value = rng.choice(["nasbench999", "", "NB201", "darts" if space == "nb201" else "nb201"])
                verdicts.append(Verdict(INVALID, f"--space {value!r} for a {space} cell"))
            else:
                samples = {"--num-classes": ["10", "100", "1"], "--C": ["4", "8", "16"], "--N": ["1", "2"],
                           "--layers": ["3", "8"], "--image-size": ["16", "32", "64"]}[flag]
                value = pick(rng, flag[2:], samples)
                verdicts.append(self._info_flag(flag, value, space))
            argv = _dedupe_flags(argv + [flag, value])
        if rng.random() < 0.5:
            argv.append("--json")
        verdict = worst(*verdicts)
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
        ops, keep, keep_type, unprivileged = [], [], [], False
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
        if kind == "existing":
            ops, keep_type = [("write", "cell.png", b"old picture")], ["cell.png"]
        elif kind == "folder":
            ops, keep = [("mkdir", "cell.png"), ("write", "cell.png/inside.txt", "x")], ["cell.png"]
        elif kind in ("fifo", "chardev"):
            ops, keep_type = [(kind, "cell.png")], ["cell.png"]
        elif kind == "ro parent":
            ops, keep, unprivileged = [("mkdir", "ro"), ("chmod", "ro", 0o555)], ["ro"], True
        elif kind == "file parent":
            ops, keep = [("write", "f", "x")], ["f"]
        elif kind == "symlink":
            ops, keep = [("write", "real.png", b"mine"), ("symlink", "cell.png", "real.png")], ["real.png"]
        if out is not None:
            argv += ["--out", out]
        verdict = worst(verdict, out_verdict)
        return Case("show", argv, verdict.label, verdict.why, ops, keep, keep_type, unprivileged)

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
                            "device", "space", "out", "garbage"], [10, 18, 3, 14, 10, 5, 4, 4, 4, 8, 4, 7, 3])[0]
        if kind == "archs":
            value = pick(rng, "archs", ["1", "3", "15626", "100000"])
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
        elif kind == "batch":
            value = pick(rng, "batch", ["8", "64"])
            tail += ["--batch-size", value, "--data", "synthetic"]
            proxies = ["snip"]
            verdicts.append(_argparse_int(value, o.Int(1)))
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
            "bad line": (good[0] + "\n" + arch_for(rng, space)[0].replace("\n", " ") + "\n",
                         Verdict(INVALID, "a line that is no architecture")),
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
        kind = rng.choice(["samples", "seeds", "init seed", "proxy", "space", "device", "out", "garbage"])
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
            verdicts.append(_argparse_int(value, o.Int(1)))
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
                    "zero-cost", "optbench"]
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
            return Case("global", ["--version"], INVALID, "no --version option")
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


def name_list(text: str, names) -> Verdict:
    """A comma-separated list of names: empty entries, repeats and spaces around a name are left open."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        return Verdict(INVALID, f"no names in {text!r}")
    unknown = [t for t in items if t and t not in names]
    if unknown:
        return Verdict(INVALID, f"unknown name(s) {', '.join(map(repr, unknown))}")
    if "" in items or len(set(items)) < len(items) or any(t != t.strip() for t in text.split(",")):
        return Verdict(EITHER, f"{text!r}: an empty entry, a repeat or spaces")
    return OK


def _argparse_int(text: str, rule: o.Rule) -> Verdict:
    """A value for an ``int`` option: argparse reads it with int(), the rule judges the number."""
    try:
        value = int(text)
    except ValueError:
        return Verdict(INVALID, f"{text!r} is no integer")
    verdict = rule.judge(value)
    if verdict.label == VALID and text.strip() != str(value):
        return Verdict(EITHER, f"{text!r}: an integer in an odd spelling")
    return verdict


def _int_flag(text: str) -> Given:
    """An ``int`` option as argparse reads it; what int() refuses stays text, for the rule to refuse."""
    value = _int_or_none(text)
    return Given(text if value is None else value)


def _argparse_float(text: str, rule: o.Rule) -> Verdict:
    try:
        value = float(text)
    except ValueError:
        return Verdict(INVALID, f"{text!r} is no number")
    return rule.judge(value)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _dedupe_flags(argv: list[str]) -> list[str]:
    """Keep the last value of each --flag VALUE pair, so that a mutation replaces the base's value."""
    out, seen = [], set()
    pairs = {"--epochs", "--C", "--N", "--layers", "--limit-train", "--limit-test", "--seed", "--device",
             "--recipe", "--space", "--data", "--data-dir", "--out", "--num-classes", "--image-size"}
    i = len(argv) - 1
    while i >= 0:
        if i > 0 and argv[i - 1] in pairs:
            if argv[i - 1] not in seen:
                seen.add(argv[i - 1])
                out[:0] = argv[i - 1:i + 1]
            i -= 2
        else:
            out.insert(0, argv[i])
            i -= 1
    return out


#: surface name -> (generator method, share of the cases)
SURFACES = {
    "global": ("global_argv", 3), "spaces": ("spaces", 1), "nb201": ("nb201", 6), "info": ("info", 6),
    "show": ("show", 5), "train": ("train", 11), "search": ("search", 21), "search-config": ("search_config", 7),
    "resume": ("resume", 6), "data": ("data", 7), "demo": ("demo", 1), "bench": ("bench", 9),
    "proxies": ("proxies", 6), "zero-cost": ("zero_cost", 4), "optbench": ("optbench", 5),
}


def generate(env: Env, count: int, seed: int, surfaces: list[str] | None = None, accept=None) -> list[Case]:
    """``count`` cases; case i depends only on (seed, i, surfaces), so any one can be rebuilt alone.
    ``accept(case)``, where given, keeps only the cases it likes (drawn until ``count`` are kept)."""
    gen = Gen(env)
    names = surfaces or list(SURFACES)
    weights = [SURFACES[n][1] for n in names]
    cases = []
    for i in range(100 * count):
        if len(cases) == count:
            break
        rng = random.Random(f"{seed}:{i}")
        name = rng.choices(names, weights)[0]
        case = getattr(gen, SURFACES[name][0])(rng)
        case.id = i
        if accept is None or accept(case):
            cases.append(case)
    return cases
