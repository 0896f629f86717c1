"""The names electra_tf re-exports import, are the owning modules' objects, and cost nothing on
`import electra_tf` (no TensorFlow)."""

import pathlib
import subprocess
import sys

import pytest

import electra_tf


@pytest.mark.parametrize("name", sorted(electra_tf._EXPORTS))
def test_each_public_name_imports_from_the_package(name):
    import importlib

    value = getattr(electra_tf, name)
    assert value is getattr(importlib.import_module(electra_tf._EXPORTS[name]), name)
    assert name in dir(electra_tf)
    assert value.__doc__, f"{name} has no docstring"


def test_from_import_and_unknown_names():
    from electra_tf import ElectraConfig, Tokenizer, load_config  # noqa: F401

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        electra_tf.nope  # noqa: B018


def test_importing_the_package_does_not_import_tensorflow():
    code = "import sys, electra_tf; print('tensorflow' in sys.modules)"
    repo = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "False"
