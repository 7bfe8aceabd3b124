"""What a continual-learning study runs: cases (rows of the results table) under shared settings.

A :class:`CLCase` is one row: a strategy with a buffer at a memory budget on a benchmark. A
:class:`CLSettings` holds everything shared by a study (class orders, training budget, condenser
options, folders). :func:`expand_cases` lists the cases of a grid of benchmarks, strategies, buffers and
budgets; :func:`plan_case` checks a case against its settings and resolves every default,
raising ``ValueError`` for bad input before any data is loaded or any model trained.

Memory budgets are bytes of stored exemplars, images and labels: ``mem_per_class`` exemplars per class
*at fp32* (the table's unit), i.e. ``mem_per_class * num_classes * (bytes_per_fp32_image + label_bytes)``,
or ``mem_bytes`` directly. A buffer storing fp16 or uint8 images, real or condensed, fits about 2x or 4x as
many in the same bytes (each extra image pays for its label too). ``budget`` says how the memory
is split: ``per-class`` (every class its fixed share from the start, the DM paper's protocol; the
default) or ``shared`` (the classes seen so far share it all, Avalanche's adaptive size; older
classes give up images as new ones arrive).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cl_nas.augment import resolve_strategy
from cl_nas.cl.buffers import NEEDS_TASK_LABELS, BufferSpec, build_memory, parse_buffer, selects_with_learner
from cl_nas.cl.metrics import check_loggers
from cl_nas.cl.precision import bytes_per_item, images_in_budget
from cl_nas.cl.scenarios import BenchmarkSpec, benchmark_spec, check_class_order, class_order
from cl_nas.cl.strategies import STRATEGIES, check_memory, strategy_options
from cl_nas.condense import build_condenser
from cl_nas.models import build_model, model_spec_string
from cl_nas.train import TrainConfig
from cl_nas.utils import check_positive_int, check_seed, resolve_bf16, resolve_device

# bump when a change makes earlier run folders incomparable (2: budgets count labels, runs record BWT and RAM)
CONFIG_VERSION = 2
BUDGETS = ("per-class", "shared")


@dataclass(frozen=True)
class CLCase:
    """One row of the results table (``buffer`` "none" and ``mem_per_class`` 0 for naive and joint)."""

    benchmark: str
    strategy: str
    buffer: str = "none"
    mem_per_class: int = 0


@dataclass(frozen=True)
class CLSettings:
    """Options shared by every case of a study; ``None`` means the benchmark's default."""

    order_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    class_order: tuple[int, ...] | None = None  # one explicit order instead of the seeded ones
    model: str | None = None
    epochs: int | None = None  # per experience (naive, replay, joint, ...; gdumb's replay step)
    memory_epochs: int | None = None  # per experience, on the memory (gdumb, avalanche-gdumb)
    batch_size: int = 128
    lr: float = 0.01
    bf16: bool | None = None  # None: on where the device has native bf16 (cl_nas.utils.native_bf16)
    mem_bytes: int | None = None  # overrides mem_per_class
    budget: str = "per-class"  # or "shared"
    augment: str | None = None  # DSA on every training mini-batch: "dsa" (the dataset's default) or ops "crop_flip"
    condense_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> options
    strategy_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # strategy -> its options
    loggers: tuple[str, ...] = ()  # Avalanche loggers of every run (cl_nas.cl.metrics.LOGGERS), in its folder
    device: str = "auto"
    data_root: str | None = None
    cache_dir: str | None = None  # None: $CL_NAS_CACHE, else ~/.cache/cl_nas/synthetic
    run_root: str = "runs/cl/runs"

    def __post_init__(self) -> None:
        # values no case can use fail here, before anything is planned or trained
        if (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float))
            or not (math.isfinite(self.lr) and self.lr > 0)
        ):
            raise ValueError(f"--lr must be a finite number > 0, got {self.lr!r}")
        for seed in self.order_seeds:
            check_seed("every order seed", seed)
        resolve_device(self.device)
        for method, params in self.condense_params.items():
            build_condenser(method, **params)  # an unknown method, option or value raises ValueError


@dataclass(frozen=True)
class CasePlan:
    """A validated case with every default resolved."""

    case: CLCase
    spec: BenchmarkSpec
    buffer: BufferSpec
    model: str
    train: TrainConfig
    mem_bytes: int  # 0 without memory
    memory_images: int  # 0 without memory
    orders: tuple[tuple[str, int, tuple[int, ...]], ...]  # (label, seed, class order)
    condense_params: Mapping[str, Any]
    config_id: str
    augment: str | None = None  # the DSA strategy string, resolved
    experience_epochs: int = 1  # gdumb's replay step, for memories that select with the learner
    strategy_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        c = self.case
        return Path(f"{c.benchmark}/{c.strategy}-{self.buffer.name}-m{c.mem_per_class}-{self.config_id}")


def expand_cases(
    benchmarks: Sequence[str],
    strategies: Sequence[str],
    buffers: Sequence[str],
    mem_per_class: Sequence[int],
    settings: CLSettings,
) -> list[CLCase]:
    """The cases of a study grid: every benchmark x strategy, the strategies with memory (replay, gdumb, er-ace,
    ...) with every buffer at every budget (``mem_per_class`` 0, one budget, when ``settings.mem_bytes`` gives it
    in bytes), the bounds (naive, joint) once without memory. Names are checked by :func:`plan_case`."""
    mems = [0] if settings.mem_bytes is not None else list(mem_per_class)
    memories = [(buffer, mem) for buffer in buffers for mem in mems]
    return [
        CLCase(benchmark, strategy, buffer, mem)
        for benchmark in benchmarks
        for strategy in strategies
        for buffer, mem in (memories if STRATEGIES.get(strategy).memory else [("none", 0)])
    ]


