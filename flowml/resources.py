"""Resources: what a run offers (CPUs, memory, GPUs), what each step asks for, and the
accounting that keeps the steps running at once within the offer.

The offer is the machine's unless ``flowml run --cpus/--memory/--gpus`` says otherwise:
the CPUs this process may run on (its affinity, capped by a cgroup CPU quota), the total
memory (capped by a cgroup memory limit), and the GPUs ``nvidia-smi -L`` lists (or those
``CUDA_VISIBLE_DEVICES`` already names). GPUs are looked up only when a step needs to know,
so a run that starts nothing never pays for ``nvidia-smi``.

A step without ``resources:`` asks for one CPU, no memory and no GPU. A step that asks for
more than the whole offer is bad input, reported before anything runs (:func:`check_offer`);
so is one that asks for more than the largest machine has, where an executor spreads the
steps over several (a Dask cluster): the offer is then theirs, and a step runs on one of them.

Admission (:meth:`ResourcePool.admit`) is first fit in the scheduler's order with a bound on
overtaking: a ready step that does not fit waits, and later ready steps that do fit may start
ahead of it; but once as many steps have overtaken the oldest waiting step as the offer has
whole CPUs, nothing else starts until it has. Small steps thus fill the machine while a big one waits for room,
and a stream of small steps cannot postpone a big one forever.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from flowml.errors import Problem, SpecError
from flowml.plan import Plan

MILLI = 1000  # CPUs are counted in thousandths, so that 0.1 + 0.2 fits in 0.3
CGROUP_ROOT = "/sys/fs/cgroup"
NVIDIA_SMI_TIMEOUT_S = 10
GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Request:
    """What one step holds while it runs."""

    millicpus: int
    memory: int  # bytes; 0: no reservation
    gpus: int

    @classmethod
    def of(cls, resources: dict[str, float]) -> "Request":
        """The request of a node's declared ``resources`` (defaults: 1 CPU, no memory, no GPU)."""
        return cls(max(1, round(resources.get("cpus", 1) * MILLI)), int(resources.get("memory", 0)),
                   int(resources.get("gpus", 0)))


@dataclass
class Offer:
    """What a run may use at once. ``given`` names the figures the command line set (the
    others are those of the machines ``where`` names)."""

    millicpus: int
    memory: int | None  # bytes; None: unknown, not limited
    given: set[str] = field(default_factory=set)
    gpu_ids: tuple[str, ...] | None = None  # None: the machine's, looked up on first use
    where: str = "this machine"
    largest: Offer | None = None  # steps run on several machines: the most one of them has

    def fill(self, total: tuple[float, int | None, int], largest: tuple[float, int | None, int], where: str) -> None:
        """Take the figures the command line did not set from the machines an executor spreads
        the steps over: CPUs, memory and GPUs ``total`` in all, and ``largest`` on the biggest
        (each figure its own maximum: the most one step can get); ``where`` names them."""
        cpus, memory, gpus = total
        if "cpus" not in self.given:
            self.millicpus = round(cpus * MILLI)
        if "memory" not in self.given:
            self.memory = memory
        if "gpus" not in self.given:
            self.gpu_ids = _numbered(gpus)
        self.where = where
        self.largest = Offer(round(largest[0] * MILLI), largest[1], gpu_ids=_numbered(largest[2]))

    @property
    def devices(self) -> tuple[str, ...]:
        """The GPU ids on offer."""
        if self.gpu_ids is None:
            self.gpu_ids = machine_gpus()
        return self.gpu_ids


def make_offer(cpus: float | None = None, memory: int | None = None, gpus: int | None = None) -> Offer:
    """The machine's offer, with any figure given on the command line in its place.

    ``gpus=N`` offers N devices without looking for them: the first N that
    ``CUDA_VISIBLE_DEVICES`` names, or ``0`` to ``N-1`` when it is not set.

    Raises:
        SpecError: for ``gpus=N`` when ``CUDA_VISIBLE_DEVICES`` names fewer than N devices
            (handing out ids it left out would give steps GPUs the user excluded).
    """
    given = {name for name, value in (("cpus", cpus), ("memory", memory), ("gpus", gpus)) if value is not None}
    offer = Offer(round(cpus * MILLI) if cpus is not None else round(machine_cpus() * MILLI),
                  memory if memory is not None else machine_memory(), given)
    if gpus is not None:
        visible = _visible_devices()
        if visible is not None and len(visible) < gpus:
            raise SpecError(Problem(f"--gpus {gpus}: CUDA_VISIBLE_DEVICES names {len(visible)} device(s) "
                                    f"({','.join(visible) or 'none'}); offer at most {len(visible)}, or "
                                    f"change CUDA_VISIBLE_DEVICES", "command line", field="--gpus"))
        offer.gpu_ids = tuple(visible[:gpus]) if visible is not None else _numbered(gpus)
    return offer


