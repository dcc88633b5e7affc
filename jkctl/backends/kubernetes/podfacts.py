"""What a kernel pod's state means for its kernel: starting (and why), running, or failed.

The backend follows its pods with a watch and asks :func:`judge` what each
new state means. A failure is reported the moment Kubernetes states it,
in Kubernetes' own words, never by waiting out a timeout:

- the scheduler cannot place the pod (``PodScheduled=False``, reason
  Unschedulable): its message is quoted ("0/2 nodes are available: 2
  Insufficient memory");
- the image cannot be pulled (ErrImagePull, ImagePullBackOff,
  InvalidImageName, ErrImageNeverPull): the image is named, with the
  runtime's message;
- the container cannot be created (CreateContainerConfigError, ...);
- the kernel's container ended or crash-loops, or the pod failed (Evicted,
  DeadlineExceeded): the exit code and reason; its last log lines are
  added by the caller (``needs_logs``);
- the pod is being deleted by someone else.

Pure functions: the caller reads logs and emits lifecycle events.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from jkctl.kube.podtemplate import KERNEL_CONTAINER
from jkctl.kube.podwatch import ContainerState, PodState

_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CREATE_FAILURES = (
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreCreateHookError",
    "PostStartHookError",
)


class Outlook(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    outlook: Outlook
    #: For PENDING, what the kernel waits for; for FAILED, one sentence saying why.
    reason: str = ""
    #: A crash: the container's last log lines would help the user.
    needs_logs: bool = False
    #: For FAILED, what the user can do about it, when it is not in the kernel's log.
    hint: str = ""
    #: FAILED because no node fits the pod now (one may yet be added).
    unschedulable: bool = False


def judge(pod: PodState) -> Verdict:  # noqa: PLR0911 -- one return per state
    """What ``pod``'s state means for its kernel."""
    kernel = pod.container(KERNEL_CONTAINER)
    if pod.deleting:
        return Verdict(
            outlook=Outlook.FAILED, reason=f"Its pod {pod.name} is being deleted by Kubernetes."
        )
    if pod.phase in ("Failed", "Succeeded"):
        return _ended(pod, kernel)
    if (scheduler := pod.unschedulable) is not None:
        return Verdict(
            outlook=Outlook.FAILED,
            reason=f"Kubernetes cannot schedule its pod {pod.name}: {scheduler}",
            hint="Start a smaller kernel (`jkctl kernelspecs list` shows the sizes), "
            "or ask the cluster's admins for room.",
            unschedulable=True,
        )
    if kernel is None:
        return Verdict(outlook=Outlook.PENDING, reason="waiting for Kubernetes")
    if kernel.state == "waiting" and kernel.reason in _PULL_FAILURES:
        image = _image(pod)
        said = f": {kernel.message}" if kernel.message else ""
        return Verdict(
            outlook=Outlook.FAILED,
            reason=f"Kubernetes cannot pull the image {image} for pod {pod.name} "
            f"({kernel.reason}{said})",
            hint="Check the kernelspec's image name, and that the cluster may pull it "
            "(a private registry needs an imagePullSecret).",
        )
    if kernel.state == "waiting" and kernel.reason in _CREATE_FAILURES:
        said = f": {kernel.message}" if kernel.message else ""
        return Verdict(
            outlook=Outlook.FAILED,
            reason=f"Kubernetes cannot start the kernel's container in pod {pod.name} "
            f"({kernel.reason}{said})",
        )
    if kernel.state == "waiting" and kernel.reason == "CrashLoopBackOff":
        return Verdict(
            outlook=Outlook.FAILED,
            reason=f"The kernel's container in pod {pod.name} keeps crashing"
            + _exit(kernel.last_exit_code, kernel.last_reason),
            needs_logs=True,
        )
    if kernel.state == "terminated":
        return _ended(pod, kernel)
    if kernel.state == "running":
        return Verdict(outlook=Outlook.RUNNING)
    if pod.node is None:
        return Verdict(outlook=Outlook.PENDING, reason="waiting for a node")
    return Verdict(
        outlook=Outlook.PENDING,
        reason=f"starting its container on {pod.node} (pulling {_image(pod)} if needed)",
    )


def _ended(pod: PodState, kernel: ContainerState | None) -> Verdict:
    if kernel is not None and kernel.state == "terminated":
        if kernel.reason == "OOMKilled":
            reason = (
                f"The kernel in pod {pod.name} ran out of memory and was killed (OOMKilled); "
                "start it with more memory (a bigger profile, or KERNEL_MEMORY)."
            )
            return Verdict(outlook=Outlook.FAILED, reason=reason, needs_logs=True)
        return Verdict(
            outlook=Outlook.FAILED,
            reason=f"The kernel's container in pod {pod.name} "
            + ("exited" if kernel.exit_code is not None else "ended")
            + _exit(kernel.exit_code, kernel.reason),
            needs_logs=True,
        )
    said = ": ".join(part for part in (pod.reason, pod.message) if part)
    return Verdict(
        outlook=Outlook.FAILED,
        reason=f"Its pod {pod.name} {pod.phase.lower()}" + (f" ({said})." if said else "."),
        needs_logs=kernel is not None,
    )


def _exit(code: int | None, reason: str | None) -> str:
    if code is None:
        return f" ({reason})." if reason else "."
    return f" with code {code}" + (f" ({reason})." if reason and reason != "Error" else ".")


def _image(pod: PodState) -> str:
    for container in pod.raw.get("spec", {}).get("containers") or []:
        if container.get("name") == KERNEL_CONTAINER:
            return str(container.get("image", "?"))
    return "?"
