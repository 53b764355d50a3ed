"""The dataset registry: which files make up each data set, their checksums, where they come
from, and where fastnn looks for them.

Search order for a data set when no ``root`` is given:

1. the data directory (:func:`get_data_dir`): ``$FASTNN_DATA`` when set, else ``~/.fastnn/data``,
   and inside it each of the data set's candidate subfolders (for CIFAR-10 both
   ``cifar-10-batches-py/`` and ``cifar10-subset/cifar-10-batches-py/``);
2. folders where operating-system packages install the files (Debian/Ubuntu's
   ``dataset-fashion-mnist`` puts Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastnn._validation import check_path
from fastnn.data._classes import CIFAR10_CLASSES, FASHION_MNIST_CLASSES
from fastnn.data._errors import DatasetError

__all__ = [
    "DATASETS",
    "SAMPLE_DIR",
    "DataFile",
    "DatasetInfo",
    "Download",
    "file_digest",
    "find_dataset",
    "get_data_dir",
    "get_dataset_info",
    "locate_file",
    "search_locations",
    "verify_dataset",
    "verify_file",
]

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


@dataclass(frozen=True)
class DataFile:
    """One file of a data set as it sits in the data set's folder.

    A file passes verification when any listed digest matches (several releases of the same
    content exist: e.g. Debian re-compressed the Fashion-MNIST ``.gz`` files, so their bytes
    differ from Zalando's originals while the images are identical). ``raw_name`` is an accepted
    uncompressed alternative, verified against ``raw_sha256``. No digests = existence only.
    """

    name: str
    sha256: tuple[str, ...] = ()
    md5: tuple[str, ...] = ()
    raw_name: str | None = None
    raw_sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class Download:
    """One official archive: fetched from ``url`` (or ``<mirror>/<filename>``), checked against
    any of the digests, then kept as is or (``extract=True``) unpacked as a tar archive."""

    filename: str
    url: str
    sha256: tuple[str, ...] = ()
    md5: tuple[str, ...] = ()
    size: int | None = None
    extract: bool = False


@dataclass(frozen=True)
class DatasetInfo:
    """Everything fastnn knows about one data set."""

    name: str
    title: str
    folder: str  # canonical subfolder of the data directory (where ``fastnn download`` puts it)
    candidates: tuple[str, ...]  # subfolders of a data directory that may hold the files
    files: tuple[DataFile, ...]
    downloads: tuple[Download, ...] = ()
    download_subdir: str = ""  # where downloads go, relative to the data directory
    system_dirs: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    homepage: str = ""
    license: str = ""
    aliases: tuple[str, ...] = field(default=())


_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# sha256: the copies distributed by Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1
# (also ../shared/data in this project); md5: Zalando's originals (the data set's README and
# torchvision); raw_sha256: the decompressed IDX content (identical in both releases).
_FASHION_FILES = (
    DataFile(
        "train-images-idx3-ubyte.gz",
        sha256=("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",),
        md5=("8d4fb7e6c68d591d4c3dfef9ec88bf0d",),
        raw_name="train-images-idx3-ubyte",
        raw_sha256=("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",),
    ),
    DataFile(
        "train-labels-idx1-ubyte.gz",
        sha256=("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",),
        md5=("25c81989df183df01b3e8a0aad5dffbe",),
        raw_name="train-labels-idx1-ubyte",
        raw_sha256=("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",),
    ),
    DataFile(
        "t10k-images-idx3-ubyte.gz",
        sha256=("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",),
        md5=("bef4ecab320f06d8554ea6380940ec79",),
        raw_name="t10k-images-idx3-ubyte",
        raw_sha256=("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",),
    ),
    DataFile(
        "t10k-labels-idx1-ubyte.gz",
        sha256=("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",),
        md5=("bb300cfdad3c16e7a12a480ee83cd310",),
        raw_name="t10k-labels-idx1-ubyte",
        raw_sha256=("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",),
    ),
)

# The sample shipped inside the package (see sample/LICENSE.txt), written reproducibly by
# tests/samples/make_samples.py; digests of the committed files.
_SAMPLE_FILES = (
    DataFile(
        "train-images-idx3-ubyte.gz",
        sha256=("06d2bdc4ebec620314eee85ddeae7181f9690b97c4bbc54f363a6e989f247264",),
    ),
    DataFile(
        "train-labels-idx1-ubyte.gz",
        sha256=("131387379173605d5c5fa9a1fc119c316a2e92c2e40aca9996f7bbe8470f6fa3",),
    ),
    DataFile(
        "t10k-images-idx3-ubyte.gz",
        sha256=("62f23d346ecf5453b7cd91a46dea7b146d0ad4afb5cf5903d46e6485c72f5f48",),
    ),
    DataFile(
        "t10k-labels-idx1-ubyte.gz",
        sha256=("ebf256d3d67b464b6c96356c81c6db2a538387f5dda83fec41a3049eff1eafaa",),
    ),
)

DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando Research): 60,000 + 10,000 28x28 grayscale images",
        folder="fashion-mnist",
        candidates=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
        files=_FASHION_FILES,
        downloads=tuple(
            Download(f.name, _FASHION_URL + f.name, sha256=f.sha256, md5=f.md5)
            for f in _FASHION_FILES
        ),
        download_subdir="fashion-mnist",
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        class_names=FASHION_MNIST_CLASSES,
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT",
        aliases=("fashion_mnist", "fashionmnist", "fmnist"),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        title="CIFAR-10 python version (Krizhevsky 2009): 50,000 + 10,000 32x32 colour images",
        folder="cifar-10-batches-py",
        candidates=(
            "cifar-10-batches-py",
            "cifar10-subset/cifar-10-batches-py",
            "cifar10/cifar-10-batches-py",
            "cifar-10/cifar-10-batches-py",
        ),
        # Batch files carry no digest: subsets of the official batches are legitimate inputs
        # (this project tests on one), so they are checked structurally when loaded instead.
        # batches.meta is optional (class names fall back to the standard ones).
        files=tuple(
            DataFile(n)
            for n in (
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
            )
        ),
        downloads=(
            Download(
                "cifar-10-python.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                sha256=("6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",),
                md5=("c58f30108f718f92721af3b95e74349a",),
                size=170498071,
                extract=True,
            ),
        ),
        download_subdir="",  # the archive unpacks into cifar-10-batches-py/
        class_names=CIFAR10_CLASSES,
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        license="see homepage (research use)",
        aliases=("cifar-10", "cifar_10", "cifar"),
    ),
    "sample": DatasetInfo(
        name="sample",
        title="fastnn's packaged sample: 2,000 + 500 real Fashion-MNIST images (works offline)",
        folder="sample",
        candidates=(),
        files=_SAMPLE_FILES,
        class_names=FASHION_MNIST_CLASSES,
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT (see sample/LICENSE.txt)",
    ),
}


def get_dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name`` (case-insensitive; aliases such as ``"cifar-10"`` work).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` or one of its aliases.

    Returns
    -------
    DatasetInfo
        Files, checksums, downloads and search folders of the data set.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    for info in DATASETS.values():
        if key == info.name or key in info.aliases:
            return info
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def get_data_dir() -> Path:
    """The data directory: ``$FASTNN_DATA`` when set, else ``~/.fastnn/data``.

    It is where ``fastnn download`` stores data sets and the first place searched.

    Returns
    -------
    Path
        The folder (it may not exist yet).
    """
    raw = os.environ.get("FASTNN_DATA")
    if raw:
        return Path(raw).expanduser()
    return Path.home() / ".fastnn" / "data"


def search_locations(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched, in order, for data set ``name``.

    With ``root``: ``root`` itself, then its candidate subfolders. Without: the data directory's
    candidate subfolders, then the system folders (e.g. Debian's package location).

    Parameters
    ----------
    name : str
        The data set (see :func:`get_dataset_info`).
    root : path-like, optional
        A folder given by the user.

    Returns
    -------
    list of Path
        The folders, in search order (they need not exist).
    """
    if root is not None:
        root = check_path(root, "root")
    info = get_dataset_info(name)
    if info.name == "sample":
        return [root] if root is not None else [SAMPLE_DIR]
    if root is not None:
        base = root.expanduser()
        return [base] + [base / c for c in info.candidates]
    base = get_data_dir()
    return [base / c for c in info.candidates] + [Path(d) for d in info.system_dirs]


def locate_file(folder: Path, spec: DataFile) -> Path | None:
    """The path of ``spec`` in ``folder`` (its compressed name first, then ``raw_name``).

    Parameters
    ----------
    folder : Path
        Where to look.
    spec : DataFile
        The file wanted.

    Returns
    -------
    Path or None
        The file, or None when neither name is there.
    """
    for fname in (spec.name, spec.raw_name):
        if fname and (folder / fname).is_file():
            return folder / fname
    return None


def find_dataset(name: str, root: str | os.PathLike | None = None) -> Path:
    """The first folder (see :func:`search_locations`) holding every file of data set ``name``.

    Parameters
    ----------
    name : str
        The data set (see :func:`get_dataset_info`).
    root : path-like, optional
        Look in this folder (and its candidate subfolders) instead of the default places.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    DatasetError
        No complete copy was found. The message names the missing file in the most complete
        folder found (or in the default location), and lists every folder searched.
    """
    info = get_dataset_info(name)
    locations = search_locations(info.name, root)
    best: tuple[int, Path] | None = None
    for folder in locations:
        if not folder.is_dir():
            continue
        present = sum(locate_file(folder, spec) is not None for spec in info.files)
        if present == len(info.files):
            return folder
        if present and (best is None or present > best[0]):
            best = (present, folder)
    folder = best[1] if best else locations[0]
    missing = next(s for s in info.files if locate_file(folder, s) is None)
    searched = ", ".join(str(p) for p in locations)
    hint = (
        "" if info.name == "sample"
        else f"; get it with `fastnn download {info.name}`, or set FASTNN_DATA to the folder "
        "that holds it"
    )  # fmt: skip
    raise DatasetError(
        f"{folder / missing.name}: file not found ({info.name} data set; searched {searched}){hint}"
    )


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks.

    Parameters
    ----------
    path : path-like
        The file.
    algorithm : str
        A :func:`hashlib.new` name (``"sha256"``, ``"md5"``).

    Returns
    -------
    str
        The hexadecimal digest.
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_digests(path: Path, sha256: tuple[str, ...], md5: tuple[str, ...]) -> None:
    if not sha256 and not md5:
        return
    got_sha = file_digest(path, "sha256")
    if got_sha in sha256:
        return
    got_md5 = file_digest(path, "md5") if md5 else None
    if got_md5 in md5:
        return
    expected = [f"sha256 {d}" for d in sha256] + [f"md5 {d}" for d in md5]
    raise DatasetError(
        f"{path}: checksum mismatch: sha256 is {got_sha}"
        + (f" (md5 {got_md5})" if got_md5 else "")
        + f", expected {' or '.join(expected)}; the file is corrupt, incomplete or a different "
        "release: delete it and download it again"
    )


# (path, size, mtime_ns) of files already verified in this process: hashing 30 MB on every
# load would cost more than reading it.
_VERIFIED: set[tuple[str, int, int, DataFile]] = set()


def verify_file(path: str | os.PathLike, spec: DataFile) -> None:
    """Check ``path`` against the digests of ``spec`` (its ``.gz`` or raw digests by name).

    Parameters
    ----------
    path : path-like
        The file.
    spec : DataFile
        Its registry entry.

    Raises
    ------
    DatasetError
        Missing file or checksum mismatch; the message names the file, the digest found and
        the digests expected.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, spec)
    if key in _VERIFIED:
        return
    if spec.raw_name and path.name == spec.raw_name:
        _check_digests(path, spec.raw_sha256, ())
    else:
        _check_digests(path, spec.sha256, spec.md5)
    _VERIFIED.add(key)


def verify_dataset(name: str, folder: str | os.PathLike) -> list[Path]:
    """Verify every file of data set ``name`` in ``folder``.

    Parameters
    ----------
    name : str
        The data set (see :func:`get_dataset_info`).
    folder : path-like
        The folder holding it.

    Returns
    -------
    list of Path
        The verified files.

    Raises
    ------
    DatasetError
        A file is missing or fails its checksum.
    """
    info = get_dataset_info(name)
    folder = Path(folder)
    paths = []
    for spec in info.files:
        path = locate_file(folder, spec)
        if path is None:
            raise DatasetError(f"{folder / spec.name}: file not found")
        verify_file(path, spec)
        paths.append(path)
    return paths
