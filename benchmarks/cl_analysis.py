"""Why condensed memory beats herding by as much as it does: the figures behind the CL analysis.

    python benchmarks/cl_analysis.py [benchmarks/results]

Prints :func:`cl_nas.cl.analysis.margins` (each GDumb-style row of ``cl.csv`` beside the same method's offline
result in ``condense_quality.csv``, both minus herding) and :func:`~cl_nas.cl.analysis.ceiling` (the offline
ceiling that ``condense_curve.csv`` reaches with DM at its longest budget).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import RESULTS

from cl_nas.cl.analysis import ceiling, margins


def main(results: Path) -> None:
    print("GDumb-style final accuracy (cl.csv) beside offline condensation (condense_quality.csv), IPC 10:")
    print(margins(results).drop(columns="cl_margin").to_string(index=False))  # cl_minus_herding says it
    print("\nDM's offline ceiling in condense_curve.csv (herding: condense_quality.csv, fast protocol):")
    print(ceiling(results).to_string(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS)
