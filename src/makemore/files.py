"""Every file makemore writes, written without being redirected and without half-written files.

There is one writer. A file is either replaced atomically (`atomic_write_bytes`, `atomic_copy`: a
temporary file with an unpredictable name created exclusively, O_NOFOLLOW, in the same folder;
fsync; then rename, which replaces a symbolic link rather than following it) or opened for
appending with O_NOFOLLOW (`open_append`). So a link planted where makemore writes cannot send a
write anywhere else: the link itself is replaced and its target is left untouched.

What stands at the destination is looked at first (lstat): a regular file or a symbolic link is
replaced; a directory, a device (/dev/null), a FIFO or a socket is refused with one line, never
renamed over. A new file gets the permissions a plain open() gives it (0666 less the umask); a
file that is replaced keeps its own. Folders makemore creates inside a run directory
(DIR/diagnostics) are made with `make_folder`, which refuses one that is a symbolic link.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

from .errors import MakemoreError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, for a message: 'a FIFO', 'a directory', ..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _existing(path: Path) -> os.stat_result | None:
    """What stands at path (not following a link): None if nothing; refused unless a regular file or a link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise MakemoreError(f"cannot write {path}: {e.strerror}") from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        return st
    kind = file_kind(st.st_mode)
    raise MakemoreError(f"{path} is {kind}; makemore replaces only regular files")


def check_replaceable(path: Path) -> None:
    """Refuse early a destination that the writer would refuse (a directory, device, FIFO, socket)."""
    _existing(Path(path))


def _temporary(path: Path, mode: int) -> tuple[int, Path]:
    """A new file beside path, created exclusively under an unpredictable name; never a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name")


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system lets a folder be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _replacing(path: Path):
    """A new file opened for writing, which replaces `path` only once it is whole and on disk."""
    before = _existing(path)
    # 0666 through the umask (and a folder's default ACL), as open() creates a file; a file that is
    # replaced keeps its permission bits, as open() over an existing file would
    keep = stat.S_IMODE(before.st_mode) & 0o777 if before is not None and stat.S_ISREG(before.st_mode) else None
    try:
        fd, tmp = _temporary(path, 0o666)
    except OSError as e:
        raise MakemoreError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if keep is not None:
                os.fchmod(f.fileno(), keep)
            yield f
            f.flush()
            os.fsync(f.fileno())
        _existing(path)  # again, just before the rename: never over a device, FIFO or folder
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise MakemoreError(f"cannot write {path}: {e.strerror}; the previous file is left as it was") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


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
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
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


def make_folder(path: Path) -> Path:
    """A folder makemore keeps inside a run directory (DIR/diagnostics): made if missing (0777 less
    the umask), refused if it is a symbolic link or not a directory, so writes into it stay inside."""
    path = Path(path)
    try:
        os.mkdir(path, 0o777)
    except FileExistsError:
        pass
    except OSError as e:
        raise MakemoreError(f"cannot create {path}: {e.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise MakemoreError(
                f"{path} is a symbolic link or not a directory; makemore writes only into a folder of its own there"
            ) from None
        raise MakemoreError(f"cannot open {path}: {e.strerror}") from None
    os.close(fd)
    return path


def check_owner(directory: Path) -> None:
    """A run directory someone else owns could be changed under us: refuse it."""
    owner = directory.stat().st_uid
    if owner != os.geteuid():
        raise MakemoreError(f"run directory {directory} belongs to another user (uid {owner}); choose another -o")
