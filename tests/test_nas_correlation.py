import math

import pytest

from cl_nas.nas import ArchScore, correlate
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


def test_speedup():
    def score(arch, seconds):
        return ArchScore(arch, {}, 50.0, False, 1, seconds, 0.5, 0, "m")

    truth = {"a": score("a", 10.0), "b": score("b", 30.0), "c": score("c", 1000.0)}
    proxy = {"a": score("a", 1.0), "b": score("b", 1.0)}
    assert speedup(truth, proxy) == 20.0  # over the shared architectures only


def test_speedup_only_where_every_trial_was_timed_on_one_machine(load_benchmark):
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
    checks = load_benchmark("nas.py").target_checks(results)
    assert "speed-up over the ground truth, one machine: 20 (target >= 20.0) met" in checks


def test_a_screened_ground_truth_ranks_by_tier_first():
    # a03 and a04 reached the full fidelity (tier 1); a00-a02 were screened out at a fidelity whose scores are
    # higher (fewer epochs: other numbers), yet they rank below the survivors
    truth = {"a00": 95.0, "a01": 96.0, "a02": 97.0, "a03": 90.0, "a04": 91.0}
    tiers = {"a00": 0, "a01": 0, "a02": 0, "a03": 1, "a04": 1}
    proxy = {"a00": 1.0, "a01": 2.0, "a02": 3.0, "a03": 4.0, "a04": 5.0}
    c = correlate(proxy, truth, tiers)
    assert c.spearman == pytest.approx(1.0) and c.top1_regret == 0.0 and c.pick_resolved
    assert correlate(proxy, truth).spearman < 0  # the raw scores would say otherwise
    picky = {**proxy, "a00": 9.0}  # picks an architecture screened out: regret at least best - worst survivor
    c = correlate(picky, truth, tiers)
    assert not c.pick_resolved and c.top1_regret == 1.0


def test_targets_set_the_main_proxy_beside_the_random_subset(load_benchmark):
    truth = {f"a{i:02d}": ArchScore(f"a{i:02d}", {}, float(i), False, 8, 100.0, 0.0, 0, "m", (i - 0.1, i + 0.1))
             for i in range(24)}  # fmt: skip

    def run(name, values):
        return ProxyRun(
            name, 10, 0, 20, {a: ArchScore(a, {}, v, False, 20, 1.0, 0.0, 0, "m") for a, v in values.items()}
        )

    exact = {a: s.value for a, s in truth.items()}
    shuffled = {a: float((i * 7) % 24) for i, a in enumerate(truth)}
    checks = load_benchmark("nas.py").target_checks(evaluate(truth, [run("dm", exact), run("random", shuffled)]))
    assert "top-1 regret (points): 0 (random subset: " in checks
    assert "Spearman over the top 20, gain over random subset: " in checks and "(1 (random subset: " in checks
    assert "speed-up over the ground truth, one machine: 100 (target >= 20.0) met" in checks
