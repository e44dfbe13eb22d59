"""`nca studio`: watch a rule learn in the browser, live, and steer it.

session   Session: the library's Trainer in a worker thread, the live view, commands, snapshots
live      LiveView: the pattern grown by the current weights, wounded by clicks
runs      starting a run from a target, a model file or a resume state
uploads   what the page sends (pictures, model files, emoji, names), checked
commands  the page's JSON commands turned into Session calls
security  the token, Host and Origin checks (Guard)
server    the ASGI app (starlette): the page, its WebSocket, uploads and downloads
serve     StudioServer: uvicorn in a thread on a bound socket
static/   the page: HTML, JavaScript and CSS, nothing fetched from elsewhere
"""

# The server (serve.StudioServer) is imported where it is used: starlette and uvicorn take a third of
# a second to import, which every other `nca` command would otherwise pay.
from .runs import open_run
from .session import Session

__all__ = ["Session", "open_run"]
