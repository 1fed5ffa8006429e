"""Tests for classifier/labels.py: readable, distinct, correctly indexed names."""

from __future__ import annotations

from classifier.labels import NUM_CLASSES, imagenet_labels


def test_there_is_one_distinct_readable_name_per_class() -> None:
    labels = imagenet_labels()
    assert len(labels) == NUM_CLASSES
    assert len(set(labels)) == NUM_CLASSES
    assert all(label and label == label.strip() and "_" not in label for label in labels)


def test_names_follow_keras_class_order() -> None:
    labels = imagenet_labels()
    assert labels[0] == "tench"
    assert labels[652] == "military uniform"
    assert labels[967] == "espresso"
    assert labels[872] == "tripod"
    assert labels[999] == "toilet paper"


def test_repeated_curated_names_fall_back_to_their_synonym() -> None:
    labels = imagenet_labels()
    assert (labels[657], labels[744]) == ("missile", "projectile")
    assert (labels[836], labels[837]) == ("sunglass", "sunglasses")
