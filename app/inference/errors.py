"""Errors of the inference pool, on top of app.errors (they map to HTTP the same way).

    BadRequest ── InputError           400  wrong input type, too many tokens, unknown parameter
               └─ UnsupportedModel     400  no servable task, no weights, too large for the budget
    UnsafeModel                        422  a pickle file it would load is not scanned safe
    QueueFull                          429  Retry-After: the model's queue is full
    ModelLoading                       503  {"error", "estimated_time"} (Inference API shape)
    WorkerUnavailable                  503  Retry-After: a worker crashed or is restarting
    InferenceTimeout                   504  the request outlived ATRIUM_INFERENCE_REQUEST_TIMEOUT_S

Workers send (status, message) pairs back; `from_status` rebuilds the class on the API side.
"""

from __future__ import annotations

import math

from app.errors import AtriumError, BadRequest


class InputError(BadRequest):
    default_message = "Invalid inputs for this task"


class UnsupportedModel(BadRequest):
    default_message = "This model cannot be served"


class UnsafeModel(AtriumError):
    """A weight file the loader would unpickle has an unsafe (or no) pickle scan verdict:
    loading it could run the code it carries, so the model is never loaded."""

    status = 422
    default_message = "This model has an unsafe pickle file"


class QueueFull(AtriumError):
    status = 429
    default_message = "Too many requests for this model, retry later"

    def __init__(self, message: str | None = None, *, retry_after_s: float = 1.0):
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


class ModelLoading(AtriumError):
    status = 503
    default_message = "Model is currently loading"

    def __init__(self, message: str | None = None, *, estimated_time: float = 1.0):
        self.estimated_time = max(0.1, round(estimated_time, 1))
        retry = str(max(1, math.ceil(self.estimated_time)))
        super().__init__(message, headers={"Retry-After": retry})


class WorkerUnavailable(AtriumError):
    status = 503
    default_message = "The inference worker restarted; retry the request"

    def __init__(self, message: str | None = None, *, retry_after_s: float = 2.0):
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


class InferenceTimeout(AtriumError):
    status = 504
    default_message = "The inference request timed out"


def from_status(status: int, message: str) -> AtriumError:
    """The API-side error for a (status, message) a worker reported."""
    if status == 400:
        return InputError(message)
    if status == 429:
        return QueueFull(message)
    if status == 503:
        return WorkerUnavailable(message)
    return AtriumError(message)
