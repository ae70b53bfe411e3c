from pathlib import Path

import pytest
import yaml

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


# --- --set KEY.PATH=VALUE: overrides applied to the YAML before validation ---------------------


def test_set_values_are_yaml_and_land_at_their_key_path(tmp_path):
    path = write(tmp_path, "experiment: x\nlora:\n  rank: 4\n  lr: 0.01\nparaphrase:\n  per_question: 3\n")
    cfg = load_config(path, ["lora.rank=8", "grid.seeds=[0, 1]", "paraphrase=null", "bench.num_fewshot.mmlu=2"])
    assert cfg.lora.rank == 8 and cfg.lora.lr == 0.01  # the section's other keys stay as written
    assert cfg.grid.seeds == [0, 1] and cfg.paraphrase is None
    assert cfg.bench.num_fewshot == {"mmlu": 2}  # a mapping value is replaced at the key, not merged
    # A key inside an unset section creates it; the last --set of a key wins.
    cfg = load_config(write(tmp_path, "experiment: x\n"), ["paraphrase.per_question=4", "lora.rank=2", "lora.rank=16"])
    assert cfg.paraphrase.per_question == 4 and cfg.lora.rank == 16


@pytest.mark.parametrize(
    "given, line",
    [
        ("lora.rnak=8", "  lora.rnak: unknown key (from --set lora.rnak=8)"),
        ("lora.rank=many", "  lora.rank: Input should be a valid integer"),
        ("lora=8", "  lora: Input should be a valid dictionary"),
        ("grid.seeds=[a]", "  grid.seeds.0: Input should be a valid integer"),
        ("experiment.name=y", "  experiment: not a section, so --set experiment.name=y has no key to set"),
    ],
)
def test_a_bad_set_fails_like_a_bad_file_naming_the_key_and_the_set(tmp_path, capsys, given, line):
    path = write(tmp_path, "experiment: x\n")
    assert main(["validate", str(path), "--set", given]) == 2
    err = capsys.readouterr().err
    assert f"kgrid: error: {path}: invalid config\n" in err and line in err and f"--set {given}" in err


@pytest.mark.parametrize(
    "given, message",
    [
        ("lora.rank", "--set lora.rank: expected KEY.PATH=VALUE"),
        ("lora..rank=8", "--set lora..rank=8: expected KEY.PATH=VALUE"),
        ("=8", "--set =8: expected KEY.PATH=VALUE"),
        ("grid.seeds=[0, 1", "--set grid.seeds:1:6: not valid YAML"),
    ],
)
def test_a_malformed_set_is_named(tmp_path, capsys, given, message):
    assert main(["validate", str(write(tmp_path, "experiment: x\n")), "--set", given]) == 2
    assert capsys.readouterr().err.startswith(f"kgrid: error: {message}")


def test_validate_shows_each_set_as_resolved(tmp_path, capsys):
    path = write(tmp_path, "experiment: x\n")
    assert main(["validate", str(path), "--set", "lora.rank=8", "--set", "search.rank=[2, 8]", "--set", "paraphrase=null"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["  lora.rank: 8 (--set)", "  search.rank: [2, 8] (--set)", "  paraphrase: null (--set)"]


class Stop(Exception):
    """Raised where a command would start Ray: the test has seen what it needed."""


@pytest.mark.parametrize("command", ["run", "tune", "categorize"])
def test_set_reaches_the_config_of_the_commands_that_run(tmp_path, monkeypatch, command):
    import grid.cli

    loaded = []

    def load(path, sets):
        loaded.append(load_config(path, sets))
        return loaded[-1]

    def connect(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(grid.cli, "load_config", load)
    monkeypatch.setattr(grid.cli, "connect", connect)
    with pytest.raises(Stop):
        main([command, str(write(tmp_path, "experiment: x\n")), "--set", "lora.rank=8", "--set", "grid.seeds=[0]"])
    assert loaded[0].lora.rank == 8 and loaded[0].grid.seeds == [0]


def test_the_run_folder_records_the_overridden_value(tmp_path, monkeypatch):
    import grid.run

    def build(cfg, progress=True):
        raise Stop  # config.yaml is written before the world's build

    monkeypatch.setattr(grid.run, "build", build)
    cfg = load_config(write(tmp_path, f"experiment: x\nstorage: {tmp_path}\n"), ["lora.rank=8"])
    with pytest.raises(Stop):
        grid.run.Run.open(cfg, progress=False)
    assert yaml.safe_load((tmp_path / "x" / "config.yaml").read_text())["lora"]["rank"] == 8
