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
