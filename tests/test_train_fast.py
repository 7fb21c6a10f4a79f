"""Options for learning fast: warmup-stable-decay, per-group learning rates, Muon, time budgets."""

from __future__ import annotations

import time

import pytest
import torch

import gptkit
from gptkit.errors import ConfigError
from gptkit.train.config import load_run_config
from gptkit.train.metrics import read_metrics
from gptkit.train.optim import OptimizerGroup, build_optimizer, lr_at, named_groups, set_lr
from gptkit.train.trainer import Trainer, train
from tests.train_helpers import make_shards, one_thread, tiny_config, train_losses  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def train_cfg(*overrides: str):
    return load_run_config(None, list(overrides)).train


def test_wsd_schedule_is_flat_then_linear_over_steps_or_time():
    cfg = train_cfg(
        "train.lr=1e-3", "train.min_lr=1e-4", "train.warmup_steps=10", "train.max_steps=110", "train.schedule=wsd"
    )
    assert lr_at(9, cfg) == pytest.approx(10e-3 / 11)  # warmup as for every schedule
    for step in (10, 50, 89, 90):  # stable for the first 80% of the 100 steps after warmup
        assert lr_at(step, cfg) == pytest.approx(1e-3)
    assert lr_at(95, cfg) == pytest.approx(1e-4 + 0.75 * 9e-4)  # 85%: a quarter of the way down
    assert lr_at(100, cfg) == pytest.approx(5.5e-4)
    assert lr_at(110, cfg) == lr_at(500, cfg) == pytest.approx(1e-4)
    # With a time budget the fraction of the budget used replaces the step count (after warmup).
    assert lr_at(20, cfg, time_fraction=0.9) == pytest.approx(5.5e-4)
    assert lr_at(20, cfg, time_fraction=0.5) == pytest.approx(1e-3)
    assert lr_at(5, cfg, time_fraction=0.9) == pytest.approx(6e-3 / 11)  # still warming up
    cos = train_cfg("train.lr=1e-3", "train.min_lr=1e-4", "train.warmup_steps=0")
    assert lr_at(3, cos, time_fraction=0.5) == pytest.approx(5.5e-4)
    # The 1-sqrt cooldown: at x of the way through the cooldown, 1 - sqrt(x) of the span above min_lr.
    sqrt = train_cfg(
        "train.lr=1e-3",
        "train.min_lr=1e-4",
        "train.warmup_steps=10",
        "train.max_steps=110",
        "train.schedule=wsd",
        'train.cooldown_shape="1-sqrt"',
    )
    assert lr_at(89, sqrt) == pytest.approx(1e-3)
    assert lr_at(95, sqrt) == pytest.approx(1e-4 + 0.5 * 9e-4)  # a quarter through: sqrt(0.25) = half way down
    assert lr_at(20, sqrt, time_fraction=0.808) == pytest.approx(1e-4 + 0.8 * 9e-4)  # 4% through: sqrt 0.2
    assert lr_at(110, sqrt) == pytest.approx(1e-4)


def test_groups_and_their_learning_rates():
    model = gptkit.GPT(gptkit.preset("tiny", tie_embeddings=False))
    groups = named_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in groups["embeddings"]) == ["wpe.weight", "wte.weight"]
    assert [names[id(p)] for p in groups["head"]] == ["lm_head.weight"]
    assert all(names[id(p)].startswith("h.") and p.dim() == 2 for p in groups["matrices"])
    assert len(groups["matrices"]) == 8 and all(p.dim() == 1 for p in groups["vectors"])
    cfg = train_cfg("train.lr=1e-3", "train.embedding_lr=0.1", "train.head_lr=0.01", "train.weight_decay=0.1")
    opt = build_optimizer(model, cfg, "cpu")
    set_lr(opt, 5e-4)  # the schedule's lr at some step: every group keeps its ratio to train.lr
    by_first = {names[id(g["params"][0])]: g for g in opt.param_groups}
    assert by_first["wte.weight"]["lr"] == pytest.approx(0.05) and by_first["wte.weight"]["weight_decay"] == 0.1
    assert by_first["lm_head.weight"]["lr"] == pytest.approx(5e-3)
    assert by_first["h.0.attn.c_attn.weight"]["lr"] == pytest.approx(5e-4)
    vectors = [g for g in opt.param_groups if g["params"][0].dim() == 1]
    assert len(vectors) == 1 and vectors[0]["weight_decay"] == 0.0 and vectors[0]["lr"] == pytest.approx(5e-4)
    # The embeddings' own weight decay, the rest keeping train.weight_decay (one lr for all: still split).
    for lrs in ([], ["train.embedding_lr=0.1"]):
        own = build_optimizer(model, train_cfg("train.weight_decay=0.1", "train.embedding_weight_decay=0", *lrs), "cpu")
        decay = {names[id(p)]: g["weight_decay"] for g in own.param_groups for p in g["params"]}
        assert decay["wte.weight"] == decay["wpe.weight"] == 0.0
        assert decay["lm_head.weight"] == decay["h.0.attn.c_attn.weight"] == 0.1 and decay["h.0.ln_1.weight"] == 0.0
    with pytest.raises(ConfigError, match="embedding_weight_decay: must be a finite number >= 0 or absent, got -1"):
        train_cfg("train.embedding_weight_decay=-1.0")


