"""Command-line options made from the configuration's fields, so a flag cannot drift from its field.

Each field becomes ``--name`` (and ``--name-with-hyphens``), typed by the same ``coerce_item`` that types
YAML values, with its help, default and choices; a bool field also takes ``--name`` alone, and one that
defaults to true a ``--no_name``, as transformers' HfArgumentParser does.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Mapping, Optional, Sequence

from .fields import choices_of, coerce_item, item_type
from .schema import EXPLICIT_KEYS_ENTRY, SECTIONS, RunConfig, check_keys, read_yaml


def _item_parser(kind: Any, name: str):
    def parse(text: str) -> Any:
        try:
            return coerce_item(text, kind)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} for --{name}: {error}") from None

    parse.__name__ = getattr(kind, "__name__", "value")  # what argparse names in its own messages
    return parse


def add_field_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, field: dataclasses.Field,
                     hint: Any, *, default: Any = argparse.SUPPRESS, required: bool = False,
                     aliases: Sequence[str] = (), help_text: Optional[str] = None) -> None:
    """One field as an option; ``default`` SUPPRESS leaves a flag that was not given out of the namespace."""
    name = field.name
    kind, is_list = item_type(hint)
    flags = [f"--{name}", *([f"--{name.replace('_', '-')}"] if "_" in name else []), *(f"--{a}" for a in aliases)]
    choices = choices_of(field, hint)
    text = field.metadata.get("help", "") if help_text is None else help_text
    if default is not argparse.SUPPRESS and default is not None and not required:
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        text += f" (default: {shown})"
    options: dict[str, Any] = {"dest": name, "help": text, "default": default, "required": required,
                               "type": _item_parser(str if choices else kind, name)}
    if choices:
        options["choices"] = choices
        options["metavar"] = "{" + ",".join(map(str, choices)) + "}"
    if is_list:
        options["nargs"] = "+"
    elif kind is bool:
        options.update(nargs="?", const=True, metavar="{true,false}")  # --flag alone means true
    parser.add_argument(*flags, **options)
    if kind is bool and field.default is True and not is_list:
        parser.add_argument(f"--no_{name}", dest=name, action="store_const", const=False, default=default,
                            help=f"Turn off --{name}.")


def field_options_parser(section: type, names: Sequence[str], *, required: Sequence[str] = (),
                         from_run: Sequence[str] = (), aliases: Optional[Mapping[str, Sequence[str]]] = None,
                         help_overrides: Optional[Mapping[str, str]] = None) -> argparse.ArgumentParser:
    """Options for some fields of one section, typed, documented and defaulted as ``grpo-rm train``'s are, to
    pass as ``argparse.ArgumentParser(parents=[...])``.

    ``required`` fields lose their default; ``from_run`` ones default to None, for commands that take the value
    from a saved run unless it is given; ``aliases`` are other flag names (``k`` for ``knn_k``);
    ``help_overrides`` replace a field's help where the command means it differently.
    """
    aliases, help_overrides = aliases or {}, help_overrides or {}
    hints = typing.get_type_hints(section)
    fields = {f.name: f for f in dataclasses.fields(section)}
    parser = argparse.ArgumentParser(add_help=False)
    for name in names:
        field = fields[name]
        text = help_overrides.get(name)
        if name in required:
            default = None
        elif name in from_run:
            default = None
            text = (text or field.metadata.get("help", "")) + " Default: the run's."
        else:
            default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        add_field_option(parser, field, hints[name], default=default, required=name in required,
                         aliases=aliases.get(name, ()), help_text=text)
    return parser


def run_config_parser(prog: str = "grpo-rm train", description: Optional[str] = None) -> argparse.ArgumentParser:
    """Every configuration key as an option (grouped by section), plus ``--config FILE.yaml``; flags not given are
    left out of the namespace, so that the file's values and the defaults can tell them apart."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS,
                        help="YAML file of flat keys; command-line flags override it.")
    for section_name, section in SECTIONS.items():
        group = parser.add_argument_group(f"{section_name} options")
        hints = typing.get_type_hints(section)
        for field in dataclasses.fields(section):
            add_field_option(group, field, hints[field.name])
    return parser


def run_config_from_args(given: Mapping[str, Any]) -> RunConfig:
    """The run configuration from a parsed ``run_config_parser`` namespace: the file's keys, then the flags given."""
    given = dict(given)
    path = given.pop("config", None)
    file_values: dict[str, Any] = {}
    explicit = set(given)
    if path is not None:
        file_values = read_yaml(path)
        saved_explicit = file_values.pop(EXPLICIT_KEYS_ENTRY, None)
        check_keys(file_values, path)
        explicit |= set(file_values if saved_explicit is None else saved_explicit)
    sources = {**{key: str(path) for key in file_values}, **{key: "command line" for key in given}}
    return RunConfig.from_dict({**file_values, **given}, source=sources, explicit=explicit)


def parse_run_config(argv: Sequence[str], prog: str = "grpo-rm train") -> RunConfig:
    """Parse ``[--config file.yaml] [--key value ...]``; flags given on the command line win over the file."""
    return run_config_from_args(vars(run_config_parser(prog).parse_args(list(argv))))
