"""SQL reaches PostgreSQL only as fixed text with bound parameters, or safely quoted identifiers.

A static check of ``include/`` (no database needed), closed-world: every ``.execute()``,
``.executemany()``, ``.copy()`` and ``.stream()`` call must get a statement this check can
*prove* safe, and anything it cannot prove fails, naming the file and line. Proven safe are:

- a string literal (implicit or ``+`` concatenation of literals included);
- SQL read from the package's ``.sql`` files: the pipelines' ``warehouse.sql(name)``,
  ``include.common.postgres.read_sql(...)``, or ``path.read_text()`` of a path globbed as ``*.sql``;
- psycopg composition: ``sql.SQL(<literal>)``, its ``.format()`` / ``.join()`` with only
  ``sql.Identifier``, ``sql.Literal``, ``sql.Placeholder`` or other such compositions, and
  ``sql.Composed([...])`` of them;
- a SQLAlchemy Core statement: ``sqlalchemy.select(...)`` and its builder methods (``where``,
  ``order_by`` …), which bind every value as a parameter and take names from ORM models (the REST
  API's reads of Airflow's own metadata); ``sqlalchemy.text()`` is not among them;
- a call of a function of ``include/`` (in the same module or imported) whose every ``return``
  gives one of the compositions above, such as ``warehouse.staging_table(run_id)``;
- a variable or a function parameter whose every assignment or every call site (in the same
  module) passes one of the above.

Never allowed: f-strings, ``%``-formatting, ``str.format()`` and ``+`` with a non-literal.

The ``.sql`` files themselves may hold only psycopg's named placeholders, ``%(name)s`` (``b``/``t``
formats too), and ``%%`` for a literal percent sign: psycopg looks for placeholders everywhere in
the text, comments and string literals included, so a lone ``%`` is either a bug or a value
spliced in. Positional ``%s`` is refused: statements in files are run with named parameters.
Migrations run without parameters and may hold no placeholder at all. Braces are allowed only
inside string literals and comments (``'{}'`` is PostgreSQL's empty array): anywhere else they
would be ``str.format`` fields.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from devservices.environment import PROJECT_ROOT

INCLUDE = PROJECT_ROOT / "include"
SQL_CALLS = frozenset({"execute", "executemany", "copy", "stream"})
PSYCOPG_SQL = "psycopg.sql"
QUOTED_PARTS = frozenset({f"{PSYCOPG_SQL}.{name}" for name in ("Identifier", "Literal", "Placeholder")})
SQLALCHEMY_SELECT = "sqlalchemy.select"
SQLALCHEMY_BUILDERS = frozenset(
    {
        "where",
        "filter",
        "order_by",
        "group_by",
        "having",
        "limit",
        "offset",
        "select_from",
        "join",
        "distinct",
    }
)
SQL_FILE_LOADERS = re.compile(r"include\.common\.postgres\.read_sql|include\.\w+\.warehouse\.sql")

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class StatementChecker:
    """Proves (or fails to prove) that the statements one module sends are safe."""

    def __init__(self, source: str, module: str, where: str) -> None:
        self.module = module
        self.where = where
        self.tree = ast.parse(source)
        self.parents = {child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)}
        self.imports: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.imports[local] = alias.name if alias.asname else local
        self.functions = {node.name: node for node in self.tree.body if isinstance(node, FunctionNode)}

    def problems(self) -> tuple[int, list[Problem]]:
        """How many statement calls were checked, and what is wrong with them."""
        checked, found = 0, []
        for call in ast.walk(self.tree):
            statement = self._statement_of(call)
            if statement is None:
                continue
            checked += 1
            why = self._unsafe(statement, set())
            if why:
                found.append(Problem(f"{self.where}:{call.lineno}", why))
        return checked, found

    def _statement_of(self, node: ast.AST) -> ast.expr | None:
        if not isinstance(node, ast.Call):
            return None
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in SQL_CALLS:
            return None
        # shutil.copy(src, dst) and the like: a call on an imported module is not a cursor.
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if isinstance(receiver, ast.Name) and receiver.id in self.imports:
            return None
        if node.args:
            return node.args[0]
        return next((kw.value for kw in node.keywords if kw.arg in ("query", "statement")), None)

    def _qualified(self, node: ast.expr) -> str:
        """The dotted name an expression refers to through the module's imports ("" if none)."""
        if isinstance(node, ast.Name):
            if node.id in self.imports:
                return self.imports[node.id]
            return f"{self.module}.{node.id}" if node.id in self.functions else ""
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value)
            return f"{base}.{node.attr}" if base else ""
        return ""

    def _unsafe(self, node: ast.expr, seen: set[int]) -> str | None:
        """Why ``node`` is not proven a safe statement; None when it is."""
        if id(node) in seen:
            return None  # a cycle adds nothing: its other paths are checked
        seen = seen | {id(node)}
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return None
        if isinstance(node, ast.JoinedStr):
            return "an f-string builds the SQL"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return "%-formatting builds the SQL"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            if all(_is_literal(side) for side in (node.left, node.right)):
                return None
            return "concatenation with a non-literal value builds the SQL"
        if isinstance(node, ast.Call):
            return self._unsafe_call(node, seen)
        if isinstance(node, ast.Name):
            return self._unsafe_name(node, seen)
        return f"a {type(node).__name__} expression this check cannot prove safe"

    def _unsafe_call(self, node: ast.Call, seen: set[int]) -> str | None:
        func = node.func
        qualified = self._qualified(func)
        if SQL_FILE_LOADERS.fullmatch(qualified):
            return None
        if isinstance(func, ast.Attribute) and func.attr == "read_text":
            if self._from_sql_glob(func.value, seen):
                return None
            return "read_text() of a file not globbed as *.sql"
        if self._is_composition(node, seen) or self._is_sqlalchemy_statement(node, seen):
            return None
        if isinstance(func, ast.Attribute) and func.attr == "format":
            return "str.format() builds the SQL (use sql.SQL(...).format with sql.Identifier/Literal)"
        return f"the result of {ast.unparse(func)}() is not proven safe SQL"

    def _is_composition(self, node: ast.expr, seen: set[int]) -> bool:
        """A psycopg ``sql`` object built only from literal SQL and quoted parts."""
        if isinstance(node, ast.Name):
            bindings = self._bindings(node)
            return bool(bindings) and all(
                isinstance(value, ast.expr) and self._is_composition(value, seen) for value in bindings
            )
        if not isinstance(node, ast.Call):
            return False
        qualified = self._qualified(node.func)
        if qualified in QUOTED_PARTS:
            return True  # psycopg quotes or binds whatever it is given
        if qualified == f"{PSYCOPG_SQL}.SQL":
            return len(node.args) == 1 and _is_literal(node.args[0])
        if qualified == f"{PSYCOPG_SQL}.Composed":
            return len(node.args) == 1 and self._all_composed(node.args[0], seen)
        if self._returns_composition(qualified, seen):
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
            if not self._is_composition(node.func.value, seen):
                return False
            if node.func.attr == "join":
                return len(node.args) == 1 and self._all_composed(node.args[0], seen)
            parts = [*node.args, *(kw.value for kw in node.keywords)]
            return all(self._is_composition(part, seen) for part in parts)
        return False

    def _returns_composition(self, qualified: str, seen: set[int]) -> bool:
        """A function of ``include/`` whose every ``return`` gives a proven composition.

        Such as ``warehouse.staging_table(run_id)``, which returns an ``sql.Identifier``: proven in
        its own module, so that callers elsewhere need not spell the identifier out again.
        """
        module, _, name = qualified.rpartition(".")
        checker = self if module == self.module else _module_checker(module)
        function = checker.functions.get(name) if checker is not None else None
        if function is None or id(function) in seen:
            return False
        seen = seen | {id(function)}
        returned = [node.value for node in ast.walk(function) if isinstance(node, ast.Return)]
        return bool(returned) and all(
            value is not None and checker._is_composition(value, seen) for value in returned
        )

    def _is_sqlalchemy_statement(self, node: ast.expr, seen: set[int]) -> bool:
        """``sqlalchemy.select(...)``, possibly refined by builder methods, directly or through names."""
        if id(node) in seen and isinstance(node, ast.Name):
            return True  # ``query = query.where(...)``: the name's other bindings decide
        seen = seen | {id(node)}
        if isinstance(node, ast.Name):
            bindings = self._bindings(node)
            return bool(bindings) and all(
                isinstance(value, ast.expr) and self._is_sqlalchemy_statement(value, seen)
                for value in bindings
            )
        if not isinstance(node, ast.Call):
            return False
        if self._qualified(node.func) == SQLALCHEMY_SELECT:
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr in SQLALCHEMY_BUILDERS:
            return self._is_sqlalchemy_statement(node.func.value, seen)
        return False

    def _all_composed(self, node: ast.expr, seen: set[int]) -> bool:
        if isinstance(node, ast.List | ast.Tuple):
            return all(self._is_composition(element, seen) for element in node.elts)
        if isinstance(node, ast.GeneratorExp | ast.ListComp):
            return self._is_composition(node.elt, seen)
        return False

    def _unsafe_name(self, node: ast.Name, seen: set[int]) -> str | None:
        bindings = self._bindings(node)
        if not bindings:
            return f"'{node.id}' is a value this check cannot trace to safe SQL"
        for value in bindings:
            if isinstance(value, str):
                return value
            why = self._unsafe(value, seen)
            if why:
                return f"'{node.id}' may be bound to unsafe SQL: {why}"
        return None

    def _bindings(self, node: ast.Name) -> list[ast.expr | str]:
        """What ``node`` may hold: the values assigned to it in its scope, or what callers pass.

        A string in the list is a reason the name cannot be traced.
        """
        scope = self._scope(node)
        values: list[ast.expr | str] = []
        for child in ast.walk(scope):
            if isinstance(child, ast.Assign) and any(_names(target, node.id) for target in child.targets):
                values.append(child.value)
            elif isinstance(child, ast.AnnAssign | ast.NamedExpr) and _names(child.target, node.id):
                if child.value is not None:
                    values.append(child.value)
            elif isinstance(child, ast.For) and _names(child.target, node.id):
                values.append(f"'{node.id}' is a loop variable over {ast.unparse(child.iter)}")
            elif (
                isinstance(child, ast.withitem)
                and child.optional_vars
                and _names(child.optional_vars, node.id)
            ):
                values.append(child.context_expr)
        if isinstance(scope, FunctionNode):
            values.extend(self._arguments_passed(scope, node.id))
            if not values:  # not local: a module-level name, such as a statement constant
                values = [
                    statement.value
                    for statement in self.tree.body
                    if isinstance(statement, ast.Assign | ast.AnnAssign)
                    and statement.value is not None
                    and any(_names(target, node.id) for target in _targets(statement))
                ]
        return values

    def _arguments_passed(self, function: FunctionNode, parameter: str) -> list[ast.expr | str]:
        positional = [arg.arg for arg in (*function.args.posonlyargs, *function.args.args)]
        keyword_only = [arg.arg for arg in function.args.kwonlyargs]
        if parameter not in positional and parameter not in keyword_only:
            return []
        passed: list[ast.expr | str] = []
        for call in ast.walk(self.tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            if call.func.id != function.name:
                continue
            index = positional.index(parameter) if parameter in positional else None
            if index is not None and index < len(call.args):
                passed.append(call.args[index])
            passed.extend(kw.value for kw in call.keywords if kw.arg == parameter)
        return passed or [f"'{parameter}' is a parameter of {function.name}() with no caller in this module"]

    def _from_sql_glob(self, node: ast.expr, seen: set[int]) -> bool:
        """Whether ``node`` is a path that comes from globbing ``*.sql`` files."""
        if isinstance(node, ast.Name):
            scope = self._scope(node)
            sources = [
                child.iter
                for child in ast.walk(scope)
                if isinstance(child, ast.For) and _names(child.target, node.id)
            ] + [value for value in self._bindings(node) if isinstance(value, ast.expr)]
            return bool(sources) and all(self._from_sql_glob(source, seen) for source in sources)
        for child in ast.walk(node):
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr in ("glob", "rglob")
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and str(child.args[0].value).endswith(".sql")
            ):
                return True
            traced = isinstance(child, ast.Name) and child is not node and id(child) not in seen
            if traced and self._from_sql_glob(child, seen | {id(child)}):
                return True
        return False

    def _scope(self, node: ast.AST) -> ast.AST:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, FunctionNode):
                return node
        return self.tree