def test_muon_takes_the_hidden_matrices_only():
    model = gptkit.GPT(gptkit.preset("tiny"))
    opt = build_optimizer(model, train_cfg("train.optimizer=muon", "train.lr=0.02", "train.embedding_lr=0.1"), "cpu")
    assert isinstance(opt, OptimizerGroup)
    adamw, muon = opt.optimizers
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(muon, torch.optim.Muon)
    muon_ids = {id(p) for g in muon.param_groups for p in g["params"]}
    assert muon_ids == {id(p) for p in named_groups(model)["matrices"]}
    assert all(id(p) not in muon_ids for g in adamw.param_groups for p in g["params"])
    with pytest.raises(ConfigError, match="muon with dtype float16"):
        train_cfg("train.optimizer=muon", "train.dtype=float16")
    assert muon.param_groups[0]["ns_steps"] == 5  # torch's default unless train.muon_ns_steps says otherwise
    fewer = build_optimizer(model, train_cfg("train.optimizer=muon", "train.muon_ns_steps=3"), "cpu")
    assert fewer.optimizers[1].param_groups[0]["ns_steps"] == 3
    with pytest.raises(ConfigError, match="muon_ns_steps: must be in"):
        train_cfg("train.muon_ns_steps=0")


def test_dtype_auto_is_bfloat16_on_cpus_with_bfloat16_kernels_only(monkeypatch, tmp_path):
    import gptkit.devices as dev
    from gptkit.train.trainer import resolve_dtype

    def auto_with(flags: str | None) -> torch.dtype:
        info = tmp_path / "cpuinfo"
        info.unlink(missing_ok=True)
        if flags is not None:  # None: no file (not Linux)
            info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="utf-8")
        monkeypatch.setattr(dev, "CPU_INFO", str(info))
        return resolve_dtype("auto", torch.device("cpu"))

    assert auto_with("fpu sse2 avx avx2 fma") == torch.float32  # AVX2 only: bfloat16 would be emulated
    assert auto_with("avx2 avx512f avx512_bf16") == torch.bfloat16
    assert auto_with("avx2 amx_bf16 amx_tile") == torch.bfloat16
    assert resolve_dtype("float32", torch.device("cpu")) == torch.float32  # an explicit setting wins
    assert resolve_dtype("auto", torch.device("mps")) == torch.float32
    assert auto_with(None) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_trainer_autocasts_to_what_dtype_auto_resolves_to(monkeypatch, data, tmp_path):
    import gptkit.devices as dev

    info = tmp_path / "cpuinfo"
    for flags, expected in (("avx2 fma", torch.float32), ("avx2 avx512_bf16", torch.bfloat16)):
        info.write_text(f"flags\t\t: {flags}\n", encoding="utf-8")
        monkeypatch.setattr(dev, "CPU_INFO", str(info))
        trainer = Trainer(
            tiny_config(data, "train.dtype=auto", "train.max_steps=1"), tmp_path / str(expected), quiet=True
        )
        assert trainer.dtype == expected


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"))


