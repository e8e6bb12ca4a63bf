"""The training commands' options are the settings models' fields: same help, same defaults."""

from __future__ import annotations

import typer

from cropland.cli import app
from cropland.train.config import BenchmarkOptions, EvaluateOptions, PredictOptions, TrainConfig

RENAMED = {"time_budget": "time_budget_s"}


def test_every_option_takes_its_help_and_default_from_its_settings_model():
    commands = typer.main.get_command(app).commands
    checked = 0
    for command, model in (("train", TrainConfig), ("evaluate", EvaluateOptions),
                           ("benchmark", BenchmarkOptions), ("predict", PredictOptions)):
        for param in commands[command].params:
            field = model.model_fields.get(RENAMED.get(param.name, param.name))
            if field is None or param.param_type_name != "option":
                continue
            assert param.default is None  # an option not given leaves the model's default
            assert param.help.startswith(field.description or ""), (command, param.name)
            default = field.get_default(call_default_factory=True)
            if default is not None and not field.is_required():
                shown = ",".join(map(str, default)) if isinstance(default, list) else default
                assert param.help.endswith(f"(default: {shown})"), (command, param.name, param.help)
            checked += 1
    assert checked >= 25
