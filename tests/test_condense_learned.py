"""The learned condensers (DM, DC, DSA, APM), their shared engine, resume and the synthetic-set cache.

Everything runs on real data (scikit-learn digits) with a small ConvNet so the file stays fast.
"""

import inspect
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from cl_nas.condense import (
    APMCondenser,
    CondensationDiverged,
    DMCondenser,
    DSACondenser,
    RandomCoreset,
    SyntheticCache,
    available_methods,
    build_condenser,
)
from cl_nas.condense.cache import CACHE_ENV_VAR
from cl_nas.condense.dc import DCCondenser, dc_loops, gradient_distance
from cl_nas.condense.iterative import group_slices, logits
from cl_nas.condense.teacher import TeacherStore, teacher_logits
from cl_nas.models import build_model
from cl_nas.utils import parse_params

REPO = Path(__file__).resolve().parents[1]
SMALL_NET = "convnet:width=16,depth=2"
FAST = {
    "dm": {"iterations": 4, "batch_real": 32, "model": SMALL_NET},
    "dc": {"iterations": 2, "batch_real": 32, "outer_loop": 2, "inner_loop": 2, "model": SMALL_NET},
    "dsa": {"iterations": 2, "batch_real": 32, "outer_loop": 2, "inner_loop": 2, "model": SMALL_NET},
    "apm": {"iterations": 3, "teacher_epochs": 1, "student_epochs": 4, "checkpoints": 2, "model": SMALL_NET},
}


@pytest.mark.parametrize("method", sorted(FAST))
def test_learned_method_returns_a_valid_synthetic_set(method, digits):
    condenser = build_condenser(method, **FAST[method])
    syn = condenser.condense(digits.train, ipc=3, seed=0)
    assert syn.images.shape == (30, 1, 8, 8)
    assert torch.bincount(syn.labels).tolist() == [3] * 10
    assert torch.isfinite(syn.images).all()
    assert syn.meta.method == method and syn.meta.ipc == 3
    assert len(condenser.losses_) == FAST[method]["iterations"]


def test_learned_methods_are_registered_with_their_augmentation_defaults():
    assert {"dm", "dc", "dsa", "apm"} <= set(available_methods())
    assert build_condenser("dc").get_config()["dsa_strategy"] == "none"
    assert build_condenser("dsa").get_config()["dsa_strategy"] is None  # the dataset's default strategy


def test_dm_moves_the_images_and_lowers_its_loss(digits):
    condenser = DMCondenser(iterations=40, batch_real=64, model=SMALL_NET)
    syn = condenser.condense(digits.train, ipc=5, seed=0)
    init = RandomCoreset().condense(digits.train, ipc=5, seed=0)  # the same draw initialises DM
    assert torch.equal(syn.labels, init.labels)
    assert (syn.images - init.images).abs().mean() > 1e-2
    losses = torch.tensor(condenser.losses_)
    assert losses[-10:].mean() < 0.8 * losses[:10].mean()


def test_snapshots_record_the_images_along_the_run(digits):
    condenser = DMCondenser(**{**FAST["dm"], "iterations": 6}, snapshot_at=(2, 6))
    syn = condenser.condense(digits.train, ipc=2, seed=0)
    assert [s.iteration for s in condenser.snapshots_] == [2, 6]
    assert torch.equal(condenser.snapshots_[-1].images, syn.images)  # the last iteration is the result
    assert not torch.equal(condenser.snapshots_[0].images, syn.images)
    assert 0 < condenser.snapshots_[0].seconds <= condenser.snapshots_[1].seconds
    early, last = condenser.snapshot_sets(syn)
    assert early.meta.config["iterations"] == 2 and last.meta.config == syn.meta.config
    assert torch.equal(early.labels, syn.labels) and early.meta.wall_seconds == condenser.snapshots_[0].seconds
    plain = DMCondenser(**{**FAST["dm"], "iterations": 6})
    assert plain.cache_key(digits.train, 2, 0) == condenser.cache_key(digits.train, 2, 0)  # a runtime option


def test_a_task_with_some_classes_keeps_its_labels(digits):
    train = digits.train
    task = train.subset(torch.nonzero((train.labels == 3) | (train.labels == 7), as_tuple=True)[0])
    syn = DMCondenser(**FAST["dm"]).condense(task, ipc=2, seed=0)
    assert syn.labels.tolist() == [3, 3, 7, 7]


