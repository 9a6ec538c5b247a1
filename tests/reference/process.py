"""A reference service (`python -m reference.<name> serve`) as a real subprocess, for tests.

The common part of the harnesses (tests/reference/service.py: remote signing;
tests/reference/ministry_service.py: the Ministry's repository): start on a port (0: a free one,
read back from the log line `listening on <url>`), restart on the same port and data, stop
(SIGTERM, then SIGKILL after 5 s), wait for a crash, read the log. Self-contained (stdlib only).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (https?://\S+)")


class ReferenceProcessError(RuntimeError):
    """The service did not start, or a call to it failed."""


class ReferenceProcess:
    """Subclasses say which module runs (`module`), how it is called in messages (`what`), and
    what it gets in its environment (`secret_env`)."""

    module = ""
    what = "The reference service"
    error: type[ReferenceProcessError] = ReferenceProcessError

    def __init__(
        self, data_dir: Path | str | None, *, prefix: str, options: list[str], startup_timeout: float
    ):
        self._owns_data = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.options = options
        self.startup_timeout = startup_timeout
        self.url = ""
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def secret_env(self) -> dict[str, str]:
        """What the process gets through its environment (secrets: never on the command line)."""
        return {}

    def _start(self, *, port: int) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {
            **os.environ,
            **self.secret_env(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [sys.executable, "-m", self.module, "serve", "--data", str(self.data_dir)]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [*command, "--port", str(port), *self.options],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log())
            if found:
                self.url = found[1]
                self.port = urlsplit(self.url).port or 0
                return
            if self._process.poll() is not None:
                raise self.error(f"{self.what} exited ({self._process.returncode}):\n{self.log()}")
            time.sleep(0.02)
        self.stop(keep_data=True)
        raise self.error(f"{self.what} did not listen within {self.startup_timeout} s:\n{self.log()}")

    def restart(self) -> None:
        """Stop (if still running) and start again on the same data directory and port."""
        port = self.port
        self.stop(keep_data=True)
        self._start(port=port)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self, *, keep_data: bool = False) -> None:
        """End the process (SIGTERM, then SIGKILL after 5 s); remove the temp data unless kept."""
        self._terminate()
        if self._owns_data and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    def wait_exit(self, timeout: float = 10) -> int:
        """Wait for the process to end on its own (a crash fault); its exit status."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """What the current process has logged so far."""
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode("utf-8", "replace")
