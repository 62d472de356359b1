"""The oracle: which inputs the command line must accept, which it must refuse, and which the documentation
leaves open. It is written from what each option means (README, docs, the papers' settings), not by calling
the package's own checks, so that it can disagree with them.

A verdict is VALID (must exit 0), INVALID (must end with one 'archsearch: error:' line and exit 2) or EITHER
(both are fine; a traceback, a crash, a hang or damage to files is still a defect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

VALID, INVALID, EITHER = "valid", "invalid", "either"
_RANK = {VALID: 0, EITHER: 1, INVALID: 2}


@dataclass(frozen=True)
class Verdict:
    label: str
    why: str = ""


OK = Verdict(VALID)


def worst(*verdicts: Verdict) -> Verdict:
    """The strictest verdict: one invalid part makes the whole input invalid."""
    return max(verdicts, key=lambda v: _RANK[v.label], default=OK)


# -- reading values as a user means them ---------------------------------------------------------
BAD_YAML = object()
#: YAML 1.1 reads these as booleans; the documentation only promises true/false
YAML11_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}


def read_text(text: str):
    """A key=value text as YAML (the documented format of values), BAD_YAML where it is not YAML."""
    try:
        return yaml.safe_load(text)
    except Exception:  # a parser error, or a recursion or memory error on a deeply nested value
        return BAD_YAML


def as_number(value):
    """(number, exact) or None. A numeric-looking string counts, inexactly: PyYAML reads 1e-3 as text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value, True
    if isinstance(value, str):
        try:
            return float(value), False
        except ValueError:
            return None
    return None


# -- value rules ----------------------------------------------------------------------------------
class Rule:
    """What one option's value means: ``judge`` a value read from YAML, ``judge_text`` a key=value text."""

    doc = "a value"
    none = INVALID  #: the verdict for an empty value (YAML null)

    def judge(self, value) -> Verdict:
        raise NotImplementedError

    def judge_text(self, text: str) -> Verdict:
        if not text.strip():  # documented: blank is no value (null is said with null or ~), one error
            return Verdict(INVALID, f"{text!r} is blank: null is written null or ~")
        value = read_text(text)
        if value is BAD_YAML:
            return Verdict(INVALID, f"{text!r} is not a readable value")
        return self.judge(value)

    def bad(self, value) -> Verdict:
        return Verdict(INVALID, f"{value!r} is not {self.doc}")


class Number(Rule):
    """An int or float in a range; NaN and infinities are never valid."""

    def __init__(self, lo=None, hi=None, *, lo_open=False, hi_open=False, integer=False, none=INVALID,
                 above=INVALID, big=None, odd=False):
        # above: the verdict past ``hi`` (EITHER for a soft bound such as momentum < 1); big: beyond it a value
        # is left open, as too large to run here
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.integer, self.none, self.above, self.big, self.odd = integer, none, above, big, odd
        kind = "an odd integer" if odd else "an integer" if integer else "a finite number"
        bounds = []
        if lo is not None:
            bounds.append(f"{'>' if lo_open else '>='} {lo}")
        if hi is not None:
            bounds.append(f"{'<' if hi_open else '<='} {hi}")
        self.doc = f"{kind} {' and '.join(bounds)}".strip()

    def judge(self, value) -> Verdict:
        if value is None:
            return Verdict(self.none, "empty value")
        number = as_number(value)
        if number is None:
            return self.bad(value)
        x, exact = number
        if not math.isfinite(x):
            return Verdict(INVALID, f"{value!r} is not finite")
        if self.integer and x != int(x):
            return self.bad(value)
        # settings are float32 arithmetic and 64-bit sizes: past those no value means anything
        if self.integer and abs(x) >= 2**63:
            return Verdict(INVALID, f"{value!r} is wider than 64 bits")
        if not self.integer and abs(x) > 3.4028234663852886e38:
            return Verdict(INVALID, f"{value!r} is beyond float32's range")
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return self.bad(value)
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return Verdict(self.above, f"{value!r} is not {self.doc}")
        if self.odd and int(x) % 2 == 0:
            return self.bad(value)
        if self.integer and (not exact or isinstance(x, float)):
            return Verdict(EITHER, f"{value!r}: an integer written as a float or text")
        if not exact:
            return Verdict(EITHER, f"{value!r}: a number that YAML reads as text")
        if self.big is not None and abs(x) > self.big:
            return Verdict(EITHER, f"{value!r}: too large to run here")
        return OK


