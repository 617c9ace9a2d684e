"""Files that hold faces or templates are private: folders 0700, files 0600.

Every database, index, sidecar, thumbnail, key and kept-photo file faceprint writes goes
through these helpers, whoever creates it (the CLI, the server, a library run), whatever
the process umask.  Existing files that are more open are tightened when faceprint opens
them (and left alone, with a warning, when they belong to someone else).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["FILE_MODE", "DIR_MODE", "private_dir", "private_file", "tighten"]

FILE_MODE = 0o600
DIR_MODE = 0o700
logger = logging.getLogger("faceprint")


def private_dir(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and missing parents) as 0700; an existing folder is left as it is
    (it may be a shared parent such as the user's home), except one faceprint created."""
    folder = Path(folder)
    if not folder.exists():
        missing = []
        p = folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                os.mkdir(d, DIR_MODE)
            except FileExistsError:
                pass
            os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask
    return folder


def tighten(path: str | os.PathLike[str], mode: int = FILE_MODE) -> None:
    """Make an existing file ``mode`` (default 0600) if it is more open and ours."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_IMODE(st.st_mode) & ~mode:
        if st.st_uid == os.geteuid():
            os.chmod(path, mode)
        else:
            logger.warning("%s is readable by others and not ours to change (mode %o)", path, stat.S_IMODE(st.st_mode))


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` exists as a 0600 file in a private folder (created 0700 when missing)
    before a library such as SQLite opens it; an existing file is tightened."""
    path = Path(path)
    if str(path.parent):
        private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)
        os.chmod(path, FILE_MODE)
    return path
