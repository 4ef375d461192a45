"""MkDocs hooks for the numpyro-slic site (mkdocs.yml: ``hooks``).

- The README is the home page (``index.md``) and ``notebooks/*.ipynb`` are pages under
  ``notebooks/``, read from where they live in the repository (no copies).
- Relative links are written for the repository (GitHub and ``../shared/hooks/before-stop``
  check them there). Each is resolved against its file's place in the repository: a link to a
  file that is in the site is re-pointed at its page (README's ``docs/likelihood.md`` ->
  ``likelihood.md``); a link to a repository file that is not in the site (a benchmark result, a
  script) becomes code text naming that path; a link to nothing is left alone, so
  ``mkdocs build --strict`` fails on it (notebook links, rendered by mkdocs-jupyter as HTML, are
  checked here and fail the strict build too).
"""

from __future__ import annotations

import glob
import html
import logging
import os
import posixpath
import re

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.numpyro_slic")

_MD_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)\)")
_HREF = re.compile(r'(href|src)="([^"]+)"')
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _root(config) -> str:
    return os.path.dirname(os.path.abspath(config.config_file_path))


@event_priority(100)  # before mkdocs-jupyter's on_files wraps the notebooks
def on_files(files: Files, config) -> Files:
    root = _root(config)
    files.append(File.generated(config, "index.md", abs_src_path=os.path.join(root, "README.md")))
    for nb in sorted(glob.glob(os.path.join(root, "notebooks", "*.ipynb"))):
        # a plain File rooted at the repository: mkdocs-jupyter's wrapper loses a generated
        # file's abs_src_path
        src_uri = f"notebooks/{os.path.basename(nb)}"
        files.append(File(src_uri, root, config.site_dir, config.use_directory_urls))
    return files


def _site_map(files: Files, root: str) -> dict[str, str]:
    """Repository path (posix, relative to the root) -> src_uri of every file in the site."""
    out = {}
    for f in files:
        if f.abs_src_path:
            out[os.path.relpath(f.abs_src_path, root).replace(os.sep, "/")] = f.src_uri
    return out


def _resolve(target: str, page, files: Files, config):
    """('site', new relative target) | ('repo', repository path) | None (external or missing)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^#|^/", target):
        return None
    path, _, frag = target.partition("#")
    root = _root(config)
    resolved = os.path.normpath(os.path.join(os.path.dirname(page.file.abs_src_path), path))
    rel = os.path.relpath(resolved, root).replace(os.sep, "/")
    src_uri = _site_map(files, root).get(rel)
    if src_uri is not None:
        new = posixpath.relpath(src_uri, posixpath.dirname(page.file.src_uri) or ".")
        return "site", new + (f"#{frag}" if frag else "")
    if not rel.startswith("../") and os.path.exists(resolved):
        return "repo", rel
    return None


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    def fix(m: re.Match) -> str:
        bang, text, target = m.groups()
        kind = _resolve(target, page, files, config)
        if kind is None:
            return m.group(0)  # external, an anchor, or missing: mkdocs validates it
        if kind[0] == "site":
            return f"{bang}[{text}]({kind[1]})"
        path = kind[1]
        return f"`{path}`" if text.strip("`") == path or text.strip("`").endswith(path) else f"{text} (`{path}`)"

    parts, pos = [], 0
    for fence in _FENCE.finditer(markdown):  # leave fenced code alone
        parts.append(_MD_LINK.sub(fix, markdown[pos : fence.start()]))
        parts.append(fence.group(0))
        pos = fence.end()
    parts.append(_MD_LINK.sub(fix, markdown[pos:]))
    return "".join(parts)


def on_page_content(content: str, page, config, files: Files) -> str:
    if not page.file.src_uri.endswith(".ipynb"):
        return content  # markdown pages: handled above and validated by mkdocs

    def fix(m: re.Match) -> str:
        attr, target = m.group(1), html.unescape(m.group(2))
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^#|^/", target):
            return m.group(0)
        kind = _resolve(target, page, files, config)
        if kind is None:
            log.warning("%s links to '%s', which is not in the repository", page.file.src_uri, target)
            return m.group(0)
        if kind[0] == "repo":
            log.warning("%s links to '%s', which is not part of the site", page.file.src_uri, target)
            return m.group(0)
        # notebook pages are served as directories (notebooks/x/), so go one level further up
        here = posixpath.dirname(page.file.src_uri)
        f = files.get_file_from_path(posixpath.normpath(posixpath.join(here, kind[1].partition("#")[0])))
        url = f.url_relative_to(page.file) if f else kind[1]
        frag = kind[1].partition("#")[2]
        return f'{attr}="{html.escape(url)}{"#" + frag if frag else ""}"'

    return _HREF.sub(fix, content)
