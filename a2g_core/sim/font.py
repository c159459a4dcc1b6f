"""A single-stroke font for the writing task, and the word lists of the paper's MSTH ablation.

Letters live on a grid 2 units wide and 3 units tall; a stroke is a polyline the pen draws without
lifting. ``word_strokes`` lays a word out on the whiteboard in metres.
"""
from __future__ import annotations

import numpy as np

Stroke = list[tuple[float, float]]

LETTERS: dict[str, list[Stroke]] = {
    "A": [[(0, 0), (1, 3), (2, 0)], [(0.5, 1.5), (1.5, 1.5)]],
    "B": [[(0, 0), (0, 3), (1.5, 3), (2, 2.25), (1.5, 1.5), (0, 1.5)], [(1.5, 1.5), (2, 0.75), (1.5, 0), (0, 0)]],
    "C": [[(2, 3), (0, 3), (0, 0), (2, 0)]],
    "D": [[(0, 0), (0, 3), (1.2, 3), (2, 2), (2, 1), (1.2, 0), (0, 0)]],
    "E": [[(2, 3), (0, 3), (0, 0), (2, 0)], [(0, 1.5), (1.5, 1.5)]],
    "F": [[(2, 3), (0, 3), (0, 0)], [(0, 1.5), (1.5, 1.5)]],
    "G": [[(2, 3), (0, 3), (0, 0), (2, 0), (2, 1.5), (1, 1.5)]],
    "H": [[(0, 0), (0, 3)], [(2, 0), (2, 3)], [(0, 1.5), (2, 1.5)]],
    "I": [[(1, 0), (1, 3)], [(0.3, 3), (1.7, 3)], [(0.3, 0), (1.7, 0)]],
    "J": [[(2, 3), (2, 0), (0, 0), (0, 1)]],
    "K": [[(0, 0), (0, 3)], [(2, 3), (0, 1.5), (2, 0)]],
    "L": [[(0, 3), (0, 0), (2, 0)]],
    "M": [[(0, 0), (0, 3), (1, 1.5), (2, 3), (2, 0)]],
    "N": [[(0, 0), (0, 3), (2, 0), (2, 3)]],
    "O": [[(0, 0), (0, 3), (2, 3), (2, 0), (0, 0)]],
    "P": [[(0, 0), (0, 3), (2, 3), (2, 1.5), (0, 1.5)]],
    "Q": [[(0, 0), (0, 3), (2, 3), (2, 0), (0, 0)], [(1, 1), (2.2, -0.3)]],
    "R": [[(0, 0), (0, 3), (2, 3), (2, 1.5), (0, 1.5), (2, 0)]],
    "S": [[(2, 3), (0, 3), (0, 1.5), (2, 1.5), (2, 0), (0, 0)]],
    "T": [[(0, 3), (2, 3)], [(1, 3), (1, 0)]],
    "U": [[(0, 3), (0, 0), (2, 0), (2, 3)]],
    "V": [[(0, 3), (1, 0), (2, 3)]],
    "W": [[(0, 3), (0.5, 0), (1, 1.5), (1.5, 0), (2, 3)]],
    "X": [[(0, 0), (2, 3)], [(0, 3), (2, 0)]],
    "Y": [[(0, 3), (1, 1.5), (2, 3)], [(1, 1.5), (1, 0)]],
    "Z": [[(0, 3), (2, 3), (0, 0), (2, 0)]],
}

UNIT = 0.017          # metres per font unit: letters 3.4 cm wide, 5.1 cm tall
PITCH = 3.0           # font units from one letter's origin to the next
MAX_LETTERS = 9       # what fits on the whiteboard

# Word lists for the MSTH ablation (paper §5.5): easy mode writes seen words, hard mode unseen ones.
WORDS: dict[str, dict[str, list[str]]] = {
    "seen": {
        "short": ["CAT", "DOG", "SUN", "BOX", "RED", "MAP", "HAT", "PEN", "CUP", "ARM", "GO", "UP"],
        "medium": ["ROBOT", "PLATE", "GOAL", "WORLD", "HAND", "MODEL", "TABLE", "LIGHT", "GREEN", "SHOE"],
        "long": ["ELEPHANT", "KEYBOARD", "PAINTING", "MACHINE", "BOTTLES", "LEARNING", "DESSERTS"],
    },
    "unseen": {
        "short": ["FOX", "BEE", "OWL", "JAM", "KEY", "ZIP", "WAX", "ICE"],
        "medium": ["QUEST", "VIDEO", "FRAME", "PIXEL", "BRAIN", "JUMP", "LEMON", "TIGER"],
        "long": ["DINOSAUR", "TRIANGLE", "SANDWICH", "MOUNTAIN", "HOSPITAL", "UMBRELLA", "VOLCANO"],
    },
}


def length_class(word: str) -> str:
    """The paper's split: short (≤3 letters), medium (4–6), long (≥7)."""
    return "short" if len(word) <= 3 else "medium" if len(word) <= 6 else "long"


def validate_word(word: str) -> str:
    """Upper-case ``word`` and check the font can write it on the board; raise ValueError if not."""
    if not isinstance(word, str) or not word.strip():
        raise ValueError("The word to write must be a non-empty string of letters A–Z.")
    w = word.strip().upper()
    missing = sorted({c for c in w if c not in LETTERS})
    if missing:
        raise ValueError(f"The font has no letter(s) {', '.join(repr(c) for c in missing)} in {word!r}; use A–Z only.")
    if len(w) > MAX_LETTERS:
        raise ValueError(f"{word!r} has {len(w)} letters; the whiteboard fits at most {MAX_LETTERS}.")
    return w


def word_strokes(word: str, center: tuple[float, float]) -> list[np.ndarray]:
    """Strokes of ``word`` in board coordinates (metres), centred on ``center``; each stroke is (n, 2)."""
    w = validate_word(word)
    width = (len(w) - 1) * PITCH + 2
    x0 = center[0] - width * UNIT / 2
    y0 = center[1] - 1.5 * UNIT
    out = []
    for i, ch in enumerate(w):
        for stroke in LETTERS[ch]:
            pts = np.asarray(stroke, dtype=np.float64)
            out.append(np.stack([x0 + (pts[:, 0] + i * PITCH) * UNIT, y0 + pts[:, 1] * UNIT], axis=1))
    return out


def sample_polyline(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points along a polyline every ``spacing`` metres (end points included)."""
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / spacing)))
        s = np.linspace(0, 1, n + 1)[1:, None]
        out.append(a + s * (b - a))
    return np.concatenate(out)
