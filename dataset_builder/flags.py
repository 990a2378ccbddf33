"""One flag vocabulary for the command lines (issue 12): old spellings still parse, with a deprecation line.

`train_sft.py`, `train_clip.py`, `evaluate_gzllava.py` and `python -m dataset_builder build` share the
TRL-style names `--model_name_or_path`, `--dataset_name`, `--dataset_config` and `--output_dir`; `--config`
is a YAML recipe (in `evaluate_gzllava.py` it is still accepted as the old spelling of `--dataset_config`
when its value is not a .yaml/.yml path, for one release). An old spelling sets the same value as the new
one and prints ONE line to stderr naming the new flag.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

RECIPE_SUFFIXES = (".yaml", ".yml")


class DeprecatedFlag(argparse.Action):
    """Stores into the new flag's `dest` and warns, once per use, that `option_string` is the old spelling."""

    def __init__(self, option_strings, dest, new_flag: str, check: Callable[[str], str | None] | None = None,
                 **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new_flag = new_flag
        self.check = check  # value -> an error message, or None when the old spelling may take this value

    def __call__(self, parser, namespace, values, option_string=None):
        problem = self.check(values) if self.check else None
        if problem:
            parser.error(problem)
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.new_flag} "
              "(the old spelling is removed in the next release)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_flag(group, new: str, *old: str, check: Callable[[str], str | None] | None = None, **kwargs) -> None:
    """`group.add_argument(new, **kwargs)` plus each old spelling as a `DeprecatedFlag` with the same dest.

    `required=True` is not passed on (either spelling satisfies it): check `dest` after parsing instead.
    """
    kwargs.pop("required", None)
    group.add_argument(new, dest=_dest(new), **kwargs)
    add_old_spellings(group, new, *old, check=check, **{key: kwargs[key] for key in ("type", "metavar") if key in kwargs})


def add_old_spellings(group, new: str, *old: str, check: Callable[[str], str | None] | None = None, **kwargs) -> None:
    """Each old spelling of the existing flag `new` as a `DeprecatedFlag` storing into `new`'s dest (e.g. next to
    the flags an `HfArgumentParser` made from a dataclass); kwargs: `type`, `metavar`."""
    for spelling in old:
        group.add_argument(spelling, dest=_dest(new), action=DeprecatedFlag, new_flag=new, check=check,
                           help=f"deprecated spelling of {new}", default=argparse.SUPPRESS, **kwargs)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def not_a_recipe(flag: str, new_flag: str) -> Callable[[str], str | None]:
    """A check that refuses a .yaml/.yml value for the old `flag`, which means a YAML recipe from the next release."""

    def check(value: str) -> str | None:
        if str(value).lower().endswith(RECIPE_SUFFIXES):
            return (f"{flag} {value}: {flag} will take a YAML recipe from the next release and this tool has none yet; "
                    f"give the dataset config with {new_flag}")
        return None

    return check
