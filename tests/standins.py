"""Write stand-in executables for tools that cannot exist on the test machine (nvidia-smi, nvidia-ctk,
nvidia-cuda-mps-control, sudo...). Each test that uses one says, next to its script body, which real
behaviour the stand-in stands for."""

from __future__ import annotations

from pathlib import Path


def executable(path: Path, body: str) -> Path:
    """Write ``body`` to ``path`` (parents created) and make it executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


# Tools module 0 asks (what each stand-in prints: the shape of the real answer, see tests/data/).
SLOW_TOOL_OUTPUT = {
    "nvidia-smi": "",  # no GPU listed: the GPU checks fail, which is not what these stand-ins are for
    "nvidia-ctk": "NVIDIA Container Toolkit CLI version 1.17.8",
    "nvidia-cuda-mps-control": "",
    "kind": "kind v0.24.0 go1.22.6 linux/amd64",
    "helm": "v3.16.2",
}


def slow_tools(folder: Path, delay: float, log: Path) -> Path:
    """A folder of stand-ins for module 0's tools, each taking ``delay`` seconds, to put first on PATH.

    Stands for a host whose tools are slow to answer (a loaded GPU host: nvidia-smi alone takes
    0.1-0.5 s there). Each call appends ``START END NAME ARGS`` (epoch seconds) to ``log``, so a test
    can count how many calls ran at the same time and in which order. nvidia-cuda-mps-control
    behaves like the real one towards a daemon: ``-d`` starts it (a file in ``folder``), a command
    read from stdin (``get_server_list``) is logged and answers once it has started, fails before.
    """
    daemon = folder / "mps-daemon-started"
    for name, answer in SLOW_TOOL_OUTPUT.items():
        body = f"""#!/bin/sh
start=$(date +%s.%N)
sleep {delay}
[ -n '{answer}' ] && echo '{answer}'
echo "$start $(date +%s.%N) $(basename "$0") $*" >> '{log}'
"""
        if name == "nvidia-cuda-mps-control":
            body = f"""#!/bin/sh
start=$(date +%s.%N)
if [ "$1" = "-d" ]; then
    sleep {delay}; touch '{daemon}'; rc=0; asked=-d
else
    read -r asked; sleep {delay}
    if [ -e '{daemon}' ]; then rc=0; else echo "Cannot find MPS control daemon process"; rc=1; fi
fi
echo "$start $(date +%s.%N) $(basename "$0") $asked" >> '{log}'
exit $rc
"""
        executable(folder / name, body)
    return folder


def calls(log: Path) -> list[tuple[float, float, str]]:
    """A :func:`slow_tools` log as (start, end, "NAME ARGS"), in the order the calls started."""
    out = []
    for line in log.read_text().splitlines():
        if line.strip():
            start, end, what = line.split(" ", 2)
            out.append((float(start), float(end), what.strip()))
    return sorted(out)


def overlap(log: Path) -> tuple[int, int, float]:
    """From a :func:`slow_tools` log: (calls, most calls running at one moment, first start to last end)."""
    spans = [(start, end) for start, end, _ in calls(log)]
    if not spans:
        return 0, 0, 0.0
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return len(spans), most, max(e for _, e in spans) - min(s for s, _ in spans)
