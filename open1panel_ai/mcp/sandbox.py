"""The sandbox an MCP server's stdio child runs in: its own user, home, environment and view of
the file system, shaped by a permission profile.

MCP servers are third-party code from npm and PyPI, while the panel usually runs as root and
holds every secret it manages. So a child is started through a chain of small programs, each
adding one layer, and every layer that cannot be applied here is reported with why and what
to do about it (never silently skipped):

- **user**: a uid and gid of its own, never the panel's (needs a root panel). Each server gets
  one number from a range no account uses (:data:`UID_BASE` on), kept in its definition, so
  nothing is added to ``/etc/passwd`` and nothing is left behind when it is deleted; inside
  the sandbox an ``/etc/passwd`` and ``/etc/group`` of its own name it ``o1p-mcp-<id>``. It
  then cannot signal, trace or read the environment of the bridge or the panel, nor read
  another server's home.
- **filesystem** and **processes**: ``bwrap`` (bubblewrap) gives it a read-only view of the
  system folders only (``/usr``, ``/etc`` and the merged ``/bin`` and ``/lib`` links), the
  program's own installation, its private home, a private ``/tmp``, the paths the profile
  grants, and its own PID namespace. The data dir, ``/root``, other homes and every path not
  granted are simply absent.
- **network**: ``network: none`` gives it a network namespace with no interface but a downed
  loopback (needs bwrap).
- **limits**: ``prlimit`` caps its memory (``RLIMIT_DATA``), open files and processes.
- **environment**: only ``PATH``, ``HOME``, ``LANG``/``LC_*``, ``TMPDIR`` and the server's
  declared env reach it; the values travel in the environment, never on a command line.

``isolation: "none"`` in the profile is an explicit opt-out: the child runs as the panel's user
with the same small environment, and every page shows that as a warning.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hookspecs.mcp import Isolation, IsolationLayer, SandboxProfile
from open1panel_ai import i18n
from open1panel_ai.i18n import Message
from open1panel_ai.mcp.program import find_program

log = logging.getLogger(__name__)

NETWORK_MODES = ("all", "none")
ISOLATION_MODES = ("sandbox", "none")
#: The layers, in the order pages list them.
LAYERS = ("user", "filesystem", "processes", "network", "limits", "environment")
#: System folders every child may read: a read-only view of the system, nothing else of it.
SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Environment variables a child keeps from the panel's, besides the ``LC_*`` ones.
KEPT_ENV = ("PATH", "LANG")
#: The user name of a server's sandbox: ``o1p-mcp-`` and its id (at most 32 characters).
USER_PREFIX = "o1p-mcp-"
#: The first uid (and gid) given to servers: far above accounts (below 60000) and the usual
#: subordinate ranges of containers, and below the 32-bit limit.
UID_BASE = 3_500_000_000
UID_SPAN = 500_000_000
_SERVER_ID = re.compile(r"[a-z0-9]{1,24}")
DEFAULT_OPEN_FILES = 4096
DEFAULT_PROCESSES = 512


@dataclass(frozen=True)
class Profile:
    """What a server may touch, in ToolHive's shape: paths to read, paths to write, the
    network (``all`` or ``none``), and limits (None: no limit of ours)."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    network: Literal["all", "none"] = "all"
    memory_mb: int | None = None
    open_files: int | None = DEFAULT_OPEN_FILES
    processes: int | None = DEFAULT_PROCESSES
    isolation: Literal["sandbox", "none"] = "sandbox"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Profile:
        """A profile from its stored or API form (JSON, validated by the schema before it was
        stored); missing keys take the defaults, and only ``none`` turns the network or the
        sandbox off."""
        data = dict(data or {})
        defaults = cls()
        return cls(
            read=tuple(str(p) for p in data.get("read") or ()),
            write=tuple(str(p) for p in data.get("write") or ()),
            network="none" if data.get("network") == "none" else "all",
            memory_mb=_optional_int(data.get("memory_mb", defaults.memory_mb)),
            open_files=_optional_int(data.get("open_files", defaults.open_files)),
            processes=_optional_int(data.get("processes", defaults.processes)),
            isolation="none" if data.get("isolation") == "none" else "sandbox",
        )

    def as_dict(self) -> SandboxProfile:
        return {
            "read": list(self.read),
            "write": list(self.write),
            "network": self.network,
            "memory_mb": self.memory_mb,
            "open_files": self.open_files,
            "processes": self.processes,
            "isolation": self.isolation,
        }


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Layer:
    """One layer of isolation and whether it is in effect for a child; when it is not, why
    and what would put it in effect."""

    name: str
    applied: bool
    reason: str | None = None
    fix: str | None = None

    def public(self) -> IsolationLayer:
        """The layer for the API: texts in English, with their keys for the pages."""
        return {
            "name": self.name,
            "applied": self.applied,
            "reason": self.reason,
            "reason_i18n": i18n.public(self.reason),
            "fix": self.fix,
            "fix_i18n": i18n.public(self.fix),
        }