class OrWord(Rule):
    """A word (``auto``) or a value of another rule."""

    def __init__(self, word: str, rule: Rule):
        self.word, self.rule, self.none = word, rule, rule.none
        self.doc = f"{word!r} or {rule.doc}"

    def judge(self, value) -> Verdict:
        return OK if value == self.word else self.rule.judge(value)


def Int(lo=1, hi=None, **kw) -> Number:
    return Number(lo, hi, integer=True, **kw)


def PosFloat(**kw) -> Number:
    return Number(0, lo_open=True, **kw)


def NonNeg(**kw) -> Number:
    return Number(0, **kw)


def Prob(**kw) -> Number:
    """A probability or rate in [0, 1)."""
    return Number(0, 1, hi_open=True, **kw)


class Seed(Rule):
    doc = "a seed (an integer)"

    def judge(self, value) -> Verdict:
        if isinstance(value, bool) or not isinstance(value, int):
            number = as_number(value)
            if number is not None and math.isfinite(number[0]) and number[0] == int(number[0]):
                return Verdict(EITHER, f"seed {value!r} written as a float or text")
            return self.bad(value)
        if not 0 <= value < 2**32:
            return Verdict(EITHER, f"seed {value} outside 0..2^32-1")
        return OK


class Bool(Rule):
    doc = "true or false"

    def judge(self, value) -> Verdict:
        return OK if isinstance(value, bool) else self.bad(value)

    def judge_text(self, text: str) -> Verdict:
        if text.strip().lower() in YAML11_BOOL_WORDS:
            return Verdict(EITHER, f"{text!r}: a YAML 1.1 boolean, not true/false")
        return super().judge_text(text)


class Choice(Rule):
    def __init__(self, names, none=INVALID):
        self.names, self.none = tuple(names), none
        self.doc = f"one of {', '.join(map(str, self.names))}"

    def judge(self, value) -> Verdict:
        if value is None:
            return Verdict(self.none, "empty value")
        if isinstance(value, bool) or value not in self.names:
            return self.bad(value)
        return OK

    def judge_text(self, text: str) -> Verdict:
        if text in self.names:
            return OK
        verdict = super().judge_text(text)  # 'darts' in quotes, or 1 for order
        return Verdict(EITHER, f"{text!r} names a choice only once read as YAML") if verdict.label == VALID else verdict


class Text(Rule):
    doc = "a text"

    def __init__(self, none=INVALID):
        self.none = none

    def judge(self, value) -> Verdict:
        if value is None:
            return Verdict(self.none, "empty value")
        return OK if isinstance(value, str) else Verdict(EITHER, f"{value!r} is not text")

    def judge_text(self, text: str) -> Verdict:
        if text == "":
            return Verdict(self.none, "empty value")
        return Verdict(EITHER, f"{text!r} is text but no YAML") if read_text(text) is BAD_YAML else OK


class ListOf(Rule):
    def __init__(self, item: Rule, length=None, min_length=0, none=INVALID):
        self.item, self.length, self.min_length, self.none = item, length, min_length, none
        self.doc = f"a list of {length or ''} {item.doc}".replace("  ", " ")

    def judge(self, value) -> Verdict:
        if value is None:
            return Verdict(self.none, "empty value")
        if not isinstance(value, (list, tuple)):
            return self.bad(value)
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_length:
            return Verdict(INVALID, f"{value!r} has {len(value)} items")
        return worst(*(self.item.judge(v) for v in value))


class Options(Rule):
    """A mapping of named options, each with its own rule; an unknown name is invalid, never ignored."""

    def __init__(self, schema: dict[str, Rule], what: str):
        self.schema, self.what = schema, what
        self.doc = f"a mapping of {what} options ({', '.join(schema) or 'none'})"

    def judge(self, value) -> Verdict:
        if value is None:
            return Verdict(EITHER, "empty options")
        if not isinstance(value, dict):
            return self.bad(value)
        verdicts = []
        for key, item in value.items():
            if key not in self.schema:
                verdicts.append(Verdict(INVALID, f"unknown {self.what} option {key!r}"))
            else:
                sub = self.schema[key].judge(item)
                verdicts.append(Verdict(sub.label, f"{self.what} option {key}: {sub.why}") if sub.why else sub)
        return worst(*verdicts)


