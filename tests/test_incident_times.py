"""Report times parsed column-wise: the same instants, offsets and refusals as one by one."""

import pandas as pd

from gis.incidents import _parse_time, _parse_times, clean_incidents

TEXTS = [
    "2023-01-01 09:00",
    "2023-01-01T09:00:05",
    "2023-01-01T09:00:05.123456",
    "2023-01-01T09:00:05+08:00",
    "2023-01-01T01:00:05Z",
    "2023-01-01T09:00:05-05:00",
    "2023-01-01",
    "2023/01/01 09:00",  # not ISO: parsed on its own
    "2023-02-30 09:00",  # no such day
    "not a time",
    "",
    "1969-12-31T23:59:59Z",  # before the accepted range
    "2999-01-01 00:00",  # after it
    "1990-04-15 03:30",  # a summer time of China's DST years (1986–1991)
    "1988-09-11 01:30",  # an hour that happened twice (summer time ended)
    "1988-04-17 02:30",  # an hour that never happened (summer time began)
]


def test_column_wise_parsing_gives_what_one_by_one_gives():
    values = pd.Series(TEXTS * 3)
    times, checked = _parse_times(values)
    for text, moment in zip(values, times, strict=True):
        expected = _parse_time(text)
        if expected is None:
            assert moment is None, text
        else:
            assert moment == expected and moment.utcoffset() == expected.utcoffset(), text
    assert checked.sum() >= 3 * 6  # the ISO rows were range-checked as a column


def test_reasons_are_those_of_the_one_by_one_checks():
    raw = pd.DataFrame({"id": [str(i) for i in range(len(TEXTS))], "reported_at": TEXTS})
    cleaned = clean_incidents(raw, source="patrol")
    reasons = {r["row"] - 2: r["reason"] for r in cleaned.rejected}
    assert reasons[8].startswith("unparseable time '2023-02-30 09:00'")
    assert reasons[10] == "missing reported time"
    assert "1969-12-31T23:59:59+00:00 out of range" in reasons[11]
    assert "2999-01-01T00:00:00+08:00 out of range" in reasons[12]
    assert not {0, 1, 2, 3, 4, 5, 6, 7} & reasons.keys()


def test_times_of_chinas_summer_time_changes_are_stored_not_fatal():
    """1988-09-11 01:30 happened twice (summer time ended at 02:00), 1988-04-17 02:30
    never (it began at 02:00): archived tickets of those nights are kept, not a crash."""
    twice, never = _parse_time("1988-09-11 01:30"), _parse_time("1988-04-17 02:30")
    assert twice == pd.Timestamp("1988-09-11 01:30+09:00")  # the first, summer-time hour
    assert never == pd.Timestamp("1988-04-17 03:00+09:00")  # just past the gap
    raw = pd.DataFrame({"id": ["a", "b"], "reported_at": ["1988-09-11 01:30", "1988-04-17 02:30"]})
    cleaned = clean_incidents(raw, source="patrol")
    assert not cleaned.rejected
