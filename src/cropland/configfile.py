"""Reading YAML configuration files and validating them in one line that names each wrong field.

Every command that takes settings (``build``, ``train``, ``curate``, ``points sample``, ...)
reads its file with :func:`read_mapping` and checks it, merged with its command-line options,
with :func:`validate`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cropland.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def read_mapping(path: str | Path, example: str) -> dict[str, Any]:
    """The mapping a YAML file holds; ``example`` names a file to model a fix on."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; check the path")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a YAML file, see {example}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start}); save it as UTF-8 YAML, "
                          f"see {example}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise ConfigError(f"{path} is not valid YAML{at}: {problem}; fix it, see {example}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of fields, see {example}")
    return data


def validate(model: type[Model], data: Any, origin: str) -> Model:
    """``model.model_validate(data)``; a failure is one line naming every wrong field and why."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        problems = [_explain(err) for err in errors if err["type"] != "extra_forbidden"]
        problems += _unknown_fields(model, [err for err in errors if err["type"] == "extra_forbidden"])
        raise ConfigError(f"{origin}: {'; '.join(problems)}") from None


def _unknown_fields(model: type[BaseModel], errors: list[Any]) -> list[str]:
    """``x: unknown field; did you mean y?``, or the unknown fields of a section together with
    its known fields (a file for another command lists them once)."""
    problems: list[str] = []
    unmatched: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for err in errors:
        loc = [str(p) for p in err["loc"]]
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        if close:
            problems.append(f"{_dotted(loc)}: unknown field; did you mean {close[0]}?")
        else:
            unmatched.setdefault(tuple(loc[:-1]), (known, []))[1].append(_dotted(loc))
    for known, fields in unmatched.values():
        problems.append(f"{', '.join(fields)}: unknown field{'s' if len(fields) > 1 else ''}; "
                        f"known fields: {', '.join(known)}")
    return problems


def _explain(err: Any) -> str:
    """``field: what is wrong (got VALUE)``, or what to add."""
    field = _dotted(err["loc"])
    if err["type"] == "missing":
        return f"{field}: required, add it"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "too_short":
        message += "; list at least one"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else None
    if shown is not None and len(shown) <= 40 and "got" not in message:
        message += f" (got {shown})"
    return f"{field}: {message}" if field else message


def _dotted(loc: Any) -> str:
    """A field's path, ``render.rgb_max``; a name that is not a plain word is quoted, so a
    name holding a line break or spaces stays on the error's one line (``points.'\\n'``)."""
    return ".".join(s if (s := str(p)).isidentifier() or s.isdigit() else repr(s) for p in loc)


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The field names of the (nested) model at ``loc``."""
    for part in loc:
        field = model.model_fields.get(part)
        nested = [a for a in _candidates(field.annotation if field else None)
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _candidates(annotation: Any) -> list[Any]:
    """``X``, and the members of ``X | None``."""
    return [annotation, *getattr(annotation, "__args__", ())]