def test_muon_run_learns_and_resumes_exactly(data, tmp_path):
    settings = ("train.optimizer=muon", "train.lr=0.02", "train.schedule=wsd", "train.checkpoint_interval=6")
    straight = train(tiny_config(data, *settings, "train.max_steps=12"), tmp_path / "a", quiet=True)
    train(tiny_config(data, *settings, "train.max_steps=6"), tmp_path / "b", quiet=True)
    again = load_run_config(tmp_path / "b" / "config.toml", ["train.max_steps=12"])
    train(again, tmp_path / "b", resume=True, quiet=True)
    a, b = train_losses(tmp_path / "a"), train_losses(tmp_path / "b")
    assert [a[s] for s in range(7, 13)] == [b[s] for s in range(7, 13)]
    assert straight.val_loss < read_metrics(tmp_path / "a")[0]["val_loss"] - 0.3


def test_time_budget_stops_the_run_and_decays_to_min_lr(data, tmp_path):
    cfg = tiny_config(
        data,
        "train.max_steps=100000",
        "train.time_budget_s=1.5",
        "train.time_budget_clock=cpu",
        "train.schedule=wsd",
        "train.eval_interval=0",
        "train.warmup_steps=2",
    )
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    result = trainer.run()
    assert 3 < result.step < 100000 and result.checkpoint is not None and result.val_loss is not None
    records = [r for r in read_metrics(tmp_path / "run") if "train_loss" in r]
    lrs = [r["lr"] for r in records]
    assert lrs[-1] < 0.2 * cfg.train.lr  # the last steps ran at the end of the decay
    assert max(lrs) == pytest.approx(cfg.train.lr)  # and the middle at the peak
    assert trainer.budget.used() >= 1.5
    evaluated = [r["step"] for r in read_metrics(tmp_path / "run") if r.get("val_loss") is not None]
    assert evaluated == [result.step]  # eval_interval 0: one evaluation, at the end (none at step 0)


def test_progress_line_under_a_time_budget_shows_the_clock_not_the_step_cap():
    from gptkit.train.budget import TimeBudget
    from gptkit.train.metrics import progress_line

    record = {"step": 10, "train_loss": 2.5, "lr": 1e-3, "grad_norm": None, "tokens_per_s": 1000.0}
    budget = TimeBudget(300, prior_s=60)  # not started: 60 s used, 240 s left
    line = progress_line(record, 1_000_000, 5000.0, budget)  # the step cap would take longer than the budget
    assert line.startswith("step 10 | 1m00s/5m00s wall |") and "1000000" not in line
    assert line.endswith("eta 4m00s")
    line = progress_line(record, 20, 30.0, budget)  # the steps end first
    assert line.startswith("step 10/20 | 1m00s/5m00s wall |") and line.endswith("eta 30s")
    assert progress_line(record, 20, 30.0).startswith("step 10/20 | loss 2.5000")  # no budget: as before


def test_an_agreed_budget_reads_the_clock_once_per_sync():
    from gptkit.train.budget import TimeBudget

    readings = []

    def agree(value: float) -> float:  # stands in for the all-reduce: every rank gets the latest reading
        readings.append(value)
        return value + 2.0

    budget = TimeBudget(10, prior_s=1.0, agree=agree)
    assert budget.used() == 1.0 and readings == []  # nothing agreed yet: the clock (not started)
    budget.start()
    budget.sync()
    agreed = budget.used()
    assert len(readings) == 1 and agreed == readings[0] + 2.0 >= 3.0
    time.sleep(0.02)
    assert budget.used() == agreed and budget.fraction() == agreed / 10  # frozen until the next sync
    budget.sync()
    assert budget.used() >= agreed + 0.02 and len(readings) == 2
    plain = TimeBudget(10)
    plain.start()
    plain.sync()  # no agree: a no-op, the clock is read live
    first = plain.used()
    time.sleep(0.02)
    assert plain.used() >= first + 0.02
    unbudgeted = TimeBudget(0, agree=agree)
    unbudgeted.sync()  # no budget: no collective either
    assert len(readings) == 2


def test_reference_step_leaves_the_random_state_as_it_found_it():
    from gptkit.train.budget import reference_step

    torch.manual_seed(5)
    before = torch.get_rng_state()
    step = reference_step()  # building it seeds its own weights and batch
    step()
    step()
    assert torch.equal(torch.get_rng_state(), before)


