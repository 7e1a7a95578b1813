"""Writing files and directories safely: publish atomically, never replace what leapscreen did not write.

* :func:`check_replaceable` - a target may be replaced only when it is missing, an empty directory
  or a leapscreen model directory;
* :func:`target_lock` - one writer per target at a time (a lock file beside it; stale locks of dead
  processes are taken over);
* :func:`publish_directory` - swap a fully written sibling directory into place: at every instant
  the target holds the old or the new content, never neither;
* :func:`publish_file` - the same for a single file written through a uniquely named temp file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from leapscreen.errors import InputError

MODEL_META_FILE = "leapscreen_model.json"
MODEL_FORMAT = "leapscreen.LEAP"
_RENAME_EXCHANGE = 2
_HELD: set[str] = set()  # lock files this process holds (target_lock is re-entrant)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(directory: bool) -> int:
    """The permissions a new file / directory gets from the user's umask (0o777 / 0o666 base)."""
    return (0o777 if directory else 0o666) & ~_umask()


def is_model_directory(path: Path) -> bool:
    """True when ``path`` is a directory holding a leapscreen model JSON (format leapscreen.LEAP)."""
    meta = Path(path) / MODEL_META_FILE
    if not meta.is_file():
        return False
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == MODEL_FORMAT


def check_replaceable(target: Path, option: str = "--out") -> None:
    """Refuse a target that leapscreen may not replace: only a model directory or an empty one.

    Raises
    ------
    InputError
        When ``target`` is a file, a link, or a directory that holds anything but a leapscreen model.
    """
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise InputError(
            f"{option} exists and is not a directory; leapscreen replaces only a model directory "
            "it wrote (or an empty directory)",
            path=target,
            fix=f"choose another {option}",
        )
    if is_model_directory(target):
        return
    entries = sorted(p.name for p in target.iterdir())
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise InputError(
            f"{option} is a directory that does not hold a leapscreen model "
            f"({len(entries)} entries: {shown}); --overwrite never deletes other files",
            path=target,
            fix=f"choose a new or empty {option} directory (nothing was changed)",
        )


# ------------------------------------------------------------------------------------- locking


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: a hidden sibling ``.NAME.lock``."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_is_stale(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    except OSError:
        return False
    parts = text.split()
    try:
        pid = int(parts[0])
    except (IndexError, ValueError):
        return True  # half-written or foreign content: nobody can be holding it meaningfully
    host = parts[1] if len(parts) > 1 else socket.gethostname()
    return host == socket.gethostname() and not _pid_alive(pid)


@contextlib.contextmanager
def target_lock(target: Path, option: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on ``target`` (a lock file beside it) for the duration of the block.

    A second writer gets an :class:`InputError` naming the running process. A lock left by a
    process that no longer runs (same host) is taken over. The lock file is removed on exit.
    Re-entrant within one process (the CLI holds the lock around fitting; ``save_model`` may take
    it again around the publish).
    """
    path = lock_path(target)
    key = str(path.resolve())
    if key in _HELD:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_is_stale(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                remove_stale_temps(target)  # what the dead writer left half-written
                recover(target)
                continue
            try:
                holder = path.read_text(encoding="utf-8").split()[0]
            except (OSError, IndexError):
                holder = "?"
            raise InputError(
                f"another leapscreen process (pid {holder}) is writing {option} right now",
                path=target,
                fix=f"wait for it to finish or choose another {option}; if no such process "
                f"runs, delete the lock file {path}",
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {socket.gethostname()}\n")
        break
    else:
        raise InputError(
            f"cannot take the lock file {path}", path=target, fix="remove the lock file by hand"
        )
    _HELD.add(key)
    try:
        yield path
    finally:
        _HELD.discard(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ------------------------------------------------------------------------------------ publish

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}$")  # tempfile.mkdtemp(prefix=".NAME.")
_MODEL_FILES = re.compile(r"^(arrays\.npz|leapscreen_model\.json|text_\d{3}\.txt)$")


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove half-written model temp dirs of ``target`` left by a killed writer.

    Only hidden siblings named like ``save_model``'s temp dirs (``.NAME.xxxxxxxx``) that hold
    nothing but model files are removed; anything else is left alone. Call it only while holding
    the lock of ``target`` (no live writer).
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.iterdir():
        m = _TEMP_NAME.match(p.name)
        if not m or m.group("name") != target.name or p.is_symlink() or not p.is_dir():
            continue
        entries = list(p.iterdir())
        if all(e.is_file() and _MODEL_FILES.match(e.name) for e in entries):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd = -100
    res = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def backup_path(target: Path) -> Path:
    """Where the rename fallback parks the old directory while swapping."""
    target = Path(target)
    return target.with_name(f".{target.name}.old")


def recover(target: Path) -> None:
    """Undo an interrupted rename-fallback swap: an old model parked beside a missing target."""
    target = Path(target)
    backup = backup_path(target)
    if backup.is_dir() and not target.exists() and is_model_directory(backup):
        backup.rename(target)


def publish_directory(
    tmp: Path, target: Path, *, _remove: Callable[[Path], None] | None = None
) -> None:
    """Move the fully written directory ``tmp`` to ``target``, replacing an existing ``target``.

    The target may be replaced only when :func:`check_replaceable` allows it (a leapscreen model
    directory or an empty directory). On Linux the two directories are exchanged in one atomic
    step; elsewhere a rename pair is used and undone on failure (and :func:`recover` restores the
    old model after a hard kill between the two renames). ``tmp`` gets the user's normal
    permissions (umask) first, not ``tempfile.mkdtemp``'s 0700.
    """
    tmp, target = Path(tmp), Path(target)
    remove = _remove or (lambda p: shutil.rmtree(p, ignore_errors=True))
    os.chmod(tmp, default_mode(directory=True))
    recover(target)
    check_replaceable(target)
    if not target.exists():
        tmp.rename(target)
        return
    if not any(target.iterdir()):
        os.rmdir(target)
        tmp.rename(target)
        return
    if _exchange(tmp, target):
        remove(tmp)  # tmp now holds the old model; the target already holds the new one
        return
    backup = backup_path(target)
    remove(backup)
    target.rename(backup)
    try:
        tmp.rename(target)
    except BaseException:
        backup.rename(target)
        raise
    remove(backup)


def unique_temp_file(target: Path) -> Path:
    """A new, uniquely named hidden file in the target's directory (for :func:`publish_file`)."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


def publish_file(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the user's normal file permissions and rename it onto ``target`` (atomic)."""
    tmp, target = Path(tmp), Path(target)
    mode = default_mode(directory=False)
    if target.exists():
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(target.stat().st_mode)
    os.chmod(tmp, mode)
    os.replace(tmp, target)


def refuse_existing(
    path: Path | str,
    overwrite: bool,
    *,
    what: str = "output file",
    fix: str = "choose another --out or pass --overwrite",
    directory: bool = False,
) -> Path:
    """Refuse to replace an existing ``path`` unless ``overwrite``; refuse a file / directory mix-up.

    The one check every writer of leapscreen makes before writing anything.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(
            f"the {what} exists; leapscreen never overwrites unless asked (refusing to overwrite it)",
            path=path,
            fix=fix,
        )
    if path.exists() and path.is_dir() != directory:
        expected = "a directory" if directory else "a file name"
        found = "a file" if directory else "a directory"
        raise InputError(f"the {what} path is {found}", path=path, fix=f"give {expected}")
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a synced temporary file and a rename.

    The target is either left as it was or holds the whole text; the temporary file is removed
    if anything fails. Mode 0o644, as the reports have always been written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
