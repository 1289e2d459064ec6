"""docs/configuration.md, generated from the configuration's fields (their types, defaults, ranges, choices, roles
and help), so the key reference cannot drift from the code:

    python -m grpo_rm.config.reference > docs/configuration.md
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from .fields import BOOKKEEPING, RESULT, RUNTIME, choices_of, describe_interval, item_type, role_of, unwrap_optional
from .schema import SECTIONS

ROLE_TEXT = {
    RESULT: "result",
    BOOKKEEPING: "bookkeeping",
    RUNTIME: "runtime",
}
INTRO = f"""# Configuration reference

Generated from the dataclasses in `grpo_rm/config/schema.py` by `python -m grpo_rm.config.reference >
docs/configuration.md`; `tests/config/test_reference.py` checks that this file is current.

Every key is a YAML key (`--config run.yaml`), a command-line flag (`--key value`, lists as `--key a b`, a bool
flag alone means true) and an attribute (`config.<section>.<key>`); flags override the file. A run saves all of
them, resolved, in `run_config.yaml`, with the list of keys that were set explicitly.

**Role** says what a key changes, and so what may differ between runs that are meant to be the same:

- **{RESULT}**: what a run computes. A resumed run may change such a key only where the table says
  *resumable* (more epochs, what is evaluated after training); `grpo-rm compare` trains runs that differ in one
  separately.
- **{BOOKKEEPING}**: names, logs, checkpoints, publishing. Free to change on resume; ignored when compare decides
  whether a finished run can be reused.
- **{RUNTIME}**: how fast or where the same computation runs (workers, compilation, devices). Results agree up to
  rounding; treated like bookkeeping.

The objective keys left unset take the values of `objective_preset` (`paper`: the method as METHOD.md specifies it).
"""


def _type_text(hint: Any) -> str:
    kind, is_list = item_type(hint)
    _, optional = unwrap_optional(hint)
    name = "str" if typing.get_origin(kind) is typing.Literal else getattr(kind, "__name__", str(kind))
    return f"list[{name}]" if is_list else name


def _default_text(field: dataclasses.Field) -> str:
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if default is None:
        return "–"
    if isinstance(default, list):
        return " ".join(map(str, default))
    return str(default)


def _allowed_text(field: dataclasses.Field, hint: Any) -> str:
    parts = []
    choices = choices_of(field, hint)
    if choices:
        parts.append(", ".join(f"`{choice}`" for choice in choices))
    if field.metadata.get("range"):
        parts.append(describe_interval(field.metadata["range"]))
    return "; ".join(parts) or "–"


def _role_text(field: dataclasses.Field) -> str:
    role = role_of(field)
    return ROLE_TEXT[role] + (", resumable" if role == RESULT and field.metadata["resumable"] else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration_reference() -> str:
    lines = [INTRO]
    for section_name, section in SECTIONS.items():
        hints = typing.get_type_hints(section)
        lines.append(f"## {section_name} (`{section.__name__}`)\n")
        lines.append("| key | type | default | allowed | role | what it does |")
        lines.append("|---|---|---|---|---|---|")
        for field in dataclasses.fields(section):
            hint = hints[field.name]
            cells = [f"`{field.name}`", _type_text(hint), _default_text(field), _allowed_text(field, hint),
                     _role_text(field), field.metadata.get("help", "")]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(configuration_reference(), end="")
