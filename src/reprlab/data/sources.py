"""Where the canonical datasets (Fashion-MNIST, MNIST, USPS, SVHN, MNIST-M) live, and how to fetch them.

Files are looked up, in order, in (see :func:`candidate_dirs`):

1. an explicit ``data_dir`` (``data_dir/<name>``, then ``data_dir`` itself),
2. the ``REPRLAB_DATA`` environment variable (same two forms),
3. the user cache ``$XDG_CACHE_HOME/reprlab/<name>`` (default ``~/.cache/reprlab/<name>``),
4. ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` package).

A torchvision-style ``<base>/MNIST/raw`` or ``<base>/FashionMNIST/raw`` folder is also
accepted, and IDX files may be gzipped or not. Found files are trusted and verified by
parsing when loaded (``verify=True`` also checks checksums; a recompressed ``.gz``, such
as Debian's, passes when its decompressed payload matches). Missing files are downloaded
into the user cache when allowed, checked against their md5 and written atomically, so a
failed or mismatching download leaves nothing behind. MNIST-M is downloaded as its one
archive ``mnist_m.tar.gz``, which is read without extracting it.

Example:
    >>> from reprlab.data.sources import locate
    >>> files = locate("mnist", "test", data_dir="~/datasets", download=False)  # doctest: +SKIP
    >>> sorted(files)  # doctest: +SKIP
    ['images', 'labels']
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from reprlab.base.errors import DataError
from reprlab.base.io import atomic_write

logger = logging.getLogger(__name__)

ENV_VAR = "REPRLAB_DATA"
SYSTEM_DIR = Path("/usr/share/datasets")
SPLITS = ("train", "test")
_TIMEOUT_S = 60.0
_USER_AGENT = "reprlab (+https://pypi.org/project/reprlab)"


@dataclass(frozen=True)
class RemoteFile:
    """One distribution file: canonical name, checksums, size and download URLs (mirrors in order).

    ``payload_md5`` is the md5 of the decompressed content of a ``.gz`` file: it identifies a
    recompressed copy (other gzip headers) or an uncompressed one. ``aliases`` are other local
    names accepted for the file (e.g. the uncompressed name).
    """

    name: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    urls: tuple[str, ...] = ()
    payload_md5: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def local_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True, eq=False)
class DatasetFiles:
    """The files that make up a dataset: ``splits[split][role]`` plus an optional all-splits ``fallback``.

    ``fallback`` (role ``fallback_role``) is a single file holding every split in another
    packaging; it is used when the primary files of both splits are not together in one folder.
    """

    name: str
    reader: str  # "idx", "usps", "svhn" or "mnist-m": the key of the reader in reprlab.data.registry
    splits: dict[str, dict[str, RemoteFile]]
    class_names: tuple[str, ...]
    homepage: str
    license: str
    fallback: RemoteFile | None = None
    fallback_role: str = ""
    dir_aliases: tuple[str, ...] = field(default=())
    note: str = ""  # appended to the "not found" fix (e.g. a layout with folders)

    def files(self, split: str) -> dict[str, RemoteFile]:
        """The primary files of ``split`` by role."""
        return self.splits[split]


def _idx(name: str, mirrors: tuple[str, ...], md5: str, sha256: str, size: int, payload_md5: str) -> RemoteFile:
    return RemoteFile(name, md5=md5, sha256=sha256, size=size, urls=tuple(m + name for m in mirrors),
                      payload_md5=payload_md5, aliases=(name[:-3], name[:-3].replace("-idx", ".idx")))


_FASHION = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_LIBSVM = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
_SVHN = "http://ufldl.stanford.edu/housenumbers/"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))

DATASETS: dict[str, DatasetFiles] = {
    "fashion-mnist": DatasetFiles(
        name="fashion-mnist", reader="idx",
        splits={
            "train": {
                "images": _idx("train-images-idx3-ubyte.gz", _FASHION, "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                               "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880,
                               "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                "labels": _idx("train-labels-idx1-ubyte.gz", _FASHION, "25c81989df183df01b3e8a0aad5dffbe",
                               "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515,
                               "9018921c3c673c538a1fc5bad174d6f9"),
            },
            "test": {
                "images": _idx("t10k-images-idx3-ubyte.gz", _FASHION, "bef4ecab320f06d8554ea6380940ec79",
                               "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102,
                               "8181f5470baa50b63fa0f6fddb340f0a"),
                "labels": _idx("t10k-labels-idx1-ubyte.gz", _FASHION, "bb300cfdad3c16e7a12a480ee83cd310",
                               "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148,
                               "15d484375f8d13e6eb1aabb0c3f46965"),
            },
        },
        class_names=FASHION_MNIST_CLASSES,
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT, Copyright 2017 Zalando SE",
        dir_aliases=("FashionMNIST/raw", "fashion_mnist"),
    ),
    "mnist": DatasetFiles(
        name="mnist", reader="idx",
        splits={
            "train": {
                "images": _idx("train-images-idx3-ubyte.gz", _MNIST, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422,
                               "6bbc9ace898e44ae57da46a324031adb"),
                "labels": _idx("train-labels-idx1-ubyte.gz", _MNIST, "d53e105ee54ea40749a09fcbcd1e9432",
                               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881,
                               "a25bea736e30d166cdddb491f175f624"),
            },
            "test": {
                "images": _idx("t10k-images-idx3-ubyte.gz", _MNIST, "9fb629c4189551a2d022fa330f9573f3",
                               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877,
                               "2646ac647ad5339dbf082846283269ea"),
                "labels": _idx("t10k-labels-idx1-ubyte.gz", _MNIST, "ec29112dd5afa0611ce80d1b7f02629c",
                               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542,
                               "27ae3e4e09519cfbb04c329615203637"),
            },
        },
        class_names=DIGIT_CLASSES,
        homepage="http://yann.lecun.com/exdb/mnist/",
        license="CC BY-SA 3.0, Yann LeCun and Corinna Cortes",
        dir_aliases=("MNIST/raw",),
    ),
    "usps": DatasetFiles(
        name="usps", reader="usps",
        splits={
            "train": {"libsvm": RemoteFile(
                "usps.bz2", md5="ec16c51db3855ca6c91edd34d0e9b197",
                sha256="3771e9dd6ba685185f89867b6e249233dd74652389f263963b3b741e994b034f", size=6579383,
                urls=(_LIBSVM + "usps.bz2",), aliases=("usps",))},
            "test": {"libsvm": RemoteFile(
                "usps.t.bz2", md5="8ea070ee2aca1ac39742fdd1ef5ed118",
                sha256="a9c0164e797d60142a50604917f0baa604f326e9a689698763793fa5d12ffc4e", size=1831726,
                urls=(_LIBSVM + "usps.t.bz2",), aliases=("usps.t",))},
        },
        class_names=DIGIT_CLASSES,
        homepage="https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html#usps",
        license="not stated by the distributors",
        fallback=RemoteFile("usps.h5", md5="355df6b942eb766252e0340bc019b0b9",
                            sha256="734f88c541104a956d88be2c95d03b4a463ffd74ccc2ba9c80841fb98e3fcb36",
                            size=2913522),
        fallback_role="h5",
        dir_aliases=("USPS",),
    ),
    # md5: torchvision's SVHN.split_list; sizes: datasets-mila/datasets--svhn annex keys
    "svhn": DatasetFiles(
        name="svhn", reader="svhn",
        splits={
            "train": {"mat": RemoteFile("train_32x32.mat", md5="e26dedcc434d2e4c54c9b2d4a06d8373", size=182040794,
                                        urls=(_SVHN + "train_32x32.mat",))},
            "test": {"mat": RemoteFile("test_32x32.mat", md5="eb5a983be6a315427106f1b164d9cef3", size=64275384,
                                       urls=(_SVHN + "test_32x32.mat",))},
        },
        class_names=DIGIT_CLASSES,
        homepage="http://ufldl.stanford.edu/housenumbers/",
        license="non-commercial use only (see the homepage)",
        dir_aliases=("SVHN",),
    ),
    # the labels file locates a split; its PNGs lie in the folder beside it (mnist_m_<split>/)
    "mnist-m": DatasetFiles(
        name="mnist-m", reader="mnist-m",
        splits={
            "train": {"labels": RemoteFile("mnist_m_train_labels.txt")},
            "test": {"labels": RemoteFile("mnist_m_test_labels.txt")},
        },
        # the authors' archive (the Google Drive id cited by DANN repos) and pytorch-adapt's mirror; md5 published by
        # pytorch-adapt (MNISTM.md5) and DeepMind's dataset handler for the same Google Drive id
        fallback=RemoteFile("mnist_m.tar.gz", md5="859df31c91afe82e80e5012ba928f279",
                            urls=("https://drive.google.com/uc?export=download&id=0B_tExHiYS-0veklUZHFYT19KYjg&confirm=t",
                                  "https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi")),
        fallback_role="archive",
        class_names=DIGIT_CLASSES,
        homepage="http://yaroslav.ganin.net/ (Ganin & Lempitsky, DANN)",
        license="not stated by the distributors (derived from MNIST and BSDS500)",
        dir_aliases=("mnist-m/mnist_m", "mnist_m"),
        note="with the folder of PNGs it lists beside it, mnist_m_<split>/, as inside the original mnist_m.tar.gz; "
             "its extracted mnist_m/ folder is searched too",
    ),
}


def get_spec(name: str) -> DatasetFiles:
    """The :class:`DatasetFiles` of a canonical dataset, or :class:`DataError`."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"no file specification for dataset {name!r}",
                        fix=f"use one of {', '.join(DATASETS)}") from None


