"""Why a proxy ranks as it does: the figures behind the README's NAS analysis, from ``nas_scores.csv``.

    python benchmarks/nas_analysis.py [benchmarks/results/nas_scores.csv]

Prints what the ground truth is and, when it has several training seeds (``full_seed_accs``), whether
its seed noise resolves its top 10; per proxy, where the ground truth's best architecture ranks; the DM
proxy's accuracy gain over the random subset by normalisation, over the architectures that train on
full data (> 50 %); and, in tables of one-seed ground truths with ``gt-reseed`` rows, how far a
retrained ground truth moved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from _common import RESULTS

from cl_nas.nas.report import format_truth, read_scores_table


def main(path: Path) -> None:
    scores = pd.read_csv(path)
    if "full_seed_accs" in scores:
        for dataset in scores.dataset.unique():
            print(f"{dataset}: " + format_truth(read_scores_table(path, dataset)[0]))
    best = scores.loc[scores.full_acc.idxmax(), "arch"]
    print(f"ground truth's best: {best}")
    for proxy, group in scores[scores.proxy != "gt-reseed"].groupby("proxy"):
        ranked = group.sort_values("proxy_acc", ascending=False).arch.tolist()
        print(f"  {proxy}: ranks it {ranked.index(best) + 1} of {len(ranked)}")
    wide = scores.pivot_table(index=["arch", "full_acc"], columns="proxy", values="proxy_acc").reset_index()
    trainable = wide[wide.full_acc > 50].copy()
    trainable["norm"] = trainable.arch.str.extract(r"norm=(\w+)")
    gain = (trainable.dm - trainable.random).groupby(trainable.norm).mean().round(2)
    print(f"DM - random over {len(trainable)} trainable nets: {(trainable.dm - trainable.random).mean():.2f} points")
    print(gain.to_string())
    reseed = scores[scores.proxy == "gt-reseed"]
    if not reseed.empty:
        diff = reseed.proxy_acc - reseed.full_acc
        print(
            f"ground truth retrained ({len(reseed)} nets): mean |change| {diff.abs().mean():.2f}, "
            f"max {diff.abs().max():.2f}, per-run SD {diff.std() / 2**0.5:.2f} points"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "nas_scores.csv")
