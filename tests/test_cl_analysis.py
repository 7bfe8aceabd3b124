import pandas as pd
import pytest

from cl_nas.cl.analysis import ceiling, margin_over_herding, margins


def test_margins_over_herding_side_by_side_with_offline_condensation(tmp_path, capsys, load_benchmark):
    cl = [
        {"benchmark": "split-fmnist", "strategy": s, "buffer": b, "mem_per_class": m, "augment": aug,
         "final_acc_mean": acc, "n_orders": n, "model": "convnet", "epochs": 100}
        for s, b, m, aug, acc, n in [
            ("gdumb", "herding", 10, None, 77.0, 5), ("gdumb", "dm", 10, None, 80.5, 5),
            ("gdumb", "dm", 10, None, 99.0, 3), ("gdumb", "class-balanced", 10, None, 73.0, 3),
            ("replay", "dm", 10, None, 99.0, 5), ("gdumb", "dm", 10, "dsa", 99.0, 5), ("gdumb", "dm", 1, None, 99.0, 5),
            ("gdumb", "dm@uint8", 10, None, 99.0, 5),
        ]
    ]  # fmt: skip
    cl[0]["final_acc_per_order"], cl[3]["final_acc_per_order"] = "79 78 77 76 75", "73 73 73"  # herding, class-bal.
    pd.DataFrame(cl).to_csv(tmp_path / "cl.csv", index=False)
    offline = [
        {"method": m, "dataset": "fashionmnist", "ipc": ipc, "model": model, "protocol": p, "acc_mean": acc}
        for m, ipc, model, p, acc in [
            ("herding", 10, "convnet", "fast", 78.0), ("dm", 10, "convnet", "fast", 81.5),
            ("random", 10, "convnet", "fast", 75.0), ("dm", 10, "mlp", "fast", 10.0),
            ("dm", 1, "convnet", "fast", 10.0),
            ("dm", 10, "convnet", "dm", 10.0),  # another protocol: not the CL learner's offline figure
        ]
    ]  # fmt: skip
    pd.DataFrame(offline).to_csv(tmp_path / "condense_quality.csv", index=False)
    curve = [{"method": "dm", "dataset": "fashionmnist", "ipc": 10, "iteration": it, "eval_epochs": e, "acc_mean": a,
              "condense_model": "convnet"}
             for it, e, a in [(1000, 300, 81.0), (4000, 1000, 83.0)]]  # fmt: skip
    pd.DataFrame(curve).to_csv(tmp_path / "condense_curve.csv", index=False)

    table = margins(tmp_path).set_index("buffer")  # GDumb-style, IPC 10, fp32, no augmentation, most orders
    assert sorted(table.index) == ["class-balanced", "dm", "herding"]
    assert table.loc["dm", ["cl_minus_herding", "offline_minus_herding"]].tolist() == pytest.approx([3.5, 3.5])
    assert table.loc["class-balanced", "offline_acc"] == 75.0  # class-balanced is the offline random
    # a 3-order row against herding's first 3 orders (78 on average), not its 5-order mean (77)
    assert table.loc["class-balanced", ["cl_orders", "cl_minus_herding"]].tolist() == [3, pytest.approx(-5.0)]
    best = ceiling(tmp_path).iloc[0]
    assert (best.iteration, best.eval_epochs, best.dm_minus_herding) == (4000, 1000, pytest.approx(5.0))
    load_benchmark("cl_analysis.py").main(tmp_path)  # the script prints both
    assert "offline ceiling" in capsys.readouterr().out


def test_a_margin_over_herding_compares_the_class_orders_both_ran():
    herding = pd.DataFrame([
        {"n_orders": 3, "final_acc_mean": 77.5, "final_acc_per_order": None},  # recorded before per-order finals
        {"n_orders": 5, "final_acc_mean": 76.8, "final_acc_per_order": "78 77 76 76 77"},
    ])  # fmt: skip
    same = margin_over_herding({"n_orders": 3, "final_acc_mean": 80.0}, herding)
    assert (same.difference, same.herding_acc, same.orders) == (pytest.approx(2.5), 77.5, 3)  # herding's 3-order row
    four = {"n_orders": 4, "final_acc_mean": 80.0, "final_acc_per_order": "80 81 79 80"}
    shared = margin_over_herding(four, herding)
    assert (shared.orders, shared.herding_acc, shared.difference) == (4, pytest.approx(76.75), pytest.approx(3.25))
    unknown = margin_over_herding({"n_orders": 4, "final_acc_mean": 80.0}, herding)
    assert unknown.orders is None and (unknown.herding_orders, unknown.herding_acc) == (5, 76.8)
    assert margin_over_herding(four, herding.iloc[:0]) is None
