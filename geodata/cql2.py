"""CQL2 text filters (OGC API Features Part 3): parsed, checked against a layer's queryables, and turned into SQL
with bound parameters, or evaluated on rows held in memory.

What is understood: the ``basic-cql2`` class (comparisons ``= <> < > <= >=``, ``AND``, ``OR``, ``NOT``,
``IS [NOT] NULL``, parentheses) and what QGIS and GDAL send for server-side filtering: ``[NOT] LIKE``,
``[NOT] IN (...)``, ``[NOT] BETWEEN``, ``DATE('...')`` and ``TIMESTAMP('...')`` literals, and the spatial
predicates ``S_INTERSECTS``, ``S_WITHIN``, ``S_CONTAINS`` and ``S_DISJOINT`` between the geometry and a WKT
literal (``POINT``, ``POLYGON``, ... in WGS 84 longitude/latitude) or ``BBOX(minx, miny, maxx, maxy)``.

A property must be one of the layer's queryables: a wrong name, a value of the wrong type or a syntax error is
:class:`~geodata.errors.InvalidInput` naming the character where it is (counted from 1). Values never enter the
SQL text: each is a bound parameter cast to the property's type, and property names are the queryables' own.

>>> q = {"name": "text", "incidents": "integer", "occurred_on": "date"}
>>> where = parse("name LIKE 'Hà%' AND incidents >= 5", q)
>>> where.sql(lambda p: f"x.{p}", "x._geom")
('((x.name LIKE CAST(:cql_0 AS text)) AND (x.incidents >= CAST(:cql_1 AS bigint)))', {'cql_0': 'Hà%', 'cql_1': 5})
>>> where.test({"name": "Hà Tĩnh", "incidents": 7}, None), where.test({"name": "Hà Tĩnh", "incidents": None}, None)
(True, False)
>>> parse("population > 5", q)
Traceback (most recent call last):
...
geodata.cql2.FilterError: filter, character 1: unknown property 'population'; the queryables are incidents, name, occurred_on (and geometry)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geodata.errors import InvalidInput

GEOMETRY = "geometry"
"""The name of the geometry property in filters (and in the queryables)."""

SQL_TYPES = {"text": "text", "integer": "bigint", "real": "float8", "boolean": "boolean", "date": "date",
             "datetime": "timestamptz"}
COMPARISONS = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
SPATIAL = {"S_INTERSECTS": ("ST_Intersects", shapely.intersects), "S_WITHIN": ("ST_Within", shapely.within),
           "S_CONTAINS": ("ST_Contains", shapely.contains), "S_DISJOINT": ("ST_Disjoint", shapely.disjoint)}
WKT_TYPES = ("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION")
_TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<word>[A-Za-z_][A-Za-z0-9_:.]*)
  | (?P<op><>|<=|>=|=|<|>)
  | (?P<punct>[(),])
)""", re.VERBOSE)


class FilterError(InvalidInput):
    """A filter that cannot be used; the message names the character where the problem is."""

    def __init__(self, message: str, at: int, parameter: str = "filter") -> None:
        super().__init__(f"{parameter}, character {at + 1}: {message}", loc=("query", parameter))
        self.at = at


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    at: int


def tokenize(source: str, parameter: str = "filter") -> list[Token]:
    """The tokens of ``source`` with their positions; geometry literals (WKT, BBOX) are kept whole."""
    tokens, at = [], 0
    while at < len(source):
        if source[at:].strip() == "":
            break
        m = _TOKEN.match(source, at)
        if m is None or m.end() == at:
            start = len(source) - len(source[at:].lstrip())
            raise FilterError(f"unexpected {source[start]!r}", start, parameter)
        kind = m.lastgroup or ""
        start = m.start(kind)
        word = m.group(kind)
        if kind == "word" and word.upper() in (*WKT_TYPES, "BBOX") and source[m.end():].lstrip().startswith("("):
            end = _closing(source, source.index("(", m.end()), parameter)
            tokens.append(Token("geometry", source[start:end], start))
            at = end
            continue
        tokens.append(Token(kind, word, start))
        at = m.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def _closing(source: str, opening: int, parameter: str) -> int:
    depth = 0
    for i in range(opening, len(source)):
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        if depth == 0:
            return i + 1
    raise FilterError("unclosed parenthesis", opening, parameter)


