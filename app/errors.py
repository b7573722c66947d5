"""Engine ValueErrors become 422s whose message names the field, in FastAPI's own error shape."""

from fastapi import Request

from .serialize import json_response


def field_of(message: str) -> str:
    """The engine writes 'field: what is wrong'; the field is what precedes the first colon."""
    head, sep, _ = message.partition(":")
    return head.strip() if sep and " " not in head.strip() else "body"


def error_body(message: str, status: int = 422, loc_prefix=("body",)) -> dict:
    return {"detail": [{"loc": [*loc_prefix, *field_of(message).split(".")], "msg": message, "type": "value_error"}]}


async def value_error_handler(request: Request, exc: ValueError):
    """422 with the engine's message."""
    return json_response(error_body(str(exc)), status_code=422)


class BudgetError(ValueError):
    """A request over a size or work limit: still a 422 naming the field and the limit."""


async def request_validation_handler(request: Request, exc):
    """FastAPI's 422 for schema errors, with NaN/Inf inputs echoed as null so the error itself is valid JSON."""
    errors = []
    for error in exc.errors():
        error = dict(error)
        error.pop("ctx", None)
        loc = [str(part) for part in error.get("loc", ())]
        field = "body" if error.get("type") == "json_invalid" else ".".join(loc[1:]) or "body"
        error["msg"] = f"{field}: {error.get('msg', 'invalid')}"
        if "input" in error:
            error["input"] = echoed(error["input"])
        errors.append(error)
    return json_response({"detail": errors}, status_code=422)


def echoed(value):
    """The input an error echoes, kept small and writable: a scalar as it was (a string cut to 200 characters, a
    whole number beyond 64 bits as its size), a list or object summarised (it may be megabytes, or
    nested thousands deep)."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else f"<a whole number of {value.bit_length()} bits>"
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, (list, tuple)):
        return f"<a list of {len(value)}>"
    if isinstance(value, dict):
        return f"<an object of {len(value)} fields>"
    return str(value)[:200]


async def http_error_handler(request: Request, exc):
    """Starlette's HTTP errors (FastAPI's 400 for an undecodable body, 404s, 405s) in the documented error shape."""
    detail = exc.detail
    if isinstance(detail, str):
        detail = [
            {
                "loc": ["body"] if exc.status_code == 400 else ["path"],
                "msg": f"body: {detail}" if exc.status_code == 400 else detail,
                "type": "http_error",
            }
        ]
    response = json_response({"detail": detail}, status_code=exc.status_code)
    for key, value in (getattr(exc, "headers", None) or {}).items():
        response.headers[key] = value
    return response


async def stopped_handler(request: Request, exc):
    """engine.cancel.Stopped: past the time limit a 504 (the work was stopped); a client that left gets a 503
    nobody reads (the log records it)."""
    status = 504 if getattr(exc, "reason", "") == "deadline" else 503
    return json_response(
        {"detail": [{"loc": ["request"], "msg": str(exc), "type": "stopped"}]},
        status_code=status,
    )
