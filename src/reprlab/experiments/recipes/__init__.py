"""Experiment recipes: one YAML per classic study, run by one command (``reprlab experiment run``).

A recipe names steps of registered kinds (train, tune, cv, sweep, analyze and the analysis kinds of
:mod:`.analyses`), checks everything before training, reuses finished steps, and writes
``OUT/NAME/report.html`` and ``recipe.json`` with its tables, figures and expectations (pass/fail).
See docs/recipes.md.

Example:
    >>> from reprlab.experiments.recipes import run_recipe
    >>> result = run_recipe("anomaly-autoencoders", quick=True, output_dir="runs")  # doctest: +SKIP
    >>> print(result.expectation_lines())  # doctest: +SKIP
"""

from reprlab.experiments.recipes.runner import RecipeResult, check_recipe, fingerprint, load, run_recipe
from reprlab.experiments.recipes.spec import Recipe, find_recipe, list_recipe_files, parse_recipe
from reprlab.experiments.recipes.steps import StepKind, StepOutput, list_steps, register_step

__all__ = ["Recipe", "RecipeResult", "StepKind", "StepOutput", "check_recipe", "find_recipe", "fingerprint",
           "list_recipe_files", "list_steps", "load", "parse_recipe", "register_step", "run_recipe"]
