from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelworks.data.hashing import HASH_ALGORITHM, content_hash


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "x": [0.1, 1 / 3, -2.5e-300, 1e17],
            "label": ["a", "b", None, 'a,b "quoted"'],
            "flag": [True, False, True, True],
        }
    )


def test_digest_is_sha256_hex(frame: pd.DataFrame) -> None:
    digest = content_hash(frame)
    assert HASH_ALGORITHM == "sha256"
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert content_hash(frame.copy()) == digest


def test_stable_across_parquet_round_trip(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = frame.assign(when=pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-03-01"]))
    path = tmp_path / "frame.parquet"
    frame.to_parquet(path)
    loaded = pd.read_parquet(path)
    assert loaded.dtypes.astype(str).tolist() == frame.dtypes.astype(str).tolist()
    assert content_hash(loaded) == content_hash(frame)


def test_stable_across_csv_round_trip(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    loaded = pd.read_csv(path)
    assert loaded.dtypes.astype(str).tolist() == frame.dtypes.astype(str).tolist()
    assert content_hash(loaded) == content_hash(frame)


def test_index_is_ignored(frame: pd.DataFrame) -> None:
    assert content_hash(frame.set_axis([10, 20, 30, 40])) == content_hash(frame)


def test_column_order_changes_hash(frame: pd.DataFrame) -> None:
    assert content_hash(frame[["x", "id", "label", "flag"]]) != content_hash(frame)


def test_row_order_changes_hash(frame: pd.DataFrame) -> None:
    reordered = frame.iloc[[1, 0, 2, 3]].reset_index(drop=True)
    assert content_hash(reordered) != content_hash(frame)


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [("id", 0, 99), ("x", 1, 0.3333333333333333 + 1e-16), ("label", 2, "c"), ("flag", 3, False)],
)
def test_value_change_changes_hash(
    frame: pd.DataFrame, column: str, row: int, value: object
) -> None:
    changed = frame.copy()
    changed.loc[row, column] = value
    assert content_hash(changed) != content_hash(frame)


def test_names_and_dtypes_are_part_of_the_hash(frame: pd.DataFrame) -> None:
    assert content_hash(frame.rename(columns={"id": "key"})) != content_hash(frame)
    assert content_hash(frame.astype({"id": "float64"})) != content_hash(frame)


def test_missing_differs_from_empty_string() -> None:
    with_none = pd.DataFrame({"s": ["a", None]})
    with_empty = pd.DataFrame({"s": ["a", ""]})
    assert content_hash(with_none) != content_hash(with_empty)


def test_empty_frames_and_duplicate_names() -> None:
    assert content_hash(pd.DataFrame()) != content_hash(pd.DataFrame({"a": []}))
    duplicated = pd.DataFrame(np.arange(6).reshape(3, 2), columns=["a", "a"])
    swapped = pd.DataFrame(np.arange(6).reshape(3, 2)[:, ::-1], columns=["a", "a"])
    assert content_hash(duplicated) != content_hash(swapped)
