"""Writing files and directories safely: publish atomically, never replace what leapscreen did not write."""

from __future__ import annotations

import shutil
from pathlib import Path


def publish_directory(tmp: Path, target: Path) -> None:
    """Move the fully written directory ``tmp`` to ``target``, replacing an existing ``target``."""
    if target.exists():
        backup = target.with_name(f".{target.name}.old")
        shutil.rmtree(backup, ignore_errors=True)
        target.rename(backup)
        tmp.rename(target)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        tmp.rename(target)
