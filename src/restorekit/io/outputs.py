"""Where results go: the output path of every input, planned and checked before any work.

Every command that writes results (``denoise``, ``upscale``, ``eval --save-dir``, ``export``)
plans its outputs here first; a plan that would destroy a file raises :class:`OutputPathError`
and nothing is written. The rules:

- An output never replaces an input other than the one it is computed from: always refused.
- An output replaces its own input (``denoise photos -o photos``) only with ``overwrite``
  (``--overwrite``). The input is read whole first; its result goes to a temporary file beside
  it that is renamed over it once complete, so the folder always holds either the original or
  the whole result, never a mix.
- Two inputs never write one output (``a/x.png b/x.png``, or ``x.png x.jpg --format png``):
  refused, naming both. Outputs are never renamed: each keeps its input's name, as the user
  expects to find it. The same file given twice is processed once.
- An existing output is replaced only with ``overwrite``; ``skip_existing`` (``--skip-existing``)
  leaves it and skips its input.
- The output folder must be a folder (or not exist yet), not a file nor under one.
- An output that is a folder is replaced only if it is a zarr store and the input one too (a
  zarr stack's earlier result); any other folder is never written over.
- ``export``: the ONNX file is named ``*.onnx`` (a BioImage Model Zoo package ``*.zip``); the
  model exported, a folder and any existing file of another kind are never written over, with
  or without ``overwrite``.

Paths are compared after :meth:`Path.resolve` (symlinks, ``.`` and ``..``), existing files by
identity (device and inode: hard links and differently cased names on a case-insensitive file
system are the same file), and names case-insensitively where the folder's file system is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from restorekit.errors import RestorekitError

SHOWN = 3
"""How many files a message lists before "and N more"."""


class OutputPathError(RestorekitError):
    """Writing results as asked would replace a file that must be kept, or cannot be done."""


@dataclass(frozen=True)
class PlannedOutput:
    source: Path
    target: Path
    exists: bool  # the target exists now: it is replaced (overwrite) or skipped
    in_place: bool  # the target is the source itself (overwrite)


@dataclass(frozen=True)
class OutputPlan:
    """What a command writes: ``outputs`` in input order, and the inputs ``skipped`` because
    their output exists (``skip_existing``)."""

    folder: Path
    outputs: tuple[PlannedOutput, ...]
    skipped: tuple[PlannedOutput, ...] = ()

    @property
    def replaced(self) -> int:
        """Existing files the outputs replace (``overwrite``), inputs replaced in place
        included."""
        return sum(o.exists for o in self.outputs)

    def notes(self) -> list[str]:
        """Lines worth printing before the work starts (nothing when nothing is unusual)."""
        lines = []
        if self.skipped:
            lines.append(
                f"{len(self.skipped)} of {len(self.skipped) + len(self.outputs)} input(s) "
                f"skipped: their output exists (--skip-existing): {_listed(self.skipped)}"
            )
        in_place = [o for o in self.outputs if o.in_place]
        if in_place:
            lines.append(f"{len(in_place)} input(s) replaced by their result (--overwrite)")
        elif self.replaced:
            lines.append(f"{self.replaced} existing output file(s) replaced (--overwrite)")
        return lines


def output_name(source: Path, extension: str | None = None) -> str:
    """The output file name of ``source``: its own, or its stem with ``extension`` (no dot)."""
    return f"{source.stem}.{extension}" if extension else source.name


def plan_outputs(
    inputs: Sequence[Path],
    folder: Path,
    *,
    extension: str | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    option: str = "-o",
) -> OutputPlan:
    """Plan one output per input in ``folder`` under the input's name (its stem with
    ``extension`` if given); raise :class:`OutputPathError` if that would replace an input or
    another output, or an existing file without ``overwrite`` (see the module docstring).
    ``option``: how messages name the folder's option."""
    hint = (
        f"drop --format {extension} (each output then keeps its input's extension), or "
        if extension
        else ""
    )
    pairs = [(Path(p), Path(folder) / output_name(Path(p), extension)) for p in inputs]
    return plan_files(
        pairs,
        folder,
        overwrite=overwrite,
        skip_existing=skip_existing,
        option=option,
        collision_hint=hint,
    )


