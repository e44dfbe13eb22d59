"""How fast the studio trains next to `nca train`, and how often the page redraws (a few minutes;
run it on a quiet machine):

    python bench/studio_speed.py [--iterations 40] [--rounds 3]

It trains the default recipe on the lizard from scratch (72x72 grid, batch 4, rollouts of 64 to 96
steps) three ways, in turn, ROUNDS times (so that a busy moment of a shared machine falls on all
of them): the Trainer's own loop (what `nca train` runs), a studio session without a page, and a
studio session with its page open in Debian's chromium (Playwright). The studio's rate is counted
over wall time, so the live view, the pictures and the server are all in it; the medians are
printed side by side.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time

import torch

from nca_cli.engine import NCAConfig
from nca_cli.studio import Session, open_run
from nca_cli.training import TrainConfig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu"]
ITERATIONS, ROUNDS = 40, 3


def lizard_trainer():
    return open_run("🦎", 40, 16, NCAConfig(), TrainConfig(), {}, torch.device("cpu"))  # from scratch


def plain_rate() -> float:
    """Iterations per second of Trainer.run, as `nca train` counts them (after 5 to warm up)."""
    trainer = lizard_trainer()
    trainer.reconfigure(iterations=5)
    trainer.run()
    trainer.reconfigure(iterations=5 + ITERATIONS)
    before = trainer.elapsed
    trainer.run()
    return ITERATIONS / (trainer.elapsed - before)


def studio_rate(folder, page=None, server_for=None) -> tuple[float, list[int]]:
    """Iterations per second of wall time (after 5), and the page's frames in each second."""
    session = Session(lizard_trainer(), folder, 40, 16)
    server = None
    if server_for is not None:
        server = server_for(session)
        server.start()
        page.goto(server.url)
    session.start()
    while session.trainer.iteration < 5:
        time.sleep(0.01)
    start, first, fps = time.perf_counter(), session.trainer.iteration, []
    while session.trainer.iteration < first + ITERATIONS:
        time.sleep(1.0)
        if page is not None:
            fps.append(int(page.inner_text("#fps")))
    rate = (session.trainer.iteration - first) / (time.perf_counter() - start)
    session.stop()
    if server is not None:
        server.stop()
    return rate, fps[1:]


def main() -> None:
    global ITERATIONS
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    ITERATIONS = args.iterations
    from playwright.sync_api import sync_playwright

    from nca_cli.studio.serve import StudioServer

    plain, alone, watched, fps = [], [], [], []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        for _ in range(args.rounds):
            plain.append(plain_rate())
            alone.append(studio_rate(folder)[0])
            rate, frames = studio_rate(folder, page, StudioServer)
            watched.append(rate)
            fps += frames
        browser.close()
    p_, a_, w_ = (statistics.median(v) for v in (plain, alone, watched))
    print(f"medians of {args.rounds} rounds of {ITERATIONS} iterations, torch threads {torch.get_num_threads()}: "
          f"Trainer loop (nca train) {p_:.2f} it/s; studio without a page {a_:.2f} it/s ({a_ / p_:.0%}); "
          f"studio with its page open {w_:.2f} it/s ({w_ / p_:.0%}); page frames per second: median "
          f"{statistics.median(fps)}, range {min(fps)}-{max(fps)}\n"
          f"rounds: plain {[round(v, 2) for v in plain]}, alone {[round(v, 2) for v in alone]}, "
          f"watched {[round(v, 2) for v in watched]}")


if __name__ == "__main__":
    sys.exit(main())
