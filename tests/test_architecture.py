"""The house's one rule, kept by a test: imports only go down, and each vocabulary has one definition.

The packages stand on floors (``docs/architecture.md``); a module may import from a lower
floor only, never from its own floor's neighbour or from above. The import graph is read
from the source with ``ast`` (function-local imports count too: they run back up all the
same). Role names, incident categories and statuses are written out once, in
``core/roles.py`` and ``core/vocabulary.py``; a literal list of them anywhere else, or an
SQL string naming several, is a copy that will drift.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from core import roles, vocabulary

ROOT = Path(__file__).resolve().parent.parent

# bottom first; packages on one floor may not import each other
FLOORS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("gis",),
    ("layers",),
    ("vision", "data"),
    ("api",),
    ("host",),
)
VOCABULARY_HOMES = {"core/roles.py", "core/vocabulary.py"}
VOCABULARIES = {
    "role": set(roles.ROLES) | {roles.ANONYMOUS_ROLE},
    "category": set(vocabulary.CATEGORY_CODES),
    "status": set(vocabulary.STATUS_CODES),
    "case state": set(vocabulary.CASE_STATE_CODES),
}


def floor_of(floors=FLOORS) -> dict[str, int]:
    return {package: level for level, packages in enumerate(floors) for package in packages}


def source_files(root: Path, packages) -> list[Path]:
    """The project's Python files of ``packages``, migrations left out (they are frozen history)."""
    return sorted(path for package in packages for path in (root / package).rglob("*.py")
                  if "migrations" not in path.parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def package_edges(root: Path, floors=FLOORS) -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the places, for imports between the project's packages."""
    known = floor_of(floors)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in source_files(root, known):
        source = path.relative_to(root).parts[0]
        for line, module in imported_modules(path, root):
            target = module.split(".")[0]
            if target in known and target != source:
                edges[(source, target)].append(f"{path.relative_to(root)}:{line} imports {module}")
    return edges


def upward_imports(root: Path, floors=FLOORS) -> list[str]:
    """Every import of a package on the same floor or above: the one rule broken."""
    level = floor_of(floors)
    return [place for (source, target), places in sorted(package_edges(root, floors).items())
            if level[target] >= level[source] for place in places]


def package_circles(root: Path, floors=FLOORS) -> list[list[str]]:
    """Circles among the packages (each as the packages on it), found by depth-first search."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in package_edges(root, floors):
        graph[source].add(target)
    circles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return circles


def vocabulary_copies(root: Path, packages) -> list[str]:
    """Literal lists of roles, categories or statuses, and SQL naming several of them, outside their home."""
    copies = []
    for path in source_files(root, packages):
        relative = path.relative_to(root).as_posix()
        if relative in VOCABULARY_HOMES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for kind, words in _vocabulary_in(node):
                copies.append(f"{relative}:{node.lineno}: {_PLURAL[kind]} {sorted(words)} written out; "
                              f"import them from core.{'roles' if kind == 'role' else 'vocabulary'}")
    return sorted(copies, key=lambda copy: (copy.split(":")[0], int(copy.split(":")[1])))


_PLURAL = {"role": "roles", "category": "categories", "status": "statuses", "case state": "case states"}


def _vocabulary_in(node: ast.AST):
    if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Call)):
        items = node.args if isinstance(node, ast.Call) else node.elts  # a call: f("new", "closed")
        words = [e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(words) >= 2 and len(words) == len(items):
            for kind, vocabulary_words in VOCABULARIES.items():
                if set(words) <= vocabulary_words:
                    yield kind, set(words)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        for kind, vocabulary_words in VOCABULARIES.items():
            quoted = {word for word in vocabulary_words if f"'{word}'" in node.value}
            if len(quoted) >= 2:
                yield kind, quoted


# -- the house itself -------------------------------------------------------------------


def test_imports_only_go_down():
    broken = upward_imports(ROOT)
    assert not broken, "imports that run back up or sideways (see docs/architecture.md):\n" + "\n".join(broken)


def test_no_circle_among_the_packages():
    assert package_circles(ROOT) == []


def test_every_package_of_the_project_stands_on_a_floor():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(floor_of()), "add a new package to FLOORS here and to docs/architecture.md"


def test_the_bottom_imports_nothing_of_the_project():
    assert not [key for key in package_edges(ROOT) if key[0] == "core"]


def test_roles_categories_and_statuses_are_written_out_once():
    copies = vocabulary_copies(ROOT, floor_of())
    assert not copies, "\n".join(copies)


# -- the checks can fail ------------------------------------------------------------------


@pytest.fixture
def small_house(tmp_path: Path) -> Path:
    for package, body in {
        "core": "import os\n",
        "gis": "from core import settings\n",
        "layers": "def later():\n    from api import views\n",  # a lazy upward import
        "api": "from layers import catalogue\nfrom . import views\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(body)
    return tmp_path


def test_an_upward_import_is_found_even_inside_a_function(small_house):
    floors = (("core",), ("gis",), ("layers",), ("api",))
    assert upward_imports(small_house, floors) == ["layers/__init__.py:2 imports api"]
    assert package_circles(small_house, floors) == [["api", "layers", "api"]]


def test_neighbours_on_one_floor_may_not_import_each_other(small_house):
    (small_house / "gis" / "__init__.py").write_text("from layers import x\n")
    floors = (("core",), ("gis", "layers"), ("api",))
    assert "gis/__init__.py:1 imports layers" in upward_imports(small_house, floors)


def test_a_literal_copy_of_a_vocabulary_is_found(tmp_path: Path):
    (tmp_path / "gis").mkdir()
    (tmp_path / "gis" / "x.py").write_text(
        'STAFF = frozenset({"administrator", "commander"})\n'
        "SQL = \"SELECT 1 WHERE status IN ('new', 'dispatched')\"\n"
        'ONE = "falling_object"\n'  # one word is a reference, not a copy
        'CODES = _words("new", "closed")\n'
    )
    copies = vocabulary_copies(tmp_path, ["gis"])
    assert [c.split(":")[1] for c in copies] == ["1", "2", "4"]
    assert "roles ['administrator', 'commander']" in copies[0] and "statuses" in copies[1]
