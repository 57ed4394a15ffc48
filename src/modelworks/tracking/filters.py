"""Parse the run-search filter and order-by languages into typed records.

The records are data, never code: the store compiles them into SQLAlchemy expressions, so no
user text is ever evaluated or pasted into SQL. Every error is an ``InvalidInput`` whose
``position`` is the 0-based offset of the offending character, so clients can point at it.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn, cast, get_args

from modelworks.errors import InvalidInput

__all__ = ["Comparison", "Entity", "Op", "OrderTerm", "parse_filter", "parse_order_by"]

Entity = Literal["metrics", "params", "tags", "attributes"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN"]
Scalar = float | str


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``entity.key op value`` condition; a filter is the AND of its comparisons."""

    entity: Entity
    key: str
    op: Op
    value: float | str | tuple[float | str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class OrderTerm:
    """One sort key; ``position`` is where the term starts within its string."""

    entity: Entity
    key: str
    descending: bool
    position: int


_ENTITIES: dict[str, Entity] = {
    "metrics": "metrics", "metric": "metrics", "params": "params", "param": "params",
    "tags": "tags", "tag": "tags", "attributes": "attributes", "attribute": "attributes",
    "attr": "attributes", "run": "attributes",
}  # fmt: skip
_OPS_TEXT = ", ".join(get_args(Op))
_SYMBOLS: dict[str, Op] = {
    "==": "=", "!=": "!=", "<>": "!=", "<=": "<=", ">=": ">=", "=": "=", "<": "<", ">": ">",
}  # fmt: skip
_SET_OPS: tuple[Op, ...] = ("=", "!=", "IN", "NOT IN")
_TEXT_OPS: tuple[Op, ...] = ("=", "!=", "LIKE", "IN", "NOT IN")
_RANGE_OPS: tuple[Op, ...] = ("=", "!=", "<", "<=", ">", ">=")
_NUMBER_OPS: tuple[Op, ...] = (*_RANGE_OPS, "IN", "NOT IN")
# Value kinds: "number", "text" (numbers kept as written), "string", "status", "time".
_ATTRIBUTES: dict[str, tuple[str, tuple[Op, ...], str]] = {
    "status": ("status", _SET_OPS, "status"),
    "name": ("name", _TEXT_OPS, "string"),
    "run_id": ("run_id", _SET_OPS, "string"),
    "id": ("run_id", _SET_OPS, "string"),
    "start_time": ("start_time", _RANGE_OPS, "time"),
    "end_time": ("end_time", _RANGE_OPS, "time"),
}
_ATTRIBUTES_TEXT = ", ".join(sorted(_ATTRIBUTES))
_STATUSES = ("RUNNING", "FINISHED", "FAILED")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = frozenset(string.digits)
_WORD_START = frozenset(string.ascii_letters + "_")
_WORD_CHARS = _WORD_START | _DIGITS | frozenset("./:-")
_QUOTES = "'\"`"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "number", "string", "op", "(", ")", ",", "end"]
    text: str  # the source text, quotes included
    value: str  # decoded string, normalised operator, else the text
    pos: int
    end: int


def _tokenize(text: str, fail: Callable[[int, str], NoReturn]) -> Iterator[_Token]:
    """Yield tokens lazily, so a lexing error is reported with the term being parsed."""
    i, n = 0, len(text)
    while i < n:
        c, start = text[i], i
        if c.isspace():
            i += 1
            continue
        if c in _WORD_START:
            while i < n and text[i] in _WORD_CHARS:
                i += 1
            yield _Token("word", text[start:i], text[start:i], start, i)
        elif c in _DIGITS or (c in "+-." and _is_number_start(text, i + (c != "."))):
            i = _scan_number(text, i, fail)
            yield _Token("number", text[start:i], text[start:i], start, i)
        elif c in _QUOTES:
            value, i = _scan_quoted(text, i, fail)
            yield _Token("string", text[start:i], value, start, i)
        elif text[i : i + 2] in _SYMBOLS or c in _SYMBOLS:
            i += 2 if text[i : i + 2] in _SYMBOLS else 1
            yield _Token("op", text[start:i], _SYMBOLS[text[start:i]], start, i)
        elif c in "(),":
            i += 1
            yield _Token(cast(Literal["(", ")", ","], c), c, c, start, i)
        else:
            fail(i, f"unexpected character {c!r}")
    yield _Token("end", "", "", n, n)


def _is_number_start(text: str, i: int) -> bool:
    """A digit, or a dot then a digit: ``-.5`` is a number, ``-x`` and ``.x`` are not."""
    return text[i : i + 1] in _DIGITS or (text[i : i + 1] == "." and text[i + 1 : i + 2] in _DIGITS)


def _skip_digits(text: str, i: int) -> int:
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    return i


