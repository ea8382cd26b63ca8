"""Helpers of the web app's tests (their fixtures, ``make_client`` and ``client``, are in
tests/conftest.py): small images, the user models a test app holds, waiting for a job."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def photo(seed: int = 0, shape: tuple[int, ...] = (48, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def user_models(data_dir: Path, tiny_model_files: dict[str, Path]) -> None:
    for name, key in (("tiny-denoiser", "denoise"), ("tiny-x2", "upscale")):
        (data_dir / "models" / name).mkdir(parents=True)
        shutil.copy(tiny_model_files[key], data_dir / "models" / name / "model.safetensors")


def wait(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    """Poll a job until it is finished; its last status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {status}")
