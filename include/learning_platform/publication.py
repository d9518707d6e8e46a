"""Where ``publish_report`` put the day's report: the XCom value ``email_report`` links to.

It crosses tasks as a plain dict (``as_dict``/``from_dict``): XCom stores JSON, not our classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Destination(StrEnum):
    SHEETS = "sheets"  # published to Google Sheets
    LOCAL_FILE = "local_file"  # no Google credentials: written to a local file instead


@dataclass(frozen=True, slots=True)
class Publication:
    """Where ``publish_report`` put the day's report (a link for the email)."""

    destination: Destination
    location: str  # the sheet's URL, or the local file's path

    def as_dict(self) -> dict[str, str]:
        return {"destination": self.destination.value, "location": self.location}

    @classmethod
    def from_dict(cls, value: dict[str, str]) -> Publication:
        return cls(Destination(value["destination"]), value["location"])
