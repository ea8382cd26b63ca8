"""The web application: the REST API (documented at ``/docs``) and the page (``/``).

Endpoints: ``GET /api/models``; ``POST /api/jobs`` (multipart: ``files``, ``model``, and
``scale``, ``tile``, ``ensemble``, ``format``, ``bit_depth``, ``input_scale``, optional clean
``references`` matched by file name) -> ``{"id"}``; ``GET /api/jobs/{id}`` (state, progress,
tiles, per-file results and errors); ``GET /api/jobs/{id}/result`` (the image in its format, or
a zip for several); ``GET /api/jobs/{id}/preview/{index}?which=input|output`` (an 8-bit PNG for
the page); ``DELETE /api/jobs/{id}``; ``POST /api/train`` (``files``, ``method`` ne2ne|n2v,
``budget`` seconds, ``name``) -> ``{"id"}``, whose status carries the loss curve; ``GET
/api/models/{name}/download?format=safetensors|onnx``.

Every bad request is a 4xx with ``{"error": message}``; with a token, every ``/api`` call needs
``Authorization: Bearer TOKEN`` (or ``?token=``).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from restorekit.errors import ModelLoadError, RestorekitError
from restorekit.infer.files import FileOptions
from restorekit.infer.tiling import DEFAULT_MAX_MEMORY
from restorekit.io import IMAGE_EXTENSIONS, set_max_pixels
from restorekit.serve.jobs import Job, JobQueue, QueueFull
from restorekit.serve.uploads import (
    UploadError,
    check_image,
    check_stack,
    save_uploads,
    shown_name,
)
from restorekit.serve.work import (
    NAME,
    Models,
    apply_job,
    open_for_job,
    preview,
    train_config,
    train_job,
    train_status,
)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Settings:
    """``data_dir``: jobs' folders (``jobs/``) and trained models (``models/``). ``token``:
    required on every API call when set. Limits: bytes per request, pixels per image (checked
    from the header, before decoding), waiting jobs, a training's time budget."""

    data_dir: Path
    token: str | None = None
    workers: int = 1
    max_waiting: int = 32
    max_upload_bytes: int = 256 * 2**20
    max_pixels: int | None = None
    max_memory: float = DEFAULT_MAX_MEMORY
    ttl_s: float = 3600.0
    max_train_s: float = 1800.0
    backend: str = "auto"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(settings: Settings) -> FastAPI:
    """The application; its job queue starts with it and drains when it stops."""
    queue = JobQueue(settings.workers, settings.max_waiting, settings.ttl_s)
    models = Models(settings.data_dir / "models")
    jobs_dir = settings.data_dir / "jobs"
    if settings.max_pixels is not None:
        set_max_pixels(settings.max_pixels)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs_dir.mkdir(parents=True, exist_ok=True)
        yield
        await run_in_threadpool(queue.shutdown)

    app = FastAPI(title="restorekit", lifespan=lifespan)
    app.state.queue, app.state.models = queue, models

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if request.url.path.startswith("/api") and settings.token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.query_params.get("token", "")
            if not secrets.compare_digest(given, settings.token):
                return _error(401, "a token is required: Authorization: Bearer TOKEN")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_bytes + 2**20:
            limit = settings.max_upload_bytes
            return _error(413, f"request larger than the limit of {limit:,} bytes")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'][1:]) or 'request'}: {item['msg']}"
            for item in error.errors()
        )
        return _error(422, f"bad request: {problems}")

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, str(error))

    @app.exception_handler(UploadError)
    async def upload_error(_: Request, error: UploadError) -> JSONResponse:
        return _error(error.status, str(error))

    @app.exception_handler(QueueFull)
    async def queue_full(_: Request, error: QueueFull) -> JSONResponse:
        return _error(429, str(error))

    @app.exception_handler(RestorekitError)
    async def bad_input(_: Request, error: RestorekitError) -> JSONResponse:
        return _error(404 if isinstance(error, ModelLoadError) else 422, str(error))

    @app.get("/api/models")
    def list_models() -> list[dict[str, Any]]:
        return models.describe()

    @app.post("/api/jobs")
    async def create_job(
        files: Annotated[list[UploadFile], File()],
        model: Annotated[str, Form()],
        scale: Annotated[int | None, Form()] = None,
        tile: Annotated[int | None, Form()] = None,
        ensemble: Annotated[bool, Form()] = False,
        format: Annotated[str | None, Form()] = None,
        bit_depth: Annotated[int | None, Form()] = None,
        input_scale: Annotated[float | None, Form()] = None,
        references: Annotated[list[UploadFile] | None, File()] = None,
        axes: Annotated[str | None, Form()] = None,
    ) -> dict[str, str]:
        entry = models.get(model)
        if axes is not None:
            axes = _stack_axes(axes, format, bit_depth)
        if format is not None and f".{format.lower().lstrip('.')}" not in IMAGE_EXTENSIONS:
            raise ApiError(422, f"format {format!r}: choose one of {', '.join(IMAGE_EXTENSIONS)}")
        if bit_depth not in (None, 8, 16, 32):
            raise ApiError(422, f"bit_depth {bit_depth}: choose 8, 16 or 32")
        if tile is not None and tile < 16:
            raise ApiError(422, f"tile {tile}: at least 16 pixels")
        job = _new_job("apply", jobs_dir, model)
        limit = settings.max_upload_bytes
        with _discarded_on_error(job.folder):
            inputs = await _received(files, job.folder / "in", limit, axes)
            refs = await _received(references, job.folder / "ref", limit) if references else []
        job.files = [shown_name(p) for p in inputs]
        options = FileOptions(ensemble, scale, input_scale, bit_depth)

        def work(job: Job) -> None:
            asked = ("ensemble",) * ensemble + ("stacks (axes)",) * (axes is not None)
            opened = open_for_job(queue, entry, settings.backend, settings.max_memory, asked)
            if opened.descriptor.task == "upscale":
                opened.descriptor.chosen_scale(scale)  # a wrong scale fails the job by name
            elif scale not in (None, 1):
                raise RestorekitError(f"{model} denoises: drop scale={scale}")
            opened.tile = tile
            out_format = format.lower().lstrip(".") if format else None
            by_name = {shown_name(p): p for p in refs}
            apply_job(job, opened, inputs, options, out_format, by_name, axes)

        with _discarded_on_error(job.folder):
            queue.submit(job, work)
        return {"id": job.id}

    @app.post("/api/train")
    async def create_training(
        files: Annotated[list[UploadFile], File()],
        method: Annotated[str, Form()] = "ne2ne",
        budget: Annotated[float, Form()] = 120.0,
        name: Annotated[str | None, Form()] = None,
    ) -> dict[str, str]:
        if not 10 <= budget <= settings.max_train_s:
            raise ApiError(422, f"budget {budget:g} s: between 10 and {settings.max_train_s:g}")
        name = name or f"{method}-{_new_id()[:8]}"
        if not NAME.match(name) or name in models.entries():
            raise ApiError(422, f"name {name!r}: letters, digits, . _ -, not a model's name")
        job = _new_job("train", jobs_dir, name, {"budget": budget, "method": method})
        run_dir, models_dir = job.folder / "run", settings.data_dir / "models"
        with _discarded_on_error(job.folder):
            inputs = await _received(files, job.folder / "in", settings.max_upload_bytes)
            job.files = [shown_name(p) for p in inputs]
            config = await run_in_threadpool(train_config, method, inputs, budget)
            queue.submit(job, lambda job: train_job(job, config, run_dir, models_dir, name))
        return {"id": job.id}

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        job = _job(queue, job_id)
        status = job.status()
        if job.kind == "train":
            status |= train_status(job, job.options["budget"])
            status["progress"] = round(job.progress, 4)
        return status

    @app.get("/api/jobs/{job_id}/result")
    def job_result(job_id: str) -> FileResponse:
        job = _job(queue, job_id)
        if job.state != "done" or job.result_path is None:
            why = f" ({job.message})" if job.message else ""
            raise ApiError(409, f"job {job_id} is {job.state}: no result{why}")
        return FileResponse(job.result_path, filename=job.result_path.name)

    @app.get("/api/jobs/{job_id}/preview/{index}")
    def job_preview(job_id: str, index: int, which: str = "output") -> Response:
        job = _job(queue, job_id)
        if which == "input":
            paths = sorted((job.folder / "in").glob("*"))
        else:
            paths = [job.folder / "out" / r["output"] for r in job.results if "output" in r]
        if not 0 <= index < len(paths) or not paths[index].is_file():
            raise ApiError(404, f"job {job_id} has no {which} {index} (yet)")
        return Response(preview(paths[index]), media_type="image/png")

    @app.delete("/api/jobs/{job_id}")
    def delete_job(job_id: str) -> dict[str, str]:
        job = queue.delete(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id}")
        return {"id": job_id, "state": job.state}

    @app.get("/api/models/{name}/download")
    def download_model(name: str, format: str = "safetensors") -> FileResponse:
        entry = models.get(name)
        folder = entry.folder or (entry.zoo.folder if entry.zoo else None)
        assert folder is not None
        weights = folder / "model.safetensors"
        if format == "safetensors":
            return FileResponse(weights, filename=f"{name}.safetensors")
        if format != "onnx":
            raise ApiError(422, f"format {format!r}: safetensors or onnx")
        from restorekit.infer.onnx_cache import cached_onnx

        return FileResponse(cached_onnx(weights), filename=f"{name}.onnx")

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _received(
    files: list[UploadFile], folder: Path, max_bytes: int, axes: str | None = None
) -> list[Path]:
    """The uploads saved and each read once (4xx on a bad one, before any job): images
    decoded; with ``axes``, TIFF stacks whose shape fits the axes."""
    paths = await save_uploads(files, folder, max_bytes)
    for path in paths:
        if axes is None:
            await asyncio.to_thread(check_image, path, shown_name(path))
        else:
            await asyncio.to_thread(check_stack, path, shown_name(path), axes)
    return paths


def _stack_axes(axes: str, format: str | None, bit_depth: int | None) -> str:
    """``axes`` checked (e.g. SYX, ZYX, SCZYX); the options stacks do not take refused."""
    from restorekit.io.axes import parse_axes

    if format not in (None, "tif", "tiff") or bit_depth not in (None, 32):
        raise ApiError(422, "stacks (axes) are written as TIFF in their dtype, or bit_depth 32")
    try:
        return parse_axes(axes)
    except RestorekitError as error:
        raise ApiError(422, str(error)) from None


def _job(queue: JobQueue, job_id: str) -> Job:
    job = queue.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id} (finished jobs are kept for a while, then removed)")
    return job


@contextmanager
def _discarded_on_error(folder: Path) -> Iterator[None]:
    """A refused request leaves nothing behind: its job's folder goes with the error."""
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _new_id() -> str:
    return secrets.token_hex(16)


def _new_job(kind: str, jobs_dir: Path, model: str, options: dict | None = None) -> Job:
    """A job with a fresh id and its folder ``jobs_dir/ID`` (not yet created)."""
    job_id = _new_id()
    return Job(kind, jobs_dir / job_id, [], model, options or {}, id=job_id)  # type: ignore[arg-type]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
