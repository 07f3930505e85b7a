"""`/filter?where=` and `/search?query=` compiled to DuckDB SQL with bound parameters.

The `where` text is parsed here, never pasted into SQL: the grammar accepts only column names
of the split, literals and comparison operators, so a sub-query, a function call (`read_csv`),
a second statement or a comment is a syntax error (400) before DuckDB sees anything.

    expr       := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | primary
    primary    := "(" expr ")" | column predicate
    predicate  := cmp literal | ["NOT"] ("LIKE" | "ILIKE") string | "IS" ["NOT"] "NULL"
                | ["NOT"] "IN" "(" literal ("," literal)* ")"
    cmp        := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    column     := identifier | "double-quoted name"
    literal    := 'string' | number | TRUE | FALSE | NULL
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.errors import BadRequest

MAX_WHERE_CHARS = 2000
MAX_DEPTH = 20
MAX_IN_ITEMS = 100
COMPARISONS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">"}
COMPARISONS[">="] = ">="
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "ILIKE", "IS", "NULL", "IN", "TRUE", "FALSE"}
_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")+")
    | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|<>|!=|==|[=<>(),])
    )""",
    re.VERBOSE,
)


class InvalidQuery(BadRequest):
    code = "InvalidParameter"


@dataclass(frozen=True)
class Token:
    kind: str  # string | quoted | number | word | op | end
    text: str
    position: int


@dataclass
class Compiled:
    """A WHERE clause with `?` placeholders and the values bound to them."""

    sql: str
    params: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the columns the clause reads


def tokenize(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN_RE.match(text, position)
        if match is None or match.lastgroup is None:
            offending = text[position:].lstrip()[:1]
            at = len(text) - len(text[position:].lstrip())
            raise InvalidQuery(f"Invalid where parameter: unexpected {offending!r} at {at}")
        kind = match.lastgroup
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, columns: Sequence[str]):
        self.tokens = tokenize(text)
        self.index = 0
        self.columns = set(columns)
        self.params: list[Any] = []
        self.used: dict[str, None] = {}

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def fail(self, expected: str) -> InvalidQuery:
        token = self.current
        found = "the end" if token.kind == "end" else repr(token.text)
        return InvalidQuery(
            f"Invalid where parameter: expected {expected} at {token.position}, found {found}"
        )

    def keyword(self, *words: str) -> str | None:
        token = self.current
        if token.kind == "word" and token.text.upper() in words:
            self.index += 1
            return token.text.upper()
        return None

    def op(self, symbol: str) -> bool:
        if self.current.kind == "op" and self.current.text == symbol:
            self.index += 1
            return True
        return False

    def parse(self) -> str:
        sql = self.expr(0)
        if self.current.kind != "end":
            raise self.fail("AND, OR or the end")
        return sql

    def expr(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise InvalidQuery("Invalid where parameter: too deeply nested")
        parts = [self.conjunction(depth)]
        while self.keyword("OR"):
            parts.append(self.conjunction(depth))
        return " OR ".join(parts) if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self, depth: int) -> str:
        parts = [self.negation(depth)]
        while self.keyword("AND"):
            parts.append(self.negation(depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def negation(self, depth: int) -> str:
        if self.keyword("NOT"):
            return f"(NOT {self.negation(depth + 1)})"
        if self.op("("):
            inner = self.expr(depth + 1)
            if not self.op(")"):
                raise self.fail("')'")
            return f"({inner})"
        return self.predicate(self.column())

    def column(self) -> str:
        token = self.current
        if token.kind == "quoted":
            name = token.text[1:-1].replace('""', '"')
        elif token.kind == "word" and token.text.upper() not in KEYWORDS:
            name = token.text
        else:
            raise self.fail("a column name")
        if name not in self.columns:
            raise InvalidQuery(f"Invalid where parameter: no column named {name!r}")
        self.index += 1
        self.used[name] = None
        return quote_identifier(name)

    def predicate(self, column: str) -> str:
        token = self.current
        if token.kind == "op" and token.text in COMPARISONS:
            self.index += 1
            return f"{column} {COMPARISONS[token.text]} {self.literal()}"
        if self.keyword("IS"):
            negated = " NOT" if self.keyword("NOT") else ""
            if not self.keyword("NULL"):
                raise self.fail("NULL")
            return f"{column} IS{negated} NULL"
        negated = "NOT " if self.keyword("NOT") else ""
        like = self.keyword("LIKE", "ILIKE")
        if like:
            return f"{column} {negated}{like} {self.literal(strings_only=True)}"
        if self.keyword("IN"):
            return f"{column} {negated}IN ({self.literal_list()})"
        raise self.fail("a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS NULL)")

    def literal_list(self) -> str:
        if not self.op("("):
            raise self.fail("'('")
        items = [self.literal()]
        while self.op(","):
            items.append(self.literal())
            if len(items) > MAX_IN_ITEMS:
                raise InvalidQuery(f"Invalid where parameter: IN takes {MAX_IN_ITEMS} values")
        if not self.op(")"):
            raise self.fail("',' or ')'")
        return ", ".join(items)

    def literal(self, *, strings_only: bool = False) -> str:
        token = self.current
        if token.kind == "string":
            value: Any = token.text[1:-1].replace("''", "'")
        elif strings_only:
            raise self.fail("a quoted string")
        elif token.kind == "number":
            value = float(token.text) if re.search(r"[.eE]", token.text) else int(token.text)
        elif token.kind == "word" and token.text.upper() in ("TRUE", "FALSE"):
            value = token.text.upper() == "TRUE"
        elif token.kind == "word" and token.text.upper() == "NULL":
            self.index += 1
            return "NULL"
        else:
            raise self.fail("a value")
        self.index += 1
        self.params.append(value)
        return "?"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compile_where(text: str, columns: Sequence[str]) -> Compiled:
    """The WHERE clause of a `/filter` request, or InvalidQuery (400) saying what is wrong."""
    if len(text) > MAX_WHERE_CHARS:
        raise InvalidQuery(f"Invalid where parameter: longer than {MAX_WHERE_CHARS} characters")
    if not text.strip():
        raise InvalidQuery("Invalid where parameter: empty")
    parser = _Parser(text, columns)
    sql = parser.parse()
    return Compiled(sql, parser.params, list(parser.used))


def compile_search(query: str, text_columns: Sequence[str]) -> Compiled:
    """Case-insensitive substring search over the string columns (`%` and `_` are literal)."""
    if not text_columns:
        raise InvalidQuery("This split has no text column to search")
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    clauses = [f"{quote_identifier(c)} ILIKE ? ESCAPE '\\'" for c in text_columns]
    params = [pattern] * len(text_columns)
    return Compiled("(" + " OR ".join(clauses) + ")", params, list(text_columns))
