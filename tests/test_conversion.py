"""Tests for classifier/conversion.py: the converted-model cache and its failures.

Keras reads ``KERAS_HOME`` once per process, so every test that needs a Keras
cache of its own runs the classifier in a fresh Python process, as a new Voilà
kernel would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from classifier import conversion
from classifier.architectures import ARCHITECTURES, architecture
from classifier.conversion import WEIGHTS_FILE, ConvertedModel, _cache_files, converted_model, keras_home

_CLASSIFY_AND_REPORT = textwrap.dedent(
    """
    import sys
    from classifier import Classifier
    best = Classifier().classify(sys.argv[1], top_k=1)[0]
    print(best.label)
    print("tensorflow imported:", "tensorflow" in sys.modules)
    """
)


def _run(keras_home_dir: Path, photo: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_HOME": str(keras_home_dir), **extra_env}
    return subprocess.run(
        [sys.executable, "-c", _CLASSIFY_AND_REPORT, str(photo)],
        env=env, capture_output=True, text=True, timeout=300,
    )


def _cached_files(keras_home_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ConvertedModel:
    monkeypatch.setenv("KERAS_HOME", str(keras_home_dir))
    return _cache_files(ARCHITECTURES["MobileNetV2"], "imagenet")


@pytest.fixture
def fresh_keras_home(tmp_path: Path) -> Path:
    """A Keras cache holding only the weights, as after Keras's first download."""
    (tmp_path / "models").mkdir()
    shutil.copy(keras_home() / "models" / WEIGHTS_FILE, tmp_path / "models" / WEIGHTS_FILE)
    return tmp_path


