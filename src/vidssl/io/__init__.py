"""Video decoding: exact frame indexing, keyframe seeking, metadata and an index cache.

Public entry points: :func:`read_clip`, :func:`probe`, :class:`VideoInfo`,
:class:`VideoIndex`, :func:`index_videos`, :class:`VideoReadError`, the backends
(:func:`get_backend`, ``BACKENDS``) and :func:`write_video` (uint8 frames -> video file).
"""

from vidssl.io.backends import BACKENDS, get_backend
from vidssl.io.base import VideoBackend
from vidssl.io.errors import VideoReadError
from vidssl.io.frames_backend import FrameFolderBackend
from vidssl.io.index import IndexScan, VideoIndex, index_videos
from vidssl.io.info import VideoInfo
from vidssl.io.optional_backends import DecordBackend, OpenCVBackend
from vidssl.io.pyav_backend import PyAVBackend
from vidssl.io.reader import probe, read_clip
from vidssl.io.writer import write_video

__all__ = [
    "BACKENDS",
    "DecordBackend",
    "FrameFolderBackend",
    "IndexScan",
    "OpenCVBackend",
    "PyAVBackend",
    "VideoBackend",
    "VideoIndex",
    "VideoInfo",
    "VideoReadError",
    "get_backend",
    "index_videos",
    "probe",
    "read_clip",
    "write_video",
]
