"""Every relative link in the project's Markdown documentation points at something that exists.

Covers README.md, docs/**/*.md, results/README.md, the model READMEs, and the READMEs of
notebooks/, tools/ and datasets/. A link is `[text](target)`, `![alt](target)` or a reference
definition `[name]: target`; links to other sites (http, https, mailto) are not followed, and
links inside code (fenced or indented blocks, inline code spans) are not links. A target must
resolve to a file or folder inside the repository (so `../shared/...` fails), and a `#anchor`
on a Markdown target must name one of its headings (GitHub's heading ids). Offline, text only.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC_GLOBS = (
    "README.md",
    "docs/**/*.md",
    "results/README.md",
    "attn_ocgan/models/*/README.md",
    "notebooks/README.md",
    "tools/README.md",
    "datasets/README.md",
)
INLINE_LINK = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def documentation_files(root: Path = REPO) -> list[Path]:
    files = {path for pattern in DOC_GLOBS for path in root.glob(pattern) if path.is_file()}
    return sorted(files)


def _prose_lines(text: str):
    """(line number, line) of the lines outside fenced and indented code blocks."""
    in_fence = False
    previous_blank = True
    in_indented_code = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        blank = not line.strip()
        # An indented code block starts after a blank line; list continuations are indented less.
        if line.startswith(("    ", "\t")) and (previous_blank or in_indented_code):
            in_indented_code = True
            previous_blank = blank
            continue
        if not blank:
            in_indented_code = False
        previous_blank = blank
        yield number, line


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every relative link in a Markdown text."""
    links = []
    for number, line in _prose_lines(text):
        line = CODE_SPAN.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
        for target in targets:
            target = target.strip("<>")
            if target and not target.lower().startswith(EXTERNAL):
                links.append((number, target))
    return links


def heading_anchor(title: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link's text stays, its target goes
    title = unicodedata.normalize("NFC", title).strip().lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            anchor = heading_anchor(match.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    for match in re.finditer(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text(encoding="utf-8")):
        anchors.add(match.group(1))
    return anchors


def broken_links(root: Path = REPO) -> list[str]:
    """'file:line: target (why)' for every relative link that does not resolve."""
    broken = []
    root = root.resolve()
    for document in documentation_files(root):
        for number, target in relative_links(document.read_text(encoding="utf-8")):
            where = f"{document.relative_to(root)}:{number}: {target}"
            path_part, _, anchor = unquote(target).partition("#")
            path_part = path_part.split("?", 1)[0]
            resolved = (document.parent / path_part).resolve() if path_part else document
            if resolved != root and root not in resolved.parents:
                broken.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                broken.append(f"{where} (no such file or folder)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors_of(resolved):
                broken.append(f"{where} (no heading with this anchor in {resolved.relative_to(root)})")
    return broken


def test_the_documentation_files_are_found():
    found = {path.relative_to(REPO).as_posix() for path in documentation_files()}
    assert {"README.md", "results/README.md", "docs/README.md"} <= found
    assert any(name.startswith("attn_ocgan/models/") for name in found)


def test_every_relative_link_in_the_documentation_resolves():
    broken = broken_links()
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_a_broken_link_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("# A table\n\n## Mean AUC (all classes)\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "[ok](results/table.md#mean-auc-all-classes) [folder](docs/) [web](https://example.org/x)\n"
        "[missing](results/nothing.md) ![figure](results/nothing.png)\n"
        "[bad anchor](results/table.md#median) [outside](../elsewhere/README.md)\n"
        "`[in code](results/nothing.md)`\n\n"
        "    [indented code](results/nothing.md)\n\n"
        "```\n[fenced](results/nothing.md)\n```\n"
        "[reference]: results/gone.csv\n",
        encoding="utf-8",
    )
    broken = broken_links(tmp_path)
    assert [line.split(" (")[0] for line in broken] == [
        "README.md:2: results/nothing.md",
        "README.md:2: results/nothing.png",
        "README.md:3: results/table.md#median",
        "README.md:3: ../elsewhere/README.md",
        "README.md:11: results/gone.csv",
    ]


@pytest.mark.parametrize(
    "title, anchor",
    [
        ("How the paper's CIFAR-10 numbers were most likely chosen", "how-the-papers-cifar-10-numbers-were-most-likely-chosen"),
        ("Epoch selection (`--select-epoch validation`, train and protocol)", "epoch-selection---select-epoch-validation-train-and-protocol"),
        ("GANomaly against anomalib", "ganomaly-against-anomalib"),
    ],
)
def test_heading_anchors_follow_github(title, anchor):
    assert heading_anchor(title) == anchor
