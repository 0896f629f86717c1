"""Shared download plumbing for the data/ scripts: resumable HTTP(S) downloads with progress,
published-checksum verification, safe archive extraction and moving results into place.

Every file is written as `<name>.part` and renamed only once complete and verified, so a path
without the suffix is always whole. An interrupted download leaves the `.part` file; the next run
asks the server for the rest (HTTP Range) instead of starting again. Outputs that already exist are
refused unless the caller passes overwrite=True (the scripts' --overwrite).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import http.client
import os
import pathlib
import re
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import Callable, Iterator, Mapping, Optional, TextIO

from electra_tf import progress
from electra_tf.errors import UserError
from electra_tf.progress import format_duration

CHUNK_BYTES = 1 << 20
USER_AGENT = "electra_tf-data/0.1 (+https://github.com/google-research/electra)"
HASH_NAMES = ("md5", "sha1", "sha256")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def _megabytes(count: float) -> str:
    return f"{count / 1e6:,.1f} MB"


class Progress:
    """Bytes done of a total, with the rate since this run started and an ETA, on one line.

    Redraws in place on a terminal; elsewhere (logs, pipes) prints a new line at most every
    `interval` seconds so a multi-hour download does not flood the log.
    """

    def __init__(
        self,
        label: str,
        total: Optional[int],
        done: int = 0,
        stream: Optional[TextIO] = None,
        interval: Optional[float] = None,
    ):
        self.label = label
        self.total = total
        self.done = done
        self._start_done = done
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval if interval is not None else (0.5 if self._tty else 10.0)
        self._start = time.monotonic()
        self._last = 0.0
        self._shown: Optional[int] = None

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (self.done - self._start_done) / elapsed
        text = f"{self.label}: {_megabytes(self.done)}"
        if self.total:
            text += f" of {_megabytes(self.total)} ({100.0 * self.done / self.total:.1f}%)"
        text += f", {_megabytes(rate)}/s"
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            text += f", ETA {format_duration(eta)}"
        return text

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._write(self.line())

    def finish(self) -> None:
        if self._shown != self.done:
            self._write(self.line())
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _write(self, text: str) -> None:
        self._shown = self.done
        if self._tty:
            self._stream.write("\r" + text + "\x1b[K")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


# One line on stderr: the data scripts keep stdout free.
log = functools.partial(progress.log, stderr=True)


def file_digest(path: pathlib.Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(
    path: pathlib.Path, size: Optional[int], checksums: Mapping[str, str], shown_as: Optional[pathlib.Path] = None
) -> None:
    """Raises UserError when the file's size or any known checksum differs."""
    name = shown_as or path
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise UserError(
            f"{name}: {actual_size:,} bytes, but the published size is {size:,}; "
            f"delete {path} and run again to download it afresh (or pass --overwrite)"
        )
    for algorithm, expected in checksums.items():
        actual = file_digest(path, algorithm)
        if actual.lower() != expected.lower():
            raise UserError(
                f"{name}: {algorithm} checksum mismatch (got {actual}, published "
                f"{expected}); the file is kept as {path}: delete it and run again, "
                "or pass --overwrite to download it afresh"
            )


def _server_md5(headers) -> Optional[str]:
    """Google Cloud Storage publishes each object's MD5 in x-goog-hash (base64)."""
    for value in headers.get_all("x-goog-hash") or []:
        for part in value.split(","):
            key, _, encoded = part.strip().partition("=")
            if key == "md5" and encoded:
                try:
                    return base64.b64decode(encoded).hex()
                except ValueError:
                    return None
    return None


_RETRYABLE = (
    urllib.error.URLError,
    ConnectionError,
    socket.timeout,
    TimeoutError,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
)


