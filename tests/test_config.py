from pathlib import Path

import pytest

from grid.cli import main
from grid.config import ConfigError, load_config

CONFIGS = sorted(Path(__file__).parent.parent.glob("configs/*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    assert cfg.experiment
    assert cfg.model.trust_remote_code is False


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ("experiment: x\nprompts:\n  shotz: 4\n", "prompts.shotz", "unknown key"),
        ("experiment: x\nprompts:\n  sets: many\n", "prompts.sets", "integer"),
        ("experiment: x\ngenerators:\n  engine:\n    kind: tpu\n", "generators.engine.kind", "'auto', 'transformers' or 'vllm'"),
        ("experiment: x\nworld:\n  size: huge\n", "world.size", "tiny"),
        ("storage: runs\n", "experiment", "Field required"),
    ],
)
def test_errors_name_the_key_path_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and f"  {key}: " in msg and reason in msg


def test_validate_command(tmp_path, capsys):
    assert main(["validate", str(CONFIGS[0])]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["validate", str(write(tmp_path, "experiment: x\nmodle: {}\n"))]) == 2
    assert "modle: unknown key" in capsys.readouterr().err


def test_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path, capsys):
    path = write(tmp_path, "experiment: x\nprompts:\n  sets: [1, 2\n  shots: 4\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"kgrid: error: {path}:4:8: not valid YAML: while parsing a flow sequence")


def test_every_world_setting_reaches_the_build(tmp_path, monkeypatch):
    import grid.run

    seen = {}

    def build(cfg, progress=True):
        seen["world"] = cfg
        raise RuntimeError("stop before any work")

    monkeypatch.setattr(grid.run, "build", build)
    cfg = load_config(write(tmp_path, f"experiment: x\nstorage: {tmp_path}\nworld:\n  size: tiny\n  reps_known: 40\n"))
    with pytest.raises(RuntimeError):
        grid.run.Run.open(cfg, progress=False)
    assert seen["world"].reps_known == 40 and seen["world"].size == "tiny"
    # The same settings name the same world folder, so a cached world is the one configured.
    from grid.world.graph import WorldConfig

    assert seen["world"].key() == WorldConfig(size="tiny", reps_known=40).key() != WorldConfig(size="tiny").key()


def test_a_file_that_is_not_parquet_is_named(tmp_path, capsys):
    from grid.data.facts import read_facts

    path = tmp_path / "facts.parquet"
    path.write_text("question,answer\nWho?,me\n")
    with pytest.raises(ValueError, match=f"{path}: not a parquet file"):
        read_facts(path)
    assert main(["facts", "import", str(path), str(tmp_path / "out.parquet")]) == 2
    assert f"{path}: not a parquet file" in capsys.readouterr().err
