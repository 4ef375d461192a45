"""The documentation site builds with ``mkdocs build --strict``: no warning, no broken link.

The docs extra (mkdocs-material, mkdocstrings[python], mkdocs-jupyter) is part of the test extra.
The notebooks are rendered, never executed. The second test checks that the strict build still
catches broken links after docs/hooks.py rewrites links for the site.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _build(project: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml"), "-d", str(site)],
        cwd=project, capture_output=True, text=True, timeout=300, env=env,
    )


def test_site_builds_strict(tmp_path):
    out = _build(ROOT, tmp_path / "site")
    assert out.returncode == 0, out.stdout + out.stderr
    site = tmp_path / "site"
    assert (site / "index.html").is_file()  # the README
    assert (site / "notebooks" / "01_quickstart" / "index.html").is_file()
    assert "ScoreLikelihood" in (site / "api" / "likelihood" / "index.html").read_text()


def _mini_project(tmp_path: Path, page: str, notebook_link: str = "../docs/page.md") -> Path:
    """A tiny project using the repository's hooks: README, one page, one notebook, one data file."""
    proj = tmp_path / "proj"
    (proj / "docs").mkdir(parents=True)
    (proj / "notebooks").mkdir()
    (proj / "results").mkdir()
    shutil.copy(ROOT / "docs" / "hooks.py", proj / "docs" / "hooks.py")
    (proj / "mkdocs.yml").write_text(
        "site_name: t\ndocs_dir: docs\nexclude_docs: |\n  hooks.py\nhooks:\n  - docs/hooks.py\n"
        "plugins:\n  - mkdocs-jupyter:\n      execute: false\n      cache: false\n"
        "nav:\n  - index.md\n  - page.md\n  - notebooks/nb.ipynb\n"
    )
    (proj / "README.md").write_text("# Home\n\nSee [the page](docs/page.md).\n")
    (proj / "docs" / "page.md").write_text(page)
    (proj / "results" / "r.json").write_text("{}")
    cell = {"cell_type": "markdown", "metadata": {}, "source": [f"# NB\n\n[page]({notebook_link})\n"]}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (proj / "notebooks" / "nb.ipynb").write_text(json.dumps(nb))
    return proj


def test_hooks_keep_links_checked(tmp_path):
    # A link to a repository file outside the site becomes code text; the build stays strict.
    ok = _mini_project(tmp_path / "ok", "# Page\n\nResults in [r.json](../results/r.json), [home](../README.md).\n")
    out = _build(ok, tmp_path / "ok_site")
    assert out.returncode == 0, out.stdout + out.stderr
    html = (tmp_path / "ok_site" / "page" / "index.html").read_text()
    assert "<code>results/r.json</code>" in html and 'href="../"' in html
    assert 'href="page/"' in (tmp_path / "ok_site" / "index.html").read_text()
    assert 'href="../../page/"' in (tmp_path / "ok_site" / "notebooks" / "nb" / "index.html").read_text()

    # A link to a file that does not exist fails the build, in a page and in a notebook.
    bad = _mini_project(tmp_path / "bad", "# Page\n\n[gone](../results/missing.json)\n")
    out = _build(bad, tmp_path / "bad_site")
    assert out.returncode != 0 and "missing.json" in out.stdout + out.stderr
    bad_nb = _mini_project(tmp_path / "bad_nb", "# Page\n", notebook_link="../docs/missing.md")
    out = _build(bad_nb, tmp_path / "bad_nb_site")
    assert out.returncode != 0 and "missing.md" in out.stdout + out.stderr