class Device(Rule):
    """A torch device this machine has; ``None`` means CUDA when present, else the CPU."""

    doc = "a device this machine has"

    def __init__(self, cuda_devices: int, mps: bool, none=VALID):
        self.cuda_devices, self.mps, self.none = cuda_devices, mps, none

    def judge(self, value) -> Verdict:
        if value is None:
            return Verdict(self.none, "no device")
        if not isinstance(value, str):
            return self.bad(value)
        name, _, index = value.partition(":")
        if name == "cpu":
            return OK if not index else Verdict(EITHER, "cpu with an index")
        if name == "cuda":
            if not self.cuda_devices:
                return Verdict(INVALID, f"{value}: this machine has no CUDA")
            if not index:
                return OK
            return OK if index.isdigit() and int(index) < self.cuda_devices else Verdict(
                INVALID, f"{value}: no such CUDA device")
        if name == "meta" and not index:
            return Verdict(EITHER, "the meta device: fine for counting, not for computing")
        if name == "mps" and not index:
            return OK if self.mps else Verdict(INVALID, "this machine has no MPS")
        return Verdict(INVALID, f"{value!r}: no such device here")


# -- the registries, as the documentation names them ---------------------------------------------
SPACES = ("nb201", "darts")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
DARTS_PUBLISHED = ("DARTS_V1", "DARTS_V2", "PC_DARTS", "PDARTS", "GDAS", "DARTS")
DATASETS = ("digits", "cifar10", "cifar100", "imagefolder", "synthetic")
ON_DISK = ("cifar10", "cifar100", "imagefolder")
NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NB201_DATASET_ALIASES = ("c10", "cifar-10", "c100", "cifar-100", "imagenet16-120", "imagenet16", "in16",
                         "CIFAR10", "Cifar100")
PROXIES = ("synflow", "jacob_cov", "snip", "grad_norm", "grasp", "fisher", "nwot", "params", "flops")
DATA_FREE_PROXIES = ("synflow", "params", "flops")
STRATEGIES = ("random", "evolution", "reinforce", "bo", "local", "tpe")
OPTBENCH_OPTIMIZERS = ("adam", "adam+dscd", "uniform", "cmaes")
FUNCTIONS = ("styblinski-tang", "schwefel", "rastrigin")
NB201_SIZE = 15625

#: the components each method combines, from the method's paper (docs/*.md); the rest are the defaults
DEFAULTS = {"space": "nb201", "C": 16, "relaxation": "softmax", "arch_optimizer": "adam", "selector": "argmax",
            "early_stop": None, "driver": None, "epochs": 50, "w_momentum": 0.9, "w_nesterov": False,
            "data": "digits", "data_dir": None, "arch_warmup_epochs": 0, "supernet_options": {},
            "relaxation_options": {}, "arch_options": {}, "selector_options": {}, "early_stop_options": {},
            "driver_options": {}, "order": 1, "grad_clip": 5.0, "hessian_every": "auto", "train_epochs": 0,
            "limit_train": None, "distributed": False}
_GAUSS = {"relaxation": "gaussian", "arch_optimizer": "vadam"}
_FAIR = {"relaxation": "sigmoid", "relaxation_options": {"w01": 10.0}, "selector": "threshold",
         "selector_options": {"threshold": 0.8, "max_inputs": 2}}
METHODS = {
    "darts": {}, "darts2": {"order": 2},
    "balenas": _GAUSS, "balenas2": {**_GAUSS, "order": 2},
    "balenas-tf": {**_GAUSS, "selector": "sample_and_rank", "selector_options": {"proxy": "synflow", "n": 100}},
    "xnas": {"relaxation": "experts", "arch_optimizer": "expgrad", "selector": "online-to-batch",
             "arch_options": {"grad_bound": 1.0, "wipeout": True}},
    "fairdarts": _FAIR,
    "fairdarts-dscd": {**_FAIR, "arch_optimizer": "dscd-adam", "arch_options": {"bound": 3.0, "memory": 10, "patience": 10}},
    "gdas": {"relaxation": "gumbel_hard", "relaxation_options": {"tau_max": 10.0, "tau_min": 0.1}, "w_nesterov": True},
    "snas": {"relaxation": "gumbel", "relaxation_options": {"tau_max": 1.0, "tau_min": 0.03}},
    "drnas": {"relaxation": "dirichlet", "relaxation_options": {"kl_weight": 1e-3, "prior": 1.0}},
    "pcdarts": {"supernet_options": {"partial_channels": 4, "edge_normalization": True}, "arch_warmup_epochs": 15},
    "pdarts": {"space": "darts", "selector": "max-skips", "selector_options": {"max_skips": 2}, "driver": "progressive",
               "driver_options": {"add_layers": [0, 6, 12], "num_ops": [8, 5, 3], "skip_dropout": [0.0, 0.4, 0.7],
                                  "dropout_decay": 0.2}, "arch_warmup_epochs": 10, "C": 16},
    "dartsplus": {"early_stop": "dartsplus"}, "rdarts": {"early_stop": "rdarts", "hessian_every": 2},
    "rdarts-l2": {}, "rdarts-dp": {},
}