def test_cold_cache_converts_once_then_runs_without_tensorflow(
    fresh_keras_home: Path, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = fresh_keras_home / "models" / "MobileNetV2.tf-1.0.w-0123456789abcdef.v1.tflite"
    other_model = fresh_keras_home / "models" / "MobileNet.tf-1.0.w-0123456789abcdef.v1.tflite"
    for leftover in (stale, stale.with_suffix(".head.npz"), other_model):
        leftover.write_bytes(b"from an older TensorFlow")
    cold = _run(fresh_keras_home, photos["grace_hopper"])
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert cold.stdout.splitlines() == ["military uniform", "tensorflow imported: True"]
    expected = _cached_files(fresh_keras_home, monkeypatch)
    assert sorted((fresh_keras_home / "models").glob("MobileNetV2.*")) == [expected.head, expected.manifest, expected.network]
    assert expected.is_intact()
    assert other_model.is_file()  # another architecture's files are not this conversion's to remove
    assert not list((fresh_keras_home / "models").glob("*.tmp"))

    warm = _run(fresh_keras_home, photos["grace_hopper"])
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert warm.stdout.splitlines() == ["military uniform", "tensorflow imported: False"]


def _copy_session_cache(fresh_keras_home: Path, monkeypatch: pytest.MonkeyPatch) -> ConvertedModel:
    """The test session's converted files, copied into a fresh cache (same weights, so the same names)."""
    session_files = converted_model()
    cached = _cached_files(fresh_keras_home, monkeypatch)
    for source, target in zip(
        (session_files.network, session_files.head, session_files.manifest), (cached.network, cached.head, cached.manifest)
    ):
        shutil.copy(source, target)
    assert cached.is_intact()
    return cached


def _zero(path: Path, offset: int, length: int) -> None:
    """Overwrite ``length`` bytes with zeros in place: same size, as a bad disk sector would."""
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(bytes(length))


@pytest.mark.parametrize(
    "damage",
    ["network cut short", "head cut short", "network: one zeroed 4 KiB page", "network: 256 KiB zeroed", "no manifest"],
)
def test_damaged_cached_files_are_rebuilt_not_served(
    fresh_keras_home: Path, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    cached = _copy_session_cache(fresh_keras_home, monkeypatch)
    size = cached.network.stat().st_size
    if damage == "network cut short":
        cached.network.write_bytes(b"half a file")
    elif damage == "head cut short":
        cached.head.write_bytes(b"half a file")
    elif damage == "network: one zeroed 4 KiB page":
        _zero(cached.network, size // 2 // 4096 * 4096, 4096)
    elif damage == "network: 256 KiB zeroed":
        _zero(cached.network, size // 3, 256 * 1024)
    else:
        cached.manifest.unlink()
    assert not cached.is_intact()

    result = _run(fresh_keras_home, photos["rocket"])

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["missile", "tensorflow imported: True"]  # converted again
    # Not compared byte for byte: the same conversion in another process can differ by a few bytes (CI saw 1 kB).
    assert cached.is_intact()


def test_missing_weights_without_network_say_where_the_file_goes(tmp_path: Path, photos: dict[str, Path]) -> None:
    # An unreachable proxy makes the download fail here even on a machine with internet.
    unreachable = "http://127.0.0.1:9"
    result = _run(tmp_path, photos["coffee"], HTTPS_PROXY=unreachable, https_proxy=unreachable)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("classifier.conversion.ModelUnavailableError")
    assert WEIGHTS_FILE in last_line and str(tmp_path / "models") in last_line


def test_cache_names_change_with_weights_and_architecture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "models" / WEIGHTS_FILE
    weights.parent.mkdir()
    weights.write_bytes(b"weights, version 1")
    first = _cached_files(tmp_path, monkeypatch)
    weights.write_bytes(b"weights, version 2")
    second = _cached_files(tmp_path, monkeypatch)
    untrained = _cache_files(ARCHITECTURES["MobileNetV3Small"], None)
    assert len({first.network, second.network, untrained.network}) == 3
    assert first.network.parent == tmp_path / "models"
    assert (first.network.suffix, first.head.name.endswith(".head.npz")) == (".tflite", True)


def test_untrained_and_trained_files_of_one_architecture_live_side_by_side(
    fresh_keras_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = _copy_session_cache(fresh_keras_home, monkeypatch)
    older = fresh_keras_home / "models" / trained.network.name.replace(".v2.", ".v1.")
    older.write_bytes(b"an older conversion")
    script = "from classifier import Classifier; Classifier(weights=None)"
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, "KERAS_HOME": str(fresh_keras_home)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert trained.is_intact()  # building the untrained network did not delete the trained one
    assert older.exists()  # nor the trained kind's older files: only a trained conversion replaces those
    assert list((fresh_keras_home / "models").glob("MobileNetV2.*.w-untrained.*.tflite"))


def test_warm_cache_is_found_next_to_the_weights() -> None:
    files = converted_model()
    assert files.network.parent == files.head.parent == keras_home() / "models"
    assert files.network.is_file() and files.head.is_file()


def test_keras_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_home() == tmp_path
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keras_home() == tmp_path / ".keras"


def test_two_kernels_converting_at_once_both_succeed(fresh_keras_home: Path, photos: dict[str, Path]) -> None:
    env = {**os.environ, "KERAS_HOME": str(fresh_keras_home)}
    kernels = [
        subprocess.Popen(
            [sys.executable, "-c", _CLASSIFY_AND_REPORT, str(photos["coffee"])],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    outputs = [kernel.communicate(timeout=300) for kernel in kernels]
    for kernel, (stdout, stderr) in zip(kernels, outputs):
        assert kernel.returncode == 0, stderr[-2000:]
        assert stdout.splitlines()[0] == "espresso"
    models = fresh_keras_home / "models"
    assert len(list(models.glob("*.tflite"))) == 1
    assert not list(models.glob("*.tmp"))


def test_damaged_weights_are_explained_not_crashed_on(fresh_keras_home: Path, photos: dict[str, Path]) -> None:
    weights = fresh_keras_home / "models" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100_000])  # an interrupted download
    result = _run(fresh_keras_home, photos["coffee"])
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("classifier.conversion.ModelUnavailableError")
    assert "could not be loaded" in last_line and str(weights) in last_line


def test_the_command_line_converts_the_models_named_or_all(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    converted: list[str] = []

    def convert(model: str) -> SimpleNamespace:  # only MobileNetV2's weights are offline; the others are not converted
        converted.append(architecture(model).name)
        return SimpleNamespace(network=Path(f"{model}.tflite"))

    monkeypatch.setattr(conversion, "converted_model", convert)
    conversion.main(["--all"])
    assert converted == list(ARCHITECTURES) and capsys.readouterr().out.count(".tflite") == 4
    converted.clear()
    conversion.main([])
    assert converted == ["MobileNetV2"]
    with pytest.raises(SystemExit):
        conversion.main(["ResNet50"])
    assert "unknown model 'ResNet50'" in capsys.readouterr().err
