"""NumPy values to strict JSON: arrays become lists (rows for matrices) and NaN/Inf become null."""

import json
import math

import numpy as np
from fastapi.responses import Response


def clean(value):
    """Recursively turn arrays, numpy scalars and non-finite floats into plain JSON values."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            return clean(value.tolist())
        return value.tolist()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:200]).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def json_response(payload, status_code: int = 200) -> Response:
    """A strict-JSON response (allow_nan=False proves no NaN slipped through)."""
    body = json.dumps(clean(payload), allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type="application/json")
