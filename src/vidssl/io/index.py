"""Per-dataset metadata cache, so a second start does not probe every video again.

The cache is one JSON file: ``{"version": 1, "videos": {key: {"stamp": [size, mtime_ns],
"info": {...}} | {"stamp": ..., "error": reason}}}``. An entry is reused only while the
file's size and modification time are unchanged; unreadable videos are cached as errors so
they are reported, not re-probed, on every start. Keys are paths relative to ``root`` when
given (the cache survives moving the dataset), absolute paths otherwise.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from vidssl.io.base import VideoBackend
from vidssl.io.errors import VideoReadError
from vidssl.io.info import VideoInfo
from vidssl.io.reader import probe

CACHE_VERSION = 1


def file_stamp(path: str) -> list[int]:
    """``[size, mtime_ns]`` of a file (a folder's size is 0: its mtime changes with its files)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise VideoReadError(path, "file does not exist") from None
    return [0 if os.path.isdir(path) else stat.st_size, stat.st_mtime_ns]


class VideoIndex:
    """``path -> VideoInfo`` backed by a JSON cache file (``None``: in memory only)."""

    def __init__(
        self,
        cache_file: str | os.PathLike | None,
        root: str | os.PathLike | None = None,
        backend: str | VideoBackend = "pyav",
    ):
        self.cache_file = None if cache_file is None else os.fspath(cache_file)
        self.root = None if root is None else os.fspath(root)
        self.backend = backend
        self.entries: dict[str, dict] = self._load()
        self.changed = False

    def _load(self) -> dict[str, dict]:
        if self.cache_file is None or not os.path.exists(self.cache_file):
            return {}
        try:
            with open(self.cache_file, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("version") != CACHE_VERSION or not isinstance(data.get("videos"), dict):
                raise ValueError(f"unsupported cache version {data.get('version')!r}")
            return data["videos"]
        except (OSError, ValueError, AttributeError) as exc:
            warnings.warn(f"ignoring video index cache {self.cache_file!r}: {exc}", stacklevel=3)
            return {}

    def key(self, path: str | os.PathLike) -> str:
        path = os.path.abspath(path)
        return os.path.relpath(path, self.root) if self.root is not None else path

    def lookup(self, path: str | os.PathLike) -> VideoInfo | VideoReadError:
        """The cached result when still valid, else probe now (and remember it)."""
        path = os.fspath(path)
        try:
            stamp = file_stamp(path)
        except VideoReadError as error:
            return error
        key = self.key(path)
        entry = self.entries.get(key)
        if entry is None or entry.get("stamp") != stamp:
            entry = self._probe_entry(path, stamp)
            self.entries[key] = entry
            self.changed = True
        if "error" in entry:
            return VideoReadError(path, entry["error"])
        return VideoInfo.from_dict(entry["info"])

    def _probe_entry(self, path: str, stamp: list[int]) -> dict:
        try:
            return {"stamp": stamp, "info": probe(path, self.backend).to_dict()}
        except VideoReadError as error:
            return {"stamp": stamp, "error": error.reason}

    def get(self, path: str | os.PathLike) -> VideoInfo:
        """Metadata of ``path``; raises :class:`VideoReadError` for an unreadable video."""
        result = self.lookup(path)
        if isinstance(result, VideoReadError):
            raise result
        return result

    def save(self) -> None:
        """Write the cache atomically (a crash never leaves a half-written file)."""
        if self.cache_file is None or not self.changed:
            return
        folder = os.path.dirname(os.path.abspath(self.cache_file))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".videoindex-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": CACHE_VERSION, "videos": self.entries}, handle)
            os.replace(tmp, self.cache_file)
        except BaseException:
            os.unlink(tmp)
            raise
        self.changed = False

    def __len__(self) -> int:
        return len(self.entries)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.save()


@dataclass
class IndexScan:
    """Result of :func:`index_videos`, keyed by the paths as given."""

    infos: dict[str, VideoInfo] = field(default_factory=dict)
    errors: dict[str, VideoReadError] = field(default_factory=dict)


def index_videos(
    paths,
    cache_file: str | os.PathLike | None,
    workers: int = 4,
    root: str | os.PathLike | None = None,
    backend: str | VideoBackend = "pyav",
) -> IndexScan:
    """Metadata for many videos, probing only those not validly cached, ``workers`` at a time.

    The cache file is updated before returning. Unreadable videos land in ``errors``.
    """
    index = VideoIndex(cache_file, root=root, backend=backend)
    paths = [os.fspath(p) for p in paths]
    stale = {}
    for path in paths:
        try:
            stamp = file_stamp(path)
        except VideoReadError:
            continue  # reported as missing by lookup below
        entry = index.entries.get(index.key(path))
        if entry is None or entry.get("stamp") != stamp:
            stale[path] = stamp
    if stale:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            entries = pool.map(lambda item: index._probe_entry(*item), stale.items())
            for path, entry in zip(stale, entries):
                index.entries[index.key(path)] = entry
        index.changed = True
    scan = IndexScan()
    for path in paths:
        result = index.lookup(path)
        (scan.errors if isinstance(result, VideoReadError) else scan.infos)[path] = result
    index.save()
    return scan
