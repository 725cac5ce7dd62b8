"""Why a user-guided model does (not) copy its hints: the size of each loss term and of its gradient
at the layers the hint's path runs through, for a checkpoint, on training photos with simulated
hints (Zhang, Zhu et al. 2017's sampling), plus how often the geometric draw reaches a hint count.

    python -m experiments.hints_diagnosis --checkpoint runs/user_guided_tiny --data-dir DIR --size 32

Groups of parameters: ``conv1`` (block 1, which alone sees the hints at full resolution and feeds
the conv1 -> conv10 shortcut), ``trunk`` (blocks 2-8, shared by both outputs), ``regression only``
(blocks 9, 10, their shortcuts and ``model_out``) and ``class only`` (``model_class``). For each,
the global gradient norm of the regression (Huber) term and of the classification term as the
run weighs them (``--class-weight``), evaluated in training mode on one batch.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.checkpointing import load_model
from colorjax.models.siggraph17 import siggraph17_bins
from colorjax.training import losses
from colorjax.training.simulated_hints import GEOMETRIC_P, HintSampling, simulate_hints
from colorjax.training.steps import Objective, class_loss, lab_batch
from experiments.hints_curve import photos

GROUPS = {
    "conv1": ("model1", "norm1", "acts1"),
    "trunk": tuple(f"{p}{b}" for b in range(2, 9) for p in ("model", "norm", "acts")) + ("model8up", "model3short8"),
    "regression only": ("model9", "model9up", "model2short9", "acts9", "model10", "model10up", "model1short10",
                        "acts10", "model_out"),
    "class only": ("model_class",),
}


def group_norms(grads: nnx.State) -> dict[str, float]:
    flat = nnx.to_flat_state(grads)
    sums = dict.fromkeys(GROUPS, 0.0)
    for path, value in flat:
        names = [str(p) for p in path]
        module = names[1] if names[0] == "backbone" and len(names) > 1 else names[0]
        for group, members in GROUPS.items():
            if module in members:
                sums[group] += float(jnp.sum(jnp.square(value.get_value() if hasattr(value, "get_value") else value)))
    return {k: float(np.sqrt(v)) for k, v in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--spec", default="tiny_imagenet_64")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--huber-delta-ab", type=float, default=1.0)
    parser.add_argument("--class-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print("geometric hint counts, p = 1/8: P(n >= k) = (7/8)^k:",
          ", ".join(f"k={k}: {(1 - GEOMETRIC_P) ** k:.4f}" for k in (1, 2, 5, 10, 20, 50)))
    model, _, _ = load_model(args.checkpoint)
    model.train()
    rgb = photos(args.spec, args.data_dir, "train", args.size, args.images)
    L, ab, colourful = lab_batch(jnp.asarray(rgb))
    hints = simulate_hints(jax.random.key(args.seed), ab, HintSampling())
    mask = hints[..., 2] > 0
    print(f"{len(rgb)} training photos of {args.size} px; hinted pixels {float(mask.mean()):.3f} of all")
    obj = Objective(head="regression", output_stride=1, class_centres=siggraph17_bins())

    def huber(model):
        out, _ = model.with_class_logits(L, hints)
        return losses.masked_mean(losses.ab_pixel_loss(out, ab, "huber", args.huber_delta_ab / 110.0), colourful)

    def cross_entropy(model):
        _, logits = model.with_class_logits(L, hints)
        return args.class_weight * class_loss(obj, logits, ab, colourful)

    for name, fn in (("regression (Huber)", huber), (f"classification x {args.class_weight:g}", cross_entropy)):
        value, grads = nnx.jit(nnx.value_and_grad(fn))(model)
        norms = group_norms(grads)
        print(f"{name:28s} loss {float(value):.3e}  grad norms: "
              + ", ".join(f"{k} {v:.2e}" for k, v in norms.items()))
    model.eval()
    out = nnx.jit(lambda m: m(L, hints))(model)
    err = np.linalg.norm(np.asarray(out - hints[..., :2]), axis=-1)[np.asarray(mask)]
    print(f"at hinted pixels |ab - hint|: mean {err.mean():.2f}, median {np.median(err):.2f}, max {err.max():.2f}")
    print(f"(Huber in ab units = 110^2 x the loss above: {float(huber(model)) * 110 ** 2:.2f})")


if __name__ == "__main__":
    main()
