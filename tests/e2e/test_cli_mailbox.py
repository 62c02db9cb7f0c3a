"""`bot mailbox ...` as an admin runs it: the real command, a real SQLite file, real mail servers."""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli import main
from tests.support.dovecot import Dovecot, require_dovecot
from tests.support.smtp_login import REFUSAL, SmtpLogin
from tests.support.tls import Certificate, self_signed

USER = "pat@seller.example"
PASSWORD = "correct horse battery staple"


class Bot:
    """Runs `python -m bot mailbox` in its own folder, on its own SQLite file, trusting the test certificate."""

    def __init__(self, folder: Path, cert: Certificate) -> None:
        self.folder = folder
        self.cert = cert
        self.database = folder / "bot.db"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "SECRET_KEY": Fernet.generate_key().decode(),
            "SSL_CERT_FILE": str(cert.cert),
        }

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "mailbox", *args],
            cwd=self.folder,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def rows(self) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as db:
            return db.execute("SELECT * FROM mailbox").fetchall()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def bot(tmp_path: Path, cert: Certificate) -> Bot:
    return Bot(tmp_path, cert)


@pytest.fixture
def smtp_server(cert: Certificate) -> Iterator[SmtpLogin]:
    with SmtpLogin(cert, users={USER: PASSWORD}) as server:
        yield server


def smtp(server: SmtpLogin) -> str:
    return f"smtp://pat%40seller.example@127.0.0.1:{server.port}?starttls=true&timeout=10"


def test_an_admin_sets_lists_and_removes_a_mailbox_with_the_password_on_stdin(bot: Bot, smtp_server: SmtpLogin):
    require_dovecot()
    with Dovecot(users={USER: PASSWORD}, cert=bot.cert) as imap:
        done = bot(
            "set",
            "U123",
            "--smtp",
            smtp(smtp_server),
            "--imap",
            f"imaps://127.0.0.1:{imap.tls_port}",
            "--provider",
            "google",
            "--per-day",
            "500",
            stdin=PASSWORD + "\n",
        )
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert done.stdout == "U123: mailbox pat@seller.example set (logged in), provider google\n"
        assert smtp_server.logins == [USER] and imap.logged(f"Login: user=<{USER}>")

    listed = bot("list")
    assert listed.returncode == 0
    header, line = listed.stdout.splitlines()
    assert header.split() == [
        "rep",
        "provider",
        "user",
        "smtp",
        "imap",
        "per",
        "minute",
        "per",
        "day",
        "connections",
        "state",
        "last",
        "error",
    ]
    assert line.split() == [
        "U123",
        "google",
        USER,
        f"127.0.0.1:{smtp_server.port}",
        f"127.0.0.1:{imap.tls_port}",
        "60",
        "(preset)",
        "500",
        "3",
        "(preset)",
        "connected",
    ]
    [row] = bot.rows()
    assert not [value for value in row if PASSWORD in str(value)]

    removed = bot("remove", "U123")
    assert (removed.returncode, removed.stdout) == (0, "U123: mailbox removed; the rep's emails go through the relay\n")
    assert bot("list").stdout.startswith("no mailboxes yet")
    assert bot.rows() == []


def test_a_refused_login_shows_the_servers_words_and_stores_nothing(bot: Bot, smtp_server: SmtpLogin):
    done = bot("set", "U123", "--smtp", smtp(smtp_server), stdin="wrong guess\n")

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"bot: SMTP login to 127.0.0.1:{smtp_server.port} refused: {REFUSAL}; nothing was stored\n"
    assert bot("list").stdout.startswith("no mailboxes yet")


@pytest.fixture
def in_process(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> Bot:
    """`bot.cli.main` run in this process, with the same settings (for caplog, and to be quick)."""
    for name in ("DATABASE_URL", "SECRET_KEY", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, bot.env[name])
    monkeypatch.chdir(bot.folder)
    return bot


def test_without_a_secret_key_the_command_refuses_before_asking_for_a_password(
    in_process: Bot, smtp_server: SmtpLogin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))

    assert main(["mailbox", "set", "U123", "--smtp", smtp(smtp_server)]) == 1

    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("bot: SECRET_KEY is not set, and mailbox credentials are only stored encrypted with it")
    assert sys.stdin.read() == PASSWORD + "\n"  # never asked for
    assert smtp_server.logins == []


def test_remove_of_a_rep_without_a_mailbox_is_one_line(in_process: Bot, capsys: pytest.CaptureFixture[str]):
    assert main(["mailbox", "remove", "U404"]) == 1
    assert capsys.readouterr().err == "bot: U404 has no mailbox\n"


def test_the_password_never_shows_in_output_or_logs(
    in_process: Bot,
    smtp_server: SmtpLogin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)

    for password in (PASSWORD, "wrong guess"):
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        main(["mailbox", "set", "U123", "--smtp", smtp(smtp_server), "--per-minute", "10"])
    main(["mailbox", "list"])
    # A password written into the URL (the admin's choice: a process list shows it).
    main(
        [
            "mailbox",
            "set",
            "U123",
            "--no-check",
            "--smtp",
            smtp(smtp_server).replace("%40seller.example@", "%40seller.example:s%20e%20c@"),
        ]
    )

    out, err = capsys.readouterr()
    assert "refused" in err and "set (logged in)" in out and "set (not checked)" in out
    for secret in (PASSWORD, "wrong guess", "s e c", "s%20e%20c"):
        assert secret not in out + err + caplog.text
