"""Device names (--device, load_model(device=)): checked, with a clear error, never a traceback."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from restorekit.cli import main
from restorekit.devices import resolve_device
from restorekit.errors import ConfigError


def test_names_resolve_to_devices():
    assert resolve_device("cpu") == resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected


@pytest.mark.parametrize("name", ["gpu0", "cuda:x", "tpu", "", "cuda:-1"])
def test_unknown_names_say_what_is_accepted(name):
    with pytest.raises(ConfigError, match="use cpu, cuda or cuda:N"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:99"])
def test_gpus_that_are_not_there_are_refused(name):
    if torch.cuda.is_available() and name != "cuda:99":
        pytest.skip("this machine has the GPU")
    with pytest.raises(ConfigError, match="sees no CUDA GPU|this machine has"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["gpu0", "cuda:99"])
def test_the_command_line_prints_the_message(tmp_path, name):
    import numpy as np

    from restorekit.io import write_image

    write_image(tmp_path / "a.png", np.zeros((40, 40, 3), np.uint8))
    args = ["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--device", name]
    result = CliRunner().invoke(main, [*args, "--model", "ne2ne-gauss25"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"device {name!r}" in result.output
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_constant_is_made_and_copied_once_per_device_and_key():
    from restorekit.devices import constant_on

    made = []

    def make():
        made.append(1)
        return torch.arange(4)

    cpu = torch.device("cpu")
    first = constant_on(cpu, ("test table", 4), make)
    assert constant_on(cpu, ("test table", 4), make) is first and len(made) == 1
    assert constant_on(cpu, ("test table", 5), make) is not first and len(made) == 2
    assert torch.equal(first, torch.arange(4))
