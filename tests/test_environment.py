"""The environment ``make setup`` builds carries the compiled bytecode of what it installs.

uv installs no bytecode, and where Python may not write it (``PYTHONDONTWRITEBYTECODE``, set in
many CI and sandbox images) every process compiles what it imports from source again: some
3,000 modules, 5-6 s of CPU, for each of the suite's hundreds of Airflow processes (each
``airflow dags test``, scheduler, worker). That was about a third of the suite's time; the
bootstrap script compiles it once instead.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

# What every Airflow process of the suite imports: the Task SDK and the core.
import airflow.models
import airflow.sdk  # noqa: F401


def test_every_installed_module_imported_so_far_has_its_bytecode() -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    installed = {
        Path(module.__file__).resolve()
        for module in list(sys.modules.values())
        if getattr(module, "__file__", None) and module.__file__.endswith(".py")
    }
    installed = {path for path in installed if path.is_relative_to(site_packages)}
    assert len(installed) > 500, "precondition: the suite's imports include the installed packages"

    missing = sorted(
        str(path.relative_to(site_packages))
        for path in installed
        if not Path(importlib.util.cache_from_source(str(path))).exists()
    )

    assert not missing, (
        f"{len(missing)} of {len(installed)} installed modules have no bytecode (e.g. {missing[:3]}): "
        "every Python process recompiles them. Run `make setup`, whose scripts/bootstrap.sh "
        "compiles them (uv pip sync --compile-bytecode)."
    )
