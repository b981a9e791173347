"""The OpenAPI document, generated from the app: the same ``Api`` serves and writes it.

flask-smorest documents the routes and schemas; the ``ContractPlugin`` below adds what it
cannot know: each operation's problem responses (from the one table in ``api/problems.py``),
its ``operationId``, and the links that feed a created object's id to the next operations.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask
from flask_smorest import Api

from api.problems import (
    Operation,
    ProblemSchema,
    ProblemType,
    extension_schema,
    headers_for,
    problems_for,
    render_markdown,
)

__all__ = ["build_api", "generate_spec", "problems_markdown"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Responses flask-smorest adds on its own, replaced by the documented problems.
_SMOREST_ERRORS = re.compile(r"^([45]\d\d|default)$")

# A created object's id feeds the operations that read or decide it (OpenAPI links), so
# schemathesis' stateful phase walks the real workflows: operationId -> (status, id member,
# {target operationId: its path parameter}).
LINKS: dict[str, tuple[str, dict[str, str]]] = {
    "post_registrations": (
        "202",
        {
            "get_registrations_by_registration_id": "registration_id",
            "post_registrations_by_registration_id_approve": "registration_id",
            "post_registrations_by_registration_id_reject": "registration_id",
        },
    ),
    "post_account_requests": (
        "202",
        {
            "get_account_requests_by_request_id": "request_id",
            "post_account_requests_by_request_id_approve": "request_id",
        },
    ),
    "post_legal_bases": (
        "201",
        {
            "get_legal_bases_by_basis_id": "basis_id",
            "post_legal_bases_by_basis_id_approve": "basis_id",
            "post_legal_bases_by_basis_id_revoke": "basis_id",
        },
    ),
    "post_gallery_photos": (
        "201",
        {
            "get_gallery_photos_by_photo_id": "photo_id",
            "get_gallery_photos_by_photo_id_image": "photo_id",
        },
    ),
    "post_searches": (
        "201",
        {
            "get_searches_by_search_id": "search_id",
            "post_searches_by_search_id_reviews": "search_id",
        },
    ),
    "post_proposals": (
        "201",
        {
            "get_proposals_by_proposal_id": "proposal_id",
            "post_proposals_by_proposal_id_confirm": "proposal_id",
        },
    ),
    "post_erasures_preview": (
        "201",
        {
            "get_erasures_requests_by_request_id": "request_id",
            "post_erasures_requests_by_request_id_confirm": "request_id",
        },
    ),
}


# Path parameters whose rule is more than their type: name -> the format's description.
PATH_FORMATS = {
    "site": "A site's registrable domain (Public Suffix List), or a host or URL within it.",
}

# Other media types an operation answers 200 with, chosen by a query parameter or `Accept`.
ALTERNATE_CONTENT: dict[str, dict[str, Any]] = {
    "get_ledger_keys": {"text/plain": {"schema": {"type": "string"}}},
}


def operation_id(path: str, method: str) -> str:
    """``post`` + ``/v1/searches/{search_id}/reviews`` -> ``post_searches_by_search_id_reviews``."""
    words = [method]
    for segment in path.strip("/").split("/")[1:] if path.startswith("/v1/") else [path]:
        name = segment.strip("{}").replace("-", "_").strip("/")
        words.append(f"by_{name}" if segment.startswith("{") else name)
    return "_".join(words)


class ContractPlugin(BasePlugin):
    """Document each operation's problems, give it an ``operationId``, and add the links."""

    def __init__(self) -> None:
        self.spec: APISpec | None = None
        self.operations: list[tuple[str, str, list[ProblemType]]] = []
        self._schemas: set[str] = set()

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec
        spec.components.schema("Problem", schema=ProblemSchema)

    def path_helper(
        self,
        path: str | None = None,
        operations: dict[Any, Any] | None = None,
        parameters: list[dict[Any, Any]] | None = None,
        **kwargs: Any,
    ) -> str | None:
        for parameter in parameters or []:
            if parameter.get("in") == "path" and parameter.get("name") in PATH_FORMATS:
                parameter["schema"] = {**parameter.get("schema", {}), "format": "site"}
                parameter["description"] = PATH_FORMATS[parameter["name"]]
        return path

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        rule = kwargs.get("rule")
        if rule is None or operations is None or path is None:
            return
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            self._document(rule.endpoint, path, method, operation)

    def _document(self, endpoint: str, path: str, method: str, operation: dict[str, Any]) -> None:
        op_id = operation_id(path, method)
        operation["operationId"] = op_id
        responses = operation.setdefault("responses", {})
        for status in [s for s in responses if _SMOREST_ERRORS.match(str(s))]:
            del responses[status]
        parameters = operation.get("parameters", [])
        body = operation.get("requestBody", {}).get("content", {})
        facts = Operation(
            endpoint=endpoint,
            method=method.upper(),
            secured=bool(operation.get("security")),
            has_input=bool(body) or any(p.get("in") == "query" for p in parameters),
            has_path="{" in path,
            upload="multipart/form-data" in body,
            costly=method == "post" and "multipart/form-data" in body,
        )
        problems = problems_for(facts)
        self.operations.append((method.upper(), path, problems))
        by_status: dict[int, list[ProblemType]] = {}
        for problem in problems:
            by_status.setdefault(problem.status, []).append(problem)
        for status, group in sorted(by_status.items()):
            responses[str(status)] = self._response(group)
        responses["default"] = self._response([])
        if op_id in ALTERNATE_CONTENT:
            ok = next(v for k, v in responses.items() if str(k) == "200")
            ok.setdefault("content", {}).update(ALTERNATE_CONTENT[op_id])
        if op_id in LINKS:
            status, targets = LINKS[op_id]
            created = next(v for k, v in responses.items() if str(k) == status)
            created["links"] = {
                target: {"operationId": target, "parameters": {param: "$response.body#/id"}}
                for target, param in targets.items()
            }

    def _response(self, group: list[ProblemType]) -> dict[str, Any]:
        refs = [{"$ref": f"#/components/schemas/{self._schema_of(p)}"} for p in group]
        refs = [r for r in refs if r["$ref"] != "#/components/schemas/Problem"]
        unique = list({r["$ref"]: r for r in refs}.values())
        schema: dict[str, Any] = (
            {"anyOf": [*unique, {"$ref": "#/components/schemas/Problem"}]}
            if unique
            else {"$ref": "#/components/schemas/Problem"}
        )
        if group:
            description = "; ".join(
                f"`{p.type_uri if p.generic else p.code}`: {p.title}" for p in group
            )
        else:
            description = "Any other problem (500 internal error, 503 unavailable)."
        response: dict[str, Any] = {
            "description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        headers = headers_for(group[0].status) if group else {}
        if headers:
            response["headers"] = headers
        return response

    def _schema_of(self, problem: ProblemType) -> str:
        extension = extension_schema(problem)
        if extension is None:
            return "Problem"
        assert problem.extensions is not None
        name = problem.extensions.name
        if name not in self._schemas and self.spec is not None:
            self._schemas.add(name)
            plugin = next(p for p in self.spec.plugins if hasattr(p, "converter"))
            members = plugin.converter.schema2jsonschema(extension)
            self.spec.components.schema(
                name,
                {
                    "allOf": [
                        {"$ref": "#/components/schemas/Problem"},
                        {
                            "type": "object",
                            "properties": members["properties"],
                            "required": members.get("required", []),
                        },
                    ],
                    "description": "A problem with these members besides RFC 9457's.",
                },
            )
        return name


def build_api(app: Flask) -> tuple[Api, ContractPlugin]:
    """The flask-smorest ``Api`` of every blueprint on ``app``, documented by the plugin."""
    from api.resources import BLUEPRINTS

    plugin = ContractPlugin()
    api = Api(app, spec_kwargs={"extra_plugins": [plugin]})
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    return api, plugin


def _spec_app() -> tuple[Api, ContractPlugin, Flask]:
    from api.app import API_VERSION, configure_api

    app = Flask("facewarden-spec")
    configure_api(app, max_request_bytes=0)
    app.config["API_VERSION"] = API_VERSION
    api, plugin = build_api(app)
    return api, plugin, app


def generate_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered blueprint."""
    api, _plugin, app = _spec_app()
    with app.app_context():
        spec: dict[str, Any] = api.spec.to_dict()
    return spec


def problems_markdown() -> str:
    """``docs/problems.md``: the problem table and the operations that return each type."""
    _api, plugin, _app = _spec_app()
    return render_markdown(plugin.operations)
