"""Model builders: architecture, heads, initialisation, regularisation, augmentation, cost."""

import numpy as np
import pytest

from skcharclf._tf import import_keras
from skcharclf.models import (
    AffineNormalization,
    augmentation_layers,
    build_backbone,
    build_char_model,
    count_flops,
    set_head_bias,
    set_normalization,
)

keras = import_keras()

# Keras 3.15 converts its tensors with a numpy-1 style __array__ (a Keras issue, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _layers(model, kind):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, kind)
    ]


def test_flat_batch_in_logits_out():
    model = build_char_model((16, 12), 7, filters=(8, 16), seed=0)
    out = model(np.random.default_rng(0).random((5, 16 * 12), dtype="float32"))
    assert tuple(out.shape) == (5, 7)
    names = {layer.name for layer in model.layers}
    assert {"to_image", "normalization", "backbone", "head_pool", "logits"} <= names


def test_stride_two_stem_and_stages_halve_resolution():
    backbone = build_backbone((32, 32), filters=(8, 16, 32))
    assert tuple(backbone.output.shape) == (None, 4, 4, 32)  # 32 -> 16 (stem) -> 8 -> 4


def test_default_network_is_cheap_enough_for_a_cpu():
    model = build_char_model((32, 32), 10)
    flops = count_flops(model)
    # the budget: at most ~25 MFLOPs per 32x32 image forward
    assert 10e6 < flops < 25e6
    assert count_flops(build_char_model((32, 32), 10, filters=(32, 64, 128))) > 1.5 * flops


def test_zero_init_residual():
    zero = build_backbone((16, 16), filters=(8, 16), zero_init_residual=True, seed=0)
    for layer in _layers(zero, keras.layers.Conv2D):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        assert (np.abs(kernel).max() == 0) == layer.name.endswith("_conv2"), layer.name
    plain = build_backbone((16, 16), filters=(8, 16), zero_init_residual=False, seed=0)
    assert all(
        np.abs(keras.ops.convert_to_numpy(layer.kernel)).max() > 0
        for layer in _layers(plain, keras.layers.Conv2D)
    )


@pytest.mark.parametrize(("batch_norm", "zeroed"), [("frozen", True), ("trainable", False)])
def test_zero_init_residual_is_off_before_a_trainable_batch_norm(batch_norm, zeroed):
    backbone = build_backbone((16, 16), filters=(8,), batch_norm=batch_norm, seed=0)
    conv2 = backbone.get_layer("stage1_block1_conv2")
    assert (np.abs(keras.ops.convert_to_numpy(conv2.kernel)).max() == 0) == zeroed


def test_he_uniform_convolutions_and_glorot_head():
    model = build_char_model((16, 16), 5, filters=(8,), seed=0)
    stem = model.get_layer("backbone").get_layer("stem_conv")
    kernel = keras.ops.convert_to_numpy(stem.kernel)
    limit = np.sqrt(6.0 / 9)  # He-uniform, fan_in = 3 * 3 * 1
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.7 * limit
    head = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    glorot = np.sqrt(6.0 / (8 + 5))
    assert np.abs(head).max() <= glorot and np.abs(head).max() > 0.7 * glorot


def test_identity_shortcuts_and_projections():
    backbone = build_backbone((16, 16), filters=(8, 16), blocks_per_stage=2)
    names = [layer.name for layer in backbone.layers]
    assert sum(name.endswith("_add") for name in names) == 4
    # only the first block of a stage that changes width or resolution needs a projection
    assert [name for name in names if name.endswith("_proj")] == ["stage2_block1_proj"]


def test_plain_cnn_has_no_shortcuts_and_the_same_cost():
    resnet = build_char_model((32, 32), 10, architecture="resnet")
    cnn = build_char_model((32, 32), 10, architecture="cnn")
    assert not _layers(cnn, keras.layers.Add)
    projections = sum(
        count_flops(keras.Model(layer.input, layer.output))
        for layer in _layers(resnet, keras.layers.Conv2D)
        if layer.name.endswith("_proj")
    )
    assert count_flops(cnn) == count_flops(resnet) - projections


def test_flatten_head_has_more_parameters_than_gap():
    gap = build_char_model((32, 32), 10, head="gap")
    flat = build_char_model((32, 32), 10, head="flatten")
    assert flat.count_params() > gap.count_params()
    assert flat.get_layer("logits").kernel.shape[0] == 4 * 4 * 96
    assert gap.get_layer("logits").kernel.shape[0] == 96


@pytest.mark.parametrize(("mode", "trainable"), [("frozen", 0), ("trainable", 2)])
def test_batch_norm_modes(mode, trainable):
    backbone = build_backbone((16, 16), filters=(8,), batch_norm=mode)
    norms = _layers(backbone, keras.layers.BatchNormalization)
    assert len(norms) == 3  # stem + two convolutions of the block
    assert all(len(layer.trainable_weights) == trainable for layer in norms)
    assert not _layers(build_backbone((16, 16), filters=(8,)), keras.layers.BatchNormalization)


def test_dropout_after_stages_and_only_before_a_flatten_head():
    gap = build_char_model((16, 16), 3, filters=(8, 16), dropout=0.3)
    names = sorted(layer.name for layer in _layers(gap, keras.layers.Dropout))
    assert names == ["stage1_dropout", "stage2_dropout"]
    flat = build_char_model((16, 16), 3, filters=(8, 16), dropout=0.3, head="flatten")
    assert "head_dropout" in [layer.name for layer in _layers(flat, keras.layers.Dropout)]
    x = np.random.default_rng(0).random((4, 256), dtype="float32")
    def run(training):
        return keras.ops.convert_to_numpy(gap(x, training=training))

    np.testing.assert_array_equal(run(False), run(False))
    assert not np.allclose(run(True), run(False))


