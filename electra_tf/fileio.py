"""File access for every user path: tf.io.gfile, so gs:// (or any TensorFlow file system) works
wherever a local folder does.

Local paths take the same calls on the OS directly (what gfile's local file system does
anyway): tools such as build_pretraining_data then need no TensorFlow import to read a local
corpus or to refuse a bad flag in one line (importing TensorFlow prints its own log lines), and
reading local text keeps Python's buffered speed. Every path with a scheme goes to tf.io.gfile.

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

import builtins
import fnmatch
import glob as local_glob
import json
import os
import posixpath
import shutil
import sys
import uuid
from typing import Iterable, Iterator, Optional


class _LazyGfile:
    """tf.io.gfile, imported on first use (see the module docstring)."""

    def __getattr__(self, name):
        import tensorflow as tf

        return getattr(tf.io.gfile, name)


gfile = _LazyGfile()


def errors() -> tuple:
    """What reading or writing a user path raises, for ``except fileio.errors():`` (evaluated
    only when an exception is being matched): OSError, plus tf.errors.OpError (NotFoundError,
    PermissionDeniedError, ...) once TensorFlow is loaded, which every remote access does."""
    tf = sys.modules.get("tensorflow")
    return (OSError, tf.errors.OpError) if tf is not None and hasattr(tf, "errors") else (OSError,)


def is_remote(path: str) -> bool:
    """True for a URL-style path (gs://, ram://, s3://, hdfs://...)."""
    return "://" in os.fspath(path)


def fspath(path) -> str:
    """``path`` (a str or os.PathLike) as a string, scheme intact."""
    return os.fspath(path)


def join(path, *parts) -> str:
    """Joins path parts with "/" as plain strings, so a "gs://" or "ram://" prefix survives."""
    return os.path.join(os.fspath(path), *(os.fspath(part) for part in parts))


def abspath(path) -> str:
    """Absolute local paths; remote paths as they are (abspath would mangle "gs://")."""
    path = os.fspath(path)
    return path if is_remote(path) else os.path.abspath(path)


def exists(path) -> bool:
    """True if a file or folder exists at ``path`` (local or remote)."""
    path = os.fspath(path)
    return gfile.exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path) -> bool:
    """True if ``path`` is an existing folder (local or remote)."""
    path = os.fspath(path)
    return gfile.isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path) -> bool:
    """True if ``path`` exists and is not a folder (local or remote)."""
    path = os.fspath(path)
    if is_remote(path):
        return gfile.exists(path) and not gfile.isdir(path)
    return os.path.isfile(path)


def getsize(path) -> int:
    """The size of the file at ``path`` in bytes."""
    path = os.fspath(path)
    return gfile.stat(path).length if is_remote(path) else os.path.getsize(path)


def listdir(path) -> list[str]:
    """The names in folder ``path``, sorted, without the trailing "/" object stores put on sub-folders."""
    path = os.fspath(path)
    if not is_remote(path):
        return sorted(os.listdir(path))
    # Object stores list sub-folders with a trailing slash.
    return sorted({name.rstrip("/") for name in gfile.listdir(path)})


def makedirs(path) -> None:
    """Creates folder ``path`` and its parents; no error if it exists already."""
    path = os.fspath(path)
    if is_remote(path):
        gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path) -> None:
    """Deletes the file at ``path``."""
    path = os.fspath(path)
    if is_remote(path):
        gfile.remove(path)
    else:
        os.remove(path)


def rmtree(path) -> None:
    """Deletes folder ``path`` and everything below it (working around ram://'s undeletable listings)."""
    path = os.fspath(path)
    if not is_remote(path):
        shutil.rmtree(path)
        return
    try:
        gfile.rmtree(path)
    except errors():
        # ram:// lists phantom entries (see files_below) that it then cannot delete: delete
        # the real files, then what is left of the folders.
        for name in files_below(path):
            gfile.remove(join(path, name))
        for root, _, _ in reversed(list(walk(path))):
            try:
                gfile.rmtree(root)
            except errors():
                pass


def rename(source, target, overwrite: bool = False) -> None:
    """Renames a file (or, locally, a folder); atomic locally."""
    source, target = os.fspath(source), os.fspath(target)
    if is_remote(source) or is_remote(target):
        gfile.rename(source, target, overwrite=overwrite)
    elif overwrite:
        os.replace(source, target)
    else:
        if os.path.exists(target):
            raise FileExistsError(target)
        os.rename(source, target)