# -- the parsed filter -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prop:
    name: str
    type: str
    at: int


@dataclass(frozen=True)
class Value:
    value: Any  # None for NULL


@dataclass(frozen=True)
class Node:
    """One predicate or connective: ``op`` and its operands (:class:`Prop`, :class:`Value`, geometries, nodes)."""

    op: str
    args: tuple


class Filter:
    """A checked filter: :meth:`sql` for layers read by SQL, :meth:`test` for rows in memory."""

    def __init__(self, root: Node) -> None:
        self.root = root

    def __and__(self, other: Filter | None) -> Filter:
        return self if other is None else Filter(Node("AND", (self.root, other.root)))

    @property
    def spatial(self) -> bool:
        """Whether the filter needs the geometry."""
        return _uses_geometry(self.root)

    def sql(self, column: Callable[[str], str], geometry: str) -> tuple[str, dict[str, Any]]:
        """The condition as SQL (``column(name)`` the SQL of a property, ``geometry`` that of the geometry in
        WGS 84) and its bound parameters."""
        params: dict[str, Any] = {}

        def bind(value: Any, type_: str) -> str:
            name = f"cql_{len(params)}"
            params[name] = value
            return f"CAST(:{name} AS {SQL_TYPES[type_]})"

        def operand(a: Any, type_: str) -> str:
            return column(a.name) if isinstance(a, Prop) else bind(a.value, type_)

        def walk(n: Node) -> str:
            if n.op in ("AND", "OR"):
                return "(" + f" {n.op} ".join(walk(a) for a in n.args) + ")"
            if n.op == "NOT":
                return f"(NOT {walk(n.args[0])})"
            if n.op in ("TRUE", "FALSE"):
                return n.op
            if n.op in SPATIAL:
                wkt = n.args[1].wkt
                params[name := f"cql_{len(params)}"] = wkt
                return f"{SPATIAL[n.op][0]}({geometry}, ST_GeomFromText(:{name}, 4326))"
            type_ = _type_of(n.args)
            if n.op == "ISNULL":
                return f"({operand(n.args[0], type_)} IS NULL)"
            if n.op == "LIKE":
                return f"({operand(n.args[0], type_)} LIKE {operand(n.args[1], type_)})"
            if n.op == "IN":
                return f"({operand(n.args[0], type_)} IN ({', '.join(operand(a, type_) for a in n.args[1:])}))"
            if n.op == "BETWEEN":
                a, lo, hi = (operand(x, type_) for x in n.args)
                return f"({a} BETWEEN {lo} AND {hi})"
            return f"({operand(n.args[0], type_)} {COMPARISONS[n.op]} {operand(n.args[1], type_)})"

        return walk(self.root), params

    def test(self, properties: Mapping[str, Any], geometry: BaseGeometry | None) -> bool:
        """Whether a row passes (SQL's rules: a comparison with an empty value is unknown, and unknown fails)."""
        return _eval(self.root, properties, geometry) is True


def _uses_geometry(n: Any) -> bool:
    return isinstance(n, Node) and (n.op in SPATIAL or any(_uses_geometry(a) for a in n.args))


def _type_of(args: tuple) -> str:
    return next((a.type for a in args if isinstance(a, Prop)), "text")


