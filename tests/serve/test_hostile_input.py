"""Hostile bodies: each is a 422 naming its field, never a 500, and leaves the store unchanged.

The bodies are sent as raw bytes, because ``client.post(json=...)`` cannot write what a
hostile client can: NaN and Infinity (Python's parser reads them), 1e400 (read as inf), lone
surrogate escapes and NUL escapes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from efimero.serve.schemas import (
    MAX_DETAIL_DEPTH,
    MAX_DETAIL_ENTRIES,
    MAX_DETAIL_TEXT,
    MAX_SAFE_INTEGER,
)
from tests.serve.conftest import PHONE_AT_NIGHT, interaction

NAN, INF = math.nan, math.inf
HUGE = "@@1e400@@"
"""Stands for the JSON number 1e400, which ``json.dumps`` cannot write (see :func:`raw_json`)."""

HISTORY = PHONE_AT_NIGHT["history"]


def raw_json(body: Any) -> bytes:
    """``body`` as a hostile client would send it: NaN/Infinity tokens, \\ud800 and \\u0000 escapes, 1e400."""
    return json.dumps(body).replace(f'"{HUGE}"', "1e400").encode("ascii")


def post_raw(client: TestClient, route: str, content: bytes, content_type: str | None = "application/json") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return client.post(route, content=content, headers=headers)


def counts(client: TestClient) -> dict[str, int]:
    client.app.state.store.flush()
    return client.app.state.store.counts()


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep (the outer one is level 1)."""
    return {"level": 1} if depth == 1 else {"level": nested(depth - 1)}


def assert_refused(response: Any, loc: tuple[str | int, ...]) -> dict[str, Any]:
    """One 422 error, located at ``body`` + ``loc``, whose answer is valid JSON."""
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert tuple(error["loc"]) == ("body", *loc), error
    assert error["msg"] and error["type"]
    return error


PREDICT_CASES: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("nan", {"device_pixel_ratio": NAN}, ("device_pixel_ratio",)),
    ("infinity", {"connection_downlink_mbps": INF}, ("connection_downlink_mbps",)),
    ("-infinity in an int", {"timezone_offset_min": -INF}, ("timezone_offset_min",)),
    ("1e400", {"viewport_width": HUGE}, ("viewport_width",)),
    ("nan in history", {"history": HISTORY | {"avg_session_duration_s": NAN}}, ("history", "avg_session_duration_s")),
    ("1e400 in history", {"history": HISTORY | {"visits": HUGE}}, ("history", "visits")),
    ("surrogate session_id", {"session_id": "\ud800"}, ("session_id",)),
    ("surrogate literal", {"pointer": "\udfff"}, ("pointer",)),
    ("surrogate local_time", {"local_time": "2026-11-25T23:00:00\ud800"}, ("local_time",)),
    ("surrogate extra key", {"\ud800": 1}, ()),  # pydantic cannot read the key: the error sits on the body
    ("nul session_id", {"session_id": "session\x00"}, ("session_id",)),
    ("year 9999 east of UTC", {"local_time": "9999-12-31T23:59:00", "timezone_offset_min": 720}, ("local_time",)),
    ("year 1970", {"local_time": "1970-01-01T00:00:00"}, ("local_time",)),
    ("timestamp for local_time", {"local_time": 1764111600}, ("local_time",)),
    ("year 1 first visit", {"history": HISTORY | {"first_visit": "0001-01-01"}}, ("history", "first_visit")),
    ("string for int", {"viewport_width": "390"}, ("viewport_width",)),
    ("float for int", {"viewport_width": 390.0}, ("viewport_width",)),
    ("bool for int", {"max_touch_points": True}, ("max_touch_points",)),
    ("string for float", {"device_pixel_ratio": "3"}, ("device_pixel_ratio",)),
    ("string for bool", {"ua_mobile": "yes"}, ("ua_mobile",)),
    ("int for bool", {"prefers_reduced_motion": 1}, ("prefers_reduced_motion",)),
    ("string in history", {"history": HISTORY | {"visits": "2"}}, ("history", "visits")),
]


