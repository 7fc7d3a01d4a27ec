"""Training speed in the channels-last (NHWC) memory layout against the default (NCHW).

For each model, reprlab's Trainer runs one epoch over the same random images in each layout
(``train.channels_last`` false / true), from the same initial weights, in alternating rounds
(ABBA...) in one process after one untimed epoch of each, so both layouts see the same machine
load. Reported per model: CPU milliseconds per training image in each layout (process CPU time
of the epoch) and their ratio (channels-last / default; below 1 is faster), the median over
rounds, with the spread of the per-round ratios. The models are those of the configs the
benchmarks of BENCHMARKS.md use, at their configs' batch sizes:

    conv_ae   configs/conv_ae.yaml (1x28x28, batch 16)
    resnet_ae configs/resnet_ae.yaml (1x28x28, batch 128)
    dann      preset mnist, as configs/adapt_mnist_mnistm.yaml (3x32x32 source + target, batch 64)
    pixelda   configs/adapt_mnist_mnistm_pixelda.yaml (3x32x32, batch 32) with the paper's generator
    pixelda_cpu  the same with its CPU-budget generator (32 channels, 2 blocks) and feature_weight=1

    python bench/memory_format.py --images 1024 --rounds 6 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402
from reprlab.data.dataset import ImageData  # noqa: E402
from reprlab.models import create_model  # noqa: E402
from reprlab.training.engine import Trainer  # noqa: E402

#: name -> (model options, image shape, batch size, optimiser settings, two domains)
MODELS = {
    "conv_ae": (dict(name="conv_ae", latent_dim=32, channels=(32, 64), activation="silu", upsample="pixelshuffle"),
                (1, 28, 28), 16, dict(optimizer="adam", lr=8e-3), False),
    "resnet_ae": (dict(name="resnet_ae", latent_dim=32, channels=(32, 64, 128)), (1, 28, 28), 128,
                  dict(optimizer="adam", lr=2e-3), False),
    "dann": (dict(name="dann", preset="mnist", num_classes=10), (3, 32, 32), 64,
             dict(optimizer="sgd", lr=0.01, momentum=0.9), True),
    "pixelda": (dict(name="pixelda", num_classes=10), (3, 32, 32), 32,
                dict(optimizer="adam", lr=2e-4, betas=(0.5, 0.999)), True),
    "pixelda_cpu": (dict(name="pixelda", num_classes=10, gen_channels=32, gen_blocks=2, feature_weight=1.0),
                    (3, 32, 32), 32, dict(optimizer="adam", lr=2e-4, betas=(0.5, 0.999)), True),
}


def epoch_cpu_ms_per_image(model, data, target, batch_size, optim, **trainer_options) -> float:
    """Process CPU milliseconds per training image of one epoch (a fresh Trainer, as a run makes)."""
    trainer = Trainer(epochs=1, batch_size=batch_size, seed=0, **optim, **trainer_options)
    start = time.process_time()
    trainer.fit(model, data, target=target)
    return (time.process_time() - start) * 1000 / len(data)


def compare_trainer_options(name: str, *, images: int, rounds: int, settings: dict[str, dict]) -> dict:
    """CPU ms per image of model ``name`` under two Trainer settings (label -> options), and their ratio.

    Same random images and initial weights for both; one untimed epoch of each (the first epoch
    of a setting builds its kernels), then ``rounds`` rounds in alternating order (ABBA...).
    """
    (a, a_options), (b, b_options) = settings.items()
    options, shape, batch_size, optim, two_domains = MODELS[name]
    options = dict(options)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (images,), generator=g)
    data = ImageData(torch.rand(images, *shape, generator=g), labels)
    target = ImageData(torch.rand(images, *shape, generator=g)) if two_domains else None
    torch.manual_seed(0)
    initial = create_model(options.pop("name"), input_shape=shape, output_range="-1_1", **options)

    def epoch(label: str) -> float:
        return epoch_cpu_ms_per_image(copy.deepcopy(initial), data, target, batch_size, optim, **settings[label])

    for label in settings:  # warm-up, not counted
        epoch(label)
    times: dict[str, list[float]] = {a: [], b: []}
    for r in range(rounds):
        for label in ((a, b) if r % 2 == 0 else (b, a)):
            times[label].append(epoch(label))
    ratios = [y / x for x, y in zip(times[a], times[b])]
    result = {"batch_size": batch_size, f"{a}_ms_per_image": round(statistics.median(times[a]), 3),
              f"{b}_ms_per_image": round(statistics.median(times[b]), 3),
              "ratio_median": round(statistics.median(ratios), 3),
              "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3)}
    print(f"{name}: {a} {result[f'{a}_ms_per_image']} ms/img, {b} {result[f'{b}_ms_per_image']} ms/img, "
          f"ratio {result['ratio_median']} (rounds {result['ratio_min']}..{result['ratio_max']})", flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--images", type=int, default=1024, help="training images per epoch (random, seeded)")
    p.add_argument("--rounds", type=int, default=6, help="rounds; each runs both layouts, in alternating order")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="memory_format")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    layouts = {"nchw": {"channels_last": False}, "channels_last": {"channels_last": True}}
    results = {name: compare_trainer_options(name, images=args.images, rounds=args.rounds, settings=layouts)
               for name in args.models}
    path = save(args.tag, {"command": "python bench/memory_format.py " + " ".join(sys.argv[1:]),
                           "images": args.images, "rounds": args.rounds, "threads": args.threads, "models": results})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
