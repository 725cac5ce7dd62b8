"""The console script's top level."""

import subprocess
import sys

from colorjax.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "colorjax.cli", "--help"], capture_output=True, text=True, check=True)
    for name in SUBCOMMANDS:
        assert name in out.stdout


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: colorjax" in capsys.readouterr().out


def test_top_level_api_resolves_every_exported_name():
    import colorjax

    for name in colorjax.__all__:
        assert callable(getattr(colorjax, name)), name
    # the lazy names are the objects their modules define, not copies
    from colorjax.models import build_model

    assert colorjax.build_model is build_model


def test_console_restarts_once_with_huge_pages_for_malloc(monkeypatch):
    from colorjax import cli

    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda path, args, env: calls.append((path, args, env)))
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.setattr(cli.sys, "argv", ["/venv/bin/colorjax", "train", "--workdir", "runs/x"])
    monkeypatch.delenv(cli.NO_HUGE_PAGES, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.check=0")
    cli.restart_with_huge_pages()
    assert len(calls) == 1
    path, args, env = calls[0]
    assert path == sys.executable and args == [sys.executable, "-m", "colorjax.cli", "train", "--workdir", "runs/x"]
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.check=0:glibc.malloc.hugetlb=1"  # the user's tunables kept
    monkeypatch.setenv("GLIBC_TUNABLES", env["GLIBC_TUNABLES"])
    cli.restart_with_huge_pages()  # the restarted process: set already, so no second restart
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv(cli.NO_HUGE_PAGES, "1")
    cli.restart_with_huge_pages()  # opted out
    assert len(calls) == 1


def test_installed_command_runs_through_the_restart():
    code = "import sys; from colorjax.cli import console; sys.argv = ['colorjax', '--help']; console()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in __import__("os").environ.items() if k != "GLIBC_TUNABLES"})
    assert "usage: colorjax" in out.stdout and "train" in out.stdout
