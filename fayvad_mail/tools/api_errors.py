"""Errors of the HTTP API: a status, a machine code and a human message."""


class ApiError(Exception):
    """Raised by controllers and models; answered as
    ``{"error": message, "error_code": code[, "details": ...]}``."""

    def __init__(self, status, code, message, details=None, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.extra = extra

    def body(self):
        body = {**self.extra, "error": self.message, "error_code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def validation_error(details, message="Request data validation failed"):
    return ApiError(400, "VALIDATION_ERROR", message, details=details)
