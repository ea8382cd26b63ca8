"""Config presets (YAML files beside this module) and loading with overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from restorekit.configs.schema import Config
from restorekit.errors import ConfigError

PRESET_DIR = Path(__file__).parent


def presets() -> list[str]:
    """Names of the shipped presets, e.g. ``ne2ne-gauss25``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read_yaml(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    if not path.exists():
        preset = PRESET_DIR / f"{source}.yaml"
        if not preset.exists():
            raise ConfigError(
                f"no config file or preset named {str(source)!r}; presets: {', '.join(presets())}"
            )
        path = preset
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return data


def set_field(data: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` (``section.field``) of a raw config mapping to ``value``."""
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``section.field=value`` (value parsed as YAML) to a raw config mapping in place."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like KEY=VALUE, e.g. train.epochs=10")
    key, text = assignment.split("=", 1)
    set_field(data, key, yaml.safe_load(text) if text.strip() else None)


def _field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the dotted name a user writes: without validator names and
    without the tag pydantic inserts after a section that is a union (``model.edsr.scale`` ->
    ``model.scale``)."""
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    if len(parts) >= 2 and parts[0] in ("method", "model", "data"):
        del parts[1]
    return ".".join(parts) or "config"


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for item in error.errors():
        where = _field_path(item["loc"])
        given = (
            f" (got {item['input']!r})"
            if "input" in item and not isinstance(item["input"], dict)
            else ""
        )
        hint = _did_you_mean(where) if item["type"] == "extra_forbidden" else ""
        lines.append(f"  {where}: {item['msg']}{given}{hint}")
    return "\n".join(lines)


def _did_you_mean(key: str) -> str:
    """``; did you mean train.epochs?`` for a dotted key no section has, when a field of its
    section (of any of the section's kinds) is spelled alike."""
    import difflib

    section, _, name = key.rpartition(".")
    known = {
        field.rpartition(".")[2] for field in config_fields() if field.rpartition(".")[0] == section
    }
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {section + '.' if section else ''}{close[0]}?" if close else ""


def config_fields() -> set[str]:
    """Every dotted field name a config can have (``train.epochs``, ``model.features``, ...),
    over every kind of method, model and data section."""
    import typing

    from pydantic import BaseModel

    def kinds(annotation: Any) -> list[type[BaseModel]]:
        """The section classes an annotation names (through unions and Annotated)."""
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [kind for argument in typing.get_args(annotation) for kind in kinds(argument)]

    names: set[str] = set(Config.model_fields)  # the sections and the top-level fields
    for section, info in Config.model_fields.items():
        sections = kinds(info.annotation)
        for kind in sections:
            names.update(f"{section}.{field}" for field in kind.model_fields)
    return names


def load_config(
    source: str | Path | dict[str, Any],
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> Config:
    """Load a preset name, a YAML path or a mapping, apply ``KEY=VALUE`` overrides (values
    parsed as YAML) and then ``values`` (dotted keys to Python values, e.g. paths, taken as
    they are), validate."""
    data = dict(source) if isinstance(source, dict) else _read_yaml(source)
    for assignment in overrides or []:
        apply_override(data, assignment)
    for key, value in (values or {}).items():
        set_field(data, key, value)
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, str(source))) from None


def load_run_config(
    run_dir: str | Path, overrides: list[str] | None = None, values: dict[str, Any] | None = None
) -> Config:
    """The config of the training run in ``run_dir`` (its ``config.yaml``, written when the run
    started), with ``KEY=VALUE`` overrides; a folder that is not a run is a clear error."""
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        lacks = (
            "config.yaml" if (run_dir / "checkpoints").is_dir() else "config.yaml nor checkpoints/"
        )
        raise ConfigError(
            f"{run_dir} is not a restorekit run folder: it has no {lacks} (`restorekit train` "
            "writes config.yaml, train.log and checkpoints/ into its run folder). --resume takes "
            "the folder of a run started earlier; to start one there: restorekit train PRESET "
            f"--out {run_dir} (see `restorekit presets`)"
        )
    return load_config(path, overrides, values)


def with_absolute_paths(config: Config) -> Config:
    """``config`` with its data paths (``data.train``, and ``data.pairs`` / ``data.val`` where
    its data kind has them) made absolute against the current directory, as a run's
    config.yaml stores them: resuming from another directory then finds the same data."""

    def absolute(path: Path) -> Path:
        return Path(os.path.abspath(path.expanduser()))

    data = config.data
    update: dict[str, Any] = {}
    for name in data.path_fields:
        value = getattr(data, name)
        if isinstance(value, list):
            update[name] = [absolute(p) for p in value]
        elif value is not None:
            update[name] = absolute(value)
    return config.model_copy(update={"data": data.model_copy(update=update)})


__all__ = [
    "Config",
    "apply_override",
    "set_field",
    "load_config",
    "load_run_config",
    "presets",
    "with_absolute_paths",
]
