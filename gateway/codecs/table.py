"""The one in-memory form every request takes: named columns of plain Python values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_SPARSE_FACTOR = 4  # at most 4 cells per value sent (3 of them missing), ...
_SPARSE_SLACK = 10_000  # ... beyond a small table, which may be as sparse as it likes


@dataclass(frozen=True)
class Table:
    columns: dict[str, list[Any]]  # column name -> values, one per row; None is missing
    n_rows: int
    from_text: bool = False  # values came from CSV text and may still need parsing

    @classmethod
    def from_records(cls, records: list[Any], *, where: str = "records") -> Table:
        """Rows as objects; a key absent from some rows is a missing value there."""
        names: dict[str, None] = {}
        present = 0
        for index, row in enumerate(records):
            if not isinstance(row, dict):
                raise TypeError(f"{where}[{index}] is {_kind(row)}, expected an object of column values")
            present += len(row)
            for key in row:
                names.setdefault(key, None)
        # Every row gets every column: rows that each bring new keys would grow rows x keys, a
        # few MB of body becoming GBs of missing values. Sparse records are fine, disjoint are not.
        if len(records) * len(names) > _SPARSE_FACTOR * present + _SPARSE_SLACK:
            raise TypeError(f"{where}: {len(records)} rows with {len(names)} distinct keys but only {present} "
                            "values; send every row with the same keys (missing values as null)")
        columns = {name: [row.get(name) for row in records] for name in names}
        return cls(columns, len(records))

    @classmethod
    def from_columns(cls, columns: dict[str, Any], *, where: str = "inputs") -> Table:
        """Columns as lists. All scalars is one row: R's httr (encode = "json") and jsonlite's
        auto_unbox write a length-one vector as a bare value."""
        if columns and not any(isinstance(values, list | dict) for values in columns.values()):
            return cls({name: [value] for name, value in columns.items()}, 1)
        lengths = set()
        for name, values in columns.items():
            if not isinstance(values, list):
                raise TypeError(f"{where}.{name} is {_kind(values)}, expected a list of values")
            lengths.add(len(values))
        if len(lengths) > 1:
            raise TypeError(f"{where}: columns have different lengths {sorted(lengths)}")
        return cls(dict(columns), lengths.pop() if lengths else 0)

    @classmethod
    def from_split(cls, names: Any, rows: Any, *, where: str) -> Table:
        """pandas' split orient; unboxed by R (a lone column name as a string, one row as a bare
        list of values or a bare value) it is read as R meant it."""
        if isinstance(names, str):
            names = [names]
        if not isinstance(rows, list):
            rows = [[rows]]
        elif rows and not any(isinstance(row, list) for row in rows):
            rows = [[value] for value in rows] if len(names) == 1 else [rows]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"{where}.columns must be a list of column names")
        for index, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(names):
                raise TypeError(f"{where}.data[{index}] must be a list of {len(names)} values")
        columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        return cls(columns, len(rows))

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        if not names:
            return []
        return [dict(zip(names, values, strict=True)) for values in zip(*self.columns.values(), strict=True)]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
