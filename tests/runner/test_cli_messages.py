"""What `genbench` tells its user: --help, failed cells on resume, the progress line, Dask."""
from __future__ import annotations

import argparse
import json
import re

import pytest
from conftest import TINY_TOML

from bench.cli import DESCRIPTION, build_parser, main
from bench.run.dask_executor import CONNECT_TIMEOUT_S
from bench.run.progress import cell_line, cell_setting

ONE_FAMILY = TINY_TOML.replace("[families.gan]\nepochs = 1\nmax_steps = 2\nlatent_dim = 4\n", "")


def _subparsers(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{path} {name}")


def test_every_option_of_every_subcommand_has_help():
    parser = build_parser()
    missing = [f"{path} {action.option_strings or action.dest}"
               for path, sub in _subparsers(parser, "genbench") for action in sub._actions
               if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
               and not (action.help or "").strip()]
    assert missing == []
    commands = [choice for action in parser._actions
                if isinstance(action, argparse._SubParsersAction)
                for choice in action._choices_actions]
    assert commands and all((choice.help or "").strip() for choice in commands)


def test_help_says_what_genbench_does_in_one_sentence():
    assert DESCRIPTION.count(". ") == 0 and DESCRIPTION.endswith(".")
    assert all(word in DESCRIPTION for word in ("quality", "size", "speed", "generative"))
    assert "argparse" not in build_parser().format_help()
    run_help = next(sub for path, sub in _subparsers(build_parser(), "genbench")
                    if path == "genbench run").format_help()
    # What "the same sweep" is, and what --force does over another one.
    assert "`name`" in run_help and "refused" in run_help and "130" in run_help
    validate = next(sub for path, sub in _subparsers(build_parser(), "genbench")
                    if path == "genbench validate").format_help()
    assert "--no-data" in validate and "skip loading the dataset" in " ".join(validate.split())


def _record(**result) -> dict:
    base = {"family": "gan", "method": "quant", "seed": 0, "status": "ok", "error": ""}
    return {"cell_id": "5edfe0d85bbc", "seconds": 2.1, "result": {**base, **result}}


@pytest.mark.parametrize("result,expected", [
    ({"bits": 4, "granularity": "channel", "rounding": "mse"}, "quant 4-bit, channel, mse"),
    ({"method": "baseline"}, "baseline fp32"),
    ({"method": "stall", "settings_json": json.dumps({"seconds": 5})}, "stall seconds=5"),
    ({"method": "prune_threshold+quant", "pipeline_json": json.dumps(
        [{"method": "prune_threshold", "threshold": 0.02},
         {"method": "quant", "bits": 8, "granularity": "tensor"}])},
     "prune_threshold thr 0.02 -> quant 8-bit, tensor"),
])
def test_the_progress_line_names_the_setting(result, expected):
    assert cell_setting(_record(**result)["result"]) == expected
    line = cell_line(_record(**result), measured=2, unstable=1)
    assert line.split()[:2] == ["ok", "gan"] and f" {expected} " in line
    assert line.endswith("seed=0    2.1s 5edfe0d85bbc [1 of 2 latency rows unstable]")


def test_a_failed_cell_line_carries_its_reason():
    line = cell_line(_record(status="failed", error="RuntimeError: boom", bits=8))
    assert line.startswith("failed gan   quant 8-bit ") and line.endswith(" RuntimeError: boom")


def test_resume_says_how_many_cells_failed_and_how_to_retry(tmp_path, monkeypatch, capsys):
    from compression import api
    from compression.quantization.ptq import QuantConfig

    config = tmp_path / "one.toml"
    config.write_text(ONE_FAMILY)
    argv = ["run", "--config", str(config), "--out", str(tmp_path / "out"), "--quiet"]

    def boom(cm, config, ctx):
        raise RuntimeError("quantizer exploded")

    with monkeypatch.context() as patch:
        patch.setitem(api._BY_CONFIG, QuantConfig, api.MethodSpec(QuantConfig, boom))
        assert main(argv) == 0  # failed cells are rows, not an error (exit code policy)
    first = capsys.readouterr().out
    assert "3 run (2 ok, 1 failed)" in first
    assert first.rstrip().endswith("; 1 failed; `--rerun-failed` retries them")
    assert main(argv) == 0  # the resume: every cell "done", one of them failed
    again = capsys.readouterr().out
    assert "3 cells, 3 already done, 0 run (0 ok, 0 failed)" in again
    assert again.rstrip().endswith("; 1 failed; `--rerun-failed` retries them")
    assert main([*argv, "--rerun-failed"]) == 0  # the quantizer works again
    fixed = capsys.readouterr().out
    assert "3 cells, 2 already done, 1 run (1 ok, 0 failed)" in fixed and "failed;" not in fixed


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "not-an-address"])
def test_an_unreachable_scheduler_is_one_line_exit_2_and_no_directory(tmp_path, capsys,
                                                                      address):
    pytest.importorskip("distributed")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    out = tmp_path / "out"
    code = main(["run", "--config", str(config), "--out", str(out), "--executor", "dask",
                 "--scheduler", address])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"genbench: error: --scheduler {address}: cannot reach a Dask")
    assert not out.exists()
    # Not hanging for distributed's default 30 s of retries: the short connect timeout was the
    # one used (said in the message; no wall-clock assertion, which a loaded machine breaks).
    assert f"waited at most {CONNECT_TIMEOUT_S:g} s" in err and CONNECT_TIMEOUT_S <= 10


@pytest.mark.slow  # starts a worker process
def test_a_local_dask_cluster_says_where_its_dashboard_is():
    pytest.importorskip("distributed")
    import importlib.util

    from bench.run.dask_executor import _local_cluster

    lines: list[str] = []
    with _local_cluster(1, lines.append) as client:
        link = client.dashboard_link
    (line,) = lines
    if importlib.util.find_spec("bokeh") is None:
        assert line.endswith("no dashboard (pip install bokeh, or genbench's [dist] extra, "
                             "for one)")
    else:
        assert re.fullmatch(r"dask: local cluster of 1 worker process\(es\); dashboard "
                            r"http://[\w.]+:\d+/status", line) and link in line
