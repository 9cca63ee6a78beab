"""Schema-driven fuzzing of every endpoint, from the server's own OpenAPI document (schemathesis).

For each operation of the document and each caller — anonymous, bob (a member of no
proprietary program) and alice (a member) — schemathesis generates requests from the
operation's parameters and bodies (random ones, plus ones seeded with real public,
proprietary and mixed IDs and valid filter values so the 200 paths are fuzzed too) and
checks every answer:

* no 5xx (``not_a_server_error``);
* the status code, content type, headers and JSON body conform to the document
  (``status_code_conformance``, ``content_type_conformance``,
  ``response_headers_conformance``, ``response_schema_conformance``);
* schema-violating requests are rejected with a 4xx (``negative_data_rejection``, in the
  negative-mode runs);
* for anonymous and bob: no response carries a proprietary program's slug, name,
  observation, spectrum/object ID, file name or file hash that the request did not
  itself contain (the export's gzip is opened first).

CI runs a few dozen examples per operation and caller (~30 s); ``--runslow`` runs 300.
Guards: the server's input validation and error handlers (no 500), the response
descriptions of campfire/server/openapi.py (a changed body or an undocumented status
fails here), and visibility filtering on every endpoint (the leak check).
"""
from __future__ import annotations

import gzip
import pathlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stresskit import API, copy_archive, password_token, start_server

from campfire.server.openapi import OPERATIONS

pytestmark = pytest.mark.server

USERS = [None, "bob", "alice"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
LABELS = [f"{method.upper()} {API}{path}" for method, path in OPERATIONS]
# negative mode needs something to make invalid: a path ID, a query parameter or a body
NEGATIVE_LABELS = [f"{method.upper()} {API}{path}" for (method, path), spec in OPERATIONS.items()
                   if "{" in path or spec.get("parameters") or spec.get("requestBody")
                   or path in ("/objects", "/spectra")]


@pytest.fixture(scope="module")
def fuzz_server(demo_root, tmp_path_factory):
    """A server of its own: the fuzzer creates tags and trips the login rate limit."""
    root = copy_archive(pathlib.Path(demo_root), tmp_path_factory.mktemp("fuzz") / "root")
    srv = start_server(root)
    srv.faults._record = lambda scope: None  # thousands of requests: keep no log
    yield srv
    srv.thread.stop()


@pytest.fixture(scope="module")
def callers(fuzz_server) -> dict:
    out = {None: {}}
    for user in ("bob", "alice"):
        out[user] = {"Authorization": f"Bearer {password_token(fuzz_server.url, user)['access_token']}"}
    return out


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    return schemathesis.openapi.from_url(f"{fuzz_server.url}{API}/openapi.json")


@pytest.fixture(scope="module")
def seeds(ids) -> dict:
    """Real values the fuzzer mixes in, so requests reach the 200 paths and proprietary rows."""
    return {
        "object_id": [ids["example_object"], ids["prop_only"][0], ids["mixed"][0]],
        "spectrum_id": [ids["example_spectrum"], ids["prop_spectra"][0], ids["public_spectrum"]],
        "slug": ["lrd", "my-tag"],
        "query": [{"fields": "uds", "limit": "5"}, {"programs": ids["prop_slugs"][0]},
                  {"observations": ids["prop_obs"][0]}, {"search": ids["prop_only"][0]},
                  {"gratings": "PRISM", "sort": "redshift", "sort_dir": "desc", "limit": "20"},
                  {"dq_flags": "~CONTAMINATION&~LOW_SNR", "limit": "3"},
                  {"cone_search": "34.4051456,-5.2101074,30"}, {"redshift_range": "1,8", "count": "false"}],
    }


def strategy(op, mode: GenerationMode, seeds: dict):
    """The operation's own strategy, plus variants with real path IDs and valid filters."""
    variants = [op.as_strategy(generation_mode=mode)]
    if mode is GenerationMode.POSITIVE:
        for name in [p.name for p in op.iter_parameters() if p.location.value == "path"]:
            for value in seeds.get(name, []):
                variants.append(op.as_strategy(generation_mode=mode, path_parameters={name: value}))
        if op.path.endswith(("/objects", "/spectra")) and op.method.upper() == "GET":
            for query in seeds["query"]:
                variants.append(op.as_strategy(generation_mode=mode, query=query))
    return st.one_of(variants)


def leak_check(secrets, response) -> None:
    body = response.content or b""
    ctype = " ".join(response.headers.get("content-type", []))  # schemathesis: header -> list of values
    if ctype.startswith("application/gzip") and response.status_code == 200:
        body = gzip.decompress(body)
    req = response.request
    asked = (req.url or "") + (req.body.decode("latin-1") if isinstance(req.body, bytes) else str(req.body or ""))
    leaked = secrets.leaks(body, requests.utils.unquote(asked))
    assert not leaked, f"{req.method} {req.url} → {response.status_code} shows proprietary {leaked[:5]}"


def run_fuzz(request, api_schema, url, label, headers, mode, seeds, secrets=None):
    op = api_schema.find_operation_by_label(label)
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    n = 300 if request.config.getoption("--runslow") else 20

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy(op, mode, seeds))
    def fuzz(case):
        response = case.call_and_validate(base_url=url, headers=headers, checks=checks)
        if secrets is not None:
            leak_check(secrets, response)

    fuzz()


def test_every_operation_is_fuzzed(api_schema):
    # a new endpoint without an OPERATIONS entry fails to build the document; this pins the list
    ops = {r.ok().label for r in api_schema.get_all_operations()}
    assert ops == set(LABELS)


@pytest.mark.parametrize("user", USERS, ids=lambda u: u or "anonymous")
@pytest.mark.parametrize("label", LABELS)
def test_positive_fuzz(request, api_schema, fuzz_server, callers, seeds, secrets, label, user):
    run_fuzz(request, api_schema, fuzz_server.url, label, callers[user], GenerationMode.POSITIVE, seeds,
             secrets if user != "alice" else None)


@pytest.mark.parametrize("user", [None, "alice"], ids=lambda u: u or "anonymous")
@pytest.mark.parametrize("label", NEGATIVE_LABELS)
def test_negative_fuzz(request, api_schema, fuzz_server, callers, seeds, secrets, label, user):
    run_fuzz(request, api_schema, fuzz_server.url, label, callers[user], GenerationMode.NEGATIVE, seeds,
             secrets if user is None else None)
