import numpy as np
import pytest

from a2g_core.sim import font


def test_every_letter_stays_in_its_cell():
    for ch, strokes in font.LETTERS.items():
        for s in strokes:
            pts = np.asarray(s)
            assert len(pts) >= 2, ch
            assert pts[:, 0].min() >= -0.3 and pts[:, 0].max() <= 2.3, ch
            assert pts[:, 1].min() >= -0.3 and pts[:, 1].max() <= 3, ch


def test_word_lists_follow_the_paper_split():
    seen = {w for ws in font.WORDS["seen"].values() for w in ws}
    unseen = {w for ws in font.WORDS["unseen"].values() for w in ws}
    assert not seen & unseen
    for split in font.WORDS.values():
        for cls, words in split.items():
            assert all(font.length_class(w) == cls for w in words), cls
            assert all(font.validate_word(w) == w for w in words)


def test_word_strokes_are_centred_and_in_metres():
    strokes = font.word_strokes("cat", (0.1, 0.0))
    pts = np.concatenate(strokes)
    assert len(strokes) == 1 + 2 + 2       # C, A, T
    np.testing.assert_allclose((pts[:, 0].min() + pts[:, 0].max()) / 2, 0.1, atol=1e-9)
    assert pts[:, 1].max() - pts[:, 1].min() == pytest.approx(3 * font.UNIT)


@pytest.mark.parametrize("word", ["", "C4T", "héllo", None])
def test_bad_words(word):
    with pytest.raises(ValueError):
        font.validate_word(word)
