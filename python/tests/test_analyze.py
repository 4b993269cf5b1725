"""The package computes what the command line computes: the same report.json numbers, tables,
summary and output directory, from a file or from a table in memory."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import detbal
from conftest import REPO, SAMPLE, run_cli, without_wall_clock

TABLES = ["potentials", "pairs", "splits", "cycles", "fundamental_cycles", "nulls"]


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory):
    """`detbal analyze data/sample.parquet --device cpu` as the CLI writes it, and its stdout."""
    out = tmp_path_factory.mktemp("cli") / "out"
    done = run_cli("analyze", SAMPLE, "--device", "cpu", "-o", out)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


@pytest.fixture(scope="module")
def sample_analysis():
    """The same analysis from Python, in the repository root as the CLI's (same input path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        return detbal.analyze(SAMPLE, device="cpu")


def test_the_sample_gives_exactly_the_clis_report(cli_output, sample_analysis):
    out, _ = cli_output
    cli = json.loads((out / "report.json").read_text())
    assert without_wall_clock(sample_analysis.report) == without_wall_clock(cli)
    # Spot checks that the comparison compares numbers.
    assert sample_analysis.report["input"]["rows"] == 200_000
    assert sample_analysis.report["graph"]["states"] == 300
    assert sample_analysis.verdict == cli["verdict"]
    assert sample_analysis.verdict["rejected"] is True


def test_the_tables_are_the_clis_parquet_files(cli_output, sample_analysis):
    out, _ = cli_output
    for name in TABLES:
        table = getattr(sample_analysis, name)
        assert isinstance(table, pa.Table), name
        assert table.equals(pq.read_table(out / f"{name}.parquet")), name
    assert sample_analysis.potentials.num_rows == 300


def test_the_summary_is_the_clis(cli_output, sample_analysis):
    _, stdout = cli_output
    summary = sample_analysis.summary(width=100)
    assert stdout.startswith(summary)
    assert stdout[len(summary):].startswith("Outputs")
    assert "Verdict    Detailed balance is rejected at α = 0.01." in summary


def test_write_gives_the_clis_directory(tmp_path, cli_output, sample_analysis):
    out, _ = cli_output
    sample_analysis.write(tmp_path / "py")
    names = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))
    assert names(tmp_path / "py") == names(out)
    written = json.loads((tmp_path / "py" / "report.json").read_text())
    assert written == sample_analysis.report
    for name in TABLES:
        assert (tmp_path / "py" / f"{name}.parquet").read_bytes() == (out / f"{name}.parquet").read_bytes()
    # A foreign directory is replaced only with force=True, as with --force.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(detbal.DetbalError, match="not a detbal output"):
        sample_analysis.write(foreign)
    sample_analysis.write(foreign, force=True)
    assert (foreign / "report.json").is_file()


def same_analysis(a, b):
    """Equal reports but for where the log came from (paths, files, hash, format) and wall
    clocks; equal tables."""
    ra, rb = without_wall_clock(a.report), without_wall_clock(b.report)
    for r in (ra, rb):
        for key in ("paths", "files", "hash", "format"):
            r["input"].pop(key)
    assert ra == rb
    for name in TABLES:
        assert getattr(a, name).equals(getattr(b, name)), name


def test_a_dataframe_gives_the_same_analysis_as_the_file(in_repo, sample_analysis):
    frame = pd.read_parquet(SAMPLE)
    from_frame = detbal.analyze(frame, device="cpu")
    same_analysis(from_frame, sample_analysis)
    assert from_frame.report["input"]["format"] == "arrow/transitions"
    assert from_frame.report["input"]["paths"] == ["<pandas.DataFrame>"]
    assert (from_frame.report["input"]["files"], from_frame.report["input"]["hash"]) == (0, "")


def test_pyarrow_tables_and_readers_in_small_batches_give_the_same_analysis(in_repo, sample_analysis):
    table = pq.read_table(SAMPLE)
    same_analysis(detbal.analyze(table, device="cpu"), sample_analysis)
    reader = table.to_reader(max_chunksize=7_777)
    same_analysis(detbal.analyze(reader, device="cpu"), sample_analysis)


def test_the_column_options_apply_to_tables(in_repo):
    frame = pd.read_parquet(SAMPLE).rename(columns={"source": "shown", "target": "produced"})
    a = detbal.analyze(frame, source_column="shown", target_column="produced", device="cpu", permutations=0)
    assert a.report["input"]["rows"] == 200_000
    assert a.report["settings"]["resampling"]["permutations"] == 0


def test_figures_and_the_notebook_view(sample_analysis):
    names = sample_analysis.figure_names
    assert names[:4] == ["detailed_balance", "loop_balance", "potential_histogram", "landscape"]
    svg = sample_analysis.figure("landscape")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    with pytest.raises(detbal.DetbalError, match="no figure `nope`; the figures are detailed_balance"):
        sample_analysis.figure("nope")
    html = sample_analysis._repr_html_()
    assert html.startswith('<iframe srcdoc="<!DOCTYPE html>')
    assert "Detailed balance report" in html and "data:image/png;base64," in html
    assert "200000 transitions, 300 states. Detailed balance is rejected" in repr(sample_analysis)


def test_groups_of_a_simulated_table(in_repo):
    table, truth = detbal.simulate(mode="reversible", rows=40_000, states=60, seed=5, groups=2)
    assert table.column_names == ["run", "source", "target", "group"]
    a = detbal.analyze(table, group_by="group", device="cpu", permutations=0, verdict_resamples=0)
    groups = a.report["groups"]["groups"]
    assert [g["name"] for g in groups] == ["g0", "g1"]
    assert sum(g["transitions"] for g in groups) == 40_000
    assert truth["groups"] == ["g0", "g1"]


def test_simulate_returns_the_log_and_its_truth():
    table, truth = detbal.simulate(mode="driven", rows=5_000, states=40, seed=3)
    assert table.num_rows == 5_000 and table.column_names == ["run", "source", "target"]
    assert truth["rows"] == 5_000 and truth["mode"] == "driven"
    assert len(truth["V"]) == len(truth["states"]) == 40
    assert all(abs(t["affinity"] - 3 * truth["drive"]["eps"]) < 1e-12 for t in truth["drive"]["triangles"])
    again, _ = detbal.simulate(mode="driven", rows=5_000, states=40, seed=3)
    assert again.equals(table)


def test_compare_in_memory_and_on_disk(tmp_path, sample_analysis):
    same = detbal.compare(sample_analysis, sample_analysis)
    assert same.report["rms_drift"] == 0.0 and same.report["max_drift"] == 0.0
    assert same.report["shared_states"] == 300
    sample_analysis.write(tmp_path / "out")
    on_disk = detbal.compare(tmp_path / "out", sample_analysis, max_potential_drift=0.1)
    assert on_disk.report["rms_drift"] == 0.0 and on_disk.report["exceeded"] == []
    assert "within thresholds" in on_disk.summary()
    table, _ = detbal.simulate(mode="reversible", rows=20_000, states=300, seed=9)
    other = detbal.analyze(table, device="cpu", permutations=0)
    drift = detbal.compare(sample_analysis, other, max_potential_drift=1e-6, top=3)
    assert drift.report["exceeded"] and len(drift.report["top_movers"]) == 3
    assert drift.report["old_dir"] == "<old analysis>"