def fetch(
    url: str,
    destination: str | os.PathLike,
    *,
    size: Optional[int] = None,
    checksums: Optional[Mapping[str, str]] = None,
    overwrite: bool = False,
    reuse: bool = False,
    attempts: int = 5,
    timeout: float = 60.0,
    retry_wait: float = 2.0,
    progress_interval: Optional[float] = None,
    label: Optional[str] = None,
) -> pathlib.Path:
    """Downloads url to destination, resuming `<destination>.part` if an earlier run left one.

    size/checksums are the published values ({"md5": hex, ...}); an MD5 the server publishes in
    x-goog-hash is checked too. An existing destination is an error unless overwrite (download
    again) or reuse (keep it if it verifies; with overwrite too, download again if it does not).
    At most `attempts` requests are made; each one after a dropped connection asks only for the
    missing bytes.
    """
    destination = pathlib.Path(destination)
    partial = destination.with_name(destination.name + ".part")
    checksums = dict(checksums or {})
    unknown = set(checksums) - set(HASH_NAMES)
    if unknown:
        raise ValueError(f"unsupported checksum {sorted(unknown)}")
    if destination.exists():
        if reuse:
            try:
                verify(destination, size, checksums)
                log(f"{destination}: already downloaded and verified")
                return destination
            except UserError:
                if not overwrite:
                    raise
        elif not overwrite:
            raise UserError(f"{destination}: already exists; pass --overwrite to download it again")
    if overwrite and partial.exists():
        partial.unlink()  # --overwrite asks for a fresh copy, not the rest of an old one
    destination.parent.mkdir(parents=True, exist_ok=True)
    label = label or destination.name
    total: Optional[int] = size
    server_md5: Optional[str] = None
    failures: list[str] = []
    for attempt in range(1, attempts + 1):
        offset = partial.stat().st_size if partial.exists() else 0
        if total is not None and offset == total:
            break
        if total is not None and offset > total:
            raise UserError(
                f"{partial}: {offset:,} bytes, more than the {total:,} of {url}; delete it or pass --overwrite"
            )
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset:
                match = _UNSATISFIED_RANGE.search(error.headers.get("Content-Range", ""))
                error.close()
                remote = int(match.group(1)) if match else None
                if remote == offset:  # the previous run had everything but the rename
                    total = remote
                    break
                raise UserError(
                    f"{partial}: the server refuses to resume at byte {offset:,}"
                    f"{f' of {remote:,}' if remote is not None else ''}; delete it "
                    "or pass --overwrite"
                ) from None
            error.close()
            if error.code in (408, 429, 500, 502, 503, 504) and attempt < attempts:
                failures.append(f"HTTP {error.code}")
                time.sleep(retry_wait * attempt)
                continue
            raise UserError(
                f"{url}: HTTP {error.code} {error.reason}; check the URL (or --base_url) and try again later"
            ) from None
        except _RETRYABLE as error:
            failures.append(str(getattr(error, "reason", error)))
            if attempt == attempts:
                break
            time.sleep(retry_wait * attempt)
            continue
        with response:
            status = response.status
            if status == 206:
                match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    raise UserError(
                        f"{url}: the server answered a resume request with the "
                        f"wrong range ({response.headers.get('Content-Range')}); "
                        f"delete {partial} or pass --overwrite"
                    )
                remote = None if match.group(3) == "*" else int(match.group(3))
                mode = "ab"
            else:
                # 200: the server ignored Range (or there was nothing to resume), so the body is
                # the whole file and any partial copy is replaced.
                length = response.headers.get("Content-Length")
                remote = int(length) if length and length.isdigit() else None
                offset, mode = 0, "wb"
            if remote is not None:
                if size is not None and remote != size:
                    raise UserError(
                        f"{url}: the server has {remote:,} bytes, but the published "
                        f"size is {size:,}; the file has changed or --base_url "
                        "points elsewhere"
                    )
                total = remote
            server_md5 = server_md5 or _server_md5(response.headers)
            progress = Progress(label, total, offset, interval=progress_interval)
            try:
                with open(partial, mode) as handle:
                    for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                        handle.write(block)
                        progress.update(len(block))
            except _RETRYABLE as error:
                failures.append(str(getattr(error, "reason", error)) or type(error).__name__)
                progress.finish()
                if attempt < attempts:
                    time.sleep(retry_wait * attempt)
                continue
            progress.finish()
        done = partial.stat().st_size
        if total is None or done == total:
            total = done
            break
        failures.append(f"connection closed at byte {done:,} of {total:,}")
        if attempt < attempts:
            time.sleep(retry_wait * attempt)
    else:
        done = partial.stat().st_size if partial.exists() else 0
        if total is None or done != total:
            raise UserError(
                f"{url}: download incomplete after {attempts} attempts "
                f"({'; '.join(failures[-3:])}); {partial} holds {done:,} bytes: run "
                "again to resume"
            )
    if not partial.exists() or (total is not None and partial.stat().st_size != total):
        done = partial.stat().st_size if partial.exists() else 0
        raise UserError(
            f"{url}: download failed ({'; '.join(failures[-3:]) or 'no data'}); "
            f"{partial} holds {done:,} bytes: run again to resume"
        )
    if server_md5 and "md5" not in checksums:
        checksums["md5"] = server_md5
    verify(partial, size, checksums, shown_as=destination)
    os.replace(partial, destination)
    return destination


