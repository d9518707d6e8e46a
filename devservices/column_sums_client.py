"""A client of ``csv_column_sums``' REST API, as a user's script would be: the demo, tests and bench use it.

The API is a plugin of Airflow's API server, mounted at ``/column-sums`` (``include.column_sums.api``):

``POST /column-sums/tasks`` ``{"location": "s3://bucket/key.csv" | "path/under/the/local/root.csv"}``
    202 ``{"task_id", "state": "queued", "location"}``: the request is a DAG run, committed
    before the answer. 422: a body that is not that (the location's form is checked here;
    whether the file exists is the task's to find).
``GET /column-sums/tasks/{task_id}``
    200 ``{"task_id", "state", "location", "submitted_by", "queued_at", "started_at",
    "ended_at", "result", "error"}``. ``state`` is ``queued``, ``running``, ``success`` (then
    ``result`` holds the sums) or ``failed`` (then ``error`` holds ``{"code", "message"}``: the
    file's problem, such as ``not_found`` or ``too_few_columns``, or ``internal_error`` when the
    run failed after its retries). 404: no such task.
``GET /column-sums/tasks?limit=100``
    200 ``{"tasks": [...], "total_entries": n}``: the caller's own requests, newest first,
    without their results.
``GET /column-sums/in-progress[?mine=true]``
    200 ``{"queued", "running", "in_progress"}``: requests not finished yet (everyone's, or the
    caller's).

Every route needs Airflow's login (``POST /auth/token``, then ``Authorization: Bearer …``):
401 without credentials or with an expired token; 403 for an invalid token or a user who may
not trigger (POST) or read (GET) the DAG's runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

URL_PREFIX = "/column-sums"
FINISHED = ("success", "failed")


class ColumnSumsApiError(RuntimeError):
    """The API answered with an error status; ``status`` and ``detail`` say which."""

    def __init__(self, method: str, path: str, status: int, detail: Any) -> None:
        super().__init__(f"{method} {URL_PREFIX}{path}: {status} {detail}")
        self.status = status
        self.detail = detail


@dataclass
class ColumnSumsClient:
    """One user's session with the API: logs in once, and again when the token expired."""

    base_url: str  # Airflow's API server, e.g. http://127.0.0.1:8080
    username: str
    password: str
    timeout_s: float = 30

    def __post_init__(self) -> None:
        self._session = requests.Session()

    def submit(self, location: str) -> str:
        """Ask for ``location``'s sums; the task id."""
        return self._request("POST", "/tasks", json={"location": location})["task_id"]

    def task(self, task_id: str) -> dict[str, Any]:
        return self._request("GET", f"/tasks/{task_id}")

    def my_tasks(self, limit: int = 100) -> dict[str, Any]:
        return self._request("GET", "/tasks", params={"limit": limit})

    def in_progress(self, *, mine: bool = False) -> dict[str, int]:
        return self._request("GET", "/in-progress", params={"mine": "true"} if mine else None)

    def wait(self, task_id: str, *, timeout_s: float = 300, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll the task until it is finished; its last answer (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self.task(task_id)
            if answer["state"] in FINISHED:
                return answer
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is still {answer['state']} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def login(self) -> str:
        """A fresh token, kept for the next calls."""
        response = self._session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout_s,
        )
        if response.status_code != 201:
            raise ColumnSumsApiError("POST", "/../auth/token", response.status_code, response.text[:300])
        token = response.json()["access_token"]
        self._session.headers["Authorization"] = f"Bearer {token}"
        return token

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        if "Authorization" not in self._session.headers:
            self.login()
        url = f"{self.base_url}{URL_PREFIX}{path}"
        response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        if response.status_code == 401:  # expired: log in again, once
            self.login()
            response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        # A plugin that failed to load leaves the path to the UI's catch-all, which answers HTML.
        if not response.headers.get("content-type", "").startswith("application/json"):
            raise ColumnSumsApiError(
                method, path, response.status_code, "not a JSON answer: is the plugin loaded?"
            )
        if not response.ok:
            raise ColumnSumsApiError(method, path, response.status_code, response.json().get("detail"))
        return response.json()
