"""Settings read by their annotations: a value coerced to a field's type (YAML text parsed first), a
``Rule`` for its range, and the options of a part built by name (a relaxation, an optimizer, a selector,
a supernet) checked against the keyword parameters of what builds it.

Used by the configurations (``SearchConfig``, ``Recipe``) and every registry that builds from options;
the direct checks of single values (integers, paths, seeds) are in ``checks.py``.
"""

from __future__ import annotations

import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from archsearch.errors import ArchSearchError, ConfigError, did_you_mean, shown

# ---- values checked by their annotations -------------------------------------------------------------
FLOAT32_MAX = 3.4028234663852886e38


# ---- types ------------------------------------------------------------------------------------------
def _describe(hint) -> str:
    return str(hint).replace("typing.", "").replace("collections.abc.", "").replace("<class '", "").replace("'>", "")


def _is_optional(hint) -> tuple[bool, Any]:
    """(None allowed, the hint without None)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]
    return False, hint


def _scalar(hint, value):
    """Coerce one value to a scalar type; raises TypeError/ValueError when it is not one."""
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if hint in (int, float) and isinstance(value, str):  # YAML reads 1e-3 as text; Python reads it as a number
        try:
            value = int(value)
        except ValueError:
            value = float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value != int(value) or not -2**63 <= int(value) < 2**63:  # beyond any tensor size or seed
            raise TypeError
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        value = float(value)
        # every setting ends up in float32 tensor arithmetic, which overflows past this
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ValueError("not a finite float32")
        return value
    if hint is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    raise TypeError


def read_value(name: str, text: str):
    """A value typed on the command line, read as YAML (``3`` a number, ``[1, 2]`` a list, ``abc`` text).
    Blank text is no value (YAML would read it as null): null is said with ``null`` or ``~``."""
    if not text.strip():
        raise ConfigError(f"'{name}' is empty ({shown(text)}): give a value, or null")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"cannot read value {shown(text)} for '{name}'") from None
    except RecursionError:
        raise ConfigError(f"the value for '{name}' is nested too deeply to read") from None


YAML_NULLS = frozenset({"~", "null", "Null", "NULL"})


def coerce(name: str, hint, value):
    """``value`` as the annotation ``hint`` says (YAML text is parsed first), or a ConfigError.

    Takes bool, int, float, str, ``X | None``, dict, ``tuple[float, ...]``, ``Sequence[X]``/``list[X]``
    and ``Any``; floats must be finite (NaN and inf are never a setting).
    """
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    optional, hint = _is_optional(hint)
    if optional and isinstance(value, str) and value.strip() in YAML_NULLS:
        return None  # `early_stop=null` on a command line: no rule, as in a YAML file
    if isinstance(value, str) and hint is not str:
        value = read_value(name, value)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"'{name}' cannot be empty (expected {_describe(hint)})")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint in (bool, int, float, str):
            return _scalar(hint, value)
        if hint is dict or origin in (dict, Mapping):
            if not isinstance(value, dict):
                raise TypeError
            stray = [k for k in value if not isinstance(k, str)]
            if stray:  # options become keyword arguments: {C: 1,5} reads 5 as a key, which names nothing
                raise ConfigError(f"'{name}' holds a key that is no name: {shown(stray[0])}")
            return dict(value)
        if origin is tuple:
            if not isinstance(value, (list, tuple)):
                raise TypeError
            items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
            if len(items) != len(value):
                raise TypeError
            return tuple(_scalar(h, v) for h, v in zip(items, value))
        if origin in (list, Sequence, typing.Sequence) or hint in (list, tuple):
            if not isinstance(value, (list, tuple)):
                raise TypeError
            item = args[0] if args else Any
            return [v if item is Any else _scalar(item, v) for v in value]
        if origin in (typing.Union, types.UnionType):  # int | float, str | list: the first that fits
            for option in args:
                try:
                    return coerce(name, option, value)
                except ConfigError:
                    continue
            raise TypeError
        if origin in (Callable, typing.Callable):
            if not callable(value):
                raise TypeError
            return value
        if isinstance(hint, type):  # any other class (a torch.Generator, say): an instance of it
            if not isinstance(value, hint):
                raise TypeError
            return value
    except (TypeError, ValueError, OverflowError):
        expected = _describe(hint) + (" or empty" if optional else "")
        raise ConfigError(f"bad value {shown(value)} for '{name}' (expected {expected})") from None
    return value


# ---- ranges -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A condition on one value and the words for it ("an integer >= 1")."""

    holds: Callable[[Any], bool]
    text: str

    def check(self, name: str, value) -> None:
        if value is not None and not self.holds(value):
            raise ConfigError(f"'{name}' must be {self.text}, got {shown(value)}")


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f">= {low}")


def in_range(low: float, high: float) -> Rule:
    """low <= v < high."""
    return Rule(lambda v: low <= v < high, f"in [{low}, {high})")


def one_of(*choices) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


POSITIVE = Rule(lambda v: v > 0, "> 0")
NON_NEGATIVE = at_least(0)
PROBABILITY = in_range(0.0, 1.0)
#: numpy's legacy seeding, which the runs use, takes 0 <= seed < 2**32
SEED = Rule(lambda v: 0 <= v < 2**32, "in [0, 2**32)")


# ---- a component's options --------------------------------------------------------------------------
def keyword_options(factory: Callable, fixed: Iterable[str] = ()) -> dict[str, inspect.Parameter]:
    """The parameters of ``factory`` a user may set by name (those the caller fixes left out)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters
    skip = {"self", *fixed}
    return {name: p for name, p in params.items()
            if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_options(what: str, factory: Callable, options: Mapping | None, fixed: Iterable[str] = ()) -> dict:
    """``options`` checked against ``factory``'s keyword parameters: unknown names are an error that
    lists the valid ones; values are coerced to the parameters' annotations."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"the options of {what} must be a mapping of name: value, got {shown(options)}")
    accepted = keyword_options(factory, fixed)
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that names something unimportable: check names only
        hints = {}
    out = {}
    for key, value in options.items():
        if key not in accepted:
            known = sorted(accepted)
            listing = ", ".join(known) if known else "none"
            raise ConfigError(f"{what} has no option '{key}'{did_you_mean(key, known)} (options: {listing})")
        out[key] = coerce(f"{what}: {key}", hints.get(key, Any), value)
    return out


def build(what: str, factory: Callable, options: Mapping | None = None, **fixed):
    """``factory(**fixed, **options)`` with the options checked; a ValueError the factory raises about
    them (torch.optim's own checks, say) becomes a ConfigError naming the component."""
    checked = check_options(what, factory, options, fixed)
    try:
        return factory(**fixed, **checked)
    except ArchSearchError:
        raise
    except ValueError as err:
        raise ConfigError(f"{what}: {err}") from None
