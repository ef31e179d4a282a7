"""Error answers in the OpenAPI schema (docs/protocol.md §2), for every operation.

drf-spectacular documents only the success answer. Clients, and the schema
fuzzing in tests/reliability/test_api_fuzz.py, need the errors as well; each
is the `{"detail", "code"}` shape of core.api_errors. Which statuses an
operation may answer follows from its view: a body → 400, the API → 401, a
permission beyond "anyone" → 403, a path parameter → 404, a throttle (or an
authentication that throttles its failures) → 429.
"""

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only (code `invalid`): messages by field.",
    )

    class Meta:
        ref_name = "Error"


class ErrorAnswersSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status, description in self._error_statuses():
            if status not in responses:
                answer = self._get_response_for_code(
                    ErrorSerializer, status, direction=direction
                )
                responses[status] = {**answer, "description": description}
        return responses

    def _error_statuses(self) -> list[tuple[str, str]]:
        view, statuses = self.view, []
        if self.method in {"POST", "PUT", "PATCH"}:
            statuses.append(("400", "Invalid input or body (code `invalid`)."))
        if self.path.startswith("/api/"):
            statuses.append(("401", "Missing or bad credentials (see docs/api.md)."))
        if any(p is not AllowAny for p in view.permission_classes):
            statuses.append(("403", "Not allowed (code `forbidden`)."))
        if "{" in self.path or not self.path.startswith("/api/"):
            statuses.append(("404", "No such resource (code `not_found`)."))
        if view.throttle_classes or any(
            getattr(auth, "failure_throttle", None)
            for auth in view.authentication_classes
        ):
            statuses.append(("429", "Throttled (code `throttled`, `Retry-After`)."))
        return statuses
