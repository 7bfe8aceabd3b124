"""Replay memories inside real Avalanche runs on the embedded digits: formats, sizes, rebalancing, precision."""

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
    bytes_per_image,
    decode,
    encode,
    images_in_budget,
    make_scenario,
    parse_buffer,
)
from cl_nas.condense import SyntheticCache, build_condenser
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
    fp32_budget = 10 * bytes_per_image(info, "fp32")
    assert [images_in_budget(fp32_budget, info, p) for p in ("fp32", "fp16", "uint8")] == [10, 20, 40]


def test_uint8_buffer_stays_within_its_byte_budget():
    spec, scenario, model = learner("split-digits")
    budget = 5 * 10 * bytes_per_image(spec.info, "fp32")  # 5 fp32 images per class
    images = images_in_budget(budget, spec.info, "uint8")
    buffer = CondensedBuffer(images, build_condenser("random"), spec.info, precision="uint8")
    strategy = build_strategy("replay", model, TrainConfig(epochs=1, batch_size=64, bf16=False), memory=buffer)
    for exp in scenario.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    assert all(g.stored.dtype == torch.uint8 for g in buffer.groups)
    assert len(buffer.buffer) == 4 * (images // 4) and buffer.stored_bytes <= budget
    assert buffer.buffer[0][0].dtype == torch.float32
    buffer.resize(strategy, 8)  # a smaller memory shrinks every group to the new share
    assert [g.per_class() for g in buffer.groups] == [2, 2] and len(buffer.buffer) == 8


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
    with pytest.raises(ValueError, match="already in memory"):
        buffer.post_adapt(None, scenario.train_stream[0])


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
