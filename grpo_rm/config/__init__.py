"""One typed run configuration: dataclasses whose fields carry their help, range and role; read from YAML,
the command line or Python, saved with every run."""

from .arguments import field_options_parser, parse_run_config, run_config_from_args, run_config_parser
from .fields import BOOKKEEPING, RESULT, RUNTIME
from .schema import (
    PRESET_KEYS,
    SECRET_KEYS,
    SECTIONS,
    DataArguments,
    EvaluationArguments,
    ModelArguments,
    ObjectiveArguments,
    RunConfig,
    TrainingArguments,
    check_values,
    config_fields,
    expand_user,
    keys_with_role,
    read_yaml,
    result_keys,
    resumable_keys,
)

__all__ = [
    "BOOKKEEPING",
    "PRESET_KEYS",
    "RESULT",
    "RUNTIME",
    "SECRET_KEYS",
    "SECTIONS",
    "DataArguments",
    "EvaluationArguments",
    "ModelArguments",
    "ObjectiveArguments",
    "RunConfig",
    "TrainingArguments",
    "check_values",
    "config_fields",
    "expand_user",
    "field_options_parser",
    "keys_with_role",
    "parse_run_config",
    "read_yaml",
    "result_keys",
    "resumable_keys",
    "run_config_from_args",
    "run_config_parser",
]
