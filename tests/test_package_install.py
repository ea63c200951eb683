"""A non-editable install works outside the source checkout: bundled configs are package data."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --target`` of this checkout (a regular, non-editable install)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)], check=True)
    return target


def _run(installed: Path, cwd: Path, *args: str) -> str:
    env = {"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_installed_package_finds_its_bundled_configs_from_any_folder(installed, tmp_path):
    code = ("import vidssl; from vidssl.pretrain import load_pretrain_config; "
            "from vidssl.evaluation import load_suite; from vidssl.bundled import resolve_config; "
            "print(vidssl.__file__); print(resolve_config('mini', 'evaluate')); "
            "print(load_pretrain_config('tubelet_contrast_world').method.name); "
            "print(len(load_suite('severe').experiments))")
    module, suite, method, experiments = _run(installed, tmp_path, "-c", code).split()
    assert Path(module).is_relative_to(installed) and Path(suite).is_relative_to(installed)
    assert method == "tubelet_contrast" and int(experiments) == 8


def test_installed_cli_lists_and_shows_bundled_configs(installed, tmp_path):
    listing = _run(installed, tmp_path, "-m", "vidssl", "configs", "list")
    for name in ("tubelet_contrast_world", "sigma_mlp_world", "severe", "full", "mini"):
        assert f"  {name}\n" in listing
    shown = _run(installed, tmp_path, "-m", "vidssl", "configs", "show", "severe",
                 "--kind", "evaluate")
    assert shown == (installed / "vidssl" / "configs" / "evaluate" / "severe.yaml").read_text()
