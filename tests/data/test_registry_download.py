"""Registry lookup, checksum verification, `fastnn download` over file:// URLs, `fastnn datasets`."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from fastnn.cli import main
from fastnn.data import (
    DATASETS,
    DatasetError,
    find_dataset,
    get_data_dir,
    load_CIFAR10,
    load_dataset,
    search_locations,
)
from fastnn.data.download import download, safe_extract
from fastnn.data.registry import DataFile, Download, file_digest, verify_file

FASHION_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture
def no_home_data(tmp_path, monkeypatch):
    """Isolate from the machine: empty HOME, no FASTNN_DATA, no system folders."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    for name in ("fashion-mnist", "cifar10"):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], system_dirs=()))
    return home


@pytest.fixture
def fashion_registry(samples_dir, monkeypatch):
    """Point the fashion-mnist entry's digests at the committed sample files."""
    folder = samples_dir / "fashion-mnist"
    files = tuple(DataFile(f, sha256=(file_digest(folder / f),)) for f in FASHION_FILES)
    downloads = tuple(
        Download(f.name, "https://invalid.example/" + f.name, sha256=f.sha256) for f in files
    )
    entry = dataclasses.replace(DATASETS["fashion-mnist"], files=files, downloads=downloads)
    monkeypatch.setitem(DATASETS, "fashion-mnist", entry)
    return folder


def _tar_gz(path: Path, members: dict[str, bytes], *, extra=None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            tar.addfile(extra)
    return path


@pytest.fixture
def cifar_archive(samples_dir, tmp_path, monkeypatch):
    """A cifar-10-python.tar.gz built from the committed sample, registered with its digests."""
    src = samples_dir / "cifar-10-batches-py"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    members = {f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in sorted(src.iterdir())}
    archive = _tar_gz(mirror / "cifar-10-python.tar.gz", members)
    entry = dataclasses.replace(
        DATASETS["cifar10"],
        downloads=(
            Download(
                "cifar-10-python.tar.gz",
                archive.as_uri(),
                sha256=(file_digest(archive),),
                md5=(file_digest(archive, "md5"),),
                extract=True,
            ),
        ),
    )
    monkeypatch.setitem(DATASETS, "cifar10", entry)
    return archive


# ---------------------------------------------------------------- registry and search


def test_data_dir_env_and_default(tmp_path, no_home_data, monkeypatch):
    assert get_data_dir() == no_home_data / ".fastnn" / "data"
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "d"))
    assert get_data_dir() == tmp_path / "d"


def test_registry_entries():
    fm = DATASETS["fashion-mnist"]
    assert [f.name for f in fm.files] == FASHION_FILES
    assert all(len(f.sha256[0]) == 64 and len(f.md5[0]) == 32 for f in fm.files)
    assert "/usr/share/datasets/fashion-mnist" in fm.system_dirs
    cifar = DATASETS["cifar10"].downloads[0]
    assert cifar.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert cifar.md5 == ("c58f30108f718f92721af3b95e74349a",)
    assert cifar.sha256 == ("6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",)


def test_find_both_cifar_layouts(samples_dir, tmp_path, no_home_data, monkeypatch):
    # Layout 1: <data>/cifar-10-batches-py (tests/samples itself).
    monkeypatch.setenv("FASTNN_DATA", str(samples_dir))
    assert find_dataset("cifar10") == samples_dir / "cifar-10-batches-py"
    # Layout 2: <data>/cifar10-subset/cifar-10-batches-py (../shared/data).
    data = tmp_path / "data"
    shutil.copytree(
        samples_dir / "cifar-10-batches-py", data / "cifar10-subset" / "cifar-10-batches-py"
    )
    monkeypatch.setenv("FASTNN_DATA", str(data))
    assert find_dataset("cifar10") == data / "cifar10-subset" / "cifar-10-batches-py"
    # root= may be the data directory or the folder itself.
    assert find_dataset("cifar10", data) == data / "cifar10-subset" / "cifar-10-batches-py"
    assert (
        find_dataset("cifar10", samples_dir / "cifar-10-batches-py")
        == samples_dir / "cifar-10-batches-py"
    )


