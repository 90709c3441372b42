"""The API keeps its own OpenAPI contract: schemathesis drives every operation of a real server.

A real server (``LiveServer``: uvicorn on a loopback port) over a temporary SQLite store with a
few runs in it (one trained for real, so it has metrics, events and prediction snapshots; a
stopped, an interrupted, a failed, a queued one and a diverged one with NaN and infinite
metrics), loaded from its own ``/openapi.json``. Every operation gets the examples, the coverage cases (boundaries, missing
and wrong values, undocumented methods) and ``MAX_EXAMPLES`` generated ones, each answer held
to every check that applies (schemathesis' default: all of them): not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection, positive_data_acceptance,
missing_required_header, unsupported_method, allow_header_conformance and ignored_auth; then a
bounded stateful run follows the links schemathesis infers (list -> item -> stop/resume/rename/
delete...), where use_after_free and ensure_resource_availability apply too.
(object_level_authorization needs two identities, which this server does not have;
max_response_time is off, as by default.) ``test_summary`` prints one line: operations, cases,
unique failures by check.

Choices:

* **Token.** The server runs with a token and declares it, so ``ignored_auth`` checks that
  every operation refuses a request without it (401). The Host check stays on
  (``allowed_hosts``), as on a loopback server without a token.
* **Writes** always send ``X-Layerlab: 1`` so the same-origin guard lets them through (that
  guard has its own tests: ``test_server_api.py``, ``test_browser_csrf.py``).
* **No workers** (``workers=0``): no run ever trains here, so every run is over or waiting and
  ``POST /api/runs`` of a valid spec answers 409 "no workers" (documented); the 201 answer is
  the ``RunSummary`` that every other run route is checked against.
* **Streams.** ``GET /api/runs/{id}/stream`` of a run that is over ends by itself (its ``end``
  message), and every event is validated against the documented event schema. The one seeded
  queued run's stream would stay open (no worker ever takes it): schemathesis reads a stream
  up to the request timeout, which for that operation is ``STREAM_TIMEOUT``, and checks the
  events that came.
* **Deletion last.** ``DELETE /api/runs/{id}`` runs after every other operation (and the
  stateful run), so the seeded runs are there for them.
* **Semantic 400s.** A body can match the schema and still be an experiment that cannot run:
  a spec whose layers do not fit the data, YAML text that is no spec, a validation split of
  0 examples, an example index past the data set's end. No JSON schema can say that; those
  operations answer 400 with the library's typed error (``InvalidSpec`` / ``DataError``,
  with ``problems`` for a spec). For them (``SEMANTIC_400``) ``positive_data_acceptance``
  also accepts 400, and the extra check ``semantic_400_is_a_typed_error`` holds such a 400 to
  being one of those errors, never a request-shape refusal (that is a 422).
* **413.** The body limit (256 KiB) is in bytes, which no JSON schema can state; it is
  documented on every operation, and both data checks count it as a refusal.
"""
from __future__ import annotations

import collections
import math
import re
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import Flaky

from layerlab.server.security import LOOPBACK_HOSTS
from layerlab.server.testing import LiveServer
from layerlab.store import Store

pytestmark = [pytest.mark.network, pytest.mark.slow]  # about 20 s of generated requests

TOKEN = "contract-test-token"
HEADERS = {"X-Layerlab": "1", "Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 30         # generated cases per operation, besides its examples and coverage cases
STATEFUL_SCENARIOS = 30   # stateful runs (each up to STATEFUL_STEPS calls)
STATEFUL_STEPS = 6
SEED = 20240610
REQUEST_TIMEOUT = 60      # s; the first POST /api/predict starts the prediction worker process
STREAM_TIMEOUT = 3        # s of an event stream that stays open (the queued run's)

# (method, path) of operations whose schema-valid requests may be semantically invalid (module doc).
SEMANTIC_400 = {
    ("POST", "/api/runs"), ("POST", "/api/predict"), ("POST", "/api/spec/parse"),
    ("GET", "/api/datasets/{name}/stats"), ("GET", "/api/datasets/{name}/images/{index}.png"),
    ("GET", "/api/runs/{run_id}/images/{index}.png"), ("GET", "/api/runs/{run_id}/activations"),
    ("GET", "/api/runs/{run_id}/boundary"),  # a run whose data set has no 2-D inputs
}
SEMANTIC_ERRORS = {"InvalidSpec", "DataError"}

TINY = {"name": "contract", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 256}}

