# Type stubs of the extension module. The docstrings are the module's own (the Rust doc
# comments); tests/test_stubs.py checks that names, signatures and docstrings agree.

from os import PathLike
from typing import Any, Optional, Sequence, Tuple, Union

import pyarrow

_Path = Union[str, "PathLike[str]"]

__version__: str

class DetbalError(ValueError):
    """An error of detbal: bad input, a bad option, an unusable device, an unwritable output. The message is the one the command line prints."""

def analyze(
    source: Union[_Path, Sequence[_Path], Any, None] = None, **options: Any
) -> Analysis:
    """Analyses a transition log, as `detbal analyze` does.

    `source` is a path, a list of paths, a directory or a glob pattern (together one dataset), or
    a table in memory: a pyarrow.Table or RecordBatchReader, a pandas or polars DataFrame, any
    object with `__arrow_c_stream__` (read without a copy where the producer allows). None takes
    the `inputs` of the `config` file.

    `options` are the long flags of `detbal analyze` in snake_case (`min_count=10`,
    `device="cpu"`, `group_by="model"`, `seed=7`, `config="detbal.toml"`), checked by the command
    line's own parser; a switch takes True or False. `output`, `force`, `json`, `quiet` and
    `fail_on_violation` concern the terminal and the output directory and are not options here.

    Nothing is printed. The GIL is released while the engine runs; Ctrl-C stops the analysis
    after the stage that is running (KeyboardInterrupt, with a note naming the stage).

    Raises DetbalError with the command line's message on bad input or a bad option.
    """

def simulate(**options: Any) -> Tuple[pyarrow.Table, dict[str, Any]]:
    """Simulates a transition log with a planted potential, as `detbal simulate` does.

    `options` are the long flags of `detbal simulate` in snake_case (`mode="driven"`,
    `rows=100_000`, `states=300`, `seed=1`, `groups=1`, `shared_potential=False`).

    Returns the log as a pyarrow.Table (`run`, `source`, `target`, and `group` with groups) and
    its truth (the planted potential `V` of each state, the drive, the attractors) as a dict.
    """

def compare(
    old: Union[Analysis, _Path], new: Union[Analysis, _Path], **options: Any
) -> Comparison:
    """Compares two analyses, as `detbal compare` does: the drift of the potential (the gauge
    removed per component), the states that moved most, and the tests' statistics old → new.

    `old` and `new` are each an Analysis or an output directory of `detbal analyze` (or of
    `.write`). `options` are the long flags of `detbal compare` in snake_case (`top=10`,
    `max_potential_drift=0.2`, `max_state_drift`, `max_r_drop`); a threshold exceeded is listed
    in the result's `report["exceeded"]`, one whose drift cannot be measured in `unmeasured`.
    """

class Analysis:
    """The analysis of a transition log (the result of `detbal.analyze`)."""

    @property
    def report(self) -> dict[str, Any]:
        """The report as a dict, equal to the report.json that `.write(dir)` writes (a new dict on
        every access)."""
    @property
    def verdict(self) -> dict[str, Any]:
        """The verdict: report.json's `verdict` section (`rejected`, `alpha`, `p_value`,
        `statistic`, `ndf`, `sentence`, …); `rejected` is None when the log has no independent
        cycle to test."""
    @property
    def potentials(self) -> pyarrow.Table:
        """One row per state: `state`, `potential` (null where not identifiable), `identifiable`,
        `status`, `component`, `out_count`, `in_count`, `self_count` (potentials.parquet)."""
    @property
    def pairs(self) -> pyarrow.Table:
        """One row per pair of the pairwise statistics: counts both ways, `log_ratio`,
        `potential_difference`, `sigma`, … (pairs.parquet)."""
    @property
    def splits(self) -> pyarrow.Table:
        """One row per pair of the verdict's test: observed and fitted split, standardised
        `residual`, `p_value`, `q_value` (splits.parquet)."""
    @property
    def cycles(self) -> pyarrow.Table:
        """One row per reciprocal triangle listed: its states, six counts, `affinity`, `z`,
        `p_value`, `q_value`, … (cycles.parquet)."""
    @property
    def fundamental_cycles(self) -> pyarrow.Table:
        """One row per Schnakenberg fundamental cycle: `cycle` (its states), `length`,
        `affinity`, `flux` (fundamental_cycles.parquet)."""
    @property
    def nulls(self) -> Optional[pyarrow.Table]:
        """The null samples of the resampling tests in long form (`test`, `resample`,
        `statistic`, `observed`; nulls.parquet), or None when none ran."""
    @property
    def figure_names(self) -> list[str]:
        """The names of the figures, as `.figure(name)` takes them."""
    def summary(self, width: Optional[int] = None) -> str:
        """The terminal summary, wrapped to `width` columns (default: `COLUMNS`, else the
        terminal's width, else 100)."""
    def write(self, dir: _Path, force: bool = False) -> None:
        """Writes the output directory of `detbal analyze -o DIR` (report.json, the Parquet tables,
        figures, report.html), replaced as a whole; a directory that is not a detbal output is
        replaced only with `force=True`."""
    def figure(self, name: str) -> str:
        """The figure `name` (see `figure_names`) as SVG text, as written under figures/."""
    def _repr_html_(self) -> str:
        """report.html in a frame, for notebooks."""

class Comparison:
    """The drift between two analyses (the result of `detbal.compare`)."""

    @property
    def report(self) -> dict[str, Any]:
        """The comparison as a dict, as `detbal compare --json` prints it (`rms_drift`,
        `top_movers`, `exceeded`, `unmeasured`, …)."""
    def summary(self) -> str:
        """The comparison as `detbal compare` prints it."""