def plan_files(
    pairs: Iterable[tuple[Path, Path]],
    folder: Path,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    option: str = "-o",
    collision_hint: str = "",
    can_skip: bool = True,
) -> OutputPlan:
    """Check ``(source, target)`` pairs, targets in ``folder`` (a source may have several):
    the rules of the module docstring. Repeated pairs (the same file given twice) count once.
    ``can_skip``: whether messages may offer --skip-existing."""
    if overwrite and skip_existing:
        raise OutputPathError("--overwrite and --skip-existing exclude each other: choose one")
    folder = Path(folder)
    pairs = [(Path(s), Path(t)) for s, t in pairs]
    sources = _identities(s for s, _ in pairs)
    check_folder(folder, option, sources)
    fold = _case_insensitive(folder)
    unique: dict[tuple[str, str], tuple[Path, Path]] = {}
    for source, target in pairs:
        key = (repr(_identity(source)), _name_key(target, fold))
        unique.setdefault(key, (source, target))
    by_target: dict[str, list[tuple[Path, Path]]] = {}
    for (_, target_key), pair in unique.items():
        by_target.setdefault(target_key, []).append(pair)
    collisions = [group for group in by_target.values() if len(group) > 1]
    if collisions:
        described = "; ".join(
            " and ".join(str(s) for s, _ in group) + f" -> {group[0][1]}"
            for group in collisions[:SHOWN]
        )
        more = f" (and {len(collisions) - SHOWN} more)" if len(collisions) > SHOWN else ""
        raise OutputPathError(
            f"{sum(len(g) for g in collisions)} inputs would write the same output file: "
            f"{described}{more}. Nothing was written: each output keeps its input's name, so "
            "one would replace the other. "
            f"Fix: {collision_hint}give such inputs separately, each with its own {option}, "
            "or rename one of them"
        )
    planned: list[PlannedOutput] = []
    for source, target in unique.values():
        planned.append(_plan_one(source, target, sources, option))
    in_place = [o for o in planned if o.in_place]
    if in_place and not (overwrite or skip_existing):
        raise OutputPathError(
            f"{option} {folder} would replace {len(in_place)} input file(s) with their results: "
            f"{_listed(in_place, 'source')}. Nothing was written. Fix: pick another {option} "
            f"(e.g. {option} {_sibling(folder)}), or add --overwrite to replace the originals "
            "(each result replaces its original only once complete; files are read whole "
            "first, zarr stores chunk by chunk from the original until then)"
        )
    existing = [o for o in planned if o.exists]
    if existing and not (overwrite or skip_existing):
        raise OutputPathError(
            f"{len(existing)} output file(s) already exist in {folder}: {_listed(existing)}. "
            f"Nothing was written. Fix: add --overwrite to replace them, "
            + ("--skip-existing to process only the inputs without an output, " if can_skip else "")
            + f"or pick another {option}"
        )
    if skip_existing:
        return OutputPlan(
            folder,
            tuple(o for o in planned if not o.exists),
            tuple(o for o in planned if o.exists),
        )
    return OutputPlan(folder, tuple(planned))


