"""CQL2 filters (text and JSON) compiled to PostGIS SQL, for OGC API Features Part 3 (Filtering).

``parse_filter`` turns a filter into an immutable expression tree; ``filter_sql`` turns the
tree into one SQL boolean expression over the layer's queryables. Values reach SQL only as
``sql.Literal`` (quoted by psycopg's adapters when the statement is rendered); identifiers come
only from the queryables, and every other piece of SQL is a constant written in this module.
The tree is the same whichever language the filter came in, so text and JSON select the same rows.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Union

from psycopg import sql

from layers.crs import Crs, crs_from_parameter
from layers.errors import InvalidParameter

__all__ = [
    "CONFORMANCE",
    "Expression",
    "FilterError",
    "LANGUAGES",
    "Queryable",
    "filter_sql",
    "parse_filter",
]

_CONF = "http://www.opengis.net/spec/cql2/1.0/conf/"
CONFORMANCE: tuple[str, ...] = tuple(
    _CONF + name
    for name in (
        "basic-cql2",
        "cql2-text",
        "cql2-json",
        "advanced-comparison-operators",
        "case-insensitive-comparison",
        "basic-spatial-functions",
        "basic-spatial-functions-plus-points",
        "spatial-functions",
        "temporal-functions",
        "property-property",
        "arithmetic",
    )
)

LANGUAGES = ("cql2-text", "cql2-json")
MAX_LENGTH = 20_000
MAX_DEPTH = 50
# levels of the parsed tree: a chain like 1 + 1 + 1 + … nests one level per operator
MAX_TREE_DEPTH = 100
MAX_NODES = 10_000  # expression nodes (the length limit keeps this far away in practice)


class FilterError(ValueError):
    """A filter that cannot be used; the message says what is wrong and what to change."""

    def __init__(self, message: str):
        super().__init__(f"filter: {message}")


@dataclass(frozen=True)
class Queryable:
    """A property clients may filter on: its name, its SQL expression and its schema type."""

    name: str
    sql: sql.Composable
    type: str  # string | integer | number | boolean | date-time | date | geometry


# ---------------------------------------------------------------- public entry points


def parse_filter(value: str | dict, *, lang: str = "cql2-text") -> Expression:
    """The expression tree of a CQL2 filter in ``lang`` (cql2-text or cql2-json); raises FilterError."""
    if lang not in LANGUAGES:
        raise FilterError(f"unsupported filter-lang {lang!r}; use cql2-text or cql2-json")
    if isinstance(value, (dict, bool)):
        if lang != "cql2-json":
            raise FilterError("a cql2-text filter must be text; send JSON with filter-lang=cql2-json")
        return _checked_tree(_JsonReader().predicate(value, 0))
    if not isinstance(value, str):
        raise FilterError(f"a filter must be text or a JSON object, got {type(value).__name__}")
    return _parse_cached(value, lang)


def filter_sql(
    expression: Expression,
    *,
    queryables: Mapping[str, Queryable],
    filter_crs: str | None = None,
) -> sql.Composable:
    """One SQL boolean expression for a parsed filter; geometry literals are read in ``filter_crs``."""
    try:
        crs = crs_from_parameter(filter_crs, parameter="filter-crs")
    except InvalidParameter as exc:
        raise FilterError(str(exc)) from None
    return _Compiler(queryables=queryables, crs=crs).predicate(expression)


@functools.lru_cache(maxsize=512)
def _parse_cached(text: str, lang: str) -> Expression:
    # QGIS sends the same filter for every page: the tree is immutable, so it can be shared.
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the filter is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise FilterError("the filter is empty; leave the parameter out to get every feature")
    if "\x00" in text:
        raise FilterError("the filter contains a NUL character (\\u0000), which no value here can hold")
    if lang == "cql2-text":
        return _checked_tree(_TextParser(text).parse())
    try:
        document = json.loads(text)
    except RecursionError:
        raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels; simplify it") from None
    except ValueError as exc:
        raise FilterError(f"not valid JSON ({exc}); send a CQL2 JSON object or use filter-lang=cql2-text") from None
    return _checked_tree(_JsonReader().predicate(document, 0))


def _checked_tree(expression: Expression) -> Expression:
    """The tree, when it is small and shallow enough to compile, hash and cache; FilterError otherwise.

    Walked without recursion, so a hostile tree cannot exhaust the stack here.
    """
    stack, nodes = [(expression, 1)], 0
    while stack:
        node, level = stack.pop()
        if level > MAX_TREE_DEPTH:
            raise FilterError(
                f"the filter's expression is more than {MAX_TREE_DEPTH} levels deep (each operator of a chain "
                "such as 1 + 1 + 1 adds a level); simplify it"
            )
        if isinstance(node, str) and "\x00" in node:
            raise FilterError("a string in the filter contains a NUL character (\\u0000), which no value can hold")
        if isinstance(node, tuple):
            stack.extend((child, level) for child in node)
        elif hasattr(node, "__dataclass_fields__") and not isinstance(node, (Geometry, Envelope)):
            nodes += 1
            if nodes > MAX_NODES:
                raise FilterError(f"the filter has more than {MAX_NODES:,} terms; simplify it")
            stack.extend((getattr(node, name), level + 1) for name in node.__dataclass_fields__)
    return expression


# ---------------------------------------------------------------- expression tree


@dataclass(frozen=True)
class Property:
    name: str


@dataclass(frozen=True)
class Literal:
    value: str | int | float | bool


@dataclass(frozen=True)
class Instant:
    """TIMESTAMP('…') (a timezone-aware datetime) or DATE('…') (a date)."""

    value: datetime | date


@dataclass(frozen=True)
class Interval:
    """INTERVAL(start, end); None is an open end ('..')."""

    start: Instant | Property | None
    end: Instant | Property | None


@dataclass(frozen=True)
class Geometry:
    """A geometry literal as GeoJSON parts: type and coordinates (or member geometries)."""

    type: str
    coordinates: tuple = ()
    geometries: tuple[Geometry, ...] = ()


@dataclass(frozen=True)
class Envelope:
    """BBOX(west, south, east, north) in the filter CRS's axis order (4 or 6 numbers)."""

    bounds: tuple[float, ...]


