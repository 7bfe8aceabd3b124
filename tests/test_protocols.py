"""Named evaluation protocols, DC's augmentation, teachers and teacher-logit labels (real digits runs)."""

import _thread
import signal
import threading
import time

import pytest
import torch

from cl_nas.augment import DEFAULT_STRATEGY, DCAugment
from cl_nas.cli import main
from cl_nas.condense import build_condenser
from cl_nas.condense.teacher import TeacherRecipe, TeacherStore, teacher_logits, train_teacher
from cl_nas.protocols import (
    TEACHER_LOGITS,
    evaluate_synthetic,
    protocol_names,
    resolve_protocol,
    training_targets,
)
from cl_nas.synthetic import SyntheticSet, SyntheticSetError
from cl_nas.train import accuracy
from cl_nas.utils import load_torch_file


@pytest.mark.parametrize(
    "name,dataset,model,epochs,augment,labels",
    [
        ("dc", "mnist", "convnet", 1000, "dc:crop_scale_rotate", "hard"),
        ("dc", "fashionmnist", "convnet", 300, "none", "hard"),
        ("dc", "fashionmnist", "convnet:norm=batch", 1000, "dc:crop_noise", "hard"),
        ("dsa", "mnist", "convnet", 1000, "dsa:color_crop_cutout_scale_rotate", "hard"),
        ("dsa", "fashionmnist", "convnet", 1000, f"dsa:{DEFAULT_STRATEGY}", "hard"),
        ("dm", "mnist", "convnet", 1000, f"dsa:{DEFAULT_STRATEGY}", "hard"),  # DM's code keeps flip for digits
        ("apm", "mnist", "convnet", 1000, "dsa:color_crop_cutout_scale_rotate", TEACHER_LOGITS),
        ("fast", "fashionmnist", "convnet", 300, f"dsa:{DEFAULT_STRATEGY}", "hard"),
    ],
)
def test_protocols_prescribe_the_papers_settings(name, dataset, model, epochs, augment, labels):
    settings = resolve_protocol(name, dataset, model)
    assert (settings.protocol, settings.epochs, settings.augment, settings.labels) == (
        name,
        epochs,
        augment,
        labels,
    )
    assert settings.train_config().loss == ("l1" if labels == TEACHER_LOGITS else "cross_entropy")


def test_protocol_registry_and_epoch_override():
    assert protocol_names() == ["apm", "dc", "dm", "dsa", "fast"]
    assert resolve_protocol("dm", "mnist", epochs=20).protocol == "dm@20ep"
    with pytest.raises(ValueError, match="did you mean 'dsa'"):
        resolve_protocol("dsb", "mnist")


def test_dc_crop_translates_by_whole_pixels_and_fills_with_the_channel_mean():
    x = torch.arange(2 * 36, dtype=torch.float32).view(2, 1, 6, 6)
    out = DCAugment("crop", crop=2)(x, torch.Generator().manual_seed(3))
    mean = x.mean().item()
    for image, shifted in zip(x, out, strict=True):
        kept = shifted[0][shifted[0] != mean]
        # a translation keeps a contiguous block of the original values, everything else is the fill
        assert set(kept.tolist()) <= set(image[0].flatten().tolist())
        assert len(kept) >= 4 * 4 and (shifted[0] == mean).sum() + len(kept) == 36


