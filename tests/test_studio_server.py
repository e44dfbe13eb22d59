"""The studio's server without a browser: the token, Host and Origin checks on every request,
uploads refused with a clear message while the run goes on, and a WebSocket that many rapid
commands or a dropped connection do not disturb."""

import json
import socket
import struct
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 and warns when it finds httpx instead
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient, WebSocketDenialResponse

from nca_cli.studio.security import allowed_hosts
from nca_cli.studio.serve import StudioServer
from nca_cli.studio.server import create_app
from nca_cli.studio.uploads import MAX_UPLOAD_BYTES

from .conftest import disc_image
from .test_studio_session import png_bytes, tiny_session, wait_for

TOKEN = "the-token"
BASE = "http://127.0.0.1:8765"
WS = "ws://127.0.0.1:8765/ws"


@pytest.fixture
def session(tmp_path, disc_png):
    s = tiny_session(tmp_path, disc_png)
    s.start()
    yield s
    s.stop()
    assert s.failure is None


@pytest.fixture
def client(session):
    with TestClient(create_app(session, TOKEN, allowed_hosts("127.0.0.1", 8765)), base_url=BASE) as c:
        yield c


def test_every_request_needs_the_token(client):
    for path in ("/", "/static/studio.js", "/files/x.safetensors"):
        assert client.get(path).status_code == 403
        assert client.get(path, params={"token": "wrong"}).status_code == 403
    refused = client.post("/target", content=png_bytes(disc_image()), headers={"x-nca-token": "wrong"})
    assert refused.status_code == 403 and refused.text.startswith("Forbidden: open the studio with the URL it printed")
    page = client.get("/", params={"token": TOKEN})
    assert page.status_code == 200 and "<title>nca studio</title>" in page.text
    assert client.get("/static/studio.js").status_code == 200  # the page's cookie carries the token
    assert client.get("/static/nothing.js").status_code == 404
    with TestClient(client.app, base_url=BASE) as fresh:  # no cookie
        assert fresh.get("/static/studio.js").status_code == 403
        assert fresh.get("/static/studio.js", headers={"x-nca-token": TOKEN}).status_code == 200
        with pytest.raises(WebSocketDenialResponse) as denied:
            with fresh.websocket_connect(WS):
                pass
        assert denied.value.status_code == 403
        with fresh.websocket_connect(f"{WS}?token={TOKEN}") as ws:
            assert json.loads(ws.receive_text())["type"] == "figures"


def test_a_foreign_host_or_origin_is_refused(client):
    params = {"token": TOKEN}
    assert client.get("/", params=params, headers={"host": "attacker.example:8765"}).status_code == 403
    assert client.get("/", params=params, headers={"host": "127.0.0.1:9999"}).status_code == 403
    refused = client.get("/", params=params, headers={"origin": "http://attacker.example"})
    assert refused.status_code == 403 and "other sites" in refused.text
    assert client.get("/", params=params, headers={"origin": "null"}).status_code == 403
    assert client.get("/", params=params, headers={"origin": "http://localhost:8765"}).status_code == 200
    assert client.get("/", params=params, headers={"host": "localhost:8765"}).status_code == 200
    for headers in ({"origin": "http://attacker.example"}, {"host": "rebound.example:8765"}):
        with pytest.raises(WebSocketDenialResponse) as denied:
            with client.websocket_connect(f"{WS}?token={TOKEN}", headers=headers):
                pass
        assert denied.value.status_code == 403


def test_allowed_hosts():
    assert allowed_hosts("127.0.0.1", 5) == {"127.0.0.1:5", "localhost:5", "[::1]:5"}
    assert allowed_hosts("192.0.2.7", 80) == {"192.0.2.7:80"}
    assert allowed_hosts("::1", 9) == {"127.0.0.1:9", "localhost:9", "[::1]:9"}
    assert {"127.0.0.1:1", f"{socket.gethostname()}:1"} <= allowed_hosts("0.0.0.0", 1)


