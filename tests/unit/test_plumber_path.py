"""/plumber/<name>/<path>: which raw paths are refused (and why), and what goes upstream."""

from __future__ import annotations

import pytest

from gateway.api.plumber_path import path_problem, raw_path, upstream_path

REFUSED = [
    ("/plumber/cars/../mtcars/predict", "dot segment"),
    ("/plumber/cars/..%2fmtcars%2fpredict", "encoded slash"),
    ("/plumber/cars/..%2Fmtcars", "encoded slash"),
    ("/plumber/cars/%2e%2e/mtcars/predict", "dot segment"),
    ("/plumber/cars/%2E%2E/mtcars/predict", "dot segment"),
    ("/plumber/cars/%2e%2e%2fmtcars%2fpredict", "encoded slash"),
    ("/plumber/cars/.%2e/mtcars", "dot segment"),
    ("/plumber/cars/%252e%252e%252fmtcars", "encoded slash"),
    ("/plumber/cars/%252e%252e/mtcars", "dot segment"),
    ("/plumber/cars/%25252e%25252e/mtcars", "dot segment"),
    ("/plumber/cars/%2525252e", "nested"),
    ("/plumber/cars/..\\mtcars\\predict", "backslash"),
    ("/plumber/cars/..%5cmtcars%5cpredict", "backslash"),
    ("/plumber/cars/..%255cmtcars", "backslash"),
    ("/plumber/cars/..;/mtcars/predict", "';'"),
    ("/plumber/cars/hello%3b/x", "';'"),
    ("/plumber/cars//mtcars/predict", "empty segment"),
    ("/plumber/cars/hello//", "empty segment"),
    ("/plumber/cars/./hello", "dot segment"),
    ("/plumber/cars/hello/.", "dot segment"),
    ("/plumber/cars/hello/..", "dot segment"),
    ("/plumber/../mtcars/predict", "dot segment"),
    ("/plumber/cars/%00", "control character"),
    ("/plumber/cars/a%0d%0aSet-Cookie:x", "control character"),
]
ALLOWED = ["/plumber/cars/", "/plumber/cars/hello/world", "/plumber/cars/hello/big%20world",
           "/plumber/cars/hello/100%25", "/plumber/cars/hello/caf%C3%A9", "/plumber/cars/a.b/..c/d..",
           "/plumber/cars/hello/", "/plumber/cars/hello/a+b@c:d"]


@pytest.mark.parametrize(("path", "why"), REFUSED)
def test_a_path_that_could_climb_is_refused_with_its_reason(path: str, why: str) -> None:
    problem = path_problem(path)
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize("path", ALLOWED)
def test_ordinary_script_paths_pass(path: str) -> None:
    assert path_problem(path) is None


def test_percent_escapes_that_are_not_utf8_raise() -> None:
    with pytest.raises(UnicodeDecodeError):
        path_problem("/plumber/cars/%ff")


@pytest.mark.parametrize(("environ", "expected"), [
    ({"RAW_URI": "/plumber/cars/hello/big%20world?greeting=hi", "PATH_INFO": "/x"}, "/plumber/cars/hello/big%20world"),
    ({"REQUEST_URI": "/plumber/cars/x#frag"}, "/plumber/cars/x"),
    ({"RAW_URI": "http://example.org/plumber/cars/x?y"}, "/plumber/cars/x"),
    ({"PATH_INFO": "/plumber/cars/a b"}, "/plumber/cars/a%20b"),
])
def test_the_raw_path_is_the_clients_own(environ: dict[str, object], expected: str) -> None:
    assert raw_path(environ) == expected


@pytest.mark.parametrize(("raw", "upstream"), [
    ("/plumber/cars/", ""),
    ("/plumber/cars/hello/big%20world", "hello/big%20world"),
    ("/plumber/%63ars/hello/a%2Bb", "hello/a%2Bb"),  # the client's spelling, not re-decoded
    ("/plumber/cars/caf\xc3\xa9", "caf%C3%A9"),  # raw UTF-8 bytes (latin-1 text in WSGI) escaped
    ("/plumber/cars/a b", "a%20b"),
])
def test_the_upstream_path_is_the_clients_spelling_after_the_name(raw: str, upstream: str) -> None:
    assert upstream_path({"RAW_URI": raw}) == upstream
