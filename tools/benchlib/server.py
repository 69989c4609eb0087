"""The library server: ``python -m benchlib.server`` (started by LibraryRunner).

It imports the library, loads Numba's cache by running every job once on the small
images it is given (the warm-up), and then, for each request line on stdin
(``{"job": NAME, "args": {...}}``), forks a child that runs :data:`benchlib.jobs.JOBS`
[NAME] and exits.  The reply line on stdout holds the call's seconds and CPU seconds
(measured in the child around the call alone), the child's peak resident memory (from
``os.wait4``) and what the job returned.  Forking keeps every measurement in a process
of its own without paying the start-up each time; the server holds no thread when it
forks (the library's thread pools end with each call).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import traceback


def _child(job: str, args: dict, out_fd: int) -> None:
    """Run one job in the forked child and write its JSON result to ``out_fd``."""
    from benchlib import jobs

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the reply channel stays clean whatever the call prints
    try:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        info = jobs.JOBS[job](**args) or {}
        seconds = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        reply = {"seconds": seconds, "cpu": cpu, "info": info}
    except BaseException as exc:  # reported to the bench, which names the side
        traceback.print_exc(file=sys.stderr)
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    data = json.dumps(reply).encode()
    while data:
        data = data[os.write(out_fd, data) :]


def _fork(job: str, args: dict) -> dict:
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        code = 0
        try:
            _child(job, args, wfd)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(wfd)
    chunks = []
    while chunk := os.read(rfd, 1 << 16):
        chunks.append(chunk)
    os.close(rfd)
    _, _status, usage = os.wait4(pid, 0)
    if not chunks:
        return {"error": f"the child for {job} ended without a result"}
    reply = json.loads(b"".join(chunks))
    reply["peak_rss"] = usage.ru_maxrss * 1024
    return reply


def main() -> None:
    t0 = time.perf_counter()
    from benchlib import jobs

    for line in sys.stdin:
        request = json.loads(line)
        if "warm" in request:
            try:
                jobs.warm(request["warm"], request["scratch"])
                gc.freeze()  # fewer copy-on-write faults in the children
                reply = {"seconds": time.perf_counter() - t0}
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                reply = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            reply = _fork(request["job"], request.get("args", {}))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
