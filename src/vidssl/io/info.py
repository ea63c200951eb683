"""Video metadata: what ``probe`` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class VideoInfo:
    """Facts about one video, read without decoding frames (``duration`` in seconds)."""

    num_frames: int
    fps: float
    duration: float
    height: int
    width: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VideoInfo:
        return cls(
            num_frames=int(data["num_frames"]),
            fps=float(data["fps"]),
            duration=float(data["duration"]),
            height=int(data["height"]),
            width=int(data["width"]),
        )
