"""``{benchmark-figures}``: every PNG in a folder that a report does not already show.

The benchmark scripts write their plots next to ``report.md``; a new plot appears in the
documentation without a page edit. Usage in a MyST page::

    ```{benchmark-figures} ../benchmarks/results
    :skip-referenced-by: ../benchmarks/results/report.md
    ```

The folder and the report are relative to the page. A PNG whose file name occurs in the
report (which then shows it itself, through the include) is skipped. Nothing is emitted
when no PNG is left.
"""

import glob
import os
import posixpath

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


class BenchmarkFigures(SphinxDirective):
    required_arguments = 1
    option_spec = {"skip-referenced-by": directives.unchanged, "title": directives.unchanged}

    def run(self):
        folder = self.arguments[0]
        _, abs_folder = self.env.relfn2path(folder, self.env.docname)
        referenced = ""
        if "skip-referenced-by" in self.options:
            _, report = self.env.relfn2path(self.options["skip-referenced-by"], self.env.docname)
            if os.path.exists(report):
                with open(report, encoding="utf-8") as f:
                    referenced = f.read()
        names = [os.path.basename(p) for p in sorted(glob.glob(os.path.join(abs_folder, "*.png")))]
        names = [n for n in names if n not in referenced]
        if not names:
            return []
        out = [nodes.rubric(text=self.options.get("title", "Figures"))]
        for name in names:
            self.env.note_dependency(os.path.join(abs_folder, name))
            caption = os.path.splitext(name)[0].replace("_", " ")
            figure = nodes.figure()
            figure += nodes.image(uri=posixpath.join(folder, name), alt=caption)
            figure += nodes.caption(text=f"{caption} ({name})")
            out.append(figure)
        return out


def setup(app):
    app.add_directive("benchmark-figures", BenchmarkFigures)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