# --- DC's distance and per-class gradients ---------------------------------------------------------
def test_gradient_distance_is_zero_for_identical_gradients():
    torch.manual_seed(0)
    grads = [torch.randn(3, 4, 2, 3, 3), torch.randn(3, 4), torch.randn(3, 10, 8)]
    assert gradient_distance(grads, [g.clone() for g in grads]).item() == pytest.approx(0.0, abs=1e-5)


def test_gradient_distance_matches_a_hand_computed_value():
    # one class; a 2x2 "linear" weight: row 0 identical (cos 1), row 1 orthogonal (cos 0)
    syn = [torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.tensor([[5.0, -5.0]])]
    real = [torch.tensor([[[2.0, 0.0], [3.0, 0.0]]]), torch.tensor([[1.0, 1.0]])]  # the bias counts 0
    expected = (1 - 2 / (2 + 1e-6)) + (1 - 0 / (3 + 1e-6))
    assert gradient_distance(syn, real).item() == pytest.approx(expected, abs=1e-6)
    # conv weights compare per output channel over (in, kh, kw); classes add up
    conv_syn = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 2, 2).repeat(2, 1, 1, 1, 1)
    conv_real = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 1, 2, 2).repeat(2, 1, 1, 1, 1)
    cos = 1 / (1 * 2**0.5 + 1e-6)
    assert gradient_distance([conv_syn], [conv_real]).item() == pytest.approx(2 * (1 - cos), abs=1e-6)


def test_class_gradients_in_chunks_equal_whole_class_autograd(digits):
    dc = DCCondenser(**FAST["dc"], bf16=False)
    run = dc.start_run(digits.train, 3, torch.Generator().manual_seed(0))
    net = dc.fresh_model(run.info)
    params = list(net.parameters())
    real, labels, groups = run.real.sample(20, run.generator)
    slices = group_slices(groups, run.num_groups)
    ours = dc._class_gradients(net, params, real, labels, slices, 7, logits)  # chunks of 7 cut every class
    for c, sl in enumerate(slices):
        expected = torch.autograd.grad(F.cross_entropy(net(real[sl]), labels[sl]), params)
        for got, want in zip(ours, expected, strict=True):
            torch.testing.assert_close(got[c], want, rtol=1e-4, atol=1e-6)


def test_dc_loops_follow_the_reference_and_interpolate():
    assert [dc_loops(i) for i in (1, 10, 50)] == [(1, 1), (10, 50), (50, 10)]
    assert dc_loops(100) == (50, 10)
    outer, inner = dc_loops(5)
    assert 1 < outer < 10 and 1 < inner < 50


# --- DSA ---------------------------------------------------------------------------------------------
def test_siamese_dsa_shares_a_draw_within_a_class_only(digits):
    dm = DMCondenser(**FAST["dm"], dsa_strategy="scale_rotate")
    run = dm.start_run(digits.train, 2, torch.Generator().manual_seed(0))
    image = run.images[:1].detach()
    as_class = [torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.long)]
    for _ in range(5):
        params = run.dsa_params()
        real_side = run.augment(image.clone(), as_class[0], params)
        syn_side = run.augment(image, as_class[0], params)
        other_class = run.augment(image, as_class[1], params)
        assert torch.equal(real_side, syn_side)
        assert not torch.equal(syn_side, other_class)


# --- APM ---------------------------------------------------------------------------------------------
def test_apm_result_carries_its_given_teachers_logits(digits):
    teacher = build_model(SMALL_NET, 1, 10, (8, 8)).eval()
    options = {k: v for k, v in FAST["apm"].items() if k != "teacher_epochs"}
    apm = APMCondenser(teacher=teacher, **options)
    syn = apm.condense(digits.train, ipc=2, seed=0)
    assert syn.teacher_logits.shape == (20, 10)
    torch.testing.assert_close(syn.teacher_logits, teacher(syn.images).detach())
    other = build_model(SMALL_NET, 1, 10, (8, 8))
    assert apm.cache_key(digits.train, 2, 0) != APMCondenser(teacher=other, **options).cache_key(digits.train, 2, 0)


