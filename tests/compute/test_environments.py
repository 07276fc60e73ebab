"""LocalEnvironmentBuilder: base interpreters, real virtual environments, failures, and a worker running in one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from modelharbor.compute.base import BuildFailed, WorkerSpec
from modelharbor.compute.environments import (
    SERVING_BASE,
    LocalEnvironmentBuilder,
    base_name,
    check_requirements,
    has_installed,
)

CURRENT = base_name(sys.version_info[:2])


def test_base_environments_are_real_interpreters(tmp_path):
    bases = LocalEnvironmentBuilder(tmp_path).base_environments()
    assert bases[CURRENT] == Path(sys.executable)  # the server's own interpreter: its packages are there
    for name, python in bases.items():
        out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True)
        assert out.stdout.decode().split() == name.removeprefix("python").split("-")


def test_explicit_interpreters(tmp_path):
    builder = LocalEnvironmentBuilder(
        tmp_path, interpreters={"python3-99": Path("/opt/py99/bin/python")}, search_path=False
    )
    assert builder.base_environments() == {CURRENT: Path(sys.executable), "python3-99": Path("/opt/py99/bin/python")}
    with pytest.raises(ValueError):
        LocalEnvironmentBuilder(tmp_path, interpreters={"py3": Path("/x")}).base_environments()


@pytest.mark.parametrize("requirements", [None, "", "# only a comment\n\n"])
def test_no_requirements_is_the_base_interpreter_when_it_has_the_serving_base(tmp_path, requirements):
    assert has_installed(SERVING_BASE)  # the dev extras repeat [serving-base], as such an install has it
    lines = []
    env = LocalEnvironmentBuilder(tmp_path / "envs").build("e1", CURRENT, requirements, lines.append)
    assert env.python == Path(sys.executable) and env.base == CURRENT and env.key == "e1"
    assert not (tmp_path / "envs" / "e1").exists()
    assert lines == [
        f"no requirements: the base interpreter {sys.executable}, which has the serving base ("
        + ", ".join(SERVING_BASE)
        + ")"
    ]
    unlisted = LocalEnvironmentBuilder(tmp_path / "envs", serving_base=())
    assert unlisted.build("e1", CURRENT, None, print).python == Path(sys.executable)


def test_has_installed_wants_the_exact_versions():
    numpy = metadata.version("numpy")
    assert has_installed([f"numpy=={numpy}"]) and has_installed([])
    assert not has_installed([f"numpy=={numpy}.1"])
    assert not has_installed(["numpy"]) and not has_installed(["no-such-package-here==1.0"])


def test_a_serving_base_the_server_lacks_is_built_once_and_shared(tmp_path, executor, make_package):
    """A plain install (no numpy): packages without requirements get an environment with the serving base, built
    once per base; here a serving base of appdirs, which the server does not have, stands in for numpy."""
    assert not has_installed(["appdirs==1.4.4"])
    builder = LocalEnvironmentBuilder(tmp_path, timeout=300, serving_base=("appdirs==1.4.4",))
    lines: list[str] = []
    env = builder.build("env-base", CURRENT, "# none\n", lines.append)
    assert lines[0] == f"no requirements: the base serving environment, {CURRENT} with appdirs==1.4.4"
    assert env.python == tmp_path / "env-base" / "bin" / "python"
    again: list[str] = []
    assert builder.build("env-base", CURRENT, None, again.append) == env
    assert again[-1] == "environment env-base is already built"
    package = make_package(
        """
        import appdirs
        class Deployment:
            def __init__(self, base_directory, context):
                pass
            def request(self, data):
                return {"appdirs": appdirs.__version__}
        """
    )
    executor.deploy(WorkerSpec(key="v1", revision="r1", package_dir=package, environment=env))
    result = asyncio.run(executor.request("v1", {}))
    assert result.ok and result.value == {"appdirs": "1.4.4"}, result


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://example.org/simple",
        "-i https://example.org/simple",
        "--extra-index-url https://example.org/simple",
        "--find-links /tmp",
        "-r /etc/passwd",
        "-e .",
        "pkg @ https://example.org/pkg.whl",
        "https://example.org/pkg.whl",
        "./local/dir",
        "numpy --index-url=https://example.org/simple",
    ],
)
def test_requirements_may_not_leave_the_configured_index(tmp_path, line):
    with pytest.raises(BuildFailed, match="line 2"):
        LocalEnvironmentBuilder(tmp_path).build("e1", CURRENT, f"appdirs\n{line}\n", print)
    assert not (tmp_path / "e1").exists()


def test_requirement_lines_that_are_fine():
    text = 'appdirs==1.4.4\nnumpy>=1,<3 ; python_version >= "3.8"  # why\nscikit-learn[all]~=1.0 --hash=sha256:00\n'
    assert check_requirements(text) == [
        "appdirs==1.4.4",
        'numpy>=1,<3 ; python_version >= "3.8"',
        "scikit-learn[all]~=1.0 --hash=sha256:00",
    ]


def test_unknown_base(tmp_path):
    with pytest.raises(BuildFailed, match="python2-7"):
        LocalEnvironmentBuilder(tmp_path).build("e1", "python2-7", "appdirs", print)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One real virtual environment with a tiny requirement from the machine's package index."""
    root = tmp_path_factory.mktemp("environments")
    lines: list[str] = []
    started = time.monotonic()
    env = LocalEnvironmentBuilder(root, timeout=300).build("env-a", CURRENT, "appdirs\n", lines.append)
    return root, env, lines, time.monotonic() - started


