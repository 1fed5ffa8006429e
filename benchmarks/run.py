"""Benchmark the photo classifier against the plain Keras + pyplot pipeline it replaced.

Run from the repository root::

    python -m benchmarks.run             # full run, about 2-4 minutes
    python -m benchmarks.run --quick     # smoke run, under a minute or so
    python benchmarks/run.py --output /tmp/bench.json

It prints a table (median, 90th percentile and sample count of every
measurement, its target and PASS/MISS; targets are judged on the median) and
writes the same numbers, with the machine they were taken on, as JSON.

Timings on small machines are noisy, so pipelines that are compared run
alternately in one loop (the one that goes first swaps every round), warm-up
runs are discarded, and ratios are taken pair by pair.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path
from typing import Final, Literal

import matplotlib.pyplot as plt
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from matplotlib import cbook
from PIL import Image, ImageOps

from classifier import Classifier, Prediction, figure_to_png, plot_predictions
from classifier.conversion import converted_model
from classifier.labels import imagenet_labels
from classifier.model import preprocess
from classifier.testing import offline_keras_home

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT: Final[Path] = REPO_ROOT / "benchmarks" / "results" / "latest.json"

PHOTO_SIZE: Final[tuple[int, int]] = (4000, 3000)
"""12 megapixels, what a phone camera saves."""
BATCH_PHOTO_SIZE: Final[tuple[int, int]] = (2000, 1500)
BATCH_COUNT: Final[int] = 64
BATCH_SOURCES: Final[tuple[str, ...]] = ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png")
"""Photos in scikit-image's data folder, used with Grace Hopper for the batch."""
TOP_K: Final[int] = 5
"""Predictions per photo, as the app shows them."""
NUM_THREADS: Final[int] = 2
"""LiteRT threads, :class:`Classifier`'s default, for both forward passes compared."""
WARMUP: Final[int] = 2
"""Untimed runs before each timed series: first calls pay for lazy set-up and cold caches."""


@dataclass(frozen=True, slots=True)
class Repeats:
    """How many timed samples each measurement takes (warm-up runs come on top)."""

    photo_pairs: int
    splits: int
    forward_pairs: int
    charts: int
    batches: int
    warm_processes: int
    cold_processes: int
    teachings: int
    taught_pairs: int


FULL: Final[Repeats] = Repeats(
    photo_pairs=40, splits=40, forward_pairs=300, charts=60, batches=8, warm_processes=12, cold_processes=2,
    teachings=7, taught_pairs=40,
)
QUICK: Final[Repeats] = Repeats(
    photo_pairs=5, splits=10, forward_pairs=50, charts=15, batches=2, warm_processes=3, cold_processes=1,
    teachings=2, taught_pairs=5,
)


@dataclass(frozen=True, slots=True)
class Target:
    """A bound the median of a measurement must meet, e.g. ``Target("<=", 1.25)``."""

    operator: Literal["<=", ">="]
    bound: float

    def met_by(self, value: float) -> bool:
        """Return whether ``value`` is within the bound."""
        return value <= self.bound if self.operator == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.operator} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: the samples of a measurement and its target, if any."""

    key: str
    label: str
    unit: str
    samples: tuple[float, ...]
    target: Target | None = None

    @property
    def median(self) -> float:
        """The median of the samples."""
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        """The 90th percentile of the samples, linearly interpolated."""
        return float(np.percentile(self.samples, 90))

    @property
    def passed(self) -> bool | None:
        """Whether the median meets the target; ``None`` without a target."""
        return None if self.target is None else self.target.met_by(self.median)

    def to_json(self) -> dict[str, object]:
        """Return the row as JSON-ready data, raw samples included."""
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median,
            "p90": self.p90,
            "n": len(self.samples),
            "target": None if self.target is None else str(self.target),
            "pass": self.passed,
            "samples": list(self.samples),
        }


# --- timing -------------------------------------------------------------------


def time_ms(action: Callable[[], object]) -> float:
    """Return how long one call of ``action`` takes, in milliseconds."""
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1e3


def repeated(action: Callable[[], object], repeats: int, warmup: int = WARMUP) -> tuple[float, ...]:
    """Time ``repeats`` calls of ``action`` after ``warmup`` untimed ones, in milliseconds."""
    for _ in range(warmup):
        action()
    return tuple(time_ms(action) for _ in range(repeats))


def interleaved(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Time two actions alternately, in milliseconds, so drifts in machine load hit both alike.

    The action that runs first swaps every round, since running right after the
    other one (warm or polluted caches, threads still spinning) could favour it.
    """
    for _ in range(WARMUP):
        first()
        second()
    firsts: list[float] = []
    seconds: list[float] = []
    for round_ in range(repeats):
        if round_ % 2:
            seconds.append(time_ms(second))
            firsts.append(time_ms(first))
        else:
            firsts.append(time_ms(first))
            seconds.append(time_ms(second))
    return tuple(firsts), tuple(seconds)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, ...]:
    """Divide paired samples one by one, which cancels drifts shared by both runs of a pair."""
    return tuple(top / bottom for top, bottom in zip(numerators, denominators, strict=True))


