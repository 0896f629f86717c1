"""File access for every user path: tf.io.gfile, so gs:// (or any TensorFlow file system) works
wherever a local folder does.

Paths stay strings: pathlib collapses "gs://bucket/x" into "gs:/bucket/x", a local folder, and
os.path.abspath/normpath do the same, so neither is used on a user path. ``os.path.join``,
``dirname`` and ``basename`` are plain string operations and keep the scheme intact.

Moving a folder into place: a local rename is atomic. Object stores have no folders to rename
(tf.io.gfile.rename of a gs:// folder copies object by object, and ram:// does not move a
folder's files at all), so ``move_tree`` copies file by file, each object appearing whole, with
the folder's commit file (saved_model.pb, config.json) last, then deletes the source. A reader
that requires the commit file never sees a half-written folder; a writer killed during the copy
leaves the target without it, which ``is_complete`` callers detect.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from typing import Iterable, Iterator, Optional

import tensorflow as tf

gfile = tf.io.gfile


def is_remote(path: str) -> bool:
    """True for a URL-style path (gs://, ram://, s3://, hdfs://...)."""
    return "://" in os.fspath(path)


def fspath(path) -> str:
    return os.fspath(path)


def join(path, *parts) -> str:
    return os.path.join(os.fspath(path), *(os.fspath(part) for part in parts))


def abspath(path) -> str:
    """Absolute local paths; remote paths as they are (abspath would mangle "gs://")."""
    path = os.fspath(path)
    return path if is_remote(path) else os.path.abspath(path)


def exists(path) -> bool:
    return gfile.exists(os.fspath(path))


def isdir(path) -> bool:
    return gfile.isdir(os.fspath(path))


def isfile(path) -> bool:
    path = os.fspath(path)
    return gfile.exists(path) and not gfile.isdir(path)


def getsize(path) -> int:
    return gfile.stat(os.fspath(path)).length


def listdir(path) -> list[str]:
    # Object stores list sub-folders with a trailing slash.
    return sorted({name.rstrip("/") for name in gfile.listdir(os.fspath(path))})


def makedirs(path) -> None:
    gfile.makedirs(os.fspath(path))


def remove(path) -> None:
    gfile.remove(os.fspath(path))


def rmtree(path) -> None:
    gfile.rmtree(os.fspath(path))


def walk(path) -> Iterator[tuple[str, list[str], list[str]]]:
    for root, dirs, files in gfile.walk(os.fspath(path)):
        dirs[:] = sorted(name.rstrip("/") for name in dirs)
        yield root, dirs, sorted(files)


def glob(pattern) -> list[str]:
    """Matches of ``pattern``; ``**`` matches any depth below a local or remote folder."""
    pattern = os.fspath(pattern)
    if "**" not in pattern:
        return sorted(gfile.glob(pattern))
    base, _, rest = pattern.partition("**")
    rest = rest.lstrip("/")
    base = base.rstrip("/") or "."
    if not gfile.isdir(base):
        return []
    found = set()
    for root, _, files in walk(base):
        for name in files:
            relative = posixpath.relpath(join(root, name), base) if not is_remote(base) else \
                join(root, name)[len(base):].lstrip("/")
            # "**/" also matches no folder at all.
            candidates = [relative, posixpath.basename(relative)]
            if any(_fnmatch(candidate, rest or "*") for candidate in candidates):
                found.add(join(root, name))
    return sorted(found)


def _fnmatch(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def has_magic(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def open(path, mode: str = "r"):  # noqa: A001  (the one file opener of this package)
    """tf.io.gfile.GFile; text modes read and write UTF-8 with "\\n" line ends."""
    return gfile.GFile(os.fspath(path), mode)


def read_text(path) -> str:
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")


def read_bytes(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def read_json(path):
    return json.loads(read_text(path))


def temporary_name(path, tag: str = "writing") -> str:
    """A sibling of ``path`` that no reader takes for it: hidden, and unique per writer."""
    path = os.fspath(path).rstrip("/")
    return join(os.path.dirname(path),
                f".{os.path.basename(path)}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes_atomic(path, data: bytes) -> None:
    """Writes ``data`` under a temporary name and renames it into place (whole or not at all)."""
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        makedirs(directory)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        gfile.rename(temporary, path, overwrite=True)
    finally:
        if gfile.exists(temporary):
            gfile.remove(temporary)


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, value, indent: Optional[int] = 2, sort_keys: bool = False) -> None:
    write_text_atomic(path, json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n")


def copy(source, target, overwrite: bool = False) -> None:
    gfile.copy(os.fspath(source), os.fspath(target), overwrite=overwrite)


def files_below(directory) -> list[str]:
    """Every file below ``directory``, as paths relative to it ("/"-separated)."""
    directory = os.fspath(directory).rstrip("/")
    found = []
    for root, _, files in walk(directory):
        relative_root = root[len(directory):].strip("/")
        found.extend(posixpath.join(relative_root, name) if relative_root else name
                     for name in files)
    return sorted(found)


def move_tree(source, target, commit_files: Iterable[str] = ()) -> None:
    """Moves the folder ``source`` to ``target`` (which must not exist).

    Local: one rename (atomic). Remote: every file copied, ``commit_files`` (relative names)
    last, then ``source`` deleted; see the module docstring for what a reader can rely on.
    """
    source, target = os.fspath(source).rstrip("/"), os.fspath(target).rstrip("/")
    if gfile.exists(target):
        raise FileExistsError(target)
    if not is_remote(source) and not is_remote(target):
        gfile.rename(source, target)
        return
    commit = [name for name in commit_files]
    names = files_below(source)
    ordered = [name for name in names if name not in commit] + [
        name for name in commit if name in names]
    makedirs(target)
    for name in ordered:
        destination = join(target, name)
        parent = os.path.dirname(destination)
        if parent != target:
            makedirs(parent)
        gfile.copy(join(source, name), destination, overwrite=True)
    gfile.rmtree(source)
