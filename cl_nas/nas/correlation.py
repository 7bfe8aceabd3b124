"""How well a proxy ranks architectures: rank correlations, top-k agreement and top-1 regret.

All functions take ``{architecture: score}`` mappings (higher is better) and use the architectures
present in both. Top-k statistics are taken over the ``k`` best architectures *by the ground truth*
(the ones a search must rank well); they are NaN when fewer than ``k`` architectures are shared,
and a correlation is NaN when one side is constant.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from scipy import stats

Scores = Mapping[str, float]


@dataclass(frozen=True)
class Correlation:
    """Agreement of a proxy's ranking with the ground truth's over ``n_arch`` architectures."""

    n_arch: int
    spearman: float
    kendall: float
    spearman_top10: float
    kendall_top10: float
    spearman_top20: float
    kendall_top20: float
    overlap_top10: float  # fraction of the ground truth's top 10 that is also the proxy's top 10
    overlap_top20: float
    top1_regret: float  # ground-truth score of the best architecture minus that of the proxy's pick

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _rank_stat(test: Callable, x: Sequence[float], y: Sequence[float]) -> float:
    if len(x) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)  # constant input: NaN, as documented above
        return float(test(x, y).statistic)


def _top(scores: Scores, keys: Iterable[str], k: int) -> list[str]:
    """The ``k`` keys with the highest scores (ties broken by name, so the result is deterministic)."""
    return sorted(keys, key=lambda a: (-scores[a], a))[:k]


def correlate(proxy: Scores, truth: Scores) -> Correlation:
    """Compare the proxy's scores with the ground truth's over the architectures both scored."""
    common = sorted(set(proxy) & set(truth))
    if len(common) < 2:
        raise ValueError(
            f"a correlation needs at least 2 architectures scored by both the proxy and the ground truth, "
            f"got {len(common)}; run the ground truth (--ground-truth) over the same architectures"
        )

    def over(keys: Sequence[str]) -> tuple[float, float]:
        x, y = [proxy[a] for a in keys], [truth[a] for a in keys]
        return _rank_stat(stats.spearmanr, x, y), _rank_stat(stats.kendalltau, x, y)

    def top(k: int) -> tuple[float, float, float]:
        if len(common) < k:
            return math.nan, math.nan, math.nan
        best = _top(truth, common, k)
        overlap = len(set(best) & set(_top(proxy, common, k))) / k
        return (*over(best), overlap)

    # the proxy cannot tell tied architectures apart: count its pick as the worst of them
    best_proxy = max(proxy[a] for a in common)
    pick = min((a for a in common if proxy[a] == best_proxy), key=lambda a: truth[a])
    (rho, tau), (s10, k10, o10), (s20, k20, o20) = over(common), top(10), top(20)
    return Correlation(
        n_arch=len(common),
        spearman=rho,
        kendall=tau,
        spearman_top10=s10,
        kendall_top10=k10,
        spearman_top20=s20,
        kendall_top20=k20,
        overlap_top10=o10,
        overlap_top20=o20,
        top1_regret=max(truth[a] for a in common) - truth[pick],
    )


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and population standard deviation of the finite values (NaN, NaN when there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.pstdev(finite) if len(finite) > 1 else 0.0
