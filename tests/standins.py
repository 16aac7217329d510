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
