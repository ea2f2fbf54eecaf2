"""Files for `tlm-hooks score --engine ray`: read CSV/JSONL/Parquet into a Ray Dataset, and write
the scored rows, as they stream back to the driver in input order, to one Parquet, CSV or JSONL file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from .errors import DatasetError

__all__ = [
    "RAY_FORMATS",
    "RayFormat",
    "is_uri",
    "detect_ray_format",
    "read_dataset",
    "OutputFile",
    "output_format",
    "count_rows",
]

RayFormat = Literal["csv", "jsonl", "parquet"]
RAY_FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
_SUFFIXES: dict[str, RayFormat] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def is_uri(path: str) -> bool:
    """True for ``s3://…``, ``gs://…`` and the like (read by Ray Data, not checked here)."""
    return "://" in path and not path.startswith("file://")


def detect_ray_format(path: str, explicit: str | None = None) -> RayFormat:
    """``csv``, ``jsonl`` or ``parquet``: ``explicit`` if given, else from the suffix of ``path``."""
    if explicit is not None:
        if explicit not in RAY_FORMATS:
            raise DatasetError(f"unknown format {explicit!r}: allowed {', '.join(RAY_FORMATS)}")
        return explicit  # type: ignore[return-value]
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise DatasetError(
        f"cannot tell the format of {path!r} from its suffix {suffix or '(none)'!r}: allowed "
        f"{', '.join(_SUFFIXES)}, or say it with --format {'|'.join(RAY_FORMATS)} (a folder of files needs it)"
    )


def output_format(out: Path) -> RayFormat:
    """The format an output file is written in, from its suffix."""
    fmt = _SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"cannot tell which format to write {out.name!r} in: give --out a name ending in {', '.join(_SUFFIXES)}"
        )
    return fmt


def read_dataset(path: str, fmt: RayFormat) -> Any:
    """A Ray Dataset of the file(s) at ``path``. CSV cells are read as text, as the local engine
    reads them (Arrow would otherwise make a column of digits a number, which is no response)."""
    import ray.data

    if fmt == "parquet":
        return ray.data.read_parquet(path)
    if fmt == "jsonl":
        return ray.data.read_json(path, lines=True, file_extensions=None)
    from pyarrow import csv, string

    names = _csv_header(path) or ray.data.read_csv(path, file_extensions=None).columns() or []
    options = csv.ConvertOptions(column_types={name: string() for name in names}, strings_can_be_null=False)
    return ray.data.read_csv(path, convert_options=options, file_extensions=None)


def _csv_header(path: str) -> list[str] | None:
    """The header of a local CSV file (None for a folder or a remote path: Ray Data reads it)."""
    local = path.removeprefix("file://")
    if is_uri(path) or not os.path.isfile(local):
        return None
    import csv

    with open(local, encoding="utf-8-sig", newline="") as file:
        return next(csv.reader(file), None)


def count_rows(path: str, fmt: RayFormat) -> int | None:
    """The row count of a local Parquet file, from its footer (None otherwise: counting would read it all)."""
    local = path.removeprefix("file://")
    if fmt != "parquet" or is_uri(path) or not os.path.isfile(local):
        return None
    from pyarrow import parquet

    return int(parquet.ParquetFile(local).metadata.num_rows)


class OutputFile:
    """Appends Arrow tables to ``OUT.partial``; ``finish()`` renames it to ``OUT``, ``discard()``
    removes it. CSV gets one header; nested values (lists, structs) are written as JSON text."""

    def __init__(self, out: Path, fmt: RayFormat) -> None:
        self.out = out
        self.format = fmt
        self.partial = out.with_name(out.name + ".partial")
        self._writer: Any = None
        self._schema: Any = None
        self._file: Any = None

    def append(self, table: Any) -> None:
        if self.format == "jsonl":
            if self._file is None:
                self._file = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish/discard
            for row in table.to_pylist():
                self._file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            return
        if self.format == "csv":
            table = _flat(table)
        if self._writer is None:
            self._schema = table.schema
            self._writer = self._open(table.schema)
        elif table.schema != self._schema:
            table = table.cast(self._schema)  # e.g. a column all-null in the first batch
        self._writer.write_table(table)

    def _open(self, schema: Any) -> Any:
        if self.format == "parquet":
            from pyarrow import parquet

            return parquet.ParquetWriter(str(self.partial), schema)
        from pyarrow import csv

        return csv.CSVWriter(str(self.partial), schema)

    def finish(self) -> None:
        self._close()
        if not self.partial.exists():  # no rows at all: still an output (JSONL: empty file)
            self.partial.write_bytes(b"")
        os.replace(self.partial, self.out)

    def discard(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _flat(table: Any) -> Any:
    """``table`` with nested columns as JSON text (CSV has no lists)."""
    import pyarrow as pa

    for at, column in enumerate(table.schema):
        if pa.types.is_nested(column.type):
            text = [
                None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                for v in table.column(at).to_pylist()
            ]
            table = table.set_column(at, column.name, pa.array(text, pa.string()))
    return table
