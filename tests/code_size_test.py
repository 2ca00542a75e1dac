"""The package's size limits: no function over 50 lines of code and no
class over 150, docstrings, comments and blank lines excluded (DESIGN.md,
"Conventions"). Split by content what comes over."""

import ast
import pathlib
import textwrap

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_mixup"
FUNCTION_LIMIT = 50
CLASS_LIMIT = 150

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _docstring_lines(node):
    """The line numbers of the docstrings of `node` and of everything
    defined in it."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, (*_DEFINITIONS, ast.Module)) and sub.body:
            first = sub.body[0]
            if isinstance(first, ast.Expr) and isinstance(
                getattr(first.value, "value", None), str
            ):
                found.update(range(first.lineno, first.end_lineno + 1))
    return found


def code_lines(node, lines):
    """How many lines of `node` (from its `def` or `class` line, decorators
    left out) hold code: not blank, not only a comment, not a docstring."""
    skipped = _docstring_lines(node)
    return sum(
        1
        for number in range(node.lineno, node.end_lineno + 1)
        if number not in skipped
        and lines[number - 1].strip()
        and not lines[number - 1].strip().startswith("#")
    )


def oversized(source, name="<source>"):
    """`"name:line kind qualname: N lines of code (limit L)"` for each
    function or class of `source` over its limit."""
    lines = source.splitlines()
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _DEFINITIONS):
                visit(child, prefix)
                continue
            qualname = prefix + child.name
            is_class = isinstance(child, ast.ClassDef)
            limit = CLASS_LIMIT if is_class else FUNCTION_LIMIT
            size = code_lines(child, lines)
            if size > limit:
                kind = "class" if is_class else "function"
                found.append(
                    f"{name}:{child.lineno} {kind} {qualname}: {size} lines "
                    f"of code (limit {limit})"
                )
            visit(child, qualname + ".")

    visit(ast.parse(source), "")
    return found


def test_the_counter_leaves_out_docstrings_comments_and_blank_lines():
    source = textwrap.dedent(
        '''
        @decorator
        def outer(a):
            """A docstring
            of three lines.
            """
            # a comment

            def inner():
                """Nested docstring."""
                return 1

            text = """a string
            that is not a docstring"""
            return a + inner()  # a trailing comment
        '''
    )
    tree = ast.parse(source)
    outer = tree.body[0]
    # def outer, def inner, return 1, text = (2 lines), return: 6.
    assert code_lines(outer, source.splitlines()) == 6
    assert code_lines(outer.body[2], source.splitlines()) == 2


def test_the_limits_name_what_comes_over():
    body = "".join(f"        x{i} = {i}\n" for i in range(FUNCTION_LIMIT))
    source = "class C:\n    def f(self):\n" + body
    found = oversized(source, "m.py")
    assert found == [
        f"m.py:2 function C.f: {FUNCTION_LIMIT + 1} lines of code (limit "
        f"{FUNCTION_LIMIT})"
    ]
    exactly = "def f():\n" + "".join(
        f"    x{i} = {i}\n" for i in range(FUNCTION_LIMIT - 1)
    )
    assert oversized(exactly) == []


def test_no_function_or_class_of_the_package_is_over_its_limit():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        found += oversized(path.read_text(encoding="utf-8"), name)
    assert not found, "Split by content:\n" + "\n".join(found)
