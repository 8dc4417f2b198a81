"""Resources: steps declare CPUs, memory and GPUs; the local run never reserves more than the
machine or ``--cpus/--memory/--gpus`` offer, and hands each GPU step its own devices.

Through ``flowml run``: the steps write their start/end times and ``CUDA_VISIBLE_DEVICES``
to files (no GPU is needed: ``--gpus N`` offers N device ids). Units cover the parsing of
sizes, the machine's figures and the admission policy of :class:`ResourcePool`.
"""

from __future__ import annotations

import ast
import os
from itertools import combinations

import pytest

from flowml.resources import (GPU_VARIABLE, Offer, Request, ResourcePool, format_size, machine_cpus, machine_gpus,
                              machine_memory, make_offer)
from flowml.errors import SpecError
from flowml.spec.units import parse_size

# A step's process: sleep, then write "start end devices" (devices "unset" when the variable is).
STAMP = """
import os, sys, time
start = time.time()
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "w") as fh:
    fh.write(f"{start} {time.time()} {os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}")
"""


def stamp(project, rel: str) -> tuple[float, float, str]:
    start, end, devices = project.read(rel).split(" ", 2)
    return float(start), float(end), ast.literal_eval(devices)  # a repr the step wrote


def overlap(a: tuple, b: tuple) -> bool:
    return max(a[0], b[0]) < min(a[1], b[1])