@dataclass(frozen=True)
class Launch:
    """How to start one child: the whole argv (the sandbox's programs first), its exact
    environment and working folder, its home, and the layers in effect."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    home: Path | None
    #: The uid (and gid) it runs as; None when that is the panel's.
    uid: int | None = None
    layers: tuple[Layer, ...] = field(default_factory=tuple)

    @property
    def mode(self) -> Literal["sandbox", "partial", "none"]:
        """``sandbox`` (every layer), ``partial`` or ``none``."""
        applied = [layer.applied for layer in self.layers if layer.name != "environment"]
        return "sandbox" if all(applied) else ("partial" if any(applied) else "none")

    def public(self) -> Isolation:
        """What the pages and the API show of the isolation in effect."""
        return {
            "mode": self.mode,
            "uid": self.uid,
            "home": str(self.home) if self.home else None,
            "layers": [layer.public() for layer in self.layers],
        }


@dataclass(frozen=True)
class Host:
    """What this machine offers for sandboxing, looked up once per runtime."""

    root: bool
    bwrap: str | None
    bwrap_works: bool
    setpriv: str | None
    prlimit: str | None

    @classmethod
    def detect(cls, bwrap: str = "bwrap") -> Host:
        """``bwrap`` names the bubblewrap program (a path, or a name looked up on PATH)."""
        found = shutil.which(bwrap)
        return cls(
            root=os.geteuid() == 0,
            bwrap=found,
            bwrap_works=bool(found) and _bwrap_works(found),
            setpriv=shutil.which("setpriv"),
            prlimit=shutil.which("prlimit"),
        )


@functools.cache
def _bwrap_works(bwrap: str) -> bool:
    """Whether bubblewrap can make its namespaces here (a container may forbid them)."""
    try:
        done = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--", "true"], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        log.warning("bubblewrap cannot make namespaces here: %s", done.stderr.decode(errors="replace").strip())
    return done.returncode == 0


def user_name(server_id: str) -> str:
    if not _SERVER_ID.fullmatch(server_id):
        raise ValueError(f"not a server id: {server_id!r}")
    return USER_PREFIX + server_id


def next_uid(taken: Sequence[int], data_dir: Path) -> int:
    """A uid for a new server: the next after those ``taken`` by this panel's servers, from a
    start that depends on the data dir, so that two panels on one machine do not share."""
    if taken:
        return max(taken) + 1
    offset = int.from_bytes(hashlib.sha256(str(data_dir).encode()).digest()[:4], "big") % 1000
    return UID_BASE + offset * (UID_SPAN // 1000)


def _identity_files(server_id: str, uid: int, home: Path, run_dir: Path) -> tuple[Path, Path]:
    """``/etc/passwd`` and ``/etc/group`` for inside the sandbox: the system's, and the
    server's own user and group, so programs that look their user up find it."""
    name = user_name(server_id)
    files = []
    for system, line in (
        (Path("/etc/passwd"), f"{name}:x:{uid}:{uid}:open1panel-ai MCP server:{home}:/usr/sbin/nologin"),
        (Path("/etc/group"), f"{name}:x:{uid}:"),
    ):
        text = system.read_text(errors="replace") if system.is_file() else ""
        path = run_dir / f"{server_id}.{system.name}"
        path.write_text(text.rstrip("\n") + "\n" + line + "\n")
        os.chmod(path, 0o644)
        files.append(path)
    return files[0], files[1]


