"""Architecture checks without allocating full-size weights: parameter counts, strides, receptive field."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.models import PatchDiscriminator, VGG16Features, build_model, receptive_field


def rngs(seed=0):
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def abstract(make):
    return nnx.eval_shape(make)


def abstract_forward(model, shape):
    graphdef, state = nnx.split(model)
    return jax.eval_shape(lambda s, L: nnx.merge(graphdef, s)(L), state, jax.ShapeDtypeStruct(shape, jnp.float32))


def param_count(module) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(module, nnx.Param))))


def eccv16_count_by_hand() -> int:
    """ECCV16's conv parameters summed from the table of docs/reference.md section 2 (weights + biases)."""
    convs = [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
    convs += [(256, 512)] + [(512, 512)] * 11  # blocks 4-7: 12 convs, the first from 256
    total = sum(9 * i * o + o for i, o in convs)
    total += 16 * 512 * 256 + 256  # model8.0: 4 x 4 transposed conv
    total += 2 * (9 * 256 * 256 + 256)  # model8.2, model8.4
    return total + 256 * 313 + 313  # model8.6: 1 x 1 to the 313 logits


# Pinned parameter counts (nnx.Param only; BatchNorm statistics and bin centres are not parameters).
FULL_SIZE_PARAMS = {
    ("eccv16", "classification"): 32_230_393,
    ("eccv16", "regression"): 32_150_466,
    ("unet", "classification"): 31_056_633,
    ("unet", "regression"): 31_036_418,
    ("pix2pix", "classification"): 55_047_097,
    ("pix2pix", "regression"): 54_409_858,
    ("patchnet", "classification"): 2_318_821,
    ("patchnet", "regression"): 1_551_584,
}


@pytest.mark.parametrize("backbone, head", sorted(FULL_SIZE_PARAMS))
def test_full_size_parameter_counts_are_pinned(backbone, head):
    model = abstract(lambda: build_model(backbone, head, rngs=nnx.Rngs(0)))
    assert param_count(model) == FULL_SIZE_PARAMS[backbone, head]


def test_eccv16_has_32_2_million_parameters_as_the_paper_table_adds_up():
    model = abstract(lambda: build_model("eccv16", "classification", rngs=nnx.Rngs(0)))
    assert param_count(model) == eccv16_count_by_hand()
    assert round(param_count(model) / 1e6, 1) == 32.2


def test_eccv16_output_stride_is_4_at_256():
    model = abstract(lambda: build_model("eccv16", "classification", rngs=nnx.Rngs(0)))
    out = abstract_forward(model, (1, 256, 256, 1))
    assert out.shape == (1, 64, 64, 313)
    assert model.output_stride == 256 // 64


def test_other_full_size_parts():
    assert param_count(abstract(lambda: PatchDiscriminator(rngs=nnx.Rngs(0)))) == 2_765_633
    # torchvision's vgg16().features has 14,714,688 parameters.
    assert param_count(abstract(lambda: VGG16Features(("relu5_3",), rngs=nnx.Rngs(0)))) == 14_714_688


def test_patchgan_receptive_field_is_70_by_layer_specs_and_by_gradient():
    disc = PatchDiscriminator(width=1 / 16, rngs=rngs())
    assert receptive_field(disc.layer_specs) == 70 and disc.receptive_field == 70
    disc.eval()  # running statistics: no coupling of pixels through batch statistics
    L = jax.random.uniform(jax.random.key(1), (1, 96, 96, 1), minval=0, maxval=100)
    ab = jax.random.normal(jax.random.key(2), (1, 96, 96, 2)) * 30

    def centre_logit(L, ab):
        out = disc(L, ab)
        return out[0, out.shape[1] // 2, out.shape[2] // 2, 0]

    grad_L, grad_ab = jax.jit(jax.grad(centre_logit, argnums=(0, 1)))(L, ab)
    touched = np.abs(np.asarray(grad_L[0, ..., 0])) + np.abs(np.asarray(grad_ab[0])).sum(-1) > 0
    rows, cols = np.nonzero(touched.any(1))[0], np.nonzero(touched.any(0))[0]
    assert rows[-1] - rows[0] + 1 == 70 and cols[-1] - cols[0] + 1 == 70


def test_patchnet_turns_32_into_16_with_filters_growing_by_q_over_8():
    centres = np.zeros((16, 2)) + np.arange(16)[:, None]
    model = abstract(lambda: build_model("patchnet", "classification", centres=centres, rngs=rngs()))
    widths = [layer.out_features for layer in model.backbone.convs] + [model.backbone.out.out_features]
    assert widths == [2, 4, 6, 8, 10, 12, 14, 16]
    assert abstract_forward(model, (1, 32, 32, 1)).shape == (1, 16, 16, 16)


def test_pix2pix_unet_256_levels_and_dropout_placement():
    model = abstract(lambda: build_model("pix2pix", "regression", rngs=nnx.Rngs(0)))
    levels = model.backbone.levels
    assert [level.down.out_features for level in levels] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert [level.dropout is not None for level in levels] == [False] * 4 + [True] * 3 + [False]
    assert levels[0].down_norm is None and levels[-1].down_norm is None and levels[0].up_norm is None


@pytest.mark.parametrize("num_downs", [5, 6, 7, 8, 9])
def test_pix2pix_dropout_is_on_the_num_downs_minus_5_inner_levels_of_width_512(num_downs):
    """The authors' unet_256 builds, from the inside out: the innermost block, num_downs - 5 blocks
    of 8 x 64 channels with dropout, then the 512 -> 256 -> 128 -> 64 blocks and the outermost."""
    model = abstract(lambda: build_model("pix2pix", "regression", num_downs=num_downs, rngs=nnx.Rngs(0)))
    levels = model.backbone.levels
    with_dropout = [i for i, level in enumerate(levels) if level.dropout is not None]
    assert with_dropout == list(range(4, num_downs - 1)) and len(with_dropout) == num_downs - 5
    assert all(levels[i].down.in_features == levels[i].down.out_features == 512 for i in with_dropout)


@pytest.mark.parametrize("num_downs, stochastic", [(5, False), (6, True)])
def test_pix2pix_training_outputs_vary_only_where_the_authors_put_dropout(num_downs, stochastic):
    model = build_model("pix2pix", "regression", width=1 / 32, num_downs=num_downs, rngs=nnx.Rngs(0))
    model.train()
    L = jax.random.uniform(jax.random.key(1), (2, 64, 64, 1), maxval=100.0)
    first, second = model(L), model(L)
    assert bool(jnp.any(first != second)) == stochastic


def test_pix2pix_explicit_num_dropout_still_overrides_the_rule():
    model = abstract(lambda: build_model("pix2pix", "regression", num_downs=6, num_dropout=3, rngs=nnx.Rngs(0)))
    assert [level.dropout is not None for level in model.backbone.levels] == [False, False, True, True, True, False]


def test_every_backbone_declares_the_contract_and_a_missing_declaration_is_an_error():
    """Each backbone states its output stride, border, input multiple and hint input (checked when
    built); one without a border is refused by name, not run with a silent 0."""
    from colorjax.models import BACKBONES
    from colorjax.models.backbone import Backbone, check_backbone

    for name in BACKBONES:
        model = build_model(name, "regression", width=1 / 16, rngs=nnx.Rngs(0))
        assert isinstance(model.backbone, Backbone)
        assert model.border >= 0 and model.output_stride >= 1 and model.takes_hints == (name == "siggraph17")

    class NoBorder(Backbone):
        output_stride, input_multiple = 1, 1

        def __call__(self, L):
            return jnp.zeros((*L.shape[:-1], 2))

    with pytest.raises(TypeError, match="NoBorder does not declare 'border'"):
        check_backbone(NoBorder())

    class FloatStride(NoBorder):
        border, output_stride = 0, 1.0

    with pytest.raises(TypeError, match="FloatStride.output_stride must be an int >= 1"):
        check_backbone(FloatStride())
