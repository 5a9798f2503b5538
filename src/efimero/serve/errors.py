"""Exception handlers that answer every refused request body with a 422 that always encodes.

FastAPI's default handler echoes each error's ``input`` through ``jsonable_encoder`` and
``json.dumps``. The inputs worth refusing are exactly the ones that cannot be echoed: a lone
surrogate has no UTF-8 encoding, NaN is not JSON, and a body sent without a JSON content type
arrives as bytes that need not decode. The handler then fails, and the client's bad input
turns into a 500. Here every error keeps ``type``, ``loc`` and ``msg``, ``input`` becomes a
short ASCII repr and ``ctx`` values become strings, so nothing in the answer can fail to encode.

A body that is not JSON text at all (invalid UTF-8, an integer longer than Python's 4300-digit
limit, nesting deeper than the parser's recursion limit) makes FastAPI raise a bare 400; it gets
the same 422 shape as a JSON syntax error. There is deliberately no catch-all ``Exception``
handler: anything else that fails is a bug and must surface as one.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

MAX_ECHO_CHARS = 120
"""Longest ``input``, ``loc`` entry or ``ctx`` value echoed back to the client."""

_BODY_PARSE_FAILURE = "There was an error parsing the body"
"""The detail of the 400 FastAPI raises when ``json.loads`` fails with something other than JSONDecodeError."""

_echo = reprlib.Repr()
# Bounded in depth and width, so a 1000-level nested array cannot exhaust the stack here.
_echo.maxlevel, _echo.maxdict, _echo.maxlist, _echo.maxstring, _echo.maxother = 3, 5, 5, 60, 60


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ECHO_CHARS else text[: MAX_ECHO_CHARS - 3] + "..."


def _encodable(text: str) -> str:
    """``text`` with lone surrogates spelled as ``\\udxxx``, so it encodes as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _echoed(value: object) -> str:
    """A short ASCII repr of an offending input, whatever it holds."""
    return _clip(_echo.repr(value).encode("ascii", "backslashreplace").decode("ascii"))


def safe_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Reduce validation errors to fields that always encode as JSON.

    Args:
        errors: ``RequestValidationError.errors()``: pydantic's dicts, or those a route raised.

    Returns:
        One dict per error with ``type``, ``loc`` (ints kept, strings made encodable and
        clipped) and ``msg``, plus ``input`` as a clipped ASCII repr and ``ctx`` with string
        values when the error had them.
    """
    safe = []
    for error in errors:
        entry: dict[str, Any] = {
            "type": _encodable(str(error.get("type", "value_error"))),
            "loc": [part if isinstance(part, int) else _clip(_encodable(str(part))) for part in error.get("loc", ())],
            "msg": _encodable(str(error.get("msg", ""))),
        }
        if "input" in error:
            entry["input"] = _echoed(error["input"])
        if error.get("ctx"):
            entry["ctx"] = {str(key): _clip(_encodable(str(value))) for key, value in error["ctx"].items()}
        safe.append(entry)
    return safe


async def request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer a refused body with a 422 whose ``detail`` lists each error safely.

    A JSON syntax error also lands here (FastAPI raises it as ``json_invalid``); its message
    then says what the body must be and where parsing stopped.
    """
    errors = safe_errors(exc.errors())
    for error in errors:
        if error["type"] == "json_invalid" and "ctx" in error:
            where = error["loc"][-1]
            error["msg"] = f"Body must be valid JSON; parsing failed at character {where}: {error['ctx'].get('error')}."
            error.pop("input", None)  # FastAPI puts {} there, which says nothing
    return JSONResponse(status_code=422, content={"detail": errors})


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Turn FastAPI's 400 for a body ``json.loads`` cannot read into a 422; pass others on.

    FastAPI raises that 400 (chained from the parser's error) for invalid UTF-8, integers
    beyond Python's digit limit and too-deep nesting, all of which are bad JSON to a client.
    Every other HTTPException goes to FastAPI's own handler unchanged.
    """
    cause = exc.__cause__
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_FAILURE and isinstance(cause, ValueError | RecursionError):
        reason = _clip(_encodable(str(cause)))
        error = {
            "type": "json_invalid", "loc": ["body"],
            "msg": f"Body must be JSON text in UTF-8. Got a body the parser refused ({reason}) instead.",
        }
        return JSONResponse(status_code=422, content={"detail": [error]})
    return await http_exception_handler(request, exc)


EXCEPTION_HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    RequestValidationError: request_validation_error,
    StarletteHTTPException: http_error,
}
"""The handlers :func:`efimero.serve.create_app` installs, by the exception they answer."""
