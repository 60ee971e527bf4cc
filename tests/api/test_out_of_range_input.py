"""Inputs at the edges of what a type can hold get a 4xx naming the problem, never a 500.

A node of its own with one camera that is never reached (no simulator: nothing here needs a
picture), and an admin's API token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.config.models import AppConfig
from tests.auth_helpers import bearer


@pytest.fixture
def client_and_headers(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {
                    "id": "gate",
                    "name": "Gate",
                    "platform": "town",
                    "url": "rtsp://127.0.0.1:9/never",
                    "mode": "on-demand",
                }
            ],
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        yield client, bearer(app.state.node)


@pytest.mark.parametrize(
    "query",
    [
        # Dates that exist in their own zone but not in UTC, where the database compares.
        "created_from=9999-12-31T23:59:59-23:59",
        "created_to=0001-01-01T00:00:00%2B14:00",
    ],
)
def test_case_list_dates_outside_utc_are_refused(
    client_and_headers: tuple[TestClient, dict[str, str]], query: str
) -> None:
    client, headers = client_and_headers
    answer = client.get(f"/api/cases?{query}", headers=headers)
    assert answer.status_code == 422, answer.text
    assert "between years 1 and 9999" in answer.json()["detail"]


def test_a_missing_sub_stream_is_named_as_such(
    client_and_headers: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = client_and_headers
    answer = client.get("/api/cameras/gate/snapshot.jpg?stream=sub", headers=headers)
    assert answer.status_code == 404
    assert answer.json()["detail"] == "camera 'gate' has no sub-stream; ask for the main stream"
    assert "gate/sub" not in answer.text  # the internal stream key stays internal
