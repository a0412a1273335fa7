"""Weights documents too large or too deep for the TOML parser are refused before parsing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import grpc
import pytest

from reviewrank.service.app.toml_limits import MAX_BYTES, toml_shape_problem
from reviewrank.v1 import admin_pb2, admin_pb2_grpc
from tests.app import test_weights_triggers as triggers
from tests.conftest import TEST_WEIGHTS, Client
from tests.helpers import field_violations
from tests.process import ServerProcess
from tests.weights_helpers import WEIGHTS_A

served = triggers.served  # the fixture: a server process with WEIGHTS_A as its file
wait_for = triggers.wait_for
SHIPPED_WEIGHTS = Path(__file__).parents[2] / "data" / "weights.toml"

# Arrays nested 500 deep: tomllib recursed until RecursionError (INTERNAL).
NESTED = "x = " + "[" * 500 + "]" * 500 + "\n"
# A dotted key of 40 KB: tomllib spent about 9 s of CPU and 1.3 GB on it.
DOTTED = "a" + ".a" * 20_000 + " = 1\n"
# Answers within this many seconds (a hang detector: the dotted key took 9 s).
ANSWER_SECONDS = 5.0


def refusal(call: grpc.UnaryUnaryMultiCallable, request: object) -> tuple[object, str]:
    """The status code and the document's field violation of a refused call."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=ANSWER_SECONDS)
    return info.value.code(), field_violations(info.value).get("toml", "")


@pytest.mark.parametrize(
    ("toml", "problem"),
    [(NESTED, "nested at most 16 deep"), (DOTTED, "at most 16 dots")],
    ids=["nested-arrays", "dotted-key"],
)
def test_an_inline_reload_too_deep_to_parse_is_refused_naming_the_problem(
    client: Client, toml: str, problem: str
) -> None:
    code, description = refusal(
        client.admin.ReloadWeights, admin_pb2.ReloadWeightsRequest(toml=toml)
    )

    assert grpc.StatusCode.INVALID_ARGUMENT == code
    assert problem in description
    assert 1 == client.admin.GetWeights(admin_pb2.GetWeightsRequest()).version


@pytest.mark.parametrize("toml", [NESTED, DOTTED], ids=["nested-arrays", "dotted-key"])
def test_a_preview_too_deep_to_parse_is_refused(client: Client, toml: str) -> None:
    code, description = refusal(
        client.admin.PreviewWeights, admin_pb2.PreviewWeightsRequest(toml=toml, categories=[""])
    )

    assert (grpc.StatusCode.INVALID_ARGUMENT, True) == (code, "line 1" in description)


def test_a_weights_document_over_the_size_limit_is_refused(client: Client) -> None:
    padded = TEST_WEIGHTS + "# padding\n" * (MAX_BYTES // 10)

    code, description = refusal(
        client.admin.ReloadWeights, admin_pb2.ReloadWeightsRequest(toml=padded)
    )

    assert grpc.StatusCode.INVALID_ARGUMENT == code
    assert f"must be at most {MAX_BYTES} bytes" in description


def test_a_weights_file_too_deep_to_parse_is_refused_on_sighup_and_logged(
    served: tuple[ServerProcess, Path, admin_pb2_grpc.AdminServiceStub],
) -> None:
    server, weights, admin = served
    weights.write_text(WEIGHTS_A + NESTED)

    os.kill(server.proc.pid, signal.SIGHUP)

    refused = "weights reload refused: the weights in force stay"
    assert wait_for(lambda: refused in server.events(), ANSWER_SECONDS)
    [record] = [r for r in server.lines if r.get("event") == refused]
    [problem] = record["problems"]  # type: ignore[misc]
    line = WEIGHTS_A.count("\n") + 1
    assert problem.startswith(f"weights_file: line {line}: arrays and inline tables")
    assert 1 == admin.GetWeights(admin_pb2.GetWeightsRequest()).version
    assert None is server.proc.poll()


@pytest.mark.parametrize(
    "text",
    [
        TEST_WEIGHTS,
        SHIPPED_WEIGHTS.read_text(),
        # Brackets and dots inside strings and comments are no nesting and no key.
        'a = "' + "[." * 100 + "\"\nb = '" + "{." * 100 + "'\n# " + "[." * 100 + "\n",
        'a = """\n' + "[." * 100 + "\n\"\"\"\nb = '''" + "{." * 100 + "'''\n",
        'a = "\\"[[[[[[[[[[[[[[[[[[[["\n',
    ],
    ids=["test-weights", "shipped-weights", "strings-and-comments", "multi-line", "escaped"],
)
def test_real_documents_and_brackets_in_strings_pass_the_shape_check(text: str) -> None:
    assert None is toml_shape_problem(text)


def test_a_line_over_the_length_limit_is_refused() -> None:
    assert "line 2: lines may be at most" in str(
        toml_shape_problem('a = 1\nb = "' + "x" * 5000 + '"\n')
    )