def _scan_number(text: str, start: int, fail: Callable[[int, str], NoReturn]) -> int:
    """Scan ``[+-] digits [. digits] [e [+-] digits]``; reject what runs on into a word."""
    n = len(text)
    i = _skip_digits(text, start + (text[start] in "+-"))
    if text[i : i + 1] == ".":
        i = _skip_digits(text, i + 1)
    if text[i : i + 1] in ("e", "E"):
        j = i + 1 + (text[i + 1 : i + 2] in ("+", "-"))
        if text[j : j + 1] in _DIGITS:
            i = _skip_digits(text, j)
    end = i
    while end < n and (text[end] in _WORD_CHARS or text[end] in _QUOTES):
        end += 1
    if end > i:
        fail(start, f"invalid number {text[start:end]!r}")
    if abs(float(text[start:i])) == float("inf"):
        fail(start, f"number {text[start:i]!r} is out of range")
    return i


def _scan_quoted(text: str, start: int, fail: Callable[[int, str], NoReturn]) -> tuple[str, int]:
    r"""Scan a quoted string; ``\'``, ``\"``, ``\``` and ``\\`` escape, other ``\x`` stay."""
    quote, out, i, n = text[start], [], start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(text[i + 1] if text[i + 1] in _QUOTES + "\\" else text[i : i + 2])
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    fail(start, "unterminated quoted key" if quote == "`" else "unterminated string")