@dataclass(frozen=True)
class Function:
    name: str  # casei
    args: tuple


@dataclass(frozen=True)
class Arithmetic:
    op: str  # + - * / % div ^
    left: object
    right: object


@dataclass(frozen=True)
class Comparison:
    op: str  # = <> < <= > >=
    left: object
    right: object


@dataclass(frozen=True)
class Like:
    value: object
    pattern: object


@dataclass(frozen=True)
class Between:
    value: object
    low: object
    high: object


@dataclass(frozen=True)
class InList:
    value: object
    items: tuple


@dataclass(frozen=True)
class IsNull:
    value: object


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class And:
    operands: tuple


@dataclass(frozen=True)
class Or:
    operands: tuple


@dataclass(frozen=True)
class Spatial:
    op: str  # s_intersects …
    left: object
    right: object


@dataclass(frozen=True)
class Temporal:
    op: str  # t_before …
    left: object
    right: object


Expression = Union[Comparison, Like, Between, InList, IsNull, Not, And, Or, Spatial, Temporal, Literal]

SPATIAL_FUNCTIONS = {
    "s_intersects": "ST_Intersects",
    "s_disjoint": "ST_Disjoint",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_equals": "ST_Equals",
    "s_touches": "ST_Touches",
    "s_crosses": "ST_Crosses",
    "s_overlaps": "ST_Overlaps",
}

# Each temporal function over a = [a.start, a.end] and b = [b.start, b.end] (an instant has
# start = end): the joiner and its terms (side of a, operator, side of b).
_TEMPORAL_FUNCTIONS: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    "t_after": ("AND", (("start", ">", "end"),)),
    "t_before": ("AND", (("end", "<", "start"),)),
    "t_contains": ("AND", (("start", "<", "start"), ("end", ">", "end"))),
    "t_disjoint": ("OR", (("end", "<", "start"), ("start", ">", "end"))),
    "t_during": ("AND", (("start", ">", "start"), ("end", "<", "end"))),
    "t_equals": ("AND", (("start", "=", "start"), ("end", "=", "end"))),
    "t_finishedby": ("AND", (("start", "<", "start"), ("end", "=", "end"))),
    "t_finishes": ("AND", (("start", ">", "start"), ("end", "=", "end"))),
    "t_intersects": ("AND", (("start", "<=", "end"), ("end", ">=", "start"))),
    "t_meets": ("AND", (("end", "=", "start"),)),
    "t_metby": ("AND", (("start", "=", "end"),)),
    "t_overlappedby": ("AND", (("start", ">", "start"), ("start", "<", "end"), ("end", ">", "end"))),
    "t_overlaps": ("AND", (("start", "<", "start"), ("end", ">", "start"), ("end", "<", "end"))),
    "t_startedby": ("AND", (("start", "=", "start"), ("end", ">", "end"))),
    "t_starts": ("AND", (("start", "=", "start"), ("end", "<", "end"))),
}

_ARITHMETIC = ("+", "-", "*", "/", "%", "div", "^")
_COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
_COMPARISON_TOKENS = (*_COMPARISONS, "!=")
_GEOMETRY_TYPES = {
    "point": "Point",
    "linestring": "LineString",
    "polygon": "Polygon",
    "multipoint": "MultiPoint",
    "multilinestring": "MultiLineString",
    "multipolygon": "MultiPolygon",
    "geometrycollection": "GeometryCollection",
}
# nesting of coordinate arrays per GeoJSON type: 0 = one position
_COORDINATE_DEPTH = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}


