"""Evaluating a genotype: train it from scratch with a paper recipe (``train``), or behind the
evaluator interface that search strategies ask (tabular lookup, training, proxies)."""

from archsearch.evaluate.recipes import DEFAULT_RECIPE_FOR_SPACE, RECIPES, Recipe, default_recipe, get_recipe
from archsearch.evaluate.lm_recipes import LMRecipe  # registers the darts-rnn recipe
from archsearch.evaluate.result import EvalResult, Evaluator
from archsearch.evaluate.train import Trainer, train

__all__ = [
    "DEFAULT_RECIPE_FOR_SPACE",
    "RECIPES",
    "EvalResult",
    "LMRecipe",
    "Evaluator",
    "Recipe",
    "Trainer",
    "default_recipe",
    "get_recipe",
    "train",
]