def _check_split(spec: DatasetFiles, split: str) -> None:
    if split not in spec.splits:
        raise DataError(f"dataset {spec.name!r} has no split {split!r}",
                        fix=f"use one of {', '.join(spec.splits)}")


def cache_dir(name: str | None = None) -> Path:
    """The user cache folder ``$XDG_CACHE_HOME/reprlab[/<name>]`` (default ``~/.cache/reprlab``).

    Example:
        >>> cache_dir("mnist").name
        'mnist'
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = Path(base) / "reprlab"
    return root / name if name else root


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for dataset ``name``, in priority order (existing or not, no duplicates).

    Example:
        >>> [str(p) for p in candidate_dirs("mnist", "/data")][:2]  # doctest: +SKIP
        ['/data/mnist', '/data']
    """
    aliases = DATASETS[name].dir_aliases if name in DATASETS else ()
    dirs: list[Path] = []
    for base in (data_dir, os.environ.get(ENV_VAR) or None):
        if base is None or str(base) == "":
            continue
        base = Path(base).expanduser()
        dirs += [base / name, base, *(base / a for a in aliases)]
    dirs += [cache_dir(name), SYSTEM_DIR / name]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _find_file(folder: Path, file: RemoteFile) -> Path | None:
    for local in file.local_names:
        candidate = folder / local
        if candidate.is_file():
            return candidate
    return None


