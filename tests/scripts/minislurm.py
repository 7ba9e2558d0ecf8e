"""A real single-node SLURM cluster in a temporary folder, for the launcher tests and for trying things out.

    python tests/scripts/minislurm.py up /tmp/slurm     # prints `export SLURM_CONF=...`; Ctrl-C stops it
    python tests/scripts/minislurm.py up /tmp/slurm --accounting    # plus slurmdbd + MariaDB, so sacct works
    (tests: the `slurm_cluster` fixture in tests/conftest.py brings it up once per test run)

Debian's slurm-wlm and munge are installed if missing (root and apt-get are
needed for that, and root to run the daemons); where that cannot be done,
`up()` raises SlurmUnavailable saying why (the tests skip on it, see
tests/helpers.py `start_minislurm`). Nothing is written to /etc: munged gets its own key and
socket, and slurmctld/slurmd read the config through SLURM_CONF. The node is
`localhost` with this machine's CPUs and memory and one fake GPU (gres.conf
`File=/dev/null`; without a File the node is marked INVAL), so jobs asking
for `--gpus-per-node=1` schedule and run one at a time. The daemons run in
the foreground as children of this process and are stopped by their PIDs.
By default there is no accounting database, so `sacct` is unavailable and
submitit reads job states from its own result files (it reports them as
UNKNOWN). With `accounting=True` (`--accounting`) mariadb-server and slurmdbd
are installed too; a private MariaDB (data dir, socket and pid file under the
root, TCP on 127.0.0.1 only) backs a slurmdbd, the cluster is registered with
sacctmgr before slurmctld starts, and `sacct` reports job states.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
ACCOUNTING = ("slurmdbd", "mariadbd", "mariadb-install-db", "mariadb", "sacctmgr", "sacct")
DB_USER, DB_NAME = "slurm", "slurm_acct_db"  # slurmdbd's MariaDB user and database (StorageUser, StorageLoc)


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started on this machine; the message says why."""


def _have(names: tuple[str, ...]) -> bool:
    return all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in names)