def installation_of(program: str) -> list[Path]:
    """The folders a program needs to run, for a read-only view: its own folder, the virtual
    environment or ``node_modules`` tree it belongs to, and those of the interpreter its
    ``#!`` line names (a venv's base Python included)."""
    seen: list[Path] = []

    def add(path: Path) -> None:
        if path not in seen:
            seen.append(path)

    def visit(executable: Path, depth: int = 0) -> None:
        resolved = executable.resolve()
        for candidate in (executable, resolved):
            root = _install_root(candidate)
            add(root)
            venv_home = _venv_base(root)
            if venv_home is not None:
                add(venv_home)
        if depth < 2:
            interpreter = _shebang(resolved)
            if interpreter is not None:
                visit(interpreter, depth + 1)

    visit(Path(program))
    return [path for path in seen if not any(other in path.parents for other in seen)]


def _install_root(path: Path) -> Path:
    """The venv (a folder with ``pyvenv.cfg``) or ``node_modules`` tree ``path`` lies in, else
    the prefix whose ``bin`` holds it (one with a ``lib`` beside), else its folder."""
    for parent in path.parents:
        if (parent / "pyvenv.cfg").is_file():
            return parent
        if parent.name == "node_modules":
            return parent.parent
    folder = path.parent
    if folder.name == "bin" and (folder.parent / "lib").is_dir():
        return folder.parent
    return folder


def _venv_base(root: Path) -> Path | None:
    """The installation of a venv's base Python (``home`` in ``pyvenv.cfg`` is its bin)."""
    config = root / "pyvenv.cfg"
    if not config.is_file():
        return None
    for line in config.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(value.strip()).resolve().parent
    return None


def _shebang(path: Path) -> Path | None:
    try:
        with path.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1 and not words[1].startswith("-"):
        found = shutil.which(words[1])
        return Path(found) if found else None
    return Path(words[0]) if words[0].startswith("/") else None