def test_apm_keeps_its_teacher_for_baselines_to_share(digits, tmp_path):
    first = APMCondenser(**FAST["apm"], teacher_dir=tmp_path).condense(digits.train, ipc=2, seed=0)
    second = APMCondenser(**FAST["apm"], teacher_dir=tmp_path).condense(digits.train, ipc=2, seed=1)
    assert len(list(tmp_path.glob("teacher-*.pt"))) == 1  # trained once, reused by the second run
    [described] = first.meta.teacher["teachers"]
    assert second.meta.teacher == first.meta.teacher and described["epochs"] == FAST["apm"]["teacher_epochs"]
    # a baseline labelled by the stored teacher gets exactly the logits APM's own set got
    recipe = APMCondenser(**FAST["apm"]).teacher_recipes(digits.train.info)[0]
    teacher, meta = TeacherStore(tmp_path).get_or_train(digits.train, recipe)
    assert meta["fingerprint"] == described["fingerprint"]
    torch.testing.assert_close(teacher_logits([teacher], first.images), first.teacher_logits)


def test_apm_chunks_accumulate_to_the_whole_batch_gradient(digits):
    whole = APMCondenser(**FAST["apm"]).condense(digits.train, ipc=3, seed=1)
    chunked = APMCondenser(**FAST["apm"], chunk_size=7).condense(digits.train, ipc=3, seed=1)
    torch.testing.assert_close(chunked.images, whole.images, rtol=1e-4, atol=1e-4)