def _find_in(folder: Path, spec: DatasetFiles, split: str) -> dict[str, Path] | None:
    """The files of ``split`` in ``folder`` (one packaging, chosen consistently for all splits)."""
    if not folder.is_dir():
        return None
    primary = {s: {role: _find_file(folder, f) for role, f in files.items()} for s, files in spec.splits.items()}
    complete = {s: all(p is not None for p in found.values()) for s, found in primary.items()}
    if all(complete.values()):
        return primary[split]  # type: ignore[return-value]
    if spec.fallback is not None:
        fb = _find_file(folder, spec.fallback)
        if fb is not None:
            return {spec.fallback_role: fb}
    if complete[split]:
        return primary[split]  # type: ignore[return-value]
    return None


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _payload_md5(path: Path) -> str | None:
    """md5 of the decompressed content of a gzip file (or of a plain file); ``None`` if unreadable."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, file: RemoteFile) -> None:
    """Check a found file against the known checksums; raise :class:`DataError` on a mismatch.

    A file whose md5 differs but whose decompressed payload matches ``payload_md5`` (a
    recompressed or uncompressed copy, e.g. Debian's) passes. Files with no known checksum
    pass (they are verified by parsing when loaded).

    Example:
        >>> verify_file("mnist/t10k-labels-idx1-ubyte.gz",
        ...             DATASETS["mnist"].files("test")["labels"])  # doctest: +SKIP
    """
    path = Path(path)
    if file.md5 is None and file.payload_md5 is None:
        return
    if file.md5 is not None and _hash_file(path, "md5") == file.md5:
        return
    if file.payload_md5 is not None and _payload_md5(path) == file.payload_md5:
        logger.info("%s: differs from the canonical %s but its decompressed content matches", path, file.name)
        return
    known = file.md5 if file.md5 is not None else f"{file.payload_md5} (decompressed)"
    where = f" from {file.urls[0]}" if file.urls else ""
    raise DataError(f"{path}: checksum mismatch: expected md5 {known} for {file.name}; the file is corrupt, "
                    "truncated, or a different version", fix=f"delete it and re-download {file.name}{where}")


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (tests replace this function to avoid the network)."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(dest, "wb") as fh:
        shutil.copyfileobj(response, fh, 1 << 20)


class _ChecksumMismatch(Exception):
    pass


def download_file(file: RemoteFile, dest_dir: str | os.PathLike) -> Path:
    """Download ``file`` into ``dest_dir``, trying each mirror; verify md5/sha256; write atomically.

    Raises :class:`DataError` listing every failed attempt when no mirror gives a file with the
    expected checksum; nothing (not even a partial file) is left behind then.

    Example:
        >>> download_file(DATASETS["mnist"].files("test")["labels"], cache_dir("mnist"))  # doctest: +SKIP
        PosixPath('/home/me/.cache/reprlab/mnist/t10k-labels-idx1-ubyte.gz')
    """
    dest = Path(dest_dir) / file.name
    if not file.urls:
        raise DataError(f"{file.name} has no known download URL", fix=f"place {file.name} in {dest.parent}")
    attempts: list[str] = []
    for url in file.urls:
        def write(tmp: str, url: str = url) -> None:
            _fetch(url, Path(tmp))
            if file.size is not None and os.path.getsize(tmp) != file.size:
                raise _ChecksumMismatch(f"got {os.path.getsize(tmp):,} bytes, expected {file.size:,}")
            if file.md5 is not None and (got := _hash_file(Path(tmp), "md5")) != file.md5:
                raise _ChecksumMismatch(f"md5 {got}, expected {file.md5}")
            if file.sha256 is not None and (got := _hash_file(Path(tmp), "sha256")) != file.sha256:
                raise _ChecksumMismatch(f"sha256 {got}, expected {file.sha256}")

        logger.info("downloading %s -> %s", url, dest)
        try:
            atomic_write(dest, write)
        except _ChecksumMismatch as exc:
            attempts.append(f"{url}: checksum mismatch ({exc})")
            logger.warning("download of %s failed its checksum: %s", url, exc)
            continue
        except (OSError, http.client.HTTPException, ValueError) as exc:
            attempts.append(f"{url}: {exc}")
            logger.warning("download of %s failed: %s", url, exc)
            continue
        logger.info("downloaded and verified %s", dest)
        return dest
    raise DataError(f"could not download {file.name}: " + "; ".join(attempts),
                    fix=f"download it yourself into {dest.parent}/ (or into <dir>/{dest.parent.name}/ and pass "
                        f"--data-dir <dir> / set {ENV_VAR}=<dir>)")


def _not_found(spec: DatasetFiles, split: str, dirs: list[Path], data_dir: str | os.PathLike | None,
               reason: str) -> DataError:
    files = spec.files(split)
    if data_dir is not None:
        target = Path(data_dir).expanduser() / spec.name
    elif os.environ.get(ENV_VAR):
        target = Path(os.environ[ENV_VAR]).expanduser() / spec.name
    else:
        target = cache_dir(spec.name)
    listing = ", ".join(f"{f.name} ({f.urls[0]})" if f.urls else f.name for f in files.values())
    alt = (f" (or {spec.fallback.name}, which holds every split)" if spec.fallback is not None else "")
    note = f" ({spec.note})" if spec.note else ""
    manual = "" if _download_plan(spec, split) else "no download: place the files: "
    searched = ", ".join(str(d) for d in dirs)
    return DataError(f"{spec.name} {split} split not found{reason}; searched: {searched}",
                     fix=f"{manual}put {listing}{alt} into {target}/{note}, or pass --data-dir DIR / set "
                         f"{ENV_VAR}=DIR where DIR/{spec.name}/ holds those files")


def _download_plan(spec: DatasetFiles, split: str) -> dict[str, RemoteFile] | None:
    """The files to download for ``split`` by role: its own files when each has a URL, else the
    all-splits ``fallback`` when it has one; ``None`` when nothing can be downloaded."""
    files = spec.files(split)
    if all(f.urls for f in files.values()):
        return files
    if spec.fallback is not None and spec.fallback.urls:
        return {spec.fallback_role: spec.fallback}
    return None


def locate(name: str, split: str, data_dir: str | os.PathLike | None = None, download: bool = True, *,
           verify: bool = False) -> dict[str, Path]:
    """Paths of the files of ``split`` of a canonical dataset, keyed by role.

    Roles are ``images``/``labels`` (IDX datasets), ``libsvm`` or ``h5`` (USPS), ``mat`` (SVHN),
    ``labels`` (MNIST-M: the labels file beside the folder of PNGs) or ``archive`` (MNIST-M's
    ``mnist_m.tar.gz``, read without extracting). When not
    found anywhere, the files are downloaded into :func:`cache_dir` if ``download``; otherwise
    (or if the download fails) a :class:`DataError` says which files to put where. With
    ``verify=True`` found files are checked with :func:`verify_file`.

    Example:
        >>> locate("fashion-mnist", "train", download=False)  # doctest: +SKIP
        {'images': PosixPath('.../train-images-idx3-ubyte.gz'), 'labels': PosixPath('.../train-labels-idx1-ubyte.gz')}
    """
    spec = get_spec(name)
    _check_split(spec, split)
    dirs = candidate_dirs(name, data_dir)
    for folder in dirs:
        found = _find_in(folder, spec, split)
        if found is not None:
            logger.info("%s %s: using %s", name, split, ", ".join(str(p) for p in found.values()))
            if spec.fallback_role in found:
                logger.info("%s: %s holds every split and is used for all of them (so train and test share one "
                            "preprocessing) because %s are not all present there", folder, spec.fallback.name,
                            " and ".join(f.name for fs in spec.splits.values() for f in fs.values()))
            if verify:
                for role, path in found.items():
                    verify_file(path, spec.fallback if role == spec.fallback_role else spec.files(split)[role])
            return found
    if not download:
        raise _not_found(spec, split, dirs, data_dir, " and downloading is disabled")
    plan = _download_plan(spec, split)
    if plan is None:
        raise _not_found(spec, split, dirs, data_dir, f" and {name} has no automatic download")
    target = cache_dir(name)
    result: dict[str, Path] = {}
    try:
        for role, file in plan.items():
            existing = _find_file(target, file)
            result[role] = existing if existing is not None else download_file(file, target)
    except DataError as exc:
        raise _not_found(spec, split, dirs, data_dir, f" locally and the download failed ({exc.problem})") from exc
    return result


def describe(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Where each known dataset was found: one dict per dataset with ``name``, ``status``, ``where``, ``splits``.

    ``status`` is ``"found"``, ``"partial"`` (some splits), ``"not found"`` or ``"embedded"``;
    ``where`` is the folder(s) holding the files, or ``"not found"``; ``splits`` maps each split
    to its files (role -> path string) or ``"not found"``; ``searched`` lists the folders tried.

    Example:
        >>> [d["name"] for d in describe()][:5]
        ['fashion-mnist', 'mnist', 'usps', 'svhn', 'mnist-m']
    """
    out: list[dict] = []
    for name, spec in DATASETS.items():
        dirs = candidate_dirs(name, data_dir)
        splits: dict[str, dict[str, str] | str] = {}
        locations: list[str] = []
        for split in spec.splits:
            found = next((f for f in (_find_in(d, spec, split) for d in dirs) if f is not None), None)
            if found is None:
                splits[split] = "not found"
                continue
            splits[split] = {role: str(p) for role, p in found.items()}
            for p in found.values():
                if str(p.parent) not in locations:
                    locations.append(str(p.parent))
        n_found = sum(isinstance(v, dict) for v in splits.values())
        status = "found" if n_found == len(splits) else "partial" if n_found else "not found"
        out.append({"name": name, "status": status, "where": ", ".join(locations) or "not found",
                    "splits": splits, "searched": [str(d) for d in dirs]})
    from reprlab.data.embedded import SAMPLE_PATH

    out.append({"name": "fashion-mnist-sample", "status": "embedded" if SAMPLE_PATH.is_file() else "not found",
                "where": str(SAMPLE_PATH) if SAMPLE_PATH.is_file() else "not found",
                "splits": {s: {"npz": str(SAMPLE_PATH)} for s in SPLITS}, "searched": [str(SAMPLE_PATH.parent)]})
    return out