@functools.cache
def _module_checker(module: str) -> StatementChecker | None:
    """The checker of a module of ``include/`` (None for any other module)."""
    parts = module.split(".")
    if parts[0] != "include":
        return None
    path = PROJECT_ROOT.joinpath(*parts).with_suffix(".py")
    if not path.is_file():
        return None
    return StatementChecker(path.read_text(), module, str(path.relative_to(PROJECT_ROOT)))


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add)
        and _is_literal(node.left)
        and _is_literal(node.right)
    )


def _targets(statement: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return statement.targets if isinstance(statement, ast.Assign) else [statement.target]


def _names(target: ast.expr, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(target))


def check_source(source: str, where: str = "snippet.py") -> tuple[int, list[Problem]]:
    module = ".".join(Path(where).with_suffix("").parts)
    return StatementChecker(dedent(source), module, where).problems()


# --- .sql files --------------------------------------------------------------------------------

# Comments, string literals, quoted identifiers and dollar-quoted bodies: where braces are text.
_QUOTED_OR_COMMENT = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$", re.DOTALL
)
_PERCENT = re.compile(r"%%|%\((\w+)\)[sbt]|%")


def sql_file_problems(text: str, *, parameters: bool) -> list[str]:
    """What is wrong with one ``.sql`` file's text (``parameters``: run with bound parameters)."""
    found = []
    for match in _PERCENT.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match.group(0) == "%%":
            continue
        if match.group(1) is None:
            # Without parameters psycopg sends the text as it is: a percent sign is just text.
            if parameters:
                found.append(
                    f"line {line}: a lone '%' (write %% for a percent sign, %(name)s to bind a value)"
                )
        elif not parameters:
            found.append(f"line {line}: placeholder {match.group(0)} in a file run without parameters")
    code = _QUOTED_OR_COMMENT.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), text)
    for match in re.finditer(r"[{}]", code):
        line = code.count("\n", 0, match.start()) + 1
        found.append(f"line {line}: {match.group(0)!r} outside a string literal (a str.format field?)")
    return found


