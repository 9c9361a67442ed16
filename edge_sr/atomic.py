"""Writes that matter go to a temp file beside the target and are renamed into place."""

import json
import os
import tempfile
from pathlib import Path

from edge_sr.errors import EdgeSRError


def make_folder(path):
    """Create folder `path` (and its parents) if needed; a file in the way or no permission is an EdgeSRError."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgeSRError(
            f"cannot create the folder {path} ({error.strerror or error}); choose another place"
        ) from None


def atomic_write(path, write):
    """Call `write(tmp_path)`, then rename the temp file to `path`: readers never see half a file. A write the
    file system refuses (read-only, full, `path` a folder) is an EdgeSRError."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
    except OSError as error:
        raise EdgeSRError(f"cannot write {path} ({error.strerror or error}); choose a writable place") from None
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the permissions a plain open() would
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise EdgeSRError(f"cannot write {path} ({error.strerror or error}); choose a writable place") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def write_json(path, data):
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))
