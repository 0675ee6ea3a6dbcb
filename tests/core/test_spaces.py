from rewardgym.core.spaces import TextSpace
from rewardgym.core.types import Completion


def test_text_space_contains_any_unicode():
    space = TextSpace()
    for s in ["", "abc", "\x00\x01", "é漢字😀", "x" * 1_000_000]:
        assert s in space
    assert Completion("hi") in space
    assert 3 not in space and None not in space and b"x" not in space


def test_text_space_max_length():
    space = TextSpace(max_length=3)
    assert "abc" in space and "abcd" not in space


def test_text_space_sample_is_seeded_and_varied():
    a, b = TextSpace(seed=1), TextSpace(seed=1)
    samples_a = [a.sample() for _ in range(50)]
    assert samples_a == [b.sample() for _ in range(50)]
    assert all(s in a for s in samples_a)
    assert len(set(samples_a)) > 40
    assert any(any(ord(ch) > 127 for ch in s) for s in samples_a)
    assert all(len(s) <= 5 for s in (TextSpace(max_length=5, seed=0).sample() for _ in range(50)))
