"""A real single-node SLURM cluster in a temporary folder, for the launcher tests and for trying things out.

    python tests/scripts/minislurm.py up /tmp/slurm     # prints `export SLURM_CONF=...`; Ctrl-C stops it
    (tests: the `slurm_cluster` fixture in tests/conftest.py brings it up once per test run)

Debian's slurm-wlm and munge are installed if missing (root and apt-get are
needed for that). Nothing is written to /etc: munged gets its own key and
socket, and slurmctld/slurmd read the config through SLURM_CONF. The node is
`localhost` with this machine's CPUs and memory and one fake GPU (gres.conf
`File=/dev/null`; without a File the node is marked INVAL), so jobs asking
for `--gpus-per-node=1` schedule and run one at a time. The daemons run in
the foreground as children of this process and are stopped by their PIDs.
There is no accounting database, so `sacct` is unavailable and submitit
reads job states from its own result files (it reports them as UNKNOWN).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def ensure_installed() -> None:
    """apt-get install slurm-wlm munge when a daemon or client is missing."""
    if all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("SLURM is not installed and cannot be installed here (needs root and apt-get): "
                           "apt-get install slurm-wlm munge")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    return 1024


class MiniSlurm:
    def __init__(self, root: Path, cpus: int | None = None):
        self.root = Path(root).resolve()
        self.cpus = cpus or os.cpu_count() or 1
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
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
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

    def _start(self, *cmd: str) -> subprocess.Popen:
        log = open(self.root / "log" / f"{Path(cmd[0]).name}.out", "ab")
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env()},
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def up(self, timeout: float = 60.0) -> "MiniSlurm":
        ensure_installed()
        self._write_config()
        r = self.root
        self._start(_sbin("munged"), "-F", "--force", f"--socket={self.socket}",
                    f"--key-file={r / 'munge' / 'munge.key'}", f"--pid-file={r / 'munge' / 'munged.pid'}",
                    f"--log-file={r / 'log' / 'munged.log'}", f"--seed-file={r / 'munge' / 'munged.seed'}")
        self._wait(lambda: self.socket.exists(), timeout, "munged did not create its socket")
        self._start(_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf))
        self._start(_sbin("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf))
        self._wait(self._node_idle, timeout, "the node did not come up idle")
        return self

    def _node_idle(self) -> bool:
        try:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=10,
                                 env={**os.environ, **self.env()}).stdout.strip()
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
        raise RuntimeError(f"minislurm: {what}\n{logs}")

    def run(self, *cmd: str) -> str:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60,
                              env={**os.environ, **self.env()}).stdout

    def down(self) -> None:
        """Cancel our jobs, then stop slurmd, slurmctld and munged, each by its PID."""
        if self.procs and self.procs[-1].poll() is None:
            subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True, timeout=30,
                           env={**os.environ, **self.env()})
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
    if len(argv) != 2 or argv[0] != "up":
        print(__doc__)
        return 2
    cluster = MiniSlurm(Path(argv[1])).up()
    print(f"export SLURM_CONF={cluster.conf}", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
