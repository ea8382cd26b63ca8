"""The ``restorekit`` command line: parse, call the library, print. No logic lives here.

One module per group of commands, registered here: ``train`` (train, presets), ``evaluate``
(eval), ``apply`` (denoise, upscale), ``export`` (export, import), ``zoo`` (models, demo),
``serve``. What they share: ``group`` (one clear line per error), ``options`` and ``batch``
(the file commands' output plans, progress and last line).
"""

from __future__ import annotations

from restorekit.cli.apply import denoise, upscale
from restorekit.cli.evaluate import evaluate
from restorekit.cli.export import export, import_
from restorekit.cli.group import main
from restorekit.cli.serve import serve
from restorekit.cli.train import presets, train
from restorekit.cli.zoo import demo, models

for command in (train, presets, evaluate, denoise, upscale, export, import_, models, demo, serve):
    main.add_command(command)

__all__ = ["main"]
