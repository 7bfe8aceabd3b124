"""Replay memories inside real Avalanche runs on the embedded digits: formats, sizes, rebalancing, precision,
selections made with a learner trained on the experience, streams that revisit classes."""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin

from cl_nas.cl import (
    CondensedBuffer,
    benchmark_spec,
    build_memory,
    build_strategy,
    bytes_per_item,
    decode,
    encode,
    images_in_budget,
    make_scenario,
    parse_buffer,
)
from cl_nas.cl.resume import ResumableBuffer
from cl_nas.condense import SyntheticCache, build_condenser
from cl_nas.data import dataset_info
from cl_nas.models import build_model
from cl_nas.train import TrainConfig

MODEL = "convnet:depth=2,width=16"
ORDER = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7]


class BatchRecorder(SupervisedPlugin):
    """Records, per experience, the classes of the training mini-batches, the iterations of the first
    epoch and the weights the first epoch starts from."""

    def __init__(self):
        super().__init__()
        self.classes: set[int] = set()
        self.first_epoch_iterations = 0
        self.start_weights: dict[str, torch.Tensor] = {}

    def before_training_exp(self, strategy, *args, **kwargs):
        self.classes, self.first_epoch_iterations = set(), 0
        self.start_weights = {k: v.clone() for k, v in strategy.model.state_dict().items()}

    def after_forward(self, strategy, *args, **kwargs):
        self.classes |= set(strategy.mb_y.tolist())
        self.first_epoch_iterations += strategy.clock.train_exp_epochs == 0


def learner(benchmark: str):
    spec = benchmark_spec(benchmark)
    torch.manual_seed(0)
    info = spec.info
    return spec, make_scenario(spec, ORDER), build_model(MODEL, info.channels, info.num_classes, info.image_size)


def memory_labels(buffer) -> torch.Tensor:
    return torch.tensor([int(buffer.buffer[i][1]) for i in range(len(buffer.buffer))])


def seen_classes(scenario, k: int) -> list[int]:
    return sorted(int(c) for exp in scenario.train_stream[: k + 1] for c in exp.classes_in_this_experience)


@pytest.mark.parametrize("benchmark,arity", [("split-digits", 3), ("split-digits-xy", 2)])
def test_condensed_buffer_replays_with_the_streams_item_format_and_rebalances(benchmark, arity, tmp_path):
    spec, scenario, model = learner(benchmark)
    condenser = build_condenser("dm", iterations=3, model=MODEL)
    buffer = CondensedBuffer(40, condenser, spec.info, cache=SyntheticCache(tmp_path))
    strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=64, bf16=False), memory=buffer)
    recorder = BatchRecorder()
    strategy.plugins.append(recorder)
    for k, exp in enumerate(scenario.train_stream[:3]):
        strategy.train(exp, eval_streams=[])
        seen = seen_classes(scenario, k)
        if k:  # the memory of the earlier experiences was in the training batches
            assert recorder.classes == set(seen)
        assert len(buffer.buffer[0]) == arity
        share = 40 // len(seen)  # 20, 10, 6: older groups shrank
        assert [g.per_class() for g in buffer.groups] == [share] * (k + 1)
        labels = memory_labels(buffer)
        assert sorted(labels.unique().tolist()) == seen and torch.bincount(labels)[seen].eq(share).all()
    assert buffer.condensed == 3 and buffer.cache_hits == 0


def test_memory_images_are_normalised_like_the_stream():
    spec, scenario, model = learner("split-digits")
    buffer = CondensedBuffer(20, build_condenser("random"), spec.info)
    strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=64, bf16=False), memory=buffer)
    strategy.train(scenario.train_stream[0], eval_streams=[])
    stream = torch.stack([x for x, *_ in scenario.train_stream[0].dataset])
    memory = torch.stack([x for x, *_ in buffer.buffer])
    # real images picked by the coreset must be found bit for bit among the stream's (normalised) items
    assert all((stream == image).flatten(1).all(1).any() for image in memory)


@pytest.mark.parametrize("benchmark", ["split-digits", "split-digits-xy"])
def test_gdumb_style_trains_from_initial_weights_on_the_memory_alone(benchmark):
    spec, scenario, model = learner(benchmark)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    buffer = CondensedBuffer(30, build_condenser("random"), spec.info)
    strategy = build_strategy("gdumb", model, TrainConfig(epochs=2, batch_size=8, bf16=False), memory=buffer)
    recorder = BatchRecorder()
    strategy.plugins.append(recorder)
    for k, exp in enumerate(scenario.train_stream[:3]):
        strategy.train(exp, eval_streams=[])
        assert recorder.classes == set(seen_classes(scenario, k))
        assert recorder.first_epoch_iterations == math.ceil(len(buffer.buffer) / 8)  # memory only, not ~240 images
        assert all(torch.equal(recorder.start_weights[n], w) for n, w in initial.items())  # restarted from scratch
        assert not all(torch.equal(model.state_dict()[n], w) for n, w in initial.items())  # and trained


