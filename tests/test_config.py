import pytest

from vidssl.config import (
    ConfigError,
    DataConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    save_config,
    to_dict,
)


def write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


class TestConfig:
    def test_yaml_and_overrides_resolve(self, tmp_path):
        path = write(tmp_path, "optim: {name: adamw, lr: 0.001}\ndata: {batch_size: 4}\n")
        cfg = load_config(path, ["optim.lr=0.01", "data.batch_size=8", "schedule.milestones=[10,20]",
                                 "train.max_steps=null"], cls=_NoMethod)
        assert cfg.optim.name == "adamw" and cfg.optim.lr == 0.01
        assert cfg.data.batch_size == 8 and cfg.schedule.milestones == [10.0, 20.0]
        assert cfg.train.max_steps is None and isinstance(cfg.data, DataConfig)

    def test_unknown_key_names_key_and_file(self, tmp_path):
        path = write(tmp_path, "optim: {lrr: 0.1}\n")
        with pytest.raises(ConfigError, match=r"cfg\.yaml.*optim\.lrr"):
            load_config(path, cls=_NoMethod)

    def test_wrong_type_names_key_and_file(self, tmp_path):
        path = write(tmp_path, "data: {batch_size: eight}\n")
        with pytest.raises(ConfigError, match=r"cfg\.yaml.*data\.batch_size must be an integer"):
            load_config(path, cls=_NoMethod)

    def test_bad_override_names_key(self, tmp_path):
        path = write(tmp_path, "{}\n")
        with pytest.raises(ConfigError, match=r"command line.*train\.epochz"):
            load_config(path, ["train.epochz=3"], cls=_NoMethod)
        with pytest.raises(ConfigError, match="train.amp"):
            load_config(path, ["train.amp=fp8"], cls=_NoMethod)

    def test_int_is_accepted_for_float_but_not_bool_for_int(self):
        assert from_dict(OptimConfig, {"lr": 1}).lr == 1.0
        with pytest.raises(ConfigError, match="epochs"):
            from_dict(TrainConfig, {"epochs": True})

    def test_resolved_config_round_trips(self, tmp_path):
        cfg = load_config(write(tmp_path, "optim: {betas: [0.9, 0.95]}\n"), cls=_NoMethod)
        save_config(cfg, tmp_path / "resolved.yaml")
        again = load_config(tmp_path / "resolved.yaml", cls=_NoMethod)
        assert to_dict(again) == to_dict(cfg) and again.optim.betas == (0.9, 0.95)

    def test_override_syntax_error(self):
        with pytest.raises(ConfigError, match="key.sub=value"):
            apply_overrides({}, ["optim.lr"])


from dataclasses import dataclass, field

from vidssl.config import ModelConfig, ScheduleConfig
from vidssl.pretrain import load_pretrain_config


@dataclass
class _NoMethod:
    """PretrainConfig without the method section (methods are tested with their own files)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def test_pretrain_config_rejects_unknown_method(tmp_path):
    with pytest.raises(ConfigError, match="method.name 'nope'"):
        load_pretrain_config(write(tmp_path, "method: {name: nope}\n"))


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    cfg = load_config(write(tmp_path, "{}\n"), ["optim.lr=3e-4"], cls=_NoMethod)
    assert cfg.optim.lr == 3e-4
    with pytest.raises(ConfigError, match="optim.lr must be a number"):
        load_config(write(tmp_path, "{}\n"), ["optim.lr=fast"], cls=_NoMethod)
