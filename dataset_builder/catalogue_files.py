"""Reading catalogue files (CSV/TSV, parquet, FITS tables): the header alone, or the rows a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

CHUNK_ROWS = 100_000


def csv_separator(path: Path) -> str:
    """Tab for a .tsv (or .tsv.gz) file, else comma."""
    return "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","


# --- file access ----------------------------------------------------------------------------------


def file_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".fits", ".fit", ".fits.gz", ".fit.gz", ".fts")):
        return "fits"
    return "csv"


def read_columns(path: Path) -> list[str]:
    kind = file_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    if kind == "fits":
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:  # the header only: no table data is read here
            for hdu in hdul:
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    return list(hdu.columns.names)
        raise ValueError(f"vote catalogue {path}: no table HDU in this FITS file")
    sep = csv_separator(path)
    return list(pd.read_csv(path, nrows=0, sep=sep).columns)


def read_chunks(path: Path, columns: list[str], id_col: str) -> Iterator[pd.DataFrame]:
    kind = file_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=columns):
            yield batch.to_pandas()
    elif kind == "fits":
        from astropy.table import Table

        # FITS tables are read whole (memory-mapped); big-endian columns are made native for pandas.
        table = Table.read(path, format="fits", memmap=True)[columns]
        frame = table.to_pandas()
        for start in range(0, len(frame), CHUNK_ROWS):
            yield frame.iloc[start : start + CHUNK_ROWS]
    else:
        sep = csv_separator(path)
        yield from pd.read_csv(path, usecols=columns, dtype={id_col: str}, chunksize=CHUNK_ROWS, sep=sep)
