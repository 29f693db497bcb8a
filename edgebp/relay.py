"""A seeded fault-injecting TCP relay for testing the serial link: client <-> relay <-> board's socket.

    with FaultRelay("socket://127.0.0.1:5555", drop=0.01, flip=0.01, seed=3) as relay:
        with Device(relay.url) as dev: ...        # every byte, both ways, dropped or bit-flipped at random

Each direction has its own generator, seeded from (seed, direction), that decides for every byte in stream
order whether it is dropped (probability ``drop``) or has one random bit flipped (probability ``flip``), so a
given byte stream meets the same faults however the bytes are chunked. ``cut()`` closes the current
connection (an unplugged cable); the next client connection opens a new one to the target. The relay listens
on loopback only, serves one client at a time, and stops by itself after ``lifetime`` seconds.

From a shell:  python -m edgebp.relay socket://127.0.0.1:5555 --drop 0.01 --flip 0.01 --seed 1
"""
from __future__ import annotations

import argparse
import select
import socket
import threading
import time
from typing import Optional

import numpy as np

from .errors import ConfigError


def _target(url: str):
    if not url.startswith("socket://"):
        raise ConfigError(f"the relay forwards to a socket://HOST:PORT URL, got {url!r}")
    host, _, port = url[len("socket://"):].rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{url!r} is not socket://HOST:PORT")
    return host, int(port)


class FaultRelay:
    def __init__(self, target: str, drop: float = 0.0, flip: float = 0.0, seed: int = 0,
                 lifetime: float = 600.0, listen_port: int = 0):
        for name, v in (("drop", drop), ("flip", flip)):
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {v!r}")
        if drop + flip > 1.0:
            raise ConfigError(f"drop + flip must be at most 1, got {drop + flip}")
        self.target = _target(target)
        self.drop, self.flip, self.seed, self.lifetime = float(drop), float(flip), int(seed), float(lifetime)
        self._rng = {d: np.random.default_rng([self.seed, i]) for i, d in enumerate(("up", "down"))}
        self.counts = {d: dict(bytes=0, dropped=0, flipped=0) for d in ("up", "down")}
        self.connections = 0
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", listen_port))
        self._lsock.listen(1)
        self.port = self._lsock.getsockname()[1]
        self._stop = threading.Event()
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def set_rates(self, drop: Optional[float] = None, flip: Optional[float] = None) -> None:
        """Changes the fault rates from the next byte on."""
        with self._lock:
            if drop is not None:
                self.drop = float(drop)
            if flip is not None:
                self.flip = float(flip)

    def start(self) -> "FaultRelay":
        self._thread = threading.Thread(target=self._serve, name=f"relay:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._lsock.close()
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def cut(self) -> None:
        """Closes the current client and target connections, as if the cable were pulled."""
        self._cut.set()

    def __enter__(self) -> "FaultRelay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the byte pump ---------------------------------------------------------------------------------------
    def mangle(self, data: bytes, direction: str) -> bytes:
        """The bytes that come out of the relay for ``data`` going ``direction`` ('up': to the board)."""
        n = len(data)
        if n == 0:
            return data
        with self._lock:
            drop, flip = self.drop, self.flip
        rng = self._rng[direction]
        u = rng.random(n)             # one draw per byte: the same faults however the stream is chunked
        c = self.counts[direction]
        c["bytes"] += n
        if drop == 0.0 and flip == 0.0:
            return data
        a = np.frombuffer(data, dtype=np.uint8).copy()
        fl = (u >= drop) & (u < drop + flip)
        bits = np.minimum(((u[fl] - drop) / flip * 8).astype(np.uint8), 7)   # which bit, from the same draw
        a[fl] ^= np.left_shift(np.uint8(1), bits)
        keep = u >= drop
        c["dropped"] += int(n - keep.sum())
        c["flipped"] += int(fl.sum())
        return a[keep].tobytes()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        self._lsock.settimeout(0.2)
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                client, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                board = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()     # nothing behind the relay: the client sees the connection close
                continue
            self.connections += 1
            self._cut.clear()
            for s in (client, board):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.setblocking(False)
            peer = {client: (board, "up"), board: (client, "down")}
            try:
                while not self._stop.is_set() and not self._cut.is_set() and time.monotonic() < deadline:
                    ready, _, _ = select.select(list(peer), [], [], 0.1)
                    closed = False
                    for s in ready:
                        try:
                            data = s.recv(65536)
                        except (BlockingIOError, InterruptedError):
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            closed = True
                            break
                        other, direction = peer[s]
                        out = self.mangle(data, direction)
                        if out:
                            other.setblocking(True)
                            try:
                                other.sendall(out)
                            except OSError:
                                closed = True
                            other.setblocking(False)
                    if closed:
                        break
            finally:
                for s in (client, board):
                    try:
                        s.close()
                    except OSError:
                        pass
        try:
            self._lsock.close()
        except OSError:
            pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgebp.relay", description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="socket://HOST:PORT of the board (e.g. what `edgebp flash` prints)")
    ap.add_argument("--drop", type=float, default=0.0, help="share of bytes dropped, each direction")
    ap.add_argument("--flip", type=float, default=0.0, help="share of bytes with one bit flipped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    ap.add_argument("--lifetime", type=float, default=3600.0, help="seconds until the relay stops by itself")
    a = ap.parse_args(argv)
    try:
        relay = FaultRelay(a.target, a.drop, a.flip, a.seed, a.lifetime, a.port).start()
    except (ConfigError, OSError) as e:
        print(f"relay: error: {e}")
        return 2
    print(f"relay {relay.url} -> {a.target} (drop {a.drop}, flip {a.flip}, seed {a.seed}); Ctrl-C to stop",
          flush=True)
    try:
        while relay._thread.is_alive():
            relay._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    relay.stop()
    print(f"relay stopped: {relay.counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
