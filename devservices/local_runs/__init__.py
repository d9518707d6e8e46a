"""One module per DAG that ``make run DAG=<dag_id>`` can run on local services.

Each module has ``main(argv) -> int``: it parses its own options, runs its DAG once with
``airflow dags test`` (see :mod:`devservices.dag_test`) and prints what the run produced.
"""