def ensure_installed(accounting: bool = False) -> None:
    """apt-get install slurm-wlm munge (and mariadb-server slurmdbd) when a daemon or client is missing."""
    packages = [] if _have(DAEMONS) else ["slurm-wlm", "munge"]
    if accounting and not _have(ACCOUNTING):
        packages += ["mariadb-server", "slurmdbd"]
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmUnavailable(
            "SLURM is not installed and cannot be installed here (needs root and apt-get): "
            f"apt-get install {' '.join(packages)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SlurmUnavailable(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    return 1024


def _write_secret(path: Path, text: str) -> None:
    """Write a file that only its owner can read (slurmdbd refuses a slurmdbd.conf readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the file may exist with a wider mode
    with os.fdopen(fd, "w") as f:
        f.write(text)


class MiniSlurm:
    def __init__(self, root: Path, cpus: int | None = None, accounting: bool = False):
        self.root = Path(root).resolve()
        self.cpus = cpus or os.cpu_count() or 1
        self.accounting = accounting
        self.procs: list[subprocess.Popen] = []

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        r = self.root
        for sub in ("state", "spool", "munge", "log"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            os.chmod(key, 0o600)
        self.socket = r / "munge" / "munge.socket"
        accounting = (
            "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none"
            if not self.accounting
            else self._write_dbd_config()
        )
        self.conf.write_text(f"""# single-node test cluster (tests/scripts/minislurm.py)
ClusterName=mini
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r / "state"}
SlurmdSpoolDir={r / "spool"}
SlurmctldPidFile={r / "slurmctld.pid"}
SlurmdPidFile={r / "slurmd.pid"}
SlurmctldLogFile={r / "log" / "slurmctld.log"}
SlurmdLogFile={r / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
{accounting}
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# SIGTERM to SIGKILL on scancel/time limit (default 30 s); submitit ignores SIGTERM, so this is how long
# a cancelled cell runs on. Short here so a test's scancel lands mid-cell.
KillWait=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={_memory_mb()} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        (r / "gres.conf").write_text("NodeName=localhost Name=gpu File=/dev/null\n")

    def _write_dbd_config(self) -> str:
        """slurmdbd.conf next to slurm.conf (slurmdbd reads it from SLURM_CONF's folder); slurm.conf's lines."""
        r = self.root
        self.db_port, self.dbd_port = _free_port(), _free_port()
        self.db_pass = secrets.token_hex(16)  # a fresh one each bring-up; _start_mariadb sets it
        _write_secret(
            r / "slurmdbd.conf",
            f"""# accounting daemon of the test cluster (tests/scripts/minislurm.py)
AuthType=auth/munge
AuthInfo=socket={self.socket}
DbdHost=localhost
DbdPort={self.dbd_port}
SlurmUser=root
PidFile={r / "slurmdbd.pid"}
LogFile={r / "log" / "slurmdbd.log"}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser={DB_USER}
StoragePass={self.db_pass}
StorageLoc={DB_NAME}
""",
        )
        # AccountingStoragePass is the munged socket for talking to slurmdbd (AuthInfo is not used there: without
        # it sacctmgr and slurmctld try /run/munge). jobacct_gather/linux reads /proc, so it needs no cgroups.
        return (
            f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n"
            f"AccountingStoragePort={self.dbd_port}\nAccountingStoragePass={self.socket}\n"
            "JobAcctGatherType=jobacct_gather/linux"
        )

    def _sql(self, statement: str) -> subprocess.CompletedProcess:
        """Run SQL as MariaDB's root over our private socket (root logs in without a password there)."""
        return subprocess.run(
            [_sbin("mariadb"), "--no-defaults", f"--socket={self.db_socket}", "-uroot", "-e", statement],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def _start_mariadb(self, timeout: float) -> None:
        """A private mariadbd: data, socket and pid file under root/db, TCP on 127.0.0.1 only."""
        db = self.root / "db"
        data, self.db_socket = db / "data", db / "mariadb.sock"
        if not (data / "mysql").exists():
            with open(self.root / "log" / "mariadb-install-db.out", "ab") as log:
                subprocess.run(
                    [
                        _sbin("mariadb-install-db"),
                        "--no-defaults",
                        f"--datadir={data}",
                        "--user=root",
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db",
                        "--skip-name-resolve",
                    ],
                    check=True,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        # slurmdbd warns below 900 s: its rollups hold long transactions
        self._start(
            _sbin("mariadbd"),
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={self.db_socket}",
            f"--pid-file={db / 'mariadbd.pid'}",
            f"--port={self.db_port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--user=root",
            "--innodb-lock-wait-timeout=900",
        )
        self._wait(lambda: self._sql("SELECT 1").returncode == 0, timeout, "mariadbd did not accept connections")
        user = f"'{DB_USER}'@'127.0.0.1'"  # --skip-name-resolve: TCP clients are known by their IP
        made = self._sql(
            f"CREATE OR REPLACE USER {user} IDENTIFIED BY '{self.db_pass}'; GRANT ALL ON {DB_NAME}.* TO {user};"
        )
        if made.returncode != 0:
            self.down()
            raise SlurmUnavailable(f"minislurm: could not create the slurmdbd database user: {made.stderr}")

    def _start_slurmdbd(self, timeout: float) -> None:
        """slurmdbd, then the cluster registered in its database before slurmctld first connects."""
        self._start(_sbin("slurmdbd"), "-D")
        self._wait(lambda: _listening(self.dbd_port), timeout, "slurmdbd did not open its port")
        added = subprocess.run(
            ["sacctmgr", "-i", "add", "cluster", "mini"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env()},
        )
        if added.returncode != 0 and "already exists" not in added.stdout + added.stderr:
            self.down()
            raise SlurmUnavailable(f"minislurm: sacctmgr could not add the cluster: {added.stdout}{added.stderr}")

    def _start(self, *cmd: str) -> subprocess.Popen:
        log = open(self.root / "log" / f"{Path(cmd[0]).name}.out", "ab")
        proc = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env()}, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def up(self, timeout: float = 60.0) -> MiniSlurm:
        ensure_installed(self.accounting)
        if os.geteuid() != 0:  # SlurmUser and SlurmdUser are root: slurmd launches jobs as their user
            raise SlurmUnavailable("the test cluster's daemons run as root; this user is not root")
        self._write_config()
        r = self.root
        self._start(
            _sbin("munged"),
            "-F",
            "--force",
            f"--socket={self.socket}",
            f"--key-file={r / 'munge' / 'munge.key'}",
            f"--pid-file={r / 'munge' / 'munged.pid'}",
            f"--log-file={r / 'log' / 'munged.log'}",
            f"--seed-file={r / 'munge' / 'munged.seed'}",
        )
        self._wait(lambda: self.socket.exists(), timeout, "munged did not create its socket")
        if self.accounting:
            self._start_mariadb(timeout)
            self._start_slurmdbd(timeout)
        self._start(_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf))
        self._start(_sbin("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf))
        self._wait(self._node_idle, timeout, "the node did not come up idle")
        return self

    def _node_idle(self) -> bool:
        try:
            out = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%t"],
                capture_output=True,
                text=True,
                timeout=10,
                env={**os.environ, **self.env()},
            ).stdout.strip()
        except subprocess.SubprocessError:
            return False
        return out.startswith("idle")

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if ready():
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                break
            time.sleep(0.5)
        self.down()
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((self.root / "log").glob("*")))
        raise SlurmUnavailable(f"minislurm: {what}\n{logs}")

    def run(self, *cmd: str) -> str:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=60, env={**os.environ, **self.env()}
        ).stdout

    def down(self) -> None:
        """Cancel our jobs, then stop slurmd, slurmctld (slurmdbd, mariadbd) and munged, each by its PID."""
        if self.procs and Path(self.procs[-1].args[0]).name == "slurmd" and self.procs[-1].poll() is None:
            subprocess.run(
                ["scancel", "--full", "-u", "root"], capture_output=True, timeout=30, env={**os.environ, **self.env()}
            )
            end = time.time() + 30
            while time.time() < end and self.run("squeue", "-h", "-o", "%i").strip():
                time.sleep(0.5)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--accounting"]
    if len(args) != 2 or args[0] != "up":
        print(__doc__)
        return 2
    cluster = MiniSlurm(Path(args[1]), accounting="--accounting" in argv).up()
    print(f"export SLURM_CONF={cluster.conf}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill PID` stops the daemons too, as Ctrl-C does
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
