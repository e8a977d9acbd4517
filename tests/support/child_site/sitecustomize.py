"""In the Python processes the tests start (`evalflow run`, `evalflow serve`, ...), a
report's figures encoded as one 1x1 PNG, as tests/conftest.py does in the test process:
the conftest puts this folder on their PYTHONPATH and says per test, in
TESTS_ONE_PIXEL_FIGURES, whether to (not in tests marked report_figures). The
figures are still built from the data; only matplotlib's drawing (~1 s of CPU a report
of 11 figures, in every run a test starts that ends with a report) is left out."""

import os
import sys

_PLOTS = "evaluation.report.plots"


class _OnePixelFigures:
    """Finds nothing itself; when the plots module is found, its loader replaces
    ``png_data_uri`` right after the module runs."""

    def find_spec(self, name, path, target=None):
        if name != _PLOTS:
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module) -> None:
            run_module(module)
            module.png_data_uri = _one_pixel_png

        spec.loader.exec_module = exec_module
        return spec


def _one_pixel_png(fig, *, dpi: int = 110) -> str:
    return os.environ["TESTS_ONE_PIXEL_FIGURES"]


if os.environ.get("TESTS_ONE_PIXEL_FIGURES", "").startswith("data:image/png"):
    sys.meta_path.insert(0, _OnePixelFigures())
