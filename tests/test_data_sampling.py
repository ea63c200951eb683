import numpy as np
import pytest

from vidssl.data import sampling


def rng(seed=0):
    return np.random.default_rng(seed)


def test_fps_timeline_resamples_30_to_16_fps():
    timeline = sampling.fps_timeline(60, fps=30.0, target_fps=16.0)  # 2 s of video
    assert len(timeline) == 32
    # frame k shows time k / 16 s -> source frame floor(k * 30 / 16)
    assert timeline[:5].tolist() == [0, 1, 3, 5, 7]
    assert timeline[-1] == 58
    assert np.all(np.diff(timeline) > 0)


def test_fps_timeline_upsampling_repeats_frames_and_native_is_identity():
    up = sampling.fps_timeline(8, fps=8.0, target_fps=16.0)
    assert up.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    assert sampling.fps_timeline(5, fps=25.0).tolist() == [0, 1, 2, 3, 4]


def test_random_clip_fits_inside_with_stride_and_is_seeded():
    for seed in range(50):
        clip = sampling.random_clip(40, 8, 3, rng=rng(seed))
        assert len(clip) == 8
        assert np.all(np.diff(clip) == 3)
        assert 0 <= clip[0] and clip[-1] < 40
    a = sampling.random_clip(100, 8, 2, rng=rng(7))
    b = sampling.random_clip(100, 8, 2, rng=rng(7))
    assert np.array_equal(a, b)
    starts = {int(sampling.random_clip(100, 8, 2, rng=rng(s))[0]) for s in range(40)}
    assert len(starts) > 10  # the start really is random


def test_random_clip_stride_jitter_draws_strides_in_range_and_fits():
    strides = set()
    for seed in range(200):
        clip = sampling.random_clip(200, 8, 4, rng=rng(seed), stride_jitter=2)
        step = np.diff(clip)
        assert np.all(step == step[0])
        strides.add(int(step[0]))
    assert strides == {2, 3, 4, 5, 6}
    # a video too short for stride 6 lowers the stride to the largest that fits (>= 2)
    for seed in range(50):
        clip = sampling.random_clip(30, 8, 4, rng=rng(seed), stride_jitter=2)
        assert clip[-1] < 30 and np.diff(clip)[0] in (2, 3, 4)


def test_short_video_padding_and_error():
    with pytest.raises(sampling.ClipTooShortError, match="5 frames but the clip needs"):
        sampling.random_clip(5, 4, 2, rng=rng())
    loop = sampling.random_clip(5, 4, 2, rng=rng(), pad="loop")
    assert loop.tolist() == [0, 2, 4, 1]
    last = sampling.random_clip(5, 4, 2, rng=rng(), pad="last")
    assert last.tolist() == [0, 2, 4, 4]
    assert sampling.uniform_clips(3, 5, pad="last").tolist() == [[0, 1, 2, 2, 2]]


def test_uniform_clips_are_evenly_spaced_and_single_clip_is_centred():
    views = sampling.uniform_clips(100, 10, 2, num_clips=5)  # span 19, free 81
    assert views.shape == (5, 10)
    assert views[:, 0].tolist() == [0, 20, 40, 61, 81]
    assert views[-1, -1] == 99
    assert sampling.uniform_clips(100, 10, 2)[0, 0] == 40


def test_segment_sampling_train_random_test_middle():
    test = sampling.segment_indices(80, 8)
    assert test.tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    for seed in range(20):
        train = sampling.segment_indices(80, 8, rng=rng(seed))
        assert np.all(train // 10 == np.arange(8))  # one frame inside each segment
    assert sampling.segment_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    views = [sampling.segment_indices(80, 4, offset=(v + 0.5) / 2) for v in range(2)]
    assert views[0].tolist() == [5, 25, 45, 65] and views[1].tolist() == [15, 35, 55, 75]


def test_reverse_window_and_seconds():
    assert sampling.reverse_clip(np.array([[1, 2, 3]])).tolist() == [[3, 2, 1]]
    assert sampling.window_positions(10, 20, 3).tolist() == [10, 15, 20]
    assert sampling.seconds_to_frame(1.0, 29.97) == 29
    # 2 s clip of 4 instants starting at 1 s of a 10 fps video: t = 1.0, 1.5, 2.0, 2.5
    assert sampling.clip_at_time(1.0, 2.0, 4, 10.0, 50).tolist() == [10, 15, 20, 25]
    for seed in range(20):
        clip = sampling.random_clip_at_time(2.0, 4, 10.0, 50, rng=rng(seed))
        assert clip[0] <= 30 and np.all(np.diff(clip) == 5)
