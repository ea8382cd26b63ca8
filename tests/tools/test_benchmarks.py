"""The benchmark scripts run: a ``--quick`` run checks a script and its report, not the speed;
and their shared pieces (``benchmarks/_common.py``) name the machine, measure the run's own
ceiling and refuse a rate above the processor's physical peak."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("benchmarks_common", BENCHMARKS / "_common.py")
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)


def machine_with_peak(fp32: float, bf16: float) -> dict:
    """A machine record (as :func:`common.machine` makes) whose physical peaks are given."""
    record = common.machine(max_ghz=1.0)
    return record | {"physical_peak_gflops": {"fp32": fp32, "bf16": bf16}}


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
        assert result["gflop_per_step"] > 0 and result["channels_last"]["ceiling_fraction"] > 0
    # the machine named, this run's own ceiling measured, fractions of it
    assert report["machine"]["processor"]["model_name"] is not None
    assert report["machine"]["torch"] == torch.__version__
    assert report["ceiling"]["fp32"]["gflops"] > 0 and report["ceiling"]["threads"] == 1
    rate = report["inference"]["edsr-baseline-x2"]["channels_last"]
    assert rate["ceiling_fraction"] == pytest.approx(
        rate["gflops"] / report["ceiling"]["fp32"]["gflops"]
    )
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


def test_the_machine_record_names_processor_versions_and_peak():
    record = common.machine()
    processor = record["processor"]
    assert {"model_name", "vendor", "family", "model", "stepping"} <= set(processor)
    assert set(processor["flags"]) == {
        "fma",
        "avx2",
        "avx512f",
        "avx512_bf16",
        "amx_tile",
        "amx_bf16",
    }
    assert record["cpu_count"] >= 1 and record["threads"] == torch.get_num_threads()
    assert 1 <= record["cores_for_peak"] <= record["threads"]
    assert record["torch"] == torch.__version__ and "onnxruntime" in record
    assert record["clock_source"] and set(record["physical_peak_gflops"]) == {"fp32", "bf16"}
    per_cycle = common.machine(max_ghz=2.0)["flop_per_cycle"]
    if per_cycle["fp32"]:  # x86: the peak is cores x clock x FLOP/cycle
        peak = common.machine(max_ghz=2.0)["physical_peak_gflops"]["fp32"]
        assert peak == pytest.approx(record["cores_for_peak"] * 2.0 * per_cycle["fp32"])


def test_flop_per_cycle_follows_the_flags():
    zen4 = common.flop_per_cycle("AuthenticAMD", 25, {"fma", "avx2", "avx512f", "avx512_bf16"})
    assert (zen4["fp32"], zen4["bf16"]) == (32, 64)  # AVX-512 on 256-bit pipes
    xeon = common.flop_per_cycle("GenuineIntel", 6, {"fma", "avx2", "avx512f", "amx_bf16"})
    assert (xeon["fp32"], xeon["bf16"]) == (64, 1024)
    assert common.flop_per_cycle("GenuineIntel", 6, {"fma", "avx2"})["fp32"] == 32
    assert common.flop_per_cycle("", None, set())["fp32"] is None  # unknown: nothing checked


def test_the_ceiling_is_measured_and_positive():
    ceiling = common.measure_ceiling(torch.device("cpu"), common.machine(), quick=True, repeats=2)
    assert ceiling["shape"] == [1, 48, 256, 256] and ceiling["threads"] == torch.get_num_threads()
    assert ceiling["fp32"]["gflop"] == pytest.approx(2 * 48 * 48 * 9 * 256 * 256 / 1e9)
    assert ceiling["fp32"]["gflops"] > 0 and len(ceiling["fp32"]["seconds"]) == 2
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert ceiling["bf16"]["gflops"] > 0
    else:
        assert "bf16" not in ceiling


def test_a_rate_above_the_physical_peak_raises():
    record = machine_with_peak(fp32=100.0, bf16=200.0)
    common.check_physical(100.0, record)  # at the peak: allowed
    with pytest.raises(common.AbovePhysicalPeak, match="above this processor's physical peak"):
        common.check_physical(100.5, record, "fp32", "a step")
    common.check_physical(150.0, record, "bf16")  # bf16 has its own peak
    common.check_physical(1e6, record, device="cuda")  # no CPU peak for a GPU's rates
    env = {"machine": record, "ceiling": {"fp32": {"gflops": 80.0}}, "device": "cpu"}
    assert common.flop_rate(40.0, 1.0, env)["ceiling_fraction"] == pytest.approx(0.5)
    with pytest.raises(common.AbovePhysicalPeak):
        common.flop_rate(120.0, 1.0, env)


def test_a_benchmark_above_the_physical_peak_fails_without_writing(tmp_path):
    if common.machine()["flop_per_cycle"]["fp32"] is None:
        pytest.skip("no physical peak known for this processor")
    out = tmp_path / "n2v_masking.json"
    script = str(BENCHMARKS / "n2v_masking.py")
    command = [sys.executable, script, "--quick", "--threads", "1", "--batch", "2"]
    command += ["--max-ghz", "0.001", "--json", str(out)]  # a clock no convolution fits under
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1 and "physical peak" in done.stderr, done.stderr
    assert not out.exists()


def test_inference_benchmark_quick_run_measures_paths_memory_and_figures(tmp_path):
    """benchmarks/inference.py on a tiny model: each path file to file, the whole process's
    peak memory, the figure change per path (on 2 Kodak24 images when the data are here)."""
    from restorekit.nets import build_net
    from restorekit.nets.files import ModelDescriptor, save_model

    torch.manual_seed(0)
    net = build_net("unet-n2n", features=8)
    descriptor = ModelDescriptor(
        arch="unet-n2n", arch_args={"features": 8}, size_multiple=32, noise="gauss:25"
    )
    save_model(tmp_path / "tiny.safetensors", net, descriptor)
    out = tmp_path / "inference.json"
    command = [sys.executable, str(BENCHMARKS / "inference.py"), "--quick", "--threads", "1"]
    command += ["--model", str(tmp_path / "tiny.safetensors"), "--sizes", "64x48", "--json"]
    command += [str(out), "--paths", "torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    results = {r["path"]: r for r in report["results"]}
    assert set(results) == {"torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"}
    assert results["torch-fp32"]["ratio_to_torch_fp32"] == 1.0
    for result in results.values():
        assert result["megapixels_per_s"] > 0 and result["tiles"] == 1
        assert 100 < result["peak_rss_mib"] < 2560  # the whole process, under the limit
    if (BENCHMARKS.parents[1] / "shared" / "data" / "Kodak24").is_dir():
        figures = report["figures"][str(tmp_path / "tiny.safetensors")]
        assert abs(figures["change_db"]["onnxruntime-fp32"]) < 1e-3
    else:  # no benchmark data on this machine: speed and memory only
        assert report["figures"] == {}
    assert report["machine"]["processor"]["model_name"] is not None


def test_a_partial_precision_measure_keeps_the_other_paths_of_the_same_weights(tmp_path):
    """``--record-zoo --paths torch-fp32 onnxruntime-int8`` re-measures int8 alone: the record's
    other paths stay when the evaluation and its fp32 figure are the same, and not otherwise."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("inference", BENCHMARKS / "inference.py")
        inference = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(inference)
    finally:
        sys.path.remove(str(BENCHMARKS))
    record = tmp_path / "precision.json"
    psnr = {"torch-fp32": 33.0, "torch-bf16": 32.99, "onnxruntime-int8": 28.5}
    old = {"evaluation": "Set14 x2", "psnr": psnr, "fp32": 33.0, "command": "first"}
    old["change_db"] = {"torch-bf16": -0.01, "onnxruntime-int8": -4.5}
    record.write_text(json.dumps(old))
    new = {"evaluation": "Set14 x2", "psnr": {"torch-fp32": 33.0, "onnxruntime-int8": 32.9}}
    new |= {"fp32": 33.0, "change_db": {"onnxruntime-int8": -0.1}, "command": "second"}
    merged = inference.merged_precision(record, new)
    assert merged["change_db"] == {"torch-bf16": -0.01, "onnxruntime-int8": -0.1}
    assert merged["psnr"]["torch-bf16"] == 32.99 and merged["psnr"]["onnxruntime-int8"] == 32.9
    assert merged["command"] == "second" and merged["earlier_commands"] == ["first"]
    other_weights = new | {"fp32": 33.2}
    assert inference.merged_precision(record, other_weights) == other_weights
    assert inference.merged_precision(tmp_path / "none.json", new) == new