# --- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method, options, message",
    [
        ("dm", {"iterations": 0}, "iterations"),
        ("dc", {"iterations": -3}, "iterations"),
        ("dm", {"init": "zeros"}, "init"),
        ("dsa", {"dsa_strategy": "color_blur"}, "blur"),
        ("apm", {"chunk_size": 0}, "chunk_size"),
        ("apm", {"chunk_size": -1}, "chunk_size"),
        ("dm", {"model": "transformer"}, "transformer"),
        ("dm", {"iterations": 10, "snapshot_at": (5, 11)}, "snapshot_at 11"),
        ("dm", {"snapshot_at": (0,)}, "snapshot_at"),
    ],
)
def test_bad_configuration_is_rejected_at_construction(method, options, message):
    with pytest.raises(ValueError, match=message):
        build_condenser(method, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr_img": math.inf}, r"lr_img must be a finite number > 0, got inf"),
        ({"lr_img": "nan"}, r"lr_img must be a finite number > 0, got 'nan'"),
        ({"momentum": 1}, r"momentum must be a finite number in \[0, 1\), got 1"),
        ({"iterations": 2.0}, r"iterations must be a positive integer, got 2.0"),
        ({"iterations": True}, r"iterations must be a positive integer, got True"),
        ({"compile": "maybe"}, r"compile must be a boolean, got 'maybe'"),
        ({"compile": 2}, r"compile must be a boolean, got 2"),
        ({"bf16": "yes please"}, r"bf16 must be a boolean or None, got 'yes please'"),
        ({"teacher": "resnet"}, r"teacher must be a Module or None, got 'resnet'"),
    ],
)
def test_values_are_checked_against_their_declaration(options, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        build_condenser("apm", **options)


def test_an_unknown_setting_names_the_closest_valid_one():
    with pytest.raises(ValueError) as caught:
        build_condenser("dm", iteration=5)
    message = str(caught.value)
    assert message.startswith(
        "condenser 'dm' does not accept option 'iteration'; did you mean 'iterations'? its options:"
    )
    assert "batch_real" in message and "\n" not in message


@pytest.mark.parametrize(
    "text, value",
    [
        ("true", True),
        ("YES", True),
        ("on", True),
        ("1", True),
        ("False", False),
        ("no", False),
        ("Off", False),
        ("0", False),
    ],
)
def test_booleans_from_text_are_strict(text, value):
    assert build_condenser("dm", **parse_params([f"compile={text}"])).compile is value


def test_command_line_text_is_parsed_by_the_declared_types():
    dc = build_condenser("dc", **parse_params(["iterations=3", "lr_img=1", "outer_loop=none", "dsa_strategy=none"]))
    assert (dc.iterations, dc.lr_img, dc.outer_loop, dc.dsa_strategy) == (3, 1.0, None, "none")  # "none": DSA off
    assert build_condenser("dm", snapshot_at="4, 2,4", iterations=5).snapshot_at == (2, 4)
    assert inspect.signature(DMCondenser).parameters["iterations"].default == 20000  # what help() shows


def test_set_params_revalidates_and_changes_nothing_on_error(tmp_path):
    dm = DMCondenser(iterations=10)
    key_before = dm.get_config()
    assert dm.set_params(iterations="20", checkpoint_dir=str(tmp_path)) is dm
    assert dm.iterations == 20 and dm.checkpoint_dir == tmp_path
    assert dm.get_config() == {**key_before, "iterations": 20}  # checkpoint_dir is a runtime setting
    with pytest.raises(ValueError, match="snapshot_at 30 is beyond the run's 20 iterations"):
        dm.set_params(snapshot_at=(30,))
    with pytest.raises(ValueError, match="iterations must be a positive integer, got 0"):
        dm.set_params(iterations=0)
    assert dm.iterations == 20 and dm.snapshot_at == ()
    apm = APMCondenser(student_epochs=4, checkpoints=2)
    with pytest.raises(ValueError, match=r"checkpoints \(5\) cannot exceed student_epochs \(4\)"):
        apm.set_params(checkpoints=5)
    assert apm.checkpoints == 2


def test_ipc_beyond_a_class_needs_noise_init(digits):
    small = digits.train.subset(torch.cat([digits.train.class_indices(c)[:4] for c in range(10)]))
    with pytest.raises(ValueError, match="ipc=5 exceeds"):
        DMCondenser(**FAST["dm"]).condense(small, ipc=5)
    syn = DMCondenser(**FAST["dm"], init="noise").condense(small, ipc=5)
    assert syn.images.shape == (50, 1, 8, 8)


# --- divergence --------------------------------------------------------------------------------------
def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    dm = DMCondenser(**{**FAST["dm"], "iterations": 10}, lr_img=1e30, checkpoint_dir=tmp_path, checkpoint_every=1)
    with pytest.raises(CondensationDiverged, match="Lower the image learning rate") as caught:
        dm.condense(digits.train, ipc=2, seed=0)
    err = caught.value
    assert "diverged in iteration" in str(err) and err.checkpoint is not None and err.checkpoint.is_file()
    saved = torch.load(err.checkpoint, weights_only=True)
    assert saved["iteration"] == err.iteration - 1
    assert torch.isfinite(saved["images"]).all()


# --- resume ------------------------------------------------------------------------------------------
class CountingDM(DMCondenser):
    """DM that counts its steps and condense calls (same name and config, so the same cache key)."""

    def __init__(self, **options):
        super().__init__(**options)
        self.steps = self.calls = 0

    def step(self, run, iteration):
        self.steps += 1
        return super().step(run, iteration)

    def _condense(self, train_set, ipc, seed, generator):
        self.calls += 1
        return super()._condense(train_set, ipc, seed, generator)


RESUME = {"iterations": 300, "batch_real": 16, "model": "convnet:width=8,depth=1"}


@pytest.mark.slow  # starts other processes
def test_resume_after_kill_9_continues_from_the_checkpoint(digits, tmp_path):
    options = {**RESUME, "checkpoint_dir": str(tmp_path), "checkpoint_every": 10, "snapshot_at": (5, 295)}
    code = (
        f"import torch; torch.set_num_threads({torch.get_num_threads()})\n"
        "from cl_nas.data import load_dataset\n"
        "from cl_nas.condense import DMCondenser\n"
        f"DMCondenser(**{options!r}).condense(load_dataset('digits').train, 2, seed=1)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*.ckpt")):
        assert proc.poll() is None, f"the condensation ended before a checkpoint: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    (checkpoint,) = tmp_path.glob("*.ckpt")
    saved = torch.load(checkpoint, weights_only=True)["iteration"]
    assert 0 < saved < RESUME["iterations"]

    resumed = CountingDM(**options)
    assert checkpoint == resumed.checkpoint_path(digits.train, 2, 1)
    result = resumed.condense(digits.train, 2, seed=1)
    assert resumed.steps == RESUME["iterations"] - saved  # resumed, not restarted
    assert not checkpoint.exists()  # removed on completion
    plain = DMCondenser(**RESUME, snapshot_at=(5, 295))
    uninterrupted = plain.condense(digits.train, 2, seed=1)
    assert torch.equal(result.images, uninterrupted.images)
    assert len(resumed.losses_) == RESUME["iterations"]
    # the snapshot taken before the kill came back with the checkpoint
    assert [s.iteration for s in resumed.snapshots_] == [5, 295]
    assert all(torch.equal(a.images, b.images) for a, b in zip(resumed.snapshots_, plain.snapshots_, strict=True))


