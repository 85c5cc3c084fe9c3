#!/usr/bin/env python3
"""Checks every relative link of the repository's Markdown files.

For each tracked `*.md` file (`git ls-files '*.md'`), every inline link or
image `[text](path)`, `[text](path#anchor)`, `[text](#anchor)` and every
reference definition `[ref]: path` outside code must name a file or folder
that git tracks, and its anchor must be a heading of the target Markdown file
under GitHub's rules (lowercase; punctuation other than `-` and `_` dropped;
spaces become `-`; the second heading of the same text gets `-1`, the third
`-2`, …) or an explicit `<a name="…">` / `id="…"`. Links to other files may
carry GitHub's line anchors (`#L10`, `#L10-L20`). http(s) and mailto links
are skipped: no network.

    python3 tools/ci/check_links.py        # from anywhere inside the repository

Prints every broken link as `file:line: link — reason` and exits 1 if there
is one, 0 otherwise. Python 3 standard library only.
"""

import os
import re
import subprocess
import sys
from urllib.parse import unquote

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d+[.)])[ \t]")
# [text](target) or ![alt](target); text may hold one level of brackets and
# span lines; target may hold one level of parentheses and a "title".
INLINE = re.compile(
    r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>\n]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>\n]*>|\S+)", re.M)
EXPLICIT_ANCHOR = re.compile(r"<a\s[^>]*?(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.I)
LINE_ANCHOR = re.compile(r"^L\d+(?:-L\d+)?$")
SKIP_SCHEMES = ("http://", "https://", "mailto:")


def git(root, *args):
    return subprocess.run(["git", "-C", root, *args], check=True, capture_output=True, text=True).stdout


def blank(s):
    """`s` with every character but newlines replaced by a space (keeps offsets and lines)."""
    return re.sub(r"[^\n]", " ", s)


def without_code_blocks(text):
    """The text with fenced and indented code blocks blanked out."""
    out, fence, in_indented, prev_blank, in_list = [], None, False, True, False
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence:
            out.append(blank(line))
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip(fence[0] + " \t"):
                fence = None
            continue
        if m:
            fence = m.group(1)
            out.append(blank(line))
            continue
        is_blank = not line.strip()
        indented = line.startswith("    ") or line.startswith("\t")
        if in_indented and (indented or is_blank):
            out.append(blank(line))
            continue
        in_indented = False
        # An indented block starts after a blank line, outside a list item
        # (where indentation continues the item).
        if indented and prev_blank and not in_list:
            in_indented = True
            out.append(blank(line))
            continue
        if LIST_ITEM.match(line):
            in_list = True
        elif not is_blank and not indented and not line.startswith("  "):
            in_list = False
        prev_blank = is_blank
        out.append(line)
    return "\n".join(out)


def without_code_spans(text):
    """The text with inline code spans (`…`, ``…``, which may span lines) blanked out."""
    out, i = [], 0
    for m in re.finditer(r"`+", text):
        if m.start() < i:
            continue
        run = m.group(0)
        close = re.compile(r"(?<!`)" + run + r"(?!`)").search(text, m.end())
        if not close:
            continue
        out.append(text[i : m.start()])
        out.append(blank(text[m.start() : close.end()]))
        i = close.end()
    out.append(text[i:])
    return "".join(out)


def prose(text):
    """What GitHub renders as text: code blocks and code spans blanked."""
    return without_code_spans(without_code_blocks(text))


def slug(heading):
    """GitHub's anchor for a heading's text."""
    t = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links → their text
    t = re.sub(r"<[^>]+>", "", t)  # HTML tags
    t = t.replace("`", "").strip().lower()
    t = re.sub(r"[^\w\- ]", "", t)
    return t.replace(" ", "-")


def anchors(text):
    """Every anchor a Markdown file defines."""
    found, seen = set(), {}
    plain = without_code_blocks(text)
    for line in plain.split("\n"):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2) or "")
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    found.update(EXPLICIT_ANCHOR.findall(plain))
    return found


def check(root):
    files = set(git(root, "ls-files").splitlines())
    dirs = {os.path.dirname(f) for f in files}
    for f in list(dirs):
        while f:
            f = os.path.dirname(f)
            dirs.add(f)
    cache = {}

    def anchors_of(path):
        if path not in cache:
            with open(os.path.join(root, path), encoding="utf-8") as fh:
                cache[path] = anchors(fh.read())
        return cache[path]

    broken = []
    for md in sorted(git(root, "ls-files", "*.md").splitlines()):
        with open(os.path.join(root, md), encoding="utf-8") as fh:
            text = fh.read()
        body = prose(text)
        targets = [(m.start(2), m.group(2)) for m in INLINE.finditer(body)]
        targets += [(m.start(1), m.group(1)) for m in REFDEF.finditer(body)]
        for pos, raw in sorted(targets):
            line = body.count("\n", 0, pos) + 1
            link = raw[1:-1] if raw.startswith("<") else raw
            reason = problem(root, md, link, files, dirs, anchors_of)
            if reason:
                broken.append(f"{md}:{line}: {link} — {reason}")
    return broken


def problem(root, md, link, files, dirs, anchors_of):
    """Why `link` in file `md` is broken, or None."""
    if not link:
        return "empty link"
    if link.lower().startswith(SKIP_SCHEMES) or re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I):
        return None  # http(s), mailto and other schemes: not checked (no network)
    path, _, anchor = link.partition("#")
    path, anchor = unquote(path), unquote(anchor)
    if path.startswith("/"):
        return "absolute path (GitHub resolves it against the site, not the repository)"
    target = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
    if target == ".." or target.startswith("../"):
        return "points outside the repository"
    if target != "." and target not in files and target not in dirs:
        if os.path.exists(os.path.join(root, target)):
            return "file exists but git does not track it"
        return "no such file"
    if not anchor:
        return None
    if target in dirs or target == ".":
        return f"anchor #{anchor} on a folder"
    if not target.endswith(".md"):
        return None if LINE_ANCHOR.match(anchor) else f"anchor #{anchor} in a file that is not Markdown"
    if anchor not in anchors_of(target):
        return f"no heading with anchor #{anchor} in {target}"
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = git(here, "rev-parse", "--show-toplevel").strip()
    broken = check(root)
    for b in broken:
        print(b)
    if broken:
        print(f"check_links.py: {len(broken)} broken link(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