# --- inputs -------------------------------------------------------------------


def copy_weights(source: Path, target: Path) -> None:
    """Copy the ``.h5`` weight files of ``source`` into ``target`` (created), nothing else."""
    target.mkdir(parents=True, exist_ok=True)
    for weights in source.glob("*.h5"):
        # copyfile, not copy2: the shared originals are read-only, the copies must not be.
        shutil.copyfile(weights, target / weights.name)


def photo_12mp() -> bytes:
    """Return Grace Hopper, upscaled to 4000 x 3000 and encoded as a JPEG of quality 90.

    The portrait is stretched to landscape; decoding costs depend on the pixel
    count, and both pipelines see the same bytes.
    """
    picture = _open_rgb(_grace_hopper().read_bytes())
    return _jpeg(picture.resize(PHOTO_SIZE, Image.Resampling.BICUBIC))


def batch_photos(count: int) -> list[bytes]:
    """Return ``count`` distinct 2000 x 1500 JPEGs cut from five real photos.

    Parameters
    ----------
    count
        How many photos to make; the sources are used in turn.

    Returns
    -------
    list of bytes
        JPEG files of about 3 megapixels, quality 90.
    """
    skimage_data = resources.files("skimage.data")
    sources = [_open_rgb(_grace_hopper().read_bytes())]
    sources += [_open_rgb((skimage_data / name).read_bytes()) for name in BATCH_SOURCES]
    return [_jpeg(_variant(sources[i % len(sources)], i // len(sources))) for i in range(count)]


def _variant(picture: Image.Image, round_: int) -> Image.Image:
    # Cropping 4:3 at a new place each round makes every file different; the
    # golden-ratio step spreads any number of rounds over [0, 1) without repeats.
    position = (round_ * 0.618034) % 1.0
    return ImageOps.fit(picture, BATCH_PHOTO_SIZE, Image.Resampling.BICUBIC, centering=(position, position))


def _grace_hopper() -> Path:
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _open_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# --- the two pipelines --------------------------------------------------------


def seed_pipeline() -> Callable[[bytes], bytes]:
    """Build the pipeline the project started from: Keras ``predict`` and a pyplot chart.

    Returns
    -------
    callable
        Takes JPEG bytes, decodes them at full size, classifies them with
        ``MobileNetV2(weights="imagenet")`` (loaded once, here) and returns a
        16 x 10 inch bar chart of the top 5 at 300 dpi, as PNG bytes.
    """
    # Imported here, after KERAS_HOME is settled: Keras reads it once, at import.
    import keras

    model = keras.applications.MobileNetV2(weights="imagenet")
    preprocess_input = keras.applications.mobilenet_v2.preprocess_input
    # Keras's decode_predictions downloads its class index; these are the same classes.
    labels = imagenet_labels()
    plt.switch_backend("Agg")

    def run(data: bytes) -> bytes:
        picture = Image.open(io.BytesIO(data)).convert("RGB")
        pixels = np.asarray(picture.resize((224, 224)), dtype=np.float32)  # MobileNetV2's input
        probabilities = model.predict(preprocess_input(pixels[np.newaxis]), verbose=0)[0]
        best = np.argsort(probabilities)[::-1][:TOP_K][::-1]
        plt.figure(figsize=(16, 10))
        plt.barh([labels[i] for i in best], probabilities[best])
        buffer = io.BytesIO()
        plt.savefig(buffer, format="png", dpi=300)
        plt.close()
        return buffer.getvalue()

    return run


def project_pipeline(classifier: Classifier) -> Callable[[bytes], bytes]:
    """Return this project's path from JPEG bytes to chart PNG, exactly as a result card draws it."""

    def run(data: bytes) -> bytes:
        return figure_to_png(plot_predictions(classifier.classify(data, top_k=TOP_K)))

    return run


def bare_litert() -> Callable[[np.ndarray], np.ndarray]:
    """Return a forward pass over the project's converted model with nothing around LiteRT.

    Returns
    -------
    callable
        Takes a preprocessed batch and returns the class probabilities, doing
        only ``set_tensor``, ``invoke`` and ``get_tensor``.
    """
    interpreter = Interpreter(model_path=str(converted_model().network), num_threads=NUM_THREADS)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    # The model also outputs feature maps (for explanations); LiteRT does not keep the order.
    output_index = next(
        output["index"] for output in interpreter.get_output_details() if len(output["shape"]) == 2
    )

    def forward(batch: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return forward


# --- measurements -------------------------------------------------------------


def measure_photo(classifier: Classifier, photo: bytes, repeats: Repeats) -> list[Row]:
    """Time the seed pipeline and this project on the same 12 MP photo, alternately (1, 2)."""
    seed = seed_pipeline()
    project = project_pipeline(classifier)
    seed_ms, project_ms = interleaved(lambda: seed(photo), lambda: project(photo), repeats.photo_pairs)
    return [
        Row("seed_pipeline_ms", "1 seed pipeline, 12 MP photo", "ms", seed_ms),
        Row("project_ms", "2 this project, same photo", "ms", project_ms),
        Row("speedup", "  speed-up 1/2", "x", ratios(seed_ms, project_ms), Target(">=", 12)),
    ]


def measure_splits(classifier: Classifier, photo: bytes, repeats: Repeats) -> list[Row]:
    """Time the steps of ``classify`` before the model: decoding and preprocessing (2a, 2b)."""
    picture = classifier.decode(photo)
    decode_ms = repeated(lambda: classifier.decode(photo), repeats.splits)
    preprocess_ms = repeated(lambda: preprocess(picture), repeats.splits)
    return [
        Row("project_load_image_ms", "  2a load_image (decode)", "ms", decode_ms),
        Row("project_preprocess_ms", "  2b preprocess", "ms", preprocess_ms),
    ]


def measure_forward(classifier: Classifier, photo: bytes, repeats: Repeats) -> list[Row]:
    """Time the forward pass inside ``classify`` against a bare LiteRT ``invoke`` (3)."""
    bare = bare_litert()
    picture = preprocess(classifier.decode(photo))
    if not np.allclose(classifier._forward(picture)[0], bare(picture[np.newaxis])[0], atol=1e-5):
        raise RuntimeError("The bare interpreter computes something else than Classifier; comparison void.")
    project_ms, bare_ms = interleaved(
        lambda: classifier._forward(picture), lambda: bare(picture[np.newaxis]), repeats.forward_pairs
    )
    return [
        Row("forward_classify_ms", "3 forward inside classify", "ms", project_ms),
        Row("forward_bare_ms", "  bare LiteRT invoke", "ms", bare_ms),
        Row("forward_overhead", "  overhead ratio", "x", ratios(project_ms, bare_ms), Target("<=", 1.25)),
    ]


def measure_fresh_processes(keras_home: Path, photo: Path, repeats: Repeats) -> list[Row]:
    """Time new Python processes from start to first result, with the cache warm and cold (4)."""
    fresh_process(keras_home, photo)  # warm-up: brings the files into the page cache
    warm_s, warm_mb = zip(*(fresh_process(keras_home, photo) for _ in range(repeats.warm_processes)))
    cold_s, cold_mb = zip(*(cold_process(keras_home, photo) for _ in range(repeats.cold_processes)))
    return [
        Row("fresh_warm_s", "4 fresh process, cache warm", "s", warm_s, Target("<=", 1.5)),
        Row("fresh_warm_peak_rss_mb", "  peak RSS, cache warm", "MB", warm_mb, Target("<=", 250)),
        Row("fresh_cold_s", "  fresh process, cache cold", "s", cold_s),
        Row("fresh_cold_peak_rss_mb", "  peak RSS, cache cold", "MB", cold_mb),
    ]


def fresh_process(keras_home: Path, photo: Path) -> tuple[float, float]:
    """Classify ``photo`` in a new Python process.

    Parameters
    ----------
    keras_home
        The Keras cache the process uses.
    photo
        The image file to classify.

    Returns
    -------
    tuple of float
        Wall time from start to exit in seconds, and the process's peak RSS in MB.
    """
    code = (
        f"from classifier import Classifier; Classifier().classify({str(photo)!r}); "
        # Not ru_maxrss, in the child or through RUSAGE_CHILDREN: Linux counts in it
        # the memory the child had before exec, a copy of this 1 GB process.  VmHWM
        # is the peak of the child's own memory only (checked against /usr/bin/time).
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))"
    )
    environment = {**os.environ, "KERAS_HOME": str(keras_home)}
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=environment, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if child.returncode:
        raise RuntimeError(f"The classifying child process failed:\n{child.stderr}")
    return seconds, int(child.stdout.split()[-1]) * 1024 / 1e6  # VmHWM is in KiB


def cold_process(keras_home: Path, photo: Path) -> tuple[float, float]:
    """Like :func:`fresh_process`, in a new Keras cache of weights only, so the model is converted."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-keras-home-") as folder:
        cold_home = Path(folder)
        copy_weights(keras_home / "models", cold_home / "models")
        result = fresh_process(cold_home, photo)
        if not any((cold_home / "models").glob("*.tflite")):
            raise RuntimeError("The cold process did not convert the model; the measurement is void.")
    return result


def measure_batch(classifier: Classifier, photos: Sequence[bytes], repeats: Repeats) -> list[Row]:
    """Measure ``classify_batch`` throughput on many 3 MP photos, end to end (5)."""
    results = classifier.classify_batch(photos, top_k=TOP_K)
    refused = [result for result in results if not isinstance(result, list)]
    if refused:
        raise RuntimeError(f"classify_batch refused benchmark photos: {refused}")
    # The check above was the warm-up.
    times_ms = repeated(lambda: classifier.classify_batch(photos, top_k=TOP_K), repeats.batches, warmup=0)
    rates = tuple(len(photos) / (milliseconds / 1e3) for milliseconds in times_ms)
    label = f"5 classify_batch, {len(photos)} x 3 MP"
    return [Row("batch_images_per_s", label, "img/s", rates, Target(">=", 50))]


def measure_chart(predictions: Sequence[Prediction], repeats: Repeats) -> list[Row]:
    """Time the chart of a result card and weigh its PNG (6)."""

    def render() -> bytes:
        return figure_to_png(plot_predictions(predictions))

    kilobytes = len(render()) / 1e3  # the same bytes every time, so one sample
    return [
        Row("chart_ms", "6 chart render", "ms", repeated(render, repeats.charts), Target("<=", 40)),
        Row("chart_png_kb", "  chart PNG size", "kB", (kilobytes,), Target("<=", 25)),
    ]


def teaching_photos(classes: int, per_class: int) -> dict[str, list[bytes]]:
    """``per_class`` distinct 3 MP JPEGs of each of ``classes`` real photos (crops of it), by class name."""
    photos = batch_photos((len(BATCH_SOURCES) + 1) * per_class)
    sources = len(BATCH_SOURCES) + 1  # batch_photos takes the sources in turn
    return {f"class {c + 1}": photos[c::sources] for c in range(classes)}


def measure_teaching(classifier: Classifier, photo: bytes, repeats: Repeats) -> list[Row]:
    """Teach 100 photos in 4 classes, from bytes to an evaluated classifier; classify with it (7)."""
    examples = teaching_photos(4, 25)

    def teach_and_evaluate() -> None:
        taught = classifier.teach(examples)
        if taught.evaluate().accuracy < 0.9:
            raise RuntimeError("The taught classifier cannot tell the benchmark's classes apart; timing void.")

    taught = classifier.teach(examples)
    taught_ms, classify_ms = interleaved(
        lambda: taught.classify(photo, top_k=TOP_K), lambda: classifier.classify(photo, top_k=TOP_K),
        repeats.taught_pairs,
    )
    teach_s = tuple(milliseconds / 1e3 for milliseconds in repeated(teach_and_evaluate, repeats.teachings, warmup=1))
    return [
        Row("teach_100_s", "7 teach 100 photos, 4 classes, + cross-validation", "s", teach_s, Target("<=", 3)),
        Row("taught_classify_ms", "  taught classify, 12 MP photo", "ms", taught_ms),
        Row("taught_classify_ratio", "  ratio to classify, same photo", "x", ratios(taught_ms, classify_ms),
            Target("<=", 1.1)),
    ]


def run_all(keras_home: Path, repeats: Repeats) -> tuple[list[Row], dict[str, object]]:
    """Run every measurement in turn.

    Returns
    -------
    tuple
        The rows of the table, and a description of the inputs for the JSON.
    """
    progress("making the test photos")
    photo = photo_12mp()
    batch = batch_photos(BATCH_COUNT)
    progress("loading the classifier (converts the model first if the cache is cold)")
    classifier = Classifier(num_threads=NUM_THREADS)
    progress("1, 2: seed pipeline vs this project (loads Keras first)")
    rows = measure_photo(classifier, photo, repeats)
    rows += measure_splits(classifier, photo, repeats)
    progress("3: forward pass vs bare LiteRT")
    rows += measure_forward(classifier, photo, repeats)
    progress("4: fresh processes, cache warm then cold")
    with tempfile.TemporaryDirectory(prefix="bench-photo-") as folder:
        photo_file = Path(folder, "photo-12mp.jpg")
        photo_file.write_bytes(photo)
        rows += measure_fresh_processes(keras_home, photo_file, repeats)
    progress("5: batch throughput")
    rows += measure_batch(classifier, batch, repeats)
    progress("6: chart")
    rows += measure_chart(classifier.classify(photo, top_k=TOP_K), repeats)
    progress("7: teaching")
    rows += measure_teaching(classifier, photo, repeats)
    inputs = {
        "photo": {"size": list(PHOTO_SIZE), "jpeg_bytes": len(photo)},
        "batch": {"count": len(batch), "size": list(BATCH_PHOTO_SIZE), "jpeg_bytes": sum(map(len, batch))},
        "teaching": {"classes": 4, "photos": 100, "size": list(BATCH_PHOTO_SIZE)},
    }
    return rows, inputs


def progress(message: str) -> None:
    """Tell the person waiting what runs now, on stderr so stdout holds only the table."""
    print(f"[benchmarks] {message}…", file=sys.stderr, flush=True)


# --- output -------------------------------------------------------------------

_DIGITS: Final[dict[str, int]] = {"ms": 1, "s": 2, "MB": 0, "x": 2, "img/s": 1, "kB": 1}


def format_table(rows: Sequence[Row]) -> str:
    """Return the rows as a plain-text table with targets and PASS/MISS."""
    header = ("measurement", "median", "p90", "n", "unit", "target", "result")
    lines = [header] + [
        (
            row.label,
            f"{row.median:.{_DIGITS[row.unit]}f}",
            f"{row.p90:.{_DIGITS[row.unit]}f}",
            str(len(row.samples)),
            row.unit,
            "" if row.target is None else str(row.target),
            {True: "PASS", False: "MISS", None: ""}[row.passed],
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    # Labels read left to right; numbers line up on the right.
    aligned = [
        "  ".join(cell.ljust(width) if column in (0, 4, 5) else cell.rjust(width)
                  for column, (cell, width) in enumerate(zip(line, widths)))
        for line in lines
    ]
    aligned.insert(1, "-" * len(aligned[0]))
    return "\n".join(line.rstrip() for line in aligned)


def machine_info() -> dict[str, object]:
    """Describe the machine and the library versions the numbers depend on."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "litert": _version("ai-edge-litert"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "pillow": _version("pillow"),
        "matplotlib": _version("matplotlib"),
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux
        return platform.processor() or "unknown"
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, "unknown")


def _version(*distributions: str) -> str | None:
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def write_report(
    path: Path, rows: Sequence[Row], inputs: dict[str, object], quick: bool, load_before: float
) -> None:
    """Write the machine description, the inputs and every row to ``path`` as JSON.

    Parameters
    ----------
    path
        The JSON file to write; its folder is created if needed.
    rows
        The measurements.
    inputs
        What was measured on, from :func:`run_all`.
    quick
        Whether this was a ``--quick`` run.
    load_before
        The one-minute load average before the run: other work on the machine
        during the run shows as a load well above zero and spoils the timings.
    """
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine_info(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "inputs": inputs,
        "measurements": {row.key: row.to_json() for row in rows},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read ``--quick`` and ``--output`` from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run, not numbers to trust")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON file to write (default: {DEFAULT_OUTPUT})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks, print the table and write the JSON report."""
    arguments = parse_arguments(argv)
    load_before = os.getloadavg()[0]
    # TensorFlow prints pages of C++ start-up notices; keep the terminal readable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with offline_keras_home() as keras_home:
            rows, inputs = run_all(keras_home, QUICK if arguments.quick else FULL)
    except FileNotFoundError as missing:
        raise SystemExit(str(missing)) from None
    print(format_table(rows))
    write_report(arguments.output, rows, inputs, arguments.quick, load_before)
    print(f"\nWrote {arguments.output}")


if __name__ == "__main__":
    main()
