"""Housekeeping of Airflow itself: retention of task log files and of metadata database rows."""
