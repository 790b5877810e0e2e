"""The systemd units (single channel and broadcaster@CHANNEL) and their install helper.

The unit text lives here, not only under tools/systemd/, because an installed package has no
tools/ folder; tools/systemd/*.service are these renders (a test keeps them equal).

Secrets reach the process one of two ways: LoadCredential= (preferred: the key file stays
root-only, systemd hands a private copy under $CREDENTIALS_DIRECTORY that only the service
can read) or the optional EnvironmentFile= (KEY=value lines, e.g. OPENAI_API_KEY=...).
`broadcaster run` copies the credentials named in credentials.CREDENTIAL_ENV into their
environment variables (export_credentials, unless a variable is already set), and config.py reads the
stream_key credential itself, so a key never has to sit in config.yaml.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import IO

DEFAULT_BINARY = "/opt/broadcaster/.venv/bin/broadcaster"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
CONFIG_DIR = "/etc/broadcaster"
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_TEMPLATE = """\
# {unit_name}: {description}
# Install: see tools/systemd/README.md, or `broadcaster install-service{install_arg}`.
[Unit]
Description={description}
Wants=network-online.target
After=network-online.target

[Service]
# READY=1 is sent once the first packet reached the ingest, WATCHDOG=1 from the media loop:
# a stalled pipeline stops the pings and systemd restarts the service.
Type=notify
NotifyAccess=main
WatchdogSec=30
ExecStart={binary} run -c {config}
# SIGHUP reloads scenes and the settings that can change live.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# While the ingest is unreachable the broadcaster keeps retrying and is not READY yet.
TimeoutStartSec=5min
# Encoders flush and the recording is closed on SIGTERM.
TimeoutStopSec=30
Environment=PYTHONUNBUFFERED=1
# Descriptors: the control endpoint keeps at most 256 connections, the rest of the process
# (media, models, chat, ASR) needs a few hundred; 1024 is too tight under a connection flood.
LimitNOFILE=65536

# Secrets. Preferred: a root-only file (chmod 600) handed over as a credential, read by the
# broadcaster from $CREDENTIALS_DIRECTORY/stream_key. The file must exist (it may be empty
# for a recording-only channel). More credentials the broadcaster reads the same way:
#LoadCredential=openai_api_key:{config_dir}/{stem}.openai_api_key
#LoadCredential=srt_passphrase:{config_dir}/{stem}.srt_passphrase
#LoadCredential=twitch_oauth_token:{config_dir}/{stem}.twitch_oauth_token
LoadCredential=stream_key:{config_dir}/{stem}.key
# Alternative: KEY=value lines (BROADCASTER_STREAM_KEY=..., OPENAI_API_KEY=...), chmod 600.
# The leading "-" makes the file optional.
EnvironmentFile=-{config_dir}/{stem}.env

# Recordings and state under /var/lib/{state_dir} ($STATE_DIRECTORY), owned by a user
# systemd allocates for this service.
DynamicUser=yes
StateDirectory={state_dir}
WorkingDirectory=%S/{state_dir}
# No home directory: libraries that cache (fonts, models) write under CacheDirectory.
CacheDirectory={state_dir}
Environment=XDG_CACHE_HOME=%C/{state_dir}
UMask=0027

# Hardening. Not set on purpose: MemoryDenyWriteExecute (CTranslate2/oneDNN JIT-compile
# kernels) and PrivateDevices (the host microphone needs /dev/snd; for a mic also add
# SupplementaryGroups=audio).
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
"""


class ServiceInstallError(RuntimeError):
    """The unit could not be written; the message names the path and why."""


def render_unit(template: bool, binary: str = DEFAULT_BINARY,
                config_dir: str = CONFIG_DIR) -> str:
    """Text of broadcaster@.service (template=True) or broadcaster.service."""
    if template:
        return _TEMPLATE.format(
            unit_name="broadcaster@.service",
            description="broadcaster virtual anchor, channel %i", install_arg=" --channel NAME",
            binary=binary, config=f"{config_dir}/%i.yaml", config_dir=config_dir, stem="%i",
            state_dir="broadcaster/%i")
    return _TEMPLATE.format(
        unit_name="broadcaster.service", description="broadcaster virtual anchor",
        install_arg="", binary=binary, config=f"{config_dir}/config.yaml",
        config_dir=config_dir, stem="broadcaster", state_dir="broadcaster")


def install_service(channel: str | None = None, binary: str = DEFAULT_BINARY,
                    unit_dir: Path | str = DEFAULT_UNIT_DIR, config_dir: str = CONFIG_DIR,
                    overwrite: bool = False) -> Path:
    """Write broadcaster.service, or broadcaster@.service when a channel is named.

    Returns the unit path; install_instructions() gives the commands to enable it.
    """
    if channel is not None and not _INSTANCE.match(channel):
        raise ServiceInstallError(f"channel name {channel!r} must be letters, digits, '_.-' "
                                  f"(up to 64), starting with a letter or digit")
    unit_dir = Path(unit_dir)
    path = unit_dir / ("broadcaster@.service" if channel is not None else "broadcaster.service")
    if path.exists() and not overwrite:
        raise ServiceInstallError(f"{path} exists; pass overwrite=True (--force) to replace it")
    text = render_unit(channel is not None, binary=binary, config_dir=config_dir)
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".service.tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    except OSError as exc:
        raise ServiceInstallError(f"cannot write {path}: {exc.strerror or exc} "
                                  f"(run as root, or pick another unit directory)") from exc
    return path


def install_instructions(path: Path, channel: str | None = None,
                         config_dir: str = CONFIG_DIR) -> str:
    """The operator's next steps after install_service()."""
    stem = channel if channel is not None else "broadcaster"
    config = f"{config_dir}/{channel}.yaml" if channel is not None else f"{config_dir}/config.yaml"
    unit = f"broadcaster@{channel}.service" if channel is not None else "broadcaster.service"
    return "\n".join([
        f"wrote {path}",
        f"  install -d -m 755 {config_dir} && cp config.yaml {config}",
        f"  install -m 600 /dev/null {config_dir}/{stem}.key && "
        f"$EDITOR {config_dir}/{stem}.key   # the stream key",
        "  systemctl daemon-reload",
        f"  systemctl enable --now {unit}",
        f"  journalctl -u {unit} -f        # logs;  systemctl reload {unit}  # SIGHUP",
    ])


def default_binary() -> str:
    """The console script of the environment running now, else DEFAULT_BINARY."""
    candidate = Path(sys.prefix) / "bin" / "broadcaster"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) \
        else DEFAULT_BINARY


def install_service_main(channel: str | None = None, unit_dir: Path | str = DEFAULT_UNIT_DIR,
                         binary: str | None = None, force: bool = False,
                         out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """`broadcaster install-service [--channel NAME] [--unit-dir DIR] [--force]`: 0 or 1."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        path = install_service(channel, binary=binary or default_binary(), unit_dir=unit_dir,
                               overwrite=force)
    except ServiceInstallError as exc:
        print(f"broadcaster install-service: {exc}", file=err)
        return 1
    print(install_instructions(path, channel), file=out)
    return 0