def test_bad_uploads_get_a_clear_error_and_the_run_goes_on(client, session):
    auth = {"x-nca-token": TOKEN}
    wait_for(lambda: session.trainer.iteration >= 1, "an iteration")
    answer = client.post("/target", content=b"GIF89a but not really", headers=auth)
    assert answer.status_code == 400
    assert answer.json() == {"error": "the upload is not a picture the studio reads (PNG, JPEG, WebP, GIF or BMP)"}
    answer = client.post("/target", content=b"\0" * (MAX_UPLOAD_BYTES + 1), headers=auth)
    assert answer.status_code == 413
    assert answer.json() == {"error": "the picture is 8.4 MB; the studio takes files up to 8 MB"}
    answer = client.post("/target", content=png_bytes(np.zeros((4100, 3, 4), np.uint8)), headers=auth)
    assert answer.json() == {"error": "the picture is 3x4100 pixels; the studio takes pictures up to 4096x4096"}
    answer = client.post("/model", content=b"not a model", headers=auth)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("cannot read the uploaded model: not a safetensors file")
    at = session.trainer.iteration
    wait_for(lambda: session.trainer.iteration > at + 1, "training on after the bad uploads")
    answer = client.post("/target?name=ring.png", content=png_bytes(disc_image(16)), headers=auth)
    assert answer.status_code == 200 and answer.json() == {"ok": "training towards ring.png from the next iteration"}
    wait_for(lambda: session.snapshot.figures["target"] == "ring.png", "the uploaded target")
    assert session.running and session.failure is None


def unpack(message: bytes) -> tuple[int, np.ndarray]:
    channel, _, height, width = struct.unpack("<BBHH", message[:6])
    return channel, np.frombuffer(message[6:], np.uint8).reshape(height, width, 4)


def test_the_websocket_streams_pictures_figures_losses_and_notices(client, session):
    with client.websocket_connect(f"{WS}?token={TOKEN}") as ws:
        seen, pictures = {}, {}
        while not ({"figures", "losses"} <= set(seen) and {0, 1, 2} <= set(pictures)):
            message = ws.receive()
            if message.get("bytes") is not None:
                channel, picture = unpack(message["bytes"])
                pictures[channel] = picture
            else:
                data = json.loads(message["text"])
                seen[data["type"]] = data
        assert np.array_equal(pictures[1], session.snapshot.target) and pictures[0].shape == (20, 20, 4)
        assert seen["losses"]["start"] == 0 and seen["figures"]["grid"] == [20, 20]
        ws.send_text(json.dumps({"cmd": "save", "name": "from the page"}))
        while True:
            message = ws.receive()
            data = json.loads(message["text"]) if message.get("text") else {}
            if data.get("type") == "notice":
                break
        assert data["file"] == "from-the-page.safetensors" and data["level"] == "info"
        download = client.get("/files/from-the-page.safetensors", params={"token": TOKEN})
        assert download.status_code == 200 and download.content == session.saved["from-the-page.safetensors"].read_bytes()
        (session.folder / "secret.safetensors").write_bytes(b"not the studio's")
        for name in ("secret.safetensors", "..%2Fsecret.safetensors", "%2Fetc%2Fpasswd"):
            assert client.get(f"/files/{name}", params={"token": TOKEN}).status_code == 404


def test_rapid_commands_and_a_dropped_connection_do_not_stop_training(session, tmp_path):
    from websockets.sync.client import connect

    server = StudioServer(session, token=TOKEN)
    server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}/ws?token={TOKEN}"
        commands = [{"cmd": "wound", "row": 10, "col": 10, "radius": 3}, {"cmd": "knobs", "lr": 1e-3},
                    {"cmd": "pause"}, {"cmd": "resume"}, {"cmd": "reset_live"}, {"cmd": "knobs", "fire_rate": 0.7},
                    {"cmd": "knobs", "damage_count": 99}, {"cmd": "no such command"}, {"cmd": "emoji", "text": "🦋"},
                    {"cmd": "wound", "row": "x"}]
        with connect(url, origin=f"http://127.0.0.1:{server.port}") as ws:
            at = session.trainer.iteration
            for i in range(20):
                ws.send(json.dumps(commands[i % len(commands)]))
            ws.send("not json")
            errors = []
            while len(errors) < 7:
                message = ws.recv(timeout=30)
                if isinstance(message, str) and json.loads(message)["type"] == "error":
                    errors.append(json.loads(message)["text"])
            assert "damage count must be from 0 to the batch size less one (3), got 99" in errors and "a command is JSON text" in errors
            assert any(e.startswith("unknown command 'no such command'") for e in errors)
            assert "the command 'wound' needs row to be a number" in errors
            ws.socket.shutdown(socket.SHUT_RDWR)  # dropped, without a closing handshake
            ws.socket.close()
        wait_for(lambda: session.trainer.iteration > at + 2, "training after the dropped connection")
        assert session.live.fire_rate == 0.7 and session.trainer.config.lr == 1e-3 and not session.paused
        with connect(url) as ws:  # and the next page is served
            assert json.loads(ws.recv(timeout=30))["type"] == "figures"
    finally:
        server.stop()
    assert session.running and session.failure is None
