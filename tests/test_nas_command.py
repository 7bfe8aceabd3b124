import argparse
import socket

import pandas as pd
import pytest

from cl_nas.condense import build_condenser
from cl_nas.nas import PROXIES, NASSettings
from cl_nas.nas.command import configure_parser, run


def _argv(tmp_path, *argv) -> list[str]:
    base = ["--dataset", "digits", "--storage", f"sqlite:///{tmp_path / 'nas.db'}", "--cache", str(tmp_path / "c")]
    return [*base, "--out", str(tmp_path / "out"), *argv]


def _args(tmp_path, *argv):
    return configure_parser(argparse.ArgumentParser()).parse_args(_argv(tmp_path, *argv))


def test_tiny_study_end_to_end_with_pruning_and_report(tmp_path, capsys):
    argv = ["--proxy", "random", "--ipc", "5", "--epochs", "3", "--trials", "6", "--pruner", "median"]
    argv += ["--report-every", "1", "--controls", "earlystop", "--seeds", "0", "1", "--space", "width=32"]
    assert run(_args(tmp_path, *argv)) == 0  # no ground truth yet: the proxy's ranking only
    assert "no correlation report" in capsys.readouterr().out
    gt = ["--ground-truth", "--gt-archs", "6", "--gt-epochs", "1", "--gt-seeds", "0", "1"]
    assert run(_args(tmp_path, *argv, *gt)) == 0
    out = capsys.readouterr().out
    assert "[ground truth 1/1] complete 12/12" in out and "[random s0] complete" not in out  # proxies resumed
    assert "Ground truth: 6 architectures on the full training split: 6 at 1 epoch x 2 seeds" in out
    assert "Resolution: measured over the 6 architectures at the full fidelity (2 seeds)" in out
    assert "| random (ipc 5, 3 ep) | 2 | 6 |" in out and "| earlystop (ipc 5, 1 ep) | 2 | 6 |" in out
    correlation = pd.read_csv(tmp_path / "out" / "nas_correlation.csv")
    assert list(correlation.columns) == [
        "dataset", "proxy", "ipc", "n_arch", "spearman", "kendall", "spearman_top10", "spearman_top20",
        "top1_regret", "pick_resolved", "speedup", "seed", "machine", "epochs", "lr", "augment", "ground_truth",
    ]  # fmt: skip
    assert sorted(zip(correlation.proxy, correlation.seed, strict=True)) == [
        ("earlystop", 0), ("earlystop", 1), ("random", 0), ("random", 1)
    ]  # fmt: skip
    assert list(correlation.n_arch) == [6, 6, 6, 6] and (correlation.speedup > 0).all()
    assert correlation.ground_truth.str.contains("6 at 1 epoch x 2 seeds").all()
    scores = pd.read_csv(tmp_path / "out" / "nas_scores.csv")
    assert len(scores) == 4 * 6 and set(scores.full_epochs) == {1} and set(scores.full_seeds) == {2}
    seed_accs = scores.full_seed_accs.str.split(";").map(lambda v: sum(map(float, v)) / 2)
    assert (seed_accs - scores.full_acc).abs().max() < 0.01  # the ground truth is the mean over its seeds
    assert (tmp_path / "out" / "nas_scatter.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "nas_report.md").read_text().startswith("# NAS proxy correlation: digits")


def test_scores_from_a_committed_table_add_seeds_without_retraining_the_ground_truth(tmp_path, capsys, load_benchmark):
    argv = ["--proxy", "random", "--ipc", "5", "--epochs", "2", "--trials", "5", "--controls", "earlystop"]
    argv += ["--space", "width=32", "--gt-archs", "5", "--gt-epochs", "1"]
    assert run(_args(tmp_path / "first", *argv, "--ground-truth")) == 0
    table = tmp_path / "first" / "out" / "nas_scores.csv"
    first = pd.read_csv(tmp_path / "first" / "out" / "nas_correlation.csv")
    capsys.readouterr()

    later = tmp_path / "later"  # a new storage: the first run's studies are gone, its table is not
    assert run(_args(later, *argv, "--seeds", "1", "--scores-from", str(table))) == 0
    out = capsys.readouterr().out
    assert "[ground truth]" not in out and "[random s0]" not in out and "[random s1] complete" in out
    assert "the ground truth and random s0, earlystop s0" in out
    assert "| random (ipc 5, 2 ep) | 2 | 5 |" in out and "| earlystop (ipc 5, 1 ep) | 2 | 5 |" in out
    both = pd.read_csv(later / "out" / "nas_correlation.csv")
    assert sorted(zip(both.proxy, both.seed, strict=True)) == [("earlystop", 0), ("earlystop", 1), ("random", 0),
                                                             ("random", 1)]  # fmt: skip
    seed0 = both[both.seed == 0].set_index("proxy").spearman
    assert seed0.to_dict() == pytest.approx(first.set_index("proxy").spearman.to_dict())
    scores = pd.read_csv(later / "out" / "nas_scores.csv")
    assert scores.groupby("arch").full_acc.nunique().eq(1).all()  # one ground truth for both seeds

    # another seed without the control, reading and rewriting the same tables: the earlystop runs stay
    fewer = [*argv, "--controls", "--seeds", "2", "--scores-from", str(later / "out" / "nas_scores.csv")]
    assert run(_args(later, *fewer)) == 0
    assert "[random s2] complete" in capsys.readouterr().out
    third = pd.read_csv(later / "out" / "nas_correlation.csv")
    assert sorted(zip(third.proxy, third.seed, strict=True)) == [("earlystop", 0), ("earlystop", 1), ("random", 0),
                                                              ("random", 1), ("random", 2)]  # fmt: skip
    rows = pd.read_csv(later / "out" / "nas_scores.csv")
    assert len(rows) == 5 * 5 and not rows.duplicated(["proxy", "seed", "arch"]).any()  # replaced, not appended
    assert third.speedup.notna().all() and rows.full_machine.nunique() == 1  # all timed on this machine

    # a ground truth timed elsewhere: wall-time ratios across machines are no speed-up, so none is reported
    rows.assign(full_machine="another machine").to_csv(elsewhere := tmp_path / "elsewhere.csv", index=False)
    assert load_benchmark("nas.py").main(_argv(later, *fewer[:-1], str(elsewhere))) == 0  # checks the targets
    out = capsys.readouterr().out
    assert "speed-up over the ground truth, one machine: n/a (target >= 20.0) not measured" in out
    assert pd.read_csv(later / "out" / "nas_correlation.csv").speedup.isna().all()
    # a ground truth resumed on another machine: per architecture, each keeps its own; still no speed-up
    resumed = rows.arch.isin(sorted(set(rows.arch))[:2])
    rows.assign(full_machine=rows.full_machine.where(~resumed, "another machine")).to_csv(elsewhere, index=False)
    assert run(_args(later, *fewer[:-1], str(elsewhere))) == 0
    again = pd.read_csv(later / "out" / "nas_scores.csv")
    assert again[again.arch.isin(sorted(set(rows.arch))[:2])].full_machine.eq("another machine").all()
    assert pd.read_csv(later / "out" / "nas_correlation.csv").speedup.isna().all()
    capsys.readouterr()
    # one architecture with two ground-truth machines in one table: two ground truths mixed
    rows.assign(full_machine=["one", "two"] * 12 + ["one"]).to_csv(elsewhere, index=False)
    with pytest.raises(ValueError, match="two ground-truth results"):
        run(_args(later, *fewer[:-1], str(elsewhere)))

    with pytest.raises(ValueError, match="covers 5 architectures, not the 4 that --gt-archs 4"):
        run(_args(later, *argv, "--gt-archs", "4", "--seeds", "1", "--scores-from", str(table)))
    with pytest.raises(ValueError, match=r"holds 5 architectures at 1 epoch\(s\) x 1 seed\(s\), not the 5 .* at 2"):
        run(_args(later, *argv, "--gt-epochs", "2", "--seeds", "1", "--scores-from", str(table)))
    with pytest.raises(ValueError, match="--ground-truth trains the ground truth and --scores-from reads it"):
        run(_args(later, *argv, "--ground-truth", "--scores-from", str(table)))
    with pytest.raises(FileNotFoundError, match="--scores-from .*missing.csv' does not exist"):
        run(_args(later, *argv, "--scores-from", str(tmp_path / "missing.csv")))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--trials", "0"], "--trials must be a positive integer, got 0"),
        (["--trials", "-3"], "--trials must be a positive integer"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--space", "depth="], "leaves dimension 'depth' without choices: the space is empty"),
        (["--space", "norm=batch,foo"], "contradictory.*norm 'foo' is unknown"),
        (["--space", "depth=4", "--space", "pool=avg,max"], "no architecture of convnet.* can process 1x8x8"),
        (["--space", "kernel=3"], r"no dimension\(s\) \['kernel'\]"),
        (["--trials", "601"], "--trials 601 exceeds the 600 architectures that fit digits"),
        (["--proxy", "magic"], "unknown proxy 'magic'"),
        (["--gt-seeds", "0", "0"], "--gt-seeds/--gt-rungs: .*distinct training seeds"),
        (["--gt-rungs", "1x1:60"], "keep fewer than the 48 architectures"),
        (["--gt-archs", "400", "--arch-offset", "300"], "--gt-archs 400 after --arch-offset 300 exceeds the 600"),
        (["--augment", "crop_fly"], "unknown DSA operation"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--proxy", "dm", "--param", "bogus=1"], "proxy 'dm'.*bogus"),
        (["--controls", "earlystop", "--ipc", "100", "--epochs", "20"], "earlystop .* needs 20000 samples"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_work(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        run(_args(tmp_path, *argv))
    assert not (tmp_path / "c").exists()  # nothing was condensed


def test_settings_are_checked_on_construction():
    with pytest.raises(ValueError, match="--trials must be a positive integer, got 0"):
        NASSettings(dataset="digits", trials=0)
    with pytest.raises(ValueError, match="unknown sampler 'grid2'"):
        NASSettings(dataset="digits", sampler="grid2")
    with pytest.raises(ValueError, match=r"no dimension\(s\) \['kernel'\]"):
        NASSettings(dataset="digits", space={"kernel": [3]})
    with pytest.raises(ValueError, match="unknown dataset 'mnits'"):
        NASSettings(dataset="mnits")
    settings = NASSettings(dataset="MNIST", proxy="dm", controls=["random", "dm"], seeds=[1])
    assert (settings.dataset, settings.proxies, settings.seeds) == ("mnist", ["dm", "random"], (1,))


def test_unreachable_storage_masks_the_password(tmp_path, capsys, load_benchmark):
    url = f"postgresql://nas:hunter2-pw@127.0.0.1:{_closed_port()}/nas"
    argv = ["--dataset", "digits", "--storage", url, "--out", str(tmp_path)]
    assert load_benchmark("nas.py").main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: storage postgresql://nas:***@127.0.0.1:") and "hunter2" not in err


def test_a_proxy_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        PROXIES.register("earlystop")(object)


def test_a_proxy_set_of_other_images_is_rejected(tmp_path, mnist):
    path = build_condenser("random").condense(mnist.train, 1, seed=0).save(tmp_path / "mnist.pt")
    with pytest.raises(ValueError, match="has 1x28x28 images but the model expects 1x8x8"):
        run(_args(tmp_path, "--proxy-set", str(path), "--controls"))


def test_committed_proxy_runs_are_rescored_against_a_new_ground_truth_without_training(tmp_path, capsys):
    base = ["--proxy", "random", "--ipc", "5", "--epochs", "2", "--trials", "5", "--space", "width=32"]
    base += ["--gt-archs", "5", "--gt-epochs", "1"]
    old = _args(tmp_path / "old", *base, "--controls", "earlystop", "--ground-truth")  # a one-seed ground truth
    assert run(old) == 0
    new = [*base, "--controls", "--seeds", "1", "--gt-seeds", "0", "1"]  # a resolved one, elsewhere
    assert run(_args(tmp_path / "new", *new, "--ground-truth")) == 0
    capsys.readouterr()

    tables = [str(tmp_path / d / "out" / "nas_scores.csv") for d in ("new", "old")]
    assert run(_args(tmp_path / "new", *new, "--scores-from", *tables)) == 0
    out = capsys.readouterr().out
    assert "[ground truth" not in out and "[earlystop" not in out and "random s0, earlystop s0" in out
    assert "Ground truth: 5 architectures on the full training split: 5 at 1 epoch x 2 seeds" in out
    scores = pd.read_csv(tmp_path / "new" / "out" / "nas_scores.csv")
    assert sorted(set(zip(scores.proxy, scores.seed, strict=True))) == [("earlystop", 0), ("random", 0), ("random", 1)]
    assert set(scores.full_seeds) == {2} and scores.groupby("arch").full_acc.nunique().eq(1).all()
    old_rows = pd.read_csv(tmp_path / "old" / "out" / "nas_scores.csv").set_index(["proxy", "arch"]).proxy_acc
    rescored = scores[scores.proxy == "earlystop"].set_index(["proxy", "arch"]).proxy_acc
    assert rescored.to_dict() == old_rows[rescored.index].to_dict()  # the committed proxy scores, unchanged

    fewer = _args(tmp_path / "new", *[a if a != "5" else "4" for a in new], "--scores-from", *tables)
    with pytest.raises(ValueError, match="covers 5 architectures, not the 4"):
        run(fewer)
