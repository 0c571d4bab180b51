"""The secret key against the store, through the real binary: a data directory's store remembers
its key's fingerprint, so a start with another key (a new secret.key, or BELTEKEN_SECRET) exits
with a clear error instead of counting every caller again; a rotation (secret.previous.key, or
BELTEKEN_SECRET_PREVIOUS) starts and moves the store to the new key."""
from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from peers import LOOPBACK, free_port
from server import Server, binary, campaign_toml

REFUSAL_LIMIT_S = 30  # a refused start exits at once; this only bounds a wrong one


def _env(**kw: str | None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("BELTEKEN_SECRET", "BELTEKEN_SECRET_PREVIOUS")}
    env.update({k: v for k, v in kw.items() if v is not None})
    return env


def _refused_start(srv: Server, env: dict) -> subprocess.CompletedProcess:
    """Runs `serve` on srv's data directory, expecting it to exit by itself."""
    cmd = [str(binary()), "serve", "--data-dir", str(srv.data), "--config", str(srv.config),
           "--sip-listen", f"{LOOPBACK}:{free_port(udp=True, tcp=True)}",
           "--http-listen", f"{LOOPBACK}:{free_port(udp=False, tcp=True)}"]
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=srv.dir,
                              timeout=REFUSAL_LIMIT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("belteken served with a key that is not the store's")


def _assert_refused(p: subprocess.CompletedProcess) -> None:
    assert p.returncode != 0, p.stderr
    assert "another secret key" in p.stderr, p.stderr
    # It says what to do: the same key on every node, or a rotation.
    assert "secret.key" in p.stderr and "secret.previous.key" in p.stderr, p.stderr


def _restart(srv: Server, name: str, env: dict | None = None) -> Server:
    again = Server(srv.dir / name, srv.config.read_text(),
                   files={k: srv.dir / k for k in ("greeting.wav", "story.wav", "thanks.wav")},
                   env=env)
    again.data = srv.data
    return again.start()


def _key_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_another_key_is_refused_and_a_rotation_starts(server_factory, audio):
    s = server_factory("secret-key", campaign_toml(prompts={
        "greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"}),
        files=audio.prompts, env=_env())
    assert s.stop() == 0
    key = s.data / "secret.key"
    first = _key_bytes(key)

    # Another key, from the environment or in the file: refused, and the store is unchanged.
    other = secrets.token_hex(32)
    _assert_refused(_refused_start(s, _env(BELTEKEN_SECRET=other)))
    key.rename(s.data / "kept.key")
    key.write_bytes(bytes.fromhex(other))
    key.chmod(0o600)
    _assert_refused(_refused_start(s, _env()))
    # The command line is held to the same key.
    p = subprocess.run([str(binary()), "signature", "erase", "--campaign", "demo", "--number", "-",
                        "--config", str(s.config), "--data-dir", str(s.data)],
                       input="+32 470 00 00 01\n", env=_env(), capture_output=True, text=True,
                       timeout=60, cwd=s.dir)
    _assert_refused(p)

    # Rotation with files: the old key as secret.previous.key, a new one made on start.
    key.unlink()
    (s.data / "kept.key").rename(s.data / "secret.previous.key")
    r = _restart(s, "rotated")
    assert r.stop() == 0
    assert "key rotation" in r.log_text(), r.log_text()[-2000:]
    second = _key_bytes(key)
    assert second != first
    # The store now names the new key: it starts alone, and the old key alone is refused.
    (s.data / "secret.previous.key").unlink()
    r = _restart(s, "new-key-alone")
    assert r.stop() == 0
    _assert_refused(_refused_start(s, _env(BELTEKEN_SECRET=first.hex())))

    # Rotation from the environment: BELTEKEN_SECRET_PREVIOUS names the store's key.
    third = secrets.token_hex(32)
    r = _restart(s, "rotated-env", env=_env(BELTEKEN_SECRET=third,
                                            BELTEKEN_SECRET_PREVIOUS=second.hex()))
    assert r.stop() == 0
    _assert_refused(_refused_start(s, _env()))  # secret.key still holds the second key
    r = _restart(s, "third-key", env=_env(BELTEKEN_SECRET=third))
    assert r.stop() == 0
    # A previous key without a current one in the environment is a mistake, said clearly.
    p = _refused_start(s, _env(BELTEKEN_SECRET_PREVIOUS=third))
    assert p.returncode != 0 and "BELTEKEN_SECRET_PREVIOUS" in p.stderr, p.stderr
