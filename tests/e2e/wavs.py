"""Test audio: speech made with espeak-ng + sox (8 kHz mono 16-bit), and a small WAV reader
(PCM 8/16-bit, G.711 mu-law and A-law) with RMS / voiced-length measures, in plain Python."""
from __future__ import annotations

import io
import math
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOX_OUT = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]


def espeak(text: str, out: Path, voice: str = "en") -> Path:
    """Speech for text as 8 kHz mono s16 WAV, edges trimmed."""
    raw = Path(str(out) + ".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(["sox", str(raw), *SOX_OUT, str(out),
                    "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"],
                   check=True, timeout=30)
    raw.unlink()
    return out


def prompt(text: str, seconds: float, out: Path, voice: str = "en") -> Path:
    """Speech for text, cut or padded with silence to exactly `seconds`."""
    tmp = Path(str(out) + ".tmp.wav")
    espeak(text, tmp, voice)
    subprocess.run(["sox", str(tmp), *SOX_OUT, str(out), "pad", "0", str(seconds), "trim", "0", str(seconds)],
                   check=True, timeout=30)
    tmp.unlink()
    return out


def delayed(speech: Path, lead_seconds: float, out: Path, tail_seconds: float = 0.0) -> Path:
    """speech preceded by lead_seconds of silence (and followed by tail_seconds)."""
    pad = ["pad", str(lead_seconds)] + ([str(tail_seconds)] if tail_seconds > 0 else [])
    subprocess.run(["sox", str(speech), *SOX_OUT, str(out), *pad], check=True, timeout=30)
    return out


def repeated(speech: Path, gap_seconds: float, total_seconds: float, out: Path) -> Path:
    """speech, then gap_seconds of silence, again and again for total_seconds."""
    one = Path(str(out) + ".one.wav")
    subprocess.run(["sox", str(speech), *SOX_OUT, str(one), "pad", "0", str(gap_seconds)],
                   check=True, timeout=30)
    count = max(1, int(total_seconds / max(seconds_of(one), 0.1)) + 1)
    subprocess.run(["sox", str(one), *SOX_OUT, str(out), "repeat", str(count - 1),
                    "trim", "0", str(total_seconds)], check=True, timeout=60)
    one.unlink()
    return out


def silence(seconds: float, out: Path) -> Path:
    subprocess.run(["sox", "-n", *SOX_OUT, str(out), "trim", "0", str(seconds)], check=True, timeout=30)
    return out


# ---------------------------------------------------------------------------------------------


def _ulaw(b: int) -> int:
    b = ~b & 0xFF
    t = ((b & 0x0F) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if (b & 0x80) else (t - 0x84)


def _alaw(b: int) -> int:
    b ^= 0x55
    t = (b & 0x0F) << 4
    seg = (b & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if (b & 0x80) else -t


_ULAW = [_ulaw(i) for i in range(256)]
_ALAW = [_alaw(i) for i in range(256)]


@dataclass
class Wav:
    rate: int
    channels: int
    fmt: int  # 1 PCM, 6 A-law, 7 mu-law
    samples: list[int]  # first channel, as signed 16-bit values

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def rms(self, start_s: float = 0.0, end_s: float | None = None) -> float:
        a = int(start_s * self.rate)
        b = len(self.samples) if end_s is None else int(end_s * self.rate)
        seg = self.samples[a:b]
        return math.sqrt(sum(x * x for x in seg) / len(seg)) if seg else 0.0

    def windows(self, ms: int = 20) -> list[float]:
        n = max(1, self.rate * ms // 1000)
        return [math.sqrt(sum(x * x for x in self.samples[i:i + n]) / len(self.samples[i:i + n]))
                for i in range(0, len(self.samples) - n + 1, n)]

    def voiced(self, threshold: float = 300.0, ms: int = 20) -> tuple[float, float]:
        """(seconds of 20 ms windows with RMS above threshold, RMS over those windows)."""
        n = max(1, self.rate * ms // 1000)
        loud = []
        for i in range(0, len(self.samples) - n + 1, n):
            seg = self.samples[i:i + n]
            r = math.sqrt(sum(x * x for x in seg) / n)
            if r > threshold:
                loud.extend(seg)
        if not loud:
            return 0.0, 0.0
        return len(loud) / self.rate, math.sqrt(sum(x * x for x in loud) / len(loud))

    def summary(self) -> str:
        v, vr = self.voiced()
        return "%.2f s @%d Hz fmt=%d rms=%.0f voiced=%.2f s (rms %.0f)" % (
            self.seconds, self.rate, self.fmt, self.rms(), v, vr)


def read_wav(data: bytes | Path | str) -> Wav:
    """Reads a RIFF/WAVE file or bytes. Raises ValueError when it is not one this can read."""
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    f = io.BytesIO(data)
    if f.read(4) != b"RIFF":
        raise ValueError("not RIFF (starts %r)" % data[:16])
    f.read(4)
    if f.read(4) != b"WAVE":
        raise ValueError("not WAVE")
    fmt = None
    pcm = None
    while True:
        hdr = f.read(8)
        if len(hdr) < 8:
            break
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        body = f.read(size)
        if size % 2:
            f.read(1)
        if cid == b"fmt ":
            tag, ch, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: subformat GUID
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, ch, rate, bits)
        elif cid == b"data":
            pcm = body
            if size == 0 or size > len(body):  # streaming writer that never fixed the size
                pcm = body + f.read()
            break
    if fmt is None or pcm is None:
        raise ValueError("no fmt or data chunk")
    tag, ch, rate, bits = fmt
    if tag == 1 and bits == 16:
        n = len(pcm) // 2
        allv = struct.unpack("<%dh" % n, pcm[:n * 2])
    elif tag == 1 and bits == 8:
        allv = [(b - 128) << 8 for b in pcm]
    elif tag == 7:
        allv = [_ULAW[b] for b in pcm]
    elif tag == 6:
        allv = [_ALAW[b] for b in pcm]
    else:
        raise ValueError("unsupported WAV format tag %d / %d bits" % (tag, bits))
    return Wav(rate, ch, tag, list(allv[::ch]) if ch > 1 else list(allv))


def seconds_of(path: Path) -> float:
    return read_wav(path).seconds
