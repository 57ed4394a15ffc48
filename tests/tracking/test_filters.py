"""The run-search filter and order-by parsers: typed records out, positioned errors for the rest."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from modelworks.errors import InvalidInput
from modelworks.tracking.filters import Comparison, OrderTerm, parse_filter, parse_order_by

C = Comparison
JAN_2024_MS = datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("   \t\n", []),
        (
            "metrics.auc > 0.8 and params.model = 'rf'",
            [C("metrics", "auc", ">", 0.8, 0), C("params", "model", "=", "rf", 22)],
        ),
        ("metrics.auc>0.8", [C("metrics", "auc", ">", 0.8, 0)]),
        ("  metric.auc >= 1", [C("metrics", "auc", ">=", 1.0, 2)]),
        ("metrics.val.loss <= 0.25", [C("metrics", "val.loss", "<=", 0.25, 0)]),
        ("metrics.val.loss<=-1", [C("metrics", "val.loss", "<=", -1.0, 0)]),
        ("metrics.a < -1.5e-3", [C("metrics", "a", "<", -0.0015, 0)]),
        ("metrics.a < 2E+3", [C("metrics", "a", "<", 2000.0, 0)]),
        ("metrics.a > .5", [C("metrics", "a", ">", 0.5, 0)]),
        ("metrics.a > -.5", [C("metrics", "a", ">", -0.5, 0)]),
        ("metrics.a > +3", [C("metrics", "a", ">", 3.0, 0)]),
        ("metrics.a > 1.", [C("metrics", "a", ">", 1.0, 0)]),
        ("metrics.a == 1", [C("metrics", "a", "=", 1.0, 0)]),
        ("metrics.a != 1", [C("metrics", "a", "!=", 1.0, 0)]),
        ("metrics.a <> 1", [C("metrics", "a", "!=", 1.0, 0)]),
        ("metrics.a IN (1, 2.5, -3)", [C("metrics", "a", "IN", (1.0, 2.5, -3.0), 0)]),
        ("metrics.a not in (1)", [C("metrics", "a", "NOT IN", (1.0,), 0)]),
        ("metrics.a NOT  IN(1,2)", [C("metrics", "a", "NOT IN", (1.0, 2.0), 0)]),
        ("metrics.`val loss` < 1", [C("metrics", "val loss", "<", 1.0, 0)]),
        ("metrics.a/b:c-d > 0", [C("metrics", "a/b:c-d", ">", 0.0, 0)]),
        ('params."my key" = "x"', [C("params", "my key", "=", "x", 0)]),
        ("tags.`team name` LIKE 'ml%'", [C("tags", "team name", "LIKE", "ml%", 0)]),
        ("params.`a\\`b` = 'x'", [C("params", "a`b", "=", "x", 0)]),
        ('param.model != "rf"', [C("params", "model", "!=", "rf", 0)]),
        ("params.depth = 8", [C("params", "depth", "=", "8", 0)]),
        ("params.lr = 1e-3", [C("params", "lr", "=", "1e-3", 0)]),
        ("params.lr IN ('0.1', 0.01)", [C("params", "lr", "IN", ("0.1", "0.01"), 0)]),
        ("params.x = 'it\\'s'", [C("params", "x", "=", "it's", 0)]),
        ('params.x = "say \\"hi\\""', [C("params", "x", "=", 'say "hi"', 0)]),
        ("params.x LIKE 'a\\_b\\\\'", [C("params", "x", "LIKE", "a\\_b\\", 0)]),
        ("params.x = ''", [C("params", "x", "=", "", 0)]),
        ("params.x = 'a AND b OR c'", [C("params", "x", "=", "a AND b OR c", 0)]),
        ("params.AND = 'x'", [C("params", "AND", "=", "x", 0)]),
        ("tag.x not in ('a', \"b\")", [C("tags", "x", "NOT IN", ("a", "b"), 0)]),
        ("TAGS.x = 'a'", [C("tags", "x", "=", "a", 0)]),
        ("attributes.status = 'finished'", [C("attributes", "status", "=", "FINISHED", 0)]),
        (
            "attr.status IN ('Running', 'FAILED')",
            [C("attributes", "status", "IN", ("RUNNING", "FAILED"), 0)],
        ),
        ("run.name LIKE 'rf-%'", [C("attributes", "name", "LIKE", "rf-%", 0)]),
        ("attribute.id = 'abc'", [C("attributes", "run_id", "=", "abc", 0)]),
        ("attributes.run_id IN ('a','b')", [C("attributes", "run_id", "IN", ("a", "b"), 0)]),
        (
            "attributes.start_time >= 1704067200000",
            [C("attributes", "start_time", ">=", 1704067200000.0, 0)],
        ),
        (
            "attributes.start_time >= '2024-01-01T00:00:00Z'",
            [C("attributes", "start_time", ">=", JAN_2024_MS, 0)],
        ),
        ("run.end_time < '2024-01-01'", [C("attributes", "end_time", "<", JAN_2024_MS, 0)]),
        (
            "run.end_time < '2024-01-01T02:00:00.5+02:00'",
            [C("attributes", "end_time", "<", JAN_2024_MS + 500, 0)],
        ),
        (
            "metrics.a > 1 AND metrics.b < 2 and params.c = 'x'",
            [
                C("metrics", "a", ">", 1.0, 0),
                C("metrics", "b", "<", 2.0, 18),
                C("params", "c", "=", "x", 36),
            ],
        ),
        (
            "params.a='x'AND params.b='y'",
            [C("params", "a", "=", "x", 0), C("params", "b", "=", "y", 16)],
        ),
    ],
)
def test_valid_filters(text: str | None, expected: list[Comparison]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("metrics.auc foo 1", 12, "expected an operator (=, !=, <, <=, >, >=, LIKE, IN, NOT IN)"),
        ("metrics.auc foo 1", 12, "found 'foo'"),
        ("auc > 0.8", 0, "'auc' has no entity"),
        ("metrics.a > 1 AND auc > 2", 18, "'auc' has no entity"),
        ("model.auc > 1", 0, "unknown entity 'model'"),
        ("metrics. > 1", 9, "expected a key after 'metrics.'"),
        ("params. `x` = 'a'", 8, "expected a key after 'params.'"),
        ("params.'x' = 'a'", 7, "expected a key"),
        ("params.`` = 'a'", 7, "empty key"),
        ("metrics.1a > 1", 8, "invalid key '1a'"),
        ("metrics.a > 1 OR metrics.b > 2", 14, "OR is not supported, only AND"),
        ("metrics.a > 1 or metrics.b > 2", 14, "OR is not supported"),
        ("metrics.a > 1 metrics.b > 2", 14, "expected AND or the end of the filter"),
        ("metrics.a > 1 )", 14, "expected AND or the end of the filter, found ')'"),
        ("metrics.a > 1 AND", 17, "found the end of the filter"),
        ("metrics.a > 1 AND AND metrics.b > 1", 18, "'AND' has no entity"),
        ("(metrics.a > 1)", 0, "expected an identifier"),
        ("params.a = 'x", 11, "unterminated string"),
        ('params.a = "x\\"', 11, "unterminated string"),
        ("params.a = 'x\\", 11, "unterminated string"),
        ("params.`a = 'x'", 7, "unterminated quoted key"),
        ("metrics.a >", 11, "expected a value"),
        ("metrics.a > AND metrics.b > 1", 12, "expected a value"),
        ("params.a = rf", 11, "quote strings"),
        ("metrics.a > nan", 12, "'nan' is not a value"),
        ("metrics.a > inf", 12, "numbers must be finite"),
        ("metrics.a > 1e999", 12, "out of range"),
        ("metrics.a > 1abc", 12, "invalid number '1abc'"),
        ("metrics.a > 1.2.3", 12, "invalid number '1.2.3'"),
        ("metrics.a > 1e", 12, "invalid number '1e'"),
        ("metrics.a > 1 AND metrics.b > 2x", 30, "invalid number"),
        ("metrics.a > - 1", 12, "unexpected character '-'"),
        ("metrics.a ! 1", 10, "unexpected character '!'"),
        ("metrics.a > 1; DROP TABLE runs", 13, "unexpected character ';'"),
        ("metrics.a = `b`", 12, "backticks quote keys"),
        ("metrics.a > 'x'", 12, "metrics.a compares with numbers, found string 'x'"),
        ("metrics.a IN (1, 'x')", 17, "compares with numbers"),
        ("metrics.a LIKE 1", 10, "operator LIKE is not allowed for metrics.a"),
        ("params.a ILIKE 'x'", 9, "ILIKE is not supported; supported: =, !=, <, <=, >, >="),
        ("params.a < 'x'", 9, "operator < is not allowed for params.a; allowed: =, !=, LIKE"),
        ("tags.a >= 'x'", 7, "not allowed for tags.a"),
        ("params.a NOT LIKE 'x'", 13, "expected IN after NOT"),
        ("params.a NOT", 12, "expected IN after NOT, found the end of the filter"),
        ("metrics.a IN ()", 14, "empty IN list"),
        ("metrics.a NOT IN ( )", 19, "empty NOT IN list"),
        ("metrics.a IN 1", 13, "expected '(' after IN"),
        ("metrics.a IN (1 2)", 16, "expected ',' or ')' in the IN list"),
        ("metrics.a IN (1,)", 16, "expected a value"),
        ("metrics.a IN (1", 15, "expected ',' or ')'"),
        ("metrics.a IN ((1))", 14, "expected a value"),
        ("attributes.foo = 'x'", 11, "attribute 'foo' is unknown; valid: end_time, id, name"),
        ("attributes.experiment = 'x'", 11, "'experiment' is not supported in filters"),
        ("attributes.experiment_id = '1'", 11, "not supported in filters"),
        ("attributes.`bad key` = 'x'", 11, "attribute 'bad key' is unknown"),
        ("attributes.status = 'done'", 20, "unknown status 'done'; valid: RUNNING, FINISHED"),
        ("attributes.status = 1", 20, "attributes.status compares with quoted strings"),
        ("attributes.status LIKE 'R%'", 18, "operator LIKE is not allowed for attributes.status"),
        ("attributes.name > 'a'", 16, "not allowed for attributes.name"),
        ("attributes.name = 5", 18, "compares with quoted strings"),
        ("attributes.id < 'a'", 14, "not allowed for attributes.run_id"),
        ("attributes.start_time > 'yesterday'", 24, "epoch milliseconds or an ISO-8601 time"),
        ("attributes.start_time IN (1)", 22, "operator IN is not allowed"),
        ("attributes.end_time LIKE '2024%'", 20, "operator LIKE is not allowed"),
    ],
)
def test_invalid_filters(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter(text)
    error = caught.value
    assert error.field == "filter"
    assert error.position == position
    assert f"invalid filter at position {position}: " in str(error)
    assert fragment in str(error)


def test_error_message_matches_documented_shape() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter("metrics.auc > 1 AND params.x foo 'a'")
    assert str(caught.value) == (
        "invalid filter at position 29: expected an operator "
        "(=, !=, <, <=, >, >=, LIKE, IN, NOT IN), found 'foo'"
    )


def test_records_are_frozen() -> None:
    (comparison,) = parse_filter("metrics.a > 1")
    with pytest.raises(AttributeError):
        comparison.key = "b"  # type: ignore[misc]


T = OrderTerm


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (None, []),
        ([], []),
        ("", []),
        ("metrics.auc", [T("metrics", "auc", False, 0)]),
        (["metrics.auc DESC"], [T("metrics", "auc", True, 0)]),
        (
            ["metrics.auc desc", " params.lr asc"],
            [
                T("metrics", "auc", True, 0),
                T("params", "lr", False, 1),
            ],
        ),
        (("metric.val.loss",), [T("metrics", "val.loss", False, 0)]),
        (["tags.`team name` DESC"], [T("tags", "team name", True, 0)]),
        (['params."a b"'], [T("params", "a b", False, 0)]),
        (["attributes.start_time DESC"], [T("attributes", "start_time", True, 0)]),
        (
            ["run.end_time", "attr.status", "attribute.name"],
            [
                T("attributes", "end_time", False, 0),
                T("attributes", "status", False, 0),
                T("attributes", "name", False, 0),
            ],
        ),
        (["attributes.id"], [T("attributes", "run_id", False, 0)]),
        (["attributes.run_id DESC"], [T("attributes", "run_id", True, 0)]),
        (
            "metrics.auc DESC, attributes.start_time",
            [
                T("metrics", "auc", True, 0),
                T("attributes", "start_time", False, 18),
            ],
        ),
    ],
)
def test_valid_order_by(terms: list[str] | str | None, expected: list[OrderTerm]) -> None:
    assert parse_order_by(terms) == expected


@pytest.mark.parametrize(
    ("terms", "index", "position", "fragment"),
    [
        ([""], 0, 0, "empty term"),
        (["metrics.a", "  "], 1, 0, "empty term"),
        (["metrics.a", "metrics.b foo"], 1, 10, "expected ASC, DESC or the end, found 'foo'"),
        (["metrics.a DESC x"], 0, 15, "expected the end, found 'x'"),
        (["metrics.a, metrics.b"], 0, 9, "found ','"),
        (["auc DESC"], 0, 0, "'auc' has no entity"),
        (["attributes.foo"], 0, 11, "cannot order by attribute 'foo'; valid: end_time, id"),
        (["attributes.experiment"], 0, 11, "cannot order by attribute 'experiment'"),
        (["params.`x"], 0, 7, "unterminated quoted key"),
        ("metrics.a DESC x", 0, 15, "expected ',' or the end"),
        ("metrics.a x", 0, 10, "expected ASC, DESC, ',' or the end"),
        ("metrics.a,", 1, 10, "expected an identifier"),
        ("metrics.a, metrics.b 'x", 1, 21, "unterminated string"),
        ("metrics.a, metrics.b, attributes.foo", 2, 33, "cannot order by attribute 'foo'"),
    ],
)
def test_invalid_order_by(terms: list[str] | str, index: int, position: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_order_by(terms)
    error = caught.value
    assert error.field == "order_by"
    assert error.position == position
    assert f"invalid order_by term {index} at position {position}: " in str(error)
    assert fragment in str(error)


_PIECES = [
    "metrics.", "params.", "tags.", "attributes.", "run.", "auc", "val.loss", "status", "name",
    "start_time", "id", "experiment", " ", " ", "  ", "\t", "=", "==", "!=", "<>", "<", "<=", ">",
    ">=", "!", "LIKE", "ILIKE", "IN", "NOT", "AND", "and", "OR", "ASC", "DESC", "(", ")", ",",
    "'", '"', "`", "\\", "'x'", '"y"', "`k`", "'RUNNING'", "'2024-01-01'",
    "'0001-01-01T00:00:00+01:00'", "'9999-12-31T23:59:59-23:59'", "0", "1", "-", "+", ".", "e",
    "E", "1e5", "-2.5", "1e999", "nan", "inf", ";", "é", "\x00", "\u00a0", "%", "_",
]  # fmt: skip


def _garbage(rng: random.Random) -> str:
    """Mostly grammar fragments, so the fuzz reaches deep into the parser, plus raw noise."""
    if rng.random() < 0.2:
        return "".join(chr(rng.randrange(0, 0x250)) for _ in range(rng.randrange(0, 30)))
    return "".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 14)))


def test_garbage_only_ever_raises_invalid_input() -> None:
    rng = random.Random(20240101)
    parsed = 0
    for _ in range(20_000):
        text = _garbage(rng)
        for parse, field in ((parse_filter, "filter"), (parse_order_by, "order_by")):
            try:
                parse(text)  # type: ignore[operator]
                parsed += 1
            except InvalidInput as error:
                assert error.field == field, text
                assert error.position is not None and 0 <= error.position <= len(text), text
                assert f"at position {error.position}: " in str(error), text
    assert parsed > 100  # the fuzz also produced valid inputs, so it went past the lexer
