"""``restorekit serve``: the web app and REST API (:mod:`restorekit.serve`)."""

from __future__ import annotations

from pathlib import Path

import click

from restorekit.cli.options import max_pixels_option

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", help="Required on every API call (needed for a --host other than local).")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs at once."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("restorekit-serve"),
    show_default=True,
    help="Jobs' files (kept --ttl seconds) and the models trained here.",
)
@click.option("--max-upload", default="256MB", show_default=True, help="Bytes per request.")
@click.option("--ttl", type=click.FloatRange(min=1), default=3600.0, show_default=True)
@max_pixels_option
@click.option(
    "--max-memory", default="2GB", show_default=True, help="Working memory of one job (tiling)."
)
def serve(
    host: str,
    port: int,
    token: str | None,
    workers: int,
    data_dir: Path,
    max_upload: str,
    ttl: float,
    max_memory: str,
) -> None:
    """A local web app and REST API (page at http://HOST:PORT/, API docs at /docs): denoise,
    upscale, compare before/after, and train a denoiser on your own noisy images."""
    try:
        import uvicorn

        from restorekit.serve.app import Settings, create_app
    except ImportError:
        raise click.ClickException(
            "the web app needs its extra: pip install 'restorekit[serve]'"
        ) from None
    from restorekit.units import parse_bytes

    if host not in LOCAL_HOSTS and not token:
        raise click.UsageError(
            f"--host {host} serves other machines: give --token SECRET (clients send "
            "Authorization: Bearer SECRET, or open the page with ?token=SECRET)"
        )
    settings = Settings(
        data_dir.resolve(),
        token=token,
        workers=workers,
        max_upload_bytes=parse_bytes(max_upload),
        max_memory=parse_bytes(max_memory),
        ttl_s=ttl,
    )
    click.echo(f"restorekit serve: http://{host}:{port}/ (API docs: /docs), files in {data_dir}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
