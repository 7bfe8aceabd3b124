"""APM: dataset distillation via adversarial prediction matching (Chen et al., arXiv 2312.08912).

The goal is a synthetic set on which a trained student predicts like a teacher trained on the real
data. APM solves it without unrolling, in two alternating single-level steps:

* every ``refresh_every`` iterations a fresh student is trained on the current synthetic images to
  match the teacher's logits under an L1 loss (``student_epochs`` epochs, DSA on its inputs), and
  ``checkpoints`` (K) frozen copies are kept, evenly spaced along its training;
* every iteration the images *ascend* the student-teacher disagreement summed over the K
  checkpoints (seeking the samples where students trained on the synthetic set still fail to
  imitate the teacher) and *descend* ``ce_weight`` (lambda) times the teacher's cross-entropy on
  them (keeping each image recognisable as its class):

      loss(S) = - sum_k mean_x |student_k(x) - teacher(x)|_1 + lambda * CE(teacher(x), y)

  Gradients flow through both the teacher and the students into the pixels; images are processed
  in chunks of ``chunk_size`` whose gradients accumulate, so peak memory is bounded by one chunk.

Teachers (``teachers`` of them, one drawn at random per refresh as the reference draws from its
pool) are trained on the real data with :func:`cl_nas.condense.teacher.train_teacher` (SGD lr
``teacher_lr``, DSA, ``teacher_epochs``; teacher ``i`` from seed ``i``), or one pre-trained ``teacher``
module is given (a continual learner can pass its own model). With ``teacher_dir`` set, trained
teachers are kept there and reused (:class:`~cl_nas.condense.teacher.TeacherStore`), so that
baselines can be labelled by the very teacher APM used. The result carries the teachers' mean logits
for its images (``SyntheticSet.teacher_logits``): the paper evaluates its sets by training on them
under an L1 loss, the ``apm`` protocol of :mod:`cl_nas.protocols`.

Departures from the reference ``distill.py``: the paper's log on the disagreement is omitted, as in
the reference code itself; teachers are taken at the end of training (the reference keeps the epoch
of best *test* accuracy, which selects on the test set); all images are updated every iteration (no
``batch_syn`` subset), with one teacher forward per chunk shared by the K students (the reference
recomputes it per student: same gradient). With ``bf16`` on, teachers and students *train* under
bf16 autocast while the image update and the teacher's targets stay float32.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cl_nas.augment import default_strategy
from cl_nas.condense.base import Option, folder_option, module_fingerprint, register_condenser
from cl_nas.condense.iterative import CondenseRun, IterativeCondenser
from cl_nas.condense.teacher import TeacherRecipe, TeacherStore, describe, teacher_logits, train_teacher
from cl_nas.data import DatasetInfo, ImageDataset
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import TrainConfig, chunks, predict_logits, train_model

_LR_DECAY = 0.3  # the reference multiplies lr_img by 0.3 at half the iterations


def _frozen(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)


@register_condenser("apm")
class APMCondenser(IterativeCondenser):
    """Adversarial prediction matching. Defaults follow the reference code and its README command."""

    algorithm_version = 2
    options = {
        "iterations": IterativeCondenser.options["iterations"].with_default(2500),
        "lr_img": IterativeCondenser.options["lr_img"].with_default(1.0),
        "teacher": Option(
            nn.Module, None, "a trained teacher to use; None: train teachers on the real data", optional=True
        ),
        "teachers": Option(int, 1, "teachers to train (one is drawn per student refresh)", ge=1),
        "teacher_epochs": Option(int, 100, "training epochs of each teacher", ge=1),
        "teacher_lr": Option(float, 0.05, "SGD learning rate of the teachers", gt=0),
        "student_epochs": Option(int, 250, "training epochs of each student", ge=1),
        "checkpoints": Option(int, 5, "frozen student copies (K) kept along its training", ge=1),
        # the reference's counter retrains its student every mid_gap + 1 = 3 iterations
        "refresh_every": Option(int, 3, "iterations between student refreshes", ge=1),
        "lr_net": Option(float, 0.01, "SGD learning rate of the students", gt=0),
        "ce_weight": Option(float, 0.1, "weight (lambda) of the teacher's cross-entropy on the images", ge=0),
        # chunking only bounds memory: the accumulated gradient is the same sum
        "chunk_size": Option(
            int, None, "images per forward pass; None: all at once", ge=1, optional=True, runtime=True
        ),
        "checkpoint_every": IterativeCondenser.options["checkpoint_every"].with_default(50),
        "teacher_dir": folder_option("folder where trained teachers are kept and reused; None: train them per run"),
    }

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.teachers_: list[nn.Module] = []  # the teachers of the last run, whose logits label its result
        self.teacher_meta_: dict[str, Any] = {}  # their description, for the result's metadata
        self._students: list[nn.Module] = []
        self._teacher_index = 0

    def _resolve(self, settings: dict[str, Any]) -> dict[str, Any]:
        settings = super()._resolve(settings)
        if settings["checkpoints"] > settings["student_epochs"]:
            raise ValueError(
                f"checkpoints ({settings['checkpoints']}) cannot exceed student_epochs ({settings['student_epochs']})"
            )
        return settings

    # --- set-up and resume -----------------------------------------------------------------------
    def teacher_recipes(self, info: DatasetInfo) -> list[TeacherRecipe]:
        """How each of the ``teachers`` is trained on ``info``'s real training split."""
        strategy = self.dsa_strategy if self.dsa_strategy is not None else default_strategy(info.name)
        return [
            TeacherRecipe(self.model, self.teacher_epochs, self.teacher_lr, strategy, seed=index)
            for index in range(self.teachers)
        ]

    def load_teachers(self, train_set: ImageDataset) -> tuple[list[nn.Module], dict[str, Any]]:
        """``(teachers, description)``: the given ``teacher``, or the ``teachers`` trained on ``train_set``
        (read from ``teacher_dir`` when they are there, trained and kept there otherwise), frozen on the device."""
        if self.teacher is not None:
            teacher = _frozen(copy.deepcopy(self.teacher).to(self.device))
            return [teacher], {"fingerprint": module_fingerprint(self.teacher), "given": True}
        teachers, described = [], []
        for recipe in self.teacher_recipes(train_set.info):
            if self.teacher_dir is not None:
                net, meta = TeacherStore(self.teacher_dir).get_or_train(
                    train_set, recipe, device=self.device, bf16=self.bf16, progress=self.progress
                )
            else:
                net, seconds = train_teacher(
                    train_set, recipe, device=self.device, bf16=self.bf16, progress=self.progress
                )
                meta = describe(net, recipe, seconds)
            teachers.append(_frozen(net.to(self.device)))
            described.append(meta)
        return teachers, {"teachers": described}

    def label(self, synthetic: SyntheticSet, train_set: ImageDataset) -> SyntheticSet:
        """``synthetic`` (any set of ``train_set``'s dataset: random real images, a DM set) labelled with the
        logits of this condenser's teachers: the fair baseline for an APM set under the ``apm`` protocol."""
        teachers, meta = self.load_teachers(train_set)
        return synthetic.with_teacher_logits(teacher_logits(teachers, synthetic.images.to(self.device)), meta)

    def prepare(self, run: CondenseRun) -> None:
        train_set = ImageDataset(run.real.images.cpu(), run.real.labels.cpu(), run.info)
        self.teachers_, self.teacher_meta_ = self.load_teachers(train_set)

    def method_state(self) -> dict[str, Any]:
        return {
            "teachers": [] if self.teacher is not None else [t.state_dict() for t in self.teachers_],
            "students": [s.state_dict() for s in self._students],
            "teacher_index": self._teacher_index,
            "teacher_meta": json.dumps(self.teacher_meta_),
        }

    def load_method_state(self, state: dict[str, Any], run: CondenseRun) -> None:
        info = run.info
        if self.teacher is not None:
            self.teachers_ = [_frozen(copy.deepcopy(self.teacher).to(self.device))]
        else:
            self.teachers_ = [self._restore(info, sd) for sd in state["teachers"]]
        self._students = [self._restore(info, sd) for sd in state["students"]]
        self._teacher_index = int(state["teacher_index"])
        self.teacher_meta_ = json.loads(state["teacher_meta"])

    def _restore(self, info: DatasetInfo, state_dict: dict[str, torch.Tensor]) -> nn.Module:
        net = self.fresh_model(info)
        net.load_state_dict(state_dict)
        return _frozen(net)

    # --- one iteration ---------------------------------------------------------------------------
    def step(self, run: CondenseRun, iteration: int) -> float:
        if iteration % self.refresh_every == 0:
            self._refresh_students(run)
        teacher = self.teachers_[self._teacher_index]
        decayed = iteration >= self.iterations // 2
        for group in run.optimizer.param_groups:
            group["lr"] = self.lr_img * (_LR_DECAY if decayed else 1.0)
        run.optimizer.zero_grad(set_to_none=True)
        n, total = len(run.images), 0.0
        for part in chunks(n, self.chunk_size):
            # float32: the image update is a small part of the work next to the student training,
            # so the image gradient is formed at full precision
            x, y = run.images[part], run.labels[part]
            t_logits = teacher(x)
            disagreement = sum(F.l1_loss(s(x), t_logits) for s in self._students)
            loss = (x.shape[0] / n) * (self.ce_weight * F.cross_entropy(t_logits, y) - disagreement)
            loss.backward()  # accumulates into images.grad chunk by chunk
            total += loss.item()
        run.optimizer.step()
        return total

    def _refresh_students(self, run: CondenseRun) -> None:
        """Train a fresh student on the current images to match a teacher; keep K frozen checkpoints."""
        self._teacher_index = int(torch.randint(len(self.teachers_), (1,), generator=run.generator))
        images = run.images.detach()
        targets = predict_logits(self.teachers_[self._teacher_index], images).to(self.device)
        student = self.fresh_model(run.info)
        epochs = self.student_epochs
        keep = {round(epochs * (k + 1) / self.checkpoints) for k in range(self.checkpoints)}
        self._students = []

        def keep_checkpoint(epoch: int, _: nn.Module) -> None:
            if epoch + 1 in keep:
                self._students.append(_frozen(copy.deepcopy(student)))

        config = TrainConfig(epochs=epochs, lr=self.lr_net, bf16=self.bf16, loss="l1")
        train_model(
            self.for_training(student),
            images,
            targets,
            config,
            augment=run.augment_batch if run.dsa is not None else None,
            device=self.device,
            generator=run.generator,
            on_epoch_end=keep_checkpoint,
        )

    # --- the result ------------------------------------------------------------------------------
    def finish(self, result: SyntheticSet) -> SyntheticSet:
        """``result`` with the teachers' mean logits for its images: the labels the paper evaluates with."""
        images = result.images.to(self.device)
        return result.with_teacher_logits(teacher_logits(self.teachers_, images), self.teacher_meta_)