def _numbered(gpus: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(gpus))


def check_offer(plan: Plan, offer: Offer) -> None:
    """Refuse a plan with a step that could never start under ``offer``.

    Raises:
        SpecError: at the step's ``resources`` field, naming what it asks and what is offered.
    """
    problems = []
    for node in plan.nodes.values():
        request = Request.of(node.resources)
        for what, asked, offered, unit, one in _shortfalls(request, offer):
            declared = what in node.resources
            where = ("steps", node.step, "resources", what) if declared else ("steps", node.step)
            default = "" if declared else f" (the default without resources.{what})"
            if one:
                offers = f"at most {unit(offered)} to a step (the most one machine of {offer.where} has)"
            else:
                source = f"--{what}" if what in offer.given else f"what {offer.where} has; --{what} overrides it"
                offers = f"{unit(offered)} ({source})"
            problems.append(plan.problem(where, f"step {node.name} asks for {unit(asked)}{default} but the run "
                                                f"offers {offers}"))
    if problems:
        raise SpecError(problems)


def _shortfalls(request: Request, offer: Offer):
    """(what, asked, offered, format, one) for each resource ``request`` needs more of than
    ``offer`` has; ``one``: the bound is the largest machine's, not the whole offer's."""
    for what, asked, unit in (("cpus", request.millicpus, _cpus), ("memory", request.memory, format_size),
                              ("gpus", request.gpus, _gpus)):
        if not asked:  # no GPU asked: none looked up
            continue
        whole = _figure(offer, what)
        one = _figure(offer.largest, what) if offer.largest else None
        if one is not None and (whole is None or one < whole or (one == whole and what not in offer.given)):
            if asked > one:
                yield what, asked, one, unit, True
        elif whole is not None and asked > whole:
            yield what, asked, whole, unit, False


def _figure(offer: Offer, what: str) -> int | None:
    """How much of ``what`` ``offer`` has (None: unknown, not limited)."""
    if what == "gpus":
        return len(offer.devices)
    return offer.millicpus if what == "cpus" else offer.memory


@dataclass(frozen=True)
class Grant:
    """What a started step holds, and the variables its process gets for it."""

    request: Request
    devices: tuple[str, ...]
    hide_gpus: bool  # the run has GPUs: a step that asked for none must not see them

    def env(self) -> dict[str, str]:
        if self.devices or self.hide_gpus:
            return {GPU_VARIABLE: ",".join(self.devices)}
        return {}