def _eval(n: Node, props: Mapping[str, Any], geometry: BaseGeometry | None) -> bool | None:
    if n.op == "AND":
        values = [_eval(a, props, geometry) for a in n.args]
        return False if False in values else None if None in values else True
    if n.op == "OR":
        values = [_eval(a, props, geometry) for a in n.args]
        return True if True in values else None if None in values else False
    if n.op == "NOT":
        v = _eval(n.args[0], props, geometry)
        return None if v is None else not v
    if n.op in ("TRUE", "FALSE"):
        return n.op == "TRUE"
    if n.op in SPATIAL:
        return None if geometry is None else bool(SPATIAL[n.op][1](geometry, n.args[1]))
    type_ = _type_of(n.args)
    values = [_value(a, props, type_) for a in n.args]
    if n.op == "ISNULL":
        return values[0] is None
    if any(v is None for v in values):
        return None
    if n.op == "LIKE":
        return _like(values[1]).fullmatch(values[0]) is not None
    if n.op == "IN":
        return values[0] in values[1:]
    if n.op == "BETWEEN":
        return values[1] <= values[0] <= values[2]
    a, b = values
    return {"=": a == b, "<>": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[n.op]


def _value(a: Prop | Value, props: Mapping[str, Any], type_: str) -> Any:
    if isinstance(a, Value):
        return a.value
    v = props.get(a.name)
    if v is None:
        return None
    if type_ in ("date", "datetime") and isinstance(v, str):
        return coerce(v, type_, 0, "")
    if type_ == "datetime" and type(v) is dt.date:
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    return v


def _like(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# -- values ----------------------------------------------------------------------------------------------------
def coerce(value: Any, type_: str, at: int, parameter: str = "filter") -> Any:
    """``value`` (a literal of the filter) as a value of a property of ``type_``; :class:`FilterError` otherwise.

    >>> coerce("2025-07-01", "date", 0), coerce(3, "real", 0)
    (datetime.date(2025, 7, 1), 3.0)
    """
    if value is None:
        return None
    ok: Any = None
    if type_ == "text" and isinstance(value, str):
        ok = value
    elif type_ == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        ok = int(value)
    elif type_ == "real" and isinstance(value, (int, float)) and not isinstance(value, bool):
        ok = float(value)
    elif type_ == "boolean" and isinstance(value, bool):
        ok = value
    elif type_ in ("date", "datetime"):
        ok = _instant(value, type_)
    if ok is None:
        example = {"text": "'text'", "integer": "42", "real": "4.2", "boolean": "TRUE", "date": "DATE('2025-07-01')",
                   "datetime": "TIMESTAMP('2025-07-01T08:00:00Z')"}[type_]
        raise FilterError(f"{_show(value)} is not a value of type {type_} (write one like {example})", at, parameter)
    return ok


def _instant(value: Any, type_: str) -> dt.date | dt.datetime | None:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return value if type_ == "date" else dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            return None
    else:
        return None
    if type_ == "date":
        return moment.date()
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _show(value: Any) -> str:
    return "TRUE" if value is True else "FALSE" if value is False else repr(value)


# -- the parser ------------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, source: str, queryables: Mapping[str, str], parameter: str) -> None:
        self.parameter = parameter
        self.tokens = tokenize(source, parameter)
        self.i = 0
        self.queryables = queryables

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> FilterError:
        return FilterError(message, (tok or self.tok).at, self.parameter)

    def keyword(self, *words: str) -> bool:
        t = self.tok
        if t.kind == "word" and t.text.upper() in words:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if self.tok.text.upper() != text:
            raise self.error(f"expected {text!r}, found {self.tok.text or 'the end'!r}")
        self.i += 1

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("empty filter")
        node = self.disjunction()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        return node

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Node("OR", tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.negation()]
        while self.keyword("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else Node("AND", tuple(parts))

    def negation(self) -> Node:
        if self.keyword("NOT"):
            return Node("NOT", (self.negation(),))
        if self.tok.text == "(":
            # A parenthesised condition (an operand never starts with one).
            self.i += 1
            node = self.disjunction()
            self.expect(")")
            return node
        return self.predicate()

    def predicate(self) -> Node:
        t = self.tok
        if t.kind == "word" and t.text.upper() in SPATIAL:
            self.i += 1
            self.expect("(")
            first = self.operand()
            self.expect(",")
            second = self.operand()
            self.expect(")")
            if isinstance(first, BaseGeometry) and isinstance(second, Prop):
                first, second = second, first
            if not (isinstance(first, Prop) and first.type == GEOMETRY and isinstance(second, BaseGeometry)):
                raise self.error(f"{t.text.upper()} compares the property {GEOMETRY!r} with a geometry literal "
                          "(POINT(...), POLYGON((...)), BBOX(...))", t)
            return Node(t.text.upper(), (first, second))
        if t.kind == "word" and t.text.upper() in ("TRUE", "FALSE") and self.tokens[self.i + 1].kind in ("end", "word", "punct") \
                and self.tokens[self.i + 1].text.upper() in ("", "AND", "OR", ")"):
            self.i += 1
            return Node(t.text.upper(), ())
        left = self.operand()
        negated = self.keyword("NOT")
        op_tok = self.tok
        if self.keyword("IS"):
            if negated:
                raise self.error("write 'IS NOT NULL'", op_tok)
            negated = self.keyword("NOT")
            self.expect("NULL")
            node = Node("ISNULL", (self.scalar(left, op_tok),))
        elif self.keyword("LIKE"):
            right = self.operand()
            node = Node("LIKE", self.typed(left, right, op_tok, text_only=True))
        elif self.keyword("BETWEEN"):
            low = self.operand()
            self.expect("AND")
            high = self.operand()
            node = Node("BETWEEN", (*self.typed(left, low, op_tok), self.typed(left, high, op_tok)[1]))
        elif self.keyword("IN"):
            self.expect("(")
            items = [self.operand()]
            while self.tok.text == ",":
                self.i += 1
                items.append(self.operand())
            self.expect(")")
            node = Node("IN", (self.scalar(left, op_tok), *(self.typed(left, x, op_tok)[1] for x in items)))
        elif op_tok.kind == "op" and not negated:
            self.i += 1
            right = self.operand()
            node = Node(op_tok.text, self.typed(left, right, op_tok))
        else:
            raise self.error(f"expected a comparison (=, <>, <, >, <=, >=, LIKE, IN, BETWEEN, IS NULL), found "
                      f"{op_tok.text or 'the end'!r}", op_tok)
        return Node("NOT", (node,)) if negated else node

    def scalar(self, a: Any, at: Token) -> Prop | Value:
        if isinstance(a, BaseGeometry) or (isinstance(a, Prop) and a.type == GEOMETRY):
            raise self.error("a geometry is compared only with S_INTERSECTS, S_WITHIN, S_CONTAINS or S_DISJOINT", at)
        return a

    def typed(self, left: Any, right: Any, at: Token, text_only: bool = False) -> tuple:
        """The two operands of a comparison with the literal made a value of the property's type."""
        left, right = self.scalar(left, at), self.scalar(right, at)
        prop = left if isinstance(left, Prop) else right if isinstance(right, Prop) else None
        if prop is None:
            raise self.error("a comparison needs a property on one side", at)
        if text_only and prop.type != "text":
            raise self.error(f"LIKE works on text; {prop.name!r} is {prop.type}", at)
        out = []
        for a in (left, right):
            if isinstance(a, Value) and not isinstance(a, Prop):
                out.append(Value(coerce(a.value, prop.type, a.at if hasattr(a, "at") else at.at, self.parameter)))
            else:
                if isinstance(a, Prop) and a.type != prop.type:
                    raise self.error(f"{left.name!r} ({left.type}) and {right.name!r} ({right.type}) cannot be compared", at)
                out.append(a)
        return tuple(out)

    def operand(self) -> Any:
        t = self.tok
        self.i += 1
        if t.kind == "string":
            return _Literal(t.text[1:-1].replace("''", "'"), t.at)
        if t.kind == "number":
            return _Literal(float(t.text) if re.search(r"[.eE]", t.text) else int(t.text), t.at)
        if t.kind == "geometry":
            return self.geometry(t)
        if t.kind == "quoted":
            return self.prop(t.text[1:-1].replace('""', '"'), t)
        if t.kind == "word":
            word = t.text.upper()
            if word in ("TRUE", "FALSE"):
                return _Literal(word == "TRUE", t.at)
            if word == "NULL":
                raise self.error("compare with NULL by 'IS NULL'", t)
            if word in ("DATE", "TIMESTAMP") and self.tok.text == "(":
                self.i += 1
                inner = self.tok
                if inner.kind != "string":
                    raise self.error(f"{word}(...) takes a quoted ISO 8601 text", inner)
                self.i += 1
                self.expect(")")
                value = _instant(inner.text[1:-1], "date" if word == "DATE" else "datetime")
                if value is None:
                    raise self.error(f"{inner.text} is not an ISO 8601 {'date' if word == 'DATE' else 'timestamp'}", inner)
                return _Literal(value, t.at)
            if self.tok.text == "(":
                raise self.error(f"unknown function {t.text!r}", t)
            return self.prop(t.text, t)
        raise self.error(f"expected a property or a value, found {t.text or 'the end'!r}", t)

    def prop(self, name: str, t: Token) -> Prop:
        if name == GEOMETRY:
            return Prop(name, GEOMETRY, t.at)
        if name not in self.queryables:
            raise self.error(f"unknown property {name!r}; the queryables are {', '.join(sorted(self.queryables))} (and {GEOMETRY})", t)
        return Prop(name, self.queryables[name], t.at)

    def geometry(self, t: Token) -> BaseGeometry:
        if t.text.upper().startswith("BBOX"):
            inside = t.text[t.text.index("(") + 1:-1]
            try:
                numbers = [float(x) for x in inside.split(",")]
            except ValueError:
                numbers = []
            if len(numbers) not in (4, 6):
                raise self.error("BBOX takes 4 numbers: min longitude, min latitude, max longitude, max latitude", t)
            half = len(numbers) // 2
            return shapely.box(numbers[0], numbers[1], numbers[half], numbers[half + 1])
        try:
            geometry = shapely.from_wkt(t.text)
        except shapely.errors.ShapelyError as exc:
            raise self.error(f"not a valid WKT geometry ({str(exc).splitlines()[0]})", t) from None
        if geometry is None or geometry.is_empty:
            raise self.error("an empty geometry", t)
        return geometry


class _Literal(Value):
    """A literal before it is given its property's type, with where it was written."""

    def __init__(self, value: Any, at: int) -> None:
        super().__init__(value)
        object.__setattr__(self, "at", at)


def parse(source: str, queryables: Mapping[str, str], parameter: str = "filter") -> Filter:
    """``source`` (CQL2 text) as a :class:`Filter` over ``queryables`` (property name -> type of
    :data:`SQL_TYPES`); :class:`FilterError` naming what is wrong and where."""
    return Filter(_Parser(source, queryables, parameter).parse())


def compare(prop: str, type_: str, op: str, value: Any) -> Filter:
    """A filter ``prop op value`` built in code (the ``datetime`` parameter), with ``value`` of the property's type."""
    return Filter(Node(op, (Prop(prop, type_, 0), Value(value))))


def intersects(geometry: BaseGeometry) -> Filter:
    """A filter on the rows whose geometry intersects ``geometry`` (WGS 84; the ``bbox`` parameter)."""
    return Filter(Node("S_INTERSECTS", (Prop(GEOMETRY, GEOMETRY, 0), geometry)))


def all_of(*filters: Filter | None) -> Filter | None:
    """The filters that are given, all of them (None when there is none)."""
    given = [f for f in filters if f is not None]
    if not given:
        return None
    return Filter(given[0].root if len(given) == 1 else Node("AND", tuple(f.root for f in given)))
