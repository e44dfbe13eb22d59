"""The library without the command line: rollout hooks, the wound experiment, finishing a run,
model kinds, and the layering of the package (the library never imports the CLI)."""

import ast
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from nca_cli.engine import NCA, NCAConfig, seed_state
from nca_cli.errors import NCAError
from nca_cli.formats.model_file import load_model, save_model
from nca_cli.growth import RenderOptions, Wound, measure_quality, wound_experiment
from nca_cli.growth.damage import apply_damage
from nca_cli.training import Trainer, TrainConfig, finish_training, resume_path, save_state

from . import reference
from .conftest import TINY_MODEL, TINY_TRAIN

PACKAGE = Path(__file__).resolve().parents[1] / "nca_cli"


def random_model(seed=0) -> NCA:
    torch.manual_seed(seed)
    model = NCA(NCAConfig(channels=8, hidden=16))
    torch.nn.init.normal_(model.w2.weight, std=0.2)
    return model


def test_rollout_hook_sees_every_step_and_can_replace_the_state():
    model = random_model()
    x = seed_state(model.config, 9, 9)
    seen = []

    def hook(k, state):
        seen.append(k)
        return torch.zeros_like(state) if k == 2 else None

    out = model.rollout(x, 4, generator=torch.Generator().manual_seed(0), on_step=hook)
    assert seen == [0, 1, 2, 3, 4]
    assert torch.equal(out, torch.zeros_like(out))  # emptied at step 2, and nothing grows from nothing


def test_per_sample_angles_fire_as_each_sample_would_alone():
    model = random_model()
    x = seed_state(model.config, 12, 12, batch=2)
    gens = [torch.Generator().manual_seed(5) for _ in range(2)]
    both = model.rollout(x, 6, angle=[0.0, 90.0], generator=gens)
    alone = [model.rollout(x[:1], 6, angle=a, generator=torch.Generator().manual_seed(5)) for a in (0.0, 90.0)]
    assert torch.equal(both, torch.cat(alone))


def test_wound_experiment_matches_a_hand_written_run():
    """The library's wound experiment against the same run written out step by step."""
    model = random_model(1)
    x0 = model.rollout(seed_state(model.config, 16, 16), 20, generator=torch.Generator().manual_seed(9))
    target = x0[0, ..., :4].clone()
    wound = Wound(shape="circle", radius=3)
    options = RenderOptions(output=None, steps=30, seed=4)
    report = wound_experiment(model, x0, wound, [10], options, target=target, tolerance=0.002)

    g = torch.Generator().manual_seed(4)
    x, losses, living = x0, [], []
    with torch.no_grad():
        for k in range(30):
            if k == 10:
                before = float((x[0, ..., :4] - target).square().mean())
                x = apply_damage(x, wound.masks(x))
                after = float((x[0, ..., :4] - target).square().mean())
            x = reference.step(model, x, torch.rand(x.shape[:3], generator=g) < 0.5)
            losses.append(float((x[0, ..., :4] - target).square().mean()))
            living.append(bool((torch.nn.functional.max_pool2d(x[:, None, ..., 3], 3, 1, 1) > 0.1).any()))
    healed = next((i + 1 for i, (v, a) in enumerate(zip(losses[10:], living[10:])) if a and v <= before + 0.002), None)
    (r,) = report.recoveries
    assert r.died == (not living[-1])
    assert (r.step, r.before, r.after) == (10, pytest.approx(before), pytest.approx(after))
    assert r.final == pytest.approx(losses[-1], abs=1e-6)
    assert r.recovered_at == (None if healed is None else 10 + healed)
    assert report.against == "the target"
    with pytest.raises(NCAError, match="wound steps must be between 0 and 29, got 30"):
        wound_experiment(model, x0, wound, [30], options)


def test_finish_training_scores_writes_and_tidies(disc_target, tmp_path):
    trainer = Trainer(TINY_MODEL, TINY_TRAIN, disc_target)
    trainer.run()
    output = tmp_path / "m.safetensors"
    state = resume_path(output)
    save_state(trainer, state)
    finished = finish_training(trainer, output, state, "done", plots=True)
    assert not state.exists()
    assert [p.name for p in finished.plots] == ["m.loss.png", "m.preview.png"] and all(p.exists() for p in finished.plots)
    loaded = load_model(output)
    assert loaded.training["grow_loss"] == finished.quality.grow_loss
    again = measure_quality(loaded.model, loaded.target, runs=8)
    assert again.grow_loss == pytest.approx(finished.quality.grow_loss, rel=1e-5)


def test_model_files_record_their_kind_and_other_kinds_are_refused(tmp_path):
    model = random_model()
    path = tmp_path / "m.safetensors"
    save_model(path, model, None, {})
    loaded = load_model(path)
    assert loaded.kind == "image"
    loaded.expect("image", "growing a picture")
    tensors = load_file(path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file(tensors, str(tmp_path / "rule.safetensors"), metadata={**meta, "kind": "sculpture"})
    with pytest.raises(NCAError) as exc:
        load_model(tmp_path / "rule.safetensors")
    assert str(exc.value).startswith(f"{tmp_path}/rule.safetensors holds a model of kind 'sculpture'; this nca reads image, ")
    del meta["kind"]  # files written before kinds existed are image models
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    assert load_model(tmp_path / "old.safetensors").kind == "image"


def imports_of(path: Path) -> set[str]:
    """Modules a file imports, as absolute names (relative imports resolved against the package)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}
    return found


def test_the_library_never_imports_the_command_line_or_terminal_libraries():
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts or path.name in ("__main__.py", "launch.py"):  # the entry points
            continue
        bad = {m for m in imports_of(path) if m.split(".")[0] in ("typer", "rich", "click")
               or m.startswith("nca_cli.cli")}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_the_engine_imports_only_torch_and_itself():
    for path in (PACKAGE / "engine").glob("*.py"):
        for m in imports_of(path):
            assert m.split(".")[0] in ("torch", "__future__", "functools", "itertools", "math", "dataclasses",
                                       "typing") or m.startswith(("nca_cli.engine", "nca_cli.errors")), (path.name, m)


def test_no_import_cycles_between_modules():
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imports_of(path) if m in modules and m != name and not path.name == "__init__.py"}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(trail + [nxt])}"
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_the_readme_shows_the_library_example_as_it_is():
    root = PACKAGE.parent
    readme = (root / "README.md").read_text()
    shown = readme.split("## Use it from Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    example = (root / "examples" / "library_api.py").read_text().split('"""', 2)[2].strip()
    assert shown.strip() == example
