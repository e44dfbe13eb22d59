"""A studio session: the library's Trainer in a background thread, steered by commands.

One worker thread owns the Trainer and the live view; nothing else touches them. Commands (pause,
knobs, wounds, a new target, a model to continue, save) are queued and applied by the worker
between two iterations, so a change always takes effect from the next iteration. After each pass
the worker publishes a Snapshot (figures and pictures as bytes) that any number of pages read.
"""

from __future__ import annotations

import collections
import itertools
import math
import queue
import random
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import NCAError
from ..formats.model_file import LoadedModel, save_model
from ..targets import Target
from ..training import TrainConfig, Trainer, save_interrupted
from ..training.resume import STATE_SUFFIX, resume_path
from .live import LiveView, check_live_knobs, straight_rgba
from .runs import check_flat, trainer_from_model
from .snapshot import Notice, Snapshot, pool_choice
from .uploads import file_stem

POOL_EVERY = 0.5  # seconds between two pool pictures
MAX_LIVE_STEPS = 16  # live steps in one pass at most (the view slows rather than stalls training)
RATE_WINDOW = 3.0  # seconds over which the recent iterations per second are counted
MAX_NOTICES = 200


class Session:
    """The run and its live view, trained by a worker thread until stop()."""

    def __init__(self, trainer: Trainer, folder: str | Path, size: int, pad: int, live_speed: float = 30.0,
                 resumed_from: Path | None = None):
        """`resumed_from`: the resume state the run continues, if any; in `folder`, it and its model
        are the files that saving on exit may replace."""
        check_flat(trainer.model.config, trainer.target)
        self.trainer = trainer
        self.folder = Path(folder)
        self.size, self.pad = size, pad  # how pictures sent by the page are fitted onto the grid
        self.live = LiveView(trainer.model.config, trainer.target.shape, trainer.device)
        self.live_speed = live_speed  # live steps per second
        self.paused = False
        self.failure: BaseException | None = None  # a bug in the worker, re-raised by whoever runs it
        self.saved: dict[str, Path] = {}  # files written by Save, by name (the only ones served)
        self.resumed: set[str] = set()  # the resume state continued from this folder, and its model
        if resumed_from is not None and resumed_from.name.endswith(STATE_SUFFIX) and \
                resumed_from.resolve().parent == self.folder.resolve():
            self.resumed = {resumed_from.name, resumed_from.name[: -len(STATE_SUFFIX)] + ".safetensors"}
        self._schedule = (trainer.config.lr_decay_at, trainer.config.iterations)
        self._damage_count = trainer.config.damage_count or min(3, trainer.config.batch - 1)
        self._commands: queue.Queue[Callable[[], None]] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._notices: list[Notice] = []
        self._losses: list[float] = list(trainer.losses)
        self._run, self._target_version, self._pool_version = 0, 0, 0
        self._pool_time = 0.0
        self._live_clock = time.perf_counter()
        self._recent: collections.deque = collections.deque()
        self._random = random.Random(0)
        self._snapshot = self._make_snapshot()

    # -- the worker ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="nca-studio", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current iteration."""
        self._stop.set()
        self._commands.put(lambda: None)  # wake a paused worker
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                if self._apply_commands(wait=1.0 / self.live_speed if self.paused else 0.0):
                    self._publish()  # a wound or a new target shows at once, not after the iteration
                if not self.paused and not self._stop.is_set():
                    self._iterate()
                self._advance_live()
                self._publish()
        except BaseException as exc:  # a bug: kept for the command line to show, the pages told
            self.failure = exc
            self._notice("error", f"training stopped: {type(exc).__name__}: {exc}")
            self._publish()

    def _apply_commands(self, wait: float) -> bool:
        """Apply the queued commands (waiting up to `wait` seconds for one). Whether there were any."""
        try:
            command = self._commands.get(timeout=wait) if wait > 0 else self._commands.get_nowait()
        except queue.Empty:
            return False
        while True:
            try:
                command()
            except NCAError as exc:
                self._notice("error", str(exc))
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return True

    def _iterate(self) -> None:
        start = time.perf_counter()
        loss = self.trainer.iterate()
        self.trainer.elapsed += time.perf_counter() - start
        self._recent.append((time.perf_counter(), self.trainer.iteration))
        with self._lock:
            self._losses.append(loss)

    def _advance_live(self) -> None:
        now = time.perf_counter()
        due = int((now - self._live_clock) * self.live_speed)
        if due:
            self.live.advance(self.trainer.result, min(due, MAX_LIVE_STEPS))
            self._live_clock = now if due > MAX_LIVE_STEPS else self._live_clock + due / self.live_speed

    # -- commands: checked here, applied by the worker before its next iteration -------------

    def pause(self) -> None:
        self._commands.put(lambda: setattr(self, "paused", True))

    def resume(self) -> None:
        self._commands.put(lambda: setattr(self, "paused", False))

    def set_knobs(self, lr: float | None = None, damage: bool | None = None, damage_count: int | None = None,
                  steps_min: int | None = None, steps_max: int | None = None, fire_rate: float | None = None,
                  angle: float | None = None, live_speed: float | None = None, regrow: int | None = None) -> None:
        """Training knobs (rate, damage in training, rollout lengths) from the next iteration;
        knobs of the live view (fire rate, perception angle in degrees, steps per second, steps
        after which it grows again from the seed, 0: never)."""
        check_live_knobs(fire_rate, angle, live_speed, regrow)
        changes = {k: v for k, v in (("lr", lr), ("steps_min", steps_min), ("steps_max", steps_max)) if v is not None}
        if damage is not None or damage_count is not None:
            count = self._damage_count if damage_count is None else damage_count
            cfg = self.trainer.config
            on = (cfg.mode == "regen" and cfg.damage_count > 0) if damage is None else damage
            if on:  # damage in training is the regen experiment
                changes.update(mode="regen", damage_count=count)
            elif cfg.mode == "regen":
                changes.update(damage_count=0)
            TrainConfig.from_dict({**cfg.to_dict(), "damage_count": count, "mode": "regen"})  # the count kept
        TrainConfig.from_dict({**self.trainer.config.to_dict(), **changes})  # an NCAError now, not later

        def apply() -> None:
            self.trainer.reconfigure(**changes)
            if damage_count is not None:
                self._damage_count = damage_count
            for name, value in (("fire_rate", fire_rate), ("angle", angle), ("regrow", regrow)):
                if value is not None:
                    setattr(self.live, name, value)
            if live_speed is not None:
                self.live_speed = float(live_speed)
        self._commands.put(apply)

    def wound(self, row: float, col: float, radius: float) -> None:
        """Kill a disc of the live pattern (centre and radius in cells)."""
        if not all(math.isfinite(v) for v in (row, col, radius)) or not 0 < radius <= max(self.live.shape):
            raise NCAError(f"a wound is a disc on the grid, got centre {row:g},{col:g} and radius {radius:g}")
        self._commands.put(lambda: self.live.wound(row, col, radius))

    def reset_live(self) -> None:
        self._commands.put(lambda: self.live.reset(self.trainer.model.config, self.trainer.target.shape,
                                                   self.trainer.device))

    def set_target(self, target: Target) -> None:
        """Train towards `target` from the next iteration; the schedule starts again (the full rate
        until as many iterations as the recipe's drop have passed)."""
        check_flat(self.trainer.model.config, target)
        self._commands.put(lambda: self._switch_target(target))

    def continue_model(self, loaded: LoadedModel) -> None:
        """Replace the run by one that continues a model file (on its own target, or this one)."""
        self._commands.put(lambda: self._replace(
            trainer_from_model(loaded, {}, self.trainer.target, self.trainer.device), loaded.source))

    def save(self, name: str = "") -> None:
        """Write the model so far into the studio's folder as <name>.safetensors (a safe stem of
        `name`, by default studio-<target>). A file this session did not write is not replaced."""
        stem = file_stem(name) or self.default_stem()
        path = self.folder / f"{stem}.safetensors"
        if path.exists() and path.name not in self.saved:
            raise NCAError(f"{path.name} already exists in {self.folder}: choose another name")
        self._commands.put(lambda: self._save(path))

    def default_stem(self) -> str:
        """studio-<the target's name without its suffix>: 'studio-lizard' for 🦎, 'studio-heart' for heart.png."""
        return "studio-" + (file_stem(Path(self.trainer.target.name).stem) or "target")

    def exit_paths(self) -> tuple[Path, Path]:
        """Where saving on exit writes: studio-<target>.safetensors and its resumable state, or the
        first of studio-<target>-2, -3, ... where neither is a file this session did not write or
        resume from (the user's own, an earlier run's)."""
        for n in itertools.count(1):
            model = self.folder / f"{self.default_stem()}{'' if n == 1 else f'-{n}'}.safetensors"
            paths = (model, resume_path(model))
            if all(not p.exists() or p.name in self.saved or p.name in self.resumed for p in paths):
                return paths

    def save_on_exit(self) -> tuple[Path, Path]:
        """After stop(): the model so far and the run's resumable state (exit_paths). Returns their
        paths."""
        model, state = self.exit_paths()
        save_interrupted(self.trainer, model, state)
        return model, state

    def _switch_target(self, target: Target) -> None:
        t = self.trainer
        t.set_target(target)
        decay_at, iterations = self._schedule
        t.reconfigure(lr_decay_at=t.iteration + decay_at, iterations=t.iteration + iterations)
        if tuple(target.shape) != self.live.shape:
            self.live.reset(t.model.config, target.shape, t.device)
        self._target_version += 1
        self._notice("info", f"Training towards {target.name} from iteration {t.iteration}")

    def _replace(self, trainer: Trainer, source: str) -> None:
        self.trainer = trainer
        if trainer.target.size:  # pictures sent from now on are fitted onto this run's grid
            self.size, self.pad = trainer.target.size, trainer.target.pad
        self._schedule = (trainer.config.lr_decay_at, trainer.config.iterations)
        self._damage_count = trainer.config.damage_count or min(3, trainer.config.batch - 1)
        self.live.reset(trainer.model.config, trainer.target.shape, trainer.device)
        self._recent.clear()
        with self._lock:
            self._run += 1
            self._losses = list(trainer.losses)
        self._target_version += 1
        self._notice("info", f"Continuing {source} on {trainer.target.name}")

    def _save(self, path: Path) -> None:
        save_model(path, self.trainer.result, self.trainer.target, self.trainer.summary("saved in the studio"))
        self.saved[path.name] = path
        self._notice("info", f"Saved {path.name} (iteration {self.trainer.iteration})", file=path.name)

    # -- what the pages see --------------------------------------------------------------------

    def _notice(self, level: str, text: str, file: str | None = None) -> None:
        with self._lock:
            seq = self._notices[-1].seq + 1 if self._notices else 1
            self._notices = (self._notices + [Notice(seq, level, text, file)])[-MAX_NOTICES:]

    def notices_after(self, seq: int) -> list[Notice]:
        with self._lock:
            return [n for n in self._notices if n.seq > seq]

    def losses_since(self, run: int, count: int) -> tuple[int, int, list[float]]:
        """The losses after the first `count` of run `run` (all of them if the run changed):
        returns (run, index of the first loss returned, losses)."""
        with self._lock:
            start = count if run == self._run else 0
            return self._run, start, self._losses[start:]

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def figures(self) -> dict:
        t, cfg = self.trainer, self.trainer.config
        now = time.perf_counter()
        while self._recent and self._recent[0][0] < now - RATE_WINDOW:  # paused: the rate falls to 0
            self._recent.popleft()
        recent = (self._recent[-1][1] - self._recent[0][1]) / (now - self._recent[0][0]) \
            if len(self._recent) > 1 else 0.0
        return {"iteration": t.iteration, "elapsed": round(t.elapsed, 2), "loss": t.final_loss(),
                "rate": round(recent, 2), "lr": cfg.learning_rate(t.iteration, t.decay_from),
                "paused": self.paused, "target": t.target.name, "grid": list(t.target.shape),
                "mode": cfg.mode, "batch": cfg.batch, "live_steps": self.live.steps, "save_name": self.default_stem(),
                "knobs": {"lr": cfg.lr, "damage": cfg.mode == "regen" and cfg.damage_count > 0,
                          "damage_count": self._damage_count, "steps_min": cfg.steps_min,
                          "steps_max": cfg.steps_max, "fire_rate": self.live.fire_rate,
                          "angle": self.live.angle, "live_speed": self.live_speed, "regrow": self.live.regrow}}

    def _make_snapshot(self) -> Snapshot:
        old = getattr(self, "_snapshot", None)
        pool, now = (old.pool if old else []), time.perf_counter()
        if old is None or now - self._pool_time >= POOL_EVERY:
            pool = [straight_rgba(self.trainer.pool[i]) for i in pool_choice(
                self.trainer.pool, self.trainer.model.config.alive_threshold, self._random)]
            self._pool_time, self._pool_version = now, self._pool_version + 1
        target = old.target if old and old.target_version == self._target_version else \
            straight_rgba(self.trainer.target.rgba)
        return Snapshot(run=self._run, figures=self.figures(), live=self.live.picture(), target=target,
                        target_version=self._target_version, pool=pool, pool_version=self._pool_version)

    def _publish(self) -> None:
        self._snapshot = self._make_snapshot()  # one assignment: readers see the old or the new one