_VARIATIONAL = {"prior_precision": PosFloat(), "dataset_size": Int(1), "mc_samples": Int(1, big=64),
                "init_precision": PosFloat(none=VALID), "perturb": Bool()}
RELAXATIONS = {
    "softmax": {}, "experts": {},
    "gaussian": {"weight_sample": Bool(), "entropy_samples": Int(1, big=100_000)},
    "sigmoid": {"w01": NonNeg(), "warmup_epochs": Int(0)},
    "dirichlet": {"kl_weight": NonNeg(), "prior": PosFloat()},
    "gumbel_hard": {"tau_max": PosFloat(), "tau_min": PosFloat()},
    "gumbel": {"tau_max": PosFloat(), "tau_min": PosFloat(), "resource_weight": NonNeg(), "log_penalty": Bool()},
}
SAMPLING_RELAXATIONS = ("gaussian", "gumbel", "gumbel_hard", "dirichlet")
def arch_optimizer_schemas(ops) -> dict[str, dict[str, Rule]]:
    return {
        # Adam's lr, betas and weight decay have keys of their own (arch_lr, arch_betas, arch_weight_decay)
        "adam": {"eps": PosFloat(), "amsgrad": Bool()},
        "vprop": _VARIATIONAL,
        "vadam": {**_VARIATIONAL, "momentum": Prob(), "adam_form": Bool(), "betas": ListOf(Prob(), 2)},
        "von": {**_VARIATIONAL, "momentum": Prob(), "curvature": Choice(("hutchinson", "exact")),
                "hutchinson_samples": Int(1, big=64), "nonnegative": Bool()},
        "dscd-adam": {"bound": PosFloat(), "memory": Int(1), "patience": Int(1), "seed": Seed(), "rounds": Int(1, none=VALID)},
        "expgrad": {"lr": PosFloat(none=VALID), "grad_bound": PosFloat(), "wipeout": Bool(), "rounds": Int(1, none=VALID),
                    "remove_ops": ListOf(Choice(ops))},
    }


ARCH_OPTIMIZERS = tuple(arch_optimizer_schemas(NB201_OPS))


def selector_schemas(ops) -> dict[str, dict[str, Rule]]:
    exclude = ListOf(Choice(ops))
    rank = {"proxy": Choice(PROXIES), "n": Int(1, big=20)}
    return {"argmax": {}, "threshold": {"threshold": Number(0, 1, lo_open=True, hi_open=True),
                                        "max_inputs": Int(1, none=VALID), "exclude": exclude},
            "online-to-batch": {"mode": Choice(("accumulated", "final", "sample")), "seed": Seed(),
                                "exclude": exclude},
            "sample_and_rank": rank, "random_and_rank": rank, "max-skips": {"max_skips": Int(0)}}


def early_stop_schemas(ops) -> dict[str, dict[str, Rule]]:
    return {"dartsplus": {"max_skips": Int(1), "patience": Int(1), "learnable_ops": ListOf(Choice(ops))},
            "rdarts": {"window": Int(1, odd=True), "k": Int(1), "factor": PosFloat(), "start_epoch": Int(0),
                       "rollback": Bool()}}


DRIVERS = {"progressive": {"add_layers": ListOf(Int(0, big=6), min_length=1), "num_ops": ListOf(Int(1, 8)),
                           "skip_dropout": ListOf(Prob()), "dropout_decay": NonNeg()}}
SUPERNET_OPTIONS = {"partial_channels": Int(1, none=VALID), "edge_normalization": Bool()}
#: options whose value is a mapping checked against the component it configures
NESTED = ("supernet_options", "relaxation_options", "arch_options", "selector_options", "early_stop_options",
          "driver_options")


#: past this, a learning rate or weight decay may make the first steps' loss non-finite, which a run refuses
#: (its checkpoint kept) rather than runs: either outcome is right
STEP_SCALE = 1e3


