"""Bundled configs: a name, a name with its folder, or a path to the user's own file."""
import pytest

from vidssl.bundled import bundled_dir, bundled_names, resolve_config
from vidssl.cli import main
from vidssl.errors import ConfigError


def test_a_bundled_name_resolves_with_or_without_suffix_and_folder():
    expected = bundled_dir("pretrain") / "video_moco_world.yaml"
    for name in ("video_moco_world", "video_moco_world.yaml", "pretrain/video_moco_world.yaml",
                 "configs/pretrain/video_moco_world.yaml"):
        assert resolve_config(name, "pretrain") == expected
    assert resolve_config("severe", "evaluate") == bundled_dir("evaluate") / "severe.yaml"


def test_an_existing_path_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "severe.yaml").write_text("name: mine\n")
    assert resolve_config("severe.yaml", "evaluate").resolve() == tmp_path / "severe.yaml"
    assert resolve_config("severe", "evaluate") == bundled_dir("evaluate") / "severe.yaml"


def test_unknown_names_and_missing_files_are_clear_errors():
    with pytest.raises(ConfigError, match="no pretrain config named 'nope'.*video_moco_world"):
        resolve_config("nope", "pretrain")
    with pytest.raises(ConfigError, match="config file not found: elsewhere/x.yaml"):
        resolve_config("elsewhere/x.yaml", "pretrain")
    with pytest.raises(ConfigError, match="config file not found: evaluate/severe"):
        resolve_config("evaluate/severe", "pretrain")  # a suite is not a pretraining config
    with pytest.raises(ConfigError, match="kind 'other'"):
        bundled_dir("other")


def test_bundled_names_and_the_configs_command(capsys):
    assert {"severe", "full", "mini"} <= set(bundled_names("evaluate"))
    assert "tubelet_contrast_r2plus1d" in bundled_names("pretrain")
    assert main(["configs", "list"]) == 0
    assert "  sigma_mlp_world\n" in capsys.readouterr().out
    assert main(["configs", "show", "mini", "--kind", "evaluate"]) == 0
    assert capsys.readouterr().out == (bundled_dir("evaluate") / "mini.yaml").read_text()
    assert main(["configs", "show", "nope"]) == 2
    assert "no pretrain config named 'nope'" in capsys.readouterr().err
