"""How well a proxy ranks architectures: rank correlations, top-k agreement and top-1 regret.

All functions take ``{architecture: score}`` mappings (higher is better) and use the architectures
present in both. Top-k statistics are taken over the ``k`` best architectures *by the ground truth*
(the ones a search must rank well); they are NaN when fewer than ``k`` architectures are shared,
and a correlation is NaN when one side is constant.

A ground truth resolved by successive halving ranks by *tier* first (the fidelity an architecture
reached, higher above lower), then by score; its scores compare only within a tier. The top-1 regret
of a proxy whose pick stopped below the top tier is then a lower bound (the best score minus the
lowest of the top tier: the pick ranks below all of them), flagged by ``pick_resolved``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
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
    pick_resolved: bool = True  # False: the pick is below the top tier and top1_regret a lower bound

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


def correlate(proxy: Scores, truth: Scores, tiers: Mapping[str, Hashable] | None = None) -> Correlation:
    """Compare the proxy's scores with the ground truth's over the architectures both scored; ``tiers``
    (comparable, higher is better) rank the ground truth before its scores do."""
    common = sorted(set(proxy) & set(truth))
    if len(common) < 2:
        raise ValueError(
            f"a correlation needs at least 2 architectures scored by both the proxy and the ground truth, "
            f"got {len(common)}; run the ground truth (--ground-truth) over the same architectures"
        )
    tier = {a: tiers[a] if tiers is not None else 0 for a in common}
    # the ground truth's order as numbers (rank statistics see only the order): tier first, then score
    keys = sorted({(tier[a], truth[a]) for a in common})
    order = {a: float(keys.index((tier[a], truth[a]))) for a in common}

    def over(keys: Sequence[str]) -> tuple[float, float]:
        x, y = [proxy[a] for a in keys], [order[a] for a in keys]
        return _rank_stat(stats.spearmanr, x, y), _rank_stat(stats.kendalltau, x, y)

    def top(k: int) -> tuple[float, float, float]:
        if len(common) < k:
            return math.nan, math.nan, math.nan
        best = _top(order, common, k)
        overlap = len(set(best) & set(_top(proxy, common, k))) / k
        return (*over(best), overlap)

    # the proxy cannot tell tied architectures apart: count its pick as the worst of them
    best_proxy = max(proxy[a] for a in common)
    pick = min((a for a in common if proxy[a] == best_proxy), key=lambda a: order[a])
    winner = max(common, key=lambda a: order[a])
    top_tier = [a for a in common if tier[a] == tier[winner]]
    resolved = tier[pick] == tier[winner]
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
        top1_regret=truth[winner] - (truth[pick] if resolved else min(truth[a] for a in top_tier)),
        pick_resolved=resolved,
    )