def search_keys(device: Device) -> dict[str, Rule]:
    """Every configuration key of a search (SearchConfig), with what its value means."""
    return {
        "space": Choice(SPACES), "method": Choice(METHODS), "data": Choice(DATASETS), "data_dir": Text(none=VALID),
        "limit_train": Int(1, none=VALID), "seed": Seed(), "deterministic": Bool(), "device": device,
        "distributed": Bool(), "C": Int(1, big=4096), "N": Int(1, 100), "layers": Int(1, 300),
        "track_running_stats": Bool(), "supernet_path": Choice(("fast", "reference")),
        "epochs": Int(1), "batch_size": Int(1), "w_lr": PosFloat(big=STEP_SCALE), "w_lr_min": NonNeg(),
        "w_momentum": Number(0, 1, hi_open=True, above=EITHER), "w_nesterov": Bool(),
        "w_weight_decay": NonNeg(big=STEP_SCALE), "grad_clip": NonNeg(none=VALID), "order": Choice((1, 2)),
        "unrolled_lr": PosFloat(none=VALID, big=STEP_SCALE),
        "arch_warmup_epochs": Int(0), "drop_path_prob": Prob(), "relaxation": Choice(RELAXATIONS),
        "arch_optimizer": Choice(ARCH_OPTIMIZERS), "arch_lr": PosFloat(big=STEP_SCALE), "arch_betas": ListOf(Prob(), 2),
        "arch_weight_decay": NonNeg(big=STEP_SCALE), "selector": Choice(selector_schemas(NB201_OPS)),
        "early_stop": Text(none=VALID), "driver": Choice(DRIVERS, none=VALID), "hessian_every": OrWord("auto", Int(0)),
        "hessian_iters": Int(1, big=50), "train_epochs": Int(0, big=2), "train_C": Int(1, none=VALID, big=64),
        "train_N": Int(1, none=VALID, big=8),
        **{key: Options({}, key) for key in NESTED},  # placeholders: judged against their component below
    }


# -- whole command lines --------------------------------------------------------------------------
@dataclass
class Given:
    """One setting as the user gave it: a key=value text, or a value read from a YAML file."""

    value: object
    text: str | None = None

    @classmethod
    def from_text(cls, text: str) -> Given:
        return cls(read_text(text), text)

    def judge(self, rule: Rule) -> Verdict:
        return rule.judge_text(self.text) if self.text is not None else rule.judge(self.value)

    @property
    def plain(self):
        """The value, with numeric-looking text read as its number."""
        if isinstance(self.value, str):
            number = as_number(self.value)
            if number is not None:
                return number[0]
        return self.value


#: marks a key given both as a flag and as key=value (``given[TWICE + key]``)
TWICE = "twice:"