def child_env(
    declared: Mapping[str, str], home: Path, tmpdir: str, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """The whole environment of a child: PATH, LANG and LC_* from the panel's, its HOME and
    TMPDIR, and the env it declares (which wins)."""
    env = {key: value for key, value in environ.items() if key in KEPT_ENV or key.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=str(home), TMPDIR=tmpdir)
    env.update(declared)
    return env


def refused_path(path: str, hidden: Sequence[Path]) -> bool:
    """Whether a granted path is, holds or lies inside one of the ``hidden`` folders (the data
    dir, the homes): such a grant is never given."""
    candidate = Path(os.path.normpath(path))
    for folder in hidden:
        folder = Path(os.path.normpath(folder))
        if candidate == folder or folder in candidate.parents or candidate in folder.parents:
            return True
    return False


def plan(
    server_id: str,
    argv: Sequence[str],
    declared_env: Mapping[str, str],
    cwd: str | None,
    profile: Profile,
    *,
    uid: int,
    host: Host,
    homes_dir: Path,
    run_dir: Path,
    hidden: Sequence[Path],
) -> Launch:
    """How to start the child of server ``server_id`` under ``profile`` on this ``host``.

    ``uid`` is the server's own (see :func:`next_uid`); ``homes_dir`` holds each server's
    private home; ``run_dir`` (private to the panel) receives the sandbox's identity files;
    ``hidden`` are folders no grant may reach (the panel's data dir, ``homes_dir``). Raises
    FileNotFoundError when the program is not there to run."""
    program = find_program(argv, declared_env, cwd)
    if program is None:
        raise FileNotFoundError(argv[0])
    home = homes_dir / server_id
    if profile.isolation == "none":
        _make_home(home, None)
        env = child_env(declared_env, home, str(home / "tmp"))
        opted_out = [
            Layer(name, False, Message("mcp.sandbox.reason.opted_out"), Message("mcp.sandbox.fix.opted_out"))
            for name in LAYERS[:-1]
        ]
        return Launch([program, *argv[1:]], env, cwd, home, None, (*opted_out, Layer("environment", True)))

    layers: dict[str, Layer] = {}
    setpriv = host.setpriv if host.root else None
    own_user = setpriv is not None
    if own_user:
        layers["user"] = Layer("user", True)
    elif not host.root:
        layers["user"] = Layer(
            "user", False, Message("mcp.sandbox.reason.not_root"), Message("mcp.sandbox.fix.run_as_root")
        )
    else:
        layers["user"] = Layer(
            "user",
            False,
            Message("mcp.sandbox.reason.missing_tool", tool="setpriv"),
            Message("mcp.sandbox.fix.install_util_linux"),
        )
    _make_home(home, uid if own_user else None)

    chain: list[str] = []
    bwrap = host.bwrap if host.bwrap_works else None
    use_bwrap = bwrap is not None
    if bwrap is not None:
        identity = _identity_files(server_id, uid, home, run_dir) if own_user else None
        chain += _bwrap_args(bwrap, program, cwd, profile, home, hidden, identity)
        for name in ("filesystem", "processes", "network"):
            layers[name] = Layer(name, True)
    else:
        missing = host.bwrap is None
        reason = Message("mcp.sandbox.reason.no_bwrap" if missing else "mcp.sandbox.reason.bwrap_fails")
        fix = Message("mcp.sandbox.fix.install_bwrap" if missing else "mcp.sandbox.fix.allow_namespaces")
        for name in ("filesystem", "processes"):
            layers[name] = Layer(name, False, reason, fix)
        # "all" is what was asked for; only "none" needs a namespace of its own.
        layers["network"] = Layer(
            "network", profile.network == "all", *(() if profile.network == "all" else (reason, fix))
        )
    if setpriv is not None:
        chain += [
            setpriv,
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    limits = _limit_args(profile)
    if limits and host.prlimit is None:
        layers["limits"] = Layer(
            "limits",
            False,
            Message("mcp.sandbox.reason.missing_tool", tool="prlimit"),
            Message("mcp.sandbox.fix.install_util_linux"),
        )
    else:
        if limits and host.prlimit is not None:  # it is, with limits: checked above
            chain += [host.prlimit, *limits, "--"]
        layers["limits"] = Layer("limits", True)
    layers["environment"] = Layer("environment", True)
    env = child_env(declared_env, home, "/tmp" if use_bwrap else str(home / "tmp"))
    return Launch(
        [*chain, program, *argv[1:]], env, cwd, home, uid if own_user else None, tuple(layers[name] for name in LAYERS)
    )


def _make_home(home: Path, uid: int | None) -> None:
    """The server's private home (and its tmp), owned by its uid, mode 0700; the folder of
    homes lets each user reach its own home and list none."""
    home.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    os.chmod(home.parent, 0o711)
    for folder in (home, home / "tmp"):
        folder.mkdir(exist_ok=True, mode=0o700)
        if uid is not None:
            os.chown(folder, uid, uid, follow_symlinks=False)
        os.chmod(folder, 0o700)


def remove_home(homes_dir: Path, server_id: str) -> None:
    """Delete a deleted server's home, caches and all (never following a link out of it)."""
    user_name(server_id)  # a server id, not a path
    home = homes_dir / server_id
    if home.is_dir() and not home.is_symlink():
        shutil.rmtree(home, ignore_errors=True)


def homes_of(settings: Mapping[str, str]) -> Path:
    """The folder of the servers' homes: ``mcp_homes``, else :func:`default_homes`."""
    return Path(settings.get("mcp_homes") or default_homes(Path(settings["data_dir"])))


def hidden_folders(settings: Mapping[str, str]) -> tuple[Path, Path]:
    """Folders no grant of a profile may reach: the panel's data dir and the servers' homes."""
    return Path(settings["data_dir"]), homes_of(settings)


def default_homes(data_dir: Path) -> Path:
    """Where the servers' homes go by default: a root panel keeps them in
    ``/var/lib/open1panel-ai-mcp`` (a path each server's uid can walk to without bubblewrap);
    another beside its data dir."""
    if os.geteuid() == 0:
        return Path("/var/lib/open1panel-ai-mcp")
    return data_dir.parent / f"{data_dir.name}-mcp-homes"


def _limit_args(profile: Profile) -> list[str]:
    args = []
    if profile.memory_mb:
        args.append(f"--data={profile.memory_mb * 1024 * 1024}")
    if profile.open_files:
        args.append(f"--nofile={profile.open_files}")
    if profile.processes:
        args.append(f"--nproc={profile.processes}")
    return args


def _bwrap_args(
    bwrap: str,
    program: str,
    cwd: str | None,
    profile: Profile,
    home: Path,
    hidden: Sequence[Path],
    identity: tuple[Path, Path] | None,
) -> list[str]:
    """bubblewrap's arguments: the system read-only, the program's installation read-only,
    the grants, the home read-write, a private /tmp, /proc and /dev of its own, new PID (and,
    for ``network: none``, network) namespaces, and death with the bridge."""
    mounts: list[tuple[str, Path]] = []  # (option, path), bound at the same path inside
    for folder in SYSTEM_FOLDERS:
        path = Path(folder)
        if path.is_symlink():
            mounts.append(("--symlink", path))
        elif path.is_dir():
            mounts.append(("--ro-bind", path))
    resolv = Path("/etc/resolv.conf")
    if resolv.is_symlink():  # systemd-resolved: the file lives in /run
        mounts.append(("--ro-bind-try", resolv.resolve().parent))
    for installed in installation_of(program):
        if not _inside_system(installed) and not refused_path(str(installed), hidden):
            mounts.append(("--ro-bind", installed))
    grants = [("--ro-bind-try", p) for p in profile.read] + [("--bind-try", p) for p in profile.write]
    if cwd and not any(Path(cwd) == Path(g) or Path(g) in Path(cwd).parents for g in (*profile.read, *profile.write)):
        grants.insert(0, ("--ro-bind-try", cwd))
    for option, granted in grants:
        if refused_path(str(granted), hidden):
            log.warning("grant %s reaches a folder no server may see; left out", granted)
            continue
        mounts.append((option, Path(os.path.normpath(granted))))
    mounts.append(("--bind", home))

    args = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]
    if profile.network == "none":
        args.append("--unshare-net")
    created = {Path("/"), Path("/tmp")}  # folders that exist inside, empty
    bound: list[Path] = []  # folders bound from outside, with all their content
    for option, path in sorted(mounts, key=lambda item: len(item[1].parts)):
        if not any(folder in path.parents for folder in bound):
            for parent in reversed(path.parents):
                if parent not in created:
                    args += ["--perms", "0711", "--dir", str(parent)]  # walk through, not list
                    created.add(parent)
        if option == "--symlink":
            args += ["--symlink", os.readlink(path), str(path)]
            continue
        args += [option, str(path), str(path)]
        bound.append(path)
    if identity is not None:
        args += ["--ro-bind", str(identity[0]), "/etc/passwd", "--ro-bind", str(identity[1]), "/etc/group"]
    args += ["--chdir", cwd or str(home), "--"]
    return args


def _inside_system(folder: Path) -> bool:
    return any(folder == Path(s) or Path(s) in folder.parents for s in ("/usr", "/etc"))
