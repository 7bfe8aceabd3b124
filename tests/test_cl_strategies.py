"""Strategies by name on the embedded digits: each one replays a condensed buffer, Avalanche's GDumb takes only
memories that select without the learner, and a strategy reports to the caller's evaluator, loggers and plugins."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TextLogger
from avalanche.training.plugins import EvaluationPlugin

from cl_nas.cl import CondensedBuffer, benchmark_spec, build_memory, build_strategy, make_scenario, parse_buffer
from cl_nas.cl.strategies import strategy_options
from cl_nas.condense import build_condenser
from cl_nas.models import build_model
from cl_nas.train import TrainConfig

MODEL = "convnet:depth=2,width=16"
ORDER = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7]
CONFIG = TrainConfig(epochs=2, batch_size=32, bf16=False)


class ClassRecorder(SupervisedPlugin):
    """The classes of each experience's training mini-batches, ER-ACE's separately drawn replay batch included."""

    def __init__(self):
        super().__init__()
        self.current: set[int] = set()
        self.replayed_counts: Counter[int] = Counter()

    @property
    def replayed(self) -> set[int]:
        return set(self.replayed_counts)

    def before_training_exp(self, strategy, *args, **kwargs):
        self.current, self.replayed_counts = set(), Counter()

    def after_forward(self, strategy, *args, **kwargs):
        self.current |= set(strategy.mb_y.tolist())
        if getattr(strategy, "mb_buffer_y", None) is not None:
            self.replayed_counts.update(strategy.mb_buffer_y.tolist())


@pytest.fixture
def digits_stream():
    spec = benchmark_spec("split-digits")
    torch.manual_seed(0)
    model = build_model(MODEL, spec.info.channels, spec.info.num_classes, spec.info.image_size)
    return spec, make_scenario(spec, ORDER), model


@pytest.mark.parametrize("name", ["replay", "er-ace", "ewc-replay", "lwf-replay", "gdumb", "avalanche-gdumb"])
def test_every_strategy_with_memory_learns_from_a_condensed_buffer(name, digits_stream):
    spec, scenario, model = digits_stream
    memory = CondensedBuffer(20, build_condenser("random"), spec.info, total_num_classes=10)
    recorder = ClassRecorder()
    strategy = build_strategy(name, model, CONFIG, memory=memory, plugins=[recorder])
    for exp in scenario.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    first, second = ({int(c) for c in exp.classes_in_this_experience} for exp in scenario.train_stream[:2])
    assert recorder.current | recorder.replayed == first | second  # the memory of experience 0 was trained on
    if name == "er-ace":  # its replayed batches hold the earlier classes and a sample of the current ones
        assert recorder.replayed == first | second and recorder.current == second
    assert sorted({int(y) for _, y, _ in memory.buffer}) == sorted(first | second)


def test_er_ace_learns_the_current_experience_and_keeps_the_earlier_one(digits_stream):
    # ACE's loss on the incoming batch sees the current classes only: without them in the replayed batches
    # (memory updated after training) the network predicted none of them, 0 % on the experience just learned
    spec, scenario, model = digits_stream
    memory = CondensedBuffer(20, build_condenser("random"), spec.info, total_num_classes=10)
    recorder = ClassRecorder()
    strategy = build_strategy("er-ace", model, replace(CONFIG, epochs=10), memory=memory, plugins=[recorder])
    for exp in scenario.train_stream[:2]:
        strategy.train(exp, eval_streams=[])
    replayed = recorder.replayed_counts
    assert len(set(replayed.values())) == 1  # as many of each class: two of memory, two drawn from experience 1
    metrics = strategy.eval(scenario.test_stream[:2])
    accuracy = [metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp00{i}"] for i in range(2)]
    assert min(accuracy) > 0.5, accuracy


def test_avalanche_gdumb_takes_only_memories_that_select_without_the_learner(digits_stream):
    spec, scenario, model = digits_stream
    for name, per_class in [("herding", 10), ("condensed-random", None)]:  # herding; shrinking groups by herding
        memory = build_memory(parse_buffer(name), 20, model, spec.info, total_num_classes=per_class)
        with pytest.raises(ValueError, match="freshly reset model"):
            build_strategy("avalanche-gdumb", model, CONFIG, memory=memory)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    memory = build_memory(parse_buffer("class-balanced@uint8"), 40, model, spec.info, total_num_classes=10)
    strategy = build_strategy("avalanche-gdumb", model, CONFIG, memory=memory)
    model.load_state_dict({k: torch.zeros_like(v) for k, v in initial.items()})  # as a resumed run's weights
    strategy.train(scenario.train_stream[0], eval_streams=[])
    plugin = next(p for p in strategy.plugins if hasattr(p, "init_model"))
    assert all(torch.equal(plugin.init_model.state_dict()[k], v) for k, v in initial.items())  # reset to these
    assert len(memory.buffer) == 8  # 4 uint8 images per class of the first two
    assert strategy.model is not model  # Avalanche's plugin trains a copy


def test_a_strategy_reports_to_the_callers_evaluator_loggers_and_plugins(digits_stream):
    spec, scenario, model = digits_stream

    class Count(SupervisedPlugin):
        experiences = 0

        def after_training_exp(self, strategy, *args, **kwargs):
            self.experiences += 1

    count, text = Count(), io.StringIO()
    strategy = build_strategy("naive", model, CONFIG, loggers=[TextLogger(text)], plugins=[count])
    strategy.train(scenario.train_stream[0], eval_streams=[])
    strategy.eval(scenario.test_stream[:1])
    assert count.experiences == 1
    for name in ("Top1_Acc_Stream", "EvalStream/Acc_Matrix", "StreamForgetting", "StreamBWT", "Time_Epoch",
                 "MaxRAMUsage_Stream"):  # fmt: skip
        assert name in text.getvalue()
    evaluator = EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])
    strategy = build_strategy("naive", model, CONFIG, evaluator=evaluator)
    strategy.train(scenario.train_stream[0], eval_streams=[])
    strategy.eval(scenario.test_stream[:1])
    assert "Top1_Acc_Stream/eval_phase/test_stream/Task000" in evaluator.get_last_metrics()
    with pytest.raises(ValueError, match="give the loggers to your evaluator"):
        build_strategy("naive", model, CONFIG, evaluator=evaluator, loggers=[TextLogger(io.StringIO())])


def test_strategy_options_have_declared_defaults():
    assert strategy_options("ewc-replay", {"ewc_lambda": 5.0}) == {"ewc_lambda": 5.0, "mode": "separate"}
    assert strategy_options("er-ace") == {"batch_size_mem": None}
    with pytest.raises(ValueError, match="'lwf-replay' has no option 'temperatur'; did you mean 'temperature'"):
        strategy_options("lwf-replay", {"temperatur": 2})
    with pytest.raises(ValueError, match="'replay' has no option 'alpha'; it has none"):
        strategy_options("replay", {"alpha": 1})
