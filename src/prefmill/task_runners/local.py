"""Task runner ``local`` (the default): shards run one after the other in the build's process."""

from __future__ import annotations

from prefmill.task_runners import TaskRunnerKind

KIND = TaskRunnerKind(name="local", summary="in the build's process")
