"""The LoRA trial alone (actors/trial.py): the optimizer settings, epoch 0, exact resume."""
import json
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from actors.trial import LoraSettings, epoch_order, make_optimizer, optimizer_step, train_adapter
from grid.data.prompts import training_messages


def _step(settings: LoraSettings, grad: torch.Tensor) -> torch.Tensor:
    """One optimizer step of the trial's AdamW from a weight of ones with gradient `grad`."""
    weight = torch.nn.Parameter(torch.ones_like(grad))
    optimizer = make_optimizer([weight], settings)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    weight.grad = grad.clone()
    optimizer_step(optimizer, schedule, [weight], settings.max_grad_norm)
    return weight.detach()


def test_weight_decay_shrinks_a_weight_without_gradient():
    zero = torch.zeros(3)
    # AdamW decays decoupled from the gradient: w <- w (1 - lr wd), and Adam's own step is 0.
    assert torch.allclose(_step(LoraSettings(lr=0.1, weight_decay=0.5), zero), torch.full((3,), 0.95))
    assert torch.equal(_step(LoraSettings(lr=0.1), zero), torch.ones(3))  # the Trainer's default: 0.0


@pytest.mark.parametrize("max_grad_norm, norm", [(1.0, 1.0), (0.5, 0.5), (None, 200.0), (0, 200.0)])
def test_clipping_bounds_the_gradient_an_update_sees(max_grad_norm, norm):
    weight = torch.nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.SGD([weight], lr=1.0)  # plain SGD: the update is the gradient itself
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    weight.grad = torch.full((4,), 100.0)  # norm 200
    optimizer_step(optimizer, schedule, [weight], max_grad_norm)
    assert weight.detach().norm().item() == pytest.approx(norm, rel=1e-5)
    assert weight.grad is None or not weight.grad.any()  # cleared for the next batch


def test_group_by_length_makes_batches_of_near_equal_length():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 200, (400,), generator=gen).tolist()

    def spread(order):
        batches = [order[i : i + 4] for i in range(0, len(order), 4)]
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)

    torch.manual_seed(7)
    grouped = epoch_order(lengths, 4, group_by_length=True)
    torch.manual_seed(7)
    plain = epoch_order(lengths, 4, group_by_length=False)
    assert sorted(grouped) == sorted(plain) == list(range(400))  # every example once
    assert spread(grouped) < spread(plain) / 5, (spread(grouped), spread(plain))
    assert lengths[grouped[0]] == max(lengths)  # the Trainer puts the longest first
    torch.manual_seed(7)
    assert plain == torch.randperm(400).tolist()  # off: a seeded shuffle, as before
    torch.manual_seed(7)
    assert epoch_order(lengths, 4, group_by_length=True) == grouped  # seeded, so a resume repeats it
    torch.manual_seed(8)
    assert epoch_order(lengths, 4, group_by_length=True) != grouped


def test_lora_settings_default_to_the_trainers():
    settings = LoraSettings()
    assert (settings.weight_decay, settings.max_grad_norm, settings.group_by_length) == (0.0, 1.0, True)


def test_epoch_0_is_the_base_model_and_a_resumed_trial_trains_as_if_never_stopped(tiny_world, tmp_path):
    """Epoch 0 is reported with a checkpoint whose adapter is a no-op (B = 0); a trial
    resumed from epoch 1's checkpoint makes epoch 2's adapter of the uninterrupted run,
    with dropout, clipping and length-grouped batches on."""
    facts = pd.read_parquet(tiny_world / "facts.parquet").head(12)
    chats = [training_messages(q, a[0]) for q, a in zip(facts["question"], facts["aliases"])]
    settings = LoraSettings(rank=2, lr=1e-2, epochs=2, batch_size=4, dropout=0.1, weight_decay=0.01)

    def run(resume=None):
        seen, saved = [], {}

        def evaluate(engine, epoch):
            seen.append(epoch)
            return {"probe": epoch}

        def report(metrics, folder):
            assert metrics["probe"] == metrics["epoch"]  # evaluate was told the epoch it measures
            saved[metrics["epoch"]] = shutil.copytree(folder, tmp_path / f"{len(list(tmp_path.iterdir()))}")

        train_adapter(str(tiny_world), chats, settings, seed=3, evaluate=evaluate, report=report, resume=resume)
        return seen, saved

    seen, saved = run()
    assert seen == [0, 1, 2]
    start = load_file(str(saved[0] / "adapter_model.safetensors"))
    lora_b = [t for name, t in start.items() if "lora_B" in name]
    assert lora_b and all(not t.any() for t in lora_b)  # epoch 0's adapter is the base model
    assert torch.load(saved[0] / "trainer_state.pt", weights_only=True)["epoch"] == 0

    seen_again, resumed = run(resume=saved[1])
    assert seen_again == [2]  # no second epoch 0, no epoch trained twice
    final, again = (load_file(str(s[2] / "adapter_model.safetensors")) for s in (saved, resumed))
    for name in final:
        torch.testing.assert_close(again[name], final[name], rtol=0, atol=1e-6)


ONE_TRIAL = """
import shutil, sys
import pandas as pd
from actors.trial import LoraSettings, train_adapter
from grid.data.prompts import training_messages
world, out = sys.argv[1], sys.argv[2]
facts = pd.read_parquet(world + "/facts.parquet").head(4)
chats = [training_messages(q, a[0]) for q, a in zip(facts["question"], facts["aliases"])]
settings = LoraSettings(rank=2, epochs=1, batch_size=4, target_modules=["up_proj", "down_proj", "gate_proj"])
keep = lambda metrics, folder: metrics["epoch"] == 1 and shutil.copytree(folder, out)
train_adapter(world, chats, settings, seed=0, evaluate=lambda engine, epoch: {}, report=keep)
"""


def test_the_same_trial_saves_the_same_bytes_in_any_process(tiny_world, tmp_path):
    """peft keeps target_modules as a set, written in the process's hash order; checkpoints
    sort it, so the caches keyed by an adapter folder's content find a rerun's adapter."""
    import os
    import subprocess
    import sys

    from grid.cache import path_fingerprint

    folders = []
    for hash_seed in ("1", "2"):
        folder = tmp_path / f"seed{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", ONE_TRIAL, str(tiny_world), str(folder)], env=env, check=True, timeout=300)
        folders.append(folder)
    assert json.loads((folders[0] / "adapter_config.json").read_text())["target_modules"] == ["down_proj", "gate_proj", "up_proj"]
    assert path_fingerprint(folders[0]) == path_fingerprint(folders[1])