def test_build_creates_a_venv_once(built):
    root, env, lines, _seconds = built
    assert env.python == root / "env-a" / "bin" / "python"
    assert (root / "env-a" / ".modelharbor-environment.json").exists()
    assert any("appdirs" in line for line in lines)
    code = "import appdirs, sklearn, sys; print(appdirs.__file__); print(sys.prefix)"
    out = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(root / "env-a"))  # installed into the environment
    assert out[1] == str(root / "env-a")
    again: list[str] = []
    started = time.monotonic()
    same = LocalEnvironmentBuilder(root).build("env-a", CURRENT, "appdirs\n", again.append)
    assert same == env and time.monotonic() - started < 1.0
    assert again == ["environment env-a is already built"]


def test_a_half_built_environment_is_rebuilt(tmp_path):
    builder = LocalEnvironmentBuilder(tmp_path, timeout=0.001)
    with pytest.raises(BuildFailed, match="timed out after 0.001 s"):
        builder.build("env-b", CURRENT, "appdirs", print)
    assert not (tmp_path / "env-b" / ".modelharbor-environment.json").exists()
    (tmp_path / "env-b").mkdir(exist_ok=True)
    (tmp_path / "env-b" / "junk").write_text("left by a crashed build")
    lines: list[str] = []
    # rebuilt, this time without the server's packages
    env = LocalEnvironmentBuilder(tmp_path, timeout=300, share_server_packages=False).build(
        "env-b", CURRENT, "appdirs", lines.append
    )
    assert lines[0].startswith("removing the incomplete or outdated environment")
    assert not (tmp_path / "env-b" / "junk").exists()
    out = subprocess.run([str(env.python), "-c", "import sklearn"], capture_output=True, text=True)
    assert out.returncode != 0 and "No module named 'sklearn'" in out.stderr
    assert subprocess.run([str(env.python), "-c", "import appdirs"]).returncode == 0


def test_pip_failure_raises_with_the_log_tail(tmp_path):
    lines: list[str] = []
    with pytest.raises(BuildFailed) as info:
        LocalEnvironmentBuilder(tmp_path, timeout=300).build("env-c", CURRENT, "appdirs==0.0.0.999", lines.append)
    message = str(info.value)
    assert "failed (exit 1)" in message and "Build log tail:" in message
    assert "appdirs==0.0.0.999" in message
    assert not (tmp_path / "env-c" / ".modelharbor-environment.json").exists()


def test_a_worker_runs_in_a_built_environment(built, executor, make_package):
    _root, env, _lines, _seconds = built
    package = make_package(
        """
        import appdirs, sys
        from sklearn.linear_model import LogisticRegression
        class Deployment:
            def __init__(self, base_directory, context):
                self.model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
            def request(self, data):
                return {"prefix": sys.prefix, "appdirs": appdirs.__version__,
                        "label": int(self.model.predict([[data["x"]]])[0])}
        """
    )
    executor.deploy(WorkerSpec(key="v1", revision="r1", package_dir=package, environment=env))
    result = asyncio.run(executor.request("v1", {"x": 2.5}))
    assert result.ok, result
    assert result.value == {"prefix": str(env.python.parent.parent), "appdirs": "1.4.4", "label": 1}