def step(name: str, seconds: float, resources: str = "", needs: str = "") -> str:
    lines = [f"  {name}:", f"    run: python stamp.py {name}.txt {seconds}", f"    outputs: [{name}.txt]"]
    if resources:
        lines.append(f"    resources: {resources}")
    if needs:
        lines.append(f"    needs: {needs}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def no_gpu_variable(monkeypatch):
    """The steps inherit flowml's environment: without CUDA_VISIBLE_DEVICES there, what they see is ours."""
    monkeypatch.delenv(GPU_VARIABLE, raising=False)


# through flowml run ---------------------------------------------------------------------------

def test_two_cpu_steps_never_overlap_under_three_cpus_while_one_cpu_steps_run_together(project):
    """A DAG wider than the offer: three 1-CPU steps fill --cpus 3 at once; then two 2-CPU
    steps, which fit one at a time."""
    project.write("stamp.py", STAMP)
    project.pipeline("name: wide\nsteps:\n" + "".join(step(f"small{i}", 1.5) for i in range(3))
                     + "".join(step(f"big{i}", 1, "{cpus: 2}", "[small0, small1, small2]") for i in range(2)))
    summary = project.run_json("--no-track", "--cpus", "3")
    assert summary["code"] == 0, summary["stderr"]
    small = [stamp(project, f"small{i}.txt") for i in range(3)]
    assert all(overlap(a, b) for a, b in combinations(small, 2)), small
    big0, big1 = stamp(project, "big0.txt"), stamp(project, "big1.txt")
    assert not overlap(big0, big1), (big0, big1)


def test_by_default_the_machines_cpus_bound_the_steps_at_once(project):
    """Without --cpus or -j, one more 1-CPU step than the machine has CPUs: never all at once."""
    cpus = int(machine_cpus())
    if cpus > 8:
        pytest.skip("a wide machine: the DAG would need too many processes")
    project.write("stamp.py", STAMP)
    project.pipeline("name: d\nsteps:\n" + "".join(step(f"s{i}", 1) for i in range(cpus + 1)))
    summary = project.run_json("--no-track")
    assert summary["code"] == 0, summary["stderr"]
    spans = [stamp(project, f"s{i}.txt") for i in range(cpus + 1)]
    most = max(sum(1 for other in spans if other[0] <= s[0] < other[1]) for s in spans)
    assert most <= cpus, spans
    if cpus > 1:
        assert most > 1, spans


def test_jobs_still_limits_the_steps_at_once(project):
    project.write("stamp.py", STAMP)
    project.pipeline("name: j\nsteps:\n" + step("a", 1) + step("b", 1))
    summary = project.run_json("--no-track", "--cpus", "4", "-j", "1")
    assert summary["code"] == 0, summary["stderr"]
    assert not overlap(stamp(project, "a.txt"), stamp(project, "b.txt"))


def test_memory_reservations_never_exceed_the_offer(project):
    """Two steps reserving 3G each under --memory 5G run one after the other; a step that
    reserves no memory runs beside them."""
    project.write("stamp.py", STAMP)
    project.pipeline("name: m\nsteps:\n" + step("a", 1, "{memory: 3G}") + step("b", 1, "{memory: 3000M}")
                     + step("free", 1.5))
    summary = project.run_json("--no-track", "--memory", "5G", "--cpus", "3")
    assert summary["code"] == 0, summary["stderr"]
    a, b, free = (stamp(project, f"{n}.txt") for n in ("a", "b", "free"))
    assert not overlap(a, b)
    assert overlap(a, free)


def test_each_gpu_step_gets_its_own_devices(project, no_gpu_variable):
    """--gpus 2 offers devices 0 and 1: two 1-GPU steps run at once on one device each, a
    2-GPU step waits for both, and a step without GPUs sees none."""
    project.write("stamp.py", STAMP)
    project.pipeline("name: g\nsteps:\n" + step("one_a", 1.5, "{gpus: 1}") + step("one_b", 1.5, "{gpus: 1}")
                     + step("two", 0.5, "{gpus: 2}") + step("none", 0.2))
    summary = project.run_json("--no-track", "--gpus", "2", "--cpus", "4")
    assert summary["code"] == 0, summary["stderr"]
    one_a, one_b, two, none = (stamp(project, f"{n}.txt") for n in ("one_a", "one_b", "two", "none"))
    assert overlap(one_a, one_b) and {one_a[2], one_b[2]} == {"0", "1"}
    assert two[2] == "0,1" and not overlap(two, one_a) and not overlap(two, one_b)
    assert none[2] == ""


def test_without_gpus_offered_steps_see_the_variable_as_they_found_it(project, no_gpu_variable):
    """On a machine without GPUs (and no --gpus) flowml does not touch CUDA_VISIBLE_DEVICES."""
    if machine_gpus():
        pytest.skip("this machine has GPUs")
    project.write("stamp.py", STAMP)
    project.pipeline("name: n\nsteps:\n" + step("a", 0))
    assert project.run_json()["code"] == 0
    assert stamp(project, "a.txt")[2] == "unset"


def test_devices_are_released_after_a_failure_with_retries(project, tmp_path_factory, no_gpu_variable):
    """A GPU step keeps its device through its retries and frees it when it fails for good:
    the other GPU step (with -k) then gets it."""
    log = tmp_path_factory.mktemp("outside") / "attempts.txt"
    project.write("stamp.py", STAMP)
    flaky = (f"  flaky:\n    run: echo \"$CUDA_VISIBLE_DEVICES\" >> {log}; exit 1\n"
             "    retries: 1\n    resources: {gpus: 1}\n")
    project.pipeline("name: r\nsteps:\n" + flaky + step("later", 0, "{gpus: 1}"))
    summary = project.run_json("--no-track", "--gpus", "1", "-k")
    assert summary["by_name"]["flaky"]["status"] == "failed"
    assert summary["by_name"]["flaky"]["attempts"] == 2
    assert log.read_text().split() == ["0", "0"]
    assert summary["by_name"]["later"]["status"] == "ran"
    assert stamp(project, "later.txt")[2] == "0"


def test_resources_are_not_part_of_the_cache_key(project):
    """Changing what a step reserves changes how it runs, not what it writes: it stays cached,
    and status and dag read the same as before."""
    project.write("stamp.py", STAMP)
    project.pipeline("name: k\nsteps:\n" + step("a", 0, "{cpus: 1}"))
    assert project.run_json()["by_name"]["a"]["status"] == "ran"
    dag_before = project.flowml("dag").out
    project.pipeline("name: k\nsteps:\n" + step("a", 0, "{cpus: 2, memory: 1Gi, gpus: 1}"))
    status = project.flowml("status", "--json")
    assert status.code == 0 and status.json[0]["status"] == "cached", status.out
    assert project.flowml("dag").out == dag_before
    summary = project.run_json("--cpus", "2", "--gpus", "1")
    assert summary["code"] == 0 and summary["by_name"]["a"]["status"] == "cached", summary["stderr"]


# bad input ------------------------------------------------------------------------------------

def resources_pipeline(resources: str) -> str:
    return f"name: b\nsteps:\n  a:\n    run: echo hi\n    resources: {resources}\n"


@pytest.mark.parametrize("resources, field, expect", [
    ("{cpus: 0}", "steps.a.resources.cpus", "expected a positive number, got 0"),
    ("{cpus: -1}", "steps.a.resources.cpus", "expected a positive number"),
    ("{cpus: two}", "steps.a.resources.cpus", "got 'two'"),
    ("{cpus: true}", "steps.a.resources.cpus", "got True"),
    ("{memory: 4X}", "steps.a.resources.memory", "expected a positive size such as 512M, 4G, 1.5Gi"),
    ("{memory: 0}", "steps.a.resources.memory", "expected a positive size"),
    ("{memory: -1G}", "steps.a.resources.memory", "expected a positive size"),
    ("{gpus: 1.5}", "steps.a.resources.gpus", "expected a whole number"),
    ("{gpus: -1}", "steps.a.resources.gpus", "expected a whole number"),
    ("{gpu: 1}", "steps.a.resources.gpu", "gpus"),  # did you mean
    ("4", "steps.a.resources", ""),
])
def test_bad_resources_are_bad_input_at_their_line(project, resources, field, expect):
    project.pipeline(resources_pipeline(resources))
    res = project.flowml("run")
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "pipeline.yaml:5:" in res.err and field in res.err and expect in res.err, res.err
    assert not (project.root / ".flowml").exists()


@pytest.mark.parametrize("resources, args, expect", [
    ("{cpus: 4}", ("--cpus", "2"), "steps.a.resources.cpus: step a asks for 4 CPUs but the run offers 2 CPUs (--cpus)"),
    ("{memory: 2Gi}", ("--memory", "1G"), "steps.a.resources.memory: step a asks for 2Gi but the run offers 1G (--memory)"),
    ("{gpus: 2}", ("--gpus", "1"), "steps.a.resources.gpus: step a asks for 2 GPUs but the run offers 1 GPU (--gpus)"),
    ("{memory: 1G}", ("--cpus", "0.5"), "steps.a: step a asks for 1 CPU (the default without resources.cpus) "
                                        "but the run offers 0.5 CPUs (--cpus)"),
])
def test_a_step_asking_more_than_offered_is_refused_before_anything_runs(project, resources, args, expect):
    project.pipeline(resources_pipeline(resources).replace("echo hi", "echo hi > ran.txt"))
    for command in (("run", *args), ("run", "--dry-run", *args)):
        res = project.flowml(*command)
        assert res.code == 2 and "Traceback" not in res.err, res.err
        assert "pipeline.yaml:" in res.err and expect in res.err, res.err
    assert not (project.root / "ran.txt").exists() and not (project.root / ".flowml").exists()


def test_more_cpus_than_the_machine_has_names_the_machine(project):
    project.pipeline(resources_pipeline("{cpus: 100000}"))
    res = project.flowml("run")
    assert res.code == 2
    assert "pipeline.yaml:5:" in res.err and "step a asks for 100000 CPUs but the run offers" in res.err
    assert "what this machine has; --cpus overrides it" in res.err


def test_status_and_dag_do_not_check_the_offer(project):
    """Only running needs the machine to be big enough; status and dag describe the pipeline."""
    project.pipeline(resources_pipeline("{cpus: 100000, gpus: 64}"))
    assert project.flowml("status").code == 0
    assert project.flowml("dag").code == 0


@pytest.mark.parametrize("args, expect", [
    (("--cpus", "0"), "Invalid value for '--cpus'"),
    (("--cpus", "nan"), "Invalid value for '--cpus'"),
    (("--memory", "lots"), "Invalid value for '--memory': expected a positive size"),
    (("--gpus", "-1"), "Invalid value for '--gpus'"),
])
def test_bad_offers_on_the_command_line(project, args, expect):
    project.pipeline(resources_pipeline("{cpus: 1}"))
    res = project.flowml("run", *args)
    assert res.code == 2 and expect in res.err and "Traceback" not in res.err, res.err


# units: sizes and the machine ------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("512M", 512 * 10**6), ("4G", 4 * 10**9), ("4Gi", 4 * 2**30), ("1.5Gi", 3 * 2**29), ("4gb", 4 * 10**9),
    ("64Ki", 65536), ("2T", 2 * 10**12), ("100", 100), (1024, 1024), (" 8 G ", 8 * 10**9), ("1KiB", 1024),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["0", "0.0001", "4X", "-1G", "G", "", "4 GG", True, 0, -5, 1.5, None, [1]])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="expected a positive size"):
        parse_size(bad)


