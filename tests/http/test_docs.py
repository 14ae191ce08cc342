"""docs/api.md names every route the app serves and every error code it sends."""

from __future__ import annotations

from pathlib import Path

from chorus.http import all_routes
from chorus.http._errors import ERROR_CODES

API_MD = Path(__file__).parents[2] / "docs" / "api.md"


def test_every_route_has_a_section() -> None:
    text = API_MD.read_text()
    for route in all_routes():
        assert f"### `{route.method} {route.path}" in text, (route.method, route.path)


def test_every_error_code_is_in_the_table_with_its_status() -> None:
    text = API_MD.read_text()
    for error in ERROR_CODES:
        assert f"| `{error.code}` | {error.status} |" in text, error.code
