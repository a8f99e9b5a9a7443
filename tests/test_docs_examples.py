"""The Python examples of the documentation run, so that they stay true.

Every ```python block of ``docs/*.md`` and ``README.md`` is executed: the blocks of a page
in order, in one namespace per page, in a temporary working directory (examples may
write files). Two HTML comments on the line before a block change that:

- ``<!-- skip-test -->``: the block is not run. Only for code that needs something the
  tests cannot have (a GPU library and a trained model); keep these rare.
- ``<!-- requires: matplotlib -->`` (module names, space separated): when one of them is
  not installed, the page stops there and is reported as skipped.

Blocks in other languages (``bash``, ``text``, plain fences) are never run.
"""

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_MARKER = re.compile(r"<!--\s*(skip-test|requires:(?P<mods>[^>]*?))\s*-->")


def python_blocks(text):
    """``(line, source, marker)`` for each ```python block of a Markdown text.

    ``marker`` is None, ``"skip"`` or a list of required module names, from an HTML
    comment on the last non-blank line before the block.
    """
    blocks = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 2  # first line of the code
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        marker = None
        found = _MARKER.fullmatch(before)
        if found:
            marker = "skip" if found.group(1) == "skip-test" else found.group("mods").split()
        blocks.append((line, textwrap.dedent(match.group("body")), marker))
    return blocks


def _pages_with_code():
    return [p for p in PAGES if p.exists() and python_blocks(p.read_text(encoding="utf-8"))]


def test_block_extraction():
    text = textwrap.dedent("""\
        Intro.

        ```python
        a = 1
        ```

        <!-- skip-test -->
        ```python
        import torch
        ```

        - item:

          ```python
          b = a + 1
          ```

        <!-- requires: matplotlib numpy -->
        ```python
        c = 3
        ```

        ```bash
        echo no
        ```
        """)
    blocks = python_blocks(text)
    assert [b[1] for b in blocks] == ["a = 1\n", "import torch\n", "b = a + 1\n", "c = 3\n"]
    assert [b[2] for b in blocks] == [None, "skip", None, ["matplotlib", "numpy"]]
    assert [b[0] for b in blocks] == [4, 9, 15, 20]


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        matplotlib.use("Agg")  # no windows, whatever the machine
    namespace = {"__name__": f"docs_example_{page.stem.replace('-', '_')}"}
    name = page.relative_to(ROOT)
    try:
        for line, source, marker in python_blocks(page.read_text(encoding="utf-8")):
            if marker == "skip":
                continue
            if marker:
                missing = [m for m in marker if importlib.util.find_spec(m) is None]
                if missing:
                    pytest.skip(f"{name}:{line} needs {', '.join(missing)}")
            # a leading newline per skipped line, so tracebacks give the line in the page
            code = compile("\n" * (line - 1) + source, str(name), "exec")
            exec(code, namespace)
    finally:
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            plt.close("all")
