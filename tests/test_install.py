"""A wheel of this project stands on its own: built from the sources, installed (not editable)
into a fresh virtualenv, it finds its presets from any working directory.

The venv is created with --system-site-packages and --without-pip, and the wheel goes in with
--no-deps through this interpreter's pip: nothing is downloaded. load_config needs only the
standard library, so the base interpreter's packages are enough.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, **kwargs)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def test_installed_wheel_carries_the_presets(tmp_path):
    pytest.importorskip("setuptools")
    # The build writes build/ and *.egg-info next to its sources: build a copy, not the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "electra_tf", source / "electra_tf", ignore=shutil.ignore_patterns("__pycache__"))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ]
    )
    wheel = next((tmp_path / "dist").glob("electra_tf-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "electra_tf/configs/electra_small.json" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    probe = (
        "import json, electra_tf; from electra_tf.config import load_config, preset_names; "
        "c = load_config('electra_small'); "
        "print(json.dumps([electra_tf.__file__, c.hidden_size, preset_names()]))"
    )
    # -I: neither the working directory nor PYTHONPATH nor user site-packages on the path.
    result = _run([str(python), "-I", "-c", probe], cwd=elsewhere, env=env)
    module_file, hidden_size, presets = json.loads(result.stdout.strip().splitlines()[-1])
    assert module_file.startswith(str(venv)) and hidden_size == 256
    assert {"electra_small", "electra_base", "electra_large", "electra_tiny"} <= set(presets)
