"""Super-resolution speed: EDSR-baseline and RED-Net training and inference, per layout/precision.

Training: the trainer's loop (a DataLoader over SRPatchDataset, then Stepper.step; data loading
included) at the presets' settings: ``edsr-baseline-x2`` (batch 16, LR patch 48, L1) and
``rednet-sr`` (RED30, batch 16, 50x50 HR patches, x2/x3/x4 drawn per sample, L2), in fp32 eager,
channels_last and bf16 autocast; images/s as ratios to eager, all timed in one process with
interleaved repeats. Inference: ``RestorationModel.upscale`` of a 256x256 RGB uint8 LR image by
EDSR-baseline x2 and x4 and by the multi-scale RED-Net at x2 and x4, eager vs channels_last;
megapixels/s of the LR input and of the SR output. GFLOP/s (FlopCounterMode) are given as
fractions of this run's own measured ceiling (a channels_last 3x3 convolution); a rate above the
processor's physical peak ends the run with an error instead of a report.

    python benchmarks/sr.py                        # full benchmark (long on a CPU)
    python benchmarks/sr.py --quick --threads 1    # seconds: only checks the script
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from _common import (  # benchmarks/_common.py
    ROOT,
    add_machine_arguments,
    add_timing_arguments,
    count_flops,
    describe_machine,
    environment,
    flop_rate,
    interleaved,
    main_or_exit,
    measure_ceiling,
    resolve_timing,
    write_report,
)
from _training import (  # benchmarks/_training.py
    Run,
    one_epoch,
    step_flops,
    time_runs,
    training_images,
)

from restorekit.configs import Config, load_config
from restorekit.data import sr_images_from_hr
from restorekit.data.kinds.sr import sr_dataset
from restorekit.engine.run_folder import describe
from restorekit.infer.model import RestorationModel
from restorekit.infer.tiling import plan_tiles
from restorekit.nets import build_net

TRAIN_PRESETS = ("edsr-baseline-x2", "rednet-sr")
CONFIGS = {  # name: overrides on top of the preset; "eager" is the reference (ratio 1)
    "eager": ["train.channels_last=false", "data.workers=0", "train.compile=false"],
    "channels_last": ["train.channels_last=true", "data.workers=0", "train.compile=false"],
    # bf16 autocast: only where the CPU has native bf16 (AVX512-BF16/AMX), else it is emulated
    "bf16": ["train.channels_last=true", "data.workers=0", "train.precision=bf16"],
}
QUICK = {  # --quick: smaller networks, patches and batches, on top of the preset
    "edsr-baseline-x2": ["model.n_blocks=2", "data.lr_patch_size=12", "train.batch_size=4"],
    "edsr-baseline-x4": ["model.n_blocks=2"],
    "rednet-sr": ["model.n_layers=10", "data.hr_patch_size=24", "train.batch_size=4"],
}
INFERENCE = {  # name: (preset, scale)
    "edsr-baseline-x2": ("edsr-baseline-x2", 2),
    "edsr-baseline-x4": ("edsr-baseline-x4", 4),
    "rednet-sr-x2": ("rednet-sr", 2),
    "rednet-sr-x4": ("rednet-sr", 4),
}
LAYOUTS = ("eager", "channels_last")
LR_SIDE = {False: 256, True: 16}  # inference input, by --quick


def preset_config(preset: str, quick: bool, overrides: list[str] | None = None) -> Config:
    """``preset`` with ``overrides``, after the ``QUICK`` ones with ``--quick``."""
    return load_config(preset, [*(QUICK[preset] if quick else []), *(overrides or [])])


def bench_training(preset: str, images: list, configs: list[str], args, env, device) -> dict:
    """Steps of ``preset`` under each configuration, on the same patches."""
    cfgs = {c: preset_config(preset, args.quick, CONFIGS[c]) for c in configs}
    eager = cfgs["eager"]
    dc, total = eager.data, args.warmup + args.steps * args.repeats
    names = [f"{i}.png" for i in range(len(images))]
    dataset = sr_dataset(dc, sr_images_from_hr(images, names, dc.scales, dc.round_lr))
    sampler = one_epoch(len(images), eager, args)
    gflop = step_flops(eager, dataset, sampler, device) / 1e9  # the same at every drawn scale
    runs = {c: Run(cfg, dataset, sampler, total, device) for c, cfg in cfgs.items()}
    timing = time_runs(runs, args, device)  # eager first: the reference of the ratios
    side = dc.hr_patch_size or dc.lr_patch_size * dc.scales[0]
    result: dict = {"batch_size": eager.train.batch_size, "scales": dc.scales}
    result |= {"hr_patch_size": side, "lr_patch_sizes": dataset.lr_patch}
    result |= {"criterion": eager.method.criterion, "gflop_per_step": gflop}
    result |= {"model": eager.model.model_dump()}
    for c in runs:
        precision = "bf16" if c == "bf16" else "fp32"
        rate = flop_rate(gflop, timing[c]["step_s"], env, precision, f"{preset} {c} step")
        result[c] = {"overrides": CONFIGS[c], **timing[c], "precision": precision, **rate}
    return result


def upscaling_model(cfg: Config, channels_last: bool, device: torch.device) -> RestorationModel:
    """``cfg``'s network, seeded, as ``load_model`` would return it trained (weights do not
    change the speed); ``channels_last`` False: a contiguous network and NCHW input."""
    torch.manual_seed(0)
    net = build_net(cfg.model.arch, **cfg.model.model_dump(exclude={"arch"}))
    with tempfile.TemporaryDirectory() as folder:
        descriptor = describe(cfg, net, Path(folder), "benchmarks/sr.py")
    model = RestorationModel(net, descriptor, str(device))
    if not channels_last:
        model.channels_last = False
        model.net = model.net.to(memory_format=torch.contiguous_format)
    return model


def bench_inference(name: str, image, args, env, device: torch.device) -> dict:
    """``upscale()`` of the LR ``image`` at the scale of ``name``, eager and channels_last."""
    preset, scale = INFERENCE[name]
    cfg = preset_config(preset, args.quick)
    models = {lay: upscaling_model(cfg, lay == "channels_last", device) for lay in LAYOUTS}
    runs = {lay: lambda m=m: m.upscale(image, scale=scale) for lay, m in models.items()}
    for run in runs.values():  # warm-up
        run()
    gflop = count_flops(runs["eager"]) / 1e9  # one upscale() call (bicubic not counted)
    seconds = interleaved(runs, args.repeats, device)
    height, width = image.shape[:2]
    model, k = models["channels_last"], scale if cfg.data.upsample_input else 1
    net_input = (1, 3, height * k, width * k)  # RED-Net runs on the bicubic-upscaled image
    budget = (model.bytes_per_pixel, model.tile, model.max_memory, model.overlap)
    tile, _ = plan_tiles(net_input, model.descriptor.size_multiple, *budget)  # as upscale() does
    lr_mp, sr_mp = height * width / 1e6, height * width * scale**2 / 1e6
    result: dict = {"preset": preset, "scale": scale, "lr_size": [width, height]}
    result |= {"sr_size": [width * scale, height * scale], "network_input": net_input[2:]}
    result |= {"tile": tile, "whole": tile >= max(net_input[2:]), "gflop": gflop}
    for lay in LAYOUTS:
        median = statistics.median(seconds[lay])
        result[lay] = {
            "seconds": seconds[lay],
            "median_s": median,
            "lr_megapixels_per_s": lr_mp / median,
            "sr_megapixels_per_s": sr_mp / median,
            "ratio": statistics.median(seconds["eager"]) / median,
            **flop_rate(gflop, median, env, "fp32", f"{name} {lay} upscale"),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="default benchmarks/results/sr[_quick].json")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small nets, patches and batches, 2 steps, a 16x16 image: checks only",
    )
    add_timing_arguments(parser)
    parser.add_argument("--presets", nargs="+", choices=TRAIN_PRESETS, default=list(TRAIN_PRESETS))
    parser.add_argument("--models", nargs="+", choices=list(INFERENCE), default=list(INFERENCE))
    add_machine_arguments(parser)
    args = parser.parse_args()
    quick = args.quick
    resolve_timing(args)
    args.json = args.json or ROOT / "benchmarks" / "results" / (
        "sr_quick.json" if quick else "sr.json"
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configs = list(CONFIGS)
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        configs.remove("bf16")
        print("bf16 skipped: this CPU has no native bf16")

    env = environment(device, args.max_ghz)  # the machine, and this run's own ceiling first
    env["ceiling"] = measure_ceiling(device, env["machine"], quick)
    images, source = training_images(4 if quick else None)
    training = {p: bench_training(p, images, configs, args, env, device) for p in args.presets}
    side = LR_SIDE[quick]
    lr_image = images[0][:side, :side]
    inference = {m: bench_inference(m, lr_image, args, env, device) for m in args.models}

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, data {source}")
    print(describe_machine(env))
    print(
        f"training: {args.steps} steps x {args.repeats} repeats after {args.warmup} warm-up, "
        "data loading timed"
    )
    print(
        f"{'preset':17} {'config':14} {'step/s':>7} {'img/s':>7} {'ratio':>6} {'wait':>6} "
        f"{'GFLOP/s':>8} {'ceil':>6}"
    )
    for preset, r in training.items():
        for c in configs:
            x = r[c]
            print(
                f"{preset:17} {c:14} {x['steps_per_s']:7.3f} {x['images_per_s']:7.2f} "
                f"{x['ratio']:6.3f} {x['data_wait_fraction']:6.1%} {x['gflops']:8.1f} "
                f"{x['ceiling_fraction']:6.1%}"
            )
        print(
            f"{preset}: batch {r['batch_size']}, HR patch {r['hr_patch_size']}, "
            f"x{'/x'.join(map(str, r['scales']))}"
        )
    print(f"inference: {side}x{side} uint8 RGB LR image, median of {args.repeats} after 1 warm-up")
    print(
        f"{'model':17} {'layout':14} {'LR MP/s':>8} {'SR MP/s':>8} {'ratio':>6} {'SR size':>10} "
        f"{'GFLOP/s':>8} {'ceil':>6}"
    )
    for name, r in inference.items():
        for lay in LAYOUTS:
            x = r[lay]
            print(
                f"{name:17} {lay:14} {x['lr_megapixels_per_s']:8.4f} "
                f"{x['sr_megapixels_per_s']:8.3f} {x['ratio']:6.3f} "
                f"{r['sr_size'][0]:>5}x{r['sr_size'][1]:<4} {x['gflops']:8.1f} "
                f"{x['ceiling_fraction']:6.1%}"
            )
    print("ceil: GFLOP/s as a fraction of the measured conv ceiling of the same precision")

    report = {
        **env,
        "settings": {
            "quick": quick,
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "data": source,
            "configs": {c: CONFIGS[c] for c in configs},
            "data_loading_timed": True,
            "inference_lr_size": [side, side],
            "inference_warmup": 1,
        },
        "training": training,
        "inference": inference,
    }
    write_report(args.json, report)


if __name__ == "__main__":
    main_or_exit(main)
