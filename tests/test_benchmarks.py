"""The benchmark scripts run: a ``--quick`` run checks a script and its report, not the speed."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_sr_benchmark_quick_run_writes_its_report(tmp_path):
    out = tmp_path / "sr.json"
    command = [sys.executable, str(BENCHMARKS / "sr.py"), "--quick", "--threads", "1"]
    done = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["quick"] and report["settings"]["data_loading_timed"]
    training = report["training"]
    assert set(training) == {"edsr-baseline-x2", "rednet-sr"}
    assert training["rednet-sr"]["scales"] == [2, 3, 4]
    for result in training.values():
        assert result["eager"]["ratio"] == 1.0 and result["channels_last"]["images_per_s"] > 0
    inference = report["inference"]
    assert set(inference) == {
        "edsr-baseline-x2",
        "edsr-baseline-x4",
        "rednet-sr-x2",
        "rednet-sr-x4",
    }
    assert inference["rednet-sr-x4"]["sr_size"] == [64, 64]  # from a 16 x 16 LR image
    assert inference["rednet-sr-x4"]["network_input"] == [64, 64]  # RED-Net: upscaled input
    assert inference["edsr-baseline-x4"]["network_input"] == [16, 16]
    assert inference["edsr-baseline-x2"]["channels_last"]["sr_megapixels_per_s"] > 0
