"""``make run [DAG=<dag_id>]``: run one of the project's DAGs once on local services, then report.

Without ``--dag`` it runs the flagship, ``learning_platform_etl``. The options after the DAG are
that DAG's own (``python -m devservices.local_run --dag csv_folder_import --help``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

DEFAULT_DAG = "learning_platform_etl"
# dag_id -> the module under devservices.local_runs that runs it.
RUNNERS = (
    "learning_platform_etl",
    "csv_folder_import",
    "usage_files_ingest",
    "user_profiles_relay",
    "csv_column_sums",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, add_help=False)
    parser.add_argument(
        "--dag", choices=RUNNERS, default=DEFAULT_DAG, help="the DAG to run (default: %(default)s)"
    )
    args, rest = parser.parse_known_args(argv)
    runner = importlib.import_module(f"devservices.local_runs.{args.dag}")
    return runner.main(rest)


if __name__ == "__main__":
    sys.exit(main())
