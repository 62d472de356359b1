"""What every generator draws on: value corpora, cost limits, name lists, argparse's reading of numbers, and
the base of the case makers (the --out targets and data folders any command can be given)."""

from __future__ import annotations

import math
import random

from . import oracle as o
from .fixtures import DATA_SOURCES, LARGE_SOURCES, Env, data_dir_ops, source_verdict
from .genotypes import SURROGATE
from .oracle import EITHER, INVALID, OK, VALID, Given, Verdict

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
        "pool_random": (300, None), "fit_maxiter": (60, None), "n_init": (20, None), "queries": (30, None),
        "seeds": (3, None), "archs": (3, None), "samples": (5, None), "steps": (50, None), "runs": (3, None),
        "dim": (10, 10**9), "workers": (2, None), "batch": (8, None), "image-size": (64, 10**5),
        "num-classes": (1000, 10**8)}


def too_slow(key: str, text: str) -> bool:
    """Whether ``text`` as ``key`` would make a valid case run long, instead of finishing or failing fast."""
    if key not in SLOW:
        return False
    value = o.read_text(text)
    number = o.as_number(text if value is o.BAD_YAML else value)
    if number is None:
        return False
    cheap, fast_fail = SLOW[key]
    return math.isfinite(number[0]) and number[0] > cheap and (fast_fail is None or number[0] < fast_fail)


def pick(rng: random.Random, key: str, samples: list[str], generic: float = 0.5) -> str:
    """A value for ``key``: one of its meaningful samples, or anything from the generic corpus."""
    if rng.random() < generic:
        text = rng.choice(GENERIC)
        if not too_slow(key, text):
            return text
    return rng.choice(samples)


def syntax_garbage(rng: random.Random, key: str, value: str) -> tuple[list[str], Verdict]:
    """key=value items that are not well formed, around a key whose ``value`` is valid (and no flag sets it)."""
    return rng.choice([
        ([key], Verdict(INVALID, "an override without '='")), (["=3"], Verdict(INVALID, "no key")),
        ([f"{key}=={value}"], Verdict(INVALID, f"value '={value}'")),
        ([key, "=", value], Verdict(INVALID, "an override split in three")),
        ([f"{key}={value}={value}"], Verdict(INVALID, "a value with '='")),
        ([f"{key.upper()}={value}"], Verdict(INVALID, f"unknown key {key.upper()}")),
        ([f"é{key[1:]}={value}"], Verdict(INVALID, "unknown key")),
        ([f"{SURROGATE}{key}={value}"], Verdict(INVALID, "unknown key")),
        (["x" * 5000 + f"={value}"], Verdict(INVALID, "unknown key")),
        ([f" {key}={value}"], Verdict(EITHER, "a key with a space")),
        ([f"{key} ={value}"], Verdict(EITHER, "a key with a space")),
        ([f"{key}={value}", f"{key}={value}"], Verdict(EITHER, "a key twice")),
        (["-3"], Verdict(INVALID, "not key=value")), (["--", f"{key}={value}"], Verdict(EITHER, "after --")),
        (["=", "="], Verdict(INVALID, "no key")),
    ])


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


class CaseMaker:
    """Base of the case generators; ``env`` says which machine (CUDA?) and which fixtures."""

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
