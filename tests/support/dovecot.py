"""A real IMAP server for tests: Dovecot with a config of its own, on a free loopback port.

    with Dovecot(users={"pat@seller.example": "s3cret"}, cert=cert) as imap:
        imap.port, imap.tls_port, imap.deliver("pat@seller.example", raw_bytes)

Nothing of the machine's own Dovecot is used: its folders, log, users (a passwd-file
with plain passwords) and mail (Maildir) all live in a folder of its own, removed
at the end. Run as root it drops to the `dovecot`/`dovenull` users the package
made (which is why that folder is not under pytest's private tmp_path); as anyone
else it runs as that user. Tests skip with the reason when Dovecot is not installed
(`apt-get install -y dovecot-imapd`).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.tls import Certificate

DOVECOT = Path("/usr/sbin/dovecot")
REFUSAL = "[AUTHENTICATIONFAILED] Authentication failed."
START_TIMEOUT = 20.0


started = 0  # Dovecot servers started in this test run (CI fails a run with none: tests/conftest.py)


def require_dovecot() -> None:
    """Skip the calling test, with the reason, when there is no Dovecot to run."""
    if not DOVECOT.exists():
        pytest.skip(f"{DOVECOT} is missing: `apt-get install -y dovecot-imapd` to run the IMAP tests")


class Dovecot:
    def __init__(
        self,
        users: dict[str, str],
        *,
        cert: Certificate | None = None,
        introspection_url: str | None = None,
        storage: str = "maildir",
    ) -> None:
        self.folder = Path("/nonexistent")
        self.users = users
        # How Dovecot keeps the mail: "maildir" (a file a message, which `deliver` writes), or
        # "sdbox", its own indexed storage: EXAMINE then costs the same however full the
        # folder, as on large servers (Maildir rescans a folder that changed in the last seconds).
        self.storage = storage
        # Set: logins are XOAUTH2 / OAUTHBEARER only, each token checked at this RFC 7662 endpoint
        # (Dovecot's oauth2 passdb); `users` then only names the mailboxes to make.
        self.introspection_url = introspection_url
        self.cert = cert
        self.port = free_port()
        self.tls_port = free_port() if cert else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logged(self, text: str, timeout: float = 10.0) -> bool:
        """Whether the log says `text`, waiting for it (bounded): Dovecot's log process
        writes a line a moment after what it tells of."""
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def maildir(self, user: str) -> Path:
        return self.folder / "home" / user / "Maildir"

    def deliver(self, user: str, message: bytes) -> None:
        """Put a message in the user's INBOX, as a delivery agent would (Maildir's new/)."""
        assert self.storage == "maildir", "deliver writes Maildir files; APPEND with an IMAP client instead"
        new = self.maildir(user) / "new"
        new.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.test.{socket.gethostname()}"
        (new / name).write_bytes(message)
        self._own(self.folder / "home")

    def __enter__(self) -> Dovecot:
        require_dovecot()
        self.folder = Path(tempfile.mkdtemp(prefix="dovecot-"))
        (self.folder / "users").write_text(
            "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in self.users.items())
        )
        for user in self.users:
            (self.maildir(user) if self.storage == "maildir" else self.folder / "home" / user).mkdir(
                parents=True, exist_ok=True
            )
        if self.introspection_url:
            (self.folder / "oauth2.conf.ext").write_text(
                f"introspection_mode = post\nintrospection_url = {self.introspection_url}\n"
                "force_introspection = yes\nusername_attribute = email\n"
                "active_attribute = active\nactive_value = true\n"
            )
        (self.folder / "dovecot.conf").write_text(self._config())
        self._own(self.folder)
        self.folder.chmod(0o755)
        self._process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.folder / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_until_listening()
        global started
        started += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _config(self) -> str:
        me = pwd.getpwuid(os.getuid()).pw_name
        root = os.getuid() == 0
        internal, login = ("dovecot", "dovenull") if root else (me, me)
        owner = pwd.getpwnam(internal)
        tls = f"ssl = yes\nssl_cert = <{self.cert.cert}\nssl_key = <{self.cert.key}\n" if self.cert else "ssl = no\n"
        imaps = (
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.tls_port}\n  }}\n"
            if self.cert
            else ("  inet_listener imaps {\n    port = 0\n  }\n")
        )
        return f"""\
base_dir = {self.folder}/run
state_dir = {self.folder}/state
log_path = {self.folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(owner.pw_gid).gr_name}
default_login_user = {login}
{tls}disable_plaintext_auth = no
{self._passdb()}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={self.folder}/home/%u
}}
mail_location = {"maildir:~/Maildir" if self.storage == "maildir" else f"{self.storage}:~/mail"}
first_valid_uid = {owner.pw_uid}
first_valid_gid = {owner.pw_gid}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
{imaps}}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

    def _passdb(self) -> str:
        if self.introspection_url:
            return f"""auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.folder}/oauth2.conf.ext
}}"""
        return f"""auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.folder}/users
}}"""

    def _own(self, path: Path) -> None:
        """As root, the mail belongs to the user Dovecot reads it as."""
        if os.getuid() != 0:
            return
        owner = pwd.getpwnam("dovecot")
        for folder, _, files in os.walk(path):
            shutil.chown(folder, owner.pw_uid, owner.pw_gid)
            for name in files:
                shutil.chown(os.path.join(folder, name), owner.pw_uid, owner.pw_gid)

    def _wait_until_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited: {self._process.stderr.read().decode(errors='replace') if self._process.stderr else ''} {self.log}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)  # polling a process that starts up, not waiting for the clock
        raise RuntimeError(f"dovecot did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT} s: {self.log}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