def walk(path) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk over a local or remote folder: (root, dirs, files) triples, names sorted, top-down."""
    path = os.fspath(path)
    walker = gfile.walk(path) if is_remote(path) else os.walk(path)
    for root, dirs, files in walker:
        dirs[:] = sorted(name.rstrip("/") for name in dirs)
        yield root, dirs, sorted(files)


def glob(pattern, recursive: bool = True) -> list[str]:
    """Matches of ``pattern``; ``**`` matches any depth below a local or remote folder."""
    del recursive  # always, as glob.glob(..., recursive=True)
    pattern = os.fspath(pattern)
    if "**" not in pattern:
        if not is_remote(pattern):
            return sorted(local_glob.glob(pattern))
        return sorted(gfile.glob(pattern))
    base, _, rest = pattern.partition("**")
    rest = rest.lstrip("/")
    base = base.rstrip("/") or "."
    if not isdir(base):
        return []
    found = set()
    for root, _, files in walk(base):
        for name in files:
            relative = (
                posixpath.relpath(join(root, name), base)
                if not is_remote(base)
                else join(root, name)[len(base) :].lstrip("/")
            )
            # "**/" also matches no folder at all.
            candidates = [relative, posixpath.basename(relative)]
            if any(_fnmatch(candidate, rest or "*") for candidate in candidates):
                found.add(join(root, name))
    return sorted(found)


def _fnmatch(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def has_magic(pattern: str) -> bool:
    """True if ``pattern`` contains a glob wildcard (``*``, ``?`` or ``[``)."""
    return any(char in pattern for char in "*?[")


def open(path, mode: str = "r"):  # noqa: A001  (the one file opener of this package)
    """tf.io.gfile.GFile (remote) or the built-in open (local); text modes read and write UTF-8
    with "\\n" line ends and no newline translation, as GFile does."""
    path = os.fspath(path)
    if is_remote(path):
        return gfile.GFile(path, mode)
    if "b" in mode:
        return builtins.open(path, mode)
    return builtins.open(path, mode, encoding="utf-8", newline="")


def read_text(path) -> str:
    """The whole file at ``path``, decoded as UTF-8."""
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")


def read_bytes(path) -> bytes:
    """The whole file at ``path`` as bytes."""
    with open(path, "rb") as handle:
        return handle.read()


def read_json(path):
    """The JSON value in the UTF-8 file at ``path``."""
    return json.loads(read_text(path))


def temporary_name(path, tag: str = "writing") -> str:
    """A sibling of ``path`` that no reader takes for it: hidden, and unique per writer."""
    path = os.fspath(path).rstrip("/")
    return join(os.path.dirname(path), f".{os.path.basename(path)}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_temporaries(path, tag: str = "writing") -> list[str]:
    """Deletes the ``temporary_name(path, tag)`` siblings of ``path`` that killed writers left;
    returns their paths. Call it only where one writer at a time owns ``path``."""
    path = fspath(path).rstrip("/")
    parent, prefix = os.path.dirname(path), f".{os.path.basename(path)}.{tag}-"
    removed = []
    names = [name.rstrip("/") for name in listdir(parent)] if isdir(parent) else []
    for name in names:
        if name.startswith(prefix):
            leftover = join(parent, name)
            if isdir(leftover):
                rmtree(leftover)
            else:
                remove(leftover)
            removed.append(leftover)
    return removed


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
        rename(temporary, path, overwrite=True)
    finally:
        if exists(temporary):
            remove(temporary)


def write_text_atomic(path, text: str) -> None:
    """Writes ``text`` as UTF-8 to ``path`` via a temporary name (see write_bytes_atomic)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, value, indent: Optional[int] = 2, sort_keys: bool = False) -> None:
    """Writes ``value`` as JSON (plus a final newline) to ``path`` via a temporary name."""
    write_text_atomic(path, json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n")


def copy(source, target, overwrite: bool = False) -> None:
    """Copies file ``source`` to ``target``; raises FileExistsError for an existing target unless ``overwrite``."""
    source, target = os.fspath(source), os.fspath(target)
    if is_remote(source) or is_remote(target):
        gfile.copy(source, target, overwrite=overwrite)
        return
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(target)
    shutil.copyfile(source, target)


def files_below(directory) -> list[str]:
    """Every file below ``directory``, as paths relative to it ("/"-separated)."""
    directory = os.fspath(directory).rstrip("/")
    found = []
    for root, _, files in walk(directory):
        relative_root = root[len(directory) :].strip("/")
        # ram:// lists "a.b/x" under "a" too (as ".b"): keep only files that are there.
        found.extend(
            posixpath.join(relative_root, name) if relative_root else name
            for name in files
            if not is_remote(directory) or isfile(join(root, name))
        )
    return sorted(found)


def move_tree(source, target, commit_files: Iterable[str] = (), replace: bool = False) -> None:
    """Moves the folder ``source`` to ``target``.

    Local: one rename (atomic). Remote: every file copied, ``commit_files`` (relative names)
    last, then ``source`` deleted; see the module docstring for what a reader can rely on.

    Args:
      source: the complete folder, written under ``temporary_name(target)``.
      target: where it goes; it must not exist unless ``replace``.
      commit_files: names (relative to the folder) copied last on an object store.
      replace: an existing ``target`` is deleted only once ``source`` is complete, i.e. here.
        Local: the old folder is renamed aside, the new one renamed in, then the old one
        deleted (put back if the second rename fails). Remote, where folders cannot be renamed:
        the old folder's commit files are deleted first (so no reader takes it for complete
        any more), then the rest of it, then the new one is copied in.

    Raises:
      FileExistsError: ``target`` exists and ``replace`` is False.
    """
    source, target = os.fspath(source).rstrip("/"), os.fspath(target).rstrip("/")
    commit = [name for name in commit_files]
    if exists(target):
        if not replace:
            raise FileExistsError(target)
        if not is_remote(source) and not is_remote(target):
            aside = temporary_name(target, "replaced")
            os.rename(target, aside)
            try:
                os.rename(source, target)
            except BaseException:
                os.rename(aside, target)
                raise
            shutil.rmtree(aside)
            return
        for name in commit:
            if exists(join(target, name)):
                remove(join(target, name))
        rmtree(target)
    if not is_remote(source) and not is_remote(target):
        os.rename(source, target)
        return
    names = files_below(source)
    ordered = [name for name in names if name not in commit] + [name for name in commit if name in names]
    makedirs(target)
    for name in ordered:
        destination = join(target, name)
        parent = os.path.dirname(destination)
        if parent != target:
            makedirs(parent)
        copy(join(source, name), destination, overwrite=True)
    rmtree(source)


def normpath(path) -> str:
    """os.path.normpath for local paths; remote paths as they are ("gs://" must keep both "/")."""
    path = os.fspath(path)
    return path if is_remote(path) else os.path.normpath(path)
