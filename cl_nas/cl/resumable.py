"""ResumableBuffer: any storage policy, rebuilt exactly in a fresh process from what its updates saw.

Avalanche's own checkpointing pickles whole strategies and fails on current torch, and the memory of
Avalanche's buffers is a web of dataset subsets that has no tensor form. What *determines* a memory,
though, is small: each update depends only on the experience, the learner's weights and the global
random state at that moment, and on the updates before it. This wrapper records those two (weights
and random state, per update) and :meth:`ResumableBuffer.replay` re-runs the same updates on the
same experiences, which rebuilds the memory bit for bit for any policy: reservoir, class-balanced,
herding or condensed (whose sets then come from the synthetic cache, so replay does not condense again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from avalanche.training.storage_policy import ExemplarsBuffer

from cl_nas.cl.rng import rng_state, set_rng_state


class ResumableBuffer(ExemplarsBuffer):
    """Delegates to ``inner`` and logs every ``post_adapt`` (experience, learner weights, random state)."""

    def __init__(self, inner: ExemplarsBuffer):
        self.inner = inner  # set first: the base initialiser assigns max_size, which delegates here
        super().__init__(inner.max_size)
        self._log: list[dict[str, Any]] = []

    @property
    def max_size(self) -> int:  # type: ignore[override]
        return self.inner.max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        self.inner.max_size = value

    @property
    def buffer(self):  # type: ignore[override]
        return self.inner.buffer

    @buffer.setter
    def buffer(self, new_buffer) -> None:
        self.inner.buffer = new_buffer

    def update(self, strategy: Any, **kwargs) -> None:
        """What Avalanche 0.6's ``ReplayPlugin`` calls (deprecated there in favour of ``post_adapt``)."""
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent: Any, exp: Any) -> None:
        weights = {k: v.detach().cpu().clone() for k, v in agent.model.state_dict().items()}
        self._log.append({"experience": exp.current_experience, "model": weights, "rng": rng_state()})
        self.inner.post_adapt(agent, exp)

    def resize(self, strategy: Any, new_size: int) -> None:
        self.inner.resize(strategy, new_size)

    def take_log(self) -> list[dict[str, Any]]:
        """The updates recorded since the last call (for the experience's state file), then forget them."""
        log, self._log = self._log, []
        return log

    def replay(self, strategy: Any, experiences: Sequence[Any], log: Sequence[dict[str, Any]]) -> None:
        """Re-run logged updates on ``experiences`` (indexed by experience id); leaves the learner's weights
        and the random state as the last update found them, so restore both afterwards."""
        for entry in log:
            strategy.model.load_state_dict(entry["model"])
            set_rng_state(entry["rng"])
            self.inner.post_adapt(strategy, experiences[entry["experience"]])
