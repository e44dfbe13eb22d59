"""Quality of a training recipe against iterations and training time: one run, scored along the way.

    python bench/recipe_curve.py OUT.json [--seed S] [--iterations N] [--every K] [--set key=value ...]

Trains the regenerating lizard (the README's main job) with the default recipe, changed by each
--set (TrainConfig fields), and every K iterations scores the weight average as nca train does at
the end (grown and regrown losses, 8 runs; the scoring's time is not counted). Records for each
point the iterations, the training's wall time and CPU time (one thread: CPU time is what the
iterations cost even on a busy machine), and the two losses.
"""

import argparse
import json
import time

import torch

from nca_cli.engine import NCAConfig
from nca_cli.growth.quality import measure_quality
from nca_cli.targets import load_target
from nca_cli.training import Trainer, TrainConfig


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    changes = dict(item.split("=", 1) for item in args.set)
    recipe = TrainConfig.from_dict({**TrainConfig().to_dict(), "seed": args.seed, "iterations": args.iterations,
                                    **{k: parse_value(v) for k, v in changes.items()}})
    trainer = Trainer(NCAConfig(), recipe, load_target("🦎"))
    points, wall, cpu = [], 0.0, 0.0
    while trainer.iteration < recipe.iterations:
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(min(args.every, recipe.iterations - trainer.iteration)):
            trainer.iterate()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        q = measure_quality(trainer.result, trainer.target, runs=8)
        points.append({"iterations": trainer.iteration, "wall_s": wall, "cpu_s": cpu,
                       "grow": q.grow_loss, "regrow": q.regrow_loss})
        print(json.dumps(points[-1]), flush=True)
    with open(args.out, "w") as f:
        json.dump({"changes": changes, "seed": args.seed, "threads": args.threads, "points": points}, f, indent=1)


if __name__ == "__main__":
    main()