def test_a_different_config_ignores_a_foreign_checkpoint(digits, tmp_path):
    first = DMCondenser(**FAST["dm"], checkpoint_dir=tmp_path)
    other = DMCondenser(**{**FAST["dm"], "lr_img": 0.5}, checkpoint_dir=tmp_path)
    assert first.checkpoint_path(digits.train, 2, 0) != other.checkpoint_path(digits.train, 2, 0)
    assert first.checkpoint_path(digits.train, 2, 0) != first.checkpoint_path(digits.train, 2, 1)


# --- cache -------------------------------------------------------------------------------------------
def test_cache_condenses_once(digits, tmp_path):
    cache = SyntheticCache(tmp_path)
    condenser = CountingDM(**FAST["dm"])
    first = cache.get_or_condense(condenser, digits.train, 2, seed=0)
    second = cache.get_or_condense(condenser, digits.train, 2, seed=0)
    assert condenser.calls == 1
    assert torch.equal(first.images, second.images) and second.meta.method == "dm"
    cache.get_or_condense(condenser, digits.train, 2, seed=1)  # another seed is another entry
    assert condenser.calls == 2 and len(list(tmp_path.glob("*.pt"))) == 2
    runtime_only = CountingDM(**FAST["dm"], progress=True, checkpoint_every=7)  # same result, same entry
    cache.get_or_condense(runtime_only, digits.train, 2, seed=0)
    assert runtime_only.calls == 0
    again = cache.condense(runtime_only, digits.train, 2, seed=0)  # condenses even when cached, and stores it
    assert runtime_only.calls == 1 and len(list(tmp_path.glob("*.pt"))) == 2
    assert torch.equal(cache.get(condenser, digits.train, 2, 0).images, again.images)


class InterruptedDM(DMCondenser):
    """DM stopped by Ctrl-C in iteration ``stop_at`` (not a constructor option: the cache key stays DM's)."""

    stop_at = 25

    def step(self, run, iteration):
        if iteration == self.stop_at:
            raise KeyboardInterrupt
        return super().step(run, iteration)


def test_an_interrupted_cached_condensation_resumes_from_its_checkpoint(digits, tmp_path):
    options = {**FAST["dm"], "iterations": 30, "checkpoint_every": 10}
    cache = SyntheticCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_condense(InterruptedDM(**options), digits.train, 2, seed=0)
    (checkpoint,) = cache.checkpoint_root.glob("*.ckpt")
    assert torch.load(checkpoint, weights_only=True)["iteration"] == 20
    resumed = CountingDM(**options)
    result = cache.get_or_condense(resumed, digits.train, 2, seed=0)
    assert resumed.steps == 10  # from the checkpoint, not from the start
    assert not checkpoint.exists()
    uninterrupted = DMCondenser(**options).condense(digits.train, 2, seed=0)
    assert torch.equal(result.images, uninterrupted.images)


def test_cache_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "elsewhere"))
    assert SyntheticCache().root == tmp_path / "elsewhere"
    assert SyntheticCache(tmp_path).root == tmp_path


def test_cache_recomputes_a_broken_entry(digits, tmp_path):
    cache = SyntheticCache(tmp_path)
    condenser = CountingDM(**FAST["dm"])
    cache.path(condenser, digits.train, 2, 0).write_bytes(b"not a synthetic set")
    with pytest.warns(UserWarning, match="broken cache entry"):
        syn = cache.get_or_condense(condenser, digits.train, 2, seed=0)
    assert condenser.calls == 1 and syn.images.shape == (20, 1, 8, 8)


def test_dsa_and_dc_differ_in_cache_key(digits):
    dc, dsa = DCCondenser(**FAST["dc"]), DSACondenser(**FAST["dsa"])
    assert dc.cache_key(digits.train, 1, 0) != dsa.cache_key(digits.train, 1, 0)
