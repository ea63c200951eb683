"""Report: SEVERE mean rule, ranks, files (json/csv/md/png) that parse, run comparison."""
import csv
import json

import pytest

from vidssl.evaluation.published import PUBLISHED
from vidssl.evaluation.report import (
    Comparison,
    compare_runs,
    margin,
    ranks,
    render_comparisons,
    severe_mean,
    summarize,
    write_report,
)

BENCHMARK = ["ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1", "ucf_rc",
             "charades"]
FACTOR = {"ssv2": "domain", "gym99": "domain", "ucf101_1000": "samples", "gym99_1000": "samples",
          "gym_fx_s1": "actions", "gym_ub_s1": "actions", "ucf_rc": "tasks", "charades": "tasks"}
METRIC = {"ucf_rc": "mae", "charades": "map"}


def _block(name, values_per_experiment, suite="severe"):
    experiments = {}
    for exp, values in values_per_experiment.items():
        metric = METRIC.get(exp, "top1")
        experiments[exp] = {"label": exp, "factor": FACTOR[exp], "task": "classification",
                            "protocol": "finetune", "selection": "val", "metric": metric,
                            "higher_is_better": metric != "mae", "status": "done",
                            "metrics": {metric: summarize(values)}}
    return {"name": name, "suite": {"name": suite, "description": "test"}, "benchmark": BENCHMARK,
            "checkpoint": None, "model": "r2plus1d_18", "seeds": [0, 1],
            "experiments": experiments}


def test_severe_mean_converts_counting_error_as_the_published_tables():
    # SIGMA paper's SEVERE table, VideoMAE row: mean 57.4 with UCF-RC 0.172 entering as 82.8
    row = dict(zip(BENCHMARK, [68.6, 86.6, 74.6, 25.9, 42.8, 65.3, 0.172, 12.6]))
    block = _block("VideoMAE", {k: [v] for k, v in row.items()})
    assert severe_mean(block)["mean"] == pytest.approx(57.4, abs=0.05)
    # SIGMA-DINO row: 64.3
    row = dict(zip(BENCHMARK, [70.9, 89.7, 84.1, 28.0, 55.1, 79.9, 0.169, 23.3]))
    sigma = _block("SIGMA", {k: [v] for k, v in row.items()})
    assert severe_mean(sigma)["mean"] == pytest.approx(64.3, abs=0.05)


def test_severe_mean_is_averaged_per_seed_and_needs_every_experiment():
    values = {k: [50.0, 60.0] for k in BENCHMARK}
    values["ucf_rc"] = [0.5, 0.3]  # -> 50, 70
    mean = severe_mean(_block("m", values))
    assert mean["values"] == pytest.approx([50.0, 61.25])
    assert mean["std"] == pytest.approx(summarize([50.0, 61.25])["std"])
    del values["charades"]
    assert severe_mean(_block("m", values)) is None


def test_published_reference_rows():
    assert len(PUBLISHED) == 11
    assert PUBLISHED["Tubelet-Contrast"]["gym_fx_s1"] == 80.1
    assert PUBLISHED["GDT"]["ucf_rc"] == 0.123
    assert PUBLISHED["Supervised (K400)"]["charades"] == 23.5
    assert PUBLISHED["SeLaVi"]["gym99"] == 88.9  # the domain-table Gym99, as in the benchmark


def test_ranks_follow_metric_direction_and_share_ties():
    a = _block("a", {"ssv2": [60.0], "ucf_rc": [0.20]})
    b = _block("b", {"ssv2": [50.0], "ucf_rc": [0.10]})
    c = _block("c", {"ssv2": [60.0], "ucf_rc": [0.30]})
    assert ranks([a, b, c], "ssv2") == [1, 3, 1]
    assert ranks([a, b, c], "ucf_rc") == [2, 1, 3]


