"""Package names imported on first use: each resolves to the object its module defines, an
unknown one is an AttributeError, and importing the packages alone loads no PyTorch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mmslim
import mmslim.codec
import mmslim.export


@pytest.mark.parametrize("package", [mmslim, mmslim.export])
def test_every_public_name_resolves_to_its_home(package):
    for name in package.__all__:
        if name.startswith("__"):
            continue
        value = getattr(package, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value
    assert set(dir(package)) <= set(package.__all__)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="'mmslim' has no attribute 'compress'"):
        mmslim.compress  # noqa: B018
    with pytest.raises(AttributeError, match="'mmslim.codec' has no attribute 'Prior'"):
        mmslim.codec.Prior  # noqa: B018


def test_importing_the_packages_loads_no_pytorch():
    code = "import sys, mmslim, mmslim.codec, mmslim.export; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert mmslim.codec.IndexPrior.__module__ == "mmslim.codec.prior"