# ---------------------------------------------------------------- CQL2 text


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:''|\\.|[^'\\])*')
  | (?P<qid>"(?:""|[^"])*")
  | (?P<id>[^\W\d][\w:.]*)
  | (?P<op><>|<=|>=|!=|=|<|>|[-+*/%^])
  | (?P<punct>[(),])
    """,
    re.VERBOSE | re.DOTALL,
)
_RESERVED = {"and", "or", "not", "like", "between", "in", "is", "null"}
# '' and \' are a quote, \\ a backslash (QGIS doubles backslashes); other \x stay, for LIKE escapes
_STRING_ESCAPE = re.compile(r"''|\\(['\\])")


@dataclass(frozen=True)
class _Token:
    kind: str  # num str qid id op punct end
    text: str
    pos: int  # 1-based character position

    def describe(self) -> str:
        return "end of text" if self.kind == "end" else repr(self.text)


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            hint = " (strings take single quotes: 'text')" if char == '"' else ""
            if char in "'\"":
                raise FilterError(f"at position {pos + 1}: {char} is never closed{hint}")
            raise FilterError(f"at position {pos + 1}: unexpected character {char!r}")
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group(), pos + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _TextParser:
    """Recursive descent over the CQL2 text grammar (booleanExpression and below)."""

    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, message: str, token: _Token | None = None, *, found: bool = True):
        token = token or self.tok
        tail = f", found {token.describe()}" if found else ""
        raise FilterError(f"at position {token.pos}: {message}{tail}")

    def is_word(self, *words: str, token: _Token | None = None) -> bool:
        token = token or self.tok
        return token.kind == "id" and token.text.lower() in words

    def expect_punct(self, char: str, context: str) -> None:
        if self.tok.kind == "punct" and self.tok.text == char:
            self.advance()
        else:
            self.fail(f"expected {char!r} {context}")

    @contextlib.contextmanager
    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels; simplify it")
        try:
            yield
        finally:
            self.depth -= 1

    # -- grammar

    def parse(self) -> Expression:
        expression = self.boolean_expression()
        if self.tok.kind != "end":
            self.fail("expected AND, OR or the end of the filter")
        return expression

    def boolean_expression(self):
        with self.nested():
            terms = [self.boolean_term()]
            while self.is_word("or"):
                self.advance()
                terms.append(self.boolean_term())
            return terms[0] if len(terms) == 1 else Or(self.predicates(terms, "OR"))

    def boolean_term(self):
        factors = [self.boolean_factor()]
        while self.is_word("and"):
            self.advance()
            factors.append(self.boolean_factor())
        return factors[0] if len(factors) == 1 else And(self.predicates(factors, "AND"))

    def boolean_factor(self):
        if self.is_word("not"):
            self.advance()
            with self.nested():
                return Not(self.predicates([self.boolean_factor()], "NOT")[0])
        return self.boolean_primary()

    def predicates(self, items: list, joiner: str) -> tuple:
        for item in items:
            if not _is_predicate(item):
                raise FilterError(
                    f"{_describe_node(item)} is a value, not a predicate, so it cannot go with {joiner}; "
                    "compare it, e.g. … = …"
                )
        return tuple(items)

    def boolean_primary(self):
        token = self.tok
        if token.kind == "punct" and token.text == "(":
            self.advance()
            inner = self.boolean_expression()
            self.expect_punct(")", f"to close the '(' at position {token.pos}")
            if _is_predicate(inner):
                return inner
            # a value in parentheses, e.g. (floors + 1) * 2 > 10
            return self.predicate_tail(self.arith_expression("a value", first=inner))
        if token.kind == "id" and self.peek().text == "(":
            name = token.text.lower()
            if name in SPATIAL_FUNCTIONS or name in _TEMPORAL_FUNCTIONS:
                return self.function_predicate(name)
        left = self.scalar("a property, a value or a predicate")
        return self.predicate_tail(left)

    def function_predicate(self, name: str):
        start = self.advance()
        self.advance()  # (
        with self.nested():
            if name in SPATIAL_FUNCTIONS:
                left = self.scalar(f"a geometry as the first argument of {start.text}")
                self.expect_punct(",", f"between the two arguments of {start.text}")
                right = self.scalar(f"a geometry as the second argument of {start.text}")
                node = Spatial(name, left, right)
            else:
                left = self.scalar(f"a time as the first argument of {start.text}")
                self.expect_punct(",", f"between the two arguments of {start.text}")
                right = self.scalar(f"a time as the second argument of {start.text}")
                node = Temporal(name, left, right)
        self.expect_punct(")", f"to close {start.text}(")
        return node

    def predicate_tail(self, left):
        token = self.tok
        if token.kind == "op" and token.text in _COMPARISON_TOKENS:
            if token.text == "!=":
                self.fail("'!=' is not CQL2; write <> for 'not equal'", found=False)
            self.advance()
            right = self.scalar(f"a value after {token.text!r}")
            return Comparison(token.text, left, right)
        negate = False
        if self.is_word("not") and self.is_word("like", "between", "in", token=self.peek()):
            self.advance()
            negate = True
        if self.is_word("like"):
            self.advance()
            node = Like(left, self.scalar("a pattern after LIKE, e.g. 'abc%'"))
        elif self.is_word("between"):
            self.advance()
            low = self.scalar("a lower bound after BETWEEN")
            if not self.is_word("and"):
                self.fail("expected AND between the two bounds of BETWEEN")
            self.advance()
            node = Between(left, low, self.scalar("an upper bound after BETWEEN … AND"))
        elif self.is_word("in"):
            self.advance()
            self.expect_punct("(", "after IN, e.g. IN ('a', 'b')")
            items = [self.scalar("a value in the IN list")]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                items.append(self.scalar("a value in the IN list"))
            self.expect_punct(")", "to close the IN list")
            node = InList(left, tuple(items))
        elif self.is_word("is"):
            self.advance()
            if self.is_word("not"):
                self.advance()
                negate = True
            if not self.is_word("null"):
                self.fail("expected NULL after IS / IS NOT")
            self.advance()
            node = IsNull(left)
        elif isinstance(left, Literal) and isinstance(left.value, bool):
            return left
        elif self.tok.kind == "punct" and self.tok.text == ")" and self.depth > 1:
            return left
        else:
            self.fail(
                "expected a comparison (=, <>, <, <=, >, >=), LIKE, BETWEEN, IN or IS NULL "
                f"after {_describe_node(left)}"
            )
        return Not(node) if negate else node

    def scalar(self, wanted: str):
        return self.arith_expression(wanted)

    def arith_expression(self, wanted: str, first=None):
        left = self.arith_term(wanted, first)
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.advance().text
            left = Arithmetic(op, left, self.arith_term(f"a value after {op!r}"))
        return left

    def arith_term(self, wanted: str, first=None):
        left = self.arith_power(wanted, first)
        while (self.tok.kind == "op" and self.tok.text in "*/%") or self.is_word("div"):
            op = self.advance().text.lower()
            left = Arithmetic(op, left, self.arith_power(f"a value after {op!r}"))
        return left

    def arith_power(self, wanted: str, first=None):
        base = first if first is not None else self.arith_factor(wanted)
        if self.tok.kind == "op" and self.tok.text == "^":
            self.advance()
            return Arithmetic("^", base, self.arith_factor("an exponent after '^'"))
        return base

    def arith_factor(self, wanted: str):
        token = self.tok
        if token.kind == "op" and token.text in "+-":
            self.advance()
            with self.nested():
                inner = self.arith_factor(f"a value after {token.text!r}")
            if token.text == "+":
                return inner
            if isinstance(inner, Literal) and type(inner.value) in (int, float):
                return Literal(-inner.value)
            return Arithmetic("*", Literal(-1), inner)
        if token.kind == "punct" and token.text == "(":
            self.advance()
            with self.nested():
                inner = self.arith_expression("a value inside '('")
            self.expect_punct(")", f"to close the '(' at position {token.pos}")
            return inner
        return self.operand(wanted)

    def operand(self, wanted: str):
        token = self.tok
        if token.kind == "num":
            self.advance()
            return Literal(_number(token.text))
        if token.kind == "str":
            self.advance()
            return Literal(_unquote(token.text))
        if token.kind == "qid":
            self.advance()
            return Property(token.text[1:-1].replace('""', '"'))
        if token.kind != "id":
            self.fail(f"expected {wanted}")
        word = token.text.lower()
        if word in ("true", "false"):
            self.advance()
            return Literal(word == "true")
        if word in _RESERVED:
            self.fail(f"expected {wanted} (write \"{token.text}\" in double quotes for a property of that name)")
        following = self.peek()
        if following.kind == "punct" and following.text == "(":
            return self.call(word, wanted)
        if word in _GEOMETRY_TYPES and self.is_word("z", "m", "zm", token=following):
            return self.call(word, wanted)
        if word in _GEOMETRY_TYPES and self.is_word("empty", token=following):
            self.fail("empty geometries are not supported; give coordinates", following)
        self.advance()
        return Property(token.text)

    def call(self, word: str, wanted: str):
        start = self.advance()
        if word in _GEOMETRY_TYPES:
            return self.geometry(word)
        self.advance()  # (
        with self.nested():
            if word in ("timestamp", "date"):
                arg = self.tok
                if arg.kind != "str":
                    self.fail(f"expected a quoted {start.text.upper()} string, e.g. {_INSTANT_EXAMPLE[word]}")
                self.advance()
                node = Instant(_instant(arg.text[1:-1], word, arg.pos))
            elif word == "interval":
                bounds = [self.interval_bound()]
                self.expect_punct(",", "between the start and end of INTERVAL")
                bounds.append(self.interval_bound())
                node = Interval(*bounds)
            elif word in ("bbox", "envelope"):
                if word == "envelope":
                    self.fail("write BBOX(west, south, east, north) instead of ENVELOPE", start)
                numbers = [self.number("a number in BBOX")]
                while self.tok.kind == "punct" and self.tok.text == ",":
                    self.advance()
                    numbers.append(self.number("a number in BBOX"))
                node = _envelope(numbers)
            elif word == "casei":
                node = Function("casei", (self.scalar("a text value inside CASEI()"),))
            elif word == "accenti":
                self.fail("ACCENTI() is not supported by this server; compare without it or use CASEI()", start)
            elif word in SPATIAL_FUNCTIONS or word in _TEMPORAL_FUNCTIONS:
                self.fail(f"{start.text} is a predicate, not a value; use it on its own, e.g. {start.text}(…, …)", start)
            else:
                self.fail(
                    f"unknown function {start.text}(); functions here are CASEI, TIMESTAMP, DATE, INTERVAL, BBOX, "
                    "the WKT geometry types, S_* spatial and T_* temporal predicates",
                    start,
                )
        self.expect_punct(")", f"to close {start.text}(")
        return node

    def interval_bound(self):
        token = self.tok
        if token.kind == "str":
            self.advance()
            text = token.text[1:-1]
            if text == "..":
                return None
            return Instant(_instant(text, "date" if len(text) == 10 else "timestamp", token.pos))
        if token.kind in ("id", "qid"):
            node = self.operand("a start or end of INTERVAL")
            if not isinstance(node, (Property, Instant)):
                self.fail("expected a time, '..' or a property in INTERVAL", token)
            return node
        self.fail("expected a time string, '..' or a property in INTERVAL")

    def at_number(self) -> bool:
        token = self.tok
        return token.kind == "num" or (token.kind == "op" and token.text in "+-" and self.peek().kind == "num")

    def number(self, wanted: str) -> float:
        if not self.at_number():
            self.fail(f"expected {wanted}")
        sign = -1.0 if self.tok.text == "-" else 1.0
        if self.tok.kind == "op":
            self.advance()
        return sign * float(self.advance().text)

    # -- WKT

    def geometry(self, word: str) -> Geometry:
        kind = _GEOMETRY_TYPES[word]
        if self.is_word("z", "m", "zm"):
            self.advance()
        with self.nested():
            if kind == "GeometryCollection":
                self.expect_punct("(", "after GEOMETRYCOLLECTION")
                members = [self.member_geometry()]
                while self.tok.kind == "punct" and self.tok.text == ",":
                    self.advance()
                    members.append(self.member_geometry())
                self.expect_punct(")", "to close GEOMETRYCOLLECTION")
                return Geometry(kind, geometries=tuple(members))
            depth = _COORDINATE_DEPTH[kind]
            if kind == "MultiPoint":
                coordinates = self.multipoint()
            elif depth == 0:
                self.expect_punct("(", f"after {kind.upper()}")
                coordinates = self.position()
                self.expect_punct(")", f"to close {kind.upper()}")
            else:
                coordinates = self.coordinate_list(depth)
        geometry = Geometry(kind, coordinates)
        _check_geometry(geometry)
        return geometry

    def member_geometry(self) -> Geometry:
        token = self.tok
        if token.kind != "id" or token.text.lower() not in _GEOMETRY_TYPES:
            self.fail("expected a WKT geometry (POINT, LINESTRING, POLYGON, …) in GEOMETRYCOLLECTION")
        self.advance()
        return self.geometry(token.text.lower())

    def coordinate_list(self, depth: int) -> tuple:
        self.expect_punct("(", "to open a list of coordinates")
        items = [self.position() if depth == 1 else self.coordinate_list(depth - 1)]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.advance()
            items.append(self.position() if depth == 1 else self.coordinate_list(depth - 1))
        self.expect_punct(")", "to close a list of coordinates")
        return tuple(items)

    def multipoint(self) -> tuple:
        # both MULTIPOINT((1 2), (3 4)) and MULTIPOINT(1 2, 3 4) are in use
        self.expect_punct("(", "after MULTIPOINT")
        points = []
        while True:
            if self.tok.kind == "punct" and self.tok.text == "(":
                self.advance()
                points.append(self.position())
                self.expect_punct(")", "to close a point of MULTIPOINT")
            else:
                points.append(self.position())
            if not (self.tok.kind == "punct" and self.tok.text == ","):
                break
            self.advance()
        self.expect_punct(")", "to close MULTIPOINT")
        return tuple(points)

    def position(self) -> tuple[float, ...]:
        numbers = [self.number("a coordinate (two numbers separated by a space, e.g. 113.66 34.75)")]
        while self.at_number():
            numbers.append(self.number("a coordinate"))
        if len(numbers) < 2 or len(numbers) > 4:
            self.fail(f"a position has 2 to 4 numbers, this one has {len(numbers)}")
        return tuple(numbers)


_INSTANT_EXAMPLE = {"timestamp": "TIMESTAMP('2026-08-23T00:00:00Z')", "date": "DATE('2026-08-23')"}


def _unquote(token: str) -> str:
    return _STRING_ESCAPE.sub(lambda m: m.group(1) or "'", token[1:-1])


def _number(text: str) -> int | float:
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise FilterError(f"the number {text} is out of range")
    return value


def _instant(text: str, kind: str, pos: int | None = None) -> datetime | date:
    where = f"at position {pos}: " if pos else ""
    try:
        if kind == "date":
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"{where}{text!r} is not a valid {kind}; write it like {_INSTANT_EXAMPLE[kind]}"
        ) from None
    # CQL2 timestamps are UTC ('Z'); one written without a zone is read as UTC too
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _envelope(numbers: list[float]) -> Envelope:
    if len(numbers) not in (4, 6):
        raise FilterError(f"BBOX takes 4 numbers (west, south, east, north) or 6 with heights, got {len(numbers)}")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if any(not math.isfinite(n) for n in numbers):
        raise FilterError("BBOX numbers must be finite")
    for low, high in ((0, 2), (1, 3)):
        if numbers[low] > numbers[high]:
            raise FilterError(
                f"BBOX number {low + 1} ({numbers[low]}) is greater than number {high + 1} ({numbers[high]}); "
                "give the lower corner first, then the upper corner (a box across the antimeridian is not supported)"
            )
    return Envelope(tuple(numbers))


def _check_geometry(geometry: Geometry) -> None:
    """Raise FilterError unless the coordinates have the shape GeoJSON gives the type."""
    if geometry.type == "GeometryCollection":
        if not geometry.geometries:
            raise FilterError("a GeometryCollection needs at least one geometry")
        for member in geometry.geometries:
            _check_geometry(member)
        return
    _check_coordinates(geometry.type, geometry.coordinates, _COORDINATE_DEPTH[geometry.type])


def _check_coordinates(kind: str, value, depth: int) -> None:
    if depth == 0:
        if (
            not isinstance(value, (list, tuple))
            or not 2 <= len(value) <= 4
            or not all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in value)
        ):
            raise FilterError(f"{kind}: a position is 2 to 4 finite numbers, got {_short(value)}")
        return
    if not isinstance(value, (list, tuple)) or not value:
        raise FilterError(f"{kind}: expected a non-empty list of coordinates, got {_short(value)}")
    ring = (kind in ("Polygon", "MultiPolygon")) and depth == 1
    line = (kind in ("LineString", "MultiLineString")) and depth == 1
    for item in value:
        _check_coordinates(kind, item, depth - 1)
    if line and len(value) < 2:
        raise FilterError(f"{kind}: a line needs at least 2 positions, got {len(value)}")
    if ring:
        if len(value) < 4:
            raise FilterError(f"{kind}: a ring needs at least 4 positions (the last repeats the first), got {len(value)}")
        if tuple(value[0]) != tuple(value[-1]):
            raise FilterError(f"{kind}: a ring must end where it starts; repeat {tuple(value[0])} at the end")


def _is_predicate(node) -> bool:
    if isinstance(node, Literal):
        return isinstance(node.value, bool)
    return isinstance(node, (Comparison, Like, Between, InList, IsNull, Not, And, Or, Spatial, Temporal))


def _describe_node(node) -> str:
    if isinstance(node, Property):
        return f"property {node.name!r}"
    if isinstance(node, Literal):
        return repr(node.value)
    if isinstance(node, Arithmetic):
        return f"the arithmetic {node.op!r}"
    return type(node).__name__.lower()


# ---------------------------------------------------------------- CQL2 JSON


class _JsonReader:
    """Reads a parsed CQL2 JSON document into the same tree the text parser builds."""

    def predicate(self, node, depth: int):
        depth = _json_depth(depth)
        if isinstance(node, bool):
            return Literal(node)
        if not isinstance(node, dict) or "op" not in node:
            example = '{"op": "=", "args": [{"property": "floors"}, 5]}'
            raise FilterError(f"expected a predicate object like {example}, got {_short(node)}")
        op, args = self._op_args(node)
        if op in ("and", "or"):
            if len(args) < 2:
                raise FilterError(f"'{op}' takes at least 2 predicates in args, got {len(args)}")
            items = tuple(self.predicate(a, depth) for a in args)
            return And(items) if op == "and" else Or(items)
        if op == "not":
            self._arity(op, args, 1)
            return Not(self.predicate(args[0], depth))
        if op in _COMPARISONS:
            self._arity(op, args, 2)
            return Comparison(op, self.scalar(args[0], depth), self.scalar(args[1], depth))
        if op == "like":
            self._arity(op, args, 2)
            return Like(self.scalar(args[0], depth), self.scalar(args[1], depth))
        if op == "between":
            self._arity(op, args, 3)
            return Between(*(self.scalar(a, depth) for a in args))
        if op == "in":
            self._arity(op, args, 2)
            if not isinstance(args[1], list) or not args[1]:
                raise FilterError("'in' takes args [value, [item, …]] with a non-empty list of items")
            return InList(self.scalar(args[0], depth), tuple(self.scalar(a, depth) for a in args[1]))
        if op == "isnull":
            self._arity("isNull", args, 1)
            return IsNull(self.scalar(args[0], depth))
        if op in SPATIAL_FUNCTIONS:
            self._arity(op, args, 2)
            return Spatial(op, self.scalar(args[0], depth), self.scalar(args[1], depth))
        if op in _TEMPORAL_FUNCTIONS:
            self._arity(op, args, 2)
            return Temporal(op, self.scalar(args[0], depth), self.scalar(args[1], depth))
        if op in ("casei", "accenti") or op in _ARITHMETIC:
            example = '{"op": "=", "args": [{"op": "%s", …}, …]}' % op
            raise FilterError(f"'{op}' gives a value, not a predicate; compare it, e.g. {example}")
        raise FilterError(
            f"unknown op {node['op']!r}; use one of and, or, not, =, <>, <, <=, >, >=, like, between, in, isNull, "
            "casei, + - * / % div ^, s_intersects (and the other s_*), t_intersects (and the other t_*)"
        )

    def scalar(self, node, depth: int):
        depth = _json_depth(depth)
        if isinstance(node, bool):
            return Literal(node)
        if isinstance(node, (int, float)):
            if isinstance(node, float) and not math.isfinite(node):
                raise FilterError(f"{node} is not a usable number")
            return Literal(node)
        if isinstance(node, str):
            return Literal(node)
        if node is None:
            raise FilterError("null is not a value; test for it with {\"op\": \"isNull\", \"args\": [...]}")
        if isinstance(node, list):
            raise FilterError(f"a list is only allowed as the second argument of 'in', got {_short(node)}")
        if not isinstance(node, dict):
            raise FilterError(f"unexpected value {_short(node)}")
        if "property" in node:
            if not isinstance(node["property"], str):
                raise FilterError(f"a property name must be a string, got {_short(node['property'])}")
            return Property(node["property"])
        if "timestamp" in node:
            return Instant(_instant(self._text(node, "timestamp"), "timestamp"))
        if "date" in node:
            return Instant(_instant(self._text(node, "date"), "date"))
        if "interval" in node:
            bounds = node["interval"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise FilterError("'interval' takes a list of 2 items: start and end ('..' for open)")
            return Interval(*(self._interval_bound(b, depth) for b in bounds))
        if "bbox" in node:
            numbers = node["bbox"]
            if not isinstance(numbers, list) or not all(
                isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
            ):
                raise FilterError("'bbox' takes a list of 4 numbers: west, south, east, north")
            return _envelope([float(n) for n in numbers])
        if "type" in node:
            return self.geometry(node, depth)
        if "op" in node:
            op, args = self._op_args(node)
            if op == "casei":
                self._arity(op, args, 1)
                return Function("casei", (self.scalar(args[0], depth),))
            if op in _ARITHMETIC:
                self._arity(op, args, 2)
                return Arithmetic(op, self.scalar(args[0], depth), self.scalar(args[1], depth))
            if op == "accenti":
                raise FilterError("'accenti' is not supported by this server; compare without it or use casei")
            raise FilterError(
                f"op {node['op']!r} gives a predicate, not a value; only casei and arithmetic can stand for a value here"
            )
        raise FilterError(
            f"unrecognised value {_short(node)}; use {{\"property\": …}}, a literal, {{\"timestamp\": …}}, "
            "{\"date\": …}, {\"interval\": […]}, {\"bbox\": […]} or a GeoJSON geometry"
        )

    def geometry(self, node: dict, depth: int) -> Geometry:
        kind = node.get("type")
        canonical = _GEOMETRY_TYPES.get(str(kind).lower())
        if canonical is None or canonical != kind:
            raise FilterError(f"unknown geometry type {kind!r}; use one of {', '.join(_GEOMETRY_TYPES.values())}")
        if kind == "GeometryCollection":
            members = node.get("geometries")
            if not isinstance(members, list) or not members:
                raise FilterError("a GeometryCollection needs a non-empty 'geometries' list")
            return Geometry(kind, geometries=tuple(self.geometry(m, _json_depth(depth)) for m in members))
        if "coordinates" not in node:
            raise FilterError(f"a {kind} needs 'coordinates'")
        # checked before freezing: the check stops at the depth the type allows
        _check_coordinates(kind, node["coordinates"], _COORDINATE_DEPTH[kind])
        return Geometry(kind, _freeze(node["coordinates"]))

    def _interval_bound(self, bound, depth: int):
        if bound == "..":
            return None
        if isinstance(bound, str):
            return Instant(_instant(bound, "date" if len(bound) == 10 else "timestamp"))
        node = self.scalar(bound, depth)
        if not isinstance(node, (Property, Instant)):
            raise FilterError(f"an interval bound is a time string, '..' or a property, got {_short(bound)}")
        return node

    @staticmethod
    def _op_args(node: dict) -> tuple[str, list]:
        op, args = node.get("op"), node.get("args")
        if not isinstance(op, str):
            raise FilterError(f"'op' must be a string, got {_short(op)}")
        if not isinstance(args, list):
            raise FilterError(f"op {op!r} needs 'args' as a list")
        return op.lower(), args

    @staticmethod
    def _arity(op: str, args: list, count: int) -> None:
        if len(args) != count:
            raise FilterError(f"'{op}' takes {count} argument{'s' if count > 1 else ''}, got {len(args)}")

    @staticmethod
    def _text(node: dict, key: str) -> str:
        if not isinstance(node[key], str):
            raise FilterError(f"'{key}' takes a string, e.g. {_INSTANT_EXAMPLE[key]}")
        return node[key]


def _json_depth(depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels; simplify it")
    return depth + 1


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- SQL

_NUMERIC = {"integer", "number"}
_TEMPORAL = {"date-time", "date"}
_TYPE_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "date-time": "a time",
    "date": "a date",
    "geometry": "a geometry",
}
_MINUS_INFINITY = sql.SQL("'-infinity'::timestamptz")
_PLUS_INFINITY = sql.SQL("'infinity'::timestamptz")


@dataclass(frozen=True)
class _Compiler:
    queryables: Mapping[str, Queryable]
    crs: Crs

    def predicate(self, node) -> sql.Composable:
        if isinstance(node, And) or isinstance(node, Or):
            joiner = sql.SQL(" AND " if isinstance(node, And) else " OR ")
            return sql.SQL("({})").format(joiner.join(self.predicate(n) for n in node.operands))
        if isinstance(node, Not):
            return sql.SQL("(NOT {})").format(self.predicate(node.operand))
        if isinstance(node, Literal) and isinstance(node.value, bool):
            return sql.SQL("TRUE" if node.value else "FALSE")
        if isinstance(node, Comparison):
            left, right = self.values((node.left, node.right), context=f"'{node.op}'")
            return sql.SQL("({} {} {})").format(left, sql.SQL(node.op), right)
        if isinstance(node, Like):
            value, pattern = self.values((node.value, node.pattern), context="LIKE", only={"string"})
            return sql.SQL("({} LIKE {})").format(value, pattern)
        if isinstance(node, Between):
            value, low, high = self.values((node.value, node.low, node.high), context="BETWEEN")
            return sql.SQL("({} BETWEEN {} AND {})").format(value, low, high)
        if isinstance(node, InList):
            value, *items = self.values((node.value, *node.items), context="IN")
            return sql.SQL("({} IN ({}))").format(value, sql.SQL(", ").join(items))
        if isinstance(node, IsNull):
            return sql.SQL("({} IS NULL)").format(self.operand(node.value)[0])
        if isinstance(node, Spatial):
            left, right = self.geometry(node.left, node.op), self.geometry(node.right, node.op)
            return sql.SQL("{}({}, {})").format(sql.SQL(SPATIAL_FUNCTIONS[node.op]), left, right)
        if isinstance(node, Temporal):
            return self.temporal(node)
        raise FilterError(f"{_describe_node(node)} is a value, not a predicate; compare it, e.g. … = …")

    # -- values

    def operand(self, node) -> tuple[sql.Composable, str]:
        """SQL and type of a value that is not a bare literal (a property or a function)."""
        if isinstance(node, Property):
            q = self.queryable(node.name)
            return q.sql, q.type
        if isinstance(node, Function):
            inner, kind = self.operand_or_literal(node.args[0], "string", context="CASEI")
            if kind != "string":
                raise FilterError(f"CASEI() takes text, got {_type_word(kind)}")
            return sql.SQL("lower({})").format(inner), "string"
        if isinstance(node, Arithmetic):
            return self.arithmetic(node)
        if isinstance(node, (Literal, Instant)):
            kind = _literal_type(node)
            return self.literal(node, kind, context="IS NULL"), kind
        raise FilterError(f"{type(node).__name__.lower()} cannot be used as a value here")

    def arithmetic(self, node: Arithmetic) -> tuple[sql.Composable, str]:
        sides, kinds = [], []
        for side in (node.left, node.right):
            if isinstance(side, Literal) and type(side.value) in (int, float):
                done, kind = sql.Literal(side.value), _literal_type(side)
            elif isinstance(side, (Literal, Instant)):
                raise FilterError(f"arithmetic {node.op!r} works on numbers, got {_show(side.value)}")
            else:
                done, kind = self.operand(side)
                if kind not in _NUMERIC:
                    raise FilterError(
                        f"arithmetic {node.op!r} works on numbers, but {_describe_node(side)} is {_type_word(kind)}"
                    )
            sides.append(done)
            kinds.append(kind)
        left, right = sides
        integral = kinds == ["integer", "integer"]
        # division by zero gives NULL (the row does not match) rather than failing the request
        if node.op == "/":
            return sql.SQL("(({})::numeric / NULLIF({}, 0))").format(left, right), "number"
        if node.op == "div":
            return sql.SQL("div(({})::numeric, NULLIF({}, 0))").format(left, right), "integer"
        if node.op == "%":
            return sql.SQL("mod({}, NULLIF({}, 0))").format(left, right), "integer" if integral else "number"
        if node.op == "^":
            return sql.SQL("power({}, {})").format(left, right), "number"
        return sql.SQL("({} {} {})").format(left, sql.SQL(node.op), right), "integer" if integral else "number"

    def operand_or_literal(self, node, kind: str, *, context: str) -> tuple[sql.Composable, str]:
        if isinstance(node, (Literal, Instant)):
            return self.literal(node, kind, context=context), kind
        return self.operand(node)

    def values(self, nodes, *, context: str, only: set[str] | None = None) -> list[sql.Composable]:
        """SQL for operands compared with each other: literals take the type of the first non-literal."""
        typed = [self.operand(n) if not isinstance(n, (Literal, Instant)) else None for n in nodes]
        kinds = [t[1] for t in typed if t is not None]
        kind = kinds[0] if kinds else _literal_type(nodes[0])
        for other in kinds:
            if not _comparable(kind, other):
                raise FilterError(f"cannot compare {_type_word(kind)} with {_type_word(other)} in {context}")
        if kind == "geometry":
            raise FilterError(
                f"geometries cannot be used with {context}; use S_EQUALS, S_INTERSECTS and the other S_* functions"
            )
        if only and kind not in only:
            name = next((f"'{n.name}'" for n in nodes if isinstance(n, Property)), "the value")
            raise FilterError(f"{context} works on text, but {name} is {_type_word(kind)}")
        out = []
        for node, done in zip(nodes, typed):
            out.append(done[0] if done is not None else self.literal(node, kind, context=context, nodes=nodes))
        return out

    def literal(self, node, kind: str, *, context: str, nodes=()) -> sql.Composable:
        value = node.value
        about = next((f"'{n.name}'" for n in nodes if isinstance(n, Property)), "the other side")
        wrong = f"{about} is {_type_word(kind)} and {_show(value)} is not (in {context})"
        if kind in _NUMERIC:
            if isinstance(value, bool) or isinstance(value, (date, datetime)):
                raise FilterError(wrong)
            if isinstance(value, str):
                try:
                    value = _number(value.strip())
                except ValueError:
                    raise FilterError(f"{wrong}; write a number without quotes, e.g. 5") from None
            return sql.Literal(value)
        if kind == "string":
            if not isinstance(value, str):
                raise FilterError(f"{wrong}; put text in single quotes, e.g. '{value}'")
            return sql.Literal(value)
        if kind == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise FilterError(f"{wrong}; write TRUE or FALSE")
            return sql.Literal(value)
        if kind in _TEMPORAL:
            if isinstance(value, str):
                value = _instant(value, "date" if kind == "date" and len(value) == 10 else "timestamp")
            if not isinstance(value, date):
                raise FilterError(f"{wrong}; write {_INSTANT_EXAMPLE['timestamp']}")
            if kind == "date-time":
                value = _as_datetime(value)
            return sql.Literal(value)
        raise FilterError(wrong)

    def queryable(self, name: str) -> Queryable:
        q = self.queryables.get(name)
        if q is None:
            known = sorted(self.queryables)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise FilterError(f"unknown property {name!r}{hint}; queryable properties are: {', '.join(known)}")
        return q

    # -- spatial

    def geometry(self, node, op: str) -> sql.Composable:
        if isinstance(node, Property):
            q = self.queryable(node.name)
            if q.type != "geometry":
                spatial = sorted(n for n, v in self.queryables.items() if v.type == "geometry")
                raise FilterError(
                    f"{op.upper()} needs geometries, but {node.name!r} is {_type_word(q.type)}; "
                    f"the geometry property is {', '.join(spatial) or 'not queryable here'}"
                )
            return q.sql
        if isinstance(node, Envelope):
            self.check_range(node.bounds[:2])
            self.check_range(node.bounds[2:])
            built = sql.SQL("ST_MakeEnvelope({}, {}, {}, {})").format(*(sql.Literal(b) for b in node.bounds))
        elif isinstance(node, Geometry):
            for position in _positions(node):
                self.check_range(position)
            built = sql.SQL("ST_GeomFromGeoJSON({}::text)").format(sql.Literal(json.dumps(_geojson(node))))
        else:
            raise FilterError(f"{op.upper()} needs geometries (a property, WKT or BBOX), got {_describe_node(node)}")
        built = sql.SQL("ST_SetSRID({}, {})").format(built, sql.Literal(self.crs.srid))
        if isinstance(node, Geometry) and node.type not in ("Point", "MultiPoint", "LineString", "MultiLineString"):
            # overlapping parts or a self-crossing ring would make GEOS fail the whole query
            built = sql.SQL("ST_MakeValid({})").format(built)
        if self.crs.north_first:
            built = sql.SQL("ST_FlipCoordinates({})").format(built)
        if self.crs.srid != 4326:
            built = sql.SQL("ST_Transform({}, 4326)").format(built)
        return built

    def check_range(self, position) -> None:
        if self.crs.projected:
            return
        first, second = position[0], position[1]
        lat, lon = (first, second) if self.crs.north_first else (second, first)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            order = "latitude, longitude" if self.crs.north_first else "longitude, latitude"
            raise FilterError(
                f"position ({first}, {second}) is outside {self.crs.uri}, whose axis order is {order}; "
                "swap the coordinates or set filter-crs to the CRS they are in"
            )

    # -- temporal

    def temporal(self, node: Temporal) -> sql.Composable:
        a, b = self.time_bounds(node.left, node.op), self.time_bounds(node.right, node.op)
        joiner, terms = _TEMPORAL_FUNCTIONS[node.op]
        parts = [
            sql.SQL("{} {} {}").format(a[side_a], sql.SQL(cmp), b[side_b]) for side_a, cmp, side_b in terms
        ]
        return sql.SQL("({})").format(sql.SQL(f" {joiner} ").join(parts))

    def time_bounds(self, node, op: str) -> dict[str, sql.Composable]:
        if isinstance(node, Interval):
            return {
                "start": self.interval_bound(node.start, _MINUS_INFINITY, op),
                "end": self.interval_bound(node.end, _PLUS_INFINITY, op),
            }
        point = self.time_point(node, op)
        return {"start": point, "end": point}

    def interval_bound(self, node, open_end: sql.Composable, op: str) -> sql.Composable:
        if node is None:
            return open_end
        point = self.time_point(node, op)
        # a property bound that is NULL (an incident not resolved yet) leaves that end open
        return sql.SQL("COALESCE({}, {})").format(point, open_end) if isinstance(node, Property) else point

    def time_point(self, node, op: str) -> sql.Composable:
        if isinstance(node, Instant):
            return sql.Literal(_as_datetime(node.value))
        if isinstance(node, Literal) and isinstance(node.value, str):
            return sql.Literal(_as_datetime(_instant(node.value, "timestamp")))
        if isinstance(node, Property):
            q = self.queryable(node.name)
            if q.type == "date-time":
                return q.sql
            if q.type == "date":
                return sql.SQL("(({})::timestamp AT TIME ZONE 'UTC')").format(q.sql)
            raise FilterError(f"{op.upper()} needs times, but {node.name!r} is {_type_word(q.type)}")
        raise FilterError(
            f"{op.upper()} needs times: a property, TIMESTAMP('…'), DATE('…') or INTERVAL(…, …), "
            f"got {_describe_node(node)}"
        )


def _type_word(kind: str) -> str:
    return _TYPE_WORDS.get(kind, kind)


def _literal_type(node) -> str:
    value = node.value
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, datetime):
        return "date-time"
    if isinstance(value, date):
        return "date"
    return "string"


def _comparable(a: str, b: str) -> bool:
    return a == b or (a in _NUMERIC and b in _NUMERIC) or (a in _TEMPORAL and b in _TEMPORAL)


def _as_datetime(value: date) -> datetime:
    # a DATE compared with a time stands for midnight UTC of that day
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=timezone.utc)


def _show(value) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return repr(value)


def _positions(geometry: Geometry):
    if geometry.type == "GeometryCollection":
        for member in geometry.geometries:
            yield from _positions(member)
        return
    stack = [(geometry.coordinates, _COORDINATE_DEPTH[geometry.type])]
    while stack:
        value, depth = stack.pop()
        if depth == 0:
            yield value
        else:
            stack.extend((item, depth - 1) for item in value)


def _geojson(geometry: Geometry) -> dict:
    if geometry.type == "GeometryCollection":
        return {"type": geometry.type, "geometries": [_geojson(g) for g in geometry.geometries]}
    return {"type": geometry.type, "coordinates": geometry.coordinates}