def judge_search(given: dict[str, Given], method: str | None, device: Device,
                 data_source: Verdict | None = None) -> Verdict:
    """A search's settings (file, key=value and flags merged; ``method`` from --method) against the rules.
    ``data_source``: the verdict of the data folder given as data_dir, for the chosen dataset."""
    keys = search_keys(device)
    # ' data_dir=x': the command line strips keys (the flag markers "data_dir " / "early_stop " are ours)
    given = {k if k.startswith(TWICE) or k in ("data_dir ", "early_stop ") else k.strip(): g for k, g in given.items()}
    verdicts = []
    for key, g in given.items():
        if g.text is not None and g.value is BAD_YAML and key in NESTED:
            verdicts.append(Verdict(INVALID, f"{key}: {g.text!r} is not readable as a mapping"))
        elif key.startswith(TWICE):
            continue  # judged below
        elif key.endswith(" "):  # a flag whose text the configuration may read as YAML null
            verdicts.append(Verdict(EITHER, f"--{key.strip().replace('_', '-')} {g.value!r}: null or a name"))
        elif key not in keys:
            verdicts.append(Verdict(INVALID, f"unknown configuration key {key!r}"))
        elif key not in NESTED:
            v = g.judge(keys[key])
            verdicts.append(Verdict(v.label, f"{key}: {v.why}") if v.label != VALID else v)
    if method is not None and "method" in given and given["method"].text is not None:
        verdicts.append(Verdict(INVALID, "--method and method= both given"))
    for key in [k for k in given if k.startswith(TWICE)]:  # a flag and its key=value: refused even if equal
        verdicts.append(Verdict(INVALID, f"{key[len(TWICE):]} given as a flag and as key=value"))
    name = method if method is not None else given["method"].value if "method" in given else "balenas"
    if not isinstance(name, str) or name not in METHODS:
        return worst(Verdict(INVALID, f"unknown method {name!r}"), *verdicts)
    preset = METHODS[name]

    def get(key):
        if key in given and given[key].value is not BAD_YAML:
            return given[key].plain
        return preset.get(key, DEFAULTS.get(key))

    def component_options(key, component, schemas, what):
        """Nested options checked against the component they configure; options a preset brought along
        for a component the user replaced may be dropped or refused."""
        if not isinstance(component, str) or component not in schemas:
            return OK  # judged with its own key
        options = get(key)
        if key in given:
            v = given[key].judge(Options(schemas[component], what))
            return Verdict(v.label, f"{key}: {v.why}") if v.label != VALID else v
        v = Options(schemas[component], what).judge(options)
        return Verdict(EITHER, f"the preset's {key} do not fit {component}") if v.label == INVALID else v

    space = get("space")
    ops = DARTS_OPS if space == "darts" else NB201_OPS
    relaxation, optimizer, selector = get("relaxation"), get("arch_optimizer"), get("selector")
    verdicts += [component_options("relaxation_options", relaxation, RELAXATIONS, f"{relaxation} relaxation"),
                 component_options("arch_options", optimizer, arch_optimizer_schemas(ops), f"{optimizer} optimizer"),
                 component_options("selector_options", selector, selector_schemas(ops), f"{selector} selector"),
                 component_options("supernet_options", "supernet", {"supernet": SUPERNET_OPTIONS}, "supernet")]
    verdicts.append(_early_stop(given, get, ops))
    verdicts.append(_driver(given, get, space))
    verdicts.append(_search_cross_rules(given, get, preset, space, relaxation, optimizer, selector))
    verdicts.append(_data(get("data"), get("data_dir"), data_source))
    return worst(*verdicts)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _early_stop(given, get, ops) -> Verdict:
    rules = get("early_stop")
    if rules is not None and not isinstance(rules, str):  # a mapping or a list names no rule
        return Verdict(INVALID, f"early_stop {rules!r} is not a rule name")
    names = [n.strip() for n in str(rules).split(",") if n.strip()] if rules else []
    schemas = early_stop_schemas(ops)
    verdicts = [Verdict(INVALID, f"unknown early-stopping rule {n!r}") for n in names if n not in schemas]
    options = get("early_stop_options")
    if "early_stop_options" in given:
        if not isinstance(options, dict):
            return worst(Verdict(INVALID, f"early_stop_options {options!r} is not a mapping"), *verdicts)
        for rule, opts in options.items():
            if rule not in names:
                verdicts.append(Verdict(INVALID, f"early_stop_options for {rule!r}, a rule not in use"))
            elif rule in schemas:
                verdicts.append(Options(schemas[rule], f"{rule} rule").judge(opts))
    if "rdarts" in names and not get("hessian_every"):
        verdicts.append(Verdict(EITHER, "rdarts reads eigenvalues that hessian_every=0 turns off"))
    return worst(*verdicts)


def _driver(given, get, space) -> Verdict:
    driver, options = get("driver"), get("driver_options")
    if driver is None:
        if "driver_options" in given and options not in (None, {}):
            return Verdict(INVALID, "driver_options without a driver")
        if "driver_options" in given and options is None:
            return Verdict(EITHER, "empty options")  # as Options judges a null mapping
        return OK
    if not isinstance(driver, str) or driver not in DRIVERS:
        return OK  # judged with the key
    verdicts = []
    if space != "darts":
        verdicts.append(Verdict(INVALID, "the progressive driver runs on the DARTS space only"))
    v = Options(DRIVERS[driver], "progressive driver").judge(options)
    if "driver_options" not in given and v.label == INVALID:
        v = Verdict(EITHER, v.why)
    verdicts.append(v)
    if v.label == VALID and isinstance(options, dict):
        stages = options.get("add_layers", [0])
        num_ops = options.get("num_ops", [8])
        rates = options.get("skip_dropout", [0.0] * len(stages))
        if not len(stages) == len(num_ops) == len(rates):
            verdicts.append(Verdict(INVALID, "add_layers, num_ops and skip_dropout need one value per stage"))
        elif num_ops[0] != 8 or any(b > a for a, b in zip(num_ops, num_ops[1:])):
            verdicts.append(Verdict(INVALID, "num_ops must start at 8 ops and never grow"))
    return worst(*verdicts)


