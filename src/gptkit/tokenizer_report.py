"""Moved to `gptkit.tokenizer.report`; this module keeps the old import path working."""

from gptkit.tokenizer.report import (  # noqa: F401
    SCRIPTS,
    ScriptRow,
    TokenizerReport,
    encode_throughput,
    parallelism,
    script_counts,
    tokenizer_report,
)
