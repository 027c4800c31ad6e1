"""What the command line says: the roles in the help, a port in use."""

from __future__ import annotations

import re
import socket

import pytest
from click.testing import CliRunner

from assess.cli import _check_port, cli
from assess.errors import AssessError


def test_the_help_lists_each_role_once_and_every_command_under_one():
    out = CliRunner().invoke(cli, ["-h"]).output
    roles = re.findall(r"^\s+(\w+):\s+(.+)$", out.split("Example")[0], flags=re.M)
    names = [role for role, _ in roles]
    assert sorted(names) == sorted(set(names)) and {"Coordinator", "Rater", "Statistician"} <= set(names)
    listed = [c.strip() for _, cmds in roles for c in cmds.split(",")]
    assert len(listed) == len(set(listed))
    assert {"status", "verify", "rate", "score", "randomize"} <= set(listed)


def test_a_port_in_use_is_refused_in_one_line_naming_a_free_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(AssessError) as err:
            _check_port("127.0.0.1", port)
    message = str(err.value)
    assert "\n" not in message
    free = int(re.search(r"e\.g\. --port (\d+)$", message).group(1))
    assert free > port
    with socket.socket() as probe:  # the port it names is one that can be listened on
        probe.bind(("127.0.0.1", free))


def test_rate_on_a_port_in_use_exits_with_one_line_suggesting_another_port(make_rater_set,
                                                                           tmp_path):
    rater_dir, _, _ = make_rater_set()
    db = tmp_path / "ratings.sqlite"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["rate", str(rater_dir), "--db", str(db),
                                          "--host", "127.0.0.1", "--port", str(port)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"Error: port {port} on 127.0.0.1 is in use")
    assert re.search(r"give another port, e\.g\. --port \d+$", errors[0])
    assert not db.exists()  # nothing was started or created