# What the run found: cases per operation, and every failure by check and operation (the summary line).
CASES: collections.Counter = collections.Counter()
ANSWERED_2XX: collections.Counter = collections.Counter()
FAILURES: dict[tuple[str, str], set[str]] = collections.defaultdict(set)


def _config() -> schemathesis.Config:
    # schemathesis' defaults, and 413: the body limit is in bytes, which no JSON schema can state (a text of
    # 200,000 characters is valid, and over 256 KiB once escaped as JSON); it is documented on every operation.
    positive = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
    negative = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": HEADERS,
        "request-timeout": REQUEST_TIMEOUT,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"positive_data_acceptance": {"expected-statuses": positive},
                   "negative_data_rejection": {"expected-statuses": negative}},
        "operations": [
            # include-name: one filter (include-method and include-path would be two, OR-ed: 400 on every GET)
            *({"include-name": f"{method} {path}",
               "checks": {"positive_data_acceptance": {"expected-statuses": [*positive, "400"]}}}
              for method, path in sorted(SEMANTIC_400)),
            # The queued run's stream stays open (no worker takes it): read it for STREAM_TIMEOUT s, then check
            # the events that came (the run, its status event); every other run's stream ends by itself.
            {"include-name": "GET /api/runs/{run_id}/stream", "request-timeout": STREAM_TIMEOUT},
        ],
    })


@schemathesis.check
def semantic_400_is_a_typed_error(ctx, response, case):
    """A 400 to a schema-valid request is the library's typed error about the experiment (module doc)."""
    if response.status_code != 400 or case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if (case.method.upper(), case.path) not in SEMANTIC_400:
        return None
    body = response.json()
    assert isinstance(body, dict) and body.get("error") in SEMANTIC_ERRORS and body.get("detail"), (
        f"a schema-valid request got a 400 that is no typed error about the experiment: {body}")
    return None