class ResourcePool:
    """Reservations of the running steps against an offer. Used from one thread (the scheduler's
    loop): :meth:`admit` takes, :meth:`release` gives back."""

    def __init__(self, offer: Offer, jobs: int | None = None) -> None:
        self.offer, self.jobs = offer, jobs
        self.millicpus, self.memory = offer.millicpus, offer.memory
        self.grants: dict[str, Grant] = {}
        self.patience = max(1, offer.millicpus // MILLI)  # overtakes a waiting step tolerates
        self.overtaken: dict[str, int] = {}  # the oldest waiting step -> how many started after it
        self._free: list[str] | None = None  # free GPU ids, once a step needed to know

    def admit(self, queue: list[str], requests: dict[str, Request]) -> list[str]:
        """The steps of ``queue`` (ready ones, oldest first) to start now, each now holding its
        reservation (see the module's policy); until released, they count as running.

        Only the oldest step that does not fit counts being overtaken: the others wait behind
        it and each becomes the oldest in turn. A scan stops once no CPU is left, and tries each
        shape of request that did not fit only once, so a wide queue costs little.
        """
        admitted: list[str] = []
        oldest: str | None = None  # the oldest step that does not fit
        misfits: set[Request] = set()
        for name in queue:
            if (self.jobs is not None and len(self.grants) >= self.jobs) or self.millicpus <= 0:
                break
            request = requests[name]
            if request in misfits or not self._fits(request):
                misfits.add(request)
                if oldest is None:
                    oldest = name
                    if self.overtaken.setdefault(name, 0) >= self.patience:
                        break
                continue
            self._take(name, request)
            admitted.append(name)
            if oldest is not None:
                self.overtaken[oldest] += 1
                if self.overtaken[oldest] >= self.patience:
                    break
        return admitted

    def env(self, name: str) -> dict[str, str]:
        """Variables for the process of admitted step ``name`` (its GPUs)."""
        return self.grants[name].env()

    def release(self, name: str) -> None:
        """Give back what step ``name`` held (after its last attempt, whatever the outcome)."""
        grant = self.grants.pop(name, None)
        if grant is None:
            return
        self.millicpus += grant.request.millicpus
        if self.memory is not None:
            self.memory += grant.request.memory
        if self._free is not None:
            self._free = sorted(self._free + list(grant.devices), key=self.offer.devices.index)

    def _fits(self, request: Request) -> bool:
        if request.millicpus > self.millicpus or (self.memory is not None and request.memory > self.memory):
            return False
        return request.gpus == 0 or request.gpus <= len(self._free_devices())

    def _take(self, name: str, request: Request) -> None:
        devices = self._free_devices()
        taken, self._free = tuple(devices[:request.gpus]), devices[request.gpus:]
        self.millicpus -= request.millicpus
        if self.memory is not None:
            self.memory -= request.memory
        self.overtaken.pop(name, None)
        self.grants[name] = Grant(request, taken, hide_gpus=bool(self.offer.devices) or "gpus" in self.offer.given)

    def _free_devices(self) -> list[str]:
        if self._free is None:
            self._free = list(self.offer.devices)
        return self._free


# detection -----------------------------------------------------------------------------------

def machine_cpus() -> float:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota."""
    cpus: float = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota()
    return min(cpus, quota) if quota else cpus


def machine_memory() -> int | None:
    """Total memory in bytes, capped by a cgroup memory limit; None when unknown."""
    total = _meminfo_total()
    limit = _cgroup_memory_limit()
    known = [m for m in (total, limit) if m]
    return min(known) if known else None


def machine_gpus() -> tuple[str, ...]:
    """GPU ids: those ``CUDA_VISIBLE_DEVICES`` names when it is set, else one per GPU that
    ``nvidia-smi -L`` lists (none without nvidia-smi)."""
    visible = _visible_devices()
    if visible is not None:
        return visible
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return ()
    if listing.returncode != 0:
        return ()
    count = sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))
    return tuple(str(i) for i in range(count))


def _visible_devices() -> tuple[str, ...] | None:
    value = os.environ.get(GPU_VARIABLE)
    if value is None:
        return None
    return tuple(d.strip() for d in value.split(",") if d.strip() and d.strip() != "-1")


def _meminfo_total() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_cpu_quota() -> float | None:
    """The tightest CPU quota of this process's cgroup and its ancestors (v2 or v1), in CPUs."""
    quotas = []
    for folder in _cgroup_folders("cpu"):
        v2 = ((_read(os.path.join(folder, "cpu.max")) or "max") + " 0").split()  # "QUOTA PERIOD" or "max PERIOD"
        v1 = [_read(os.path.join(folder, f"cpu.cfs_{n}_us")) or "-1" for n in ("quota", "period")]
        for quota, period in (v2[:2], v1):
            try:
                if int(quota) > 0 and int(period) > 0:
                    quotas.append(int(quota) / int(period))
            except ValueError:
                continue
    return min(quotas) if quotas else None


def _cgroup_memory_limit() -> int | None:
    limits = []
    for folder in _cgroup_folders("memory"):
        for name in ("memory.max", "memory.limit_in_bytes"):
            value = _read(os.path.join(folder, name))
            if value and value.isdigit():
                limits.append(int(value))
    return min(limits) if limits else None


def _cgroup_folders(controller: str) -> list[str]:
    """The folders of this process's cgroup and its ancestors that may hold ``controller``'s
    settings: under the v2 (unified) hierarchy and under the v1 hierarchy of the controller."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    folders = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            bases = [CGROUP_ROOT, os.path.join(CGROUP_ROOT, "unified")]
        elif controller in controllers.split(","):
            bases = [os.path.join(CGROUP_ROOT, controllers), os.path.join(CGROUP_ROOT, controller)]
        else:
            continue
        path = path.strip("/")
        while True:
            folders += [os.path.join(base, path) for base in bases]
            if not path:
                break
            path = os.path.dirname(path)
    return list(dict.fromkeys(folders))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except (OSError, ValueError):
        return None


# formatting ----------------------------------------------------------------------------------

def _cpus(millicpus: int) -> str:
    n = millicpus / MILLI
    return f"{n:g} CPU{'s' if n != 1 else ''}"


def _gpus(n: int) -> str:
    return f"{n} GPU{'s' if n != 1 else ''}"


def format_size(size: int) -> str:
    """``4Gi``, ``1.5Gi`` or ``25.3G`` for a byte count: binary units where they read exactly
    (to a quarter), else three digits of decimal ones."""
    for power, unit in ((4, "T"), (3, "G"), (2, "M"), (1, "K")):
        if size >= 1024 ** power and size * 4 % 1024 ** power == 0:
            return f"{size / 1024 ** power:g}{unit}i"
        if size >= 1000 ** power:
            return f"{size / 1000 ** power:.3g}{unit}"
    return f"{size} bytes"
