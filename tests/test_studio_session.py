"""The studio's library without a server: the session's worker and commands, the live view, what
the page may send (pictures, emoji, names, model files) and how a run starts."""

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from nca_cli.engine import NCAConfig, seed_state
from nca_cli.errors import NCAError
from nca_cli.formats.model_file import load_model, save_model
from nca_cli.targets import load_target
from nca_cli.studio import Session, open_run
from nca_cli.studio.live import LiveView, straight_rgba
from nca_cli.studio.uploads import MAX_UPLOAD_BYTES, emoji_target, file_stem, picture_target, uploaded_model
from nca_cli.training import TrainConfig, save_state

from .conftest import TINY_MODEL, disc_image

TINY_RECIPE = TrainConfig(mode="regen", batch=4, pool_size=8, steps_min=8, steps_max=12, damage_count=1, seed=3)


def tiny_session(folder, spec: str) -> Session:
    """A studio session on a 20x20 grid with a tiny model (not started)."""
    return Session(open_run(spec, 12, 4, TINY_MODEL, TINY_RECIPE, {}, torch.device("cpu")), folder, 12, 4)


def wait_for(predicate, what: str, timeout: float = 120.0):
    """Poll until predicate() holds (generous: a shared machine can be slow; a quiet one is fast)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def png_bytes(array: np.ndarray, mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def session(tmp_path, disc_png):
    s = tiny_session(tmp_path, disc_png)
    s.start()
    yield s
    s.stop()
    assert s.failure is None


def test_the_worker_trains_and_applies_commands_between_iterations(session):
    wait_for(lambda: session.snapshot.figures["iteration"] >= 3, "three iterations")
    figures = session.snapshot.figures
    assert figures["grid"] == [20, 20] and figures["elapsed"] > 0 and np.isfinite(figures["loss"])
    run, start, losses = session.losses_since(0, 0)
    assert run == 0 and start == 0 and len(losses) >= 3
    session.set_knobs(lr=1e-3, damage=False, steps_min=4, steps_max=6, fire_rate=0.25, angle=45.0,
                      live_speed=60.0, regrow=0)
    wait_for(lambda: session.snapshot.figures["knobs"]["lr"] == 1e-3, "the knobs")
    cfg = session.trainer.config
    assert (cfg.lr, cfg.damage_count, cfg.steps_min, cfg.steps_max) == (1e-3, 0, 4, 6)
    assert (session.live.fire_rate, session.live.angle, session.live.regrow, session.live_speed) == (0.25, 45.0, 0, 60.0)
    session.set_knobs(damage=True)  # back on with the count it had
    wait_for(lambda: session.trainer.config.damage_count == 1, "damage back on")
    session.pause()
    wait_for(lambda: session.snapshot.figures["paused"], "the pause")
    paused_at = session.trainer.iteration
    steps = session.live.steps
    wait_for(lambda: session.live.steps > steps + 5, "the live view running while paused")
    assert session.trainer.iteration == paused_at
    session.resume()
    wait_for(lambda: session.trainer.iteration > paused_at, "training again")


def test_knobs_and_wounds_out_of_range_are_refused_at_once(session):
    with pytest.raises(NCAError, match="damage_count must be from 0 to the batch size less one"):
        session.set_knobs(damage_count=4)
    with pytest.raises(NCAError, match=r"steps_max must be at least the shortest rollout \(20 steps\), got 12"):
        session.set_knobs(steps_min=20)
    with pytest.raises(NCAError, match="the learning rate must be a positive number"):
        session.set_knobs(lr=-1.0)
    with pytest.raises(NCAError, match=r"fire rate must be in \(0, 1\]"):
        session.set_knobs(fire_rate=0.0)
    with pytest.raises(NCAError, match="1 to 240 steps a second"):
        session.set_knobs(live_speed=1000.0)
    with pytest.raises(NCAError, match="a wound is a disc on the grid"):
        session.wound(5.0, 5.0, float("nan"))
    assert session.trainer.config.damage_count == 1 and session.running


def test_a_new_target_keeps_the_pool_and_starts_the_schedule_again(session):
    wait_for(lambda: session.trainer.iteration >= 2, "two iterations")
    session.set_target(emoji_target("🦎", 12, 4))
    wait_for(lambda: session.snapshot.figures["target"] == "🦎", "the new target")
    t = session.trainer
    assert t.config.lr_decay_at - TINY_RECIPE.lr_decay_at <= t.iteration and t.pool.shape[1:3] == (20, 20)
    assert t.decay_from == t.config.lr_decay_at > TINY_RECIPE.lr_decay_at
    lizard = straight_rgba(emoji_target("🦎", 12, 4).rgba)
    wait_for(lambda: np.array_equal(session.snapshot.target, lizard), "the new target's picture")
    at = t.iteration
    wait_for(lambda: session.trainer.iteration > at + 1, "training on")


def test_save_writes_a_model_file_in_the_folder_with_a_safe_name(session, tmp_path):
    wait_for(lambda: session.trainer.iteration >= 1, "an iteration")
    session.save("../../escape me")
    wait_for(lambda: session.notices_after(0), "the notice")
    notice = session.notices_after(0)[-1]
    assert notice.file == "escape-me.safetensors" and (tmp_path / "escape-me.safetensors").is_file()
    loaded = load_model(tmp_path / "escape-me.safetensors")
    assert loaded.model.config == TINY_MODEL and loaded.training["stopped"] == "saved in the studio"
    session.save("escape-me")  # its own file: replaced
    (tmp_path / "mine.safetensors").write_bytes(b"someone else's")
    with pytest.raises(NCAError, match="mine.safetensors already exists"):
        session.save("mine")
    session.save("")
    wait_for(lambda: "studio-disc.safetensors" in session.saved, "the default name")


def test_saving_on_exit_never_replaces_files_it_did_not_write(tmp_path, disc_png):
    folder = tmp_path / "studio"
    folder.mkdir()
    s = tiny_session(folder, str(disc_png))
    assert s.exit_paths() == (folder / "studio-disc.safetensors", folder / "studio-disc.ckpt.safetensors")
    (folder / "studio-disc.ckpt.safetensors").write_bytes(b"an earlier run's state")
    (folder / "studio-disc-2.safetensors").write_bytes(b"mine")
    model, state = s.save_on_exit()  # neither the taken -1 nor the half-taken -2: the first free name
    assert (model.name, state.name) == ("studio-disc-3.safetensors", "studio-disc-3.ckpt.safetensors")
    assert (folder / "studio-disc.ckpt.safetensors").read_bytes() == b"an earlier run's state"
    assert (folder / "studio-disc-2.safetensors").read_bytes() == b"mine"
    # A run that continues a state of this folder saves over it, and over its model.
    resumed = Session(open_run(str(state), 12, 4, TINY_MODEL, TINY_RECIPE, {}, torch.device("cpu")), folder, 12, 4,
                      resumed_from=state)
    assert resumed.exit_paths() == (model, state)
    assert load_model(model).model.config == TINY_MODEL


def test_file_stems_are_safe():
    assert file_stem("🦎") == "lizard" and file_stem("❤️") == "heavy-black-heart"
    assert file_stem("../../etc/passwd") == "etc-passwd" and file_stem(".hidden") == "hidden"
    assert file_stem("a/b\\c:d") == "a-b-c-d" and file_stem("...") == "" and len(file_stem("x" * 500)) == 64


def test_the_live_view_wound_kills_exactly_the_disc(disc_target):
    view = LiveView(TINY_MODEL, (20, 20), torch.device("cpu"))
    view.x = torch.rand(1, 20, 20, 8)
    before = view.x.clone()
    view.wound(7.0, 11.5, 4.0)
    for r in range(20):
        for c in range(20):
            inside = (r - 7.0) ** 2 + (c - 11.5) ** 2 < 16.0
            assert torch.equal(view.x[0, r, c], torch.zeros(8) if inside else before[0, r, c]), (r, c)


def test_the_live_view_regrows_and_restarts_when_it_dies():
    model = open_run("🦎", 12, 4, TINY_MODEL, TINY_RECIPE, {}, torch.device("cpu")).model  # untrained: a
    seed = seed_state(TINY_MODEL, 20, 20)  # step leaves the seed as it is
    view = LiveView(TINY_MODEL, (20, 20), torch.device("cpu"))
    view.regrow = 5
    view.advance(model, 5)
    view.x = view.x + 0.5  # what a grown pattern would be
    view.advance(model, 1)  # the sixth step starts from the seed again
    assert view.steps == 1 and view.quiet == 1 and torch.equal(view.x, seed)
    view.regrow = 0
    view.x = view.x + 0.5
    view.advance(model, 10)
    assert view.steps == 11 and not torch.equal(view.x, seed)
    view.x = torch.zeros_like(view.x)  # every cell dead
    view.advance(model, 1)
    assert view.restarts == 1 and view.steps == 0 and torch.equal(view.x, seed)


def test_straight_rgba_against_a_per_pixel_formula():
    x = torch.tensor([[[0.2, 0.1, 0.0, 0.4, 9.0], [0.5, 0.5, 0.5, 0.25, 0.0], [0.3, 0.0, 0.0, 0.0, 0.0]]])
    expected = [[128, 64, 0, 102], [255, 255, 255, 64], [0, 0, 0, 0]]  # colour / alpha, 0..255 rounded
    assert straight_rgba(x).tolist() == [expected]


def test_pictures_from_the_page_are_checked(tmp_path):
    target = picture_target(png_bytes(disc_image()), "my disc.png", 12, 4)
    assert target.shape == (20, 20) and target.name == "my disc.png"
    with pytest.raises(NCAError, match=r"not a picture the studio reads \(PNG, JPEG, WebP, GIF or BMP\)"):
        picture_target(b"%!PS-Adobe-3.0 EPSF-3.0\n", "x.eps", 12, 4)
    with pytest.raises(NCAError, match="the picture is 4097x2 pixels; the studio takes pictures up to 4096x4096"):
        picture_target(png_bytes(np.zeros((2, 4097, 4), np.uint8)), "wide.png", 12, 4)
    with pytest.raises(NCAError, match="the picture is 8.4 MB; the studio takes files up to 8 MB"):
        picture_target(b"\0" * (MAX_UPLOAD_BYTES + 1), "big.png", 12, 4)
    with pytest.raises(NCAError, match="target drawing is empty"):
        picture_target(png_bytes(np.zeros((30, 30, 4), np.uint8)), "drawing", 12, 4)


def test_emoji_are_never_read_as_paths(tmp_path):
    lizard = load_target("🦎", 12, 4).sha256
    (tmp_path / "🦎").write_bytes(png_bytes(disc_image()))  # a file that looks like an emoji
    assert load_target("🦎", 12, 4).sha256 != lizard  # `nca train 🦎` would now read the file
    assert emoji_target("🦎", 12, 4).sha256 == lizard
    for text in ("/etc/passwd", "🦎🦋", "", "a"):
        with pytest.raises(NCAError, match="is not one emoji"):
            emoji_target(text, 12, 4)


def test_model_uploads_go_through_the_validated_loader(tmp_path, disc_target):
    trainer = open_run("🦎", 12, 4, TINY_MODEL, TINY_RECIPE, {}, torch.device("cpu"))
    save_model(tmp_path / "m.safetensors", trainer.result, disc_target, {"iterations_done": 0})
    loaded = uploaded_model((tmp_path / "m.safetensors").read_bytes())
    assert loaded.target.sha256 == disc_target.sha256
    with pytest.raises(NCAError, match="^cannot read the uploaded model: not a safetensors file"):
        uploaded_model(b"\x80\x04 a pickle, never unpickled")
    with pytest.raises(NCAError, match=r"not an nca model file \(.safetensors\)"):
        uploaded_model(b"[[1, 2], [3]]")
    save_model(tmp_path / "rule.safetensors", trainer.result, disc_target, {}, kind="rule")
    with pytest.raises(NCAError, match="holds a rule model; training in the studio needs an image model"):
        uploaded_model((tmp_path / "rule.safetensors").read_bytes())


def test_a_run_starts_from_a_target_a_model_file_or_a_resume_state(tmp_path, disc_png, disc_target):
    trainer = open_run(disc_png, 12, 4, TINY_MODEL, TINY_RECIPE, {}, torch.device("cpu"))
    assert trainer.target.sha256 == disc_target.sha256 and trainer.iteration == 0
    for _ in range(2):
        trainer.iterate()
    save_state(trainer, tmp_path / "run.ckpt.safetensors")
    resumed = open_run(str(tmp_path / "run.ckpt.safetensors"), 12, 4, NCAConfig(), TrainConfig(), {"lr": 1e-3}, "cpu")
    assert resumed.iteration == 2 and resumed.config.lr == 1e-3 and resumed.config.pool_size == 8
    save_model(tmp_path / "m.safetensors", trainer.result, disc_target, {**trainer.summary("done"),
                                                                        "iterations_done": 5000})
    continued = open_run(str(tmp_path / "m.safetensors"), 12, 4, NCAConfig(), TrainConfig(), {}, "cpu")
    assert continued.model.config == TINY_MODEL and continued.config.batch == 4 and continued.iteration == 0
    for a, b in zip(continued.averaged.parameters(), trainer.result.parameters()):
        assert torch.equal(a, b)
    assert continued.decay_from == 0  # the file's run had dropped its rate: the continued run starts there
    lizard = open_run(None, 12, 4, TINY_MODEL, TINY_RECIPE, {}, "cpu")  # the bundled lizard, continued
    bundled = load_model("lizard")
    assert lizard.target.sha256 == bundled.target.sha256 and lizard.model.config == bundled.model.config
    assert all(torch.equal(a, b) for a, b in zip(lizard.averaged.parameters(), bundled.model.parameters()))
    assert lizard.config.pool_size == 256 and lizard.decay_from == 0
    with pytest.raises(NCAError, match=r"not found: missing.png \(give an emoji, a picture, a model file"):
        open_run("missing.png", 12, 4, TINY_MODEL, TINY_RECIPE, {}, "cpu")


def test_the_pool_samples_shown_are_grown_ones_first():
    import random

    from nca_cli.studio.snapshot import pool_choice

    pool = seed_state(TINY_MODEL, 20, 20, batch=10)
    pool[[2, 7], :5, :5, 3] = 1.0  # two grown samples among seeds
    for seed in range(5):
        chosen = pool_choice(pool, 0.1, random.Random(seed), count=4)
        assert len(chosen) == len(set(chosen)) == 4 and set(chosen[:2]) == {2, 7}
    assert sorted(pool_choice(pool[:3], 0.1, random.Random(0), count=4)) == [0, 1, 2]


def test_damage_in_training_is_the_regen_experiment(tmp_path, disc_png):
    trainer = open_run(disc_png, 12, 4, TINY_MODEL, TrainConfig.from_dict({**TINY_RECIPE.to_dict(), "mode": "persist"}),
                       {}, torch.device("cpu"))
    s = Session(trainer, tmp_path, 12, 4)
    s.start()
    try:
        s.set_knobs(damage_count=2)  # remembered; persist stays persist
        wait_for(lambda: s.snapshot.figures["knobs"]["damage_count"] == 2, "the count")
        assert s.trainer.config.mode == "persist"
        s.set_knobs(damage=True)
        wait_for(lambda: s.trainer.config.mode == "regen", "damage on")
        assert s.trainer.config.damage_count == 2
        wait_for(lambda: s.snapshot.figures["knobs"]["damage"], "damage shown on")
        s.set_knobs(damage=False)
        wait_for(lambda: s.trainer.config.damage_count == 0, "damage off")
        assert s.trainer.config.mode == "regen"
        wait_for(lambda: not s.snapshot.figures["knobs"]["damage"], "damage shown off")
    finally:
        s.stop()
