"""The package's shape, as docs/architecture.md draws it: no import cycle among the project's modules, each room
importing only the rooms its table allows, and no module over 400 lines without a stated reason.

Imports are read from the source (ast), at module level and inside functions alike: a function-level import
still ties the two modules together, so hiding a cycle in a function does not pass. What is not counted is the
implicit import of a module's parent package (importing edge_sr.data.datasets runs edge_sr/data/__init__.py
first), since every package that re-exports its modules would otherwise be a cycle with each of them.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge_sr", "models_tf", "converters")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 400
LONG_REASON = re.compile(rf"^Longer than {MAX_LINES} lines because \S", re.MULTILINE)


def module_files():
    """{dotted module name: path} of every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = module_files()


def imported_modules(name, path):
    """The project's modules that module `name` (at `path`) imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module; `from module import name`, the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def allowed_imports():
    """{room: the rooms it may import} from the table in docs/architecture.md ("every room" for the fronts)."""
    rows = re.findall(r"^\| (\w+) \|[^|]+\|([^|]*)\|$", ARCHITECTURE.read_text(), flags=re.MULTILINE)
    table = {
        room: {word.strip() for word in rooms.split(",") if word.strip()} for room, rooms in rows if room != "room"
    }
    everything = set(table)
    return {room: everything if rooms == {"every room"} else rooms for room, rooms in table.items()}


def is_front(path):
    """A `python -m edge_sr.X` command: a module with a main() run under `if __name__ == "__main__"`."""
    source = path.read_text()
    return path.name == "__main__.py" or ("\ndef main(" in source and '\nif __name__ == "__main__":' in source)


def room_of(name):
    """The room of an edge_sr module: its subpackage; a top-level module is a front or the base."""
    parts = name.split(".")
    if len(parts) == 1:
        return "base"  # edge_sr/__init__.py
    if parts[-1] == "__main__":
        return "fronts"
    if len(parts) == 2 and MODULES[name].name != "__init__.py":
        return "fronts" if is_front(MODULES[name]) else "base"
    return parts[1]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_room_is_in_the_table():
    rooms = {room_of(name) for name in MODULES if name.startswith("edge_sr.")}
    assert rooms == set(allowed_imports()), "docs/architecture.md's table and the folders of edge_sr/ differ"


def test_each_room_imports_only_what_the_table_allows():
    allowed = allowed_imports()
    wrong = [
        f"{name} ({room_of(name)}) imports {target} ({room_of(target)})"
        for name, targets in sorted(GRAPH.items())
        if name.startswith("edge_sr.")
        for target in sorted(targets)
        if target.startswith("edge_sr.")
        and room_of(target) != room_of(name)
        and room_of(target) not in allowed[room_of(name)]
    ]
    assert wrong == [], "imports docs/architecture.md does not allow:\n" + "\n".join(wrong)


def test_modules_are_short_or_say_why():
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in MODULES.values()
        if (lines := path.read_text().count("\n")) > MAX_LINES
        and not LONG_REASON.search(ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert long == [], (
        f"modules over {MAX_LINES} lines without a docstring line 'Longer than {MAX_LINES} lines because ...':\n"
        + "\n".join(long)
    )
