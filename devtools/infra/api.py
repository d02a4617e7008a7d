"""The REST API's name and the answers API Gateway gives without calling the app."""

from __future__ import annotations

import json
from typing import Any

from devtools.infra.stages import Stage

# Answers API Gateway gives without calling the app (an unknown path, throttling, a timeout) carry
# the request id and the security headers too. Static values are single-quoted (API Gateway's
# syntax), so the CSP is "sandbox": a value with quotes of its own cannot be written here.
GATEWAY_RESPONSE_HEADERS = {
    "X-Request-Id": "context.requestId",
    "Content-Security-Policy": "'sandbox'",
    "Strict-Transport-Security": "'max-age=63072000; includeSubDomains'",
    "X-Content-Type-Options": "'nosniff'",
    "X-Frame-Options": "'DENY'",
    "Referrer-Policy": "'no-referrer'",
    "Cache-Control": "'no-store'",
}
# An unknown path is API Gateway's 403 "Missing Authentication Token": answer 404 in Spanish instead,
# in the shape of every other API error (SPEC §6).
NOT_FOUND_BODY = json.dumps({"error": {"code": "not_found",
                                       "message": "La dirección solicitada no existe."}}, ensure_ascii=False)


def gateway_responses() -> dict[str, Any]:
    """The API's gateway responses (OpenAPI extension ``x-amazon-apigateway-gateway-responses``)."""
    parameters = {f"gatewayresponse.header.{name}": value for name, value in GATEWAY_RESPONSE_HEADERS.items()}
    return {
        "DEFAULT_4XX": {"responseParameters": parameters},
        "DEFAULT_5XX": {"responseParameters": parameters},
        "MISSING_AUTHENTICATION_TOKEN": {
            "statusCode": 404, "responseParameters": parameters,
            "responseTemplates": {"application/json": NOT_FOUND_BODY},
        },
    }


def api_name(stage_: Stage) -> str:
    """The REST API's name (and so its ApiName metric dimension), one per stage."""
    return stage_.resource_prefix
