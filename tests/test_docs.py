"""The README and docs/ against the repository: no relative link is dead, and every table of settings agrees
with `python train_grpo.py --help`, the one source of names, types and defaults."""

import ast
import re
import subprocess
import sys

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
SETTINGS_HEADER = "| setting | default | meaning |"  # how a table of settings starts, wherever it is
HELP_LINE = re.compile(r"^  (--[a-z0-9-]+)  (.+); default (.+)$")


def prose(path) -> str:
    """The page without its fenced code blocks: a link in a code block is an example, not a link."""
    return FENCE.sub("", path.read_text())


def anchors(path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to hyphens, and a
    repeated heading numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def dead_links(path) -> list[str]:
    dead = []
    for target in LINK.findall(prose(path)):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...: not this repository's to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            dead.append(f"{target} (no heading #{anchor} in {linked.name})")
    return dead


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_relative_link_is_dead(path):
    dead = dead_links(path)
    assert not dead, f"{path.relative_to(ROOT)}: dead links {dead}"


def test_the_link_check_sees_a_dead_link(tmp_path):
    """The check above can fail: a missing file, a missing heading, a link inside a code block ignored."""
    (tmp_path / "b.md").write_text("# Title: here\n\n## Two words\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#title-here) [ok](b.md#two-words) [gone](c.md) [no](b.md#three)\n```\n[x](d.md)\n```\n")
    assert dead_links(page) == ["c.md (no such file)", "b.md#three (no heading #three in b.md)"]


def help_defaults() -> dict[str, str]:
    """{--flag: default as --help prints it (a Python literal)} from the script's own --help."""
    shown = subprocess.run([sys.executable, "train_grpo.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    return {m[1]: m[3] for m in (HELP_LINE.match(line) for line in shown.stdout.splitlines()) if m}


def documented_settings(path) -> list[tuple[str, str]]:
    """(flag, default cell) for each row of each table of settings in the page."""
    rows, in_table = [], False
    for line in path.read_text().splitlines():
        if line.strip() == SETTINGS_HEADER:
            in_table = True
        elif in_table and not line.startswith("|"):
            in_table = False
        elif in_table:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            flag = re.fullmatch(r"`(--[a-z0-9-]+)`", cells[0])
            if flag:
                rows.append((flag[1], cells[1].strip("`")))
    return rows


def test_every_documented_setting_matches_help():
    shown = help_defaults()
    assert len(shown) > 50, "could not read the settings from --help"
    tables = {path.relative_to(ROOT): documented_settings(path) for path in PAGES}
    assert tables[ROOT.joinpath("README.md").relative_to(ROOT)], "the README's table of the usual settings is gone"
    wrong = []
    for page, rows in tables.items():
        for flag, default in rows:
            if flag not in shown:
                wrong.append(f"{page}: {flag} is not a setting")
            elif ast.literal_eval(default) != ast.literal_eval(shown[flag]):
                wrong.append(f"{page}: {flag} default {default}, --help says {shown[flag]}")
    assert not wrong, wrong
