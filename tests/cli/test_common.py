"""The tools' shared error and logging handling."""

from __future__ import annotations

import logging
import subprocess
import sys

from synthdata.tools._common import run_cli, setup_logging


def test_expected_errors_become_one_line(capsys):
    def body() -> int:
        raise ValueError("--in: no shards in /x; make some with synth-generate")

    assert run_cli("synth-x", body, (ValueError,)) == 2
    assert capsys.readouterr().err == "synth-x: error: --in: no shards in /x; make some with synth-generate\n"


def test_a_closed_pipe_ends_quietly():
    # `synth-... --json | head -1`: the reader closes early; no traceback, the SIGPIPE-style exit status.
    code = (
        "import sys\n"
        "from synthdata.tools._common import run_cli\n"
        "def body():\n"
        "    for i in range(200000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "sys.exit(run_cli('synth-x', body, (OSError,)))\n"
    )
    proc = subprocess.run(f"{sys.executable} -c \"{code}\" | head -1", shell=True, capture_output=True, text=True,
                          executable="/bin/bash")
    assert proc.stdout == "line 0\n"
    assert proc.stderr == ""


def test_quiet_and_verbose_set_the_level_on_every_call():
    root = logging.getLogger()
    before = root.level
    try:
        setup_logging(quiet=True)
        assert root.level == logging.WARNING
        setup_logging(verbose=True)
        assert root.level == logging.DEBUG
        setup_logging()
        assert root.level == logging.INFO
    finally:
        root.setLevel(before)
