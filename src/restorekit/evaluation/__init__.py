"""Benchmark protocols: how the papers measured their figures."""

from restorekit.evaluation.denoising import (
    EvalReport,
    default_repeats,
    evaluate_denoising,
    format_report,
)
from restorekit.evaluation.upscaling import evaluate_upscaling, format_upscaling_report

__all__ = [
    "EvalReport",
    "default_repeats",
    "evaluate_denoising",
    "evaluate_upscaling",
    "format_report",
    "format_upscaling_report",
]