def test_report_files_are_written_and_parse(tmp_path):
    scratch = _block("scratch", {k: [0.5, 0.6] if k == "ucf_rc" else [40.0, 42.0]
                                 for k in BENCHMARK})
    tubelet = _block("tubelet", {k: [0.2, 0.25] if k == "ucf_rc" else [70.0, 71.0]
                                 for k in BENCHMARK})
    tubelet["experiments"]["charades"]["selection"] = "test"
    files = write_report([scratch, tubelet], tmp_path)
    document = json.loads(files["json"].read_text())
    assert [m["name"] for m in document["methods"]] == ["scratch", "tubelet"]
    assert document["ranks"]["ssv2"] == {"scratch": 2, "tubelet": 1}
    assert document["methods"][1]["severe_mean"]["mean"] == pytest.approx(
        (7 * 70.5 + 100 * (1 - 0.225)) / 8)
    with open(files["csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * (len(BENCHMARK) + 1)
    rc = next(r for r in rows if r["method"] == "tubelet" and r["experiment"] == "ucf_rc")
    assert float(rc["mean"]) == pytest.approx(0.225) and rc["values"] == "0.2 0.25"
    markdown = files["markdown"].read_text()
    assert "## Domain shift" in markdown and "## SEVERE benchmark" in markdown
    assert "| tubelet | 70.5 ± 0.7 |" in markdown
    assert "| 70.5 ± 0.7† |" in markdown and "Model selected on the test split" in markdown
    assert "## Published reference" in markdown and "Tubelet-Contrast" in markdown
    for key in ("plot_domain", "plot_samples", "plot_actions", "plot_tasks", "plot_ranks"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert files[key].stat().st_size > 5000


def test_compare_runs_merges_run_directories(tmp_path):
    for name, value in (("scratch", 40.0), ("moco", 60.0)):
        write_report([_block(name, {"ssv2": [value], "gym99": [value + 5]})], tmp_path / name,
                     plots=False)
    files = compare_runs([tmp_path / "scratch", tmp_path / "moco"], tmp_path / "both")
    document = json.loads(files["json"].read_text())
    assert [m["name"] for m in document["methods"]] == ["scratch", "moco"]
    assert document["ranks"]["gym99"] == {"scratch": 2, "moco": 1}
    with pytest.raises(FileNotFoundError, match="no results.json"):
        compare_runs([tmp_path / "missing"], tmp_path / "x")


def test_margin_sets_the_difference_against_the_seed_spread():
    method = _block("m", {"gym99": [30.0, 34.0], "ucf_rc": [0.20, 0.22]})
    baseline = _block("b", {"gym99": [20.0, 22.0], "ucf_rc": [0.21, 0.25]})
    gym = margin(method, baseline, "gym99")
    assert gym["delta"] == pytest.approx(11.0)  # 32 - 21
    assert gym["spread"] == pytest.approx(2 ** 0.5 * 2 + 2 ** 0.5)  # std 2.83 + 1.41
    assert gym["verdict"] == "better"
    # lower-is-better: 0.21 vs 0.23 is an improvement of +0.02, inside the spread 0.014+0.028
    counting = margin(method, baseline, "ucf_rc")
    assert counting["delta"] == pytest.approx(0.02)
    assert counting["verdict"] == "within the seed spread"
    assert margin(baseline, method, "gym99")["verdict"] == "worse"
    assert margin(method, baseline, "ssv2") is None  # not run by either
    single = margin(_block("m", {"gym99": [30.0]}), _block("b", {"gym99": [20.0]}), "gym99")
    assert single["verdict"] == "no verdict (1 seed)"


def test_comparisons_section_in_report(tmp_path):
    blocks = [_block("TC", {"gym99": [30.0, 34.0]}), _block("Scratch", {"gym99": [29.0, 35.0]})]
    text = render_comparisons(blocks, [Comparison("beats scratch", "TC", "Scratch", ("gym99",)),
                                       Comparison("absent", "TC", "Nobody", ("gym99",))])
    assert "| beats scratch | TC vs Scratch | gym99 | +0.0 |" in text
    assert "absent" not in text
    write_report(blocks, tmp_path, plots=False,
                 comparisons=[Comparison("beats scratch", "TC", "Scratch", ("gym99",))])
    report = (tmp_path / "report.md").read_text()
    assert "## Against the baselines" in report and "within the seed spread" in report