def test_reference_steps_become_the_runs_own_steps_saved_and_kept_by_a_resume(data, tmp_path, monkeypatch):
    from gptkit.train import trainer as trainer_module
    from gptkit.train.budget import PairedTiming

    timed = []

    def fake_times(own_step, ref_step):
        own_step()  # the run's own step really runs (on copies), and the reference step too
        ref_step()
        timed.append(1)
        return PairedTiming(ref_s=0.004, own_s=0.010, ratio=2.5)  # one own step = 2.5 reference steps

    monkeypatch.setattr(trainer_module, "paired_step_times", fake_times)
    settings = ("train.max_steps=1000", "train.time_budget_ref_steps=20", "train.schedule=wsd", "train.eval_interval=0")
    first = Trainer(tiny_config(data, *settings), tmp_path / "run", quiet=True)
    assert first.tc.max_steps == 8 and not first.budget  # 20 / 2.5 steps, and no time budget
    assert first.step == 0 and first.optimizer.state_dict()["state"] == {}  # the timing touched copies only
    result = first.run()
    assert result.step == 8 and timed == [1]
    saved = load_run_config(tmp_path / "run" / "config.toml")
    assert saved.train.max_steps == 8 and saved.train.time_budget_ref_steps == 20 and saved.train.time_budget_s == 0
    again = load_run_config(tmp_path / "run" / "config.toml", ["train.max_steps=9"])
    resumed = Trainer(again, tmp_path / "run", resume=True, quiet=True)
    assert timed == [1]  # not timed again: the resumed run keeps the steps it started with
    assert resumed.run().step == 9 and timed == [1]
    # A cap: max_steps below the converted count stays
    capped = Trainer(tiny_config(data, *settings, "train.max_steps=5"), tmp_path / "capped", quiet=True)
    assert capped.tc.max_steps == 5
    capped.close()


def test_reference_steps_run_the_same_updates_as_a_plain_run_of_that_many_steps(data, tmp_path, monkeypatch):
    from gptkit.train import trainer as trainer_module
    from gptkit.train.budget import PairedTiming

    monkeypatch.setattr(trainer_module, "paired_step_times", lambda own, ref: PairedTiming(0.002, 0.004, 2.0))
    settings = ("train.schedule=wsd", "train.eval_interval=0")
    train(tiny_config(data, *settings, "train.max_steps=100", "train.time_budget_ref_steps=14"), tmp_path / "ref")
    train(tiny_config(data, *settings, "train.max_steps=7"), tmp_path / "plain")
    assert train_losses(tmp_path / "ref") == train_losses(tmp_path / "plain")  # same 7 steps, same schedule


def test_time_budget_and_reference_steps_together_refuse_a_new_run_but_resume_an_old_one(data, tmp_path, capsys):
    from gptkit.cli import main

    both = tiny_config(data, "train.time_budget_s=5", "train.time_budget_ref_steps=100")
    with pytest.raises(ConfigError, match=r"train\.time_budget_s and train\.time_budget_ref_steps"):
        Trainer(both, tmp_path / "new", quiet=True)
    assert not (tmp_path / "new").exists()
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "cli"), "--set", "model.preset=tiny"]
    code = main([*argv, "--set", "train.time_budget_s=5", "--set", "train.time_budget_ref_steps=100"])
    err = capsys.readouterr().err
    assert code == 2 and "train.time_budget_s" in err and "train.time_budget_ref_steps" in err
    # A run started before this check (round 9) saved both: its resume keeps its seconds and is not timed.
    settings = ("train.max_steps=1000", "train.time_budget_s=0.3", "train.eval_interval=0")
    train(tiny_config(data, *settings), tmp_path / "old")
    config_path = tmp_path / "old" / "config.toml"
    text = config_path.read_text()
    assert "time_budget_ref_steps = 0" in text
    config_path.write_text(text.replace("time_budget_ref_steps = 0", "time_budget_ref_steps = 1900"))
    old = load_run_config(config_path, ["train.time_budget_s=0.6"])
    assert old.train.time_budget_s == 0.6 and old.train.time_budget_ref_steps == 1900
    resumed = Trainer(old, tmp_path / "old", resume=True, quiet=True)
    assert resumed.budget.seconds == 0.6 and resumed.tc.max_steps == 1000
    assert resumed.run().step > 0


def test_reference_budget_needs_the_wall_clock_and_a_count(data, tmp_path):
    with pytest.raises(ConfigError, match="time_budget_ref_steps"):
        tiny_config(data, "train.time_budget_ref_steps=-1")
    cfg = tiny_config(data, "train.time_budget_ref_steps=10", "train.time_budget_clock=cpu")
    with pytest.raises(ConfigError, match="time_budget_clock"):
        Trainer(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()  # a refused start leaves nothing