@pytest.mark.parametrize("size, text", [(4 * 2**30, "4Gi"), (3 * 2**29, "1.5Gi"), (4 * 10**9, "4G"),
                                        (25276514304, "25.3G"), (512, "512 bytes"), (2048, "2Ki")])
def test_format_size(size, text):
    assert format_size(size) == text


def test_the_machine_offers_what_it_has(monkeypatch):
    assert 0 < machine_cpus() <= os.cpu_count()
    assert machine_memory() > 2**20
    monkeypatch.setenv(GPU_VARIABLE, "3,5")
    assert machine_gpus() == ("3", "5")
    monkeypatch.setenv(GPU_VARIABLE, "")
    assert machine_gpus() == ()


def test_cgroup_limits_cap_the_machine(monkeypatch, tmp_path):
    """A container's CPU quota and memory limit (cgroup v2 or v1 files) win over the host's figures."""
    import flowml.resources as resources

    for folder, cpu, memory in (("", {"cpu.max": "50000 100000"}, {"memory.max": str(2**30)}),
                                ("cpu", {"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"}, {}),
                                ("memory", {}, {"memory.limit_in_bytes": str(2**30)})):
        (tmp_path / folder).mkdir(exist_ok=True)
        for name, text in {**cpu, **memory}.items():
            (tmp_path / folder / name).write_text(text + "\n")
    monkeypatch.setattr(resources, "CGROUP_ROOT", str(tmp_path))
    assert machine_cpus() == 0.5
    assert machine_memory() == 2**30


