"""Classify photos with MobileNetV2 (ImageNet) and chart the predictions.

>>> from PIL import Image
>>> from classifier import Classifier, plot_explanation, plot_predictions
>>> clf = Classifier()
>>> predictions = clf.classify("photo.jpg", top_k=5)
>>> figure = plot_predictions(predictions)
>>> explanation = clf.explain("photo.jpg")          # predictions + where the evidence lies
>>> overlay = plot_explanation(Image.open("photo.jpg"), explanation)
>>> taught = clf.teach({"cat": ["cat1.jpg", "cat2.jpg"], "dog": ["dog.jpg"]})  # classes of your own
>>> taught.classify("pet.jpg", top_k=2)

The widgets of the web app live in :mod:`classifier.ui`, which this package does
not import: the logic here knows nothing about widgets.
"""

from classifier.conversion import ModelUnavailableError
from classifier.images import ImageError
from classifier.model import BatchResult, Classifier, Explanation, Prediction
from classifier.plotting import figure_to_png, plot_confusion, plot_explanation, plot_predictions
from classifier.teach import Evaluation, TaughtClassifier, TeachingError, load_taught

__all__ = [
    "BatchResult",
    "Classifier",
    "Evaluation",
    "Explanation",
    "ImageError",
    "ModelUnavailableError",
    "Prediction",
    "TaughtClassifier",
    "TeachingError",
    "figure_to_png",
    "load_taught",
    "plot_confusion",
    "plot_explanation",
    "plot_predictions",
]