@pytest.mark.parametrize(("change", "loc"), [c[1:] for c in PREDICT_CASES], ids=[c[0] for c in PREDICT_CASES])
def test_hostile_context_is_refused_alone_and_in_a_batch(client, change, loc) -> None:
    before = counts(client)
    assert_refused(post_raw(client, "/v1/predict", raw_json(PHONE_AT_NIGHT | change)), loc)
    batch = {"contexts": [PHONE_AT_NIGHT, PHONE_AT_NIGHT | change]}
    assert_refused(post_raw(client, "/v1/predict/batch", raw_json(batch)), ("contexts", 1, *loc))
    assert counts(client) == before


INTERACTION_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("nan", {"bounce_rate": NAN}, ("bounce_rate",)),
    ("infinity", {"page_load_time": INF}, ("page_load_time",)),
    ("-infinity", {"rendering_time": -INF}, ("rendering_time",)),
    ("1e400", {"scroll_depth": HUGE}, ("scroll_depth",)),
    ("1e400 in an int", {"session_duration": HUGE}, ("session_duration",)),
    ("string for float", {"bounce_rate": "0.5"}, ("bounce_rate",)),
    ("string for int", {"interactions_count": "9"}, ("interactions_count",)),
    ("bool for int", {"user_satisfaction": True}, ("user_satisfaction",)),
    ("nul session_id", {"session_id": "s\x00"}, ("session_id",)),
    ("nul user_id", {"user_id": "ana\x00@example.com"}, ("user_id",)),
    ("nul feedback", {"ui_preference_feedback": "\x00"}, ("ui_preference_feedback",)),
    ("nul prediction_id", {"prediction_id": "\x00"}, ("prediction_id",)),
    ("surrogate session_id", {"session_id": "\ud800"}, ("session_id",)),
    ("surrogate user_id", {"user_id": "\udc00ana"}, ("user_id",)),
    ("surrogate feedback", {"ui_preference_feedback": "calm\ud800"}, ("ui_preference_feedback",)),
    ("surrogate prediction_id", {"prediction_id": "\ud800"}, ("prediction_id",)),
    ("nul key in device_info", {"device_info": {"\x00": 1}}, ("device_info",)),
    ("nul nested in device_info", {"device_info": {"gpu": {"vendor": ["ok", "a\x00"]}}}, ("device_info",)),
    ("surrogate key in device_info", {"device_info": {"gpu": {"\ud800": 1}}}, ("device_info",)),
    ("nan in device_info", {"device_info": {"dpr": NAN}}, ("device_info",)),
    ("infinity nested in device_info", {"device_info": {"a": [{"b": INF}]}}, ("device_info",)),
    ("1e400 in device_info", {"device_info": {"a": HUGE}}, ("device_info",)),
    ("unsafe integer in device_info", {"device_info": {"a": MAX_SAFE_INTEGER + 1}}, ("device_info",)),
    ("too deep device_info", {"device_info": nested(MAX_DETAIL_DEPTH + 1)}, ("device_info",)),
    ("too many keys", {"device_info": {str(i): i for i in range(MAX_DETAIL_ENTRIES + 1)}}, ("device_info",)),
    ("too long a string", {"device_info": {"ua": "x" * (MAX_DETAIL_TEXT + 1)}}, ("device_info",)),
    ("nul in network_conditions", {"network_conditions": {"type": "wifi\x00"}}, ("network_conditions",)),
    ("nan in network_conditions", {"network_conditions": {"rtt": [NAN]}}, ("network_conditions",)),
    ("-infinity in network_conditions", {"network_conditions": {"rtt": -INF}}, ("network_conditions",)),
    ("surrogate in network_conditions", {"network_conditions": {"type": "\udfff"}}, ("network_conditions",)),
]


@pytest.mark.parametrize(("change", "loc"), [c[1:] for c in INTERACTION_CASES], ids=[c[0] for c in INTERACTION_CASES])
def test_hostile_interaction_log_is_refused(client, change, loc) -> None:
    known = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"]
    before = counts(client)
    assert_refused(post_raw(client, "/v1/interactions", raw_json(interaction(known) | change)), loc)
    assert counts(client) == before