def _search_cross_rules(given, get, preset, space, relaxation, optimizer, selector) -> Verdict:
    verdicts = []
    C, epochs = get("C"), get("epochs")
    if space == "darts" and _is_int(C) and C > 0 and C % 2:
        verdicts.append(Verdict(INVALID, f"C={C}: the DARTS space needs an even C"))
    # sizes a space's supernet has no use for: an error where key=value sets them off their default, as they
    # would change nothing (a config file may carry them: one file may serve several spaces)
    uses = {"nb201": ("N", "track_running_stats"), "darts": ("layers",)}.get(space, ()) if isinstance(space, str) else ()
    for key, default in (("N", 5), ("layers", 8), ("track_running_stats", True)):
        if key in given and given[key].text is not None and key not in uses and given[key].plain != default:
            verdicts.append(Verdict(INVALID, f"{key} does not apply to the {space} space"))
    if space == "darts" and given.get("train_N") is not None and given["train_N"].value is not None:
        verdicts.append(Verdict(INVALID, "train_N does not apply to the darts space"))
    train_C = get("train_C")
    if space == "darts" and get("train_epochs") and _is_int(train_C) and train_C > 0 and train_C % 2:
        verdicts.append(Verdict(INVALID, f"train_C={train_C}: the DARTS space needs an even C"))
    options = get("supernet_options")
    k = options.get("partial_channels") if isinstance(options, dict) else None
    if _is_int(k) and k > 0 and _is_int(C) and C > 0 and C % k:
        verdicts.append(Verdict(INVALID, f"partial_channels={k} does not divide C={C}"))
    if get("w_nesterov") is True and get("w_momentum") == 0:
        verdicts.append(Verdict(INVALID, "Nesterov momentum with momentum 0"))
    limit = get("limit_train")
    if _is_int(limit) and limit == 1:
        verdicts.append(Verdict(INVALID, "limit_train=1 leaves one of the search splits empty"))
    elif _is_int(limit) and 1 < limit < 10:
        verdicts.append(Verdict(EITHER, f"limit_train={limit}: fewer images than classes"))
    warmup = get("arch_warmup_epochs")
    if _is_int(warmup) and _is_int(epochs) and 0 < epochs <= warmup:
        verdicts.append(Verdict(EITHER, "the architecture warm-up covers every epoch"))
    if get("grad_clip") == 0:
        verdicts.append(Verdict(EITHER, "grad_clip=0"))
    if get("distributed") is True:
        verdicts.append(Verdict(EITHER, "distributed outside torchrun"))
    if selector == "online-to-batch" and optimizer != "expgrad":
        verdicts.append(Verdict(INVALID, "online-to-batch selection reads the expgrad optimizer's weights"))
    if selector == "max-skips" and space != "darts":
        verdicts.append(Verdict(INVALID, "the max-skips selector works on the DARTS space"))
    if selector == "sample_and_rank" and relaxation not in SAMPLING_RELAXATIONS:
        verdicts.append(Verdict(INVALID, f"sample_and_rank needs a relaxation to sample from, not {relaxation}"))
    if optimizer == "von" and (get("order") == 2 or relaxation == "controller"):
        verdicts.append(Verdict(INVALID, "von differentiates the first-order architecture gradient again"))
    for key in ("relaxation", "arch_optimizer", "selector", "order"):
        if key in given and get(key) != preset.get(key, DEFAULTS.get(key)):
            verdicts.append(Verdict(EITHER, f"{key}={get(key)} is not the method's own combination"))
    rx = get("relaxation_options")
    if isinstance(rx, dict) and all(isinstance(rx.get(t), (int, float)) for t in ("tau_min", "tau_max")):
        if rx["tau_min"] > rx["tau_max"]:
            verdicts.append(Verdict(EITHER, "tau_min above tau_max"))
    return worst(*verdicts)


def _data(data, data_dir, source: Verdict | None) -> Verdict:
    if data in ON_DISK:
        if data_dir is None:
            return Verdict(INVALID, f"dataset {data} needs a data folder")
        return source or Verdict(EITHER, "data folder of unknown quality")
    if data_dir is not None and data in DATASETS:
        return Verdict(EITHER, f"{data} is built in: data_dir is ignored")
    return OK


# -- train ----------------------------------------------------------------------------------------
def network_options(space: str) -> dict[str, Rule]:
    if space == "darts":
        return {"C": Int(2, big=64), "layers": Int(1, big=8), "auxiliary": Bool(), "drop_path_prob": Prob(),
                "variant": Choice(("cifar", "imagenet"))}
    return {"C": Int(1, big=64), "N": Int(1, big=5), "affine": Bool(), "track_running_stats": Bool()}