def _epoch_ms(text: str) -> float | None:
    """ISO-8601 to epoch milliseconds; a time without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) / timedelta(milliseconds=1)


class _Parser:
    """Recursive descent over a one-token lookahead."""

    def __init__(self, text: str, field: Literal["filter", "order_by"], term: int = 0) -> None:
        self.field, self.term = field, term
        self._tokens = _tokenize(text, self.fail)
        self._ahead: _Token | None = None

    def fail(self, pos: int, problem: str) -> NoReturn:
        where = "filter" if self.field == "filter" else f"order_by term {self.term}"
        message = f"invalid {where} at position {pos}: {problem}"
        raise InvalidInput(message, field=self.field, position=pos)

    @property
    def peek(self) -> _Token:
        if self._ahead is None:
            self._ahead = next(self._tokens)
        return self._ahead

    def next(self) -> _Token:
        token = self.peek
        if token.kind != "end":
            self._ahead = None
        return token

    def word(self, *words: str) -> str | None:
        """Consume the next token if it is one of ``words`` (any case) and return it."""
        token = self.peek
        if token.kind == "word" and token.text.upper() in words:
            self.next()
            return token.text.upper()
        return None

    def found(self, token: _Token) -> str:
        if token.kind == "end":
            return f"the end of the {'filter' if self.field == 'filter' else 'term'}"
        return repr(token.text if len(token.text) <= 40 else token.text[:37] + "...")

    def identifier(self) -> tuple[Entity, str, int, int]:
        """``entity.key``: return entity, key, identifier start and key start."""
        token = self.next()
        if token.kind != "word":
            found = self.found(token)
            self.fail(token.pos, f"expected an identifier like metrics.<key>, found {found}")
        if "." not in token.text:
            entities = "metrics.<key>, params.<key>, tags.<key> or attributes.<key>"
            self.fail(token.pos, f"{token.text!r} has no entity; write {entities}")
        prefix, _, key = token.text.partition(".")
        entity = _ENTITIES.get(prefix.lower())
        if entity is None:
            entities = "metrics, params, tags or attributes"
            self.fail(token.pos, f"unknown entity {prefix!r}; expected {entities}")
        key_pos = token.pos + len(prefix) + 1
        if not key:
            quoted = self.peek
            if quoted.kind != "string" or quoted.text[0] == "'" or quoted.pos != token.end:
                found = self.found(quoted)
                problem = f"expected a key after {token.text!r}, found {found}"
                self.fail(quoted.pos, f"{problem} (quote keys with backticks or double quotes)")
            key, key_pos = self.next().value, quoted.pos
            if not key:
                self.fail(quoted.pos, "empty key")
        elif key[0] not in _WORD_START:
            hint = "a bare key starts with a letter or '_', quote other keys with backticks"
            self.fail(key_pos, f"invalid key {key!r}; {hint}")
        return entity, key, token.pos, key_pos

    def operator(self) -> tuple[Op, int]:
        token = self.next()
        if token.kind == "op":
            return cast(Op, token.value), token.pos
        word = token.text.upper() if token.kind == "word" else ""
        if word in ("LIKE", "IN"):
            return cast(Op, word), token.pos
        if word == "NOT":
            if self.word("IN"):
                return "NOT IN", token.pos
            self.fail(self.peek.pos, f"expected IN after NOT, found {self.found(self.peek)}")
        if word == "ILIKE":
            self.fail(token.pos, f"operator ILIKE is not supported; supported: {_OPS_TEXT}")
        self.fail(token.pos, f"expected an operator ({_OPS_TEXT}), found {self.found(token)}")

    def literal(self, kind: str, name: str) -> Scalar:
        """A number or quoted string, converted to the value kind of ``name``."""
        token = self.next()
        if token.kind == "string" and token.text[0] == "`":
            self.fail(token.pos, "backticks quote keys, not values; quote strings with ' or \"")
        if token.kind == "word" and token.text.lower() in ("nan", "inf", "infinity"):
            self.fail(token.pos, f"{token.text!r} is not a value; numbers must be finite")
        if token.kind not in ("number", "string"):
            found = self.found(token) + ("; quote strings" if token.kind == "word" else "")
            self.fail(token.pos, f"expected a value (a number or a quoted string), found {found}")
        number = token.kind == "number"
        if kind == "number":
            if not number:
                self.fail(token.pos, f"{name} compares with numbers, found string {token.text}")
            return float(token.value)
        if kind == "text":
            return token.value
        if kind == "time":
            millis = float(token.value) if number else _epoch_ms(token.value)
            if millis is None:
                needs = "epoch milliseconds or an ISO-8601 time"
                self.fail(token.pos, f"{name} needs {needs}, found {token.text}")
            return millis
        if number:
            self.fail(token.pos, f"{name} compares with quoted strings, found {token.text}")
        if kind == "status" and token.value.upper() not in _STATUSES:
            self.fail(token.pos, f"unknown status {token.text}; valid: {', '.join(_STATUSES)}")
        return token.value.upper() if kind == "status" else token.value

    def comparison(self) -> Comparison:
        entity, key, pos, key_pos = self.identifier()
        if entity == "attributes":
            if key not in _ATTRIBUTES:
                problem = (
                    "is not supported in filters" if key.startswith("experiment") else "is unknown"
                )
                self.fail(key_pos, f"attribute {key!r} {problem}; valid: {_ATTRIBUTES_TEXT}")
            key, allowed, kind = _ATTRIBUTES[key]
        else:
            allowed, kind = (_NUMBER_OPS, "number") if entity == "metrics" else (_TEXT_OPS, "text")
        name = f"{entity}.{key}"
        op, op_pos = self.operator()
        if op not in allowed:
            self.fail(
                op_pos, f"operator {op} is not allowed for {name}; allowed: {', '.join(allowed)}"
            )
        if op not in ("IN", "NOT IN"):
            return Comparison(entity, key, op, self.literal(kind, name), pos)
        opening = self.next()
        if opening.kind != "(":
            self.fail(opening.pos, f"expected '(' after {op}, found {self.found(opening)}")
        if self.peek.kind == ")":
            self.fail(self.peek.pos, f"empty {op} list; give at least one value")
        values = [self.literal(kind, name)]
        while (token := self.next()).kind != ")":
            if token.kind != ",":
                found = self.found(token)
                self.fail(token.pos, f"expected ',' or ')' in the {op} list, found {found}")
            values.append(self.literal(kind, name))
        return Comparison(entity, key, op, tuple(values), pos)

    def order_terms(self, many: bool) -> list[OrderTerm]:
        """``entity.key [ASC|DESC]``, comma-separated when ``many``; counts terms for errors."""
        terms: list[OrderTerm] = []
        while True:
            entity, key, pos, key_pos = self.identifier()
            if entity == "attributes":
                if key not in _ATTRIBUTES:
                    valid = _ATTRIBUTES_TEXT
                    self.fail(key_pos, f"cannot order by attribute {key!r}; valid: {valid}")
                key = _ATTRIBUTES[key][0]
            direction = self.word("ASC", "DESC")
            terms.append(OrderTerm(entity, key, direction == "DESC", pos))
            if (token := self.next()).kind == "end":
                return terms
            if token.kind != "," or not many:
                expected = [*([] if direction else ["ASC", "DESC"]), *(["','"] if many else [])]
                wanted = f"{', '.join(expected)} or " if expected else ""
                self.fail(token.pos, f"expected {wanted}the end, found {self.found(token)}")
            self.term += 1


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse ``comparison (AND comparison)*``; an empty or missing filter matches every run."""
    if text is None or not text.strip():
        return []
    parser = _Parser(text, "filter")
    comparisons = [parser.comparison()]
    while (token := parser.next()).kind != "end":
        word = token.text.upper() if token.kind == "word" else ""
        if word == "OR":
            parser.fail(token.pos, "OR is not supported, only AND")
        if word != "AND":
            found = parser.found(token)
            parser.fail(token.pos, f"expected AND or the end of the filter, found {found}")
        comparisons.append(parser.comparison())
    return comparisons


def parse_order_by(terms: Sequence[str] | str | None) -> list[OrderTerm]:
    """Parse sort terms: a list of ``entity.key [ASC|DESC]``, or one comma-separated string."""
    if terms is None:
        return []
    if isinstance(terms, str):
        return _Parser(terms, "order_by").order_terms(many=True) if terms.strip() else []
    parsed: list[OrderTerm] = []
    for index, term in enumerate(terms):
        parser = _Parser(term, "order_by", index)
        if not term.strip():
            parser.fail(0, "empty term; expected entity.key [ASC|DESC]")
        parsed.extend(parser.order_terms(many=False))
    return parsed
