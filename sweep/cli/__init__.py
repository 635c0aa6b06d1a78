"""The `sweep` command line: parse, call the library, render. No logic of its own.

`root` holds the app and what every command shares, `render` what they print; each other module
is one group of commands. They are registered here, in the order `sweep --help` lists them.
"""

from __future__ import annotations

from sweep.cli import jobs, report, reproduce, results, run, serve, spec
from sweep.cli.root import app

app.command()(spec.validate)
app.command()(spec.schema)
app.command("show-model")(spec.show_model)
app.command()(run.run)
app.command()(run.resume)
app.command()(report.report)
app.command()(results.results)
app.command()(reproduce.reproduce)
app.command("list")(results.list_)
app.command()(serve.ui)
app.command()(jobs.submit)
app.command()(jobs.status)
app.command()(jobs.cancel)
app.command()(jobs.logs)
app.command()(serve.serve)


def main() -> None:
    app()


__all__ = ["app", "main"]