def test_home_default_and_system_dirs(samples_dir, tmp_path, no_home_data, monkeypatch):
    target = no_home_data / ".fastnn" / "data" / "fashion-mnist"
    assert search_locations("fashion-mnist")[0] == target
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    shutil.copytree(samples_dir / "fashion-mnist", system)
    monkeypatch.setitem(
        DATASETS, "fashion-mnist",
        dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(system),)),
    )  # fmt: skip
    assert find_dataset("fashion-mnist") == system  # found in the system folder
    shutil.copytree(samples_dir / "fashion-mnist", target)
    assert find_dataset("fashion-mnist") == target  # the data directory comes first


def test_missing_names_most_complete_folder(samples_dir, tmp_path):
    partial = tmp_path / "fashion-mnist"
    partial.mkdir()
    shutil.copy(samples_dir / "fashion-mnist" / "train-images-idx3-ubyte.gz", partial)
    with pytest.raises(
        DatasetError, match=r"fashion-mnist/train-labels-idx1-ubyte\.gz: file not found"
    ):
        find_dataset("fashion-mnist", tmp_path)


def test_verify_file_checksum_mismatch(samples_dir, tmp_path):
    src = samples_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    spec = DataFile(src.name, sha256=(file_digest(src),))
    verify_file(src, spec)  # passes
    bad = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[20] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(
        DatasetError, match=rf"{bad.name}: checksum mismatch: sha256 is [0-9a-f]{{64}}"
    ):
        verify_file(bad, spec)
    with pytest.raises(DatasetError, match="file not found"):
        verify_file(tmp_path / "nope.gz", spec)


