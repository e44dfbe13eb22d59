"""The studio's web server: a thin ASGI layer (starlette) over a Session.

GET /            the page (static files in the package: nothing is fetched from elsewhere)
GET /static/...  its script and style sheet
WS  /ws          figures, pictures and messages out, several times a second; commands in
POST /target     a picture to train on (the bytes of a PNG, JPEG, WebP, GIF or BMP file)
POST /model      a model file to continue (.safetensors)
GET /files/NAME  a model file this session saved

Every request passes the Guard first (security.py). Pictures go out as binary WebSocket messages:
a 6-byte header (channel: 0 live view, 1 target, 2.. pool samples; 0; height and width as
little-endian uint16) followed by height x width x 4 bytes of straight RGBA.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..errors import InvalidOption, NCAError
from .commands import run_command
from .security import Guard, cookie_name
from .session import Session
from .uploads import TooLarge, check_upload_size, picture_target, uploaded_model

STATIC = {"studio.js": "text/javascript; charset=utf-8", "studio.css": "text/css; charset=utf-8"}
FRAME_PERIOD = 0.1  # seconds between two updates sent to a page
LIVE, TARGET, POOL = 0, 1, 2


def page_text(exc: NCAError) -> str:
    """An error as the page shows it: a setting by its knob's words ("damage count"), not its name."""
    return f"{exc.name.replace('_', ' ')} {exc.problem}" if isinstance(exc, InvalidOption) else str(exc)


def _static(name: str) -> bytes:
    return (resources.files("nca_cli.studio") / "static" / name).read_bytes()


def pack_picture(channel: int, picture: np.ndarray) -> bytes:
    """A picture (H, W, 4) uint8 as one binary message."""
    height, width = picture.shape[:2]
    return struct.pack("<BBHH", channel, 0, height, width) + np.ascontiguousarray(picture).tobytes()


def finite(value):
    """JSON has no NaN: a missing loss is null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


class Stream:
    """What one page has been sent, to send it only what is new."""

    def __init__(self, session: Session):
        self.session = session
        self.snapshot = None
        self.target_version = self.pool_version = -1
        self.run, self.losses, self.notice = -1, 0, 0

    def updates(self) -> list[str | bytes]:
        snap, out = self.session.snapshot, []
        if snap is not self.snapshot:
            self.snapshot = snap
            out.append(json.dumps({"type": "figures", **{k: finite(v) for k, v in snap.figures.items()},
                                   "pool_count": len(snap.pool)}))
            out.append(pack_picture(LIVE, snap.live))
        if snap.target_version != self.target_version:
            self.target_version = snap.target_version
            out.append(pack_picture(TARGET, snap.target))
        if snap.pool_version != self.pool_version:
            self.pool_version = snap.pool_version
            out += [pack_picture(POOL + i, p) for i, p in enumerate(snap.pool)]
        run, start, losses = self.session.losses_since(self.run, self.losses)
        if losses or run != self.run:
            out.append(json.dumps({"type": "losses", "run": run, "start": start, "values": [finite(v) for v in losses]}))
            self.run, self.losses = run, start + len(losses)
        for notice in self.session.notices_after(self.notice):
            self.notice = notice.seq
            out.append(json.dumps({"type": "notice", "level": notice.level, "text": notice.text, "file": notice.file}))
        return out


async def _send_loop(ws: WebSocket, stream: Stream, replies: asyncio.Queue) -> None:
    while True:
        messages = stream.updates()
        while not replies.empty():
            messages.append(json.dumps(replies.get_nowait()))
        for message in messages:
            await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message))
        await asyncio.sleep(FRAME_PERIOD)


async def stream_socket(ws: WebSocket) -> None:
    """One page's connection: updates out, commands in, until it goes away."""
    session: Session = ws.app.state.session
    await ws.accept()
    replies: asyncio.Queue = asyncio.Queue()
    sender = asyncio.create_task(_send_loop(ws, Stream(session), replies))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                run_command(session, json.loads(message.get("text") or "null"))
            except (NCAError, ValueError) as exc:  # ValueError: not JSON
                replies.put_nowait({"type": "error", "text": page_text(exc) if isinstance(exc, NCAError)
                                    else "a command is JSON text"})
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


async def index(request: Request) -> Response:
    response = HTMLResponse(_static("index.html"), headers={"cache-control": "no-store"})
    token = request.app.state.token
    response.set_cookie(cookie_name(token), token, httponly=True, samesite="strict", path="/")
    return response


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return PlainTextResponse("Not found\n", status_code=404)
    return Response(_static(name), media_type=STATIC[name], headers={"cache-control": "no-store"})


async def read_upload(request: Request, what: str) -> bytes:
    """The request's body, refused as soon as it passes MAX_UPLOAD_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        check_upload_size(int(declared), what)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        check_upload_size(total, what)
        chunks.append(chunk)
    return b"".join(chunks)


async def upload_target(request: Request) -> Response:
    session: Session = request.app.state.session
    try:
        data = await read_upload(request, "picture")
        name = request.query_params.get("name", "picture")
        target = await run_in_threadpool(picture_target, data, name, session.size, session.pad)
        session.set_target(target)
    except NCAError as exc:
        return JSONResponse({"error": str(exc)}, status_code=413 if isinstance(exc, TooLarge) else 400)
    return JSONResponse({"ok": f"training towards {target.name} from the next iteration"})


async def upload_model(request: Request) -> Response:
    session: Session = request.app.state.session
    try:
        loaded = await run_in_threadpool(uploaded_model, await read_upload(request, "model file"))
        session.continue_model(loaded)
    except NCAError as exc:
        return JSONResponse({"error": str(exc)}, status_code=413 if isinstance(exc, TooLarge) else 400)
    return JSONResponse({"ok": "continuing the uploaded model from the next iteration"})


async def download(request: Request) -> Response:
    path = request.app.state.session.saved.get(request.path_params["name"])
    if path is None or not path.is_file():
        return PlainTextResponse("Not found\n", status_code=404)
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")


def create_app(session: Session, token: str, hosts: set[str]) -> Guard:
    """The studio's ASGI app for `session`, behind its Guard (token, Host and Origin checks)."""
    app = Starlette(routes=[
        Route("/", index), Route("/static/{name}", static), Route("/files/{name}", download),
        Route("/target", upload_target, methods=["POST"]), Route("/model", upload_model, methods=["POST"]),
        WebSocketRoute("/ws", stream_socket)])
    app.state.session, app.state.token = session, token
    return Guard(app, token, hosts)