RECIPE_KEYS = {
    "name": Text(), "epochs": Int(1), "batch_size": Int(2), "eval_batch_size": Int(1), "lr": PosFloat(big=STEP_SCALE),
    "lr_min": NonNeg(), "schedule": Choice(("cosine", "constant")), "schedule_unit": Choice(("epoch", "step")),
    "momentum": Number(0, 1, hi_open=True, above=EITHER), "nesterov": Bool(), "weight_decay": NonNeg(big=STEP_SCALE),
    "grad_clip": NonNeg(), "crop_flip": Bool(), "cutout": Int(0), "drop_path_prob": Prob(),
    "auxiliary_weight": NonNeg(), "label_smoothing": Number(0, 1, hi_open=True, above=EITHER),
    "valid_fraction": Prob(), "network": None,
}


#: run settings train takes as key=value beside the recipe's fields (cli/train.py RUN_SETTINGS) that the
#: generators write without the flag that sets them too
TRAIN_RUN_KEYS = {"seed": Seed(), "deterministic": Bool()}


def judge_recipe(given: dict[str, Given], space: str) -> Verdict:
    verdicts = []
    for key, g in given.items():
        key = key.strip()  # ' batch_size=1': the command line strips keys, as search's key=value does
        if key in TRAIN_RUN_KEYS:
            verdicts.append(g.judge(TRAIN_RUN_KEYS[key]))
            continue
        if key not in RECIPE_KEYS:
            verdicts.append(Verdict(INVALID, f"unknown recipe field {key!r}"))
            continue
        if key == "name" and g.text is not None:
            verdicts.append(Verdict(INVALID, "name= would rename the recipe; --recipe chooses one"))
            continue
        rule = RECIPE_KEYS[key] or Options(network_options(space), f"{space} network")
        v = g.judge(rule)
        verdicts.append(Verdict(v.label, f"{key}: {v.why}") if v.label != VALID else v)
    net = given.get("network")
    if net is not None and isinstance(net.value, dict) and space == "darts":
        C = net.value.get("C")
        if _is_int(C) and C > 0 and C % 2:
            verdicts.append(Verdict(INVALID, f"network C={C}: the DARTS space needs an even C"))
    if "cutout" in given and isinstance(given["cutout"].plain, (int, float)) and given["cutout"].plain > 8:
        verdicts.append(Verdict(EITHER, "cutout larger than the images"))
    return worst(*verdicts)


# -- bench --------------------------------------------------------------------------------------------
STRATEGY_OPTIONS = {
    "random": {"unique": Bool()},
    "evolution": {"population": Int(1), "tournament": Int(1)},
    "reinforce": {"controller": Choice(("lstm", "categorical")), "lr": PosFloat(), "baseline_momentum": Prob(),
                  "entropy_weight": NonNeg(), "hidden": Int(1, big=256), "layers": Int(1, big=4)},
    "local": {},
    "bo": {"acquisition": Choice(("ei", "pi", "ucb")), "xi": NonNeg(), "beta": NonNeg(), "n_init": Int(1),
           "pool_random": Int(1, big=1000), "pool_mutations": Int(0, big=100), "pool_parents": Int(1, big=50),
           "mc_samples": Int(1, big=512), "refit_every": Int(1), "fit_maxiter": Int(1, big=200),
           "warp": Choice(("rank", "none"))},
    "tpe": {"n_startup_trials": Int(1), "multivariate": Bool()},
}


def judge_strategy_options(options: dict[str, dict[str, Given]], strategies: list[str]) -> Verdict:
    verdicts = []
    for name, opts in options.items():
        if name not in STRATEGY_OPTIONS:
            verdicts.append(Verdict(EITHER if name.strip() in STRATEGY_OPTIONS else INVALID,
                                    f"--option for unknown strategy {name!r}"))
            continue
        if name not in strategies:
            verdicts.append(Verdict(INVALID, f"--option for {name}, a strategy not run"))
        for key, g in opts.items():
            key = key.strip()  # 'evolution. population=2': option keys are stripped, as key=value's are
            rule = STRATEGY_OPTIONS[name].get(key)
            verdicts.append(g.judge(rule) if rule else Verdict(INVALID, f"unknown {name} option {key!r}"))
        evo = {k: g.plain for k, g in opts.items()} if name == "evolution" else {}
        if _is_int(evo.get("tournament")) and evo["tournament"] > evo.get("population", 10):
            verdicts.append(Verdict(EITHER, "a tournament larger than the population"))
    return worst(*verdicts)
