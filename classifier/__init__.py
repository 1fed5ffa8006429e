"""Classify photos with MobileNetV2 (ImageNet) and chart the predictions.

>>> from PIL import Image
>>> from classifier import Classifier, plot_explanation, plot_predictions
>>> clf = Classifier()
>>> predictions = clf.classify("photo.jpg", top_k=5)
>>> figure = plot_predictions(predictions)
>>> explanation = clf.explain("photo.jpg")          # predictions + where the evidence lies
>>> overlay = plot_explanation(Image.open("photo.jpg"), explanation)

The widgets of the web app live in :mod:`classifier.ui`, which this package does
not import: the logic here knows nothing about widgets.
"""

from classifier.conversion import ModelUnavailableError
from classifier.images import ImageError
from classifier.model import BatchResult, Classifier, Explanation, Prediction
from classifier.plotting import figure_to_png, plot_explanation, plot_predictions

__all__ = [
    "BatchResult",
    "Classifier",
    "Explanation",
    "ImageError",
    "ModelUnavailableError",
    "Prediction",
    "figure_to_png",
    "plot_explanation",
    "plot_predictions",
]
