"""A module that needs an extra names it when the dependency is missing."""

import pytest

from numpyro_slic._extras import require


def test_require_names_the_extra():
    assert require("json", "train").dumps([]) == "[]"
    with pytest.raises(ImportError, match=r"pip install 'numpyro-slic\[plots\]'"):
        require("no_such_package_xyz.sub", "plots")
