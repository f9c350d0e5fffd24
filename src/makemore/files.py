"""Writing files inside a run directory without being redirected, and without half-written files.

Every file makemore writes is either replaced atomically (a temporary file with an unpredictable
name created exclusively in the same directory, fsync, then rename, which replaces a symbolic link
rather than following it) or opened for appending with O_NOFOLLOW, so a link planted in a run
directory cannot send a write anywhere else.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import MakemoreError


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise MakemoreError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise MakemoreError(f"cannot write {path}: {e.strerror}; the previous file is left as it was") from None


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
