"""The README and docs/: links resolve, the README stays short, ``make bench`` rewrites only its
results block, and the files the docs cite exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import run_all

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^ *(```|~~~).*?^ *\1 *$", flags=re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", flags=re.M)
CITED_PATH = re.compile(
    r"(?<![\w$./-])((?:mlops_assets|mlops_assets_tests|benchmarks|deploy)/[\w./-]*)"
)
GENERATED = ("benchmarks/results/",)  # written by `make bench`, not kept in git


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where links do not render."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text, repeated headings numbered as GitHub does."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = github_anchor(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(text: str, source: Path) -> list[str]:
    """The relative links of ``text`` (as if it were the file ``source``) that lead nowhere:
    a missing file, or a ``#anchor`` that is no heading of its target."""
    broken = []
    for target in LINK.findall(_prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (source.parent / file_part).resolve() if file_part else source
        if file_part and not path.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and path.suffix == ".md":
            page = text if path == source else path.read_text()
            if anchor not in anchors(page):
                broken.append(f"{target}: no heading #{anchor} in {path.name}")
    return broken


@pytest.mark.parametrize("markdown", MARKDOWN, ids=lambda path: path.name)
def test_every_relative_link_resolves(markdown: Path) -> None:
    """Each relative link of the README and of docs/ leads to a file, and to a heading."""
    assert broken_links(markdown.read_text(), markdown) == []


def test_the_link_check_finds_broken_links() -> None:
    """Positive control: a missing file and a missing heading are reported; a link in a code
    block, an external link and a good anchor are not."""
    text = "\n".join(
        [
            "# A page",
            "",
            "See [nowhere](no-such-file.md), [a gap](pipeline.md#no-such-heading),",
            "[here](#a-page), [partitions](pipeline.md#partitions), <https://example.com>",
            "and [the web](https://example.com/missing.md).",
            "",
            "```",
            "[inside a fence](also-missing.md)",
            "```",
        ]
    )
    broken = broken_links(text, DOCS / "control.md")
    assert len(broken) == 2, broken
    assert broken[0].startswith("no-such-file.md: no file")
    assert broken[1] == "pipeline.md#no-such-heading: no heading #no-such-heading in pipeline.md"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Backtest, calibration and threshold", "backtest-calibration-and-threshold"),
        ("At 10x and 30x the data", "at-10x-and-30x-the-data"),
        (
            "Set up (a fresh machine needs only `python3` and `make`)",
            "set-up-a-fresh-machine-needs-only-python3-and-make",
        ),
        ("The model's lifecycle", "the-models-lifecycle"),
        ("`raw_flights` and [links](x.md)", "raw_flights-and-links"),
    ],
)
def test_anchors_are_computed_as_github_does(heading: str, anchor: str) -> None:
    """Headings become GitHub's anchors, code and link markup dropped."""
    assert github_anchor(heading) == anchor


def test_repeated_headings_get_numbered_anchors() -> None:
    """A second heading of the same text gets ``-1``, as on GitHub."""
    assert anchors("## Notes\n\n## Notes\n") == {"notes", "notes-1"}


def test_readme_is_short_and_links_every_doc() -> None:
    """The README is the front door: at most 250 lines, and a link to each file of docs/."""
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {target.partition("#")[0] for target in LINK.findall(_prose(text))}
    assert {f"docs/{doc.name}" for doc in DOCS.glob("*.md")} <= linked


def test_performance_doc_holds_one_results_block() -> None:
    """``make bench`` finds exactly one results block in docs/performance.md, and only there."""
    text = run_all.RESULTS.read_text()
    assert run_all.RESULTS == DOCS / "performance.md"
    assert text.count(run_all.START) == text.count(run_all.END) == 1
    assert text.index(run_all.START) < text.index(run_all.END)
    for other in MARKDOWN:
        if other != run_all.RESULTS:
            assert run_all.START not in other.read_text(), other


def test_write_results_replaces_only_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer swaps the block's contents in a copy and leaves every byte around it."""
    original = run_all.RESULTS.read_text()
    before, rest = original.split(run_all.START)
    _, after = rest.split(run_all.END)
    copy = tmp_path / "performance.md"
    copy.write_text(original)
    monkeypatch.setattr(
        run_all, "render", lambda figures: f"| figure | value |\n| x | {figures['x']} |"
    )

    run_all.write_results({"x": 1}, path=copy)

    expected = f"{before}{run_all.START}\n| figure | value |\n| x | 1 |\n{run_all.END}{after}"
    assert copy.read_text() == expected
    assert run_all.RESULTS.read_text() == original


@pytest.mark.parametrize("blocks", [0, 2])
def test_write_results_refuses_a_file_without_exactly_one_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocks: int
) -> None:
    """No block, or two, is an error that leaves the file as it was."""
    text = "# Performance\n" + f"{run_all.START}\nold\n{run_all.END}\n" * blocks
    copy = tmp_path / "performance.md"
    copy.write_text(text)
    monkeypatch.setattr(run_all, "render", lambda figures: "new")

    with pytest.raises(ValueError, match=f"holds {blocks} results blocks"):
        run_all.write_results({}, path=copy)
    assert copy.read_text() == text


@pytest.mark.parametrize("markdown", MARKDOWN, ids=lambda path: path.name)
def test_cited_repository_paths_exist(markdown: Path) -> None:
    """Every path under the package, the tests, benchmarks/ or deploy/ that the text names
    exists, so a moved module shows up here rather than in a reader's search."""
    missing = sorted(
        cited
        for cited in {m.rstrip(".,;:") for m in CITED_PATH.findall(markdown.read_text())}
        if not cited.startswith(GENERATED) and not (ROOT / cited).exists()
    )
    assert missing == []