@pytest.mark.parametrize("total_num_classes,per_class", [(None, 5), (10, 2)])  # shared budget, fixed per class
def test_memories_hold_their_per_class_budget_in_replay(total_num_classes, per_class):
    spec, scenario, model = learner("split-digits")
    for name in ("class-balanced", "herding", "condensed-random", "reservoir"):
        memory = build_memory(parse_buffer(name), 20, model, spec.info, total_num_classes=total_num_classes)
        strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=64, bf16=False), memory=memory)
        for exp in scenario.train_stream[:2]:
            strategy.train(exp, eval_streams=[])
        if name == "reservoir":  # class-blind: fills the whole memory
            assert len(memory.buffer) == 20
        else:
            assert torch.bincount(memory_labels(memory))[seen_classes(scenario, 1)].eq(per_class).all()
            assert len(memory.buffer) == 4 * per_class


def test_reduced_precision_round_trips_and_fits_more_images(digits):
    info, x = digits.info, digits.train.images[:64]
    for precision, tolerance in (("fp16", 1e-2), ("uint8", 0.51 / 255 / info.std[0])):
        stored = encode(x, info, precision)
        back = decode(stored, info, precision)
        assert torch.equal(encode(back, info, precision), stored)  # subselecting keeps stored values exactly
        assert (back - x).abs().max() <= tolerance
    fp32_budget = 10 * bytes_per_item(info, "fp32")  # 10 images of 256 bytes, each with its 1-byte label
    # the 2x and 4x images pay for 2x and 4x labels too
    assert [images_in_budget(fp32_budget, info, p) for p in ("fp32", "fp16", "uint8")] == [10, 19, 39]


def test_real_8bit_images_survive_uint8_storage_exactly():
    info = dataset_info("mnist")
    pixels = torch.randint(0, 256, (16, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    images = info.normalize(pixels / 255.0)  # what the stream's ToTensor and Normalize make of 8-bit pixels
    assert torch.equal(encode(images, info, "uint8"), pixels.to(torch.uint8))
    assert (decode(encode(images, info, "uint8"), info, "uint8") - images).abs().max() < 1e-6


@pytest.mark.parametrize("name", ["condensed-random@uint8", "class-balanced@uint8", "herding@uint8"])
def test_condensed_and_real_uint8_buffers_stay_within_their_byte_budget(name):
    spec, scenario, model = learner("split-digits")
    budget = 5 * 10 * bytes_per_item(spec.info, "fp32")  # 5 fp32 exemplars per class
    images = images_in_budget(budget, spec.info, "uint8")
    memory = build_memory(parse_buffer(name), images, model, spec.info)
    strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=64, bf16=False), memory=memory)
    for exp in scenario.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    stored = [g.stored for g in memory.groups] if isinstance(memory, CondensedBuffer) else [memory.stored]
    assert all(s.dtype == torch.uint8 for s in stored)
    assert 4 * (images // 4) <= len(memory.buffer) <= images and memory.stored_bytes <= budget  # adaptive: leftovers
    assert memory.buffer[0][0].dtype == torch.float32
    memory.resize(strategy, 8)  # a smaller memory shrinks every class to the new share
    assert torch.bincount(memory_labels(memory))[seen_classes(scenario, 1)].eq(2).all() and len(memory.buffer) == 8


def test_real_exemplars_at_uint8_are_the_chosen_images_quantised():
    spec, scenario, model = learner("split-digits")
    memory = build_memory(parse_buffer("class-balanced@uint8"), 40, model, spec.info)
    memory.post_adapt(None, scenario.train_stream[0])
    chosen = torch.stack([x for x, *_ in memory.inner.buffer.eval()])  # Avalanche's picks, as the stream gives them
    replayed = torch.stack([x for x, *_ in memory.buffer])
    assert torch.equal(replayed, decode(encode(chosen, spec.info, "uint8"), spec.info, "uint8"))
    assert [len(item) for item in (memory.buffer[0], memory.inner.buffer[0])] == [3, 3]  # items keep their form


def test_memory_too_small_for_the_seen_classes_is_a_clear_error():
    spec, scenario, model = learner("split-digits")
    buffer = CondensedBuffer(3, build_condenser("random"), spec.info)
    buffer.post_adapt(None, scenario.train_stream[0])  # 2 classes, 1 image each
    with pytest.raises(ValueError, match="cannot hold one image for each of 4 classes"):
        buffer.post_adapt(None, scenario.train_stream[1])
    with pytest.raises(ValueError, match="cannot hold one image for each of 10 classes"):
        CondensedBuffer(9, build_condenser("random"), spec.info, total_num_classes=10).post_adapt(
            None, scenario.train_stream[0]
        )


def test_bounded_herding_keeps_exactly_avalanches_picks():
    from avalanche.training.storage_policy import HerdingSelectionStrategy

    from cl_nas.cl.buffers import BoundedHerding

    features = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    net = torch.nn.Sequential(torch.nn.Identity())
    full = HerdingSelectionStrategy(net, "0").make_sorted_indices_from_features(features)
    bounded = BoundedHerding(net, "0", limit=25).make_sorted_indices_from_features(features)
    assert bounded[:25] == full[:25] and sorted(bounded) == list(range(300))


def test_apm_can_condense_with_the_learner_as_teacher(tmp_path):
    from cl_nas.condense.base import module_fingerprint
    from cl_nas.synthetic import SyntheticSet

    spec, scenario, model = learner("split-digits")
    condenser = build_condenser("apm", iterations=2, student_epochs=2, checkpoints=1, model=MODEL)
    buffer = CondensedBuffer(20, condenser, spec.info, cache=SyntheticCache(tmp_path), teacher_from_model=True)
    strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=64, bf16=False), memory=buffer)
    strategy.train(scenario.train_stream[0], eval_streams=[])
    [entry] = tmp_path.glob("apm-*.pt")
    assert SyntheticSet.load(entry).meta.config["teacher"] == f"sha256:{module_fingerprint(model)}"  # the learner
    assert len(buffer.buffer) == 20
    with pytest.raises(ValueError, match="needs the APM condenser"):
        CondensedBuffer(20, build_condenser("dm"), spec.info, teacher_from_model=True)


