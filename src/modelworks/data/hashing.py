"""Content hashes of DataFrames, the identity of a dataset version."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

__all__ = ["HASH_ALGORITHM", "content_hash"]

HASH_ALGORITHM = "sha256"


def content_hash(df: pd.DataFrame) -> str:
    """Return the sha256 hex digest of a DataFrame's content.

    The digest covers the row count, the column names and dtypes (as strings, in column
    order) and then every value, column by column. Equal content gives an equal hash however
    the frame was loaded (built in memory, read back from CSV or Parquet) as long as the
    dtypes are equal. The index is ignored. Row order matters, and so does column order:
    reordering the columns changes the hash, because a column position is part of a
    dataset's schema for most consumers (CSV writers, positional model inputs).
    """
    digest = hashlib.new(HASH_ALGORITHM)
    header = {
        "rows": len(df),
        "columns": [[str(name), str(dtype)] for name, dtype in df.dtypes.items()],
    }
    # A fixed, unambiguous header: every column then contributes exactly 8 bytes per row.
    digest.update(json.dumps(header, separators=(",", ":")).encode())
    for position in range(df.shape[1]):
        # iloc, not df[name]: duplicate column names would return a frame.
        hashed = pd.util.hash_pandas_object(df.iloc[:, position], index=False)
        # Little-endian explicitly, so the digest does not depend on the machine's byte order.
        values = np.ascontiguousarray(hashed.to_numpy(dtype=np.uint64).astype("<u8", copy=False))
        digest.update(values.data)
    return digest.hexdigest()