def test_dc_augmentation_is_seeded_and_rejects_unknown_operations():
    x = torch.randn(16, 1, 28, 28)
    first = DCAugment()(x, torch.Generator().manual_seed(0))
    assert torch.equal(first, DCAugment()(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, x) and first.shape == x.shape
    with pytest.raises(ValueError, match="unknown DC augmentation"):
        DCAugment("crop_blur")


@pytest.fixture(scope="module")
def digits_teacher(digits, tmp_path_factory, device):
    store = TeacherStore(tmp_path_factory.mktemp("teachers"))
    recipe = TeacherRecipe(model="convnet:width=32", epochs=30, lr=0.05, augment="none")
    net, meta = store.get_or_train(digits.train, recipe, device=device)
    again, meta_again = store.get_or_train(digits.train, recipe, device=device)  # read back, not retrained
    assert meta_again == meta and all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True)
    )
    return net, meta


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as in a terminal: a shell starts its background jobs with SIGINT
    ignored, and then ``_thread.interrupt_main`` does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_an_interrupted_teacher_resumes_from_its_last_epoch_and_repeats_the_uninterrupted_run(digits, tmp_path):
    # DSA draws its augmentations from torch's global random state, which the checkpoint must carry too
    recipe = TeacherRecipe(model="convnet:depth=2,width=16", epochs=40, lr=0.05, augment="dsa")
    whole, _ = train_teacher(digits.train, recipe, device="cpu")
    store = TeacherStore(tmp_path)
    partial = store.path(digits.train, recipe).with_name(store.path(digits.train, recipe).stem + ".partial.pt")

    def interrupt_after_the_first_saved_epoch():
        deadline = time.monotonic() + 120
        while not partial.is_file() and time.monotonic() < deadline:
            time.sleep(0.001)
        _thread.interrupt_main()  # what Ctrl-C does: a KeyboardInterrupt in the training loop

    watcher = threading.Thread(target=interrupt_after_the_first_saved_epoch)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        store.get_or_train(digits.train, recipe, device="cpu")
        time.sleep(60)  # reached only if the training ended before the interrupt came
    watcher.join()
    epochs_kept = load_torch_file(partial, "checkpoint")["done"]["epochs"]
    assert 1 <= epochs_kept < recipe.epochs and not store.path(digits.train, recipe).is_file()

    resumed, meta = store.get_or_train(digits.train, recipe, device="cpu")
    assert not partial.exists() and meta["train_seconds"] > 0
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_teacher_is_trained_once_and_labels_a_set(digits, digits_teacher, tmp_path):
    net, meta = digits_teacher
    assert accuracy(net, digits.test) > 80.0
    syn = build_condenser("random").condense(digits.train, ipc=5, seed=0)
    labelled = syn.with_teacher_logits(teacher_logits([net], syn.images), meta)
    back = SyntheticSet.load(labelled.save(tmp_path / "labelled.pt"))
    assert torch.equal(back.teacher_logits, labelled.teacher_logits)
    assert back.meta.teacher["fingerprint"] == meta["fingerprint"]
    # the teacher mostly agrees with the real labels of real images
    assert (back.teacher_logits.argmax(1) == back.labels).float().mean() > 0.8
    with pytest.raises(SyntheticSetError, match="teacher_logits must be"):
        SyntheticSet(syn.images, syn.labels, syn.meta, torch.zeros(len(syn), 3))


def test_apm_protocol_trains_on_teacher_logits(digits, digits_teacher, device):
    net, meta = digits_teacher
    syn = build_condenser("random").condense(digits.train, ipc=5, seed=0)
    settings = resolve_protocol("apm", "digits", epochs=300)
    with pytest.raises(ValueError, match="trains on a teacher's logits"):
        training_targets(syn, settings)
    labelled = syn.with_teacher_logits(teacher_logits([net], syn.images), meta)
    result = evaluate_synthetic(labelled, digits.test, settings, model="convnet:width=32", n_seeds=1, device=device)
    assert result.mean > 30.0  # ten classes: chance is 10 %; L1 on logits learns slower than cross-entropy


def test_cli_evaluate_with_a_protocol(tmp_path, capsys):
    path = tmp_path / "r.pt"
    assert main(["condense", "--dataset", "digits", "--method", "random", "--ipc", "2", "--out", str(path)]) == 0
    assert main(["evaluate", str(path), "--protocol", "apm", "--epochs", "2", "--eval-seeds", "1"]) == 2
    assert "trains on a teacher's logits" in capsys.readouterr().err
    rc = main(["evaluate", str(path), "--protocol", "dc", "--epochs", "2", "--eval-seeds", "1"])
    assert rc == 0 and "protocol=dc@2ep" in capsys.readouterr().out
