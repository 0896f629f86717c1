"""electra_tf.fileio.move_tree: a folder moved into place, and replace=True deleting the old
folder only once the new one is complete, locally and on ram:// (the gs:// stand-in)."""

import os
import uuid

import pytest

from electra_tf import fileio


def _write(folder: str, files: dict) -> None:
    for name, text in files.items():
        path = fileio.join(folder, name)
        fileio.makedirs(os.path.dirname(path))
        with fileio.open(path, "w") as handle:
            handle.write(text)


def _contents(folder: str) -> dict:
    return {name: fileio.read_text(fileio.join(folder, name)) for name in fileio.files_below(folder)}


@pytest.fixture(params=["local", "ram"])
def parent(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path)
    return f"ram://fileio_test_{uuid.uuid4().hex[:8]}"


def test_move_tree_refuses_an_existing_target_unless_replace(parent):
    target = fileio.join(parent, "finetuned")
    _write(target, {"head.json": "old", "stale.txt": "from the earlier save"})
    staging = fileio.temporary_name(target)
    _write(staging, {"head.json": "new", "sub/model.h5": "weights"})

    with pytest.raises(FileExistsError):
        fileio.move_tree(staging, target, commit_files=["head.json"])
    assert _contents(target) == {"head.json": "old", "stale.txt": "from the earlier save"}
    assert _contents(staging) == {"head.json": "new", "sub/model.h5": "weights"}

    fileio.move_tree(staging, target, commit_files=["head.json"], replace=True)
    # The old folder's files are gone, not merged with the new ones; nothing is left beside it.
    assert _contents(target) == {"head.json": "new", "sub/model.h5": "weights"}
    assert not fileio.exists(staging)
    assert sorted(name.rstrip("/") for name in fileio.listdir(parent)) == ["finetuned"]


def test_replace_into_a_missing_target_is_a_plain_move(parent):
    target = fileio.join(parent, "snapshot")
    staging = fileio.temporary_name(target)
    _write(staging, {"config.json": "{}"})
    fileio.move_tree(staging, target, commit_files=["config.json"], replace=True)
    assert _contents(target) == {"config.json": "{}"}
    assert not fileio.exists(staging)


def test_local_replace_keeps_the_old_folder_when_the_new_one_cannot_move_in(tmp_path):
    target = str(tmp_path / "finetuned")
    _write(target, {"head.json": "old"})
    with pytest.raises(OSError):
        fileio.move_tree(str(tmp_path / "missing"), target, replace=True)
    assert _contents(target) == {"head.json": "old"}
    assert sorted(os.listdir(tmp_path)) == ["finetuned"]
