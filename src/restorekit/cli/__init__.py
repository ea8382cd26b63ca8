"""The ``restorekit`` command line: parse, call the library, print. No logic lives here.

One module per group of commands, registered here: ``train`` (train, presets), ``evaluate``
(eval), ``apply`` (denoise, upscale), ``export`` (export, import), ``zoo`` (models, demo),
``serve``. What they share: ``group`` (errors and warnings as one clear line), ``options`` (the
options several commands take) and ``batch`` (the file commands' output plans, progress and
last line).
"""

from __future__ import annotations

from restorekit.cli import apply, evaluate, export, serve, train, zoo
from restorekit.cli.group import main

main.add_command(train.train)
main.add_command(train.presets)
main.add_command(evaluate.evaluate)
main.add_command(apply.denoise)
main.add_command(apply.upscale)
main.add_command(export.export)
main.add_command(export.import_)
main.add_command(zoo.models)
main.add_command(zoo.demo)
main.add_command(serve.serve)

__all__ = ["main"]
