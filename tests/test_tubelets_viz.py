"""Tubelet example GIFs."""
import numpy as np
import pytest
import torch
from PIL import Image

from vidssl.viz.tubelets import GAP, procedural_clips, render_tubelet_examples

torch.set_num_threads(1)


def test_render_tubelet_examples_writes_an_animated_gif(tmp_path):
    path = render_tubelet_examples(tmp_path / "sub" / "tubelets.gif", num_pairs=2, num_frames=4,
                                   size=24, scale=2, seed=3)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        assert gif.size == (3 * 48 + 2 * GAP, 2 * 48 + GAP)
        first = torch.tensor(np.array(gif.convert("RGB")), dtype=torch.float32)
        gif.seek(3)
        last = torch.tensor(np.array(gif.convert("RGB")), dtype=torch.float32)
    assert (first - last).abs().mean() > 1  # the frames move
    again = render_tubelet_examples(tmp_path / "again.gif", num_pairs=2, num_frames=4, size=24,
                                    scale=2, seed=3)
    assert again.read_bytes() == path.read_bytes()  # deterministic given the seed


def test_render_from_normalized_clips(tmp_path):
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    clips = procedural_clips(3, 4, (16, 20), torch.Generator().manual_seed(0))
    normalized = (clips - torch.tensor(mean).view(3, 1, 1, 1)) / torch.tensor(std).view(3, 1, 1, 1)
    path = render_tubelet_examples(tmp_path / "n.gif", clips=normalized, num_pairs=5, scale=1,
                                   mean=mean, std=std)
    with Image.open(path) as gif:
        assert gif.size == (3 * 20 + 2 * GAP, 2 * 16 + GAP)  # 3 clips make 2 pairs
    assert clips.min() >= 0 and clips.max() <= 1
    with pytest.raises(ValueError, match="RGB"):
        render_tubelet_examples(tmp_path / "bad.gif", clips=torch.rand(1, 3, 4, 8, 8))
