"""Files only their owner may read: the user store and the session secret."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def keep_private(path: Path) -> None:
    """Tighten ``path`` to mode 0600 when others could read it (and say so)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    try:
        path.chmod(0o600)
    except OSError as exc:
        log.warning("%s is readable by others (mode %o) and stays so: %s", path, mode, exc)
    else:
        log.warning("%s was readable by others (mode %o): now 0600", path, mode)