def sql_files() -> list[Path]:
    return sorted(INCLUDE.rglob("*.sql"))


# --- the checks on the real code ---------------------------------------------------------------


def test_every_statement_in_include_is_literal_from_a_sql_file_or_safely_composed() -> None:
    checked, problems = 0, []
    for path in sorted(INCLUDE.rglob("*.py")):
        count, found = check_source(path.read_text(), str(path.relative_to(PROJECT_ROOT)))
        checked += count
        problems += found
    assert [str(problem) for problem in problems] == []
    # The stages alone run dozens of statements: a walk that found none would prove nothing.
    assert checked >= 30


@pytest.mark.parametrize("path", sql_files(), ids=lambda path: path.name)
def test_sql_files_use_named_placeholders_only(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert sql_file_problems(text, parameters=path.parent.name != "migrations") == []


# --- the checks can fail -----------------------------------------------------------------------

PREAMBLE = """
from psycopg import sql
from sqlalchemy import select, text
from include.learning_platform.warehouse import sql as statement
"""


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('def f(cur, table):\n    cur.execute(f"SELECT * FROM {table}")', "f-string"),
        ("def f(cur, day):\n    cur.execute(\"SELECT * FROM t WHERE d = '%s'\" % day)", "%-formatting"),
        ('def f(cur, day):\n    cur.execute("SELECT * FROM t WHERE d = {}".format(day))', "str.format()"),
        ('def f(cur, day):\n    cur.execute("SELECT * FROM t WHERE d = " + day)', "concatenation"),
        ('def f(cur, day):\n    cur.executemany(statement("x") + day, [])', "concatenation"),
        ('def f(cur, t):\n    q = f"DELETE FROM {t}"\n    cur.execute(q)', "'q' may be bound"),
        ("def f(cur, query):\n    cur.execute(query)", "no caller"),
        (
            "def run(cur, q):\n    cur.execute(q)\n\ndef g(cur, t):\n    run(cur, f'DROP TABLE {t}')",
            "f-string",
        ),
        ('def f(cur, t):\n    cur.execute(sql.SQL(f"SELECT * FROM {t}"))', "not proven safe"),
        ('def f(cur, v):\n    cur.execute(sql.SQL("SELECT {}").format(v))', "format()"),
        ('def f(cur, rows):\n    with cur.copy("COPY t FROM STDIN " + rows):\n        pass', "concatenation"),
        ("def f(cur, p):\n    cur.execute(p.read_text())", "not globbed as *.sql"),
        ('def f(session, t):\n    session.execute(text(f"SELECT * FROM {t}"))', "not proven safe"),
        ('def f(session, q):\n    session.execute(select(q).where(q).union(f"{q}"))', "not proven safe"),
        (
            "def table(t):\n    return sql.SQL(t)\n\n"
            "def f(cur, t):\n    cur.execute(sql.SQL('DROP TABLE {}').format(table(t)))",
            "format()",
        ),
        (
            "def table(t):\n    if t:\n        return sql.Identifier(t)\n    return sql.SQL(t)\n\n"
            "def f(cur, t):\n    cur.execute(sql.SQL('DROP TABLE {}').format(table(t)))",
            "format()",
        ),
        (
            "from include.csv_import.warehouse import staging_name\n\n"
            "def f(cur, run):\n    cur.execute(sql.SQL('DROP TABLE {}').format(staging_name(run)))",
            "format()",
        ),
    ],
)
def test_the_statement_check_refuses_sql_built_from_values(snippet: str, expected: str) -> None:
    _, problems = check_source(PREAMBLE + snippet)
    assert len(problems) == 1
    assert expected in problems[0].what


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(cur):\n    cur.execute('SELECT 1 WHERE a = %s', (1,))",
        "def f(cur):\n    cur.execute('SELECT 1 ' 'FROM t ' + 'WHERE a = %(a)s', {'a': 1})",
        "def f(cur, p):\n    cur.execute(statement('select_raw'), p)",
        "def f(cur, t):\n    cur.execute(sql.SQL('DROP TABLE {}').format(sql.Identifier(t)))",
        "def f(cur, cols):\n    names = sql.SQL(', ').join(sql.Identifier(c) for c in cols)\n"
        "    cur.execute(sql.SQL('SELECT {}').format(names))",
        "def f(cur, d):\n    for path in sorted(d.glob('*.sql')):\n"
        "        text = path.read_text()\n        cur.execute(text)",
        "def run(cur, q):\n    cur.execute(q)\n\ndef g(cur):\n    run(cur, statement('delete_raw'))",
        "import shutil\n\ndef f(a, b):\n    shutil.copy(a, b)",
        "def table(t):\n    return sql.Identifier('s', t)\n\n"
        "def f(cur, t):\n    cur.execute(sql.SQL('DROP TABLE {}').format(table(t)))",
        "from include.csv_import.warehouse import staging_table\n\n"
        "def f(cur, run):\n    cur.execute(sql.SQL('DROP TABLE {}').format(staging_table(run)))",
        "def f(session, model, v):\n    query = select(model).where(model.a == v)\n"
        "    if v:\n        query = query.where(model.b == v)\n"
        "    session.execute(query.order_by(model.a).limit(5))",
    ],
)
def test_the_statement_check_accepts_literals_files_and_quoted_compositions(snippet: str) -> None:
    assert check_source(PREAMBLE + snippet)[1] == []


@pytest.mark.parametrize(
    ("text", "parameters", "expected"),
    [
        ("SELECT * FROM t WHERE d = {day}", True, "'{' outside a string literal"),
        ("SELECT * FROM t WHERE d = '%s'", True, "lone '%'"),
        ("SELECT * FROM t WHERE name LIKE 'a%'", True, "lone '%'"),
        ("-- 5 % of the rows\nSELECT %(a)s", True, "line 1: a lone '%'"),
        ("CREATE TABLE t (d date DEFAULT %(day)s)", False, "run without parameters"),
    ],
)
def test_the_sql_file_check_refuses_formatting_markers(text: str, parameters: bool, expected: str) -> None:
    problems = sql_file_problems(text, parameters=parameters)
    assert problems
    assert expected in problems[0]


def test_the_sql_file_check_allows_arrays_json_and_escaped_percent() -> None:
    text = (
        "-- {not a field}\nSELECT '{}'::text[], $$ {x} $$, \"we{ird}\"\n"
        "WHERE a = %(start)s AND b LIKE 'x%%' AND c = %(flag)b"
    )
    assert sql_file_problems(text, parameters=True) == []
