"""Ending a blocked HTTP read from outside: barge-in and the first-token deadline."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class StreamWatch:
    """Hangs up the HTTP stream when the turn is cancelled or the first token is too late.

    A blocking read cannot look at ``cancel``, so a small thread waits on it and shuts the
    socket down from outside: the read ends at once and the server, seeing the connection
    close, stops generating. (``response.close()`` from another thread would not wake the
    read.) Before the response headers arrive there is no socket to reach; the client's read
    timeout (llm.timeout) bounds that wait.
    """

    def __init__(self, cancel: threading.Event, deadline: float, idle_s: float):
        self.cancel = cancel
        self.deadline = deadline
        self.idle_s = idle_s
        self.first_token = False
        self.finished = False
        self.timed_out = False
        self._response: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="llm-http-watch", daemon=True)
        self._thread.start()

    def attach(self, response: Any) -> None:
        with self._lock:
            self._response = response
            late = self.cancel.is_set() or self.timed_out
        if late:
            self._close()

    def _close(self) -> None:
        with self._lock:
            response = self._response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the reading thread
                pass

    def _run(self) -> None:
        # Waits on `cancel` in long slices; the thread outlives a finished stream by at most one.
        while not self.finished:
            wait_s = self.idle_s if self.first_token else self.deadline - time.monotonic()
            if self.cancel.wait(max(0.0, wait_s)):
                if not self.finished:
                    self._close()
                return
            if not self.first_token and not self.finished and time.monotonic() >= self.deadline:
                self.timed_out = True
                self._close()
                return
