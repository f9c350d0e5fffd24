"""Writing files inside a run directory without being redirected, and without half-written files.

Every file makemore writes is either replaced atomically (a temporary file with an unpredictable
name created exclusively in the same directory, fsync, then rename, which replaces a symbolic link
rather than following it) or opened for appending with O_NOFOLLOW, so a link planted in a run
directory cannot send a write anywhere else.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import MakemoreError


@contextmanager
def _replacing(path: Path):
    """A new file opened for writing, which replaces `path` only once it is whole and on disk."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise MakemoreError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise MakemoreError(f"cannot write {path}: {e.strerror}; the previous file is left as it was") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    with _replacing(Path(path)) as f:
        f.write(payload)


def atomic_copy(source: Path, path: Path, chunk: int = 1 << 24) -> str:
    """Copy source to path (replaced atomically); returns the SHA-256 of the bytes copied."""
    digest = hashlib.sha256()
    try:
        src = open(source, "rb")
    except OSError as e:
        raise MakemoreError(f"cannot read input file {source}: {e.strerror}") from None
    with src, _replacing(Path(path)) as out:
        while block := src.read(chunk):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def open_append(path: Path):
    """A text file opened for appending; refuses a symbolic link, a FIFO or anything not a regular file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise MakemoreError(
                f"{path} is a symbolic link; makemore writes only regular files in a run directory"
            ) from None
        raise MakemoreError(f"cannot write {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MakemoreError(f"{path} is not a regular file; makemore writes only regular files in a run directory")
    return os.fdopen(fd, "a", encoding="utf-8")


def check_owner(directory: Path) -> None:
    """A run directory someone else owns could be changed under us: refuse it."""
    owner = directory.stat().st_uid
    if owner != os.geteuid():
        raise MakemoreError(f"run directory {directory} belongs to another user (uid {owner}); choose another -o")
