"""The `tlm-hooks` entry point: version, usage, and a missing extra named in one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import tlm_hooks
from tlm_hooks.cli import main


def test_version_flag_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tlm-hooks {tlm_hooks.__version__}"


def test_unknown_command_lists_the_commands(capsys):
    assert main(["srve"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'srve'" in err and "serve" in err


def test_serve_without_the_server_extra_says_which_extra_to_install():
    # starlette is made unimportable in a child interpreter, as on a machine without the [server] extra
    script = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("starlette", "uvicorn"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, Block())
        from tlm_hooks.cli import main
        sys.exit(main(["serve", "--help"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "pip install 'tlm-hooks[server]'" in lines[0]
