import pandas as pd


def test_analysis_reads_a_scores_table(tmp_path, capsys, load_benchmark):
    module = load_benchmark("nas_analysis.py")
    archs = ["convnet:norm=batch,depth=1", "convnet:norm=none,depth=2", "convnet:norm=batch,depth=3"]
    rows = [
        {"proxy": proxy, "arch": a, "full_acc": full, "proxy_acc": acc}
        for proxy, accs in {"dm": [70, 60, 50], "random": [60, 61, 40], "gt-reseed": [80, 85, 91]}.items()
        for a, full, acc in zip(archs, [80, 84, 90], accs, strict=True)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "scores.csv", index=False)
    module.main(tmp_path / "scores.csv")
    out = capsys.readouterr().out
    assert "dm: ranks it 3 of 3" in out and "random: ranks it 3 of 3" in out
    assert "DM - random over 3 trainable nets: 6.33 points" in out  # (10 - 1 + 10) / 3
    assert "mean |change| 0.67, max 1.00" in out


def test_analysis_states_the_ground_truth_and_its_resolution(tmp_path, capsys, load_benchmark):
    from cl_nas.nas import ArchScore
    from cl_nas.nas.report import ProxyRun, evaluate, write_tables

    def score(arch, value, epochs, seed_values=()):
        return ArchScore(arch, {}, value, False, epochs, 1.0, 0.0, 0, "m", seed_values)

    archs = [f"convnet:depth={i % 4 + 1},width={32 * (i // 4 + 1)}" for i in range(12)]
    truth = {a: score(a, 80.0 + i, 8, (79.9 + i, 80.1 + i)) for i, a in enumerate(archs)}
    runs = [ProxyRun(p, 10, 0, 20, {a: score(a, s.value - k, 20) for a, s in truth.items()})
            for k, p in enumerate(("dm", "random"))]  # fmt: skip
    write_tables(tmp_path, "mnist", truth, evaluate(truth, runs))
    load_benchmark("nas_analysis.py").main(tmp_path / "nas_scores.csv")
    out = capsys.readouterr().out
    assert "mnist: Ground truth: 12 architectures on the full training split: 12 at 8 epochs x 2 seeds" in out
    assert "spread of the top 10 9.000 points" in out and "'SD <= spread / 4' holds" in out
