"""``fastnn download``: fetch a data set's official files, verify them, and unpack them safely.

Every file is streamed to a temporary file next to its destination while its sha256 and md5 are
computed, checked against the registry, and only then renamed into place (an interrupted or
corrupted download never leaves a file that looks complete). Tar archives are checked member
by member (no absolute paths, no ``..``, no links or devices) and extracted with tarfile's
``data`` filter where Python provides it, into a temporary folder that is renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from fastnn._npz import current_umask
from fastnn._progress import progress
from fastnn.data._errors import DatasetError
from fastnn.data.registry import (
    Download,
    file_digest,
    find_dataset,
    get_data_dir,
    get_dataset_info,
    verify_dataset,
)

__all__ = ["download", "fetch_file", "safe_extract"]

_CHUNK = 1 << 20


def _url_for(entry: Download, mirror: str | None) -> str:
    if not mirror:
        return entry.url
    return mirror.rstrip("/") + "/" + entry.filename


def _check(entry: Download, url: str, sha256: str, md5: str, size: int) -> None:
    if not entry.sha256 and not entry.md5:
        return
    if sha256 in entry.sha256 or md5 in entry.md5:
        return
    expected = [f"sha256 {d}" for d in entry.sha256] + [f"md5 {d}" for d in entry.md5]
    size_note = (
        f" ({size} bytes, expected {entry.size})" if entry.size and size != entry.size else ""
    )
    raise DatasetError(
        f"{url}: checksum mismatch for {entry.filename}{size_note}: sha256 is {sha256}, "
        f"expected {' or '.join(expected)}; the download was discarded"
    )


def fetch_file(
    entry: Download,
    dest_dir: str | os.PathLike,
    *,
    mirror: str | None = None,
    show_progress: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download one registry file into ``dest_dir``, verified, via a temp file and a rename.

    Parameters
    ----------
    entry : Download
        The registry entry (file name, URL, digests, size).
    dest_dir : path-like
        Destination folder (created if needed).
    mirror : str, optional
        Base URL that replaces the official one: the file is fetched from
        ``<mirror>/<filename>`` (``file://`` URLs work, for offline copies).
    show_progress : bool, optional
        Progress bar on stderr; default: only when stderr is a terminal.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    DatasetError
        The transfer failed or the checksum does not match (the partial file is removed).
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    url = _url_for(entry, mirror)
    dest = dest_dir / entry.filename
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    size = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fastnn-download"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else entry.size
            bar = progress(total=total, desc=entry.filename, enabled=show_progress, unit="B")
            try:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    sha256.update(chunk)
                    md5.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        _check(entry, url, sha256.hexdigest(), md5.hexdigest(), size)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, dest)  # atomic on one file system: dest is complete or absent
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, DatasetError):
            raise
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"{url}: download of {entry.filename} failed ({reason})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _already_valid(path: Path, entry: Download) -> bool:
    if not path.is_file() or not (entry.sha256 or entry.md5):
        return False
    if entry.sha256 and file_digest(path, "sha256") in entry.sha256:
        return True
    return bool(entry.md5) and file_digest(path, "md5") in entry.md5


def _check_members(archive: Path, tar: tarfile.TarFile) -> None:
    """Refuse members that could write outside the destination or are not plain files/dirs."""
    for member in tar.getmembers():
        name = member.name
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
            raise DatasetError(
                f"{archive}: unsafe archive member {name!r}: absolute path or '..' component "
                "(path traversal); nothing was extracted"
            )
        if not (member.isfile() or member.isdir()):
            raise DatasetError(
                f"{archive}: unsafe archive member {name!r}: links and special files are not "
                "allowed; nothing was extracted"
            )


def safe_extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Extract a tar archive into ``dest_dir`` without letting it write anywhere else.

    Members are extracted into a temporary folder inside ``dest_dir`` and each top-level entry
    is then renamed into place (replacing an older copy), so readers never see half a data set.

    Parameters
    ----------
    archive : path-like
        The ``.tar`` / ``.tar.gz`` file.
    dest_dir : path-like
        Where its top-level entries end up.

    Returns
    -------
    list of Path
        The top-level entries created in ``dest_dir``.

    Raises
    ------
    DatasetError
        The archive is corrupt or has an unsafe member (absolute path, ``..``, link, device).
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                _check_members(archive, tar)
                if hasattr(tarfile, "data_filter"):  # Python 3.12, 3.11.4+, 3.10.12+
                    tar.extractall(staging, filter="data")
                else:  # members were vetted above
                    tar.extractall(staging)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{archive}: corrupt or truncated archive ({exc})") from exc
        created = []
        for entry in sorted(staging.iterdir()):
            target = dest_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    mirror: str | None = None,
    force: bool = False,
    keep_archive: bool = False,
    show_progress: bool | None = None,
) -> Path:
    """Download data set ``name`` into the data directory and verify it.

    Parameters
    ----------
    name : {"fashion-mnist", "cifar10"}
        The data set.
    data_dir : path-like, optional
        Data directory; default :func:`fastnn.data.get_data_dir` (``$FASTNN_DATA`` or
        ``~/.fastnn/data``). Files land in the data set's subfolder
        (``fashion-mnist/``, ``cifar-10-batches-py/``).
    mirror : str, optional
        Base URL replacing the official host (``https://...``, ``file:///...``).
    force : bool
        Download even when a complete, verified copy is already there.
    keep_archive : bool
        Keep a downloaded tar archive after extracting it.
    show_progress : bool, optional
        Progress bar; default only when stderr is a terminal.

    Returns
    -------
    Path
        The folder holding the data set.

    Raises
    ------
    DatasetError
        A download failed, a checksum did not match, or an archive is corrupt or unsafe.
    ValueError
        Unknown data set, or one that cannot be downloaded (``"sample"`` ships with fastnn).
    """
    info = get_dataset_info(name)
    if not info.downloads:
        raise ValueError(f"dataset {info.name!r} ships inside fastnn; there is nothing to download")
    data_dir = Path(data_dir).expanduser() if data_dir is not None else get_data_dir()
    folder = data_dir / info.folder
    if not force and folder.is_dir():
        try:
            verify_dataset(info.name, folder)
            return folder
        except DatasetError:
            pass  # incomplete or corrupt: fetch again
    target = data_dir / info.download_subdir
    for entry in info.downloads:
        existing = target / entry.filename
        if not force and not entry.extract and _already_valid(existing, entry):
            continue  # resume: files that arrived intact in an earlier run are kept
        path = fetch_file(entry, target, mirror=mirror, show_progress=show_progress)
        if entry.extract:
            safe_extract(path, target)
            if not keep_archive:
                path.unlink()
    found = find_dataset(info.name, data_dir)
    verify_dataset(info.name, found)
    return found