def test_verify_raw_file(samples_dir, tmp_path):
    src = samples_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(src.read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    good = DataFile(src.name, raw_name="t10k-labels-idx1-ubyte",
                    raw_sha256=(hashlib.sha256(raw).hexdigest(),))  # fmt: skip
    verify_file(tmp_path / "t10k-labels-idx1-ubyte", good)
    wrong = dataclasses.replace(good, raw_sha256=("0" * 64,))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        verify_file(tmp_path / "t10k-labels-idx1-ubyte", wrong)


# ---------------------------------------------------------------- downloads over file://


def test_download_fashion_file_url(fashion_registry, tmp_path):
    data = tmp_path / "data"
    folder = download("fashion-mnist", data, mirror=fashion_registry.as_uri(), show_progress=True)
    assert folder == data / "fashion-mnist"
    for name in FASHION_FILES:
        assert (folder / name).read_bytes() == (fashion_registry / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(FASHION_FILES)  # no temp files
    d = load_dataset("fashion-mnist", data)
    assert d["X_train"].shape == (300, 28, 28, 1)
    # Already present and verified: nothing is fetched (this mirror does not exist).
    assert download("fashion-mnist", data, mirror=(tmp_path / "nowhere").as_uri()) == folder


def test_download_checksum_mismatch(fashion_registry, tmp_path, monkeypatch):
    entry = DATASETS["fashion-mnist"]
    bad = dataclasses.replace(entry.downloads[1], sha256=("0" * 64,))
    monkeypatch.setitem(
        DATASETS, "fashion-mnist",
        dataclasses.replace(entry, downloads=(entry.downloads[0], bad) + entry.downloads[2:]),
    )  # fmt: skip
    data = tmp_path / "data"
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz: checksum mismatch .*"
                       r"expected sha256 0{64}; the download was discarded"):  # fmt: skip
        download("fashion-mnist", data, mirror=fashion_registry.as_uri())
    left = sorted(p.name for p in (data / "fashion-mnist").iterdir())
    assert left == ["train-images-idx3-ubyte.gz"]  # the verified file only; no partial file


def test_download_resumes_with_verified_files(fashion_registry, tmp_path):
    data = tmp_path / "data"
    folder = data / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in FASHION_FILES[:3]:
        shutil.copy(fashion_registry / name, folder)
    # Only the fourth file is fetched: a mirror holding just that one is enough.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(fashion_registry / FASHION_FILES[3], mirror)
    assert download("fashion-mnist", data, mirror=mirror.as_uri()) == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(FASHION_FILES)


def test_download_missing_source(fashion_registry, tmp_path):
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz failed"):
        download("fashion-mnist", tmp_path, mirror=(tmp_path / "nowhere").as_uri())


def test_download_cifar_archive(cifar_archive, samples_dir, tmp_path):
    data = tmp_path / "data"
    folder = download("cifar10", data)  # the registry URL is the file:// archive
    assert folder == data / "cifar-10-batches-py"
    assert not (data / "cifar-10-python.tar.gz").exists()  # archive removed after unpacking
    assert [p.name for p in data.iterdir()] == ["cifar-10-batches-py"]  # no staging leftovers
    Xtr, ytr, _, _ = load_CIFAR10(folder)
    Xs, ys, _, _ = load_CIFAR10(samples_dir / "cifar-10-batches-py")
    np.testing.assert_array_equal(Xtr, Xs)
    np.testing.assert_array_equal(ytr, ys)
    download("cifar10", tmp_path / "other", force=True, keep_archive=True)
    assert (tmp_path / "other" / "cifar-10-python.tar.gz").is_file()


def test_download_cifar_archive_bad_checksum(cifar_archive, tmp_path, monkeypatch):
    entry = DATASETS["cifar10"]
    bad = dataclasses.replace(entry.downloads[0], sha256=("f" * 64,), md5=("0" * 32,))
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(entry, downloads=(bad,)))
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz: checksum mismatch"):
        download("cifar10", tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_download_sample_is_refused():
    with pytest.raises(ValueError, match="ships inside fastnn"):
        download("sample")


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/evil.txt", "cifar-10-batches-py/../../evil.txt"]
)
def test_safe_extract_rejects_traversal(tmp_path, name):
    archive = _tar_gz(tmp_path / "a.tar.gz", {"ok/file": b"1", name: b"evil"})
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="unsafe archive member .*path traversal"):
        safe_extract(archive, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert list(dest.iterdir()) == []  # nothing extracted, staging removed


def test_safe_extract_rejects_links(tmp_path):
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tar_gz(tmp_path / "a.tar.gz", {"x": b"1"}, extra=link)
    with pytest.raises(DatasetError, match="links and special files are not allowed"):
        safe_extract(archive, tmp_path / "dest")


def test_safe_extract_corrupt_archive(tmp_path):
    archive = _tar_gz(tmp_path / "a.tar.gz", {"d/f": bytes(range(256)) * 400})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DatasetError, match="cut.tar.gz: corrupt or truncated archive"):
        safe_extract(cut, tmp_path / "dest")


# ---------------------------------------------------------------- CLI


def test_cli_download_and_datasets(cifar_archive, tmp_path, capsys, no_home_data, monkeypatch):
    data = tmp_path / "data"
    assert main(["download", "cifar10", "--dir", str(data), "--quiet"]) == 0
    assert "cifar10: ready in" in capsys.readouterr().out
    monkeypatch.setenv("FASTNN_DATA", str(data))
    assert main(["datasets", "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"found:   {data / 'cifar-10-batches-py'}" in out
    assert "fashion-mnist:" in out and "found:   no (searched" in out
    assert "sample:" in out and "(checksums OK)" in out
    assert main(["download", "--list"]) == 0
    assert "cifar-10-python.tar.gz" in capsys.readouterr().out


def test_cli_download_mirror_and_errors(fashion_registry, tmp_path, capsys):
    data = tmp_path / "data"
    rc = main(
        ["download", "fashion-mnist", "--dir", str(data), "--mirror", fashion_registry.as_uri()]
    )
    assert rc == 0 and (data / "fashion-mnist" / FASHION_FILES[0]).is_file()
    rc = main(["download", "fashion-mnist", "--dir", str(tmp_path / "x"),
               "--mirror", (tmp_path / "nowhere").as_uri()])  # fmt: skip
    assert rc == 2
    assert "fastnn download: error:" in capsys.readouterr().err
    assert main(["download"]) == 2
    assert "give a data set to download" in capsys.readouterr().err
