"""Private files and directories: 0700 directories and 0600 files, from creation on, under any umask.

chatcli keeps conversations, input history and (maybe) keys on disk; none of it is anyone else's
business. The rules (docs/architecture.md, "Keys", "File integrity"):

* a directory is created with mode 0700 and a file with `os.open(..., O_CREAT | O_EXCL, 0o600)`,
  so there is never a moment when the object exists with wider permissions (a umask can only
  remove bits from the mode given at creation; the explicit chmod afterwards only corrects a
  umask that removed *owner* bits);
* an existing file or directory is never chmod-ed behind the user's back: when it is readable or
  writable by group or others we warn, naming it, once per path per process (what ssh does,
  minus the refusal);
* whole-file rewrites go through a private temp file in the same directory, fsync, `os.replace`
  and an fsync of the directory, so a crash leaves the old file or the new one, never half.

Everything here is POSIX-minded; on Windows the mode bits mean little and the checks are skipped.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

Warn = Callable[[str], None]

DIR_MODE = 0o700
FILE_MODE = 0o600

_POSIX = os.name == "posix"
_warned: set[str] = set()  # paths already warned about in this process (one warning each)


def stderr_warn(message: str) -> None:
    """The default `warn`: one line on stderr (the CLI may pass a prettier one)."""
    print(f"chatcli: warning: {message}", file=sys.stderr, flush=True)


def ensure_private_dir(path: Path, *, warn: Warn | None = stderr_warn) -> Path:
    """Create `path` (and missing parents) so that `path` itself is 0700; warn if it exists and is open.

    Parents we create get 0700 too: they are ours (e.g. `~/.local/share/chatcli`), and
    `os.makedirs` would give them the umask default. Raises OSError when it cannot be created.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it first: fine, but then it is not ours to chmod
            continue
        if _POSIX:
            os.chmod(directory, DIR_MODE)  # a umask such as 0o277 may have removed owner bits
    if not missing:
        check_private(path, warn=warn)
    return path


def create_private_file(path: Path) -> bool:
    """Create an empty 0600 file if there is none. True if this call created it.

    O_EXCL makes it atomic: two processes racing both succeed, one of them creates the file, and
    nobody ever opens a file somebody else planted with other permissions as if it were new.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    except FileExistsError:
        return False
    try:
        if _POSIX:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def too_open(path: Path) -> int | None:
    """The file's permission bits when group or others have any access, else None (also if missing)."""
    if not _POSIX:
        return None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def check_private(path: Path, *, warn: Warn | None = stderr_warn) -> bool:
    """Warn (once per path) when `path` is accessible to group or others. True if it is private."""
    mode = too_open(path)
    if mode is None:
        return True
    key = str(Path(path).absolute())
    if warn is not None and key not in _warned:
        _warned.add(key)
        fix = "700" if Path(path).is_dir() else "600"
        warn(f"{path} is accessible to other users (mode {mode:04o}); run: chmod {fix} '{path}'")
    return False


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run a block with umask 077, for files created by code we do not control (SQLite's -wal/-shm).

    The umask is process-wide: keep the block short (it is meant for start-up, not for threads).
    """
    if not _POSIX:
        yield
        return
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def write_private(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace `path` atomically with `data`, as a 0600 file (the old file, if any, is kept on failure)."""
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    # mkstemp creates the file with O_EXCL and mode 0600 regardless of the umask.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    if not _POSIX:
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
