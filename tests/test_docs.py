"""The user documentation: generated tables match the result CSVs, links resolve, the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from cl_nas.condense.plots import evaluation_name

REPO = Path(__file__).resolve().parents[1]
PRODUCT_DOCS = [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def report(load_benchmark):
    return load_benchmark("report.py")


def test_generated_tables_match_the_result_csvs(report):
    assert report.stale() == [], "run: python benchmarks/report.py"


def test_a_stale_or_unknown_block_is_named(report, tmp_path):
    (tmp_path / "docs").mkdir()
    fresh = report.render("<!-- begin: speed -->\n<!-- end: speed -->\n")
    assert "| workload |" in fresh and report.render(fresh) == fresh
    (tmp_path / "README.md").write_text(fresh)
    (tmp_path / "docs" / "results.md").write_text("text\n<!-- begin: curve -->\nold table\n<!-- end: curve -->\n")
    assert report.stale(tmp_path) == ["docs/results.md: curve"]
    with pytest.raises(ValueError, match="unknown generated blocks"):
        report.render("<!-- begin: nope -->\n<!-- end: nope -->\n")
    with pytest.raises(ValueError, match="without their end marker"):
        report.render("<!-- begin: speed -->\n")


def test_tables_without_protocol_column_get_fast_or_their_epochs():
    rows = [{"eval_epochs": 300, "eval_augment": "dsa"}, {"eval_epochs": 1000, "eval_augment": "dsa"},
            {"eval_epochs": 300, "eval_augment": "dsa", "protocol": "dm", "labels": "teacher-logits"}]  # fmt: skip
    assert [evaluation_name(pd.Series(r)) for r in rows] == [
        "fast", "1000 epochs, augment dsa", "dm, teacher-logits labels"
    ]  # fmt: skip


def test_row_options_leave_out_runtime_settings(report):
    command = ("condense.py --methods dsa dm --param dsa.iterations=10 --param dsa.checkpoint_every=2 "
               "--param dm.batch_real=64 --param progress=true")  # fmt: skip
    assert report.options(command, "dsa") == "iterations=10"
    assert report.options(command, "dm") == "batch_real=64"
    assert report.options("condense.py --methods random", "random") == "defaults"


def test_parity_sets_each_time_to_quality_snapshot_beside_the_paper(report, tmp_path):
    """A snapshot of a reference-ConvNet run is a parity row at its own iteration; other networks' are not."""
    results = report.RESULTS
    for name in ("condense_quality.csv", "paper_reference.csv"):
        (tmp_path / name).write_text((results / name).read_text())
    config = '{"batch_real": 64, "iterations": 3000, "lr_img": 1.0, "model": "%s"}'
    snapshot = {"method": "dm", "dataset": "mnist", "ipc": 10, "seed": 0, "protocol": "dm", "labels": "hard",
                "accuracies": "97.0 97.2 97.4", "iteration": 2500}  # fmt: skip
    pd.DataFrame([
        {**snapshot, "condense_model": "convnet", "config": config % "convnet"},
        {**snapshot, "condense_model": "convnet:stem_padding=1", "config": config % "convnet:stem_padding=1",
         "accuracies": "99.0 99.0 99.0"},
    ]).to_csv(tmp_path / "condense_curve.csv", index=False)  # fmt: skip
    rows = [line for line in report.parity(tmp_path).splitlines() if "iterations=2500," in line]
    assert len(rows) == 1
    assert "| iterations=2500, batch_real=64, lr_img=1 | 97.20 ± 0.20 | 1 × 3 | 97.50 ± 0.10 | -0.30 |" in rows[0]


def test_readme_is_a_short_guide():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("doc", PRODUCT_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    targets = [t.split("#")[0] for t in LINK.findall(doc.read_text()) if not re.match(r"[a-z]+:|#", t)]
    missing = [t for t in targets if not (doc.parent / t).exists()]
    assert missing == []


@pytest.mark.parametrize("doc", PRODUCT_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_session_talk(doc):
    assert re.findall(r"\bsession\b", doc.read_text(), flags=re.IGNORECASE) == []
