"""The ground truth: the sampled architectures trained on the full training split, resolved enough to order the top.

What "ground truth" means (:meth:`GroundTruthConfig.describe` says it in words for every report):
``n_arch`` architectures, a seeded sample of the search space (``arch_seed``; ``arch_offset`` skips
that many of the shuffle, for a tuning sample disjoint from the evaluation one), each trained on the
full training split for ``epochs`` epochs (the papers' protocol: SGD lr 0.01, momentum 0.9, weight
decay 5e-4, batch 256, lr x 0.1 at half the epochs) once per training seed in ``seeds``, and scored
on the validation split; an architecture's value is the mean over its seeds.

Successive halving (``rungs``) spends that full fidelity only where it matters: every architecture is
first screened at a lower fidelity (:class:`Rung`: fewer epochs, the first few seeds), only the
``keep`` best go on to the next rung, and the last rung's survivors get the full fidelity. Each
architecture is resolved at the fidelity it reached, and one that reached a higher fidelity ranks
above every one that did not (it beat them where they stopped): :attr:`ArchScore.fidelity`.

The job is one resumable command that any number of workers share through the study storage. Each
stage (the rungs, then the full fidelity) is a queue study (:mod:`cl_nas.nas.queue`) with one slot per
(architecture, training seed), the most expensive first (:func:`~cl_nas.nas.cost.forward_flops`), so
that the long ones do not finish alone at the end. A slot's trial reports the validation accuracy
after every epoch and checkpoints the model, the optimizer and the data-order generator in
``checkpoint_dir`` (keyed by study, architecture and seed) after every epoch: a killed (heartbeat) or
interrupted (Ctrl-C) trial is queued again and resumes from its last finished epoch on whichever
worker takes it, and repeats the uninterrupted run. Workers on several machines need that folder on
a shared file system. A stage's survivors are decided once all its slots are done, from the scores
in the storage, so every worker agrees on them.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from cl_nas.data import DatasetInfo, DatasetSplits
from cl_nas.models.space import Params, SearchSpace
from cl_nas.nas.cost import forward_flops
from cl_nas.nas.objective import ArchitectureObjective, ArchScore, record_cost
from cl_nas.nas.proxy import full_data
from cl_nas.nas.queue import TrialCallback, fingerprint, open_queue, queue_status, run_worker
from cl_nas.nas.search import make_pruner, make_sampler
from cl_nas.train import EpochCheckpoint, TrainConfig, accuracy, sgd, train_model
from cl_nas.utils import check_positive_int, machine_description, mean_std

DEFAULT_CHECKPOINTS = "runs/nas/checkpoints"
SEED_PARAM = "train_seed"  # the slot's training seed, a fixed trial parameter beside the architecture's
_RUNG = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Rung:
    """A screening stage of successive halving: ``epochs`` epochs with the first ``seeds`` training seeds,
    after which the ``keep`` best architectures go on. Written ``EPOCHSxSEEDS:KEEP`` (``1x1:24``)."""

    epochs: int
    seeds: int
    keep: int

    def __post_init__(self) -> None:
        for name in ("epochs", "seeds", "keep"):
            check_positive_int(f"a rung's {name}", getattr(self, name))

    @classmethod
    def parse(cls, text: str) -> Rung:
        match = _RUNG.match(text)
        if not match:
            raise ValueError(
                f"a rung is EPOCHSxSEEDS:KEEP, like 1x1:24 (1 epoch, 1 seed, keep the best 24), got {text!r}"
            )
        return cls(*(int(g) for g in match.groups()))

    def __str__(self) -> str:
        return f"{self.epochs}x{self.seeds}:{self.keep}"


@dataclass(frozen=True)
class Stage:
    """One study of the job: these architectures, ``epochs`` epochs, each with every seed of ``seeds``."""

    index: int
    archs: tuple[str, ...]
    epochs: int
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class GroundTruthConfig:
    """The ground truth's sample, fidelity and screening (see the module docstring)."""

    n_arch: int = 48
    epochs: int = 1
    seeds: tuple[int, ...] = (0,)
    arch_seed: int = 0
    arch_offset: int = 0
    rungs: tuple[Rung, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "rungs", tuple(Rung.parse(r) if isinstance(r, str) else r for r in self.rungs))
        check_positive_int("the number of ground-truth architectures", self.n_arch)
        check_positive_int("the ground truth's epochs", self.epochs)
        if self.arch_offset < 0:
            raise ValueError(f"the architecture offset must be >= 0, got {self.arch_offset}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"the ground truth needs one or more distinct training seeds, got {list(self.seeds)}")
        size, fidelity = self.n_arch, (0, 0)
        for rung in self.rungs:
            if rung.seeds > len(self.seeds):
                raise ValueError(f"rung {rung} uses {rung.seeds} seeds but the ground truth has {len(self.seeds)}")
            if not rung.keep < size:
                raise ValueError(f"rung {rung} must keep fewer than the {size} architectures it screens")
            if not (rung.epochs, rung.seeds) > fidelity or rung.epochs < fidelity[0] or rung.seeds < fidelity[1]:
                raise ValueError(f"rung {rung} must not lower the epochs or seeds of the rung before it")
            size, fidelity = rung.keep, (rung.epochs, rung.seeds)
        final = (self.epochs, len(self.seeds))
        if self.rungs and (final <= fidelity or final[0] < fidelity[0] or final[1] < fidelity[1]):
            raise ValueError(
                f"the full fidelity ({self.epochs} epochs x {len(self.seeds)} seeds) must exceed the last rung's"
            )

    def sample(self, space: SearchSpace, info: DatasetInfo) -> dict[str, Params]:
        """The ground truth's architectures, by spec string: the ``n_arch`` after the first ``arch_offset`` of
        ``space``'s shuffle with ``arch_seed``, among those that fit ``info``'s images."""
        drawn = space.sample(self.arch_offset + self.n_arch, self.arch_seed, info.channels, info.image_size)
        return {space.spec_string(p): p for p in drawn[self.arch_offset :]}

    def fidelities(self) -> list[tuple[int, int, int]]:
        """``(architectures, epochs, seeds)`` of every stage, the screening rungs first."""
        sizes = [self.n_arch, *(r.keep for r in self.rungs)]
        stages = [(r.epochs, r.seeds) for r in self.rungs] + [(self.epochs, len(self.seeds))]
        return [(n, e, s) for n, (e, s) in zip(sizes, stages, strict=True)]

    def describe(self) -> str:
        """What this ground truth is, in one sentence."""
        sample = f"{self.n_arch} architectures (arch seed {self.arch_seed}"
        sample += f", after the first {self.arch_offset})" if self.arch_offset else ")"
        parts = [f"{n} at {_fidelity(e, s)}" for n, e, s in self.fidelities()]
        how = parts[0] if not self.rungs else "screened by successive halving: " + ", then ".join(parts)
        return f"{sample} trained on the full training split, {how}; validation accuracy, mean over seeds"


def _fidelity(epochs: int, seeds: int) -> str:
    return f"{epochs} epoch{'s' * (epochs != 1)} x {seeds} seed{'s' * (seeds != 1)}"


def checkpoint_name(arch: str, seed: int) -> str:
    """The checkpoint file of one (architecture, seed) slot within its study's folder."""
    return f"{hashlib.sha256(arch.encode()).hexdigest()[:16]}-s{seed}.pt"


class GroundTruthObjective(ArchitectureObjective):
    """Train the slot's architecture with the slot's seed on the full data, checkpointing every epoch
    into the folder ``checkpoints`` and resuming from the checkpoint when one exists; the score is the
    final validation accuracy, reported after every epoch."""

    def __init__(
        self,
        space: SearchSpace,
        splits: DatasetSplits,
        epochs: int,
        seeds: Sequence[int],
        checkpoints: Path,
        *,
        bf16: bool = False,
        device: str | torch.device = "auto",
    ):
        super().__init__(space, full_data(splits.train, epochs=epochs), splits.val, bf16=bf16, device=device)
        self.seeds, self.checkpoints = tuple(seeds), checkpoints

    def __call__(self, trial: optuna.Trial) -> float:
        seed = trial.suggest_categorical(SEED_PARAM, self.seeds)
        net = self.build(trial, seed).to(self.device)
        path = self.checkpoints / checkpoint_name(trial.user_attrs["arch"], seed)
        optimizer, generator = sgd(net, self.config), torch.Generator().manual_seed(seed)
        saved = EpochCheckpoint(path, net, optimizer, generator)
        done: dict = {"scores": [], "train_seconds": 0.0, "eval_seconds": 0.0, "machines": []}
        resumed = saved.load()
        if resumed is not None:
            done = resumed
            trial.set_user_attr("resumed_at_epoch", len(done["scores"]))
        done["machines"] = sorted({*done["machines"], machine_description()})
        for epoch, score in enumerate(done["scores"], start=1):
            trial.report(score, epoch)
        mark = time.perf_counter()

        def checkpoint(epoch: int, model: nn.Module) -> None:
            nonlocal mark
            trained = time.perf_counter()
            score = accuracy(model, self.val, bf16=self.config.bf16)
            done["train_seconds"] += trained - mark
            done["eval_seconds"] += time.perf_counter() - trained
            done["scores"].append(score)
            trial.report(score, epoch + 1)
            saved.save(done)
            mark = time.perf_counter()  # writing the checkpoint is neither training nor validation

        train_model(net, self.images, self.labels, self.config, device=self.device, generator=generator,
                    on_epoch_end=checkpoint, optimizer=optimizer, start_epoch=len(done["scores"]))  # fmt: skip
        record_cost(trial, done["train_seconds"], done["eval_seconds"], " + ".join(done["machines"]))
        return done["scores"][-1]


def stage_scores(study: optuna.Study) -> dict[str, ArchScore]:
    """The finished slots of a stage, by architecture: the mean over its seeds, the seeds' own values
    (in seed order) and the summed training time."""
    by_arch: dict[str, list[optuna.trial.FrozenTrial]] = defaultdict(list)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        by_arch[t.user_attrs["arch"]].append(t)
    scores = {}
    for arch, trials in by_arch.items():
        trials = sorted(trials, key=lambda t: t.params[SEED_PARAM])
        values = tuple(float(t.value) for t in trials)
        params = {k: v for k, v in trials[0].params.items() if k != SEED_PARAM}
        machines = sorted({m for t in trials for m in str(t.user_attrs.get("machine", "")).split(" + ")})
        scores[arch] = ArchScore(
            arch=arch,
            params=params,
            value=mean_std(values)[0],
            pruned=False,
            epochs=max(trials[0].intermediate_values),
            train_seconds=sum(float(t.user_attrs.get("train_seconds", math.nan)) for t in trials),
            eval_seconds=sum(float(t.user_attrs.get("eval_seconds", math.nan)) for t in trials),
            trial=trials[0].number,
            machine=" + ".join(machines),
            seed_values=values,
        )
    return scores


def best(scores: Mapping[str, ArchScore], k: int) -> list[str]:
    """The ``k`` best architectures: the highest fidelity first, then the highest value (ties by name)."""
    return sorted(scores, key=lambda a: (tuple(-f for f in scores[a].fidelity), -scores[a].value, a))[:k]


class GroundTruth:
    """The ground-truth job for ``config`` over ``space`` on ``splits``, in ``storage`` (see the module docstring).

    :meth:`run` works on it until every stage is done (with other workers); :meth:`scores` reads what is
    resolved so far, without training.
    """

    def __init__(
        self,
        storage: optuna.storages.BaseStorage,
        space: SearchSpace,
        splits: DatasetSplits,
        config: GroundTruthConfig = GroundTruthConfig(),
        *,
        checkpoint_dir: str | Path = DEFAULT_CHECKPOINTS,
        bf16: bool = False,
        device: str | torch.device = "auto",
    ):
        self.sample = config.sample(space, splits.info)
        self.storage, self.space, self.splits, self.config = storage, space, splits, config
        self.checkpoint_dir, self.bf16, self.device = Path(checkpoint_dir), bf16, device
        self._flops: dict[str, int] = {}
        self.complete = False  # whether the last scores() or run() found every stage done

    def _study(self, stage: Stage) -> optuna.Study:
        info = self.splits.info
        for arch in stage.archs:
            if arch not in self._flops:
                self._flops[arch] = forward_flops(self.space.spec(self.sample[arch]), info)
        longest_first = sorted(stage.archs, key=lambda a: (-self._flops[a], a))
        slots = [{**self.sample[a], SEED_PARAM: seed} for a in longest_first for seed in stage.seeds]
        config = {
            "space": self.space.key(),
            "train": self.splits.train.content_hash(),
            "val": self.splits.val.content_hash(),
            "archs": sorted(stage.archs),
            "seeds": list(stage.seeds),
            "protocol": TrainConfig(epochs=stage.epochs, bf16=self.bf16).as_dict(),
        }
        name = f"gt-{info.name}-full-e{stage.epochs}-x{len(stage.seeds)}-n{len(stage.archs)}-r{stage.index}"
        pruner, sampler = make_pruner("none"), make_sampler("grid")
        return open_queue(self.storage, f"{name}-{fingerprint(config)}", slots, sampler=sampler, pruner=pruner)

    def stages(self) -> Iterator[tuple[Stage, optuna.Study]]:
        """Each stage and its study, in order; the next one is opened once the consumer has seen this one
        complete (its survivors depend on its scores). Sets :attr:`complete`."""
        self.complete = False
        archs = sorted(self.sample)
        for index, (_, epochs, seeds) in enumerate(self.config.fidelities()):
            stage = Stage(index, tuple(archs), epochs, self.config.seeds[:seeds])
            study = self._study(stage)
            yield stage, study
            status = queue_status(study)
            if status.done < status.slots:
                return
            if index < len(self.config.rungs):
                archs = sorted(best(stage_scores(study), self.config.rungs[index].keep))
        self.complete = True

    def run(
        self,
        *,
        callbacks: Sequence[TrialCallback] = (),
        on_wait: Callable[[int], None] | None = None,
        on_stage: Callable[[Stage, optuna.Study], None] | None = None,
        max_trials: int | None = None,
    ) -> int:
        """Train every slot not done yet, stage after stage, sharing each with the other workers (waiting for
        their running trials); return how many trials this worker ran. ``max_trials`` stops it early.
        Raises ``RuntimeError`` when a stage ends with slots that failed for good."""
        ran = 0
        for stage, study in self.stages():
            if on_stage is not None:
                on_stage(stage, study)
            checkpoints = self.checkpoint_dir / study.study_name
            objective = GroundTruthObjective(self.space, self.splits, stage.epochs, stage.seeds, checkpoints,
                                             bf16=self.bf16, device=self.device)  # fmt: skip
            left = None if max_trials is None else max_trials - ran
            if left == 0:
                break
            ran += run_worker(study, objective, max_trials=left, callbacks=(*callbacks, _forget(checkpoints)),
                              on_wait=on_wait)  # fmt: skip
            status = queue_status(study)
            if status.lost:
                raise RuntimeError(f"ground-truth study {study.study_name}: {status}; see its failed trials")
        return ran

    def scores(self) -> dict[str, ArchScore]:
        """The ground truth resolved so far: every architecture at the highest stage it completed, with the
        training time of all its stages. Stages not yet complete are left out (their survivors would
        otherwise rank below architectures they beat); :attr:`complete` says whether all were."""
        resolved: dict[str, ArchScore] = {}
        for _, study in self.stages():
            status = queue_status(study)
            if status.done < status.slots:
                break
            for arch, score in stage_scores(study).items():
                earlier = resolved.get(arch)
                if earlier is not None:
                    machines = sorted({*earlier.machine.split(" + "), *score.machine.split(" + ")})
                    score = replace(score, train_seconds=score.train_seconds + earlier.train_seconds,
                                    machine=" + ".join(machines))  # fmt: skip
                resolved[arch] = score
        return resolved


def _forget(checkpoints: Path) -> TrialCallback:
    """A trial callback deleting a finished slot's checkpoint (its result is in the storage now)."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            (checkpoints / checkpoint_name(trial.user_attrs["arch"], trial.params[SEED_PARAM])).unlink(missing_ok=True)

    return callback


def open_ground_truth(
    storage: optuna.storages.BaseStorage,
    space: SearchSpace,
    splits: DatasetSplits,
    config: GroundTruthConfig = GroundTruthConfig(),
    *,
    checkpoint_dir: str | Path = DEFAULT_CHECKPOINTS,
    bf16: bool = False,
    device: str | torch.device = "auto",
) -> GroundTruth:
    """The ground-truth job (created or resumed); ``.run()`` trains what is missing, ``.scores()`` reads it."""
    return GroundTruth(storage, space, splits, config, checkpoint_dir=checkpoint_dir, bf16=bf16, device=device)


@dataclass(frozen=True)
class Resolution:
    """Whether the ground truth can order its top: its seed-to-seed noise against the spread of its best ten.

    Over the architectures at the highest fidelity: ``run_sd`` is the pooled standard deviation of one
    training run's accuracy across seeds (the root of the mean per-architecture sample variance),
    ``top10_run_sd`` the same over the ten best, ``value_sd`` the noise of the ground truth's value (the
    mean over ``seeds`` runs, ``run_sd / sqrt(seeds)``) and ``top10_spread`` the best value minus the
    tenth best. The ground truth resolves its top when ``run_sd <= top10_spread / 4``.
    """

    n_arch: int
    seeds: int
    run_sd: float
    top10_run_sd: float
    value_sd: float
    top10_spread: float

    @property
    def resolves(self) -> bool:
        return self.run_sd <= self.top10_spread / 4  # False for NaN (one seed: unmeasured)

    def describe(self) -> str:
        spread = (
            f"spread of the top 10 {self.top10_spread:.3f} points"
            if math.isfinite(self.top10_spread)
            else f"spread of the top 10 not measured (only {self.n_arch} architectures)"
        )
        if self.seeds < 2:
            return f"seed-to-seed SD not measured (one training seed); {spread}"
        measured = (
            f"measured over the {self.n_arch} architectures at the full fidelity ({self.seeds} seeds): "
            f"seed-to-seed SD of one run {self.run_sd:.3f} points ({self.top10_run_sd:.3f} over the top 10), "
            f"{self.value_sd:.3f} for the mean over seeds; {spread}"
        )
        if math.isnan(self.top10_spread):
            return measured
        verdict = "holds" if self.resolves else "does NOT hold"
        return f"{measured}; SD / spread = {self.run_sd / self.top10_spread:.3f}: 'SD <= spread / 4' {verdict}"


def resolution(truth: Mapping[str, ArchScore]) -> Resolution:
    """:class:`Resolution` of a ground truth (its highest-fidelity architectures)."""
    top = max(s.fidelity for s in truth.values())
    final = {a: s for a, s in truth.items() if s.fidelity == top}
    ranked = best(final, len(final))

    def pooled(archs: Sequence[str]) -> float:
        variances = [mean_std(final[a].seed_values)[1] ** 2 for a in archs if len(final[a].seed_values) > 1]
        return math.sqrt(sum(variances) / len(variances)) if variances else math.nan

    run_sd = pooled(ranked)
    spread = final[ranked[0]].value - final[ranked[9]].value if len(ranked) >= 10 else math.nan
    return Resolution(len(final), top[1], run_sd, pooled(ranked[:10]), run_sd / math.sqrt(top[1]), spread)


def describe_scores(truth: Mapping[str, ArchScore]) -> str:
    """The fidelities a ground truth's scores were resolved at, from the scores themselves."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for score in truth.values():
        counts[score.fidelity] += 1
    parts = [f"{n} at {_fidelity(*f)}" for f, n in sorted(counts.items(), reverse=True)]
    return f"{len(truth)} architectures on the full training split: " + ", ".join(parts) + " (mean over seeds)"
