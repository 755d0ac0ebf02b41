"""dotkernels-report: the spectrum table, definiteness wording, JSON output and errors."""

import json

import numpy as np
import pytest

from dotkernels.kernels import GaussianKernel
from dotkernels.report import main, spectrum_report


def test_sfrik_is_semi_definite_not_strictly(capsys):
    rep = spectrum_report("sfrik", [3, 8192], 5)
    for q in ("3", "8192"):
        assert rep["dimensions"][q]["positive_semidefinite"] is True
        assert rep["dimensions"][q]["strictly_positive_definite"] is False
        assert rep["dimensions"][q]["a"] == [0.0, 1.0, 40.0, 40.0, 0.0, 0.0]
        assert rep["dimensions"][q]["truncation_error"] == 0.0
    assert main(["--kernel", "sfrik", "--q", "3", "--degree", "4"]) == 0
    out = capsys.readouterr().out
    assert "positive semi-definite, not strictly positive definite" in out
    assert "positive definite: True" not in out


@pytest.mark.parametrize(
    "kernel, wording",
    [
        ("gaussian:gamma=2.5", "strictly positive definite"),
        ("energy", "not positive semi-definite"),
        ("arccos:order=1", "positive semi-definite, not strictly positive definite"),
    ],
)
def test_definiteness_wording(kernel, wording, capsys):
    assert main(["--kernel", kernel, "--q", "5", "--degree", "3"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("q = 5"))
    assert line.endswith(wording)


def test_json_output_matches_the_kernel(tmp_path, capsys):
    path = tmp_path / "spectrum.json"
    assert main(["--kernel", "gaussian:gamma=2.5", "--q", "128", "--degree", "6", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["kernel"] == "GaussianKernel(gamma=2.5)"
    np.testing.assert_allclose(data["dimensions"]["128"]["a"], GaussianKernel(2.5).spectrum(6, q=128), rtol=1e-15)
    assert data["dimensions"]["128"]["strictly_positive_definite"] is True


@pytest.mark.parametrize("argv", [["--kernel", "nope"], ["--kernel", "sfrik", "--q", "1"], ["--degree", "-1"]])
def test_bad_arguments_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "dotkernels-report: error" in capsys.readouterr().err


def test_unwritable_json_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--kernel", "sfrik", "--q", "3", "--json", str(tmp_path / "missing" / "r.json")])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("dotkernels-report: error: cannot write --json") and err.count("\n") == 1


def test_closed_pipe_is_quiet():
    # `dotkernels-report | head -1`: the reader closes the pipe early; no traceback may reach the user
    import subprocess
    import sys

    proc = subprocess.run(
        f"{sys.executable} -m dotkernels.report --q 3 64 8192 --degree 3000 | head -1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.startswith("kernel:")
    assert "Traceback" not in proc.stderr