def _seed(store: Store) -> dict[str, int]:
    """The runs the id-based routes find: one trained for real, and one in each other final-ish state."""
    from layerlab.train import train

    ids = {}
    train(TINY, store=store)
    ids["finished"] = store.list_runs(limit=1)[0]["id"]
    ids["stopped"] = store.create_run(TINY, name="stopped")
    store.set_status(ids["stopped"], "stopped")
    ids["interrupted"] = store.create_run(TINY, name="interrupted", status="running")
    store.set_status(ids["interrupted"], "interrupted")
    ids["diverged"] = store.create_run(TINY, name="diverged", status="running")
    now = time.time()
    store.add_metrics(ids["diverged"], [("cost", 1, 64, now, 2.3), ("cost", 2, 128, now, math.nan),
                                        ("test_accuracy", 2, 128, now, math.inf)])
    store.add_event(ids["diverged"], "divergence", {"step": 2, "value": "NaN"})
    store.set_status(ids["diverged"], "diverged", diagnosis="the cost became NaN at step 2")
    ids["failed"] = store.create_run(TINY, name="failed")
    store.set_status(ids["failed"], "failed", error="RuntimeError: out of patience")
    ids["queued"] = store.create_run(TINY, name="queued")  # stays queued (no workers): stop answers 200
    ids["plane"] = train({**TINY, "name": "plane", "data": {"dataset": "spiral"}, "model": [{"fc": {"units": 4}}, "tanh",
                                                                                     {"fc": {"units": 2}}]},
                         store=store).run_id  # a boundary and neuron maps for GET /api/runs/{id}/boundary
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("contract") / "runs.db")
    _seed(store)
    with LiveServer(store, token=TOKEN, workers=0, allowed_hosts=LOOPBACK_HOSTS) as live:
        # Start the prediction worker (a spawned process importing torch) before any timed request.
        httpx.post(live.url + "api/predict", json=TINY, headers=HEADERS, timeout=REQUEST_TIMEOUT).raise_for_status()
        yield live
    store.close()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "openapi.json", config=_config(), headers=HEADERS,
                                         timeout=REQUEST_TIMEOUT)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """schemathesis 4.32 names each operation's subtest through ``node._nodeid``, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")
CASE_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


def _call(case) -> None:
    CASES[case.operation.label] += 1
    try:
        response = case.call_and_validate(headers=HEADERS)  # given here too: ignored_auth knows the token is real
    except BaseException as exc:
        _record(case.operation.label, exc)
        raise
    ANSWERED_2XX[case.operation.label] += 200 <= response.status_code < 300


def _record(label: str, exc: BaseException) -> None:
    """Note the failures of one case (schemathesis' FailureGroup, a BaseExceptionGroup: one per failed check)."""
    if not (hasattr(exc, "exceptions") or isinstance(exc, Exception)):
        return  # Hypothesis' own control flow
    for failure in getattr(exc, "exceptions", None) or [exc]:
        title = getattr(failure, "title", type(failure).__name__)
        FAILURES[(title, label)].add(str(getattr(failure, "message", failure))[:200])


@schema.exclude(method="DELETE").parametrize()
@CASE_SETTINGS
def test_operation_keeps_the_contract(case):
    _call(case)


def test_stateful_links_keep_the_contract(api_schema):
    """Chains of calls along the inferred links: use_after_free and ensure_resource_availability apply here."""

    class Workflow(api_schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            CASES["stateful: " + case.operation.label] += 1
            try:  # as RecordingStateMachine does, with the headers: ignored_auth then knows the token is real
                case.validate_response(response, additional_checks=additional_checks, headers=HEADERS,
                                       transport_kwargs=kwargs or None, recorder=getattr(self, "recorder", None))
            except BaseException as exc:
                _record("stateful: " + case.operation.label, exc)
                raise

    try:
        Workflow.run(settings=settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS,
                                       deadline=None, derandomize=True, database=None,
                                       suppress_health_check=list(HealthCheck)))
    except Flaky:
        # The server's state changes from one scenario to the next (runs deleted, renamed, stopped), so a
        # scenario Hypothesis replays can draw differently. schemathesis' own engine counts that as no failure
        # either; a check that failed on the way was recorded (and test_summary reports it).
        if any(label.startswith("stateful: ") for _, label in FAILURES):
            raise


@schema.include(method="DELETE").parametrize()
@CASE_SETTINGS
def test_deleting_keeps_the_contract(case):
    """Last: it deletes the seeded runs the other operations read."""
    _call(case)


def test_summary(api_schema, capsys):
    """One line, as the CI log shows it: operations, cases, failures by check."""
    if not CASES:
        pytest.skip("the contract tests did not run in this session")
    everything = sum(1 for _ in api_schema.get_all_operations())
    operations = {label.removeprefix("stateful: ") for label in CASES}
    by_check = collections.Counter(title for title, _ in FAILURES)
    stateful = sum(n for label, n in CASES.items() if label.startswith("stateful: "))
    line = (f"api contract: {len(operations)} operations, {sum(CASES.values())} cases ({stateful} in stateful "
            f"chains, {sum(ANSWERED_2XX.values())} answered 2xx), {len(FAILURES)} unique failures" + (
                f" ({', '.join(f'{t}: {n}' for t, n in by_check.items())})" if by_check else ""))
    with capsys.disabled():  # in the log whether the test passes or not
        print("\n" + line)
        print("  2xx answers: " + ", ".join(f"{label} {n}" for label, n in sorted(ANSWERED_2XX.items())))
        for (title, label), messages in sorted(FAILURES.items()):
            print(f"  {title} - {label}: {sorted(messages)[0]}")
    assert len(operations) == everything, f"{line}; the schema has {everything} operations"
    assert not FAILURES, line


# ------------------------------------------------------------------------------ the docs page, offline


def test_docs_page_loads_only_local_assets(server):
    for page in ("docs", "redoc"):
        resp = httpx.get(server.url + page, headers=HEADERS, timeout=10)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        html = resp.text
        assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets, html
        for asset in assets:
            got = httpx.get(server.url + asset.lstrip("/"), headers=HEADERS, timeout=10)
            assert got.status_code == 200 and got.content, (asset, got.status_code)
        assert "/openapi.json" in html  # the schema of this server, from this server
