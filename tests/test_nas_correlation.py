import math

import pytest

from cl_nas.nas import ArchScore, correlate, mean_std
from cl_nas.nas.report import ProxyRun, evaluate, format_report, speedup


def _named(values):
    return {f"a{i:02d}": float(v) for i, v in enumerate(values)}


def test_identical_and_reversed_rankings():
    truth = _named(range(30))
    same = correlate(truth, truth)
    assert (same.spearman, same.kendall, same.spearman_top10, same.spearman_top20) == pytest.approx((1, 1, 1, 1))
    assert (same.overlap_top10, same.overlap_top20, same.top1_regret, same.n_arch) == (1.0, 1.0, 0.0, 30)
    rev = correlate(_named(range(30, 0, -1)), truth)
    assert rev.spearman == pytest.approx(-1) and rev.kendall == pytest.approx(-1)
    assert rev.overlap_top10 == 0.0 and rev.top1_regret == 29.0


def test_hand_computed_small_example():
    # ranks 1 3 2 4 against 1 2 3 4: sum d^2 = 2, rho = 1 - 6*2/(4*15) = 0.8; one discordant pair of 6: tau = 4/6
    c = correlate({"a": 1, "b": 3, "c": 2, "d": 4, "only_proxy": 9}, {"a": 10, "b": 20, "c": 30, "d": 40})
    assert c.n_arch == 4 and c.spearman == pytest.approx(0.8) and c.kendall == pytest.approx(4 / 6)
    assert c.top1_regret == 0.0
    assert math.isnan(c.spearman_top10) and math.isnan(c.overlap_top10)  # fewer than 10 architectures


def test_top_k_statistics_look_only_at_the_ground_truths_best():
    truth = _named(range(25))
    proxy = {a: (v if v < 15 else 39 - v) for a, v in truth.items()}  # the best 10 in reverse order, above the rest
    c = correlate(proxy, truth)
    assert c.spearman_top10 == pytest.approx(-1) and c.kendall_top10 == pytest.approx(-1)
    assert c.overlap_top10 == 1.0 and c.overlap_top20 == 1.0
    assert c.top1_regret == 9.0  # the proxy picks truth 15 (proxy 24) over the best, truth 24
    assert 0 < c.spearman < 1


def test_ties_and_degenerate_inputs():
    c = correlate({"a": 50.0, "b": 50.0, "c": 10.0}, {"a": 90.0, "b": 70.0, "c": 60.0})
    assert c.top1_regret == 20.0  # a tie at the top counts as the proxy's worst pick
    assert math.isnan(correlate({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 2.0}).spearman)  # constant proxy
    with pytest.raises(ValueError, match="at least 2 architectures"):
        correlate({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})


def test_mean_std_and_speedup():
    assert mean_std([1.0, 3.0, math.nan]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0) and all(math.isnan(v) for v in mean_std([math.nan]))

    def score(arch, seconds):
        return ArchScore(arch, {}, 50.0, False, 1, seconds, 0.5, 0, "m")

    truth = {"a": score("a", 10.0), "b": score("b", 30.0), "c": score("c", 1000.0)}
    proxy = {"a": score("a", 1.0), "b": score("b", 1.0)}
    assert speedup(truth, proxy) == 20.0  # over the shared architectures only


def test_speedup_only_where_every_trial_was_timed_on_one_machine():
    def scores(seconds, values, machines):
        return {a: ArchScore(a, {}, v, False, 1, seconds, 0.5, 0, m) for a, v, m in zip("abc", values, machines,
                                                                                          strict=True)}  # fmt: skip

    truth = scores(40.0, [60.0, 70.0, 80.0], "xxx")
    timed = ["xxx", "xxx", "yyy", "xxy", ["", "", ""]]  # the 4th was resumed elsewhere; the 5th recorded none
    runs = [ProxyRun("dm", 10, seed, 20, scores(2.0, [1.0, 2.0, 3.0], m)) for seed, m in enumerate(timed)]
    assert [r.machine for r in runs] == ["x", "x", "y", "x + y", "unknown"]
    results = evaluate(truth, runs)
    assert [r.speedup for r in results[:2]] == [20.0, 20.0] and all(math.isnan(r.speedup) for r in results[2:])
    assert math.isnan(speedup(scores(40.0, [1.0] * 3, "xyx"), runs[0].scores))  # nor a ground truth resumed elsewhere
    assert [r.correlation.spearman for r in results] == pytest.approx([1.0] * 5)  # rankings do not depend on it
    report = format_report(results)
    assert "| dm (ipc 10, 20 ep) | 5 | 3 |" in report and "| 20 ± 0 (2 of 5 seeds) |" in report
    assert "speed-up: 20 (target >= 20.0) met" in report
