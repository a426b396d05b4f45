import pytest

from dmas.ingest.prefetch import prefetched


def test_yields_everything_in_order():
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))


def test_producer_error_reaches_the_consumer_after_earlier_items():
    def items():
        yield 1
        yield 2
        raise ValueError("broken file")

    seen = []
    with pytest.raises(ValueError, match="broken file"):
        for item in prefetched(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_consumer_stopping_early_does_not_hang():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in prefetched(items(), depth=2):
        if item == 3:
            break
    assert len(produced) < 20
