"""Dovecot with its own config in a temp folder: IMAP (STARTTLS), IMAPS, POP3 (STLS), POP3S, IDLE.

Started as root, it runs "rootless" as the ``dovecot`` account; mail lives in Maildirs that the test kit
can fill directly (``deliver``) — Dovecot sees new files at once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.pki import Pki
from tests.servers.ports import free_port, wait_for_port
from tests.servers.requirements import require

RUN_AS = "dovecot"
_counter = itertools.count()

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {user}
default_login_user = {user}
first_valid_uid = 1
first_valid_gid = 1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = <{dh}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
auth_failure_delay = 0
auth_master_user_separator = *
auth_cache_size = 0
mail_location = maildir:~/Maildir
mail_fsync = never
pop3_no_flag_updates = yes
pop3_uidl_format = %08Xu%08Xv
protocol imap {{
  mail_max_userip_connections = 200
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No growing login penalty per IP (2, 4, 8, 15 s after failed logins with new passwords or tokens): the
  # tests fail logins on purpose, one after another, all from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/masters
  master = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={dir}/mail/%n
}}
"""


@dataclass
class Dovecot:
    folder: Path
    pki: Pki
    imap_port: int = field(default_factory=free_port)
    imaps_port: int = field(default_factory=free_port)
    pop3_port: int = field(default_factory=free_port)
    pop3s_port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)
    # Master users log in to any mailbox as ``mailbox*master`` with their own password (shared mailboxes).
    masters: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _mtimes: dict[str, int] = field(default_factory=dict)
    # SASL XOAUTH2 / OAUTHBEARER logins, checked by asking the kit's OAuth server (tests/servers/oauthserver.py)
    oauth_introspection_url: str | None = None

    @property
    def config_path(self) -> Path:
        return self.folder / "dovecot.conf"

    def start(self) -> None:
        require("dovecot")
        require("openssl")
        self.folder.mkdir(parents=True, exist_ok=True)
        # Dovecot's unprivileged processes must reach the folder (mkdtemp makes it 0700).
        for parent in (self.folder, *self.folder.parents):
            if str(parent) in ("/", "/tmp"):
                break
            parent.chmod(parent.stat().st_mode | 0o755)
        (self.folder / "mail").mkdir(exist_ok=True)
        self._chown(self.folder / "mail")
        dh = self.folder / "dh.pem"
        subprocess.run(["openssl", "dhparam", "-dsaparam", "-out", str(dh), "2048"], check=True, capture_output=True)
        for name in ("users", "masters"):
            (self.folder / name).write_text("")
            (self.folder / name).chmod(0o644)
        self.config_path.write_text(
            CONFIG.format(
                dir=self.folder,
                user=RUN_AS,
                cert=self.pki.cert_pem,
                key=self.pki.key_pem,
                dh=dh,
                imap=self.imap_port,
                imaps=self.imaps_port,
                pop3=self.pop3_port,
                pop3s=self.pop3s_port,
                oauth_mechanisms=" xoauth2 oauthbearer" if self.oauth_introspection_url else "",
                oauth_passdb=self._oauth_passdb(),
            )
        )
        self._launch()

    def _oauth_passdb(self) -> str:
        """The oauth2 passdb: a token is good when the OAuth server's introspection says it is active and
        belongs to the user logging in."""
        if not self.oauth_introspection_url:
            return ""
        settings = self.folder / "dovecot-oauth2.conf.ext"
        settings.write_text(
            f"introspection_mode = post\n"
            f"introspection_url = {self.oauth_introspection_url}\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            f"tls_ca_cert_file = {self.pki.ca_pem}\n"
        )
        settings.chmod(0o644)
        return f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {settings}\n}}\n"

    def restart(self) -> None:
        """Stop Dovecot and start it again on the same configuration, users and mail (a server restart:
        every connection is cut — Dovecot's client processes outlive a stopped master, so they are
        stopped too)."""
        clients = _descendants(self.process.pid) if self.process is not None else []
        self.stop()
        for pid in clients:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._launch()

    def _launch(self) -> None:
        self.process = subprocess.Popen(
            [require("dovecot"), "-F", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            for port in (self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port):
                wait_for_port(port)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"Dovecot did not start: {exc}\n{self.log_tail()}") from exc

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        log = self.folder / "dovecot.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    # --- users and mail -------------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Create (or change) a mail user; Dovecot re-reads the passwd-file when it changes."""
        if self.users.get(username) == password:
            return  # nothing changes
        self.users[username] = password
        self._write_passwd("users", self.users, username, password)

    def add_master(self, name: str, password: str) -> None:
        """Create (or change) a master user: ``mailbox*name`` with this password opens any mailbox."""
        if self.masters.get(name) == password:
            return
        self.masters[name] = password
        self._write_passwd("masters", self.masters, f"postmaster*{name}", password)

    def _write_passwd(self, file: str, entries: dict[str, str], username: str, password: str) -> None:
        path = self.folder / file
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{u}:{p}\n" for u, p in entries.items()))
        tmp.chmod(0o644)
        os.replace(tmp, path)
        # passwd-file notices changes by their mtime in whole seconds: each write gets a later second than
        # the one before (two writes within a second used to look alike, and Dovecot kept the old passwords).
        mtime = max(self._mtimes.get(file, 0) + 1, int(time.time()) + 1)
        self._mtimes[file] = mtime
        os.utime(path, (mtime, mtime))
        # Dovecot looks at the file at most once a second: until it has seen the change, a login with the
        # new password fails. Wait for the condition itself (bounded), asking Dovecot.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._login_works(username, password):
                return
            time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not take the new password of {username} ({file}) within 10 s")

    def _login_works(self, username: str, password: str) -> bool:
        checked = subprocess.run(
            [require("doveadm"), "-c", str(self.config_path), "auth", "test", username, password],
            capture_output=True,
            text=True,
        )
        return checked.returncode == 0

    def maildir(self, username: str, folder: str = "INBOX") -> Path:
        base = self.folder / "mail" / username / "Maildir"
        return base if folder == "INBOX" else base / f".{folder}"

    def deliver(self, username: str, raw: bytes, folder: str = "INBOX") -> Path:
        """Put a message into the user's folder as the MTA would (Maildir ``new/``)."""
        box = self.maildir(username, folder)
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        self._chown(self.folder / "mail" / username)
        name = f"{time.time_ns()}.M{next(_counter)}P{os.getpid()}.testkit"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        self._chown(tmp)
        target = box / "new" / name
        os.replace(tmp, target)
        return target

    def deliver_many(self, username: str, raws: list[bytes], folder: str = "INBOX") -> None:
        """Deliver many messages at once (one ownership pass at the end), in order: UIDs follow the list."""
        box = self.maildir(username, folder)
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        stamp = time.time_ns()
        for index, raw in enumerate(raws):
            # Names sort in delivery order, so Dovecot numbers the messages in this order.
            name = f"{stamp}.{index:08d}.M{next(_counter)}P{os.getpid()}.testkit"
            (box / "tmp" / name).write_bytes(raw)
            os.replace(box / "tmp" / name, box / "new" / name)
        self._chown(self.folder / "mail" / username)

    def reset_mail(self) -> None:
        """Remove every mailbox (between tests)."""
        mail = self.folder / "mail"
        for child in mail.iterdir():
            shutil.rmtree(child, ignore_errors=True)

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            [require("doveadm"), "-c", str(self.config_path), *args], check=True, capture_output=True, text=True
        )
        return result.stdout

    @staticmethod
    def _chown(path: Path) -> None:
        entry = pwd.getpwnam(RUN_AS)
        targets = [path] if path.is_file() else [path, *path.rglob("*")]
        for target in targets:
            # Dovecot creates and removes lock files in a mailbox while it is being read: one gone is fine.
            with contextlib.suppress(FileNotFoundError):
                os.chown(target, entry.pw_uid, entry.pw_gid)


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc), children first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found