def test_l2_adds_a_penalty_per_kernel():
    model = build_char_model((16, 16), 3, filters=(8,), l2=1e-2, seed=0)
    model(np.zeros((1, 256), dtype="float32"))
    kernels = [layer.kernel for layer in _layers(model, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(model.losses) == len(kernels)
    expected = sum(1e-2 * float(np.sum(keras.ops.convert_to_numpy(k) ** 2)) for k in kernels)
    assert sum(float(loss) for loss in model.losses) == pytest.approx(expected, rel=1e-4)


def test_online_augmentation_only_in_training():
    model = build_char_model((16, 16), 3, filters=(8,), online_augmentation="default", seed=0)
    plain = build_char_model((16, 16), 3, filters=(8,), seed=0)
    plain.set_weights(model.get_weights())
    names = [layer.name for layer in model.layers if layer.name.startswith("augment_")]
    assert names == [
        "augment_rotation",
        "augment_translation",
        "augment_zoom",
        "augment_contrast",
    ]
    x = np.zeros((8, 256), dtype="float32")
    x[:, 100:140] = 1.0
    def run(net, training):
        return keras.ops.convert_to_numpy(net(x, training=training))

    np.testing.assert_allclose(run(model, False), run(plain, False), atol=1e-6)
    assert not np.allclose(run(model, True), run(plain, True), atol=1e-4)
    light = build_char_model((16, 16), 3, filters=(8,), online_augmentation="light")
    assert "augment_zoom" not in [layer.name for layer in light.layers]


def _augment(images, level="default", seed=0, names=None):
    for layer in augmentation_layers(level, seed=seed):
        if names is None or layer.name in names:
            images = layer(images, training=True)
    return keras.ops.convert_to_numpy(images)


@pytest.mark.parametrize("level", ["light", "default"])
def test_augmentation_keeps_the_pixels_range_of_any_data(level):
    # Pixels centred on 100 (far outside the [0, 1] flat-batch contract, like scikit-learn's
    # estimator checks): neither the areas shifted into view nor the contrast change may bring
    # in values foreign to the data, such as a constant 0 or a clip to [0, 1].
    rng = np.random.default_rng(0)
    images = rng.normal(100.0, 1.0, size=(16, 12, 12, 1)).astype("float32")
    out = _augment(images, level)
    span = images.max() - images.min()
    assert out.min() > images.min() - 0.25 * span
    assert out.max() < images.max() + 0.25 * span
    assert out.std() > 0.5 * images.std()


def test_augmentation_fills_a_character_crop_with_its_background():
    # A bright stroke on a uniform background (the flat-batch contract, here at 0.2): the
    # geometric layers bring in background, not a foreign constant.
    images = np.full((16, 16, 16, 1), 0.2, dtype="float32")
    images[:, 6:10, 7:9] = 1.0
    geometric = {"augment_rotation", "augment_translation", "augment_zoom"}
    out = _augment(images, names=geometric)
    border = np.concatenate([out[:, 0, :], out[:, -1, :], out[:, :, 0], out[:, :, -1]], axis=1)
    np.testing.assert_allclose(border, 0.2, atol=0.01)
    assert not np.allclose(out, images)


def test_normalization_and_bias_are_set_in_the_model():
    model = build_char_model((8, 8), 3, filters=(4,))
    set_normalization(model, 2.0, -1.0)
    set_head_bias(model, np.log([0.7, 0.2, 0.1]))
    layer = model.get_layer("normalization")
    out = keras.ops.convert_to_numpy(layer(np.array([0.0, 0.5, 1.0], dtype="float32")))
    np.testing.assert_allclose(out, [-1, 0, 1])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.get_layer("logits").bias), np.log([0.7, 0.2, 0.1]),
        rtol=1e-6,
    )


def test_custom_architecture_becomes_the_backbone():
    def tiny(input_shape):
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(4, 3, name="only_conv")(inputs)
        return keras.Model(inputs, x)

    model = build_char_model((10, 10), 4, architecture=tiny)
    assert model.get_layer("backbone").get_layer("only_conv").filters == 4
    assert model.get_layer("logits").kernel.shape[0] == 4
    with pytest.raises(TypeError, match=r"must return a keras\.Model"):
        build_char_model((10, 10), 4, architecture=lambda shape: "not a model")


def test_saved_model_reloads_in_safe_mode(tmp_path):
    model = build_char_model((8, 8), 3, filters=(4,), online_augmentation="light", seed=1)
    set_normalization(model, 3.0, -0.5)
    x = np.random.default_rng(0).random((4, 64), dtype="float32")
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(restored.get_layer("normalization"), AffineNormalization)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6
    )


def test_seed_makes_initialisation_reproducible():
    a = build_char_model((8, 8), 3, filters=(4, 8), zero_init_residual=False, seed=5)
    b = build_char_model((8, 8), 3, filters=(4, 8), zero_init_residual=False, seed=5)
    c = build_char_model((8, 8), 3, filters=(4, 8), zero_init_residual=False, seed=6)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    def stem(model):
        kernel = model.get_layer("backbone").get_layer("stem_conv").kernel
        return keras.ops.convert_to_numpy(kernel)

    assert not np.array_equal(stem(a), stem(c))
    kernels = [w for w in a.get_weights() if w.ndim == 4 and w.shape[:2] == (3, 3)]
    # every layer draws its own seed: no two same-shaped kernels are equal
    assert not np.array_equal(kernels[1][:, :, :4, :4], kernels[2][:, :, :4, :4])
