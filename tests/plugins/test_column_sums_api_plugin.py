"""The column-sums API plugin as the components that are not the API server load it.

Airflow executes every file in ``plugins/`` in each of its processes, task processes included.
Importing FastAPI and the core API's security module costs about a second there, for nothing:
only the API server asks a plugin for its ``fastapi_apps``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from devservices.environment import PROJECT_ROOT

PROBE = textwrap.dedent(
    """
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("column_sums_api", "plugins/column_sums_api.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    heavy = ("fastapi", "airflow.api_fastapi.core_api.security", "include.column_sums.api")
    loaded = [name for name in heavy if name in sys.modules]
    apps = plugin.ColumnSumsApiPlugin().fastapi_apps
    print(json.dumps({"on_import": loaded, "prefixes": [app["url_prefix"] for app in apps]}))
    """
)


def test_the_plugin_imports_the_api_only_when_asked_for_its_apps() -> None:
    # A fresh interpreter: this one may have imported FastAPI for other tests.
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert probe.stdout.strip().splitlines()[-1] == '{"on_import": [], "prefixes": ["/column-sums"]}'
