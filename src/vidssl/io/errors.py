"""The one exception every decoding failure is raised as."""

from __future__ import annotations

import os


class VideoReadError(RuntimeError):
    """A video (file or frame folder) could not be read.

    The message always names the file, so a failing sample in a large dataset can be found.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path!r}: {reason}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (type(self), (self.path, self.reason))
