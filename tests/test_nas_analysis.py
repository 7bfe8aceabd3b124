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