def check_folder(folder: Path, option: str = "-o", inputs: dict | None = None) -> None:
    """Raise :class:`OutputPathError` unless ``folder`` is a folder, or can be made one: not a
    file, not under a file, in a place this user may write to."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        what = "one of the input files" if _identity(folder) in (inputs or {}) else "a file"
        raise OutputPathError(
            f"{option} {folder} is {what}, not a folder: {option} names the folder the "
            f"results are written to (created if missing). Nothing was written. Fix: e.g. "
            f"{option} {_sibling(folder.parent / folder.stem)}"
        )
    _check_parents(folder, option)


def check_save_dir(save_dir: Path, data: Path, option: str = "--save-dir") -> None:
    """Refuse a folder for saved images that is ``data`` or inside it: the saved images would
    join the evaluation set and be scored by the next run."""
    check_folder(save_dir, option)
    data = Path(data)
    if not data.is_dir():
        return
    inside, base = _resolved(save_dir), _resolved(data)
    if inside == base or base in inside.parents:
        raise OutputPathError(
            f"{option} {save_dir} is inside --data {data}: the saved images would join the "
            "evaluation set (the next evaluation would score them too). Nothing was written. "
            f"Fix: pick a folder outside {data}, e.g. {option} {_sibling(data, '-eval')}"
        )


def refuse_inputs(path: Path, inputs: Iterable[Path], option: str) -> None:
    """Refuse ``path`` as an output when it is one of ``inputs`` (the same file)."""
    path = Path(path)
    if path.exists() and _identity(path) in _identities(inputs):
        raise OutputPathError(
            f"{option} {path} is one of the inputs: writing there would destroy it. Nothing "
            f"was written. Fix: pick another {option}"
        )


def plan_report(
    path: Path, inputs: Iterable[Path], *, overwrite: bool = False, option: str = "--json"
) -> Path:
    """Check the report file a command writes (``eval --json``) before any work: it must be
    named ``*.json``, must not be a folder or one of ``inputs``, and an existing file is
    replaced only with ``overwrite`` (and only a ``.json`` one: nothing else is ever replaced);
    its folder must be creatable and writable."""
    path = Path(path)
    refuse_inputs(path, inputs, option)
    if path.is_dir():
        raise OutputPathError(
            f"{option} {path} is a folder: {option} names the .json file to write. Nothing was "
            f"written. Fix: e.g. {option} {path / 'report.json'}"
        )
    if path.suffix.lower() != ".json":
        state = "exists and is not" if path.exists() else "is not named as"
        raise OutputPathError(
            f"{option} {path} {state} a .json file: the report is JSON"
            + (" and never replaces another kind of file" if path.exists() else "")
            + f". Nothing was written. Fix: e.g. {option} {path.with_suffix('.json')}"
        )
    _check_replaceable(path, overwrite, option)
    return path


def plan_export(
    out: Path,
    source: Path | None = None,
    *,
    overwrite: bool = False,
    option: str = "-o",
    check_parents: bool = True,
    extension: str = ".onnx",
) -> Path:
    """Check the file an export writes: ``out`` must be named ``*{extension}`` (``.onnx``,
    or ``.zip`` for a BioImage Model Zoo package) and must not be a folder, the model
    ``source`` exported, or an existing file of another kind (none is ever replaced); an
    existing file of that kind is replaced only with ``overwrite``. ``check_parents``: also
    refuse a folder that cannot be made or written to (else the write raises its ``OSError``)."""
    out = Path(out)
    stem = source.stem if source is not None else "model"
    kind = extension.lstrip(".")
    if out.is_dir():
        raise OutputPathError(
            f"{option} {out} is a folder: {option} names the .{kind} file to write. Fix: e.g. "
            f"{option} {out / (stem + extension)}"
        )
    named = out.suffix.lower() == extension
    other = out.with_suffix(extension) if not named else out.with_name(f"{stem}-2{extension}")
    fix = f"{option} {other}"
    if source is not None and out.exists() and _identity(out) == _identity(Path(source)):
        raise OutputPathError(
            f"{option} {out} is the model being exported: writing there would destroy it. "
            f"Nothing was written. Fix: name a new .{kind} file, e.g. {fix}"
        )
    if out.exists() and not named:
        raise OutputPathError(
            f"{option} {out} exists and is not {'an' if kind == 'onnx' else 'a'} .{kind} file: "
            "export never writes over it "
            f"(--overwrite or not). Nothing was written. Fix: name a .{kind} file, e.g. {fix}"
        )
    if not named:
        raise OutputPathError(
            f"{option} {out}: the file must be named *{extension} ("
            + ("that is how --model knows it" if kind == "onnx" else "a package is a zip")
            + f"). Fix: e.g. {fix}"
        )
    _check_replaceable(out, overwrite, option, check_parents)
    return out


def _plan_one(source: Path, target: Path, sources: dict, option: str) -> PlannedOutput:
    from restorekit.io.zarr_stacks import is_zarr

    if target.is_dir() and not (is_zarr(source) and is_zarr(target)):
        raise OutputPathError(
            f"the output of {source} would be {target}, which is a folder. Nothing was "
            f"written. Fix: move or rename that folder, or pick another {option}"
        )
    if not (target.exists() or target.is_symlink()):
        return PlannedOutput(source, target, exists=False, in_place=False)
    identity = _identity(target)
    if identity in sources and identity != _identity(source):
        raise OutputPathError(
            f"the output of {source} would be {target}, which is another input: it would be "
            f"replaced before it is read. Nothing was written. Fix: pick another {option}"
        )
    return PlannedOutput(source, target, exists=True, in_place=identity == _identity(source))


def _check_replaceable(path: Path, overwrite: bool, option: str, parents: bool = True) -> None:
    """The last checks of a single output file: its folder can be made and written to
    (``parents``), and an existing file is replaced only with ``overwrite``."""
    if parents:
        _check_parents(path.parent, option)
    if path.exists() and not overwrite:
        raise OutputPathError(
            f"{option} {path} already exists. Nothing was written. Fix: add --overwrite to "
            f"replace it, or pick another {option}"
        )


def _check_parents(folder: Path, option: str) -> None:
    """The nearest existing folder above (or at) ``folder`` must be a writable folder."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(
            f"{option} {folder} cannot be created: {existing} is a file. Nothing was written. "
            f"Fix: pick another {option}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{option} {folder}: no permission to write in {existing}. Nothing was written. "
            f"Fix: pick a folder you can write to"
        )


def _identity(path: Path) -> tuple[int, int] | str:
    """Device and inode of an existing file (through links), else its resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return str(_resolved(path))
    return (info.st_dev, info.st_ino)


def _identities(paths: Iterable[Path]) -> dict:
    return {_identity(Path(p)): Path(p) for p in paths}


def _name_key(target: Path, fold: bool) -> str:
    name = os.path.normcase(str(_resolved(target)))
    return name.casefold() if fold else name


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def _case_insensitive(folder: Path) -> bool:
    """Whether the file system of ``folder`` (or its nearest existing parent) ignores case:
    probed by looking an existing name up with its letters' case swapped."""
    path = _resolved(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    for candidate in (path, *path.parents):
        swapped = candidate.name.swapcase()
        if swapped != candidate.name:
            try:
                return os.path.samefile(candidate, candidate.with_name(swapped))
            except OSError:
                return False
    return False


def _listed(outputs: Sequence[PlannedOutput], field: str = "target") -> str:
    shown = ", ".join(str(getattr(o, field)) for o in outputs[:SHOWN])
    return shown + (f" (and {len(outputs) - SHOWN} more)" if len(outputs) > SHOWN else "")


def _sibling(path: Path, suffix: str = "-restored") -> Path:
    """A suggested folder beside ``path``."""
    resolved = _resolved(path)
    if not resolved.name:
        return Path("restored")
    parent = Path(path).parent if Path(path).name not in ("", ".", "..") else resolved.parent
    return parent / (resolved.name + suffix)
