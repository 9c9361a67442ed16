"""The README stays a front page, and every link, `python -m edge_sr.X` command and `make` target in README.md and
docs/ points at something that exists."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 250

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"python -m (edge_sr(?:\.\w+)+)(?: ([a-z][a-z0-9_-]*)(?=[\s`)]|$))?", re.MULTILINE)
MAKE_TARGET = re.compile(r"(?:^|`)make ([a-z][\w-]*)", re.MULTILINE)


def prose(text):
    """The text outside fenced code blocks (links there are examples, not links)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def slug(heading):
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page):
    found, seen = set(), {}
    for heading in re.findall(r"^#+ (.+)$", prose(page.read_text()), flags=re.MULTILINE):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links():
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if not re.match(r"[a-z]+:", target):
                yield page, target


def test_readme_is_a_front_page():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the depth to docs/"


def link_id(value):
    return str(value.relative_to(ROOT)) if isinstance(value, Path) else value


@pytest.mark.parametrize(("page", "target"), list(relative_links()), ids=link_id)
def test_relative_links_point_to_existing_files(page, target):
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{page.relative_to(ROOT)} links to {target}: no such heading"


def commands():
    found = set()
    for page in PAGES:
        for module, word in COMMAND.findall(page.read_text()):
            found.add((module, word))
    return sorted(found)


@pytest.mark.parametrize(("module", "word"), commands(), ids=lambda value: value or "-")
def test_documented_commands_exist_and_take_help(module, word, capsys):
    """Each documented `python -m edge_sr.X [word]` names a module whose parser takes `[word] --help` (word: the
    subcommand where the parser has them; a positional argument elsewhere, which --help does not need)."""
    argv = [word, "--help"] if word else ["--help"]
    try:
        cli = importlib.import_module(module)
    except ModuleNotFoundError as error:
        pytest.fail(f"`python -m {module}` is documented, but {module} cannot be imported: {error}")
    entry = getattr(cli, "parse_args", None) or getattr(cli, "main", None)
    if entry is None:  # a package or a module without an argv entry point: ask it as a user would
        result = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        return
    with pytest.raises(SystemExit) as exit_info:
        entry(argv)
    assert exit_info.value.code == 0, f"`python -m {module} {' '.join(argv)}` failed: {capsys.readouterr().err}"
    assert "usage:" in capsys.readouterr().out


def test_make_targets_named_in_the_docs_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    named = {target for page in PAGES for target in MAKE_TARGET.findall(page.read_text())}
    assert {"demo", "test"} <= named
    assert named <= targets, f"make targets named in README.md or docs/ but not in the Makefile: {named - targets}"
