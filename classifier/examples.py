"""Example photos that ship with the package, so the app shows its worth at once.

See ``example_photos/CREDITS.md`` for their sources and licences (all public
domain or CC0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["EXAMPLES", "Example"]

_FOLDER: Final[Path] = Path(__file__).with_name("example_photos")


@dataclass(frozen=True, slots=True)
class Example:
    """A bundled photo: a short title for a button and the file it shows."""

    title: str
    path: Path


EXAMPLES: Final[tuple[Example, ...]] = (
    Example("Grace Hopper", _FOLDER / "grace_hopper.jpg"),
    Example("Cat", _FOLDER / "chelsea.jpg"),
    Example("Espresso", _FOLDER / "coffee.jpg"),
    Example("Rocket", _FOLDER / "rocket.jpg"),
    Example("Astronaut", _FOLDER / "astronaut.jpg"),
)