def test_details_messages_name_the_nested_place(client) -> None:
    known = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"]
    body = interaction(known, device_info={"gpu": {"vendor": ["ok", "a\x00"]}})
    error = assert_refused(post_raw(client, "/v1/interactions", raw_json(body)), ("device_info",))
    assert error["msg"].startswith("device_info['gpu']['vendor'][1] must not contain NUL characters")


def test_contexts_at_the_edges_of_the_bounds_are_served(client) -> None:
    """The year bounds leave room for every timezone: no overflow turning UTC at either end."""
    latest = PHONE_AT_NIGHT | {"local_time": "2100-12-31T23:59:59", "timezone_offset_min": 720}
    earliest = PHONE_AT_NIGHT | {"local_time": "2000-01-01T00:00:00", "timezone_offset_min": -840,
                                 "history": HISTORY | {"first_visit": "2000-01-01"}}
    assert client.post("/v1/predict/batch", json={"contexts": [latest, earliest]}).status_code == 200
    assert counts(client)["predictions"] == 2


def test_details_at_the_limits_and_non_bmp_text_are_stored(client) -> None:
    known = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"]
    details = {str(i): i for i in range(MAX_DETAIL_ENTRIES - 2)} | {
        "deep": nested(MAX_DETAIL_DEPTH - 1), "text": "\U0001F600" * MAX_DETAIL_TEXT,
    }
    details["0"] = [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1e308, None, True]
    body = interaction(
        known, device_info=details, network_conditions={"type": "4g"}, ui_preference_feedback="\U0001F600"
    )
    response = post_raw(client, "/v1/interactions", raw_json(body))  # the emoji travels as a surrogate pair
    assert response.status_code == 202, response.text
    assert counts(client)["interactions"] == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"session_id": "\xff"}', "application/json"),  # not UTF-8: the parser raises UnicodeDecodeError
        (b"[" * 50_000, "application/json"),  # deeper than the parser's recursion limit
        (b'{"viewport_width": ' + b"9" * 5000 + b"}", "application/json"),  # past Python's int digit limit
        (b'{"viewport_width": }', "application/json"),
        (b"NaN", "application/json"),
        (b'"\\ud800"', "application/json"),
        (b"\xff\xfe not json", "text/plain"),  # passed on as bytes, which need not decode
        (b"\xff\xfe not json", None),
    ],
    ids=["invalid utf-8", "deep nesting", "long integer", "syntax error", "top-level nan", "top-level surrogate",
         "bytes as text/plain", "bytes without content type"],
)
@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch", "/v1/interactions"])
def test_unreadable_body_is_a_422_about_the_body(client, route, content, content_type) -> None:
    before = counts(client)
    response = post_raw(client, route, content, content_type)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert counts(client) == before


def test_json_syntax_error_says_where_parsing_stopped(client) -> None:
    response = post_raw(client, "/v1/predict", b'{"viewport_width": }')
    error = assert_refused(response, (19,))
    assert error["msg"] == "Body must be valid JSON; parsing failed at character 19: Expecting value."


def test_echoed_input_is_short_ascii(client) -> None:
    body = PHONE_AT_NIGHT | {"pointer": "\x00" + "é" * 10_000}
    error = assert_refused(post_raw(client, "/v1/predict", raw_json(body)), ("pointer",))
    assert error["input"].isascii() and len(error["input"]) <= 120
    assert all(isinstance(value, str) for value in error["ctx"].values())


def test_openapi_docs_still_render_and_show_strict_types(client) -> None:
    assert client.get("/docs").status_code == 200
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    context = schemas["PredictRequest"]["properties"]
    assert context["local_time"]["type"] == "string" and context["local_time"]["format"] == "date-time"
    assert context["viewport_width"]["type"] == "integer" and context["device_pixel_ratio"]["type"] == "number"
    assert {"type": "boolean"} in context["ua_mobile"]["anyOf"]
    details = schemas["InteractionRequest"]["properties"]["device_info"]["description"]
    assert f"at most {MAX_DETAIL_ENTRIES} keys" in details and f"{MAX_DETAIL_DEPTH} levels" in details
