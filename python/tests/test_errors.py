"""Bad input and bad options raise DetbalError with the command line's message, and nothing is
printed unless asked."""

import os
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import detbal
from conftest import REPO, SAMPLE, run_cli


def cli_error(*args):
    """The CLI's one-line error for `detbal analyze ARGS`, without `error: ` and usage lines."""
    done = run_cli("analyze", *args, "-o", REPO / "target" / "py-errors")
    assert done.returncode in (1, 2), done
    return done.stderr.removeprefix("error: ").split("\n\n")[0].rstrip()


def raised(**call):
    with pytest.raises(detbal.DetbalError) as caught:
        detbal.analyze(**call)
    return str(caught.value)


def test_detbal_error_is_a_value_error():
    assert issubclass(detbal.DetbalError, ValueError)


def test_a_missing_file_has_the_clis_message(in_repo):
    message = raised(source="data/missing.parquet", device="cpu")
    assert message == cli_error("data/missing.parquet")
    assert message == "cannot read data/missing.parquet: no such file or directory"


def test_a_wrong_column_type_has_the_clis_message(tmp_path):
    path = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"source": [1.0, 2.0], "target": ["a", "b"]}), path)
    message = raised(source=path, device="cpu")
    assert message == cli_error(path)
    hint = "\n  hint: counts, steps and integer names are whole numbers: cast the column to an integer type"
    assert message == f"{path} (column `source`): expected a string or integer column, found Float64" + hint
    # A data frame is named by its type where a file is named by its path.
    frame = pd.DataFrame({"source": [1.0, 2.0], "target": ["a", "b"]})
    assert raised(source=frame, device="cpu") == (
        "<pandas.DataFrame> (column `source`): expected a string or integer column, found Float64" + hint
    )


def test_a_bad_row_of_a_table_is_located():
    table = pa.table({"source": ["a", "b", "a"], "target": ["b", "a", "c"], "count": [1, 1, 0]})
    assert raised(source=table, device="cpu") == (
        "<pyarrow.Table> (row 2, column `count`): expected a count ≥ 1, found 0"
    )


def test_an_unknown_option_names_the_closest(in_repo):
    message = raised(source=SAMPLE, min_cont=10)
    assert message.startswith("unknown option `min_cont` of detbal.analyze; did you mean `min_count`? valid options: ")
    assert "group_by" in message and "min-count" not in message
    assert raised(source=SAMPLE, zzz=1).startswith("unknown option `zzz` of detbal.analyze; valid options: format,")


def test_bad_values_have_the_clis_messages(in_repo):
    assert raised(source=SAMPLE, alpha=2) == cli_error(SAMPLE, "--alpha", "2")
    assert raised(source=SAMPLE, alpha=2) == "invalid setting: --alpha must lie strictly between 0 and 1, got 2"
    message = raised(source=SAMPLE, device="tpu")
    assert message == cli_error(SAMPLE, "--device", "tpu")
    assert message.startswith("invalid value 'tpu' for '--device <DEVICE>'")
    assert raised(source=SAMPLE, min_count="ten") == cli_error(SAMPLE, "--min-count", "ten")
    assert raised(source=SAMPLE, exposure="uniform") == cli_error(SAMPLE, "--exposure", "uniform")


def test_output_flags_and_switches_say_what_to_do(in_repo):
    assert raised(source=SAMPLE, output="out") == (
        "option `output` does not apply to detbal.analyze: the analysis is returned; write it with .write(dir)"
    )
    assert raised(source=SAMPLE, paper="yes") == "option `paper` is a switch: expected True or False, got 'yes'"


def test_a_config_file_is_read_and_checked_as_by_the_cli(in_repo, tmp_path):
    config = tmp_path / "detbal.toml"
    config.write_text('device = "cpu"\nmin-count = 10\npermutations = 0\n')
    a = detbal.analyze(SAMPLE, config=config)
    assert a.report["settings"]["pairs"]["min_count"] == 10
    # Options win over the file, as flags do.
    assert detbal.analyze(SAMPLE, config=config, min_count=3).report["settings"]["pairs"]["min_count"] == 3
    config.write_text("min_count = 10\n")
    assert raised(source=SAMPLE, config=config) == cli_error(SAMPLE, "--config", config)


def test_no_source_says_what_to_pass():
    with pytest.raises(detbal.DetbalError, match="^invalid setting: no input given\n  hint: pass a path"):
        detbal.analyze()


def test_a_wrong_source_type_is_a_type_error():
    with pytest.raises(TypeError, match="the source must be a path, a list of paths"):
        detbal.analyze(42)


def test_other_functions_check_their_options_too():
    with pytest.raises(detbal.DetbalError, match="unknown option `row` of detbal.simulate; did you mean `rows`"):
        detbal.simulate(row=10)
    with pytest.raises(detbal.DetbalError, match="invalid value 'sideways' for '--mode <MODE>'"):
        detbal.simulate(mode="sideways")
    with pytest.raises(detbal.DetbalError, match="cannot read nowhere/report.json"):
        detbal.compare("nowhere", "nowhere")


def test_nothing_is_printed(in_repo, capfd):
    detbal.analyze(SAMPLE)
    assert capfd.readouterr() == ("", "")


def test_nothing_is_printed_without_xdg_runtime_dir():
    """The GPU's adapter enumeration (device auto) would make Mesa print an error line."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    script = f"import detbal; detbal.analyze({SAMPLE!r}, permutations=0); print('ok', end='')"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok", "")
