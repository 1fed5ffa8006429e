"""Tests for classifier/architectures.py: every MobileNet converts, caches and runs.

Only MobileNetV2 has offline weights here, so the others run untrained
(``weights=None``): structure, preprocessing, conversion and cache, not answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier import Classifier
from classifier.architectures import ARCHITECTURES, architecture
from classifier.model import preprocess

UNTRAINED = ["MobileNet", "MobileNetV3Small", "MobileNetV3Large"]


@pytest.fixture(scope="module")
def untrained_keras_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras cache of this module's own, so untrained models never land in a real one."""
    return tmp_path_factory.mktemp("untrained-keras-home")


@pytest.fixture(scope="module", params=UNTRAINED)
def untrained(request: pytest.FixtureRequest, untrained_keras_home: Path) -> Classifier:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(untrained_keras_home))
        return Classifier(model=request.param, weights=None)


def test_untrained_models_convert_cache_and_classify(untrained: Classifier, untrained_keras_home: Path) -> None:
    predictions = untrained.classify(Image.new("RGB", (300, 200), (90, 140, 30)), top_k=5)
    assert len(predictions) == 5
    assert sum(p.probability for p in predictions) <= 1.0 + 1e-5
    cached = list((untrained_keras_home / "models").glob(f"{untrained.model_name}.*.w-untrained.*"))
    assert sorted(path.suffix for path in cached) == [".json", ".npz", ".tflite"]  # manifest, head, network


def test_untrained_models_explain_on_a_seven_by_seven_grid(untrained: Classifier) -> None:
    explanation = untrained.explain(Image.new("RGB", (224, 224), (200, 30, 30)))
    assert explanation.heatmap.shape == (7, 7)
    assert 0.0 <= explanation.heatmap.min() and explanation.heatmap.max() <= 1.0


@pytest.mark.parametrize(
    "name, white, black",
    [("MobileNet", 1.0, -1.0), ("MobileNetV2", 1.0, -1.0), ("MobileNetV3Small", 255.0, 0.0), ("MobileNetV3Large", 255.0, 0.0)],
)
def test_each_architecture_gets_its_own_input_scaling(name: str, white: float, black: float) -> None:
    picture = Image.new("RGB", (10, 10), (255, 255, 255))
    picture.paste((0, 0, 0), (0, 0, 5, 10))
    tensor = preprocess(picture, architecture(name))
    assert tensor.shape == (224, 224, 3)
    assert tensor[0, 0, 0] == pytest.approx(black) and tensor[0, -1, 0] == pytest.approx(white)


def test_every_architecture_has_a_distinct_weights_file() -> None:
    files = [spec.weights_file for spec in ARCHITECTURES.values()]
    assert len(set(files)) == len(files) == 4
    assert all(name.endswith(".h5") for name in files)


def test_unknown_model_names_the_ones_that_exist() -> None:
    with pytest.raises(ValueError, match="MobileNetV3Large.*got 'ResNet50'"):
        Classifier(model="ResNet50")


def test_default_is_mobilenet_v2(classifier: Classifier) -> None:
    assert classifier.model_name == "MobileNetV2"
    assert np.isclose(classifier.architecture.input_scale, 1 / 127.5)


def _head_reproduces_the_network(classifier: Classifier) -> None:
    """The saved head, run in numpy on the pooled features, gives the network's own probabilities.

    This is what makes the heatmaps trustworthy: a layer missed or misread when
    the head was extracted would break it.  The feature maps are internal, hence
    the private forward pass.
    """
    picture = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    probabilities, features = classifier._forward(preprocess(Image.fromarray(picture), classifier.architecture))
    logits = classifier._head.logits(features.mean(axis=(0, 1)))
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(softmax, probabilities, rtol=1e-3, atol=1e-7)


def test_saved_head_has_each_architectures_layers(untrained: Classifier) -> None:
    # Untrained networks give near-zero features, so only the head's structure can be checked here;
    # the maths of the non-linear head is checked against finite differences in test_explain.py.
    expected = {"MobileNet": ("linear",), "MobileNetV3Small": ("hard_swish", "linear"),
                "MobileNetV3Large": ("hard_swish", "linear")}[untrained.model_name]
    assert untrained._head.activations == expected
    assert untrained._head.kernels[-1].shape[-1] == 1000


def test_saved_head_matches_the_trained_network(classifier: Classifier) -> None:
    _head_reproduces_the_network(classifier)
