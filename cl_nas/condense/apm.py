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
pool) are trained on the real data with :func:`cl_nas.train.train_model` (SGD lr ``teacher_lr``,
DSA, ``teacher_epochs``), or one pre-trained ``teacher`` module is given (a continual learner can
pass its own model). Labels of the result are hard class labels; :meth:`APMCondenser.soft_labels`
gives the teacher's probabilities for a set, the option the paper evaluates with.

Departures from the reference ``distill.py``: the paper's log on the disagreement is omitted, as in
the reference code itself; teachers are taken at the end of training (the reference keeps the epoch
of best *test* accuracy, which selects on the test set); students refresh every ``refresh_every``
iterations (the reference's counter refreshes every ``mid_gap + 1``); all images are updated every
iteration (no ``batch_syn`` subset), with one teacher forward per chunk shared by the K students
(the reference recomputes it per student: same gradient); soft labels are probabilities for
``train_model``'s cross-entropy, where the reference trains evaluation models with L1 on raw
logits. With ``bf16`` on, teachers and students *train* under bf16 autocast while the image update
and the teacher's targets stay float32. The student is trained by a short local loop because
``train_model`` fits cross-entropy only and APM's student fits the teacher's logits under L1.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cl_nas.condense.iterative import CondenseRun, IterativeCondenser, check_positive_int, chunks
from cl_nas.data import DatasetInfo
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import TrainConfig, predict_logits, train_model

_LR_DECAY = 0.3  # the reference multiplies lr_img by 0.3 at half the iterations


def _frozen(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)


class APMCondenser(IterativeCondenser):
    """Adversarial prediction matching. Defaults follow the reference code and its README command."""

    name = "apm"
    # chunking only bounds memory: the accumulated gradient is the same sum
    runtime_params = IterativeCondenser.runtime_params | {"chunk_size"}

    def __init__(
        self,
        *,
        iterations: int = 2500,
        lr_img: float = 1.0,
        teacher: nn.Module | None = None,
        teachers: int = 1,
        teacher_epochs: int = 100,
        teacher_lr: float = 0.05,
        student_epochs: int = 250,
        checkpoints: int = 5,
        refresh_every: int = 2,
        lr_net: float = 0.01,
        ce_weight: float = 0.1,
        chunk_size: int | None = None,
        checkpoint_every: int = 50,
        **options: Any,
    ):
        """``options``: the shared settings of :class:`IterativeCondenser` (init, model, DSA, bf16, ...)."""
        super().__init__(iterations=iterations, lr_img=lr_img, checkpoint_every=checkpoint_every, **options)
        for name, value in (
            ("teachers", teachers),
            ("student_epochs", student_epochs),
            ("checkpoints", checkpoints),
            ("refresh_every", refresh_every),
        ):
            check_positive_int(name, value)
        check_positive_int("chunk_size", chunk_size, optional=True)  # None: all images in one chunk
        if checkpoints > student_epochs:
            raise ValueError(f"checkpoints ({checkpoints}) cannot exceed student_epochs ({student_epochs})")
        check_positive_int("teacher_epochs", teacher_epochs)
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
        for name, value in (("teacher_lr", teacher_lr), ("lr_net", lr_net)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if ce_weight < 0:
            raise ValueError(f"ce_weight must be >= 0, got {ce_weight}")
        self.teacher, self.teachers = teacher, teachers
        self.teacher_epochs, self.teacher_lr = teacher_epochs, teacher_lr
        self.student_epochs, self.checkpoints, self.refresh_every = student_epochs, checkpoints, refresh_every
        self.lr_net, self.ce_weight, self.chunk_size = lr_net, ce_weight, chunk_size
        self.teachers_: list[nn.Module] = []  # the teachers of the last run (for soft_labels)
        self._students: list[nn.Module] = []
        self._teacher_index = 0

    # --- set-up and resume -----------------------------------------------------------------------
    def prepare(self, run: CondenseRun) -> None:
        if self.teacher is not None:
            self.teachers_ = [_frozen(copy.deepcopy(self.teacher).to(self.device))]
            return
        config = TrainConfig(epochs=self.teacher_epochs, lr=self.teacher_lr, bf16=self.bf16)
        augment = run.augment_batch if run.dsa is not None else None
        self.teachers_ = []
        for _ in range(self.teachers):
            net = self.fresh_model(run.info)
            train_model(
                self.for_training(net),
                run.real.images,
                run.real.labels,
                config,
                augment=augment,
                device=self.device,
                generator=run.generator,
                progress=self.progress,
            )
            self.teachers_.append(_frozen(net))

    def method_state(self) -> dict[str, Any]:
        return {
            "teachers": [] if self.teacher is not None else [t.state_dict() for t in self.teachers_],
            "students": [s.state_dict() for s in self._students],
            "teacher_index": self._teacher_index,
        }

    def load_method_state(self, state: dict[str, Any], run: CondenseRun) -> None:
        info = run.info
        if self.teacher is not None:
            self.teachers_ = [_frozen(copy.deepcopy(self.teacher).to(self.device))]
        else:
            self.teachers_ = [self._restore(info, sd) for sd in state["teachers"]]
        self._students = [self._restore(info, sd) for sd in state["students"]]
        self._teacher_index = int(state["teacher_index"])

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
        forward = self.for_training(student)
        optimizer = torch.optim.SGD(student.parameters(), lr=self.lr_net, momentum=0.9, weight_decay=5e-4)
        epochs = self.student_epochs
        keep = {round(epochs * (k + 1) / self.checkpoints) for k in range(self.checkpoints)}
        batch = TrainConfig().batch_size
        self._students = []
        for epoch in range(1, epochs + 1):
            if epoch == epochs // 2 + 1:  # lr x 0.1 for the second half, as the reference's MultiStepLR
                for group in optimizer.param_groups:
                    group["lr"] *= 0.1
            order = torch.randperm(len(images), generator=run.generator).to(self.device)
            for start in range(0, len(images), batch):
                idx = order[start : start + batch]
                x = images[idx] if run.dsa is None else run.augment_batch(images[idx])
                with self.autocast():
                    loss = F.l1_loss(forward(x).float(), targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if epoch in keep:
                self._students.append(_frozen(copy.deepcopy(student)))

    # --- soft labels -----------------------------------------------------------------------------
    def soft_labels(self, synthetic: SyntheticSet | torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Teacher class probabilities ``(N, num_classes)`` for a set's images (averaged over teachers).

        Usable as ``labels`` of :func:`cl_nas.train.train_model`. Needs the teachers of a
        :meth:`condense` call in this process, or a ``teacher`` given at construction.
        """
        teachers = self.teachers_ or ([_frozen(copy.deepcopy(self.teacher))] if self.teacher is not None else [])
        if not teachers:
            raise RuntimeError("soft_labels needs a teacher: run condense() first or pass teacher= to APMCondenser")
        images = synthetic.images if isinstance(synthetic, SyntheticSet) else synthetic
        probs = [F.softmax(predict_logits(t, images) / temperature, dim=1) for t in teachers]
        return torch.stack(probs).mean(0)
