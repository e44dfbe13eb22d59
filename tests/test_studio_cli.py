"""`nca studio` from the command line: its errors, and a real process serving until Ctrl-C or
SIGTERM, which save the run so that it continues where it stopped."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from typer.testing import CliRunner
from websockets.sync.client import connect

from nca_cli.cli import app
from nca_cli.engine import NCA, NCAConfig
from nca_cli.formats.model_file import load_model, save_model


TINY = ["--size", "12", "--pad", "4", "--channels", "8", "--hidden", "16", "--batch", "4", "--pool-size", "8",
        "--steps-min", "8", "--steps-max", "12", "--device", "cpu", "--no-browser"]


def invoke(*args):
    return CliRunner().invoke(app, ["studio", *map(str, args)])


def test_bad_arguments_are_one_line_errors(tmp_path):
    result = invoke(tmp_path / "missing.png", *TINY)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: not found: {tmp_path / 'missing.png'} (give an emoji, a picture, a model")
    assert invoke("🦎🦋", *TINY).output == "Error: '🦎🦋' is not one emoji\n"
    assert invoke("🦋", *TINY, "--size", "0").output == "Error: target size must be at least 4 pixels, got 0\n"
    assert invoke(*TINY, "--size", "-5").output == "Error: target size must be at least 4 pixels, got -5\n"
    assert invoke("🦋", *TINY, "--pad", "-1").output == "Error: padding must not be negative, got -1\n"
    assert invoke("🦎", "--port", "70000", *TINY).output == "Error: port must be between 0 and 65535, got 70000\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = invoke("🦎", "--port", port, *TINY)
    assert result.exit_code == 1 and result.output.startswith(f"Error: cannot serve on 127.0.0.1:{port}: ")
    rule = tmp_path / "rule.safetensors"
    save_model(rule, NCA(NCAConfig(channels=8, hidden=16)), None, {}, kind="rule")
    assert invoke(rule, *TINY).output == f"Error: {rule} holds a rule model; training in the studio needs an image model\n"


def start(args: list[str], cwd) -> tuple[subprocess.Popen, str, str]:
    """A studio process; returns it, the URL it printed and the line it is in."""
    process = subprocess.Popen([sys.executable, "-m", "nca_cli", "studio", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"open (http://\S+)", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, match.group(1), line


def wait_for_iteration(url: str, n: int, timeout: float = 120.0) -> int:
    """Watch the studio's figures over one WebSocket until its iteration reaches n."""
    deadline = time.monotonic() + timeout
    with connect(url.replace("http://", "ws://").replace("/?token=", "/ws?token=")) as ws:
        while time.monotonic() < deadline:
            message = ws.recv(timeout=timeout)
            if isinstance(message, str) and json.loads(message)["type"] == "figures":
                if json.loads(message)["iteration"] >= n:
                    return json.loads(message)["iteration"]
    raise AssertionError(f"the studio did not reach iteration {n} in {timeout:g} s")


def test_ctrl_c_and_sigterm_save_the_run_and_it_continues(tmp_path, disc_png):
    process, url, line = start([disc_png, "--host", "localhost", *TINY], tmp_path)
    assert line.startswith("nca studio: training towards disc.png on a 20x20 grid from iteration 0; open http://localhost:")
    try:
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "<title>nca studio</title>" in page
        wait_for_iteration(url, 3)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.startswith("Warning: serving on localhost, not 127.0.0.1: whoever can reach this address")
    stopped = re.search(r"Stopped at iteration (\d+): saved studio-disc.safetensors and resumable state "
                        r"studio-disc.ckpt.safetensors; continue with: nca studio studio-disc.ckpt.safetensors", err)
    assert stopped, err
    done = int(stopped.group(1))
    assert done >= 3 and load_model(tmp_path / "studio-disc.safetensors").training["iterations_done"] == done

    process, url, line = start(["studio-disc.ckpt.safetensors", *TINY], tmp_path)
    assert f"from iteration {done};" in line
    try:
        wait_for_iteration(url, done + 2)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    again = int(re.search(r"Stopped at iteration (\d+)", err).group(1))
    assert again >= done + 2 and load_model(tmp_path / "studio-disc.safetensors").training["iterations_done"] == again
