"""What an interval's load left in the warehouse: the ledger row and its reasons, for the demo command.

The pipeline itself does not use it: ``local_run`` prints it after a run, and the pipeline's tests
check a load against it. Its statements stay with the pipeline's other SQL (``warehouse.sql``),
beside the migrations of the tables they read and under the same SQL safety check.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from include.common.intervals import Interval
from include.learning_platform.warehouse import interval_params, sql


@dataclass(frozen=True, slots=True)
class IntervalSummary:
    interval: Interval
    fetched: int
    loaded: int
    quarantined: int
    flagged: int
    boundary_copies: int
    reasons: dict[str, int]
    defects: dict[str, int]

    def lines(self) -> list[str]:
        """A plain-text account for operators (the demo command prints it)."""
        out = [
            f"interval     {self.interval}",
            f"fetched      {self.fetched:>9,}",
            f"loaded       {self.loaded:>9,}  ({self.flagged:,} with flagged defects)",
            f"quarantined  {self.quarantined:>9,}",
            f"boundary     {self.boundary_copies:>9,}  (copies the next window owns)",
        ]
        out += [f"  rejected: {reason:<34}{count:>7,}" for reason, count in self.reasons.items()]
        out += [f"  flagged:  {defect:<34}{count:>7,}" for defect, count in self.defects.items()]
        return out


def summarize_interval(conn: psycopg.Connection, interval: Interval) -> IntervalSummary | None:
    """The published state of ``interval``, or None if no load has published it."""
    params = interval_params(interval)
    with conn.cursor() as cursor:
        cursor.execute(sql("select_load_batch"), params)
        batch = cursor.fetchone()
        if batch is None:
            return None
        _, _, fetched, loaded, quarantined, flagged, boundary_copies, _, _ = batch
        cursor.execute(sql("select_reason_counts"), params)
        reasons = dict(cursor.fetchall())
        cursor.execute(sql("select_defect_counts"), params)
        defects = dict(cursor.fetchall())
    return IntervalSummary(interval, fetched, loaded, quarantined, flagged, boundary_copies, reasons, defects)
