"""A hostile or broken config file is one short ``ConfigError`` naming the file, fast; and
neither the loader nor ``lifeline check-config`` ever shows a URL's credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.cli import main
from lifeline.config import load_config
from lifeline.config_schema import MAX_SHOWN, ConfigError
from lifeline.config_yaml import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES

pytestmark = pytest.mark.timeout(10)

SECRET = "s3cret-Pa55"

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
upbit:
  rest:
    read_timeout: *i
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- what a ConfigError shows ------------------------------------------------------------


@pytest.mark.timeout(5)
def test_a_billion_laughs_document_is_refused_before_it_expands(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, BILLION_LAUGHS))
    assert f"more than {MAX_ALIAS_NODES} nodes" in str(caught.value)
    assert caught.value.file == str(tmp_path / "config.yaml")


def test_an_alias_to_the_node_that_contains_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recursive") as caught:
        load_config(write(tmp_path, "upbit:\n  websocket:\n    subscriptions: &s [*s]\n"))
    assert caught.value.path == "upbit.websocket.subscriptions[0]"


def test_a_few_aliases_and_a_merge_key_still_work(tmp_path: Path) -> None:
    text = (
        "timeouts: &t {connect_timeout: 2.0, read_timeout: 4.0}\n"
        "upbit:\n  rest:\n    <<: *t\n    read_timeout: 6.0\n"
    )
    # ``timeouts`` is not a key of the file: the aliases work, the schema still refuses it.
    with pytest.raises(ConfigError, match="unknown key") as caught:
        load_config(write(tmp_path, text))
    assert caught.value.path == "timeouts"
    text = "upbit:\n  rest: &r {connect_timeout: 2.0}\n  websocket: {connect_timeout: 2.0}\n"
    assert load_config(write(tmp_path, text)).upbit.rest.connect_timeout == 2.0


def test_a_wrong_typed_huge_value_is_shown_short(tmp_path: Path) -> None:
    huge = "[" + ", ".join(["[1, 2, 3, 4, 5, 6, 7, 8]"] * 2000) + "]"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"upbit:\n  rest:\n    read_timeout: {huge}\n"))
    assert caught.value.path == "upbit.rest.read_timeout"
    shown = str(caught.value).split("(got ", 1)[1]
    assert len(shown) <= MAX_SHOWN + 1
    assert len(str(caught.value)) < 400


def test_a_huge_wrong_string_is_shown_short(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"upbit:\n  rest:\n    read_timeout: {'x' * 500_000}\n"))
    assert caught.value.path == "upbit.rest.read_timeout"
    assert len(str(caught.value)) < 400


def test_a_url_refused_in_the_file_is_named_without_its_credentials(tmp_path: Path) -> None:
    text = f"upbit:\n  websocket:\n    url: https://alice:{SECRET}@example.com/ws\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.path == "upbit.websocket.url"
    assert SECRET not in str(caught.value)
    assert "https://***@example.com/ws" in str(caught.value)


# --- the file itself --------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: larger than the {MAX_FILE_BYTES}-byte (1 MiB) limit for a config file"
    )


def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "simulator:\n  host: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 0xe9 at offset 22)"


def test_a_missing_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: cannot read the file: No such file or directory"


def test_invalid_yaml_is_one_line_naming_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "upbit:\n  rest: {\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: not valid YAML: line ")
    assert "\n" not in text


def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_config(write(tmp_path, f"upbit:\n  websocket:\n    subscriptions: {deep}\n"))


@pytest.mark.parametrize(
    ("text", "path", "lines"),
    [
        ("upbit: {}\nsimulator: {}\nupbit: {}\n", "upbit", "lines 1 and 3"),
        ("upbit:\n  rest:\n    read_timeout: 1\n    read_timeout: 9\n",
         "upbit.rest.read_timeout", "lines 3 and 4"),
        ("simulator:\n  seed: 1\n  'seed': 2\n", "simulator.seed", "lines 2 and 3"),
        ("upbit:\n  websocket:\n    subscriptions:\n      - {type: trade, type: ticker}\n",
         "upbit.websocket.subscriptions[0].type", "lines 4 and 4"),
    ],
)
def test_a_duplicate_key_at_any_level_is_refused_naming_its_key_path(
    tmp_path: Path, text: str, path: str, lines: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.path == path
    assert f"duplicate key ({lines})" in str(caught.value)


# --- lifeline check-config --------------------------------------------------------------


def test_check_config_prints_the_config_without_url_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, (
        "upbit:\n"
        f"  rest:\n    base_url: https://alice:{SECRET}@rest.example.com/v1\n"
        f"  websocket:\n    url: wss://bob:{SECRET}@ws.example.com/websocket/v1\n"
    ))
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: ok\n")
    assert "base_url='https://***@rest.example.com/v1'" in out
    assert "url='wss://***@ws.example.com/websocket/v1'" in out
    assert SECRET not in out and "alice" not in out and "bob" not in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"simulator:\n  host: caf\xe9\n", "not UTF-8 text"),
        (None, "cannot read the file"),
        (BILLION_LAUGHS.encode(), "nodes (a YAML alias bomb?)"),
        (b"upbit: {}\nupbit: {}\n", "upbit: duplicate key"),
        (b"simulator:\n  seed: " + b"9" * 5000 + b"\n", "not valid YAML"),  # int too long
    ],
)
def test_check_config_on_a_bad_file_exits_1_with_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, says: str
) -> None:
    path = write(tmp_path, content) if content is not None else tmp_path / "missing.yaml"
    assert main(["check-config", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2, captured.err  # the one error, then the count
    assert lines[0].startswith(f"{path}: ")
    assert says in lines[0]
    assert lines[1] == f"{path}: 1 error"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "-1.0"])
def test_check_config_refuses_an_impossible_read_timeout_naming_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    # RestConfig once took .inf, check-config said ok, and every call then failed with
    # OverflowError.
    path = write(tmp_path, f"upbit:\n  rest:\n    read_timeout: {value}\n")
    assert main(["check-config", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    first = captured.err.splitlines()[0]
    assert first.startswith(f"{path}: upbit.rest.read_timeout")
    assert "OverflowError" not in captured.err
