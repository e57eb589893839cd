"""The documents a newcomer opens first: the README's start-here table and contents (every
link lands on a heading or a file), its flow diagram, the licence and the changelog."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date

import pytest

from tests.live import ROOT

README = (ROOT / "README.md").read_text()
ROLES = ("Supplier's front-end developer", "Manufacturer's portal team", "SSC analyst", "operator")
CHANGELOG_SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[str]:
    outside_code = re.sub(r"^```.*?^```$", "", text, flags=re.M | re.S)
    return [line[3:] for line in outside_code.splitlines() if line.startswith("## ")]


def section(name: str) -> str:
    return README.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_opens_with_where_each_reader_starts():
    assert headings(README)[:2] == ["Start here", "Contents"]
    rows = [line for line in section("Start here").splitlines() if line.startswith("| a")]
    for role in ROLES:
        assert any(role in row for row in rows), f"no start-here row for {role}"
    assert all(row.count("](") >= 2 for row in rows), "each row sends its reader somewhere"


def test_the_contents_list_every_section_in_order():
    listed = re.findall(r"^- \[(.+)\]\(#([\w-]+)\)$", section("Contents"), re.M)
    others = [h for h in headings(README) if h != "Contents"]
    assert [name for name, _ in listed] == others, "README contents and headings differ"
    assert [anchor for _, anchor in listed] == [slug(h) for h in others]


def test_every_link_in_the_readme_lands():
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", README, re.M)}
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    assert len(links) > 30
    for link in links:
        if link.startswith("#"):
            assert link[1:] in anchors, f"README links to {link}, no such heading"
        elif not link.startswith(("http://", "https://", "mailto:")):
            assert (ROOT / link.split("#")[0]).exists(), f"README links to {link}, no such file"


def test_architecture_is_linked_and_both_draw_the_flows():
    assert "](ARCHITECTURE.md)" in section("Start here")
    assert "](ARCHITECTURE.md)" in section("How a request and a write flow")
    (diagram,) = re.findall(r"^```mermaid\n(.*?)^```$", README, re.M | re.S)
    assert diagram.startswith("sequenceDiagram\n")
    declared = set(re.findall(r"^\s*participant (\w+) as ", diagram, re.M))
    used = set(re.findall(r"^\s*(\w+)-(?:>>|->>|-->>|--)(\w+):", diagram, re.M))
    assert used and {name for pair in used for name in pair} <= declared
    for folder in re.findall(r"\((\w+)/\)", diagram):
        assert (ROOT / folder).is_dir(), folder
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    (flows,) = re.findall(r"^```mermaid\n(.*?)^```$", architecture, re.M | re.S)
    assert 'subgraph read["A read"]' in flows and 'subgraph write["A write"]' in flows
    for path in re.findall(r"[\w/]+\.py", flows):
        assert (ROOT / path).exists(), f"ARCHITECTURE.md's diagram names {path}, which is gone"


def test_the_licence_is_apache_2_everywhere_it_is_said():
    licence = (ROOT / "LICENSE").read_text()
    assert licence.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in licence
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    npm = json.loads((ROOT / "tests" / "clients" / "package.json").read_text())
    assert npm["license"] == "Apache-2.0"


def test_the_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n") and "keepachangelog.com" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert [name for name, _ in releases[:1]] == ["Unreleased"]
    waves = releases[1:]
    assert [name for name, _ in waves] == [f"Wave {n}" for n in range(len(waves), 0, -1)]
    assert len(waves) >= 3
    days = [date.fromisoformat(day) for _, day in waves]
    assert days == sorted(days, reverse=True), "newest first"
    for kind in re.findall(r"^### (.+)$", text, re.M):
        assert kind in CHANGELOG_SECTIONS, kind
    assert len(headings(text)) == len(releases)


@pytest.mark.parametrize("name", ["ARCHITECTURE.md", "SECURITY.md", "CHANGELOG.md", "LICENSE"])
def test_the_documents_the_readme_names_exist(name):
    assert (ROOT / name).is_file() and f"]({name})" in README
