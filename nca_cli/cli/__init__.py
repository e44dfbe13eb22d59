"""The command line: thin Typer commands over the library, one module per command family.

app          the Typer app and its entry point, main()
console      output, progress bars, the error boundary (one `Error: ...` line), Ctrl-C
options      option declarations shared by several commands, and parsers of option text
train        nca train
render       nca grow, nca damage, nca rotate
export       nca export
bench        nca bench
completions  shell completion scripts generated from the app
"""

from .app import app, main

__all__ = ["app", "main"]
