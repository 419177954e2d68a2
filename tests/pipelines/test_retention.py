"""How far a shard stream may be trimmed: by age, never past what a consumer group has not
processed."""

from __future__ import annotations

from pipelines.retention import GroupProgress, Loss, lost_before_delivery, parse_id, trim_floor

HOUR = 3_600_000
NOW = 1_795_600_000_000


def test_the_floor_is_the_retention_cutoff_when_everything_is_processed() -> None:
    done = GroupProgress(f"{NOW - 1000}-3")
    assert trim_floor(NOW, HOUR, [done]) == f"{NOW - HOUR}-0"


def test_entries_not_yet_delivered_are_never_trimmed() -> None:
    behind = GroupProgress(f"{NOW - 2 * HOUR}-7")
    assert trim_floor(NOW, HOUR, [behind]) == f"{NOW - 2 * HOUR}-7"


def test_entries_delivered_but_not_acknowledged_are_never_trimmed() -> None:
    stuck = GroupProgress(f"{NOW}-0", oldest_pending=f"{NOW - 3 * HOUR}-2")
    assert trim_floor(NOW, HOUR, [stuck]) == f"{NOW - 3 * HOUR}-2"


def test_the_slowest_group_holds_the_floor() -> None:
    groups = [GroupProgress(f"{NOW}-0"), GroupProgress(f"{NOW - 5 * HOUR}-1")]
    assert trim_floor(NOW, HOUR, groups) == f"{NOW - 5 * HOUR}-1"


def test_nothing_is_trimmed_without_a_group_or_a_retention() -> None:
    assert trim_floor(NOW, HOUR, []) is None
    assert trim_floor(NOW, 0, [GroupProgress(f"{NOW}-0")]) is None
    assert trim_floor(NOW, HOUR, [GroupProgress("0-0")]) is None  # a fresh group


def test_ids_compare_as_numbers_not_text() -> None:
    assert parse_id(b"99-10") > parse_id("99-9")
    assert trim_floor(NOW, HOUR, [GroupProgress(f"{NOW - HOUR}-10")]) == f"{NOW - HOUR}-0"


def test_a_length_cap_that_cut_the_backlog_is_a_loss() -> None:
    """900 entries added since the group's last read, 311 left, the first of them beyond it."""
    loss = lost_before_delivery(b"100-99", 900, 311, b"101-545", b"101-855")
    assert loss == Loss(589, "101-544")
    assert lost_before_delivery(b"100-99", 900, 311, b"101-0", b"101-855") == Loss(
        589, "100-18446744073709551615"
    )


def test_an_emptied_stream_lost_the_whole_backlog() -> None:
    assert lost_before_delivery(b"100-99", 50, 0, None, b"120-3") == Loss(50, "120-3")


def test_trimming_what_was_delivered_is_no_loss() -> None:
    assert lost_before_delivery(b"200-0", 40, 300, b"100-0", b"300-0") is None
    assert lost_before_delivery(b"200-0", 0, 0, None, b"200-0") is None


def test_a_deletion_beyond_the_last_delivered_entry_is_a_loss() -> None:
    assert lost_before_delivery(b"100-5", None, 10, b"1-0", b"300-0", b"200-0") == Loss(
        None, "200-0"
    )
    assert lost_before_delivery(b"100-5", None, 10, b"1-0", b"300-0", b"100-5") is None
    assert lost_before_delivery(b"100-5", 3, 10, b"1-0", b"300-0", b"50-0") is None


def test_redis_before_7_reports_no_loss() -> None:
    assert lost_before_delivery(b"100-5", None, 10, b"1-0", b"300-0", None) is None
