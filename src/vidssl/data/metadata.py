"""Video metadata for a dataset, through the :class:`vidssl.io.VideoIndex` cache file.

The cache lives in ``<root>/.vidssl_index.json``, or, when ``root`` is read-only, in the
user cache (``$XDG_CACHE_HOME/vidssl/index/``, default ``~/.cache``); ``cache_dir`` puts
it elsewhere. A second start reuses every entry whose file is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable

from vidssl.io import VideoInfo, VideoReadError, index_videos, probe

INDEX_FILE = ".vidssl_index.json"


def user_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vidssl", "index")


def index_file(root: str, cache_dir: str | None = None) -> str:
    """Where the metadata cache of the dataset at ``root`` is kept."""
    root = os.path.abspath(root)
    if cache_dir is None and os.access(root, os.W_OK):
        return os.path.join(root, INDEX_FILE)
    digest = hashlib.sha1(root.encode("utf-8")).hexdigest()[:16]
    name = f"{os.path.basename(root) or 'root'}-{digest}.json"
    return os.path.join(cache_dir or user_cache_dir(), name)


class DatasetIndex:
    """Picklable ``path -> VideoInfo`` of a dataset's videos (sent to DataLoader workers).

    Videos that failed to probe raise their cached :class:`VideoReadError`; paths not
    scanned are probed on demand.
    """

    def __init__(self, infos: dict[str, VideoInfo], errors: dict[str, str], backend="pyav"):
        self.infos, self.errors, self.backend = infos, errors, backend

    @classmethod
    def scan(
        cls,
        paths: Iterable[str],
        root: str,
        cache_dir: str | None = None,
        backend="pyav",
        workers: int = 4,
    ) -> DatasetIndex:
        """Probe every video not validly cached and update the cache file."""
        paths = list(dict.fromkeys(paths))
        cache = index_file(root, cache_dir)
        try:
            result = index_videos(paths, cache, workers=workers, root=root, backend=backend)
        except OSError as exc:
            warnings.warn(
                f"cannot write the video index {cache!r} ({exc}); metadata is not cached",
                stacklevel=2,
            )
            result = index_videos(paths, None, workers=workers, root=root, backend=backend)
        errors = {path: error.reason for path, error in result.errors.items()}
        return cls(result.infos, errors, backend)

    def __call__(self, path: str) -> VideoInfo:
        info = self.infos.get(path)
        if info is not None:
            return info
        if path in self.errors:
            raise VideoReadError(path, self.errors[path])
        return probe(path, self.backend)

    def __len__(self) -> int:
        return len(self.infos) + len(self.errors)
