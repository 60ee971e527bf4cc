"""The naive baseline: one ``cv2.VideoCapture`` thread per camera, reading (decoding) every frame.

Run by :mod:`bench.ingest` as a separate process so that its CPU can be measured alone::

    python -m bench.opencv_reader URL [URL ...]

It prints one JSON line when every capture has opened (or failed), then answers each
line on stdin with a JSON line of frame counts per URL, and exits at EOF on stdin, so it
never outlives the bench.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import cv2

OPEN_TIMEOUT_S = 30.0


class Reader:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.frames = [0] * len(urls)  # one writer per slot: no lock needed
        self.opened = [threading.Event() for _ in urls]
        self.failed: list[str] = []

    def start(self) -> None:
        for index in range(len(self.urls)):
            threading.Thread(target=self._read, args=(index,), daemon=True).start()

    def _read(self, index: int) -> None:
        capture = cv2.VideoCapture(self.urls[index], cv2.CAP_FFMPEG)
        try:
            if not capture.isOpened():
                self.failed.append(self.urls[index])
                return
            self.opened[index].set()
            while True:
                ok, _frame = capture.read()  # decode + convert to BGR, as naive code does
                if not ok:
                    self.failed.append(self.urls[index])
                    return
                self.frames[index] += 1
        finally:
            self.opened[index].set()  # "done opening", whether it worked or not
            capture.release()

    def wait_opened(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for event in self.opened:
            event.wait(max(0.0, deadline - time.monotonic()))


def main(urls: list[str]) -> None:
    reader = Reader(urls)
    reader.start()
    reader.wait_opened(OPEN_TIMEOUT_S)
    print(json.dumps({"opened": len(urls) - len(reader.failed), "failed": reader.failed}))
    sys.stdout.flush()
    for _line in sys.stdin:
        print(json.dumps({"t": time.monotonic(), "frames": list(reader.frames)}))
        sys.stdout.flush()
    # Reader threads are blocked in FFmpeg reads; exiting the interpreter normally would
    # wait for nothing useful.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
