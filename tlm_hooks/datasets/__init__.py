"""Score whole datasets: CSV/JSONL files (streaming, resumable) and pandas DataFrames.

    from tlm_hooks.datasets import score_file, score_dataframe
    summary = score_file("data.jsonl")            # writes data.scored.jsonl; returns a Summary
    scored = score_dataframe(df, prompt_col="question", response_col="answer")

From the shell: ``tlm-hooks score data.jsonl`` (see ``tlm-hooks score --help``).
"""

from .columns import Columns
from .errors import BadRowError, DatasetError, MissingColumnsError, ResumeError
from .files import ascore_file, score_file
from .frame import ascore_dataframe, score_dataframe
from .summary import BANDS, LowRow, Summary, format_summary
from .writer import ERROR_COLUMN, EXPLANATION_COLUMN, RESULT_COLUMNS, SCORE_COLUMN, default_output_path

__all__ = [
    "score_file",
    "ascore_file",
    "score_dataframe",
    "ascore_dataframe",
    "Columns",
    "Summary",
    "LowRow",
    "BANDS",
    "format_summary",
    "default_output_path",
    "SCORE_COLUMN",
    "EXPLANATION_COLUMN",
    "ERROR_COLUMN",
    "RESULT_COLUMNS",
    "DatasetError",
    "MissingColumnsError",
    "BadRowError",
    "ResumeError",
]
