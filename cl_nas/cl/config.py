"""What a continual-learning study runs: cases (rows of the results table) under shared settings.

A :class:`CLCase` is one row: a strategy with a buffer at a memory budget on a benchmark. A
:class:`CLSettings` holds everything shared by a study (class orders, training budget, condenser
options, folders). :func:`plan_case` checks a case against its settings and resolves every default,
raising ``ValueError`` for bad input before any data is loaded or any model trained.

Memory budgets are bytes: ``mem_per_class`` images per class *at fp32* (the table's unit), i.e.
``mem_per_class * num_classes * bytes_per_fp32_image``, or ``mem_bytes`` directly. A buffer storing
fp16 or uint8 images fits 2x or 4x as many images in the same bytes. ``budget`` says how the memory
is split: ``per-class`` (every class its fixed share from the start, the DM paper's protocol; the
default) or ``shared`` (the classes seen so far share it all, Avalanche's adaptive size; older
classes give up images as new ones arrive).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cl_nas.augment import resolve_strategy
from cl_nas.cl.buffers import NEEDS_TASK_LABELS, BufferSpec, parse_buffer
from cl_nas.cl.precision import bytes_per_image, images_in_budget
from cl_nas.cl.scenarios import BenchmarkSpec, benchmark_spec, check_class_order, class_order
from cl_nas.cl.strategies import MEMORY_STRATEGIES, check_strategy
from cl_nas.condense import build_condenser
from cl_nas.models import build_model, model_spec_string
from cl_nas.train import TrainConfig
from cl_nas.utils import resolve_bf16

CONFIG_VERSION = 1  # bump when a change makes earlier run folders incomparable
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
    epochs: int | None = None  # per experience (naive, replay, joint)
    memory_epochs: int | None = None  # per experience, on the memory (gdumb)
    batch_size: int = 128
    lr: float = 0.01
    bf16: bool | None = None  # None: on where the device has native bf16 (cl_nas.utils.native_bf16)
    mem_bytes: int | None = None  # overrides mem_per_class
    budget: str = "per-class"  # or "shared"
    augment: str | None = None  # DSA on every training mini-batch: "dsa" (the dataset's default) or ops "crop_flip"
    condense_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> options
    device: str = "auto"
    data_root: str | None = None
    cache_dir: str | None = None  # None: $CL_NAS_CACHE, else ~/.cache/cl_nas/synthetic
    run_root: str = "runs/cl/runs"


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

    @property
    def run_dir(self) -> Path:
        c = self.case
        return Path(f"{c.benchmark}/{c.strategy}-{self.buffer.name}-m{c.mem_per_class}-{self.config_id}")


def _positive(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


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
    try:
        if "model" not in params and "model" in build_condenser(buffer.method, **params).get_config():
            params["model"] = model
        build_condenser(buffer.method, **params)
    except TypeError as err:  # an option the method does not have
        raise ValueError(f"condenser {buffer.method!r} does not accept options {params}: {err}") from err
    return params


def plan_case(case: CLCase, settings: CLSettings) -> CasePlan:
    """Validate ``case`` under ``settings`` and resolve its defaults."""
    spec = benchmark_spec(case.benchmark)
    check_strategy(case.strategy)
    buffer = parse_buffer(case.buffer)
    if settings.budget not in BUDGETS:
        raise ValueError(f"unknown memory budget {settings.budget!r}; choose one of {', '.join(BUDGETS)}")
    for name in ("epochs", "memory_epochs", "batch_size"):
        _positive(name, getattr(settings, name))
    with_memory = case.strategy in MEMORY_STRATEGIES
    if with_memory != buffer.has_memory:
        raise ValueError(f"strategy {case.strategy!r} {'needs a' if with_memory else 'takes no'} buffer")
    if buffer.teacher_from_model and case.strategy != "replay":
        raise ValueError(f"{buffer.name!r} uses the learner trained on the experience as teacher: replay only")
    if buffer.kind in NEEDS_TASK_LABELS and not spec.task_labels:
        raise ValueError(
            f"Avalanche's {buffer.kind!r} buffer cannot batch the (x, y) items of {spec.name}; "
            "use reservoir or a condensed buffer there"
        )
    info = spec.info
    model = model_spec_string(settings.model or spec.model)
    build_model(model, info.channels, info.num_classes, info.image_size)  # fails fast on an impossible spec
    mem_bytes, memory_images = 0, 0
    if with_memory:
        if settings.mem_bytes is None:
            _positive("mem_per_class", case.mem_per_class)
            mem_bytes = case.mem_per_class * spec.num_classes * bytes_per_image(info, "fp32")
        else:
            mem_bytes = settings.mem_bytes
        memory_images = images_in_budget(mem_bytes, info, buffer.precision)
        if memory_images < spec.num_classes:
            raise ValueError(
                f"a memory of {mem_bytes} bytes holds {memory_images} {buffer.precision} images of {info.name}, "
                f"fewer than one per class of {spec.name} ({spec.num_classes} classes)"
            )
    if case.strategy == "gdumb":
        epochs = settings.memory_epochs or spec.memory_epochs
    else:
        epochs = settings.epochs or spec.epochs
    bf16 = resolve_bf16(settings.bf16, settings.device)
    train = TrainConfig(epochs=epochs, lr=settings.lr, batch_size=settings.batch_size, bf16=bf16)
    params = _condense_params(buffer, spec, settings, model)
    augment = resolve_strategy(settings.augment, spec.dataset)  # an unknown operation fails here, before training
    identity = {
        "version": CONFIG_VERSION, **asdict(case), "mem_bytes": mem_bytes, "precision": buffer.precision,
        "budget": settings.budget if with_memory else None, "model": model, "train": train.as_dict(),
        "condense": params,
    }  # fmt: skip
    if augment is not None:  # only when on, so run folders made before the option existed stay valid
        identity["augment"] = augment
    config_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    orders = _orders(settings, spec)
    return CasePlan(case, spec, buffer, model, train, mem_bytes, memory_images, orders, params, config_id, augment)
