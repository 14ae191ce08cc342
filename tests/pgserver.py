"""A private PostgreSQL server for the tests, started from the installed binaries.

`PgServer` runs `initdb` once into a temporary folder, then `pg_ctl start` on a
free loopback port. It never touches the machine's own clusters. As root,
the binaries run as the `postgres` system user (initdb refuses root).

The cluster runs with `fsync=off`: that is for tests only (a machine crash
would corrupt it, and it is thrown away anyway); never copy it to production.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from tests.ports import free_port
from tests.tlsfiles import TlsFiles

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found under "
    "/usr/lib/postgresql/*/bin: install the `postgresql` Debian package "
    "(apt-get install postgresql; scripts/test does it when run as root)"
)

TEMPLATE = "chorus_template"
"""An empty database fresh test databases are copied from (CREATE DATABASE … TEMPLATE)."""


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder; fails with `INSTALL_HINT` if none."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found[-1]


class PgServer:
    """One PostgreSQL cluster in a fresh temporary folder, listening on 127.0.0.1 only.

    The folder is made directly in the system temp dir (not pytest's tmp_path,
    whose parents are private to root), so the `postgres` user can reach it.
    """

    def __init__(
        self, *, durable: bool = False, tls: TlsFiles | None = None, settings: tuple[str, ...] = ()
    ) -> None:
        """`durable=True` keeps fsync and synchronous commits on (for benchmarks); with
        `tls`, the server also accepts TLS (`ssl = on`) with that certificate; `settings`
        (`name=value`) are added to the server's (benchmark diagnostics)."""
        self.bin_dir = find_bin_dir()
        self.durable = durable
        self.base = Path(tempfile.mkdtemp(prefix="chorus-pg-"))
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log_file = self.base / "postgres.log"
        self.port = free_port()
        self.user = "postgres"
        self._as_user: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")  # created by the Debian package
            except KeyError:
                raise RuntimeError(
                    "initdb refuses to run as root and there is no `postgres` user: "
                    "install the `postgresql` Debian package, or run the tests unprivileged"
                ) from None
            self._owner = (entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.running = False
        self.tls = tls
        self.settings = settings

    @property
    def url(self) -> str:
        """The server's URL, without a database name."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}"

    def database_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [*self._as_user, str(self.bin_dir / tool), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{log[-4000:]}"
            )

    def init(self) -> None:
        """Create the cluster (trust authentication on loopback and the socket only)."""
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir()
        if self._owner is not None:
            for path in (self.base, self.data_dir, self.socket_dir):
                os.chown(path, *self._owner)
        self.log_file.touch()
        if self._owner is not None:
            os.chown(self.log_file, *self._owner)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            self.user,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server and wait (with a deadline, no fixed sleep) until it accepts logins."""
        settings = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.socket_dir}",
            "-c max_connections=200",
        ]
        if self.tls is not None:
            settings += ["-c ssl=on", *self._install_tls(self.tls)]
        if not self.durable:
            # Tests only (see the module docstring): commits do not wait for the disk.
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        settings += [f"-c {setting}" for setting in self.settings]
        options = " ".join(settings)
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--options",
            options,
            "--wait",
            "--timeout",
            "60",
        )
        self.running = True
        self._wait_ready(deadline=time.monotonic() + 60)

    def _install_tls(self, tls: TlsFiles) -> list[str]:
        """Copy the certificate and key where the server may read them (the key 0600)."""
        cert, key = self.data_dir / "server.crt", self.data_dir / "server.key"
        shutil.copy(tls.cert, cert)
        shutil.copy(tls.key, key)
        key.chmod(0o600)
        if self._owner is not None:
            for path in (cert, key):
                os.chown(path, *self._owner)
        return [f"-c ssl_cert_file={cert}", f"-c ssl_key_file={key}"]

    def _wait_ready(self, deadline: float) -> None:
        pg_isready = self.bin_dir / "pg_isready"
        while True:
            result = subprocess.run(
                [str(pg_isready), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user],
                capture_output=True,
                check=False,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} did not become ready")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server fast (open connections are cut, as when a database goes away)."""
        if not self.running:
            return
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait")
        self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases -------------------------------------------------------------------

    def psql_command(self, sql: str, database: str = "postgres") -> list[str]:
        """A `psql` command line that runs `sql` and prints rows unaligned, `|`-separated."""
        return [
            str(self.bin_dir / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--tuples-only",
            "--no-align",
            "--set",
            "ON_ERROR_STOP=1",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--username",
            self.user,
            "--dbname",
            database,
            "--command",
            sql,
        ]

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` (from synchronous code) and return what it printed."""
        result = subprocess.run(
            self.psql_command(sql, database), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    async def apsql(self, sql: str, database: str = "postgres") -> str:
        """`psql` from trio code, without blocking the run."""
        result = await trio.run_process(
            self.psql_command(sql, database), capture_stdout=True, capture_stderr=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.decode()}")
        return result.stdout.decode().strip()

    def create_template(self) -> None:
        self.psql(f"CREATE DATABASE {TEMPLATE}")

    async def new_database(self) -> tuple[str, str]:
        """A fresh, empty database copied from the template: (its name, its URL)."""
        name = f"chorus_{uuid.uuid4().hex[:16]}"
        await self.apsql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return name, self.database_url(name)


_shared: PgServer | None = None
_shared_users = 0


@contextmanager
def shared_pg_server() -> Iterator[PgServer]:
    """One private PostgreSQL shared by every session fixture that asks for it.

    Several test folders (persistence, cluster) define a session-scoped
    `pg_server` fixture through this; the server is started by the first and
    removed when the last one finishes, so a whole run starts only one.
    """
    global _shared, _shared_users
    if _shared is None:
        server = PgServer()
        try:
            server.init()
            server.start()
            server.create_template()
        except BaseException:
            server.remove()
            raise
        _shared = server
    _shared_users += 1
    try:
        yield _shared
    finally:
        _shared_users -= 1
        if _shared_users == 0:
            _shared.remove()
            _shared = None
