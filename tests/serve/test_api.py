"""The REST API: results equal the command line's for the same file and options; every bad
input is a 4xx with a JSON error naming the problem; jobs queue, report progress, cancel and
expire."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="the web app's extra: pip install 'restorekit[serve]'")

from serve_support import photo, png, wait  # noqa: E402

from restorekit.cli import main
from restorekit.io import write_image
from restorekit.serve.jobs import Job, JobQueue


def submit(client, files, **fields) -> str:
    response = client.post(
        "/api/jobs",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        data={k: str(v) for k, v in fields.items()},
    )
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def test_models_lists_the_shipped_and_the_users_with_their_facts(client):
    listed = {m["name"]: m for m in client.get("/api/models").json()}
    assert {"ne2ne-gauss25", "edsr-baseline-x2", "tiny-denoiser", "tiny-x2"} <= set(listed)
    assert listed["edsr-baseline-x2"]["task"] == "upscale" and listed["tiny-x2"]["scales"] == [2]
    kodak = listed["ne2ne-gauss25"]["figures"]["kodak24-gauss25"]
    assert kodak["psnr"] > kodak["psnr_in"] + 5 and listed["ne2ne-gauss25"]["shipped"]
    assert not listed["tiny-denoiser"]["shipped"] and listed["tiny-denoiser"]["figures"] == {}
    # the page starts with the blind denoiser: a photograph's noise level is unknown
    assert [m for m in listed if listed[m]["default"]] == ["ne2ne-gauss5_50"]


def test_results_equal_the_command_lines_bytes(client, tmp_path, tiny_model_files):
    image = photo(1, (40, 56, 3))
    write_image(tmp_path / "in" / "cat.png", image)
    for model, command, extra in (
        ("tiny-denoiser", "denoise", {}),
        ("tiny-x2", "upscale", {"scale": 2}),
    ):
        job = submit(client, [("cat.png", png(image))], model=model, **extra)
        status = wait(client, job)
        assert status["state"] == "done" and status["results"][0]["output"] == "cat.png"
        served = client.get(f"/api/jobs/{job}/result").content
        out = tmp_path / command
        key = "denoise" if command == "denoise" else "upscale"
        result = CliRunner().invoke(
            main, [command, str(tmp_path / "in" / "cat.png"), "-o", str(out), "--model",
                   str(tiny_model_files[key])],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert served == (out / "cat.png").read_bytes()


def test_several_files_come_back_as_a_zip_with_distinct_names_and_psnr(client):
    clean = photo(2)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 20, clean.shape), 0, 255)
    files = [("a.png", png(noisy.astype(np.uint8))), ("b/a.png", png(clean)), ("c.png", png(clean))]
    response = client.post(
        "/api/jobs",
        files=[("files", (n, d, "image/png")) for n, d in files]
        + [("references", ("a.png", png(clean), "image/png"))],
        data={"model": "tiny-denoiser", "format": "tif"},
    )
    status = wait(client, response.json()["id"])
    assert [r["output"] for r in status["results"]] == ["a.tif", "a (2).tif", "c.tif"]
    assert status["results"][0]["psnr"] > 5  # against the clean reference named a.png
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/jobs/{status['id']}/result").content))
    assert archive.namelist() == ["a.tif", "a (2).tif", "c.tif"]
    first = archive.read("a.tif")
    assert first[:4] in (b"II*\x00", b"MM\x00*")  # TIFF, as asked


def test_bad_inputs_are_4xx_with_a_json_error_naming_the_problem(make_client):
    client = make_client(max_upload_bytes=400_000, max_pixels=1_000_000)
    good = png(photo())
    bomb = png(np.zeros((2000, 2000), np.uint8))  # 4 M pixels in a few kB
    cases = [
        ({"files": [("x.png", good[: len(good) // 2])]}, "tiny-denoiser", 422, "x.png"),
        ({"files": [("notes.txt", b"hello")]}, "tiny-denoiser", 415, "not an image file"),
        ({"files": [("bomb.png", bomb)]}, "tiny-denoiser", 413, "pixel limit"),
        ({"files": [("big.png", b"\0" * 500_000)]}, "tiny-denoiser", 413, "limit"),
        ({"files": [("x.png", good)]}, "no-such-model", 404, "unknown model"),
        ({"files": [("x.png", b"")]}, "tiny-denoiser", 400, "empty"),
        ({}, "tiny-denoiser", 422, "files"),
        ({"files": [("x.png", good)], "format": "exe"}, "tiny-denoiser", 422, "format"),
        ({"files": [("x.png", good)], "bit_depth": 12}, "tiny-denoiser", 422, "bit_depth"),
    ]
    for fields, model, status, words in cases:
        files = fields.pop("files", [])
        response = client.post(
            "/api/jobs",
            files=[("files", (n, d, "image/png")) for n, d in files],
            data={"model": model, **{k: str(v) for k, v in fields.items()}},
        )
        assert response.status_code == status, (files, response.json())
        assert words in response.json()["error"], response.json()
        assert "/serve" not in response.json()["error"]  # the server's folders stay private
    job = submit(client, [("x.png", good)], model="tiny-x2", scale=3)  # known only when run
    status = wait(client, job)
    assert status["state"] == "failed" and "upscales x2, not x3" in status["message"]
    assert client.get(f"/api/jobs/{job}/result").status_code == 409
    assert client.get("/api/jobs/nope").status_code == 404


def test_names_cannot_leave_the_jobs_folder(client, tmp_path):
    job = submit(client, [("../../../evil.png", png(photo()))], model="tiny-denoiser")
    status = wait(client, job)
    assert status["files"] == ["evil.png"] and status["results"][0]["output"] == "evil.png"
    written = list(tmp_path.rglob("*evil.png"))
    assert written and all("jobs" in p.relative_to(tmp_path).parts for p in written)


def test_a_token_guards_every_api_call(make_client):
    client = make_client(token="s3cret")
    assert client.get("/api/models").status_code == 401
    assert client.get("/api/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/models?token=s3cret").status_code == 200
    assert client.get("/").status_code == 200  # the page itself asks for the token


def test_delete_cancels_and_forgets_a_job_and_its_files(client, tmp_path):
    job = submit(client, [("x.png", png(photo()))], model="tiny-denoiser")
    wait(client, job)
    folders = list(tmp_path.glob(f"serve*/jobs/{job}"))
    assert folders and folders[0].is_dir()
    assert client.delete(f"/api/jobs/{job}").json()["state"] == "done"
    assert client.get(f"/api/jobs/{job}").status_code == 404 and not folders[0].exists()


def test_queue_bounds_waiting_jobs_expires_results_and_fails_waiting_ones_at_shutdown(tmp_path):
    import threading

    from restorekit.serve.jobs import QueueFull

    gate = threading.Event()
    queue = JobQueue(workers=1, max_waiting=2, ttl_s=0.0)
    jobs = [Job("apply", tmp_path / str(i), [], "m") for i in range(3)]
    for job in jobs:
        (tmp_path / job.folder).mkdir()
        queue.submit(job, lambda job: gate.wait(10))
    while jobs[0].state != "running":
        pass
    with pytest.raises(QueueFull, match="2 jobs wait already"):
        queue.submit(Job("apply", tmp_path / "x", [], "m"), lambda job: None)
    threading.Timer(0.2, gate.set).start()
    queue.shutdown()  # the running one finishes; the waiting ones fail, saying why
    assert jobs[0].state == "done"
    assert [j.state for j in jobs[1:]] == ["failed", "failed"]
    assert "server stopped" in jobs[1].message
    queue.expire()  # time to live 0: every finished job goes, with its folder
    assert queue.jobs() == [] and not any((tmp_path / str(i)).exists() for i in range(3))


def test_training_on_uploads_makes_a_model_that_later_jobs_use(client):
    rng = np.random.default_rng(3)
    clean = np.tile(np.linspace(40, 200, 96, dtype=np.float32), (96, 1))[..., None].repeat(3, 2)
    noisy = [png(np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8))
             for _ in range(2)]  # fmt: skip
    response = client.post(
        "/api/train",
        files=[("files", (f"n{i}.png", d, "image/png")) for i, d in enumerate(noisy)],
        data={"method": "ne2ne", "budget": "20", "name": "mine"},  # 2 logs, slow CPU
    )
    assert response.status_code == 200, response.json()
    status = wait(client, response.json()["id"], timeout=180)
    assert status["state"] == "done", status
    assert status["model_ready"] == "mine" and len(status["loss"]) >= 2
    assert "mine" in {m["name"] for m in client.get("/api/models").json()}
    job = submit(client, [("n0.png", noisy[0])], model="mine")
    assert wait(client, job)["state"] == "done"
    weights = client.get("/api/models/mine/download?format=safetensors")
    assert weights.status_code == 200 and len(weights.content) > 100_000
    bad = client.post("/api/train", files=[("files", ("n.png", noisy[0], "image/png"))],
                      data={"method": "ne2ne", "budget": "5"})  # fmt: skip
    assert bad.status_code == 422 and "budget" in bad.json()["error"]


@pytest.mark.parametrize("native", [True, False])
def test_training_takes_bf16_only_where_it_is_native(monkeypatch, tmp_path, native):
    from restorekit import devices
    from restorekit.serve.work import train_config

    monkeypatch.setattr(devices, "bf16_is_native", lambda device: native)
    write_image(tmp_path / "n.png", np.full((64, 64, 3), 90, np.uint8))
    config = train_config("ne2ne", [tmp_path / "n.png"], 30)
    assert config.train.precision == ("bf16" if native else "fp32")  # emulated bf16 is slower


def test_preview_serves_8_bit_png_of_inputs_and_outputs(client):
    sixteen = photo(4).astype(np.uint16) * 257
    job = submit(client, [("deep.png", png(sixteen[..., 0]))], model="tiny-denoiser")
    wait(client, job)
    for which in ("input", "output"):
        response = client.get(f"/api/jobs/{job}/preview/0?which={which}")
        assert response.headers["content-type"] == "image/png"
        from PIL import Image

        assert Image.open(io.BytesIO(response.content)).mode == "L"
    assert client.get(f"/api/jobs/{job}/preview/5").status_code == 404


def test_tiff_stacks_with_axes_equal_the_command_line(client, tmp_path):
    import tifffile

    stack = np.random.default_rng(8).integers(0, 4096, (3, 40, 52), dtype=np.uint16)
    source = tmp_path / "in" / "cells.tif"
    source.parent.mkdir()
    tifffile.imwrite(source, stack)
    job = submit(client, [("cells.tif", source.read_bytes())], model="n2v-bsd68", axes="SYX")
    status = wait(client, job)
    assert status["state"] == "done", status
    served = client.get(f"/api/jobs/{job}/result").content
    out = tmp_path / "cli"
    args = ["denoise", str(source), "-o", str(out), "--model", "n2v-bsd68", "--axes", "SYX"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert served == (out / "cells.tif").read_bytes()
    planes = client.post("/api/jobs", files={"files": ("cells.tif", source.read_bytes())},
                         data={"model": "n2v-bsd68", "axes": "ZYX"})  # fmt: skip
    assert planes.status_code == 200  # a 2D model takes a volume's Z planes as slices
    assert wait(client, planes.json()["id"])["state"] == "done"
    assert client.get(f"/api/jobs/{planes.json()['id']}/result").content == served
    bad = client.post("/api/jobs", files={"files": ("cells.tif", source.read_bytes())},
                      data={"model": "n2v-bsd68", "axes": "SCZYX"})  # fmt: skip
    assert bad.status_code == 422 and "cells.tif" in bad.json()["error"]
    # 12-bit data: input_scale as --input-scale
    job = submit(client, [("cells.tif", source.read_bytes())], model="n2v-bsd68", axes="SYX",
                 input_scale=4095)  # fmt: skip
    assert wait(client, job)["state"] == "done"
    result = CliRunner().invoke(
        main, [*args, "-o", str(tmp_path / "cli12"), "--input-scale", "4095"]
    )
    assert result.exit_code == 0, result.output
    served12 = client.get(f"/api/jobs/{job}/result").content
    assert served12 == (tmp_path / "cli12" / "cells.tif").read_bytes() != served


def test_serve_refuses_other_hosts_without_a_token(monkeypatch):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(kwargs))
    refused = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "--token" in refused.output and not started
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--token", "t", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert started == [{"host": "0.0.0.0", "port": 0, "log_level": "warning"}]


def test_warnings_name_the_upload_and_refused_requests_leave_no_folder(client, tmp_path):
    job = submit(client, [("flat.png", png(np.full((20, 20, 3), 90, np.uint8)))],
                 model="tiny-denoiser")  # fmt: skip
    warnings = wait(client, job)["results"][0]["warnings"]
    assert warnings and warnings[0].startswith("flat.png: constant image")
    jobs = next(tmp_path.glob("serve*/jobs"))
    before = set(jobs.iterdir())
    good = png(photo())
    assert client.post("/api/jobs", files={"files": ("x.png", good[:50])},
                       data={"model": "tiny-denoiser"}).status_code == 422  # fmt: skip
    assert client.post("/api/train", files={"files": ("x.png", good)},
                       data={"method": "bogus", "budget": "20"}).status_code == 422  # fmt: skip
    assert set(jobs.iterdir()) == before
