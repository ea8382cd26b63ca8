"""Benchmark protocols: how the papers measured their figures."""

from restorekit.evaluation.denoising import (
    EvalReport,
    default_repeats,
    evaluate_denoising,
    format_report,
)

__all__ = ["EvalReport", "default_repeats", "evaluate_denoising", "format_report"]