def _orders(settings: CLSettings, spec: BenchmarkSpec) -> tuple[tuple[str, int, tuple[int, ...]], ...]:
    if settings.class_order is not None:
        order = tuple(check_class_order(settings.class_order, spec))
        label = "order-" + hashlib.sha256(json.dumps(order).encode()).hexdigest()[:8]
        return ((label, 0, order),)
    if not settings.order_seeds:
        raise ValueError("no class orders: give at least one order seed")
    return tuple((f"order{s}", s, tuple(class_order(s, spec.num_classes))) for s in settings.order_seeds)


def _condense_params(buffer: BufferSpec, spec: BenchmarkSpec, settings: CLSettings, model: str) -> dict[str, Any]:
    """The condenser options of ``buffer``: the benchmark's defaults updated by the settings', validated by
    building the condenser once. The learner's architecture is the condensation model unless one is named."""
    if buffer.method is None:
        return {}
    params = {**spec.condense.get(buffer.method, {}), **settings.condense_params.get(buffer.method, {})}
    if "model" not in params and "model" in build_condenser(buffer.method, **params).get_config():
        params["model"] = model
    build_condenser(buffer.method, **params)  # an option the method does not have raises ValueError
    return params


def plan_case(case: CLCase, settings: CLSettings) -> CasePlan:
    """Validate ``case`` under ``settings`` and resolve its defaults."""
    spec = benchmark_spec(case.benchmark)
    strategy = STRATEGIES.get(case.strategy)
    buffer = parse_buffer(case.buffer)
    if settings.budget not in BUDGETS:
        raise ValueError(f"unknown memory budget {settings.budget!r}; choose one of {', '.join(BUDGETS)}")
    for name in ("epochs", "memory_epochs", "batch_size"):
        check_positive_int(name, getattr(settings, name), optional=True)
    check_loggers(settings.loggers)
    for name in settings.strategy_params:
        STRATEGIES.get(name)  # a misspelt strategy would leave its options unused
    options = strategy_options(case.strategy, settings.strategy_params.get(case.strategy))
    if strategy.memory != buffer.has_memory:
        raise ValueError(f"strategy {case.strategy!r} {'needs a' if strategy.memory else 'takes no'} buffer")
    if buffer.kind in NEEDS_TASK_LABELS and not spec.task_labels:
        raise ValueError(
            f"Avalanche's {buffer.kind!r} buffer cannot batch the (x, y) items of {spec.name}; "
            "use reservoir or a condensed buffer there"
        )
    if strategy.needs_task_labels and not spec.task_labels:
        raise ValueError(f"strategy {case.strategy!r} replays (x, y, t) items; {spec.name} has (x, y) items")
    info = spec.info
    model = model_spec_string(settings.model or spec.model)
    network = build_model(model, info.channels, info.num_classes, info.image_size)  # fails fast on an impossible spec
    params = _condense_params(buffer, spec, settings, model)
    mem_bytes, memory_images, learner_selects = 0, 0, False
    if strategy.memory:
        if settings.mem_bytes is None:
            check_positive_int("mem_per_class", case.mem_per_class, optional=True)
            mem_bytes = case.mem_per_class * spec.num_classes * bytes_per_item(info, "fp32")
        else:
            mem_bytes = settings.mem_bytes
        memory_images = images_in_budget(mem_bytes, info, buffer.precision)
        if memory_images < spec.num_classes:
            raise ValueError(
                f"a memory of {mem_bytes} bytes holds {memory_images} {buffer.precision} images of {info.name}, "
                f"fewer than one per class of {spec.name} ({spec.num_classes} classes)"
            )
        per_class = spec.num_classes if settings.budget == "per-class" else None
        memory = build_memory(buffer, memory_images, network, info, condense_params=params, total_num_classes=per_class)
        check_memory(case.strategy, memory)
        learner_selects = selects_with_learner(memory)
    epochs = (
        (settings.memory_epochs or spec.memory_epochs) if strategy.memory_only else (settings.epochs or spec.epochs)
    )
    experience_epochs = settings.epochs or spec.epochs
    bf16 = resolve_bf16(settings.bf16, settings.device)
    train = TrainConfig(epochs=epochs, lr=settings.lr, batch_size=settings.batch_size, bf16=bf16)
    augment = resolve_strategy(settings.augment, spec.dataset)  # an unknown operation fails here, before training
    identity = {
        "version": CONFIG_VERSION, **asdict(case), "mem_bytes": mem_bytes, "precision": buffer.precision,
        "budget": settings.budget if strategy.memory else None, "model": model, "train": train.as_dict(),
        "condense": params,
    }  # fmt: skip
    # each only where it applies, so run folders made before it existed stay valid
    if augment is not None:
        identity["augment"] = augment
    if strategy.memory_only and learner_selects:
        identity["experience_epochs"] = experience_epochs
    if options:
        identity["strategy_options"] = options
    if strategy.version > 1:
        identity["strategy_version"] = strategy.version
    config_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    orders = _orders(settings, spec)
    return CasePlan(
        case, spec, buffer, model, train, mem_bytes, memory_images, orders, params, config_id, augment,
        experience_epochs, options,
    )  # fmt: skip