def test_given_figures_replace_the_machines(monkeypatch):
    monkeypatch.delenv(GPU_VARIABLE, raising=False)
    offer = make_offer(cpus=1.5, memory=2**30, gpus=2)
    assert (offer.millicpus, offer.memory, offer.devices, offer.given) == (1500, 2**30, ("0", "1"),
                                                                            {"cpus", "memory", "gpus"})
    monkeypatch.setenv(GPU_VARIABLE, "4,6,7")
    assert make_offer(gpus=2).devices == ("4", "6")  # the ones this process was given, when it has enough
    assert make_offer(gpus=0).devices == ()
    assert make_offer().millicpus == round(machine_cpus() * 1000)


def test_more_gpus_than_cuda_visible_devices_names_are_refused(monkeypatch):
    """Handing out ids the variable left out would give steps GPUs the user excluded."""
    monkeypatch.setenv(GPU_VARIABLE, "3")
    with pytest.raises(SpecError, match=r"--gpus 2: CUDA_VISIBLE_DEVICES names 1 device\(s\) \(3\)"):
        make_offer(gpus=2)


def test_more_gpus_than_visible_is_bad_input_on_the_command_line(project):
    project.pipeline("name: t\nsteps:\n  a: {run: echo hi}\n")
    done = project.flowml("run", "--gpus", "2", env={GPU_VARIABLE: "3"})
    assert done.code == 2 and "--gpus 2: CUDA_VISIBLE_DEVICES names 1 device(s) (3)" in done.err
    assert "Traceback" not in done.err


# units: admission -----------------------------------------------------------------------------

