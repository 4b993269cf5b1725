"""detbal: is an LLM agent's dynamics in detailed balance, and with what potential?

The Python package of the detbal engine (the same code as the `detbal` command line)::

    import detbal
    analysis = detbal.analyze("logs/*.parquet", min_count=10, device="cpu")
    analysis.verdict["sentence"]        # the calibrated test's verdict
    analysis.potentials                 # pyarrow.Table: state, potential, ...
    print(analysis.summary())           # the terminal summary
    analysis.write("detbal-out")        # report.json, tables, figures, report.html

A pyarrow.Table, a pandas or polars DataFrame is analysed as a file is. Errors raise
DetbalError (a ValueError) with the command line's message.
"""

from ._detbal import (
    Analysis,
    Comparison,
    DetbalError,
    __version__,
    analyze,
    compare,
    simulate,
)

__all__ = [
    "Analysis",
    "Comparison",
    "DetbalError",
    "__version__",
    "analyze",
    "compare",
    "simulate",
]
