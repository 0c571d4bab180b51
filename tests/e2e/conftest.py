"""Shared fixtures for the end-to-end tests: the server factory and generated test audio."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import peers
import wavs
from server import server_factory  # noqa: F401  (a fixture)

# Short test prompts keep each call about 10 s long.
GREETING_S = 2.0
STORY_S = 3.0
THANKS_S = 1.0
# The caller starts speaking this long after the answer: greeting + story + the beep + margin.
SPEECH_LEAD_S = GREETING_S + STORY_S + 1.5


@dataclass
class AudioSet:
    dir: Path
    greeting: Path
    story: Path
    thanks: Path
    name: Path  # the spoken name alone
    speak: Path  # silence for the prompts, then the name, then silence: what a signing caller plays
    quiet: Path  # silence only

    @property
    def prompts(self) -> dict[str, Path]:
        return {"greeting.wav": self.greeting, "story.wav": self.story, "thanks.wav": self.thanks}


@pytest.fixture(scope="session")
def audio(tmp_path_factory) -> AudioSet:
    d = tmp_path_factory.mktemp("audio")
    name = wavs.espeak("My name is Marie Peeters.", d / "name.wav")
    return AudioSet(
        dir=d,
        greeting=wavs.prompt("Welcome to the test petition line.", GREETING_S, d / "greeting.wav"),
        story=wavs.prompt("This is a short story. Please listen.", STORY_S, d / "story.wav"),
        thanks=wavs.prompt("Thank you.", THANKS_S, d / "thanks.wav"),
        name=name,
        speak=wavs.delayed(name, SPEECH_LEAD_S, d / "speak.wav", tail_seconds=8),
        quiet=wavs.silence(40, d / "quiet.wav"),
    )


def _psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True,
                   capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.fixture
def pg_url():
    """A PostgreSQL store URL in a schema of its own, made for the test and dropped after it:
    runs never see each other's data (nor a schema or key another build left behind)."""
    base = os.environ.get("BELTEKEN_TEST_PG_URL", "")
    peers.require(bool(base), "PostgreSQL (BELTEKEN_TEST_PG_URL; .ci/run starts one)")
    peers.require(shutil.which("psql") is not None, "psql")
    schema = "e2e_%d_%s" % (os.getpid(), secrets.token_hex(4))
    _psql(base, f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-c%20search_path%3D{schema}"
    finally:
        _psql(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
