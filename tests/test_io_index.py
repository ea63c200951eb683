"""vidssl.io.VideoIndex: metadata cache keyed by size+mtime, errors cached, parallel scan."""

import json
import os

import numpy as np
import pytest
import torch

from vidssl.io import VideoIndex, VideoInfo, VideoReadError, index_videos
from vidssl.io import index as index_module
from vidssl.io.writer import write_video

torch.set_num_threads(1)


def _video(path, t=10):
    frames = np.random.default_rng(t).integers(0, 256, (t, 32, 48, 3), dtype=np.uint8)
    write_video(str(path), frames, fps=20)
    return str(path)


@pytest.fixture
def probe_calls(monkeypatch):
    calls = []
    real = index_module.probe
    monkeypatch.setattr(index_module, "probe", lambda p, b: calls.append(p) or real(p, b))
    return calls


def test_second_start_reads_the_cache_without_probing(tmp_path, probe_calls):
    a, b = _video(tmp_path / "a.mp4", 10), _video(tmp_path / "b.mp4", 14)
    cache = tmp_path / "cache" / "index.json"
    with VideoIndex(cache) as index:
        assert index.get(a) == VideoInfo(10, 20.0, 0.5, 32, 48)
        assert index.get(b).num_frames == 14
        assert index.get(a).num_frames == 10
    assert probe_calls == [a, b]
    assert json.loads(cache.read_text())["version"] == 1
    again = VideoIndex(cache)
    assert again.get(b).num_frames == 14 and len(again) == 2
    assert probe_calls == [a, b]  # nothing re-probed
    _video(tmp_path / "b.mp4", 16)  # rewritten: size/mtime change invalidates the entry
    os.utime(b, ns=(1, 1))
    assert again.get(b).num_frames == 16
    assert probe_calls == [a, b, b]


def test_bad_videos_are_cached_as_errors(tmp_path, probe_calls):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    cache = tmp_path / "index.json"
    for _ in range(2):
        index = VideoIndex(cache)
        with pytest.raises(VideoReadError, match="not a readable media file") as info:
            index.get(bad)
        assert info.value.path == str(bad)
        index.save()
    assert probe_calls == [str(bad)]
    with pytest.raises(VideoReadError, match="does not exist"):
        VideoIndex(cache).get(tmp_path / "missing.mp4")


def test_index_videos_in_parallel_with_relative_keys(tmp_path, probe_calls):
    root = tmp_path / "dataset"
    root.mkdir()
    paths = [_video(root / f"v{i}.mp4", 8 + i) for i in range(5)]
    (root / "empty.mp4").write_bytes(b"")
    paths += [str(root / "empty.mp4"), str(root / "missing.mp4")]
    cache = tmp_path / "index.json"
    scan = index_videos(paths, cache, workers=2, root=root)
    assert [scan.infos[p].num_frames for p in paths[:5]] == [8, 9, 10, 11, 12]
    assert set(scan.errors) == set(paths[5:])
    assert "0 bytes" in str(scan.errors[paths[5]]) and "does not exist" in str(
        scan.errors[paths[6]]
    )
    assert set(json.loads(cache.read_text())["videos"]) == {f"v{i}.mp4" for i in range(5)} | {
        "empty.mp4"
    }
    moved = tmp_path / "moved"
    os.rename(root, moved)  # relative keys: the cache survives moving the dataset
    before = len(probe_calls)
    rescan = index_videos([str(moved / "v3.mp4")], cache, root=moved)
    assert rescan.infos[str(moved / "v3.mp4")].num_frames == 11 and len(probe_calls) == before


def test_corrupt_cache_is_ignored_with_a_warning(tmp_path):
    cache = tmp_path / "index.json"
    cache.write_text("{ truncated")
    video = _video(tmp_path / "a.mp4")
    with pytest.warns(UserWarning, match="ignoring video index cache"):
        index = VideoIndex(cache)
    assert index.get(video).num_frames == 10
    index.save()
    assert VideoIndex(cache).get(video).num_frames == 10


def test_frame_folders_are_indexed(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(7):
        Image.new("RGB", (16, 12), (i, 0, 0)).save(folder / f"image_{i + 1:05d}.jpg")
    info = VideoIndex(None).get(folder)
    assert (info.num_frames, info.height, info.width) == (7, 12, 16)