def pool(cpus: float, memory: int | None = None, gpus: int | None = None, jobs: int | None = None) -> ResourcePool:
    return ResourcePool(make_offer(cpus, memory, gpus), jobs)


def requests(**named: dict) -> dict[str, Request]:
    return {name: Request.of(resources) for name, resources in named.items()}


def test_a_step_without_resources_asks_for_one_cpu():
    assert Request.of({}) == Request(1000, 0, 0)
    assert Request.of({"cpus": 0.5, "memory": 10, "gpus": 2}) == Request(500, 10, 2)


def test_first_fit_in_queue_order():
    p = pool(3)
    asks = requests(big0={"cpus": 2}, big1={"cpus": 2}, small={"cpus": 1})
    assert p.admit(["big0", "big1", "small"], asks) == ["big0", "small"]
    assert p.admit(["big1"], asks) == []
    p.release("big0")
    assert p.admit(["big1"], asks) == ["big1"]


def test_fractions_of_cpus_add_up_exactly():
    p = pool(0.3)
    asks = requests(**{f"s{i}": {"cpus": 0.1} for i in range(4)})
    assert p.admit(list(asks), asks) == ["s0", "s1", "s2"]


def test_a_waiting_big_step_is_overtaken_at_most_once_per_cpu():
    """Offer 2 CPUs: small steps may start ahead of a waiting 2-CPU step twice; after that
    nothing starts until it has."""
    p = pool(2)
    asks = requests(big={"cpus": 2}, **{f"s{i}": {} for i in range(5)})
    assert p.admit(["s0"], asks) == ["s0"]
    assert p.admit(["big", "s1"], asks) == ["s1"]  # overtaken once
    p.release("s0")
    assert p.admit(["big", "s2"], asks) == ["s2"]  # twice: its patience is spent
    p.release("s1")
    assert p.admit(["big", "s3"], asks) == []  # s3 fits, but waits behind big
    p.release("s2")
    assert p.admit(["big", "s3"], asks) == ["big"]
    p.release("big")
    assert p.admit(["s3", "s4"], asks) == ["s3", "s4"]


def test_jobs_bounds_the_steps_held_at_once():
    p = pool(8, jobs=2)
    asks = requests(a={}, b={}, c={})
    assert p.admit(["a", "b", "c"], asks) == ["a", "b"]
    p.release("a")
    assert p.admit(["c"], asks) == ["c"]


def test_memory_is_reserved_only_by_steps_that_ask():
    p = pool(8, memory=4 * 10**9)
    asks = requests(a={"memory": 3 * 10**9}, b={"memory": 2 * 10**9}, c={})
    assert p.admit(["a", "b", "c"], asks) == ["a", "c"]
    p.release("a")
    assert p.admit(["b"], asks) == ["b"]


def test_gpus_are_handed_out_and_taken_back_by_id(monkeypatch):
    monkeypatch.delenv(GPU_VARIABLE, raising=False)
    p = pool(8, gpus=3)
    asks = requests(a={"gpus": 1}, b={"gpus": 2}, c={"gpus": 2}, cpu={})
    assert p.admit(["a", "b", "c", "cpu"], asks) == ["a", "b", "cpu"]
    assert [p.env(n) for n in ("a", "b", "cpu")] == [{GPU_VARIABLE: "0"}, {GPU_VARIABLE: "1,2"}, {GPU_VARIABLE: ""}]
    p.release("a")
    p.release("b")
    assert p.admit(["c"], asks) == ["c"] and p.env("c") == {GPU_VARIABLE: "0,1"}


def test_without_gpus_no_variable_is_set(monkeypatch):
    monkeypatch.delenv(GPU_VARIABLE, raising=False)
    p = ResourcePool(Offer(2000, None, gpu_ids=()), None)  # a machine without GPUs, whatever this one has
    assert p.admit(["a"], requests(a={})) == ["a"] and p.env("a") == {}
    hidden = pool(2, gpus=0)  # --gpus 0: steps must not reach the machine's GPUs
    assert hidden.admit(["a"], requests(a={})) == ["a"] and hidden.env("a") == {GPU_VARIABLE: ""}