class EntryWeights(SupervisedPlugin):
    """The weights the learner enters each experience with, before anything trains on it."""

    def __init__(self):
        super().__init__()
        self.weights: list[dict[str, torch.Tensor]] = []

    def before_train_dataset_adaptation(self, strategy, *args, **kwargs):
        self.weights.append({k: v.clone() for k, v in strategy.model.state_dict().items()})


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[name], b[name]) for name in a)


@pytest.mark.parametrize("strategy_name", ["replay", "gdumb", "er-ace", "ewc-replay", "lwf-replay"])
def test_herding_selects_with_a_learner_trained_on_the_experience(strategy_name):
    spec, scenario, model = learner("split-digits")
    memory = ResumableBuffer(build_memory(parse_buffer("herding"), 20, model, spec.info))  # logs each update's weights
    entry = EntryWeights()
    config = TrainConfig(epochs=2, batch_size=64, bf16=False)
    strategy = build_strategy(strategy_name, model, config, memory=memory, plugins=[entry], experience_epochs=1)
    for exp in scenario.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    updates = memory.take_log()
    assert [u["experience"] for u in updates] == [0, 1]
    # each experience's exemplars were chosen by a network that had trained since entering the experience
    assert not any(same_weights(u["model"], w) for u, w in zip(updates, entry.weights, strict=True))


def test_gdumb_style_updates_a_memory_that_selects_without_the_learner_before_anything_trains():
    spec, scenario, model = learner("split-digits")
    memory = ResumableBuffer(build_memory(parse_buffer("class-balanced"), 20, model, spec.info))
    entry = EntryWeights()
    strategy = build_strategy(
        "gdumb", model, TrainConfig(epochs=2, batch_size=8, bf16=False), memory=memory, plugins=[entry]
    )
    for exp in scenario.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    assert all(same_weights(u["model"], w) for u, w in zip(memory.take_log(), entry.weights, strict=True))


def test_a_stream_revisiting_classes_recondenses_them_within_the_budget():
    from avalanche.benchmarks.scenarios.online import split_online_stream

    spec, scenario, model = learner("split-digits")
    online = split_online_stream(scenario.train_stream[:2], experience_size=64, seed=0)  # 2 x 4 small experiences
    buffer = CondensedBuffer(40, build_condenser("random"), spec.info)
    strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=16, bf16=False), memory=buffer)
    held: dict[int, torch.Tensor] = {}
    revisits = 0
    for exp in online:
        arriving = {int(c): torch.stack([x for x, y, _ in exp.dataset.eval() if y == c]) for c in exp.dataset.targets}
        strategy.train(exp, eval_streams=[])
        seen = sorted(set(held) | set(arriving))
        labels = memory_labels(buffer)
        assert sorted(labels.unique().tolist()) == seen and torch.bincount(labels)[seen].eq(40 // len(seen)).all()
        assert sum(len(g.labels.unique()) for g in buffer.groups) == len(seen)  # no class in two groups
        memory = torch.stack([x for x, *_ in buffer.buffer])
        for c in set(held) & set(arriving):  # re-condensed from what was stored and what arrived
            revisits += 1
            candidates = torch.cat([held[c], arriving[c]]).flatten(1)
            assert all((candidates == image.flatten()).all(1).any() for image in memory[labels == c])
        held = {c: memory[labels == c] for c in seen}
    assert revisits == 12 and buffer.stored_bytes <= 40 * bytes_per_item(spec.info, "fp32")
