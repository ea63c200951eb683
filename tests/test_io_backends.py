"""vidssl.io backends: frame folders, optional decord/OpenCV, fork/spawn safety, pickling."""

import os
import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vidssl.io import (
    DecordBackend,
    FrameFolderBackend,
    OpenCVBackend,
    PyAVBackend,
    VideoReadError,
    get_backend,
    probe,
    read_clip,
)
from vidssl.io.frames_backend import infer_pattern
from vidssl.io.writer import write_video

torch.set_num_threads(1)


def _frames(t=9, h=24, w=32):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _write_folder(folder, frames, pattern="image_%05d.jpg", start=1, fmt="png"):
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(frames):
        Image.fromarray(image).save(os.path.join(folder, pattern % (start + i)), format=fmt)
    return str(folder)


def test_frame_folder_default_pattern_is_used_for_directories(tmp_path):
    frames = _frames()
    folder = _write_folder(tmp_path / "v_Biking_g01_c01", frames)  # lossless PNG named .jpg
    clip = read_clip(folder, [8, 0, 4, 4])
    assert clip.dtype == torch.uint8 and np.array_equal(clip.numpy(), frames[[8, 0, 4, 4]])
    info = probe(folder)
    assert (info.num_frames, info.height, info.width) == (9, 24, 32)
    assert read_clip(folder, [1, 2], size=12).shape == (2, 12, 16, 3)


def test_frame_folder_patterns_named_and_inferred(tmp_path):
    frames = _frames(12)
    folder = _write_folder(tmp_path / "46GP8", frames, pattern="46GP8-%06d.png")  # Charades style
    named = FrameFolderBackend(pattern="{name}-%06d.png", fps=24)
    assert np.array_equal(read_clip(folder, [11, 3], backend=named).numpy(), frames[[11, 3]])
    assert probe(folder, backend=named).duration == pytest.approx(12 / 24)
    assert infer_pattern(folder) == ("46GP8-%06d.png", 1)
    assert np.array_equal(read_clip(folder, [10]).numpy(), frames[[10]])  # inferred automatically
    zero_based = _write_folder(tmp_path / "zb", frames[:5], pattern="%d.png", start=0)
    assert infer_pattern(zero_based) == ("%d.png", 0)
    assert probe(zero_based).num_frames == 5


def test_frame_folder_errors_name_the_folder(tmp_path):
    folder = _write_folder(tmp_path / "clip", _frames(6))
    with pytest.raises(VideoReadError, match="beyond the last frame") as info:
        read_clip(folder, [2, 6])
    assert info.value.path == folder
    os.remove(os.path.join(folder, "image_00003.jpg"))
    with pytest.raises(VideoReadError, match="image_00003.jpg"):
        read_clip(folder, [1, 2, 4])
    assert probe(folder).num_frames == 2  # consecutive frames from the first one
    with open(os.path.join(folder, "image_00002.jpg"), "wb") as handle:
        handle.write(b"not an image")
    with pytest.raises(VideoReadError, match="not a readable image"):
        read_clip(folder, [1])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoReadError, match="no numbered image") as info:
        read_clip(str(empty), [0])
    assert info.value.path == str(empty)
    with pytest.raises(VideoReadError, match="does not exist"):
        read_clip(str(tmp_path / "nowhere"), [0], backend="frames")


def test_backends_by_name_and_missing_optional_dependency(monkeypatch):
    assert isinstance(get_backend("pyav", threads=2), PyAVBackend)
    assert isinstance(get_backend("frames", pattern="%05d.jpg"), FrameFolderBackend)
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord -> ImportError
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match="pip install decord2"):
        get_backend("decord")
    with pytest.raises(ImportError, match="pip install opencv-python-headless"):
        OpenCVBackend()


@pytest.mark.parametrize("name,module", [("decord", "decord"), ("opencv", "cv2")])
def test_optional_backends_match_pyav_when_installed(tmp_path, name, module):
    pytest.importorskip(module)
    path = str(tmp_path / "clip.mp4")
    write_video(path, _frames(20, 48, 64), keyframe_interval=6)
    indices = [19, 2, 7, 7, 13]
    expected = read_clip(path, indices)
    assert torch.equal(read_clip(path, indices, backend=name), expected)
    assert probe(path, backend=name).num_frames == 20
    assert read_clip(path, [3], backend=name, size=24).shape == (1, 24, 32, 3)
    with pytest.raises(VideoReadError, match="beyond the end"):
        read_clip(path, [20], backend=name)
    with pytest.raises(VideoReadError, match="does not exist"):
        read_clip(str(tmp_path / "missing.mp4"), [0], backend=name)
    assert isinstance(get_backend(name), (DecordBackend, OpenCVBackend))


class _ClipDataset(torch.utils.data.Dataset):
    def __init__(self, paths, backend):
        self.paths, self.backend = paths, backend

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return read_clip(self.paths[i], [i, i + 3], backend=self.backend)


def test_backends_pickle_and_read_inside_forked_workers(tmp_path):
    path = str(tmp_path / "clip.mp4")
    write_video(path, _frames(12, 32, 32), keyframe_interval=4)
    backend = pickle.loads(pickle.dumps(PyAVBackend()))
    expected = torch.stack([read_clip(path, [i, i + 3]) for i in range(4)])
    read_clip(path, [0], backend=backend)  # the parent reads first: nothing may leak into workers
    loader = torch.utils.data.DataLoader(
        _ClipDataset([path] * 4, backend),
        batch_size=2,
        num_workers=2,
        multiprocessing_context="fork",
    )
    assert torch.equal(torch.cat(list(loader)), expected)
    assert pickle.loads(pickle.dumps(VideoReadError(path, "x"))).path == path