def fetch_text(
    url: str, *, attempts: int = 5, timeout: float = 60.0, retry_wait: float = 2.0, limit: int = 1 << 24
) -> str:
    """A small text file (a checksum list) read into memory; at most `limit` bytes."""
    failures = []
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read(limit).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            error.close()
            if error.code not in (408, 429, 500, 502, 503, 504) or attempt == attempts:
                raise UserError(f"{url}: HTTP {error.code} {error.reason}; check the URL (or --base_url)") from None
            failures.append(f"HTTP {error.code}")
        except _RETRYABLE as error:
            failures.append(str(getattr(error, "reason", error)))
        if attempt < attempts:
            time.sleep(retry_wait * attempt)
    raise UserError(f"{url}: could not be read after {attempts} attempts ({'; '.join(failures[-3:])})")


def join_url(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/")] + [urllib.parse.quote(part.strip("/"), safe="/%?=&") for part in parts])


# ---------------------------------------------------------------------------------------------
# Outputs: refused when present, built beside the destination and renamed into place.


def refuse_existing(path: pathlib.Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; pass --overwrite to replace it (or choose another --output_dir)")


@contextlib.contextmanager
def staged(final: pathlib.Path, overwrite: bool) -> Iterator[pathlib.Path]:
    """Yields a fresh temporary path beside `final`; on success it replaces `final`.

    A failure removes only the temporary path, so `final` is either the old or the new result,
    never a half-written one.
    """
    refuse_existing(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    if final.exists():  # only reachable with overwrite
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(temporary, final)
        _remove(old)
    else:
        os.replace(temporary, final)


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def safe_relative(name: str, archive: pathlib.Path) -> pathlib.PurePosixPath:
    """An archive member's path, refused if it would land outside the extraction folder."""
    relative = pathlib.PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UserError(
            f"{archive}: member {name!r} points outside the archive's folder; "
            "refusing to extract it (is this the official archive?)"
        )
    return relative


def extract_zip(archive: pathlib.Path, target: pathlib.Path) -> list[pathlib.Path]:
    """Extracts the regular files of a zip under target; returns their paths."""
    written = []
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                if member.is_dir():
                    continue
                relative = safe_relative(member.filename, archive)
                if relative.parts[0] == "__MACOSX":
                    continue
                path = target.joinpath(*relative.parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(path, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK_BYTES)
                written.append(path)
    except zipfile.BadZipFile as error:
        raise UserError(
            f"{archive}: not a valid zip archive ({error}); delete it and run again to download it afresh"
        ) from None
    return written


def iter_tar_files(fileobj, archive_name: str, mode: str = "r|*") -> Iterator[tuple[tarfile.TarInfo, object]]:
    """Streams (member, file object) for each regular file of a tar (read once, front to back)."""
    try:
        with tarfile.open(fileobj=fileobj, mode=mode) as bundle:
            for member in bundle:
                if not member.isfile():
                    continue
                safe_relative(member.name, pathlib.Path(archive_name))
                yield member, bundle.extractfile(member)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UserError(
            f"{archive_name}: not a readable tar archive ({error}); delete it and run again to download it afresh"
        ) from None


# ---------------------------------------------------------------------------------------------
# Command lines


def common_arguments(parser: argparse.ArgumentParser, default_base_url: str, archives: bool = True) -> None:
    parser.add_argument("--output_dir", required=True, type=pathlib.Path, help="Where the finished layout goes.")
    if archives:
        parser.add_argument(
            "--download_dir",
            type=pathlib.Path,
            default=None,
            help="Where archives are kept (default: <output_dir>/downloads); a "
            "verified archive already there is reused.",
        )
    parser.add_argument(
        "--base_url",
        default=default_base_url,
        help=f"Server to download from (default {default_base_url}); point it at a mirror or a local test server.",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace outputs that already exist (and discard partial downloads)."
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=5,
        help="Requests per file before giving up (each resumes where the last stopped).",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="Seconds without data before a request counts as failed."
    )


def download_dir(args) -> pathlib.Path:
    return args.download_dir or (args.output_dir / "downloads")


def fetch_options(args) -> dict:
    if args.attempts < 1:
        raise UserError("--attempts must be at least 1")
    return dict(attempts=args.attempts, timeout=args.timeout)


def run_main(main: Callable[[Optional[list[str]]], object], argv: Optional[list[str]] = None) -> None:
    """Runs a script's main: a UserError is one line on stderr and exit status 2."""
    program = pathlib.Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "data"
    try:
        main(argv)
    except UserError as error:
        sys.stderr.write(f"{program}: error: {error}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{program}: interrupted; run the same command again to resume\n")
        sys.exit(130)
