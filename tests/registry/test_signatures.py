"""Signatures: inference from real frames, and one error naming every offending column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from modelworks.errors import InvalidInput
from modelworks.registry.signatures import ColumnSpec, Signature, check_input, infer_signature


def example() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([30, 41, 25], dtype="int64"),
            "visits": pd.array([1, None, 3], dtype="Int64"),
            "small": np.array([1, 2, 3], dtype="uint8"),
            "income": [1.5, np.nan, 3.0],
            "member": [True, False, True],
            "flag": pd.array([True, None, False], dtype="boolean"),
            "city": ["Oslo", "Rome", "Lima"],
            "note": pd.Series(["a", None, "c"], dtype=object),
            "plan": pd.Categorical(["basic", "pro", "basic"], categories=["basic", "pro", "max"]),
            "seen": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "seen_tz": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
        }
    )


def spec(signature: Signature, name: str) -> ColumnSpec:
    return next(c for c in signature.inputs if c.name == name)


SIGNATURE = Signature(
    inputs=[
        ColumnSpec(name="x", dtype="float", nullable=False),
        ColumnSpec(name="n", dtype="integer", nullable=False),
        ColumnSpec(name="plan", dtype="category", nullable=True, categories=["lo", "mid", "hi"]),
        ColumnSpec(name="city", dtype="string", nullable=False),
    ],
    output="probability",
)


def raised(payload: object, signature: Signature = SIGNATURE) -> str:
    with pytest.raises(InvalidInput) as info:
        check_input(signature, payload)
    assert info.value.field == "input"
    return str(info.value)


# --- inference ---------------------------------------------------------------------------------


def test_infer_maps_each_dtype_kind() -> None:
    signature = infer_signature(example(), output="class")
    kinds = {c.name: c.dtype for c in signature.inputs}
    assert kinds == {
        "age": "integer",
        "visits": "integer",
        "small": "integer",
        "income": "float",
        "member": "boolean",
        "flag": "boolean",
        "city": "string",
        "note": "string",
        "plan": "category",
        "seen": "datetime",
        "seen_tz": "datetime",
    }
    assert [c.name for c in signature.inputs] == list(example().columns)
    assert signature.output == "class"


def test_infer_nullable_only_where_the_example_has_missing_values() -> None:
    signature = infer_signature(example())
    nullable = {c.name for c in signature.inputs if c.nullable}
    assert nullable == {"visits", "income", "flag", "note", "seen"}


def test_infer_records_category_levels_as_strings_including_unused() -> None:
    signature = infer_signature(example())
    assert spec(signature, "plan").categories == ["basic", "pro", "max"]
    assert spec(signature, "city").categories is None
    numeric = infer_signature(pd.DataFrame({"grade": pd.Categorical([1, 2], categories=[1, 2])}))
    assert spec(numeric, "grade").categories == ["1", "2"]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ([{"a": 1}], "DataFrame"),
        (pd.DataFrame(), "no columns"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate"),
        (pd.DataFrame({"d": pd.to_timedelta([1], unit="s")}), "unsupported"),
    ],
)
def test_infer_rejects_bad_examples(bad: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as info:
        infer_signature(bad)  # type: ignore[arg-type]
    assert info.value.field == "input_example"
    assert "input_example" in str(info.value)


def test_signature_round_trips_through_model_dump() -> None:
    signature = infer_signature(example(), output="free text: top-3 labels")
    dumped = signature.model_dump(mode="json")
    assert Signature.model_validate(dumped) == signature
    assert Signature.model_validate_json(signature.model_dump_json()) == signature


def test_signature_is_frozen_and_validated() -> None:
    with pytest.raises(ValidationError):
        SIGNATURE.output = "class"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="duplicate"):
        Signature(inputs=[ColumnSpec(name="a", dtype="float", nullable=False)] * 2)
    with pytest.raises(ValidationError, match="only valid for dtype category"):
        ColumnSpec(name="a", dtype="string", nullable=False, categories=["x"])


# --- check_input: success ----------------------------------------------------------------------


def test_check_reorders_columns_and_converts_int_to_float_without_mutating() -> None:
    payload = pd.DataFrame({"city": ["Oslo"], "plan": ["mid"], "n": [2.0], "x": [3]})
    before = payload.copy()
    out = check_input(SIGNATURE, payload)
    assert list(out.columns) == ["x", "n", "plan", "city"]
    assert out["x"].dtype == np.float64 and out["x"].tolist() == [3.0]
    assert out["n"].dtype == np.int64 and out["n"].tolist() == [2]
    assert isinstance(out["plan"].dtype, pd.CategoricalDtype)
    assert list(out["plan"].cat.categories) == ["lo", "mid", "hi"]
    pd.testing.assert_frame_equal(payload, before)


def test_check_accepts_dict_of_lists_and_list_of_dicts() -> None:
    rows = [{"x": 1.5, "n": 1, "plan": None, "city": "Rome"}]
    columns = {"x": [1.5], "n": [1], "plan": [None], "city": ["Rome"]}
    for payload in (rows, columns):
        out = check_input(SIGNATURE, payload)
        assert out.shape == (1, 4)
        assert out["plan"].isna().all()


def test_check_fills_nullable_integer_from_json_nulls() -> None:
    signature = Signature(inputs=[ColumnSpec(name="n", dtype="integer", nullable=True)])
    out = check_input(signature, [{"n": 1}, {"n": None}])
    assert str(out["n"].dtype) == "Int64"
    assert out["n"].isna().tolist() == [False, True]


def test_check_accepts_an_inferred_signature_for_its_own_example() -> None:
    frame = example()
    out = check_input(infer_signature(frame), frame)
    pd.testing.assert_frame_equal(out, frame)


# --- check_input: errors -----------------------------------------------------------------------


def test_one_error_lists_every_offending_column() -> None:
    payload = pd.DataFrame({"x": ["1.5"], "plan": ["mid"], "extra": [1]})
    message = raised(payload)
    assert "missing columns: 'n', 'city'" in message
    assert "unexpected columns: 'extra'" in message
    assert "wrong types: 'x' (expected float, found str)" in message


def test_wrong_types_name_column_expected_and_found() -> None:
    payload = pd.DataFrame(
        {"x": pd.Series(["a"], dtype=object), "n": [1.5], "plan": [3], "city": [True]}
    )
    message = raised(payload)
    assert "'x' (expected float, found object holding string values)" in message
    assert "'n' (expected integer, found float64 with non-integral values)" in message
    assert "'plan' (expected category, found int64)" in message
    assert "'city' (expected string, found bool)" in message


def test_missing_values_in_non_nullable_columns_are_counted() -> None:
    payload = pd.DataFrame(
        {"x": [1.0, np.nan, np.nan], "n": [1, 2, 3], "plan": [None] * 3, "city": ["a", None, "c"]}
    )
    message = raised(payload)
    assert "missing values in non-nullable columns: 'x' (2 missing), 'city' (1 missing)" in message
    assert "plan" not in message  # nullable


def test_integer_column_with_missing_values_is_a_missing_value_error_not_a_type_error() -> None:
    message = raised(
        {"x": [1.0, 2.0], "n": [1.0, np.nan], "plan": [None, None], "city": ["a", "b"]}
    )
    assert "'n' (1 missing)" in message
    assert "wrong types" not in message


def test_unknown_category_levels_are_named_and_capped() -> None:
    levels = [f"level{i}" for i in range(8)]
    payload = pd.DataFrame(
        {"x": [1.0] * 9, "n": [1] * 9, "plan": ["lo", *levels], "city": ["a"] * 9}
    )
    message = raised(payload)
    assert (
        "unknown category levels: 'plan' ('level0', 'level1', 'level2', 'level3', 'level4', ..."
        in message
    )
    assert "(3 more)" in message
    assert "level7" not in message
    assert "expected one of 'lo', 'mid', 'hi'" in message


def test_category_column_with_unknown_levels_in_its_own_categories() -> None:
    plan = pd.Categorical(["lo", "ultra"], categories=["lo", "ultra"])
    payload = pd.DataFrame({"x": [1.0, 2.0], "n": [1, 2], "plan": plan, "city": ["a", "b"]})
    assert "'plan' ('ultra'; expected one of" in raised(payload)


@pytest.mark.parametrize("payload", ["x,n\n1,2", 42, [1, 2, 3], {"x": [1], "n": [1, 2]}, None])
def test_non_table_inputs_are_invalid_input(payload: object) -> None:
    message = raised(payload)
    assert message.startswith("input ")


def test_message_never_contains_a_long_payload() -> None:
    long_text = "y" * 10_000
    payload = pd.DataFrame(
        {
            "x": [long_text] * 1000,
            "n": list(range(1000)),
            "plan": [f"{long_text}{i}" for i in range(1000)],
            "city": ["a"] * 1000,
            long_text: [0] * 1000,
        }
    )
    message = raised(payload)
    assert long_text[:100] not in message
    assert len(message) < 600


# -- the row-by-row path for small list-of-dict payloads ---------------------------------

ROWS_SIGNATURE = Signature(inputs=[
    ColumnSpec(name="amount", dtype="float", nullable=True),
    ColumnSpec(name="age", dtype="integer", nullable=False),
    ColumnSpec(name="urgent", dtype="boolean", nullable=False),
    ColumnSpec(name="note", dtype="string", nullable=True),
    ColumnSpec(name="region", dtype="category", nullable=False,
               categories=["north", "south", "east"]),
])


def _payload(n: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [{"region": str(rng.choice(["north", "south", "east"])),  # keys in any order
             "amount": float(rng.normal()) if i % 3 else int(rng.integers(0, 9)),
             "age": int(rng.integers(18, 90)), "urgent": bool(rng.integers(0, 2)),
             "note": f"claim {i}"} for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 7, 256])
def test_small_payloads_give_the_general_paths_frame(n: int) -> None:
    from modelworks.registry.signatures import _check_rows

    rows = _payload(n, seed=n)
    fast = _check_rows(ROWS_SIGNATURE, rows)
    assert fast is not None  # the row-by-row path took it
    general = check_input(ROWS_SIGNATURE, pd.DataFrame(rows))
    pd.testing.assert_frame_equal(fast, general, check_exact=True)
    assert fast.dtypes.to_dict() == general.dtypes.to_dict()
    assert fast["region"].cat.categories.equals(general["region"].cat.categories)
    pd.testing.assert_frame_equal(check_input(ROWS_SIGNATURE, rows), general, check_exact=True)


@pytest.mark.parametrize("change", [
    {"amount": None}, {"amount": float("nan")}, {"age": 3.0}, {"age": True}, {"age": 2**70},
    {"urgent": 1}, {"note": 5}, {"region": "west"}, {"region": None}, {"extra": 1},
])
def test_anything_else_is_left_to_the_general_path(change: dict[str, object]) -> None:
    from modelworks.registry.signatures import _check_rows

    rows = _payload(3, seed=0)
    rows[1] = {**rows[1], **change}
    assert _check_rows(ROWS_SIGNATURE, rows) is None
    try:  # same answer (a frame or the same error) as for the DataFrame of the payload
        expected: object = check_input(ROWS_SIGNATURE, pd.DataFrame(rows))
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as got:
            check_input(ROWS_SIGNATURE, rows)
        assert str(got.value) == str(exc)
    else:
        pd.testing.assert_frame_equal(check_input(ROWS_SIGNATURE, rows), expected)


def test_a_missing_key_is_left_to_the_general_path() -> None:
    from modelworks.registry.signatures import _check_rows

    rows = _payload(2, seed=1)
    del rows[0]["age"]
    assert _check_rows(ROWS_SIGNATURE, rows) is None
    with pytest.raises(InvalidInput, match="age"):
        check_input(ROWS_SIGNATURE, rows)


def test_numbers_beyond_the_column_type_are_a_wrong_type_not_a_crash() -> None:
    with pytest.raises(InvalidInput, match="'age' \\(expected integer, found object that "
                       "cannot be read as integer"):
        check_input(ROWS_SIGNATURE, [{**_payload(1, seed=0)[0], "age": 2**70}])
    with pytest.raises(InvalidInput, match="'amount' \\(expected float"):
        check_input(ROWS_SIGNATURE, [{**_payload(1, seed=0)[0], "amount": 2**2000}])
