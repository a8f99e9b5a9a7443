"""Sphinx configuration for the lcsample documentation.

Build (from the repository root, warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # document the working tree, installed or not
sys.path.insert(0, os.path.join(HERE, "_ext"))

import lcsample  # noqa: E402

project = "lcsample"
author = "lcsample developers"
copyright = "lcsample developers"
release = version = lcsample.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "benchmark_figures",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: GitHub-style anchors so that links like theory.md#2-one-rm-ulmc-step work both
# on GitHub and here.
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

# API reference
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
autosummary_generate = False
numpydoc_show_class_members = False  # members are listed by autodoc, not twice
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "furo"
html_title = f"lcsample {release}"
