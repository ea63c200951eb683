import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_quick_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "vidssl", "demo", "--quick", "--out", str(out)]
    first = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    for row in ("Supervised (UCF-like labels)", "Tubelet-Contrast", "Video-MoCo", "VideoMAE",
                "SIGMA-MLP", "Scratch (R(2+1)D)",
                "Motion energy (hand-crafted)", "VideoMAE (ViT fine-tuning)",
                "SIGMA-MLP (ViT fine-tuning)", "Scratch (ViT) (ViT fine-tuning)"):
        assert row in text
    report = (out / "report.md").read_text()
    assert "| Tubelet-Contrast |" in report
    assert all(method["seeds"] == [0, 1] for method in results["methods"])  # --quick: 2 seeds
    assert "| pretraining beats scratch | Tubelet-Contrast vs Scratch (R(2+1)D) | UCF-like |" in report
    assert ("| control: hand-crafted motion beats scratch | Motion energy (hand-crafted) vs "
            "Scratch (ViT) | Gym-like (64) |") in report
    assert "| Tubelet-Contrast beats MoCo | Tubelet-Contrast vs Video-MoCo | FX-S1-like |" in report
    assert ("| supervised ceiling beats scratch | Supervised (UCF-like labels) vs "
            "Scratch (R(2+1)D) | UCF-like |") in report
    assert ("| fine-tuned pretraining beats fine-tuned scratch | VideoMAE (ViT fine-tuning) vs "
            "Scratch (ViT) (ViT fine-tuning) | UCF-like (40) fine-tuned |") in report
    assert "## Against the baselines" in first.stderr
    # the bias profile: four splits read full / single (/ shuffled) by the fixed instrument
    bias = report[report.index("## Bias profile"):]
    assert "Read by: bias probe (frozen ImageNet appearance + motion energy)" in bias
    for split in ("| UCF-like |", "| SSv2-like |", "| Gym-like event |", "| FX-S1-like elements |"):
        assert split in bias
    assert "## Bias profile" in first.stderr
    assert "ava_like" not in text  # the demo's suite leaves detection to `--suite mini`
    assert (out / "results.csv").read_text().count("\n") > 6
    assert list((out / "plots").glob("*.png"))
    for method in ("supervised", "tubelet_contrast", "video_moco", "videomae", "sigma_mlp"):
        done = json.loads((out / "pretrain" / method / "done.json").read_text())
        assert done["steps"] == 6
    again = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("pretrained before, reused") == 5
    assert "done before, reused" in again.stderr


class _Planned(Exception):
    pass


def test_detection_flag_puts_the_detection_parts_in_every_row(tmp_path, monkeypatch):
    """`--detection` evaluates each row on the full `mini` suite (AVA-like, UCF101-24-like
    included); without it the rows run `mini_demo`. The bias profile is the same either way."""
    import vidssl.data.world
    import vidssl.demo_jobs
    from vidssl.demo import run_demo

    def capture(jobs, workers):
        raise _Planned(jobs)

    monkeypatch.setattr(vidssl.data.world, "generate_world", lambda *a, **k: None)
    monkeypatch.setattr(vidssl.demo_jobs, "run_jobs", capture)
    for detection, suite in ((False, "mini_demo"), (True, "mini")):
        with pytest.raises(_Planned) as planned:
            run_demo(tmp_path, quick=True, detection=detection, workers=1)
        jobs = planned.value.args[0]
        rows = [j.kwargs["suite"] for j in jobs if "suite" in j.kwargs]
        assert rows.count(suite) == 3 and "mini_bias" in rows  # 2 scratch rows + the control
        bias = next(j.kwargs for j in jobs if j.kwargs.get("suite") == "mini_bias")
        assert (bias["model"], bias["checkpoint"]) == ("appearance_motion", None)
        follow = [j for j in jobs if j.then is not None]  # pretraining -> its suites
        assert len(follow) == 5
        assert {f.kwargs["suite"] for f in follow[0].then("ckpt.pt")} == {suite}


def test_pretrain_runs_give_each_seed_its_own_pretraining(tmp_path, monkeypatch):
    """`--pretrain-runs 2` with 2 seeds: every method pretrains twice (training seeds 0 and 1,
    folders <method> and <method>_run1) and its suites get both checkpoints; a number of runs
    that does not divide the seeds is refused before anything runs."""
    import vidssl.data.world
    import vidssl.demo
    import vidssl.demo_jobs
    from vidssl.demo import METHOD_ROWS, _pretrain_runs, run_demo

    def capture(jobs, workers):
        raise _Planned(jobs)

    monkeypatch.setattr(vidssl.data.world, "generate_world", lambda *a, **k: None)
    monkeypatch.setattr(vidssl.demo_jobs, "run_jobs", capture)
    with pytest.raises(_Planned) as planned:
        run_demo(tmp_path, quick=True, workers=1, seeds=2, pretrain_runs=2)
    follow = [j for j in planned.value.args[0] if j.then is not None]
    assert all(j.kwargs["runs"] == 2 for j in follow)
    suites = follow[1].then(["a.pt", "b.pt"])
    assert suites and all(s.kwargs["checkpoint"] == ["a.pt", "b.pt"] for s in suites)
    with pytest.raises(ValueError, match="pretrain_runs=3"):
        run_demo(tmp_path, quick=True, workers=1, seeds=2, pretrain_runs=3)

    calls = []
    monkeypatch.setattr(vidssl.demo, "_pretrain", lambda row, world, run_dir, *, seed, **o:
                        calls.append((run_dir.name, seed)) or run_dir / "last.pt")
    row = METHOD_ROWS[0]
    name = row.config.removesuffix("_world.yaml")
    checkpoints = _pretrain_runs(row, tmp_path / "world", tmp_path, runs=2, seed=5, quick=True)
    assert calls == [(name, 5), (f"{name}_run1", 6)]
    assert checkpoints == [tmp_path / "pretrain" / name / "last.pt",
                           tmp_path / "pretrain" / f"{name}_run1" / "last.pt"]
