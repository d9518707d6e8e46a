"""Housekeeping: retention of Airflow's task log files and metadata rows, and of the pipelines' landing."""
